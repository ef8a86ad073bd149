"""Websocket routes of every app, gathered in one list for console/asgi.py."""

websocket_urlpatterns: list = []
