"""Runs the console's processes for `make run` and the test suite for `make test`.

`make run`: start the embedded stack, migrate, seed the demo data, then start web,
worker and beat (and the span relay, when OTLP export is on) as children with prefixed
logs; print the URL, logins and the time to ready; on Ctrl-C (or SIGTERM) stop the children, then Redis and Postgres, and
leave no process behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from console.devstack import ROOT, VAR, DevStack

COLOURS = {"web": "36", "worker": "35", "beat": "33", "relay": "37", "setup": "32", "stack": "34"}


def say(name: str, line: str) -> None:
    label = f"{name:<6}|"
    if sys.stdout.isatty():
        label = f"\033[{COLOURS.get(name.rstrip('0123456789'), '0')}m{label}\033[0m"
    try:
        print(f"{label} {line}", flush=True)
    except (OSError, ValueError):  # the terminal went away (SIGHUP): go on stopping everything regardless
        pass


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    reader: threading.Thread | None = field(default=None, repr=False)

    def start(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            self.argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1,
            start_new_session=True,  # its own process group: we stop it, with all its children
        )
        self.reader = threading.Thread(target=self._pipe_output, daemon=True)
        self.reader.start()

    def _pipe_output(self) -> None:
        assert self.process and self.process.stdout
        for line in self.process.stdout:
            say(self.name, line.rstrip())

    def exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def signal_group(self, sig: int) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, sig)

    def wait(self, timeout: float) -> bool:
        if self.process is None:
            return True
        try:
            self.process.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False


def run_step(name: str, argv: list[str], env: dict[str, str]) -> str:
    """Run a set-up command to completion, echo its output, fail loudly."""
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    for line in (result.stdout + result.stderr).splitlines():
        if line.strip() and not line.startswith("{"):
            say(name, line)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv[1:3])} failed with exit status {result.returncode}")
    return result.stdout


def wait_until_healthy(url: str, children: list[Child], timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    last: dict = {}
    while time.monotonic() < deadline:
        if any(child.exited() for child in children):
            raise SystemExit("a process exited during start-up; see its log above")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            last = json.load(error)
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.25)
    raise SystemExit(f"not healthy after {timeout:.0f}s: {last}")


def print_banner(base_url: str, demo: dict, health: dict, started_at: float) -> None:
    took = time.time() - started_at
    lines = [
        "",
        f"Proctor is ready at {base_url}/  (ready in {took:.1f}s)",
        f"health: {base_url}/healthz -> {health.get('status')}",
        "",
        "Demo logins (password for all: %s)" % demo["password"],
    ]
    lines += [f"  {u['username']:<8} {u['describe']}" for u in demo["users"]]
    lines += [
        "",
        f"API token for {demo['api_token']['tenant']} (send as 'Authorization: Bearer <token>'):",
        f"  {demo['api_token']['token']}",
        f"  try: curl -H 'Authorization: Bearer {demo['api_token']['token']}' {base_url}/api/v1/whoami",
        "",
        "Ctrl-C stops web, worker, beat, Redis and Postgres.",
        "",
    ]
    print("\n".join(lines), flush=True)


RUN_LOCK = VAR / "console.pid"


def _already_running() -> int | None:
    """The pid of a `make run` still running in this checkout, if any (its stack must not be touched)."""
    with contextlib.suppress(OSError, ValueError):
        pid = int(RUN_LOCK.read_text().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            if b"console.devstack" in cmdline.read() and pid != os.getpid():
                return pid
    return None


def worker_processes() -> int:
    """Worker processes `make run` starts (WORKER_PROCESSES): one per core by default, up to four. A
    step is interpreter-bound between its waits, so one process uses one core however many threads it
    runs (bench P2: a second process on a second core carries almost twice the runs)."""
    raw = os.environ.get("WORKER_PROCESSES", "")
    wanted = int(raw) if raw.isascii() and raw.isdigit() else min(os.cpu_count() or 1, 4)
    return max(1, wanted)


def worker_children(python: str) -> list[Child]:
    count = worker_processes()
    names = ["worker"] if count == 1 else [f"worker{number}" for number in range(1, count + 1)]
    return [Child(name, [python, "-m", "celery", "-A", "console", "worker", "--loglevel", "INFO",
                         "--hostname", f"{name}@%h"]) for name in names]


def run_console(stack: DevStack) -> int:
    started_at = float(os.environ.get("PROCTOR_T0") or time.time())
    port = int(os.environ.get("PORT", "8000"))
    if (other := _already_running()) is not None:
        say("stack", f"Proctor is already running from this directory (pid {other}); stop it with Ctrl-C "
                     f"there, or `kill -INT {other}`.")
        return 1
    VAR.mkdir(parents=True, exist_ok=True)
    RUN_LOCK.write_text(str(os.getpid()))
    python = sys.executable
    children = [
        Child("web", [python, "-m", "uvicorn", "console.asgi:application", "--host", os.environ.get("HOST", "127.0.0.1"),
                      "--port", str(port), "--lifespan", "off", "--no-access-log"]),
        *worker_children(python),
        Child("beat", [python, "-m", "celery", "-A", "console", "beat", "--loglevel", "INFO",
                       "--schedule", str(VAR / "celerybeat-schedule")]),
    ]
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):  # spans go to an OTLP backend: its relay, off the workers
        children.append(Child("relay", [python, "manage.py", "relay_spans"]))
    stopping = False

    def on_term(signum, frame):  # SIGTERM, and SIGHUP (the terminal closed), behave like Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    # Started in the background by a script, SIGINT arrives ignored; Ctrl-C and `kill -INT` must still stop us.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        say("stack", "starting PostgreSQL and Redis" if not os.environ.get("DATABASE_URL") else "using DATABASE_URL")
        urls = stack.__enter__()
        say("stack", f"postgres {urls['DATABASE_URL']}  redis {urls['REDIS_URL']}")
        env = {**os.environ, **urls, "PYTHONUNBUFFERED": "1"}
        # A developer's machine (generated secret key, plain-http cookies, static files from source); DEBUG stays
        # off unless set, so a failing page is the plain 500 page and its traceback is in the web log.
        env.setdefault("PROCTOR_DEV", "1")
        run_step("setup", [python, "manage.py", "migrate", "--noinput"], env)
        demo = json.loads(run_step("setup", [python, "manage.py", "seed_demo", "--json"], env).splitlines()[-1])
        for child in children:
            child.start(env)
        base_url = f"http://127.0.0.1:{port}"
        health = wait_until_healthy(f"{base_url}/healthz", children)
        print_banner(base_url, demo, health, started_at)
        while not any(child.exited() for child in children):
            time.sleep(0.5)
        crashed = [child.name for child in children if child.exited()]
        say("stack", f"{', '.join(crashed)} exited; stopping everything")
        return 1
    except KeyboardInterrupt:
        stopping = True
        return 0
    except SystemExit as error:
        say("stack", str(error))
        return 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # a second Ctrl-C must not leave orphans
            signal.signal(sig, signal.SIG_IGN)
        if stopping:
            say("stack", "stopping")
        for child in children:
            child.signal_group(signal.SIGTERM)
        for child in children:
            if not child.wait(20):
                child.signal_group(signal.SIGKILL)
                child.wait(5)
            child.signal_group(signal.SIGKILL)  # pool processes a dying parent left behind
        stack.__exit__(None, None, None)
        with contextlib.suppress(OSError):
            RUN_LOCK.unlink()
        say("stack", "stopped")


def run_tests(stack: DevStack, cmd: list[str]) -> int:
    with stack as urls:
        env = {**os.environ, **urls, "PROCTOR_TEST_STACK": "1"}
        env.setdefault("PROCTOR_DEV", "1")  # development settings (static files from source, no TLS cookies)
        try:
            return subprocess.call(cmd, cwd=ROOT, env=env)
        except KeyboardInterrupt:
            return 130
