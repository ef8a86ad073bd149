"""P3: click-to-resume. A reviewer's Approve POST → commit → the worker wakes → the tool runs →
the first websocket frame carrying the tool's result reaches the requester's run socket.

Real parts throughout: the ASGI app under uvicorn (HTTP + Channels websockets), a Celery worker
process (threads pool), Postgres and Redis of the bench stack. Nothing polls on the path: the
decision enqueues the step on commit, the worker publishes on commit, the socket pushes. One
sample per run: a demo renewal run is driven to `waiting_for_human`, the requester's socket is
open and caught up, then the clock starts at the POST and stops at the frame whose events include
`tool.result`. The ratio is to Bh + B2 from the same run (an HTTP commit plus a Redis hop).

The POST is what the queue page sends: the page has already fetched the pane of the request a decision
moves to (the detail view's GET, before the clock starts) and says so (``prefetched=<id>``), so the
answer is the decided note alone. Another request stays open all along, so every decision has one to
move to. The old path (no prefetch: the POST renders the next request's whole pane) is measured beside
it, sample for sample, in its own rows.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

from bench.agent_loop import ROOT, Worker, _django, log_path
from bench.harness import Context, Row, summary, summed, table

SAMPLES = int(os.environ.get("P3_SAMPLES", "100"))  # the p99 of fewer is close to their maximum; fewer to try a change
GOAL = "Prepare the renewal plan for account ACME-042 and email it to its success manager"


def _web(ctx: Context, log: Path):
    from console.devstack import free_port, wait_for_port

    port = free_port()
    # Production settings, as docker-compose runs them (DEBUG off: hashed static files from collectstatic);
    # plain HTTP on loopback, so no TLS-only cookies.
    env = {**os.environ, "DATABASE_URL": ctx.database_url, "REDIS_URL": ctx.redis_url, "DEBUG": "0",
           "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-secret-key"), "SECURE_COOKIES": "0",
           "ALLOWED_HOSTS": "127.0.0.1,localhost", "STATIC_ROOT": str(log.parent / "bench-static")}
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "console.asgi:application", "--host", "127.0.0.1",
                             "--port", str(port), "--lifespan", "off", "--no-access-log", "--log-level", "warning"],
                            cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    wait_for_port(port, 60)
    return proc, port


def _session(user) -> str:
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def _cast():
    from django.contrib.auth import get_user_model

    from agents.models import Agent
    from console.models import Membership, Role, Tenant
    from demo.seed import seed_demo_systems

    tenant, _ = Tenant.objects.get_or_create(slug="acme", defaults={"name": "Acme"})
    users = {}
    for name, role in (("p3-requester", Role.MEMBER), ("p3-reviewer", Role.REVIEWER)):
        users[name], _ = get_user_model().objects.get_or_create(username=name)
        Membership.objects.get_or_create(user=users[name], tenant=tenant, defaults={"role": role})
    seed_demo_systems(tenant)
    return tenant, Agent.objects.get(tenant=tenant, slug="renewals"), users["p3-requester"], users["p3-reviewer"]


def _waiting(run_id: int, timeout: float = 30):
    from agents.models import Run

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = Run.objects.get(pk=run_id)
        if run.status == "waiting_for_human":
            return run
        time.sleep(0.02)
    raise RuntimeError(f"run {run_id} never waited for approval")


def one_sample(port: int, tenant, agent, requester, reviewer_cookie: str, requester_cookie: str,
               csrf: str, spare, prefetch: bool = True) -> tuple[float, float]:
    """(POST → frame with the tool's result, POST → its response) in seconds. ``spare``: the oldest request
    left open, the one the decision moves to (the POST comes from the queue sorted oldest first, where the
    decided one is last); with ``prefetch``, its pane is fetched before the clock starts, as the queue page
    does, and the POST says so."""
    from websockets.sync.client import connect

    from agents.services import run_start

    run = _waiting(run_start(tenant=tenant, agent=agent, goal=GOAL, requested_by=requester).pk)
    approval = run.approval_requests.get()
    reviewer = {"Cookie": f"sessionid={reviewer_cookie}; csrftoken={csrf}", "HX-Request": "true",
                "Referer": f"http://127.0.0.1:{port}/", "Origin": f"http://127.0.0.1:{port}"}
    connection = http_client(port)
    if prefetch:
        connection.request("GET", f"/t/{tenant.slug}/approvals/{spare.pk}/", headers=reviewer)
        pane = connection.getresponse()
        if pane.status != 200 or f'data-approval-id="{spare.pk}"'.encode() not in pane.read():
            raise RuntimeError(f"the prefetch of the next pane answered {pane.status}")
    # One event back: the socket's catch-up sends it, so the clock starts on a socket that is open and idle.
    url = f"ws://127.0.0.1:{port}/ws/t/{tenant.slug}/runs/{run.number}/?after={run.event_seq - 1}"
    with connect(url, additional_headers={"Cookie": f"sessionid={requester_cookie}",
                                          "Origin": f"http://127.0.0.1:{port}"}) as socket:
        socket.recv(timeout=15)
        body = urlencode({"decision": "approve", **({"prefetched": spare.pk} if prefetch else {})})
        started = time.perf_counter()
        connection.request("POST", f"/t/{tenant.slug}/approvals/{approval.pk}/decision/", body=body, headers={
            **reviewer, "X-CSRFToken": csrf, "Content-Type": "application/x-www-form-urlencoded",
            "HX-Current-URL": f"http://127.0.0.1:{port}/t/{tenant.slug}/approvals/?sort=oldest&id={approval.pk}"})
        response = connection.getresponse()
        response.read()
        answered = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"the approve POST answered {response.status}")
        if prefetch != bool(response.getheader("HX-Trigger")):  # the path measured is the one named
            raise RuntimeError(f"the approve POST {'ignored' if prefetch else 'took'} the prefetched pane")
        while True:
            frame = json.loads(socket.recv(timeout=15))
            if any(event["type"] == "tool.result" for event in frame.get("events", [])):
                return time.perf_counter() - started, answered


def celery_hop(samples: int = 300) -> list[float]:
    """Enqueue the empty bench task → the worker runs it → its Redis PUBLISH reaches us (seconds)."""
    from bench.tasks import echo
    from console.health import redis_client

    subscriber = redis_client(timeout=10).pubsub(ignore_subscribe_messages=True)
    subscriber.subscribe("bench-echo")
    times = []
    for i in range(samples + 20):
        started = time.perf_counter()
        echo.delay("bench-echo")
        while subscriber.get_message(timeout=10) is None:
            pass
        if i >= 20:
            times.append(time.perf_counter() - started)
    subscriber.close()
    return times


def parts_alone(tenant, agent, requester, reviewer, samples: int = 30) -> dict[str, list[float]]:
    """The path's parts measured one at a time in this process, nothing else running: the decision
    (the service, no HTTP), the tool step (claim, email.send, commit; the turn ends right after, so it
    also enqueues the next step) and the run socket's render of the frame that shows both."""
    from django.conf import settings

    from agents.live import render_run_update
    from agents.models import Run
    from agents.selectors import run_get
    from agents.services import run_advance, run_start
    from approvals.services import approval_decision_take

    clock, times = time.perf_counter, {"decision": [], "tool step": [], "frame render": []}
    turn_seconds = settings.RUN_TURN_SECONDS
    try:
        for i in range(samples + 3):
            settings.RUN_TURN_SECONDS = turn_seconds
            run = run_start(tenant=tenant, agent=agent, goal=GOAL, requested_by=requester)
            while run_advance(run_id=run.pk, worker="bench") not in ("waiting_for_human", "completed", "failed"):
                pass
            run = Run.objects.get(pk=run.pk)
            if run.status != "waiting_for_human":
                raise RuntimeError(f"run {run.pk} ended {run.status} instead of waiting for approval")
            seen = run.event_seq
            started = clock()
            approval_decision_take(approval=run.approval_requests.get(), decision="approve", actor=reviewer)
            decided = clock()
            settings.RUN_TURN_SECONDS = 0
            if run_advance(run_id=run.pk, worker="bench") != "tool_done":
                raise RuntimeError(f"run {run.pk}: the approved call did not run")
            stepped = clock()
            frame = render_run_update(run_get(tenant=tenant, run_id=run.pk), seen, can_decide=False)
            rendered = clock()
            if not any(event["type"] == "tool.result" for event in frame["events"]):
                raise RuntimeError(f"run {run.pk}: the frame has no tool result")
            if i >= 3:
                times["decision"].append(decided - started)
                times["tool step"].append(stepped - decided)
                times["frame render"].append(rendered - stepped)
    finally:
        settings.RUN_TURN_SECONDS = turn_seconds
    return times


def post_alone(tenant, agent, requester, reviewer,
               samples: int = 30) -> dict[str, tuple[list[float], list[float], int, int]]:
    """The approve POST alone in this process, nothing else running: the same view through Django's test
    client (no HTTP, no socket), as htmx sends it from the queue's detail pane, another request still open
    so the pane moves on to it; by turns with the next pane prefetched (fetched before the clock starts;
    the answer is the note alone) and without (the old path: the next pane rendered). For each, keyed
    "prefetched" and "whole pane": its times and this process's CPU times (seconds: on a busy machine
    the CPU time drifts less than the time) and, of its last one, its SQL statements and those of the
    decision's transaction (a count: the same on any machine)."""
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    from agents.models import Run
    from agents.services import run_advance, run_start

    waiting = []
    for _ in range(2 * (samples + 3) + 1):
        run = run_start(tenant=tenant, agent=agent, goal=GOAL, requested_by=requester)
        while run_advance(run_id=run.pk, worker="bench") not in ("waiting_for_human", "completed", "failed"):
            pass
        waiting.append(Run.objects.get(pk=run.pk).approval_requests.get())
    client, queue = Client(HTTP_HOST="localhost"), f"/t/{tenant.slug}/approvals/"
    paths = {"prefetched": ([], [], []), "whole pane": ([], [], [])}  # times, CPU times, last statements
    with override_settings(ALLOWED_HOSTS=["localhost"]):
        client.force_login(reviewer)
        # Oldest first: each decision moves to the request after it; the last stays open, so every pane moves on.
        for i, (approval, after) in enumerate(zip(waiting, waiting[1:])):
            prefetch = i % 2 == 0
            times, cpu, last = paths["prefetched" if prefetch else "whole pane"]
            current = f"http://localhost{queue}?sort=oldest&id={approval.pk}"
            if prefetch and client.get(f"{queue}{after.pk}/", HTTP_HX_REQUEST="true").status_code != 200:
                raise RuntimeError("the prefetch of the next pane failed")
            started, cpu_started = time.perf_counter(), time.process_time()
            with CaptureQueriesContext(connection) as queries:
                response = client.post(f"{queue}{approval.pk}/decision/",
                                       {"decision": "approve", **({"prefetched": after.pk} if prefetch else {})},
                                       HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL=current)
            if response.status_code != 200 or prefetch != response.has_header("HX-Trigger"):
                raise RuntimeError(f"the approve POST answered {response.status_code}, not the path measured")
            if i >= 6:
                times.append(time.perf_counter() - started)
                cpu.append(time.process_time() - cpu_started)
            last[:] = [q["sql"] for q in queries.captured_queries]
    measured = {}
    for name, (times, cpu, statements) in paths.items():
        begin = next(i for i, sql in enumerate(statements) if "FOR UPDATE" in sql)
        commit = next(i for i, sql in enumerate(statements) if sql.upper().startswith("COMMIT") and i > begin)
        measured[name] = times, cpu, len(statements), commit - begin + 1
    return measured


def http_client(port: int) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=10)


def run(ctx: Context) -> str:
    _django(ctx)
    from django.middleware.csrf import _get_new_csrf_string

    from agents.services import run_start
    from approvals.models import OPEN, ApprovalRequest
    from console.celery import app

    app.control.purge()
    tenant, agent, requester, reviewer = _cast()
    # The queue oldest first, the decided request the newest: every decision moves the pane to the oldest
    # open request, left open to the end (made here if the tenant has none open).
    spare = ApprovalRequest.objects.for_tenant(tenant).filter(status__in=OPEN).order_by("created_at").first()
    web, port = _web(ctx, log_path("bench-web-p3.log"))
    worker = Worker(ctx, pool="threads", concurrency=4, log=log_path("bench-worker-p3.log"), include="bench.tasks")
    try:
        cookies = _session(reviewer), _session(requester)
        csrf = _get_new_csrf_string()
        if spare is None:
            spare = _waiting(run_start(tenant=tenant, agent=agent, goal=GOAL, requested_by=requester).pk
                             ).approval_requests.get()
        print(f"  P3: {SAMPLES} approvals with the next pane prefetched and {SAMPLES} without, by turns, each: "
              "POST → tool ran → frame on the requester's socket ...", flush=True)
        for prefetch in (True, False, True):  # warm-up: connections, imports, templates
            one_sample(port, tenant, agent, requester, *cookies, csrf, spare, prefetch)
        samples, old_path = [], []
        for _ in range(SAMPLES):
            samples.append(one_sample(port, tenant, agent, requester, *cookies, csrf, spare, prefetch=True))
            old_path.append(one_sample(port, tenant, agent, requester, *cookies, csrf, spare, prefetch=False))
        print("  P3 floors: the Celery hop ...", flush=True)
        hop = summary(celery_hop())
    finally:
        worker.stop()
        web.terminate()
        web.wait(20)
    print("  P3 floors: the decision, the tool step and the frame render, each alone ...", flush=True)
    parts = {name: summary(times) for name, times in parts_alone(tenant, agent, requester, reviewer).items()}
    posts = post_alone(tenant, agent, requester, reviewer)
    app.control.purge()  # the steps the in-process runs enqueued
    bh, b2 = ctx.baseline("Bh"), ctx.baseline("B2")
    reference = summed(bh, b2)
    floor = summed(bh, hop, parts["decision"], parts["tool step"], parts["frame render"])

    def post_rows(name: str, measured: list[tuple[float, float]], alone: str, answer: str) -> list[Row]:
        times, cpu, statements, in_decision = posts[alone]
        return [Row(f"{name}: POST → tool ran → frame on the requester's socket", summary([t for t, _ in measured]),
                    "(Bh+B2)", reference,
                    note="target p50 ≤ 20×, p99 ≤ 30× (BENCHMARKS.md)" if alone == "prefetched" else ""),
                Row(f"{name}, of which: the approve POST until its response ({answer})",
                    summary([answered for _, answered in measured]), "(Bh+B2)", reference,
                    note=f"{statements} SQL statements, {in_decision} of them the decision's transaction"),
                Row(f"{name}, floor: the approve POST alone (the view, in process, no HTTP)", summary(times), "(Bh+B2)",
                    reference, note=f"CPU p50 {summary(cpu).p50_ms:.1f} ms")]

    rows = [*post_rows("P3", samples, "prefetched", "the decided note; the page has the pane"),
            *post_rows("P3 old path, no prefetch", old_path, "whole pane", "the next request's pane rendered"),
            Row("floor: the decision alone (the service, in process)", parts["decision"], "(Bh+B2)", reference),
            Row("floor: the Celery hop alone (enqueue → empty task → publish)", hop, "(Bh+B2)", reference),
            Row("floor: the tool step alone (claim, email.send, commit)", parts["tool step"], "(Bh+B2)", reference),
            Row("floor: the run socket's frame render alone", parts["frame render"], "(Bh+B2)", reference),
            Row("sum of the four floors + Bh", floor, "(Bh+B2)", reference, note="the path without any contention"),
            Row("Bh + B2 (same run)", reference, "(Bh+B2)", reference)]
    notes = ("uvicorn serving console.asgi (HTTP and Channels websockets) with production settings (DEBUG off), one "
             "Celery worker process (threads pool, 4), "
             "the decision POSTed as htmx does from the queue's detail pane, another request open for the pane to move "
             "to. P3: the page has fetched that request's pane ahead (the detail view's GET, before the clock starts) "
             "and the POST says so (prefetched=<id>), so its answer is the decided note alone; the old path (no "
             "prefetch: the POST reads and renders the next pane on the web process, beside the run socket's frame "
             "render) is measured by turns with it, sample for sample. On the path: the decision's transaction "
             "(row lock on the request, decision row, audit, run event, run → queued) and its on-commit enqueue (the "
             "requester has no email address and the tenant no webhook, so no notice task: one for a requester with an "
             "address would add an enqueue on the web process, its task held a second); the "
             "worker claims the lease, runs email.send in the step's transaction, commits and publishes; the run "
             "socket reads the new events and pushes them. No polling anywhere on it. The floor rows measure parts of "
             "that path one at a time with nothing else running: the decision service in the bench process (no "
             "HTTP); an empty Celery task's round trip through the same worker; the approved call's step in process "
             "(its turn ends right after, so it also enqueues the next step); the run socket's render of the frame "
             "with the tool's result. Their sum with Bh (the POST's own floor) is what the path costs on an idle "
             f"machine: {floor.p50 / reference.p50:.1f}× (Bh+B2) at p50, against the target of 20×. The POST alone "
             "(the same view through Django's test client, in process, by turns with and without the prefetch) "
             "is a floor of its POST row; the SQL statements are counted on its last sample, from the request's "
             "session to the answer's last read, and the decision's from its row lock to its commit.")
    return table(rows) + "\n\n" + notes
