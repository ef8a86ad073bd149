"""A pending call: run it (or apply a person's decision on it) and record its result.

The ToolInvocation row, the tool's own writes and the checkpoint that clears the call commit
together, so after a crash the call is simply pending again. A tool whose effects leave our
database (``transactional=False``) may then be called again: it gets the idempotency key
run:step:call (unique per tool) to make that harmless.

Returns "tool_done" once the result is recorded (the step goes on), or how the call still waits.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import replace

from django.db import connection
from psycopg.errors import QueryCanceled
from django.utils import timezone

from agents import engine
from agents.events import emit
from agents.hooks import Review, Usage, review, usage_recorded
from agents.models import PlanStep, Run, RunStatus, ToolInvocation
from agents.run_store import row_add
from agents.services.transitions import set_status, step_info
from agents.tools import ToolContext, tool_for
from agents.tools.registry import error as tool_error
from agents.tools.registry import parse_arguments, run_tool
from agents.tracing import span_failed, tool_span


def run_pending_call(run: Run, turn) -> str:
    """In a fenced (locked) transaction: execute the pending tool call and record its result; or, when it
    waits for a person, their decision's outcome."""
    pending = turn.state.pending_call
    if not pending.needs_approval:
        return execute_pending(run, turn, pending)
    decided = review().review_for_call(run=run, step=pending.step, call_id=pending.id)
    if decided is None or decided.is_open:
        set_status(run, RunStatus.WAITING_FOR_HUMAN)
        return "waiting_for_human"
    if decided.status != "approved":
        return finish_tool(run, turn, pending, refused_result(decided), None)
    if decided.kind == "plan":
        return finish_tool(run, turn, pending, _plan_approved(run, decided), None)
    if decided.kind == "question":
        answer = {"answer": decided.answer, "answered_by": decided.decided_by}
        return finish_tool(run, turn, pending, {"status": "ok", "data": answer}, None)
    if decided.edited:  # a reviewer edited the arguments: what runs is what was approved
        return execute_pending(run, turn, replace(pending, arguments=decided.arguments_to_run), decided=decided)
    return execute_pending(run, turn, pending, decided=decided)


def refused_result(decided: Review) -> dict:
    """What the model is told when a person said no, or nobody decided in time: words it can act on."""
    what = {"plan": "your plan", "question": "your question"}.get(decided.kind, "this call")
    if decided.status == "expired":
        message = {"plan": "Nobody approved your plan before it expired.",
                   "question": "Nobody answered your question before it expired."}.get(
            decided.kind, "Nobody approved this call before its approval expired, so it did not run.")
        message += " Do not ask again; choose another way or finish."
    else:
        who = decided.decided_by or "policy"
        note = decided.note or "no reason given"
        verb = "declined to answer" if decided.kind == "question" else "rejected"
        then = {"plan": "Propose a different plan that meets the objection, or finish.",
                "question": "Go on without the answer if you can, or finish."}.get(
            decided.kind, "Do not try it again; choose another way or finish.")
        message = f"A reviewer ({who}) {verb} {what}: {note}. {then}"
    return {"status": "error", "error_type": "rejected_by_reviewer", "retryable": False, "message": message}


def _plan_approved(run: Run, decided: Review) -> dict:
    """The approved plan (as proposed, or as a reviewer edited it) becomes the run's plan."""
    steps = decided.arguments_to_run["steps"]
    if decided.edited:
        PlanStep.objects.filter(run=run).delete()
        PlanStep.objects.bulk_create(PlanStep(run=run, position=i, title=t) for i, t in enumerate(steps, start=1))
    else:
        PlanStep.objects.filter(run=run, status="proposed").update(status="pending")
    data = {"accepted": True, "steps": steps}
    if decided.edited:
        data["message"] = "A reviewer edited your plan before approving it. Follow these steps, in this order."
    return {"status": "ok", "data": data}


def execute_pending(run: Run, turn, pending: engine.PendingCall, decided: Review | None = None) -> str:
    """In the step's transaction (locked; or a reply's, for a transactional tool): run the pending call and
    record its result with the checkpoint."""
    key = f"{run.pk}:{pending.step}:{pending.id}"
    spec = tool_for(run.tenant, pending.tool)
    set_status(run, RunStatus.RUNNING_TOOL)
    parsed = parse_arguments(spec, pending.arguments) if spec is not None else tool_error(
        "tool_unavailable", f"{pending.tool} is no longer available here; do the task without it.")
    started = time.perf_counter()
    invocation = ToolInvocation(tenant=run.tenant, run=run, step=pending.step, call_id=pending.id,
                                tool=pending.tool, arguments=pending.arguments, idempotency_key=key)
    with tool_span(tool=pending.tool, call_id=pending.id, risk=pending.risk) as span:
        if isinstance(parsed, dict):
            result = parsed
        else:
            try:
                runner = turn.overrides.tool_runner if turn.overrides else None
                answered = runner(run, spec, pending.arguments) if runner else None  # e.g. a replay's recording
                if answered is not None:
                    result = answered
                else:
                    with _tool_savepoint(spec.timeout_seconds):
                        result = run_tool(spec, ToolContext(tenant=run.tenant, run=run, idempotency_key=key), parsed)
            except Exception as exc:
                result = _crash_result(pending.tool, spec.timeout_seconds, exc)
        if result["status"] != "ok":
            span_failed(span, result["error_type"], result["message"])
    invocation.status = result["status"]
    invocation.finished_at = timezone.now()
    invocation.duration_ms = int((time.perf_counter() - started) * 1000)
    if decided is not None and decided.edited:
        result = {**result, "reviewer_edited_arguments": pending.arguments}  # the model learns what actually ran
    invocation.result = result
    if decided is None:
        row_add(run, invocation)  # written with the run
    else:  # written with the run too, by the review, which links its request to it in the same statement
        review().invocation_ran(run=run, review_id=decided.id, invocation=invocation)
    if spec and spec.cost_usd:  # a declared cost is the run's too, as the ledger's row for it is
        run.cost_usd += spec.cost_usd
    usage_recorded(step_info(run, pending.step), Usage(kind="tool", name=pending.tool, status=result["status"],
                                                   cost_usd=spec.cost_usd if spec else 0,
                                                   latency_ms=invocation.duration_ms, call_id=pending.id), run.writes)
    return finish_tool(run, turn, pending, result, invocation)


def _crash_result(tool: str, timeout_seconds: float, exc: Exception) -> dict:
    """A tool that raised, in words the model can act on (its internals stay in the worker's log)."""
    if isinstance(exc.__cause__, QueryCanceled):
        return {"status": "error", "error_type": "tool_timeout", "retryable": True,
                "message": f"{tool} took longer than its {timeout_seconds:g} s limit and was stopped. "
                           "Try again, or ask for less at once."}
    return {"status": "error", "error_type": "tool_crashed", "retryable": False,
            "message": f"{tool} failed: {type(exc).__name__}."}


@contextmanager
def _tool_savepoint(timeout_seconds: float):
    """The tool's own writes in a savepoint under its statement timeout: a failing tool leaves the
    step's writes intact, and the step's later statements run without the tool's timeout. The savepoint
    is opened with the tool's first statement, so a tool that does no database work (an HTTP call, noop)
    costs no round trip; one that does pays two (savepoint + timeout, then reset + release) where atomic()
    and two SETs took four. What atomic() does on a rollback is done here too (the rollback mark cleared,
    the tool's on-commit callbacks dropped)."""
    opened = False

    def open_first(execute, sql, params, many, context):
        nonlocal opened
        if not opened:
            opened = True  # before the statement below, which passes through this wrapper too
            context["cursor"].execute(f"SAVEPOINT proctor_tool; SET LOCAL statement_timeout = {milliseconds}")
        return execute(sql, params, many, context)

    milliseconds = int(timeout_seconds * 1000)
    callbacks = len(connection.run_on_commit)
    try:
        with connection.execute_wrapper(open_first):
            yield
        if connection.needs_rollback:  # the tool caught a database error: its writes cannot stand
            raise RuntimeError("the tool's database work failed")
    except BaseException:
        if opened:
            connection.needs_rollback = False  # this rollback is the one Django would insist on
            with connection.cursor() as cursor:
                cursor.execute("ROLLBACK TO SAVEPOINT proctor_tool; RELEASE SAVEPOINT proctor_tool;"
                               " SET LOCAL statement_timeout TO DEFAULT")
        del connection.run_on_commit[callbacks:]
        raise
    if opened:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout TO DEFAULT; RELEASE SAVEPOINT proctor_tool")


def finish_tool(run: Run, turn, pending: engine.PendingCall, result: dict, invocation) -> str:
    turn.conversation.append(run, engine.tool_message(pending.id, pending.tool, result))
    turn.state = replace(turn.state, pending_call=None)
    emit(run, "tool.result", {"tool": pending.tool, "arguments": pending.arguments, "result": result,
                              "duration_ms": getattr(invocation, "duration_ms", None)})
    ok = result.get("status") == "ok"
    run.last_action = f"{pending.tool} {'succeeded' if ok else 'failed: ' + result.get('error_type', '')}"[:300]
    run.next_action = ""
    turn.save(run)
    return "tool_done"
