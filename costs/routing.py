from django.urls import path

from costs import consumers

websocket_urlpatterns = [
    path("ws/t/<slug:tenant_slug>/costs/", consumers.SpendConsumer.as_asgi()),
]
