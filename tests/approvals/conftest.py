import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agents.services import run_start
from tests.factories import RENEWAL_GOAL, advance


@pytest.fixture
def approval(cast, renewals):
    """The pending approval of email.send in a renewal run max started."""
    run = advance(run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member))
    return run.approval_requests.get()


@pytest.fixture
def receiver(settings):
    """A webhook endpoint on loopback that answers 204 (or ``status``, with a ``location``) and keeps what it
    got. Reaching it takes the development setting (http, loopback), as a receiver on a developer's machine."""
    settings.WEBHOOK_ALLOW_HTTP = True
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(getattr(server, "status", 204))
            if location := getattr(server, "location", None):
                self.send_header("Location", location)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.received = received
    server.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield server
    server.shutdown()
