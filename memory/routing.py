from django.urls import path

from memory import consumers

websocket_urlpatterns = [
    path("ws/t/<slug:tenant_slug>/memory/", consumers.MemoryBadgeConsumer.as_asgi()),
]
