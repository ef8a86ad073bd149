"""ASGI entry point: HTTP through Django (static files by WhiteNoise), websockets through Channels."""

import gc
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

# What is loaded by now (Django, the apps, their modules, URLs and settings) lives as long as the process:
# out of the collector's sight, a full collection no longer walks it. Full collections paused every open
# socket of the process for 120-200 ms under bench p4 (100 sockets); frozen, about a third of that.
# Collected first: a garbage cycle left by startup would otherwise be frozen with the rest, never freed.
gc.collect()
gc.freeze()
