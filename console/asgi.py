"""ASGI entry point: HTTP through Django (static files by WhiteNoise), websockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from agents.hooks import span_sinks  # noqa: E402
from console.routing import websocket_urlpatterns  # noqa: E402
from console.telemetry import configure_tracing  # noqa: E402

configure_tracing("web", exporters=span_sinks())  # the sinks apps registered when ready

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
