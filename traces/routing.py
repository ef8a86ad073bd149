from django.urls import path

from traces import consumers

websocket_urlpatterns = [
    path("ws/t/<slug:tenant_slug>/traces/<int:run_number>/", consumers.TraceConsumer.as_asgi()),
]
