"""The baselines every benchmark divides by (docs/BENCHMARKS.md), each returning samples.

- B1: raw psycopg single-row INSERT (~300 bytes, autocommit) + a Redis PUBLISH.
- B2: Redis publish → subscriber receive round trip on loopback.
- Bh: a minimal Django view committing one row, over real HTTP (uvicorn, keep-alive).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import queue
import threading
import time
from pathlib import Path

import psycopg
import redis

from bench.harness import Context, Row, asgi_server, measure, summary, table

PAYLOAD = "x" * 300
ROOT = Path(__file__).resolve().parent.parent


def b1(ctx: Context, n: int = 3000, warmup: int = 300) -> list[float]:
    """One sample = INSERT one 300-byte row (autocommit) + PUBLISH one message."""
    r = redis.Redis.from_url(ctx.redis_url)
    with psycopg.connect(ctx.database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_b1 (id bigserial PRIMARY KEY, payload text NOT NULL)")
        cur = conn.cursor()
        sql = "INSERT INTO bench_b1 (payload) VALUES (%s)"

        def once() -> None:
            cur.execute(sql, (PAYLOAD,))
            r.publish("bench:b1", PAYLOAD)

        try:
            return measure(once, n, warmup)
        finally:
            r.close()


def b2(ctx: Context, n: int = 2000, warmup: int = 200) -> list[float]:
    """Publish on one connection, receive in a subscriber thread on another; sample = send → receipt."""
    channel = "bench:b2"
    publisher = redis.Redis.from_url(ctx.redis_url)
    subscriber = redis.Redis.from_url(ctx.redis_url)
    pubsub = subscriber.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel)
    # Wait for the subscription to be live before the first publish.
    deadline = time.monotonic() + 10
    while publisher.pubsub_numsub(channel)[0][1] < 1:
        if time.monotonic() > deadline:
            raise TimeoutError("B2 subscriber never subscribed")
        pubsub.get_message(timeout=0.05)
    received: queue.SimpleQueue[float] = queue.SimpleQueue()
    stop = threading.Event()

    def listen() -> None:
        clock = time.perf_counter
        while not stop.is_set():
            message = pubsub.get_message(timeout=0.5)
            if message is not None and message["type"] == "message":
                received.put(clock())

    thread = threading.Thread(target=listen, name="b2-subscriber", daemon=True)
    thread.start()
    samples: list[float] = []
    try:
        for i in range(warmup + n):
            sent = time.perf_counter()
            publisher.publish(channel, b"%d" % i)
            got = received.get(timeout=5)
            if i >= warmup:
                samples.append(got - sent)
    finally:
        stop.set()
        thread.join(5)
        pubsub.close()
        publisher.close()
        subscriber.close()
    return samples


@contextlib.contextmanager
def bh_server(ctx: Context, pooled: bool = True):
    """uvicorn serving bench.bh_app on a free loopback port; yields the port, always stops it."""
    with psycopg.connect(ctx.database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_bh (id bigserial PRIMARY KEY, payload text NOT NULL)")
    env = {
        **os.environ,
        "DATABASE_URL": ctx.database_url,
        "BH_POOL": "1" if pooled else "0",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    with asgi_server("bench.bh_app:application", env=env) as port:
        yield port


def _bh(ctx: Context, n: int, warmup: int, pooled: bool) -> list[float]:
    with bh_server(ctx, pooled=pooled) as port:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"Content-Length": "0", "Connection": "keep-alive"}

        def once() -> None:
            conn.request("POST", "/commit", headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 204:
                raise RuntimeError(f"Bh view answered {response.status}")

        try:
            return measure(once, n, warmup)
        finally:
            conn.close()


def bh(ctx: Context, n: int = 1000, warmup: int = 100) -> list[float]:
    """POST /commit over one keep-alive connection: Django view, one committed row (pooled)."""
    return _bh(ctx, n, warmup, pooled=True)


def bh_unpooled(ctx: Context, n: int = 300, warmup: int = 30) -> list[float]:
    """Context only: the same view with Django's default CONN_MAX_AGE=0 (connect per request)."""
    return _bh(ctx, n, warmup, pooled=False)


BASELINES = {"B1": b1, "B2": b2, "Bh": bh}


def run(ctx: Context) -> str:
    b1_ = ctx.baseline("B1")
    rows = [
        Row("B1 psycopg INSERT 300 B + Redis PUBLISH", b1_, "B1", b1_),
        Row("B2 Redis publish → subscriber receive", ctx.baseline("B2"), "B1", b1_),
        Row("Bh Django view commit over HTTP (pooled)", ctx.baseline("Bh"), "B1", b1_),
    ]
    print("  measuring Bh without a pool (context) ...", flush=True)
    rows.append(Row("Bh, CONN_MAX_AGE=0 (connect per request)", summary(bh_unpooled(ctx)), "Bh", ctx.baseline("Bh"),
                    note="context only, not a baseline"))
    notes = (
        "B1: one sample = INSERT of a 300-byte row in autocommit (psycopg 3, one connection) then PUBLISH "
        "(redis-py). B2: PUBLISH on one connection, receipt timestamped in a subscriber thread on another. "
        "Bh: standalone Django (bench/bh_app.py, no middleware, raw SQL INSERT through django.db.connection "
        "with Django's psycopg pool) under uvicorn in a subprocess, POST over one keep-alive http.client "
        "connection. Ratios are to B1 (the last row: to pooled Bh). Postgres runs with fsync=off "
        "(throwaway embedded stack), so commits cost no disk flush."
    )
    return table(rows) + "\n\n" + notes
