"""What /healthz reports: the database, Redis, live workers, the scheduler canary, and the checks
apps register (``register_check``: the traces app's OTLP relay, when OTLP export is on)."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cache

import redis
from django.conf import settings
from django.db import connection

WORKER_KEY = "proctor:heartbeat:worker:"
SCHEDULER_KEY = "proctor:heartbeat:scheduler"
SCHEDULER_STALE_AFTER = 30  # beat schedules the canary every 5s


def redis_client(timeout: float = 1.0, *, url: str = "") -> redis.Redis:
    """A client per process and server (its pool reuses connections; redis-py resets pools after fork):
    REDIS_URL's, or ``url``'s (the Celery broker's, say)."""
    return _client(url or settings.REDIS_URL, timeout)


@cache
def _client(url: str, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


_checks: dict[str, Callable[[], dict]] = {}


def register_check(name: str, check: Callable[[], dict]) -> None:
    """An app's own check: returns a dict with "status" ("ok" or "down") and what else it reports."""
    _checks[name] = check


def worker_heartbeat(hostname: str) -> None:
    """Called by each worker every few seconds; the key expires if the worker dies."""
    ttl = settings.WORKER_HEARTBEAT_SECONDS * 3
    redis_client().set(WORKER_KEY + hostname, f"{time.time():.3f}", ex=ttl)


def scheduler_canary_record() -> None:
    redis_client().set(SCHEDULER_KEY, f"{time.time():.3f}", ex=SCHEDULER_STALE_AFTER * 10)


def _check_database() -> dict:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('server_version'),"
                           " (SELECT extversion FROM pg_extension WHERE extname = 'vector')")
            postgres, pgvector = cursor.fetchone()
    except Exception as error:  # any failure is a finding, not a crash
        return {"status": "down", "error": (str(error).strip().splitlines() or ["unreachable"])[0][:200]}
    return {
        "status": "ok",
        "postgres": postgres.split()[0],
        "pgvector": pgvector,
        "latency_ms": round((time.perf_counter() - started) * 1000, 1),
    }


def _check_redis_and_workers() -> tuple[dict, dict, dict]:
    started = time.perf_counter()
    try:
        client = redis_client()
        client.ping()
        latency = round((time.perf_counter() - started) * 1000, 1)
        workers = sorted(key.decode().removeprefix(WORKER_KEY) for key in client.scan_iter(WORKER_KEY + "*", count=100))
        canary = client.get(SCHEDULER_KEY)
    except redis.RedisError as error:
        down = {"status": "unknown", "error": "Redis is unreachable"}
        return {"status": "down", "error": str(error)[:200]}, down, down
    redis_status = {"status": "ok", "latency_ms": latency}
    worker_status = {"status": "ok" if workers else "down", "workers": workers}
    if canary is None:
        scheduler = {"status": "down", "error": "the scheduler canary has not run yet"}
    else:
        age = time.time() - float(canary)
        scheduler = {"status": "ok" if age < SCHEDULER_STALE_AFTER else "down", "last_run_seconds_ago": round(age, 1)}
    return redis_status, worker_status, scheduler


def health_report() -> dict:
    redis_status, workers, scheduler = _check_redis_and_workers()
    checks = {"database": _check_database(), "redis": redis_status, "workers": workers, "scheduler": scheduler}
    for name, check in _checks.items():
        try:
            checks[name] = check()
        except Exception as error:  # any failure is a finding, not a crash
            checks[name] = {"status": "down", "error": str(error)[:200]}
    healthy = all(check["status"] == "ok" for check in checks.values())
    return {"status": "ok" if healthy else "degraded", "checks": checks}
