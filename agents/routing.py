from django.urls import path

from agents import consumers

websocket_urlpatterns = [
    path("ws/t/<slug:tenant_slug>/runs/", consumers.RunListConsumer.as_asgi()),
    path("ws/t/<slug:tenant_slug>/runs/<int:run_number>/", consumers.RunConsumer.as_asgi()),
]
