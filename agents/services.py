"""The runtime's writes: starting runs, advancing them one step, controlling them."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from agents import engine
from agents.events import emit
from agents.gateway import Breaker, GatewayPolicy, complete
from agents.models import RUNNABLE, TERMINAL, Agent, AgentVersion, Checkpoint, ModelCall, PlanStep, Run, RunStatus, ToolInvocation
from agents.run_store import checkpoint_set, row_add, run_claim, run_lock, run_lock_in_tenant, run_write
from agents.selectors import pin_agent_version
from agents.tools import REGISTRY, ToolContext
from agents.tools.registry import parse_arguments, run_tool
from agents.tracing import record_run_span, span_failed, step_span, tool_span
from console.health import redis_client

MAX_GOAL_CHARS = 5000
MAX_INSTRUCTION_CHARS = 2000


class RunError(Exception):
    """A user-facing refusal (bad input, wrong state); the message says what to do."""


class LeaseLost(Exception):
    """Another worker holds the run now: drop this step's work."""


# --- Agents and their versions --------------------------------------------------------------------

VERSIONED_FIELDS = ("instructions", "model", "fallback_models", "tools", "max_steps", "max_tokens", "max_cost_usd",
                    "max_seconds", "plan_mode", "plan_approval")


def agent_version_snapshot(agent: Agent, *, actor=None) -> AgentVersion:
    """The row that keeps the agent's instructions and configuration as they are at its current version."""
    config = {name: getattr(agent, name) for name in VERSIONED_FIELDS if name != "instructions"}
    config["max_cost_usd"] = str(config["max_cost_usd"])
    version, _ = AgentVersion.objects.get_or_create(agent=agent, version=agent.version, defaults={
        "instructions": agent.instructions, "config": config, "created_by": actor})
    return version


def agent_update(*, agent: Agent, actor, **changes) -> Agent:
    """Change an agent's instructions or configuration. Any real change makes a new version; runs
    keep the version they started with."""
    unknown = set(changes) - set(VERSIONED_FIELDS)
    if unknown:
        raise RunError(f"Cannot change {', '.join(sorted(unknown))}; changeable: {', '.join(VERSIONED_FIELDS)}.")
    unknown_tools = [t for t in changes.get("tools", []) if t not in REGISTRY]
    if unknown_tools:
        raise RunError(f"Unknown tools: {', '.join(unknown_tools)}.")
    with transaction.atomic():
        agent = Agent.objects.for_tenant(agent.tenant).select_for_update().get(pk=agent.pk)
        agent_version_snapshot(agent)  # the version being replaced is kept, even if nothing recorded it yet
        changed = {name: value for name, value in changes.items() if getattr(agent, name) != value}
        if not changed:
            return agent
        for name, value in changed.items():
            setattr(agent, name, value)
        agent.version += 1
        agent.save()
        agent_version_snapshot(agent, actor=actor)
        from console.services import audit_record

        audit_record(tenant=agent.tenant, actor=actor, verb="agent.changed", target=f"agent {agent.slug}",
                     data={"version": agent.version, "fields": sorted(changed)})
    return agent


# --- Starting -----------------------------------------------------------------------------------


def run_start(*, tenant, agent: Agent, goal: str, requested_by=None, idempotency_key: str | None = None) -> Run:
    return run_start_once(tenant=tenant, agent=agent, goal=goal, requested_by=requested_by,
                          idempotency_key=idempotency_key)[0]


def run_start_once(*, tenant, agent: Agent, goal: str, requested_by=None,
                   idempotency_key: str | None = None) -> tuple[Run, bool]:
    """Start a run, or with an idempotency key already used, return that run. The flag says whether
    this call created it (when two calls race with one key, exactly one did)."""
    goal = (goal or "").strip()
    if not goal:
        raise RunError("Write a goal for the run.")
    if len(goal) > MAX_GOAL_CHARS:
        raise RunError(f"The goal is {len(goal)} characters; keep it under {MAX_GOAL_CHARS}.")
    if agent.tenant_id != tenant.id:
        raise RunError("That agent does not belong to this tenant.")
    if idempotency_key and (existing := Run.objects.for_tenant(tenant).filter(idempotency_key=idempotency_key).first()):
        return existing, False
    try:
        with transaction.atomic():  # the version's snapshot is written when it is replaced (agent_update)
            run = Run.objects.create(
                tenant=tenant, agent=agent, agent_version=agent.version, requested_by=requested_by, goal=goal,
                status=RunStatus.QUEUED, trace_id=secrets.token_hex(16), idempotency_key=idempotency_key or None,
            )
            state = {"conversation": [{"role": "user", "text": goal}], "pending_call": None}
            _checkpoint(run, state)
            emit(run, "run.created", {"goal": goal, "agent": agent.name, "agent_version": agent.version,
                                      "model": agent.model, "by": _who(requested_by)})
            emit(run, "status", {"from": "created", "to": RunStatus.QUEUED})
            run_write(run)
            _enqueue_on_commit(run.pk)
    except IntegrityError:
        # Two requests with the same Idempotency-Key at once: the other one won.
        return Run.objects.for_tenant(tenant).get(idempotency_key=idempotency_key), False
    return run, True


def _who(actor) -> str:
    return getattr(actor, "username", None) or "api"


def _enqueue_on_commit(run_id: int) -> None:
    from agents.tasks import run_step

    transaction.on_commit(lambda: run_step.delay(run_id))


def _checkpoint(run: Run, state: dict) -> None:
    """Written with the run (run_write), as an upsert: a step's checkpoint is written after the model
    reply and again after the tool result."""
    blob = json.dumps(state, sort_keys=True, separators=(",", ":"))
    checkpoint_set(run, Checkpoint(run=run, step=run.step, state=json.loads(blob),
                                   state_hash=hashlib.sha256(blob.encode()).hexdigest()))


def _set_status(run: Run, new: str, **payload) -> None:
    """The run's new status, as an event. A run that is not runnable (waiting for a person, paused,
    ended) is nobody's to step: its lease is released with the change."""
    engine.check_transition(run.status, new)
    if new not in RUNNABLE:
        _release(run)
    if run.status == new:
        return
    emit(run, "status", {"from": run.status, "to": new, **payload})
    run.status = new
    if new in TERMINAL:
        run.finished_at = timezone.now()
        run.next_action = ""
        _record_run_span_on_commit(run)


def _record_run_span_on_commit(run: Run) -> None:
    span = {"trace_id": run.trace_id, "run_id": run.pk, "agent": run.agent.name, "status": run.status,
            "started": run.created_at, "ended": run.finished_at}
    transaction.on_commit(lambda: record_run_span(**span))


# --- The lease ------------------------------------------------------------------------------------


@dataclass
class Turn:
    """A task's turn with a run. The worker holds the lease for the whole turn and, while the run
    stays runnable and the turn's time lasts (``RUN_TURN_SECONDS``), takes the next step itself: no
    enqueue and no new claim, and the next step's boundary (control flags, budgets, instructions) is
    checked in the transaction that ends the step before it. Past its time the run goes back to the
    queue, so a run cannot keep a worker from the others."""

    run: Run  # as the turn's last transaction left it (agent pinned, tenant attached; its fence is the lease's)
    ends: float  # time.monotonic()

    def goes_on(self) -> bool:
        return time.monotonic() < self.ends


@contextmanager
def fenced(turn: Turn):
    """A transaction on the run that commits only while we still hold the lease (by id and fence
    alone, like the claim: the tenant comes with the row, and everything the step reads is scoped
    to it). The run comes with the agent and tenant the claim loaded."""
    with transaction.atomic():
        run = run_lock(run_id=turn.run.pk, fence=turn.run.fence)
        if run is None:
            raise LeaseLost(turn.run.pk)
        run.agent, run.tenant, run.turn = turn.run.agent, turn.run.tenant, turn
        yield run
        run_write(run)
    turn.run = run


def _release(run: Run) -> None:
    run.lease_owner = ""
    run.lease_expires_at = None


# --- One step -------------------------------------------------------------------------------------


MODEL_NEXT = "model_next"  # a step's boundary passed: the model is called next


def run_advance(*, run_id: int, worker: str) -> str:
    """Advance a run by a turn: a step, and the next ones while the run stays runnable and the turn
    lasts (see Turn). Safe to call twice at once and after a crash."""
    claimed = run_claim(run_id=run_id, worker=worker, lease_seconds=settings.RUN_LEASE_SECONDS)
    if claimed is None:
        return "no_lease"
    run, state = claimed
    pin_agent_version(run)
    turn = Turn(run=run, ends=time.monotonic() + settings.RUN_TURN_SECONDS)
    outcome = None
    while outcome in (None, MODEL_NEXT):
        with step_span(trace_id=run.trace_id, run_id=run_id, step=turn.run.step + 1, worker=worker) as span:
            if span is not None:
                span.set_attribute("gen_ai.agent.name", run.agent.name)
            try:
                if outcome is None:  # the turn's first step: its boundary in a transaction of its own
                    with fenced(turn) as locked:
                        outcome = _step_boundary(locked, state)
                if outcome == MODEL_NEXT:
                    outcome = _model_step(turn, state)
            except LeaseLost:
                outcome = "lease_lost"
            if span is not None:
                span.set_attribute("proctor.outcome", outcome)
    return outcome


def _step_boundary(run: Run, state: dict) -> str:
    """Before a step, with the row locked: cancel and pause requests, a call left pending (decided,
    resumed or left by a crash: it runs here), budgets and added instructions. Returns MODEL_NEXT, or
    how the run stopped or went on without the model."""
    if run.cancel_requested:
        _cancel_now(run)
        return "cancelled"
    if run.pause_requested:
        _set_status(run, RunStatus.PAUSED, by=_who(run.control_by))
        run.pause_requested = False
        return "paused"
    if state.get("pending_call"):
        return _run_pending_call(run, state)
    return _before_model_call(run, state) or MODEL_NEXT


def _to_next_step(run: Run, state: dict, outcome: str) -> str:
    """The step is done and the run is queued for the next one. Within its turn this worker takes it
    (the lease is kept; the next step's boundary is checked in this very transaction); otherwise it
    goes back to the queue: lease released, next step enqueued on commit."""
    _set_status(run, RunStatus.QUEUED)
    turn = getattr(run, "turn", None)
    if turn is not None and turn.goes_on():
        return _step_boundary(run, state)
    _release(run)
    _enqueue_on_commit(run.pk)
    return outcome


def _budgets(run: Run) -> engine.Fail | None:
    agent = run.agent
    started = run.started_at or run.created_at
    return engine.budget_exhausted(
        engine.Budgets(agent.max_steps, agent.max_tokens, float(agent.max_cost_usd), agent.max_seconds),
        engine.Usage(run.step, run.input_tokens + run.output_tokens, float(run.cost_usd),
                     (timezone.now() - started).total_seconds()),
    )


def _verdicts(run: Run, reply: engine.ModelReply):
    """Policy's verdict on the call the reply makes, evaluated outside the model with the call's own
    arguments (the engine acts on the first call; the other tools are listed by name only). Returns
    the verdicts and the policy's requirement for that call (None without a call). A plan that needs
    approval and a question get the rule that sets who decides and by when."""
    from approvals.services import call_requirement, human_step_requirement

    call = reply.tool_calls[0] if reply.tool_calls else None
    verdicts, need = {}, None
    for name in run.agent.tools:
        if spec := REGISTRY.get(name):
            if call is not None and call.tool == name and name != engine.ASK_TOOL:
                need = call_requirement(run=run, tool=name, risk=spec.risk, arguments=call.arguments)
                verdicts[name] = engine.ToolVerdict(spec.risk, need.needs_approval)
            else:
                verdicts[name] = engine.ToolVerdict(spec.risk, False)
    if call is not None and call.tool == engine.ASK_TOOL and engine.ASK_TOOL in verdicts:
        need = human_step_requirement(run=run, kind="question")
    elif call is not None and call.tool == engine.PLAN_TOOL and run.agent.plan_approval:
        need = human_step_requirement(run=run, kind="plan")
    return verdicts, need


def _before_model_call(run: Run, state: dict) -> str | None:
    """In the step's first transaction: budgets, added instructions, status. Returns why the run
    cannot call the model ("failed"), or None."""
    if exhausted := _budgets(run):
        _fail(run, exhausted.reason)
        return "failed"
    if run.inbox:
        for item in run.inbox:
            # A person's edit of the plan is said as it is; anything else is an instruction.
            text = item["text"] if item.get("kind") == "plan" else f"Instruction from operator: {item['text']}"
            state["conversation"].append({"role": "user", "text": text})
            emit(run, "instruction.applied", item)
        run.inbox = []
        _checkpoint(run, state)  # with the emptied inbox, or a crash before the next commit loses them
    run.started_at = run.started_at or timezone.now()
    planning = run.agent.plan_mode and not PlanStep.objects.filter(run=run).exists()
    _set_status(run, RunStatus.PLANNING if planning else RunStatus.WAITING_FOR_MODEL)
    # The model call happens outside any transaction; keep the lease long enough for it.
    run.lease_expires_at = timezone.now() + timedelta(seconds=settings.RUN_LEASE_SECONDS + settings.MODEL_TIMEOUT_SECONDS)
    return None


def _model_step(turn: Turn, state: dict) -> str:
    agent, step = turn.run.agent, turn.run.step + 1
    tools = [REGISTRY[name] for name in agent.tools if name in REGISTRY]
    policy = GatewayPolicy(timeout_seconds=settings.MODEL_TIMEOUT_SECONDS,
                           backoff_base_seconds=settings.MODEL_BACKOFF_SECONDS)
    result = complete(models=[agent.model, *agent.fallback_models], instructions=agent.instructions,
                      conversation=state["conversation"], tools=tools, plan_mode=agent.plan_mode,
                      breaker=Breaker(redis_client(timeout=2), policy), policy=policy)
    with fenced(turn) as run:
        run.step = step
        for number, attempt in enumerate(result.attempts, start=1):
            row_add(run, ModelCall(tenant=run.tenant, run=run, step=step, attempt=number, provider=attempt.provider,
                                   model=attempt.model, input_tokens=attempt.input_tokens,
                                   output_tokens=attempt.output_tokens, cached_tokens=attempt.cached_tokens,
                                   latency_ms=attempt.latency_ms, cost_usd=attempt.cost_usd, price=attempt.price,
                                   status=attempt.status, error=attempt.error))
            run.input_tokens += attempt.input_tokens
            run.output_tokens += attempt.output_tokens
            run.cost_usd += attempt.cost_usd
            emit(run, "model.call", {"step": step, "provider": attempt.provider, "model": attempt.model,
                                     "status": attempt.status, "error": attempt.error, "latency_ms": attempt.latency_ms,
                                     "input_tokens": attempt.input_tokens, "output_tokens": attempt.output_tokens,
                                     "cost_usd": str(attempt.cost_usd)})
        if result.reply is None:
            _fail(run, f"model_error: {result.error}"[:300])
            _checkpoint(run, state)
            return "failed"
        verdicts, need = _verdicts(run, result.reply)
        action = engine.next_action(result.reply, verdicts=verdicts, plan_mode=run.agent.plan_mode,
                                    plan_approval=run.agent.plan_approval)
        outcome = _apply(run, action, state, need)
        if outcome == "tool_pending" and REGISTRY[state["pending_call"]["tool"]].transactional:
            # Its effects live only in our database: it runs in this transaction, with the reply that asked
            # for it, so a crash undoes both together and the step is simply taken again.
            return _execute_pending(run, state, state["pending_call"])
        _checkpoint(run, state)
        if run.status == RunStatus.QUEUED:  # planned, or a refused call told to the model
            outcome = _to_next_step(run, state, outcome)
        # A pending tool keeps the lease (it runs next, in its own transaction); an ended or waiting run
        # gave it up with its status.
    if outcome == "tool_pending":
        return _tool_step(turn, state)
    return outcome


def _remember_call(state: dict, call: engine.ToolCall, text: str = "") -> None:
    state["conversation"].append({"role": "assistant", "text": text,
                                  "tool_call": {"id": call.call_id, "tool": call.tool, "arguments": call.arguments}})


def _tool_result(state: dict, call_id: str, tool: str, result: dict) -> None:
    state["conversation"].append({"role": "tool", "call_id": call_id, "tool": tool, "result": result})


def _apply(run: Run, action: engine.Action, state: dict, need=None) -> str:
    """``need``: the policy's requirement for the reply's call (it sets up an approval request)."""
    match action:
        case engine.Finish(answer=answer):
            state["conversation"].append({"role": "assistant", "text": answer})
            PlanStep.objects.filter(run=run).exclude(status="done").update(status="done")
            run.answer, run.last_action, run.terminal_reason = answer, "Answered", "completed"
            emit(run, "model.answer", {"text": answer})
            _set_status(run, RunStatus.COMPLETED)
            return "completed"
        case engine.Fail(reason=reason):
            _fail(run, reason)
            return "failed"
        case engine.ProposePlan(steps=steps, call=call, needs_approval=needs_approval):
            PlanStep.objects.filter(run=run).delete()
            PlanStep.objects.bulk_create(PlanStep(run=run, position=i, title=t, status="proposed" if needs_approval
                                                  else "pending") for i, t in enumerate(steps, start=1))
            _remember_call(state, call)
            run.last_action = f"Proposed a plan of {len(steps)} steps"
            emit(run, "plan.proposed", {"steps": list(steps), "needs_approval": needs_approval})
            if needs_approval:
                return _wait_for_person(run, state, call, need, kind="plan", arguments={"steps": list(steps)},
                                        next_action="The plan waits for approval", reason="the plan needs approval")
            _tool_result(state, call.call_id, call.tool, {"status": "ok", "data": {"accepted": True}})
            _set_status(run, RunStatus.QUEUED)
            return "planned"
        case engine.AskQuestion(call=call, question=question, options=options):
            _remember_call(state, call)
            run.last_action = "Asked a question"
            emit(run, "question.asked", {"question": question, "options": list(options)})
            return _wait_for_person(run, state, call, need, kind="question",
                                    arguments={"question": question, "options": list(options)},
                                    next_action="Waits for an answer", reason="the agent asked a question")
        case engine.RefuseToolCall(call=call, message=message):
            _remember_call(state, call)
            _tool_result(state, call.call_id, call.tool, {"status": "error", "error_type": "refused",
                                                          "retryable": False, "message": message})
            emit(run, "tool.refused", {"tool": call.tool, "arguments": call.arguments, "message": message})
            _set_status(run, RunStatus.QUEUED)
            return "refused"
        case engine.CallTool(call=call, risk=risk) | engine.AskApproval(call=call, risk=risk):
            _remember_call(state, call)
            needs_approval = isinstance(action, engine.AskApproval)
            state["pending_call"] = {"id": call.call_id, "tool": call.tool, "arguments": call.arguments,
                                     "reason": call.reason, "risk": risk, "step": run.step,
                                     "plan_step": call.plan_step, "needs_approval": needs_approval}
            if call.plan_step:
                PlanStep.objects.filter(run=run, position__lt=call.plan_step).exclude(status="done").update(status="done")
                PlanStep.objects.filter(run=run, position=call.plan_step).update(status="active")
            emit(run, "tool.proposed", {"tool": call.tool, "arguments": call.arguments, "reason": call.reason,
                                        "risk": risk, "needs_approval": needs_approval})
            if needs_approval:
                from approvals.services import approval_request_create

                approval_request_create(run=run, step=run.step, call=call, risk=risk, rule=need.rule)
                run.next_action = f"{call.tool} waits for approval"
                _set_status(run, RunStatus.WAITING_FOR_HUMAN, reason=f"{call.tool} needs approval")
                return "waiting_for_human"
            run.next_action = f"Run {call.tool}"
            _set_status(run, RunStatus.RUNNING_TOOL)
            return "tool_pending"
    raise AssertionError(f"unhandled action {action!r}")


def _wait_for_person(run: Run, state: dict, call: engine.ToolCall, need, *, kind: str, arguments: dict,
                     next_action: str, reason: str) -> str:
    """A plan to approve or a question to answer: the call stays pending until a person decides."""
    from approvals.services import approval_request_create

    state["pending_call"] = {"id": call.call_id, "tool": call.tool, "arguments": arguments, "reason": call.reason,
                             "risk": 0, "step": run.step, "plan_step": None,
                             "needs_approval": True, "kind": kind}
    approval_request_create(run=run, step=run.step, call=call, risk=0, rule=need.rule, kind=kind, arguments=arguments)
    run.next_action = next_action
    _set_status(run, RunStatus.WAITING_FOR_HUMAN, reason=reason)
    return "waiting_for_human"


def _tool_step(turn: Turn, state: dict) -> str:
    """The pending call in a fenced transaction of its own (after the reply that asked for it committed)."""
    with fenced(turn) as run:
        return _run_pending_call(run, state)


def _run_pending_call(run: Run, state: dict) -> str:
    """In a fenced transaction: execute the pending tool call and record its result; or, when it waits
    for a person, their decision's outcome."""
    pending = state["pending_call"]
    if not pending["needs_approval"]:
        return _execute_pending(run, state, pending)
    from approvals.services import approval_for_call

    approval = approval_for_call(run=run, step=pending["step"], call_id=pending["id"])
    if approval is None or approval.is_open:
        _set_status(run, RunStatus.WAITING_FOR_HUMAN)
        return "waiting_for_human"
    if approval.status != "approved":
        return _finish_tool(run, state, pending, _refused_result(approval), None)
    if approval.kind == "plan":
        return _finish_tool(run, state, pending, _plan_approved(run, approval), None)
    if approval.kind == "question":
        answer = {"answer": approval.answer, "answered_by": getattr(approval.decided_by, "username", "")}
        return _finish_tool(run, state, pending, {"status": "ok", "data": answer}, None)
    if approval.approved_arguments is not None:  # a reviewer edited them: what runs is what was approved
        pending = {**pending, "arguments": approval.approved_arguments, "edited_by_reviewer": True}
    return _execute_pending(run, state, pending, approval=approval)


def _refused_result(approval) -> dict:
    """What the model is told when a person said no, or nobody decided in time: words it can act on."""
    what = {"plan": "your plan", "question": "your question"}.get(approval.kind, "this call")
    if approval.status == "expired":
        message = {"plan": "Nobody approved your plan before it expired.",
                   "question": "Nobody answered your question before it expired."}.get(
            approval.kind, "Nobody approved this call before its approval expired, so it did not run.")
        message += " Do not ask again; choose another way or finish."
    else:
        who = approval.decided_by.username if approval.decided_by else "policy"
        note = approval.decision_note or "no reason given"
        verb = "declined to answer" if approval.kind == "question" else "rejected"
        then = {"plan": "Propose a different plan that meets the objection, or finish.",
                "question": "Go on without the answer if you can, or finish."}.get(
            approval.kind, "Do not try it again; choose another way or finish.")
        message = f"A reviewer ({who}) {verb} {what}: {note}. {then}"
    return {"status": "error", "error_type": "rejected_by_reviewer", "retryable": False, "message": message}


def _plan_approved(run: Run, approval) -> dict:
    """The approved plan (as proposed, or as a reviewer edited it) becomes the run's plan."""
    steps = approval.arguments_to_run["steps"]
    edited = approval.approved_arguments is not None
    if edited:
        PlanStep.objects.filter(run=run).delete()
        PlanStep.objects.bulk_create(PlanStep(run=run, position=i, title=t) for i, t in enumerate(steps, start=1))
    else:
        PlanStep.objects.filter(run=run, status="proposed").update(status="pending")
    data = {"accepted": True, "steps": steps}
    if edited:
        data["message"] = "A reviewer edited your plan before approving it. Follow these steps, in this order."
    return {"status": "ok", "data": data}


def _execute_pending(run: Run, state: dict, pending: dict, approval=None) -> str:
    """In a fenced transaction: run the pending call and record its result with the checkpoint. The
    ToolInvocation row, the tool's own writes and the checkpoint that clears the call commit together,
    so after a crash the call is simply pending again. A tool whose effects leave our database
    (``transactional=False``) may then be called again: it gets the idempotency key run:step:call
    (unique per tool) to make that harmless."""
    key = f"{run.pk}:{pending['step']}:{pending['id']}"
    arguments = pending["arguments"]
    spec = REGISTRY.get(pending["tool"])
    _set_status(run, RunStatus.RUNNING_TOOL)
    parsed = parse_arguments(spec, arguments)
    started = time.perf_counter()
    invocation = ToolInvocation(tenant=run.tenant, run=run, step=pending["step"], call_id=pending["id"],
                                tool=pending["tool"], arguments=arguments, idempotency_key=key)
    with tool_span(tool=pending["tool"], call_id=pending["id"], risk=pending["risk"]) as span:
        if isinstance(parsed, dict):
            result = parsed
        else:
            try:
                with transaction.atomic():  # a savepoint: a failing tool leaves the step's own writes intact
                    with connection.cursor() as cursor:
                        cursor.execute("SET LOCAL statement_timeout = %s", [int(spec.timeout_seconds * 1000)])
                    result = run_tool(spec, ToolContext(tenant=run.tenant, run=run, idempotency_key=key), parsed)
                    with connection.cursor() as cursor:
                        cursor.execute("SET LOCAL statement_timeout TO DEFAULT")
            except Exception as exc:
                result = {"status": "error", "error_type": "tool_crashed", "retryable": False,
                          "message": f"{pending['tool']} failed: {type(exc).__name__}."}
        if result["status"] != "ok":
            span_failed(span, result["error_type"], result["message"])
    invocation.status = result["status"]
    invocation.finished_at = timezone.now()
    invocation.duration_ms = int((time.perf_counter() - started) * 1000)
    if pending.get("edited_by_reviewer"):
        result = {**result, "reviewer_edited_arguments": arguments}  # the model learns what actually ran
    invocation.result = result
    if approval is None:
        row_add(run, invocation)  # written with the run
    else:
        from approvals.models import ApprovalRequest

        invocation.save()  # the approval links to it
        ApprovalRequest.objects.for_tenant(run.tenant_id).filter(pk=approval.pk).update(tool_invocation=invocation)
    return _finish_tool(run, state, pending, result, invocation)


def _finish_tool(run: Run, state: dict, pending: dict, result: dict, invocation) -> str:
    _tool_result(state, pending["id"], pending["tool"], result)
    state["pending_call"] = None
    emit(run, "tool.result", {"tool": pending["tool"], "arguments": pending["arguments"], "result": result,
                              "duration_ms": getattr(invocation, "duration_ms", None)})
    ok = result.get("status") == "ok"
    run.last_action = f"{pending['tool']} {'succeeded' if ok else 'failed: ' + result.get('error_type', '')}"[:300]
    run.next_action = ""
    _checkpoint(run, state)
    return _to_next_step(run, state, "tool_done")


def _fail(run: Run, reason: str) -> None:
    run.terminal_reason = reason[:300]
    run.last_action = reason[:300]
    _set_status(run, RunStatus.FAILED, reason=reason)


def _cancel_now(run: Run, by: str = "") -> None:
    from approvals.services import approvals_cancel_for_run

    approvals_cancel_for_run(run=run)
    by = by or _who(run.control_by)
    run.terminal_reason = f"cancelled by {by}"
    run.cancel_requested = False
    _set_status(run, RunStatus.CANCELLED, by=by)


# --- Control from people ----------------------------------------------------------------------------


def _lease_held(run: Run) -> bool:
    # A worker that died keeps lease_owner until the sweeper; only an unexpired lease means one is mid-step.
    return bool(run.lease_owner) and run.lease_expires_at is not None and run.lease_expires_at > timezone.now()


@contextmanager
def run_locked(*, tenant, run_id: int, savepoint: bool = True):
    """A transaction holding the run's row lock, for changes made by people (and by approvals).
    ``tenant``: the tenant or its id; a run of another tenant is Run.DoesNotExist, like a missing one.
    ``savepoint=False`` inside a caller's transaction that fails as a whole if this does (a decision)."""
    with transaction.atomic(savepoint=savepoint):
        locked = run_lock_in_tenant(run_id=run_id, tenant_id=getattr(tenant, "pk", tenant))
        if locked is None:
            raise Run.DoesNotExist(f"no run {run_id} in this tenant")
        yield locked
        run_write(locked)


NEXT_AFTER_DECISION = {  # kind → (approved, not approved)
    "tool_call": ("Run {tool}", "Tell the agent the call was rejected"),
    "plan": ("Follow the approved plan", "Tell the agent the plan was rejected"),
    "question": ("Read the answer", "Tell the agent nobody answered"),
}


def run_continue_after_decision(*, run: Run, tool: str, approved: bool, actor, kind: str = "tool_call") -> None:
    """With the row locked by run_locked: a run that waited for this decision goes back to the queue.
    A paused run stays paused; resuming it picks the decision up."""
    if run.status != RunStatus.WAITING_FOR_HUMAN:
        return
    _set_status(run, RunStatus.QUEUED, by=_who(actor))
    run.next_action = NEXT_AFTER_DECISION[kind][0 if approved else 1].format(tool=tool)
    _enqueue_on_commit(run.pk)


def run_cancel(*, run: Run, actor, by: str = "") -> Run:
    """``by`` names who cancels when it is not a person (e.g. "policy (approval expired)")."""
    with run_locked(tenant=run.tenant_id, run_id=run.pk) as locked:
        if locked.is_terminal:
            raise RunError(f"The run is already {locked.status}.")
        locked.control_by, locked.control_at = actor, timezone.now()
        if locked.status in (RunStatus.WAITING_FOR_HUMAN, RunStatus.PAUSED, RunStatus.QUEUED, RunStatus.CREATED) \
                and not _lease_held(locked):
            _cancel_now(locked, by=by)
        else:  # a worker is mid-step: it stops at the step boundary
            locked.cancel_requested = True
            emit(locked, "control.cancel_requested", {"by": _who(actor)})
    return locked


def run_pause(*, run: Run, actor) -> Run:
    with run_locked(tenant=run.tenant_id, run_id=run.pk) as locked:
        if locked.is_terminal or locked.status == RunStatus.PAUSED:
            raise RunError(f"The run is {locked.status}; it cannot be paused.")
        locked.control_by, locked.control_at = actor, timezone.now()
        if locked.status in (RunStatus.QUEUED, RunStatus.WAITING_FOR_HUMAN) and not _lease_held(locked):
            _set_status(locked, RunStatus.PAUSED, by=_who(actor))
        else:
            locked.pause_requested = True
            emit(locked, "control.pause_requested", {"by": _who(actor)})
    return locked


def run_resume(*, run: Run, actor) -> Run:
    with run_locked(tenant=run.tenant_id, run_id=run.pk) as locked:
        if locked.pause_requested:
            locked.pause_requested = False
            emit(locked, "control.resumed", {"by": _who(actor)})
            return locked
        if locked.status != RunStatus.PAUSED:
            raise RunError(f"The run is {locked.status}, not paused.")
        locked.control_by, locked.control_at = actor, timezone.now()
        _set_status(locked, RunStatus.QUEUED, by=_who(actor))
        from approvals.selectors import approval_waits

        if approval_waits(run=locked):  # its pending call, plan or question is still nobody's decision
            _set_status(locked, RunStatus.WAITING_FOR_HUMAN)
            return locked
        _enqueue_on_commit(locked.pk)
    return locked


def plan_editable_steps(plan: list[PlanStep]) -> tuple[list[PlanStep], list[PlanStep]]:
    """A plan splits into the steps already done (kept as they are) and the rest, which people may edit."""
    done = [step for step in plan if step.status == "done"]
    return done, [step for step in plan if step.status != "done"]


def run_plan_edit(*, run: Run, actor, steps: list[str]) -> Run:
    """A person rewrites, adds, deletes or reorders the steps of a paused run's plan that are not done
    yet. The agent is told the new plan at its next step; the edit is an event with author and diff."""
    steps = engine.plan_steps_cleaned(steps)
    with run_locked(tenant=run.tenant_id, run_id=run.pk) as locked:
        if locked.status != RunStatus.PAUSED:
            raise RunError(f"The run is {locked.get_status_display().lower()}; pause it to edit its plan"
                           + (" (a plan waiting for approval is edited from its approval)."
                              if locked.status == RunStatus.WAITING_FOR_HUMAN else "."))
        plan = list(PlanStep.objects.filter(run=locked))
        if any(step.status == "proposed" for step in plan):
            raise RunError("This plan waits for approval: edit it in the approval, then approve it.")
        done, _ = plan_editable_steps(plan)
        before = [step.title for step in plan]
        after = [step.title for step in done] + steps
        if problem := ("" if steps else "Keep at least one step that is not done.") or engine.plan_problem(after):
            raise RunError(problem)
        if after == before:
            raise RunError("The plan is unchanged.")
        # Numbered again from 1: steps done are not always the first ones (the agent may go back in its plan).
        PlanStep.objects.filter(run=locked).delete()
        PlanStep.objects.bulk_create([PlanStep(run=locked, position=i, title=step.title, status="done")
                                      for i, step in enumerate(done, start=1)]
                                     + [PlanStep(run=locked, position=len(done) + i, title=t)
                                        for i, t in enumerate(steps, start=1)])
        who = _who(actor)
        locked.inbox = [*locked.inbox, {"text": engine.plan_text(after, by=who), "by": who,
                                        "at": timezone.now().isoformat(), "kind": "plan"}]
        emit(locked, "plan.edited", {"by": who, "before": before, "after": after,
                                     "diff": engine.plan_diff(before, after)})
        from console.services import audit_record

        audit_record(tenant=locked.tenant_id, actor=actor, verb="run.plan_edited", target=f"run {locked.pk}",
                     data={"before": before, "after": after})
    return locked


def run_add_instruction(*, run: Run, actor, text: str) -> Run:
    text = (text or "").strip()
    if not text:
        raise RunError("Write the instruction to add.")
    if len(text) > MAX_INSTRUCTION_CHARS:
        raise RunError(f"Keep the instruction under {MAX_INSTRUCTION_CHARS} characters.")
    with run_locked(tenant=run.tenant_id, run_id=run.pk) as locked:
        if locked.is_terminal:
            raise RunError(f"The run is already {locked.status}.")
        item = {"text": text, "by": _who(actor), "at": timezone.now().isoformat()}
        locked.inbox = [*locked.inbox, item]
        emit(locked, "instruction.added", item)
    return locked


def runs_sweep() -> int:
    """Re-enqueue runs whose lease expired (crashed worker) or that sit queued with no task.
    Across tenants by design: a system task that only hands run ids to the step task."""
    from agents.tasks import run_step

    now = timezone.now()
    # Untouched for a while (a lease outlives that, so an expired one is always old enough), and the
    # sweep touches what it re-sends: a run waiting in a busy queue is not sent again every sweep.
    stale = Run.objects.filter(status__in=RUNNABLE, updated_at__lt=now - timedelta(seconds=settings.RUN_SWEEP_AFTER_SECONDS)
                               ).filter(Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True))
    ids = list(stale.values_list("id", flat=True)[:500])
    Run.objects.filter(pk__in=ids).update(updated_at=now)
    for run_id in ids:
        run_step.delay(run_id)
    return len(ids)
