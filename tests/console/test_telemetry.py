"""One TracerProvider per process, named for its role; it never encodes OTLP itself (the span relay does)."""

import subprocess
import sys

from console.devstack import ROOT

PROBE = """
import django, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
django.setup()
from console.telemetry import configure_tracing, configured_exporters
first = configure_tracing("worker")
assert configure_tracing("web") is first
print(first.resource.attributes["service.name"], configured_exporters())
"""


def run_probe(**env) -> str:
    import os

    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env={**os.environ, **env},
                            capture_output=True, text=True, check=True)
    return result.stdout.strip()


def test_the_provider_is_set_once_with_the_service_name():
    assert run_probe(OTEL_EXPORTER_OTLP_ENDPOINT="") == "proctor-worker []"


def test_with_an_otlp_endpoint_the_process_still_exports_to_its_sinks_only():
    """OTLP goes through the traces app's outbox and relay (tests/traces/test_otlp_export.py), not from here."""
    assert run_probe(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318") == "proctor-worker []"
