"""The embedded stack: start, readiness, clean stop, recovery after a crash."""

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import psutil
import pytest
import redis

from console.devstack import ROOT, DevStack, EmbeddedPostgres, EmbeddedRedis, free_port
from tests.conftest import wait_for


def processes_using(path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue  # exited, only not yet reaped by its parent (here, whatever reaps orphans): it holds nothing
            if str(path) in " ".join(proc.info["cmdline"] or []) or str(path) in (proc.info["cwd"] or ""):
                found.append(proc)
        except psutil.Error:
            pass
    return found


@pytest.fixture
def stack_dir(tmp_path):
    yield tmp_path / "stack"
    for proc in processes_using(tmp_path / "stack"):
        proc.kill()


@pytest.fixture
def no_external_servers(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)


def test_it_starts_real_servers_and_stops_leaving_no_process(stack_dir, no_external_servers):
    stack = DevStack(stack_dir)
    urls = stack.start()
    try:
        assert stack.postgres.sql("SELECT extname FROM pg_extension WHERE extname = 'vector'", "proctor") == [("vector",)]
        assert redis.Redis.from_url(urls["REDIS_URL"]).ping()
        assert processes_using(stack_dir)
    finally:
        stack.stop()
    assert processes_using(stack_dir) == []


def test_it_recovers_after_a_crash_that_left_servers_and_stale_files(stack_dir, no_external_servers):
    first = DevStack(stack_dir)
    first.start()
    # The crash: the supervisor dies without stopping anything; Postgres keeps running,
    # Redis is killed and leaves its pid file behind.
    os.kill(first.redis.process.pid, signal.SIGKILL)
    first.redis.process.wait()
    (stack_dir / "redis" / "redis.pid").write_text("999999")

    second = DevStack(stack_dir)
    urls = second.start()
    try:
        assert second.postgres.sql("SELECT 1") == [(1,)]
        assert redis.Redis.from_url(urls["REDIS_URL"]).ping()
    finally:
        second.stop()
    assert processes_using(stack_dir) == []


def test_a_stale_postmaster_pid_file_is_not_fatal(tmp_path):
    postgres = EmbeddedPostgres(tmp_path / "pg", fast_unsafe=True)
    postgres.start()
    postgres.stop()
    (tmp_path / "pg" / "postmaster.pid").write_text(f"{os.getpid()}\n{tmp_path}/pg\n")  # a live pid, not postgres
    try:
        postgres.start()
        assert postgres.sql("SELECT 1") == [(1,)]
    finally:
        postgres.stop()
    assert processes_using(tmp_path / "pg") == []


def test_data_of_an_older_postgres_major_is_set_aside_not_lost(tmp_path, capfd):
    old = tmp_path / "pg"
    old.mkdir()
    (old / "PG_VERSION").write_text("16\n")
    (old / "base").mkdir()
    postgres = EmbeddedPostgres(old, fast_unsafe=True)
    try:
        postgres.start()
        assert postgres.sql("SHOW server_version_num")[0][0] >= "170000"
    finally:
        postgres.stop()
    kept = [path for path in tmp_path.iterdir() if path.name.startswith("pg-16-")]
    assert len(kept) == 1 and (kept[0] / "base").is_dir()
    assert "held PostgreSQL 16 data" in capfd.readouterr().err


def test_redis_data_persists_across_restarts_for_make_run(tmp_path):
    server = EmbeddedRedis(tmp_path / "r")
    redis.Redis.from_url(server.start()).set("kept", "yes")
    server.stop()
    try:
        assert redis.Redis.from_url(server.start()).get("kept") == b"yes"
    finally:
        server.stop()


def _ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what a script's `make run &` hands down


@pytest.mark.parametrize("stop", ["ctrl_c", "terminal_closed_after_background_start"])
def test_make_run_reaches_ready_serves_the_console_and_stops_cleanly_on_ctrl_c(tmp_path, stop):
    """What `make run` does, end to end, in a var/ of its own. Ctrl-C reaches the terminal's whole
    foreground process group; closing the terminal sends SIGHUP to it; a script that starts us in the
    background hands SIGINT down ignored."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "PROCTOR_TEST_STACK"}}
    env.update({"PORT": str(port), "PROCTOR_VAR_DIR": str(tmp_path / "var"), "WORKER_CONCURRENCY": "1"})
    log = tmp_path / "run.log"
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "console.devstack", "run"], cwd=ROOT, env=env,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                   preexec_fn=_ignore_sigint if stop != "ctrl_c" else None)
    try:
        wait_for(lambda: "Proctor is ready" in log.read_text() or process.poll() is not None, 120, interval=0.5,
                 message="make run to be ready")
        output = log.read_text()
        assert "Proctor is ready" in output, output
        assert "rita" in output and "proctor-demo" in output and "prt_" in output
        base = f"http://127.0.0.1:{port}"
        assert urllib.request.urlopen(base + "/login/").status == 200
        assert urllib.request.urlopen(base + "/healthz").status == 200
        # A worker process per core (up to four): each beats its own heartbeat.
        expected = sorted(f"worker{n}@" for n in range(1, min(os.cpu_count() or 1, 4) + 1)) if (os.cpu_count() or 1) > 1 else ["worker@"]
        beating = lambda: sorted(name.split("@")[0] + "@" for name in json.loads(  # noqa: E731
            urllib.request.urlopen(base + "/healthz").read())["checks"]["workers"]["workers"])
        wait_for(lambda: beating() == expected, 30, interval=0.5, message=f"heartbeats of {expected}")
        # DEBUG is off under `make run`: the plain page, not Django's debug page listing our URL patterns.
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(base + "/no-such-page/")
        page = missing.value.read().decode()
        assert missing.value.code == 404 and "<h1>Not found</h1>" in page and "URLconf" not in page
        if stop == "ctrl_c":
            os.killpg(process.pid, signal.SIGINT)
        else:
            second = subprocess.run([sys.executable, "-m", "console.devstack", "run"], cwd=ROOT, env=env,
                                    capture_output=True, text=True, timeout=60)
            assert second.returncode == 1 and "already running" in second.stdout  # and it touched nothing
            assert urllib.request.urlopen(base + "/healthz").status == 200
            os.killpg(process.pid, signal.SIGHUP)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert "stopped" in log.read_text()
    assert processes_using(tmp_path / "var") == []
    stray = [p for p in processes_using(ROOT) if "celery" in " ".join(p.cmdline()) and str(port) in " ".join(p.cmdline())]
    assert stray == []
