"""The `proctor` CLI against a live server process (uvicorn) and a real worker: every command, --json, exit codes,
`runs watch` following a run until it waits for a person and until it ends."""

import json
import os
import stat
import subprocess
import sys
import urllib.request

import pytest

from console.devstack import ROOT
from console.services import api_token_create
from demo.seed import seed_demo_systems
from tests.factories import RENEWAL_GOAL, make_looper

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def proctor(console_server, tmp_path, cast):
    """Run the CLI as a user would (its own process), logged in with a token of ``cast.admin``."""
    env = {**os.environ, "PROCTOR_CONFIG": str(tmp_path / "proctor" / "config.json")}
    env.pop("PROCTOR_URL", None), env.pop("PROCTOR_TOKEN", None)

    def run(*argv, input=None, check=None):
        done = subprocess.run([sys.executable, "-m", "proctor_cli", *argv], cwd=ROOT, env=env, input=input,
                              capture_output=True, text=True, timeout=90)
        if check is not None:
            assert done.returncode == check, (argv, done.returncode, done.stdout, done.stderr)
        return done

    run.env, run.url = env, console_server
    return run


def test_login_keeps_the_token_readable_by_its_owner_only(proctor, cast):
    assert proctor("runs", "list", check=3).stderr.startswith("proctor: Not logged in")
    secret = api_token_create(tenant=cast.acme, name="cli", actor=cast.admin).secret
    bad = proctor("login", "--url", proctor.url, "--token", "prt_wrong")
    assert bad.returncode == 3 and "401" in bad.stderr
    done = proctor("login", "--url", proctor.url, input=secret + "\n", check=0)  # the token from stdin
    assert "Logged in to Acme as ada" in done.stdout
    config = proctor.env["PROCTOR_CONFIG"]
    assert stat.S_IMODE(os.stat(config).st_mode) == 0o600 and json.load(open(config))["token"] == secret


def test_runs_and_approvals_from_start_to_end(proctor, cast, start_worker):
    seed_demo_systems(cast.acme)
    start_worker()
    proctor("login", "--url", proctor.url, "--token", api_token_create(tenant=cast.acme, name="cli",
                                                                       actor=cast.admin).secret, check=0)
    agents = json.loads(proctor("agents", "list", "--json", check=0).stdout)
    assert "renewals" in [a["slug"] for a in agents]
    assert "renewals" in proctor("agents", "list", check=0).stdout.split("\n", 1)[1]

    started = proctor("runs", "start", "renewals", RENEWAL_GOAL, "--watch", "--interval", "0.2", check=10)
    assert "run.created" in started.stdout and "waiting_for_human" in started.stdout
    assert "Waits for a person" in started.stdout
    number = json.loads(proctor("runs", "list", "--json", check=0).stdout)[0]["number"]

    for _ in range(6):  # approve what it waits for until it ends
        waiting = json.loads(proctor("approvals", "list", "--json", check=0).stdout)
        assert waiting, "the run waits, so something is open"
        table = proctor("approvals", "list", check=0).stdout
        assert table.startswith("ID") and str(waiting[0]["id"]) in table
        shown = proctor("approvals", "show", str(waiting[0]["id"]), check=0).stdout
        assert f"{waiting[0]['tool'] or waiting[0]['kind']}" in shown
        proctor("approvals", "approve", str(waiting[0]["id"]), "--note", "fine", check=0)
        again = proctor("approvals", "approve", str(waiting[0]["id"]))
        assert again.returncode == 1 and "409" in again.stderr
        watched = proctor("runs", "watch", str(number), "--interval", "0.2")
        assert watched.returncode in (0, 10), watched.stderr
        if watched.returncode == 0:
            break
    assert "Answer:" in watched.stdout and f"-- run #{number} completed" in watched.stdout
    shown = json.loads(proctor("runs", "show", str(number), "--json", check=0).stdout)
    assert shown["status"] == "completed"
    assert "Completed" in proctor("runs", "show", str(number), check=0).stdout or "completed" in shown["status"]


def test_steering_a_run_and_the_exit_codes(proctor, cast, start_worker):
    make_looper(cast.acme)
    proctor("login", "--url", proctor.url, "--token", api_token_create(tenant=cast.acme, name="cli",
                                                                       actor=cast.admin).secret, check=0)
    run = json.loads(proctor("runs", "start", "looper", "Call noop 500 times", "--json", check=0).stdout)
    number = str(run["number"])
    paused = json.loads(proctor("runs", "pause", number, "--json", check=0).stdout)
    assert paused["number"] == run["number"]
    proctor("runs", "say", number, "Stop after the next call.", check=0)
    proctor("runs", "resume", number)  # 0, or 1 when it had not paused yet: both are answers, not crashes
    cancelled = proctor("runs", "cancel", number, check=0)
    assert "Status:" in cancelled.stdout
    assert proctor("runs", "show", "99999").returncode == 4
    assert proctor("runs", "start", "nope", "goal").returncode == 1
    assert proctor("runs", "frobnicate").returncode == 2
    assert proctor("approvals", "edit", "1", "--arguments", "{not json").returncode == 2
    narrow = api_token_create(tenant=cast.acme, name="ro", actor=cast.admin, scopes=["runs:read"]).secret
    proctor.env["PROCTOR_TOKEN"], proctor.env["PROCTOR_URL"] = narrow, proctor.url
    refused = proctor("runs", "cancel", number, "--json")
    assert refused.returncode == 3 and json.loads(refused.stderr)["code"] == "missing_scope"


def test_memories_and_costs_work_where_the_server_has_them(proctor, cast):
    proctor("login", "--url", proctor.url, "--token", api_token_create(tenant=cast.acme, name="cli",
                                                                       actor=cast.admin).secret, check=0)
    paths = json.load(urllib.request.urlopen(proctor.url + "/api/v1/openapi.json"))["paths"]
    for argv, path in [(("memories", "list"), "/api/v1/memories"), (("costs", "summary"), "/api/v1/costs/summary")]:
        done = proctor(*argv)
        if path in paths:
            assert done.returncode == 0, done.stderr
        else:
            assert done.returncode == 6 and f"404 for {path}" in done.stderr
