"""A tool's own writes run in a savepoint under its statement timeout: a tool that fails leaves no
half-done writes, and the step that called it records the failure in words the model can act on."""

import dataclasses

from django.db import connection

from agents.models import RunEvent, ToolInvocation
from agents.services import run_start
from agents.tools import REGISTRY
from console.models import AuditEvent, Tenant
from tests.factories import advance, make_looper


def _with_noop(monkeypatch, function, **options):
    monkeypatch.setitem(REGISTRY, "noop", dataclasses.replace(REGISTRY["noop"], function=function, **options))


def test_a_tool_that_fails_after_writing_leaves_no_row_and_the_run_goes_on(cast, monkeypatch):
    def writes_then_fails(context, args):
        AuditEvent.objects.create(tenant=context.tenant, verb="tool.half_done")
        raise ValueError("downstream refused")

    _with_noop(monkeypatch, writes_then_fails)
    run = advance(run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 1 times",
                            requested_by=cast.member))
    assert run.status == "completed"
    assert not AuditEvent.objects.filter(verb="tool.half_done").exists()
    result = RunEvent.objects.get(run=run, type="tool.result").payload["result"]
    assert result["error_type"] == "tool_crashed" and "noop failed: ValueError" in result["message"]
    assert ToolInvocation.objects.get(run=run).status == "error"


def test_a_tool_over_its_statement_timeout_is_stopped_and_the_step_is_not_held_to_it(cast, monkeypatch):
    def slow(context, args):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(2)")
        return {"n": args.n}

    _with_noop(monkeypatch, slow, timeout_seconds=0.2)
    run = advance(run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 1 times",
                            requested_by=cast.member))
    assert run.status == "completed"
    result = RunEvent.objects.get(run=run, type="tool.result").payload["result"]
    assert result["error_type"] == "tool_timeout" and result["retryable"]
    assert result["message"].startswith("noop took longer than its 0.2 s limit and was stopped.")
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "0"  # the tool's timeout did not outlive its savepoint


def test_a_tool_that_swallows_a_database_error_is_reported_as_failed_not_ok(cast, monkeypatch):
    from django.db import IntegrityError, transaction

    def swallows(context, args):
        AuditEvent.objects.create(tenant=context.tenant, verb="tool.first_write")
        try:
            with transaction.atomic(savepoint=False):
                Tenant.objects.create(name="again", slug=context.tenant.slug)  # the slug is taken
        except IntegrityError:
            pass
        return {"n": args.n}

    _with_noop(monkeypatch, swallows)
    run = advance(run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 1 times",
                            requested_by=cast.member))
    assert run.status == "completed"
    assert not AuditEvent.objects.filter(verb="tool.first_write").exists()
    assert RunEvent.objects.get(run=run, type="tool.result").payload["result"]["error_type"] == "tool_crashed"


def test_a_tool_that_fails_before_touching_the_database_keeps_nothing_it_asked_for_after_commit(
        cast, monkeypatch, django_capture_on_commit_callbacks):
    from django.db import transaction

    sent = []

    def promises_then_fails(context, args):
        transaction.on_commit(lambda: sent.append("email"))  # no statement: no savepoint was needed
        raise ValueError("the mail server refused")

    _with_noop(monkeypatch, promises_then_fails)
    with django_capture_on_commit_callbacks(execute=True):
        run = advance(run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 1 times",
                                requested_by=cast.member))
    assert run.status == "completed" and sent == []
    assert RunEvent.objects.get(run=run, type="tool.result").payload["result"]["error_type"] == "tool_crashed"


def test_a_tools_first_statement_runs_inside_its_savepoint_and_timeout(cast, monkeypatch):
    seen = []

    def reads(context, args):
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            seen.append(cursor.fetchone()[0])
        return {"n": args.n}

    _with_noop(monkeypatch, reads, timeout_seconds=3)
    run = advance(run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 1 times",
                            requested_by=cast.member))
    assert run.status == "completed" and seen == ["3s"]
