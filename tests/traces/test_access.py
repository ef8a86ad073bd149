"""Every traces page, endpoint and socket, in one matrix: an outsider gets 404 (in our tenant, and in his own
with our numbers); a role the section's rule leaves out gets 403 and changes nothing. Today every role may
open traces and start runs (console.roles), so the matrix narrows the rule table to prove each endpoint asks
it: traces without finance, then runs without finance (a replay starts runs: it needs both)."""

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.urls import reverse
from django.utils import timezone

from agents.services import run_start
from approvals.models import ApprovalRequest
from console.models import Role
from console.roles import EVERYONE, SECTION_ROLES
from console.services import api_token_create
from tests.factories import make_trace
from traces.models import Replay, ReplayBatch, Span


@pytest.fixture
def world(cast, looper, traced_run):
    replay_run = run_start(tenant=cast.acme, agent=looper, goal=traced_run.goal, requested_by=cast.member)
    replay_run.status, replay_run.finished_at = "completed", timezone.now()
    replay_run.save(update_fields=["status", "finished_at"])
    Replay.objects.create(tenant=cast.acme, original=traced_run, run=replay_run, created_by=cast.member)
    waiting = run_start(tenant=cast.acme, agent=looper, goal="Call noop 2 times", requested_by=cast.member)
    make_trace(waiting, 10, finished=False)
    wait = ApprovalRequest.objects.create(tenant=cast.acme, run=waiting, step=2, call_id="c", tool="noop", risk=1,
                                          policy="test")
    batch = ReplayBatch.objects.create(tenant=cast.acme, agent=looper, runs_wanted=1, created_by=cast.member)
    return {"run": traced_run.number, "span": Span.objects.filter(run=traced_run).first().pk, "replay": replay_run.number,
            "waiting": waiting.number, "wait": wait.pk, "batch": batch.pk, "agent": looper.slug}


# (method, url name, args from the world, extra GET params or POST data, the sections its rule reads)
PAGES = [
    ("get", "traces", [], {}, {"traces"}),
    ("get", "trace_timeline", ["run"], {}, {"traces"}),
    ("get", "trace_skeleton", ["run"], {}, {"traces"}),
    ("get", "trace_skeleton", ["run"], {"head": "1"}, {"traces"}),
    ("get", "trace_skeleton", ["run"], {"page": "0"}, {"traces"}),
    ("get", "trace_search", ["run"], {"q": "noop"}, {"traces"}),
    ("get", "trace_span", ["run", "span"], {}, {"traces"}),
    ("get", "trace_open_wait", ["waiting", "wait"], {}, {"traces"}),
    ("get", "trace_decisions", ["run"], {}, {"traces"}),
    ("get", "trace_compare", ["replay"], {}, {"traces"}),
    ("post", "trace_replay", ["run"], {"read_only": "recorded"}, {"traces", "runs"}),
    ("post", "trace_batch_create", [], {"agent": "looper", "runs": "1"}, {"traces", "runs"}),
    ("get", "trace_batch", ["batch"], {}, {"traces"}),
]

API = [
    ("get", "/traces", {}, {"traces"}),
    ("get", "/traces/{run}", {}, {"traces"}),
    ("get", "/traces/{run}/search", {"q": "noop"}, {"traces"}),
    ("get", "/traces/{run}/spans/{span}", {}, {"traces"}),
    ("get", "/traces/{run}/decisions", {}, {"traces"}),
    ("get", "/traces/{replay}/compare", {}, {"traces"}),
    ("post", "/traces/{run}/replays", {"read_only": "recorded"}, {"traces", "runs"}),
    ("post", "/replay-batches", {"agent": "looper", "runs": 1}, {"traces", "runs"}),
    ("get", "/replay-batches/{batch}", {}, {"traces"}),
]


def page_call(client, world, method, name, args, params, tenant="acme"):
    url = reverse(name, args=[tenant, *(world[a] for a in args)])
    return client.get(url, params) if method == "get" else client.post(url, params)


def api_call(client, world, token, method, path, params):
    url = "/api/v1" + path.format(**world)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    if method == "get":
        return client.get(url, params, **headers)
    return client.post(url, json.dumps(params), content_type="application/json", **headers)


def side_effects():
    return Replay.objects.count(), ReplayBatch.objects.count()


@pytest.mark.parametrize(("method", "name", "args", "params", "sections"), PAGES, ids=[f"{p[1]}{p[3]}" for p in PAGES])
def test_pages_outsider_404_and_a_role_left_out_403(cast, client_for, world, monkeypatch, method, name, args, params,
                                                     sections):
    before = side_effects()
    outsider = client_for(cast.outsider)
    assert page_call(outsider, world, method, name, args, params).status_code == 404
    if args:  # in his own tenant, our numbers name nothing of his
        assert page_call(outsider, world, method, name, args, params, tenant="globex").status_code == 404
    for section in sections:
        monkeypatch.setitem(SECTION_ROLES, section, EVERYONE - {Role.FINANCE})
        assert page_call(client_for(cast.finance), world, method, name, args, params).status_code == 403, section
        monkeypatch.setitem(SECTION_ROLES, section, EVERYONE)
    assert side_effects() == before
    assert page_call(client_for(cast.finance), world, method, name, args, params).status_code in (200, 302)


@pytest.mark.parametrize(("method", "path", "params", "sections"), API, ids=[f"{a[0]} {a[1]}" for a in API])
def test_api_outsider_404_and_a_role_left_out_403(cast, client, world, monkeypatch, method, path, params, sections):
    before = side_effects()
    outsider = api_token_create(tenant=cast.globex, name="globex", actor=cast.outsider).secret
    finance = api_token_create(tenant=cast.acme, name="finn", actor=cast.finance).secret
    if "{" in path:
        assert api_call(client, world, outsider, method, path, params).status_code == 404
    elif path == "/traces":  # his own tenant's list: nothing of ours in it
        assert api_call(client, world, outsider, method, path, params).json()["traces"] == []
    else:  # our agent is no agent of his
        answer = api_call(client, world, outsider, method, path, params)
        assert answer.status_code == 422 and "No agent 'looper' in this tenant" in answer.json()["message"]
    for section in sections:
        monkeypatch.setitem(SECTION_ROLES, section, EVERYONE - {Role.FINANCE})
        assert api_call(client, world, finance, method, path, params).status_code == 403, section
        monkeypatch.setitem(SECTION_ROLES, section, EVERYONE)
    assert side_effects() == before
    assert api_call(client, world, finance, method, path, params).status_code in (200, 201, 202)


@pytest.mark.django_db(transaction=True)
def test_the_timeline_socket_outsider_4404_and_a_role_left_out_4403(cast, client_for, looper, monkeypatch):
    """On a thread of its own with its own event loop (the browser tests' loop stays registered in this one)."""
    from tests.agents.test_live import communicator, login

    run = run_start(tenant=cast.acme, agent=looper, goal="Call noop 3 times", requested_by=cast.member)
    outsider, finance = login(client_for, cast.outsider), login(client_for, cast.finance)
    monkeypatch.setitem(SECTION_ROLES, "traces", EVERYONE - {Role.FINANCE})

    async def sockets():
        for client, tenant, code in ((outsider, "acme", 4404), (outsider, "globex", 4404), (finance, "acme", 4403)):
            socket = communicator(client, f"/ws/t/{tenant}/traces/{run.number}/")
            connected, closed_with = await socket.connect()
            assert not connected and closed_with == code, (tenant, code)
            await socket.disconnect()

    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, sockets()).result()
