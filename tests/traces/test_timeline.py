"""The traces list, a run's timeline, its skeleton, search, span detail and decisions, over pages, the API
and the socket: scoped to the tenant (an outsider gets 404 everywhere)."""

import asyncio
import json
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from agents.services import run_start
from console.services import api_token_create
from tests.factories import make_trace
from traces.models import DecisionRecord, Span
from traces.selectors import HEAD_ROWS

ROW_BYTES = 200


def skeleton_of(client, run):
    response = client.get(reverse("trace_skeleton", args=["acme", run.number]))
    assert response.status_code == 200
    return response, json.loads(response.content)


def rows_of(data):
    return [dict(zip(data["fields"], row, strict=True)) for row in data["spans"]]


def test_the_skeleton_is_compact_tree_ordered_with_subtree_totals(cast, client_for, traced_run):
    response, data = skeleton_of(client_for(cast.member), traced_run)
    rows = rows_of(data)
    assert len(rows) == 50 and len(response.content) / len(rows) <= ROW_BYTES
    assert rows[0]["parent"] == -1 and data["kinds"][rows[0]["kind"]] == "run"
    for index, row in enumerate(rows[1:], start=1):
        assert row["parent"] < index and row["depth"] == rows[row["parent"]]["depth"] + 1  # parents first
    root = rows[0]
    model_rows = [r for r in rows if data["kinds"][r["kind"]] == "model"]
    assert root["subtree_tokens"] == 30 * len(model_rows)
    assert root["subtree_cost_usd"] == pytest.approx(0.00015 * len(model_rows))
    assert root["subtree_errors"] == Span.objects.filter(run=traced_run, status="error").count() > 0
    assert "app;dur=" in response["Server-Timing"]


def test_a_running_runs_spans_hang_under_the_run_so_far(cast, client_for, looper):
    run = run_start(tenant=cast.acme, agent=looper, goal="Call noop 3 times", requested_by=cast.member)
    make_trace(run, 11, finished=False)
    data = skeleton_of(client_for(cast.member), run)[1]
    rows = rows_of(data)
    assert data["running"] and rows[0]["id"] == 0 and data["kinds"][rows[0]["kind"]] == "run"
    assert {r["parent"] for r in rows if data["kinds"][r["kind"]] == "step"} == {0}
    assert rows[0]["subtree_tokens"] == sum(r["tokens"] for r in rows)
    assert len(rows) == Span.objects.filter(run=run).count() + 1
    found = json.loads(client_for(cast.member).get(reverse("trace_search", args=["acme", run.number]), {"q": "CALL-7"}).content)
    assert found["ids"] == [Span.objects.get(run=run, attributes__contains={"gen_ai.tool.call.id": "call-7"}).pk]


def test_search_finds_names_and_attribute_values_and_treats_wildcards_as_text(cast, client_for, traced_run):
    client = client_for(cast.member)
    url = reverse("trace_search", args=["acme", traced_run.number])
    found = json.loads(client.get(url, {"q": "call-7"}).content)["ids"]
    assert found == [Span.objects.get(run=traced_run, attributes__contains={"gen_ai.tool.call.id": "call-7"}).pk]
    assert len(json.loads(client.get(url, {"q": "execute_tool"}).content)["ids"]) == Span.objects.filter(
        run=traced_run, kind="tool").count()
    assert json.loads(client.get(url, {"q": "%"}).content)["ids"] == []


def test_a_spans_detail_shows_the_tool_call_and_the_approval(cast, client_for, traced_run):
    client = client_for(cast.member)
    tool = Span.objects.filter(run=traced_run, kind="tool").first()
    page = client.get(reverse("trace_span", args=["acme", traced_run.number, tool.pk])).content.decode()
    assert "execute_tool noop" in page and "call-" in page and "Attributes" in page
    wait = Span.objects.create(tenant=cast.acme, run=traced_run, trace_id=traced_run.trace_id, span_id="c" * 16,
                               parent_span_id=traced_run.trace_id[:16], name="approval wait email.send", kind="approval",
                               started_at=timezone.now(), ended_at=timezone.now(),
                               attributes={"proctor.approval.decided_by": "rita", "proctor.approval.decision": "approved",
                                           "proctor.approval.waited_ms": 4200, "proctor.approval.edited": True,
                                           "proctor.approval.changes": '{"approved": {"to": "b@x"}}'})
    page = client.get(reverse("trace_span", args=["acme", traced_run.number, wait.pk])).content.decode()
    assert "rita" in page and "4200 ms" in page and "b@x" in page
    missing = client.get(reverse("trace_span", args=["acme", traced_run.number, 99999999]))
    assert missing.status_code == 404


def test_the_timeline_page_and_decisions_render(cast, client_for, traced_run):
    DecisionRecord.objects.create(tenant=cast.acme, run=traced_run, step=1, type="call_tool", tool="noop",
                                  summary="Calling noop as asked", inputs={"messages": 1, "memory_ids": [], "tool_results": []},
                                  policy_checks=[{"tool": "noop", "risk": 0, "needs_approval": False, "outcome": "allowed"}])
    client = client_for(cast.member)
    page = client.get(reverse("trace_timeline", args=["acme", traced_run.number])).content.decode()
    decisions_url = reverse("trace_decisions", args=["acme", traced_run.number])
    assert "trace_timeline.js" in page and decisions_url in page  # the decisions load after the first paint
    decisions = client.get(decisions_url).content.decode()
    assert "Calling noop as asked" in decisions and "noop</code> risk 0: allowed" in decisions
    run_page = client.get(reverse("run_detail", args=["acme", traced_run.number])).content.decode()
    assert reverse("trace_timeline", args=["acme", traced_run.number]) in run_page
    assert reverse("trace_decisions", args=["acme", traced_run.number]) in run_page


def test_the_traces_list_filters_sorts_searches_and_pages(cast, client_for, looper, traced_run):
    client = client_for(cast.member)
    others = [run_start(tenant=cast.acme, agent=looper, goal="Call noop once", requested_by=cast.admin) for _ in range(55)]
    page = client.get(reverse("traces", args=["acme"])).content.decode()
    assert f"#{others[-1].number}<" in page and "More traces" in page
    page = client.get(reverse("traces", args=["acme"]), {"has_error": "1"}).content.decode()
    assert f"#{traced_run.number}<" in page and f"#{others[0].number}<" not in page
    page = client.get(reverse("traces", args=["acme"]), {"q": traced_run.trace_id}).content.decode()
    assert f"#{traced_run.number}<" in page and f"#{others[0].number}<" not in page
    page = client.get(reverse("traces", args=["acme"]), {"requester": "ada", "sort": "oldest"}).content.decode()
    assert f"#{others[0].number}<" in page and f"#{traced_run.number}<" not in page
    first = client.get(reverse("traces", args=["acme"]), {"sort": "oldest"}).context["next_cursor"]
    more = client.get(reverse("traces", args=["acme"]), {"sort": "oldest", "after": first}, HTTP_HX_REQUEST="true")
    assert f"#{others[-1].number}<" in more.content.decode() and "<h1>" not in more.content.decode()
    refused = client.get(reverse("traces", args=["acme"]), {"min_cost": "lots"})
    assert refused.status_code == 400 and "Min cost must be a number" in refused.content.decode()
    refused = client.get(reverse("traces", args=["acme"]), {"min_duration": "1e999"})
    assert refused.status_code == 400
    assert client.get(reverse("traces", args=["acme"]), {"sort": "cost", "after": "x:y"}).status_code == 400


@pytest.fixture
def api(cast, client):
    member = api_token_create(tenant=cast.acme, name="acme", actor=cast.member).secret
    outsider = api_token_create(tenant=cast.globex, name="globex", actor=cast.outsider).secret

    def call(path, token=member, **params):
        return client.get("/api/v1" + path, params, HTTP_AUTHORIZATION=f"Bearer {token}")
    call.outsider = outsider
    return call


def test_the_api_serves_list_skeleton_search_detail_and_decisions(api, traced_run):
    listed = api("/traces", has_error="true").json()
    assert [t["run"] for t in listed["traces"]] == [traced_run.number] and listed["traces"][0]["has_error"]
    skeleton = api(f"/traces/{traced_run.number}").json()
    assert len(skeleton["spans"]) == 50 and skeleton["fields"][0] == "id" and skeleton["total"] == 50
    first = api(f"/traces/{traced_run.number}", page="0").json()
    assert first["spans"] == skeleton["spans"] and first["pages"] == 1 and first["offset"] == 0
    for bad in ("1", "-1", "x"):
        refused = api(f"/traces/{traced_run.number}", page=bad)
        assert refused.status_code in (400, 422) and refused.json()["message"], bad
    ids = api(f"/traces/{traced_run.number}/search", q="call-7").json()["ids"]
    assert len(ids) == 1
    detail = api(f"/traces/{traced_run.number}/spans/{ids[0]}").json()
    assert detail["kind"] == "tool" and detail["attributes"]["gen_ai.tool.call.id"] == "call-7"
    assert api(f"/traces/{traced_run.number}/decisions").json() == []
    assert api("/traces", min_cost="lots").json()["code"] == "invalid"
    assert api("/traces", since="2026-13-45").status_code == 422


@pytest.mark.django_db(transaction=True)
def test_the_timeline_socket_refuses_outsiders_and_announces_stored_spans(cast, client_for, looper):
    """On a thread of its own with its own event loop: this file runs after the browser tests (transactional
    tests go last), whose Playwright loop stays registered in the test thread."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.agents.test_live import communicator, login
    from traces.live import publish_spans_stored

    run = run_start(tenant=cast.acme, agent=looper, goal="Call noop 3 times", requested_by=cast.member)
    outsider, member = login(client_for, cast.outsider), login(client_for, cast.member)

    async def sockets():
        for tenant in ("acme", "globex"):
            socket = communicator(outsider, f"/ws/t/{tenant}/traces/{run.number}/")
            connected, code = await socket.connect()
            assert not connected and code == 4404
        socket = communicator(member, f"/ws/t/acme/traces/{run.number}/")
        assert (await socket.connect())[0]
        publish_spans_stored(run.pk, cast.acme.pk)
        assert await socket.receive_json_from(timeout=5) == {"stored": True}
        await socket.disconnect()

    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, sockets()).result()


def test_without_redis_an_ended_runs_skeleton_and_search_come_from_the_database(cast, client_for, traced_run, monkeypatch):
    from redis.exceptions import ConnectionError as RedisDown

    from traces import selectors

    def down(_run_id):
        raise RedisDown("Redis is not answering")
    monkeypatch.setattr(selectors, "spans_stored_count", down)
    client = client_for(cast.member)
    assert len(rows_of(skeleton_of(client, traced_run)[1])) == 50
    found = json.loads(client.get(reverse("trace_search", args=["acme", traced_run.number]), {"q": "call-7"}).content)
    assert len(found["ids"]) == 1


def test_an_ended_runs_skeleton_is_materialized_once_and_follows_spans_stored_later(cast, client_for, looper):
    run = run_start(tenant=cast.acme, agent=looper, goal="Call noop 500 times", requested_by=cast.member)
    run.status, run.finished_at = "completed", timezone.now()
    run.save(update_fields=["status", "finished_at"])
    make_trace(run, 500)
    client = client_for(cast.member)
    url = reverse("trace_skeleton", args=["acme", run.number])
    whole = json.loads(client.get(url).content)
    head = json.loads(client.get(url, {"head": "1"}).content)
    assert head["head"] and head["total"] == 500 and head["spans"] == whole["spans"][:HEAD_ROWS]
    late_span_exported(run)  # as the exporter stores a span that arrives after the run ended
    again = rows_of(json.loads(client.get(url).content))
    late = Span.objects.get(run=run, name="approval wait late")
    assert len(again) == 501 and any(row["id"] == late.pk for row in again)


def test_the_page_carries_the_first_screenful_and_the_rest_comes_in_pages(cast, client_for, looper, monkeypatch):
    from traces import selectors

    monkeypatch.setattr(selectors, "PAGE_ROWS", 200)
    run = run_start(tenant=cast.acme, agent=looper, goal="Call noop 500 times", requested_by=cast.member)
    run.status, run.finished_at = "completed", timezone.now()
    run.save(update_fields=["status", "finished_at"])
    make_trace(run, 500)
    client = client_for(cast.member)
    page = client.get(reverse("trace_timeline", args=["acme", run.number])).content.decode()
    carried = json.loads(re.search(r'<script type="application/json" id="trace-head">(.*?)</script>', page, re.S).group(1))
    url = reverse("trace_skeleton", args=["acme", run.number])
    whole = json.loads(client.get(url).content)
    assert carried["total"] == 500 and carried["spans"] == whole["spans"][:HEAD_ROWS]
    pages = [json.loads(client.get(url, {"page": str(n)}).content) for n in range(3)]
    assert [p["offset"] for p in pages] == [0, 200, 400] and {p["pages"] for p in pages} == {3}
    assert len({p["version"] for p in pages}) == 1
    assert [row for p in pages for row in p["spans"]] == whole["spans"]
    for bad in ("3", "-1", "x", "1.5"):
        refused = client.get(url, {"page": bad})
        assert refused.status_code == 400 and "page" in refused.json()["error"], bad


def test_a_running_runs_skeleton_comes_in_one_page_and_the_page_escapes_names(cast, client_for, looper):
    run = run_start(tenant=cast.acme, agent=looper, goal="Call noop 3 times", requested_by=cast.member)
    make_trace(run, 30, finished=False)
    Span.objects.filter(run=run, kind="step").update(name="step </script><b>&")
    client = client_for(cast.member)
    page = client.get(reverse("trace_timeline", args=["acme", run.number])).content.decode()
    carried = re.search(r'<script type="application/json" id="trace-head">(.*?)</script>', page, re.S).group(1)
    assert "</script><b>" not in carried and "step </script><b>&" in json.dumps(json.loads(carried))
    one = json.loads(client.get(reverse("trace_skeleton", args=["acme", run.number]), {"page": "0"}).content)
    assert one["pages"] == 1 and one["running"] and len(one["spans"]) == 31  # and the run so far
    assert client.get(reverse("trace_skeleton", args=["acme", run.number]), {"page": "1"}).status_code == 400


def late_span_exported(run):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from agents.tracing import _run_parent
    from traces.exporter import DatabaseSpanExporter

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(DatabaseSpanExporter()))
    provider.get_tracer("test").start_span("approval wait late", context=_run_parent(run.trace_id),
                                           attributes={"proctor.span.kind": "approval"}).end()
    provider.shutdown()
