"""Websocket routes of every app, gathered in one list for console/asgi.py."""

from agents.routing import websocket_urlpatterns as agent_routes
from approvals.routing import websocket_urlpatterns as approval_routes
from costs.routing import websocket_urlpatterns as cost_routes
from memory.routing import websocket_urlpatterns as memory_routes
from traces.routing import websocket_urlpatterns as trace_routes

websocket_urlpatterns: list = [*agent_routes, *approval_routes, *trace_routes, *memory_routes, *cost_routes]
