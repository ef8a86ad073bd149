"""The Celery app (broker: Redis). Tasks live in each app's tasks.py and are thin."""

from __future__ import annotations

import gc
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


def _freeze_startup_objects() -> None:
    """What is loaded by now (Django, the apps, their modules) lives as long as the process: frozen out of the
    collector's sight, as the web process does (console/asgi.py). Unfrozen, a full collection came about once
    every 1,500 steps and paused every run the process held for ~200 ms; frozen, 9-19 ms (issue 10's probe
    of P1's p99). Collected first, so that a garbage cycle left by startup is not frozen with the rest."""
    gc.collect()
    gc.freeze()


# Prefork: each child sets up its own provider. Threads/solo pools run tasks in the main
# process, which sets it up once ready (a prefork parent doing so too is harmless: idempotent).
worker_process_init.connect(lambda **kwargs: _configure_worker_tracing(), weak=False)
worker_ready.connect(lambda **kwargs: _configure_worker_tracing(), weak=False)
# After the setup above: in each prefork child, and in the main process that runs threads/solo pools' tasks.
worker_process_init.connect(lambda **kwargs: _freeze_startup_objects(), weak=False)
worker_ready.connect(lambda **kwargs: _freeze_startup_objects(), weak=False)
worker_process_shutdown.connect(lambda **kwargs: _flush_spans(), weak=False)
worker_shutdown.connect(lambda **kwargs: _flush_spans(), weak=False)
