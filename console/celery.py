"""The Celery app (broker: Redis). Tasks live in each app's tasks.py and are thin."""

from __future__ import annotations

import os
import threading

from celery import Celery
from celery.signals import worker_process_init, worker_process_shutdown, worker_ready, worker_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("proctor")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

_heartbeat_stop = threading.Event()


def _heartbeat_loop(hostname: str) -> None:
    from django.conf import settings

    from console.health import worker_heartbeat

    while not _heartbeat_stop.is_set():
        try:
            worker_heartbeat(hostname)
        except Exception:  # Redis down: /healthz will say so; keep trying
            pass
        _heartbeat_stop.wait(settings.WORKER_HEARTBEAT_SECONDS)


@worker_ready.connect
def start_heartbeat(sender=None, **kwargs):
    hostname = getattr(sender, "hostname", None) or "worker"
    threading.Thread(target=_heartbeat_loop, args=(hostname,), daemon=True, name="proctor-heartbeat").start()


@worker_shutdown.connect
def stop_heartbeat(**kwargs):
    _heartbeat_stop.set()


def _configure_worker_tracing() -> None:
    from agents.hooks import span_sinks
    from console.telemetry import configure_tracing

    configure_tracing("worker", exporters=span_sinks())  # the sinks apps registered when ready


def _flush_spans() -> None:
    from console.telemetry import current_provider

    if provider := current_provider():
        provider.shutdown()  # flushes the spans still waiting for a batch


# Prefork: each child sets up its own provider. Threads/solo pools run tasks in the main
# process, which sets it up once ready (a prefork parent doing so too is harmless: idempotent).
worker_process_init.connect(lambda **kwargs: _configure_worker_tracing(), weak=False)
worker_ready.connect(lambda **kwargs: _configure_worker_tracing(), weak=False)
worker_process_shutdown.connect(lambda **kwargs: _flush_spans(), weak=False)
worker_shutdown.connect(lambda **kwargs: _flush_spans(), weak=False)
