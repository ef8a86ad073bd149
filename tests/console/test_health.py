"""/healthz reports the database, Redis, workers and the scheduler; 503 when degraded."""

import pytest

from console.devstack import EmbeddedRedis
from tests.conftest import wait_for


def test_it_reports_every_part_ok_with_a_real_worker_and_beat(start_worker, client):
    start_worker("health", beat=True)

    def healthy():
        response = client.get("/healthz")
        return response if response.status_code == 200 else None

    response = wait_for(healthy, 40, interval=0.5, message="all parts ok")
    report = response.json()
    assert report["status"] == "ok"
    database = report["checks"]["database"]
    # Iterative index scans (a filtered vector search that returns k rows) need pgvector 0.8.
    assert tuple(int(part) for part in database["pgvector"].split(".")[:2]) >= (0, 8)
    assert int(database["postgres"].split(".")[0]) >= 17
    assert report["checks"]["redis"]["status"] == "ok"
    assert report["checks"]["workers"]["workers"] == ["health@test"]
    assert report["checks"]["scheduler"]["status"] == "ok"


def test_it_is_degraded_without_workers(db, client):
    response = client.get("/healthz")
    assert response.status_code == 503
    report = response.json()
    assert report["status"] == "degraded"
    assert report["checks"]["database"]["status"] == "ok"
    assert report["checks"]["workers"]["status"] == "down"


@pytest.fixture
def own_redis(tmp_path, settings):
    redis_server = EmbeddedRedis(tmp_path / "redis", persist=False)
    settings.REDIS_URL = redis_server.start()
    yield redis_server
    redis_server.stop()


def test_it_reports_redis_down_when_redis_stops(db, client, own_redis):
    assert client.get("/healthz").json()["checks"]["redis"]["status"] == "ok"
    own_redis.stop()
    response = client.get("/healthz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["redis"]["status"] == "down"
    assert checks["workers"]["status"] == "unknown"
    assert checks["database"]["status"] == "ok"


def test_it_reports_the_database_down(db, client, monkeypatch):
    import psycopg

    class Unreachable:
        def cursor(self):
            raise psycopg.OperationalError("connection refused")

    monkeypatch.setattr("console.health.connection", Unreachable())
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == {"status": "down", "error": "connection refused"}
