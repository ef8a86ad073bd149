from django.urls import path

from approvals import consumers

websocket_urlpatterns = [
    path("ws/t/<slug:tenant_slug>/approvals/", consumers.ApprovalQueueConsumer.as_asgi()),
]
