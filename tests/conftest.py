"""Shared fixtures. Everything is real: the embedded Postgres and Redis started by
`make test` (python -m console.devstack test), Celery worker processes, an ASGI
server process, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from console.devstack import ROOT, free_port
from console.models import Role
from tests.factories import make_tenant, make_user

CHROMIUM = "/usr/bin/chromium"

if not os.environ.get("PROCTOR_TEST_STACK") and not os.environ.get("DATABASE_URL"):
    raise pytest.UsageError("Run the tests with `make test` (it starts Postgres and Redis), or set DATABASE_URL and REDIS_URL.")


@dataclass
class Cast:
    """Acme with one user per role, Globex with one member, and one user in both."""

    acme: object
    globex: object
    admin: object
    reviewer: object
    finance: object
    member: object
    outsider: object  # Globex only
    both: object  # Acme reviewer, Globex admin


@pytest.fixture(autouse=True)
def one_step_per_advance(settings):
    """Tests that step runs in this process see every step's outcome: a turn ends after one step.
    Worker processes keep the default turn, and tests/agents/test_turns.py tests turns."""
    settings.RUN_TURN_SECONDS = 0


@pytest.fixture
def cast(db) -> Cast:
    acme, globex = make_tenant("acme", "Acme"), make_tenant("globex", "Globex")
    return Cast(
        acme=acme,
        globex=globex,
        admin=make_user("ada", {acme: Role.ADMIN}),
        reviewer=make_user("rita", {acme: Role.REVIEWER}),
        finance=make_user("finn", {acme: Role.FINANCE}),
        member=make_user("max", {acme: Role.MEMBER}),
        outsider=make_user("gus", {globex: Role.MEMBER}),
        both=make_user("sam", {acme: Role.REVIEWER, globex: Role.ADMIN}),
    )


@pytest.fixture
def renewals(cast):
    """Acme's demo renewals agent, with the demo CRM it reads."""
    from agents.models import Agent
    from demo.seed import seed_demo_systems

    seed_demo_systems(cast.acme)
    return Agent.objects.get(tenant=cast.acme, slug="renewals")


@pytest.fixture
def client_for():
    def login(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return login


# --- Real processes against the test database ----------------------------------------------


def subprocess_env() -> dict[str, str]:
    """The environment for a web or worker process that must see the test database."""
    db = settings.DATABASES["default"]
    url = f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    return {**os.environ, "DATABASE_URL": url, "REDIS_URL": settings.REDIS_URL, "PROCTOR_DEV": "1",
            "PYTHONUNBUFFERED": "1"}


@dataclass
class Proc:
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
            except ProcessLookupError:
                pass
        try:  # pool children left behind by a SIGKILLed parent
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def spawn(argv: list[str], log: Path, env: dict[str, str] | None = None) -> Proc:
    handle = log.open("w")
    process = subprocess.Popen(argv, cwd=ROOT, env=env or subprocess_env(), stdout=handle, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    return Proc(process=process, log=log)


def at_once(*calls, expect: tuple[type[BaseException], ...] = (), timeout: float = 30) -> list:
    """A real race: each call in a thread of its own, all released together by a barrier, each thread
    closing its database connection. Their results in the order given; an exception of a type in
    ``expect`` is a result too, any other is raised here."""
    barrier, results = threading.Barrier(len(calls)), [None] * len(calls)

    def race(index, call):
        barrier.wait()
        try:
            results[index] = call()
        except BaseException as error:  # handed to the test's thread below
            results[index] = error
        finally:
            from django.db import connection

            connection.close()

    threads = [threading.Thread(target=race, args=item) for item in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, expect):
            raise result
    return results


@pytest.fixture
def anyio_backend():
    """The async tests (websockets through Channels' communicator) run on asyncio."""
    return "asyncio"


def wait_for(predicate, timeout: float = 30, interval: float = 0.1, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def behind_a_lock(work, *, message: str):
    """Start ``work()`` on a thread with a database connection of its own and return once that session waits for a
    lock the caller's transaction holds. Returns ``finished()``: joins the thread and gives what ``work`` returned
    (None if it raised)."""
    import threading

    from django.db import connection, connections

    outcome = {}

    def run():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            outcome["pid"] = cursor.fetchone()[0]
        try:
            outcome["result"] = work()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    wait_for(lambda: "pid" in outcome and waiting_for_a_lock(outcome["pid"]), 30, message=message)

    def finished():
        thread.join(30)
        return outcome.get("result")

    return finished


def waiting_for_a_lock(pid: int) -> bool:
    """Whether the database session ``pid`` (its ``pg_backend_pid()``) waits for a lock another holds."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return bool(row) and row[0] == "Lock"


@pytest.fixture
def start_worker(transactional_db, tmp_path):
    """Start real Celery worker processes (prefork) on the test database; stopped after the test."""
    from console.celery import app

    app.control.purge()  # step tasks an earlier test left in the broker are not this test's
    started: list[Proc] = []

    def start(name: str = "w1", *, concurrency: int = 2, beat: bool = False, env: dict | None = None) -> Proc:
        argv = [sys.executable, "-m", "celery", "-A", "console", "worker", "--loglevel", "INFO",
                "--concurrency", str(concurrency), "--hostname", f"{name}@test", "--without-mingle", "--without-gossip"]
        if beat:
            argv += ["--beat", "--schedule", str(tmp_path / f"beat-{name}")]
        proc = spawn(argv, tmp_path / f"{name}-{len(started)}.log", {**subprocess_env(), **(env or {})})
        started.append(proc)
        wait_for(lambda: "ready." in proc.output() or proc.process.poll() is not None, 60, message=f"worker {name}")
        assert proc.process.poll() is None, proc.output()
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture(scope="session")
def base_url(pytestconfig):
    """pytest-playwright's own, as it defines it (its plugin class's instance method, which pytest deprecates and
    warns about on every run)."""
    return pytestconfig.getoption("--base-url") or pytestconfig.getini("base_url") or None


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database, and at the end the connection pool emptied so it can be dropped."""
    yield
    from django.db import connections

    from console.telemetry import current_provider

    with django_db_blocker.unblock():
        if provider := current_provider():  # tests that import console.asgi set one up: flush its spans first
            provider.shutdown()
        with connections["default"].cursor() as cursor:  # connections other threads never handed back
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        for connection in connections.all():
            connection.close()  # hand back the connection the last test held, then close the pool
            connection.close_pool()


def start_console(log: Path, env: dict[str, str] | None = None) -> tuple[Proc, str]:
    """A console process (uvicorn: HTTP + websockets) on a free loopback port, ready; the caller stops it."""
    port = free_port()
    proc = spawn([sys.executable, "-m", "uvicorn", "console.asgi:application", "--host", "127.0.0.1",
                  "--port", str(port), "--lifespan", "off"], log, {**subprocess_env(), **env} if env else None)
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            return urllib.request.urlopen(url + "/login/", timeout=1).status == 200
        except OSError:
            return proc.process.poll() is not None

    wait_for(up, 60, message="the ASGI server")
    assert proc.process.poll() is None, proc.output()
    return proc, url


@pytest.fixture(scope="session")
def console_server(django_db_setup, django_db_blocker, tmp_path_factory):
    """The real ASGI app (uvicorn: HTTP + websockets) serving the test database."""
    proc, url = start_console(tmp_path_factory.mktemp("web") / "web.log")
    yield url
    proc.stop()


# --- Browser --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: under CI browser tests must run")
        pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium package)")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    }


@pytest.fixture(scope="session", autouse=True)
def _allow_orm_beside_playwright():
    # Playwright's sync API runs an event loop in the test thread; the ORM calls our
    # browser tests make (set-up, checks) are still plain synchronous code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"


@pytest.fixture(autouse=True)
def _fresh_redis_keys():
    """Heartbeats and canaries from one test must not make the next one look healthy."""
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter("proctor:heartbeat:*"):
        client.delete(key)
    yield


def pytest_collection_modifyitems(items):
    """Browser tests are marked, and run last: Playwright's sync API keeps an event loop running in the main
    thread for the rest of the session, where an async test (anyio) could no longer start its own."""
    for item in items:
        if "e2e" in item.path.parts:
            item.add_marker(pytest.mark.browser)
    items.sort(key=lambda item: "e2e" in item.path.parts)  # stable: each group keeps its order
