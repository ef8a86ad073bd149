"""The span relay: sends the spans waiting on the OTLP outbox to OTEL_EXPORTER_OTLP_ENDPOINT.

    OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 python manage.py relay_spans

Runs until SIGTERM or Ctrl-C, at a lower CPU priority (nice 10) than the workers: on a shared host the
steps and Postgres get the cores first. Start one next to the workers whenever OTLP export is on
(`make run` and docker-compose.yml do); a second one waits and takes over when the first stops."""

import logging
import os
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from traces.otlp import SpanRelay


class Command(BaseCommand):
    help = "Send the spans on the OTLP outbox to the configured OTLP/HTTP backend, until stopped."

    def handle(self, *args, **options):
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        if not settings.OTEL_EXPORTER_OTLP_ENDPOINT:  # idle rather than exit: a supervisor would only restart it
            self.stdout.write("OTEL_EXPORTER_OTLP_ENDPOINT is not set: no spans to relay; waiting to be stopped.")
            self.stdout.flush()
            stop.wait()
            return
        os.nice(10)
        relay = SpanRelay(stop=stop)
        self.stdout.write(f"span relay {relay.name} started, sending to {settings.OTEL_EXPORTER_OTLP_ENDPOINT}")
        self.stdout.flush()
        relay.run()
        self.stdout.write(f"span relay {relay.name} stopped")
