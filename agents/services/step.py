"""The step: a worker's turn with a run, one model call after another between short transactions.

Extension points (agents.hooks): context blocks are asked for before the model call; usage after
each model attempt and tool call, and the engine's decision, are handed to their hooks inside the
step's transaction (rows they add commit with the step).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from agents import engine
from agents.conversation import Conversation
from agents.events import emit
from agents.gateway import Breaker, GatewayPolicy, complete
from agents.hooks import (
    ContextBlock,
    Decision,
    GateAsk,
    ModelCallEstimate,
    Need,
    RunOverrides,
    StepInfo,
    context_blocks,
    decision_made,
    gate_stops,
    hooks,
    review,
    run_overrides,
    usage_recorded,
)
from agents.models import ModelCall, PlanStep, Run, RunStatus
from agents.run_store import (
    RunChanged,
    row_add,
    run_claim,
    run_lock,
    run_unlocked,
    run_write_and_commit,
)
from agents.selectors import pin_agent_version
from agents.services import actions, tool_calls
from agents.services.transitions import (
    LeaseLost,
    cancel_now,
    enqueue_on_commit,
    fail,
    release,
    set_status,
    state_save,
    step_info,
    who,
)
from agents.services.usage import attempt_usage, call_estimate, run_charge
from agents.tool_settings import tool_risk
from agents.tools import tool_for
from agents.tracing import child_span, step_span
from console.health import redis_client


@dataclass
class Turn:
    """A task's turn with a run. The worker holds the lease for the whole turn and, while the run
    stays runnable and the turn's time lasts (``RUN_TURN_SECONDS``), takes the next step itself: no
    enqueue and no new claim, and the next step's boundary (control flags, budgets, instructions) is
    checked in the transaction that ends the step before it. Past its time the run goes back to the
    queue, so a run cannot keep a worker from the others.

    The turn keeps what the run carries between steps in memory: its state and its conversation
    (loaded once at the claim, then appended to). The state is checkpointed only when it differs from
    the one last committed: a step whose call ran in its own transaction leaves none behind."""

    run: Run  # as the turn's last transaction left it (agent pinned, tenant attached; its fence is the lease's)
    state: engine.RunState
    conversation: Conversation
    ends: float  # time.monotonic()
    committed: engine.RunState = engine.RunState()  # the state as the latest checkpoint holds it
    saving: engine.RunState | None = None  # the state the open transaction checkpoints
    overrides: RunOverrides | None = None  # what an app changed for this run (agents.hooks.run_overrides)

    def goes_on(self) -> bool:
        return time.monotonic() < self.ends

    def extended_while_idle(self) -> bool:
        """At the end of a turn: another turn right away if no task waits for a worker (handing the run
        back would only cost an enqueue, the broker and a claim, for this worker to take it again: the
        slowest 1% of a lone run's steps). Never with RUN_TURN_SECONDS=0 (a step per task)."""
        from agents.tasks import steps_waiting  # the task module imports the services

        if settings.RUN_TURN_SECONDS <= 0 or steps_waiting():
            return False
        self.ends = time.monotonic() + settings.RUN_TURN_SECONDS
        return True

    def save(self, run: Run) -> None:
        """The state as the step's checkpoint, unless the latest one holds it already (then a checkpoint
        this transaction set before, e.g. the call its reply asked for and has since run, is dropped)."""
        if self.state == self.committed:
            run.writes.checkpoint, self.saving = None, None
            return
        with child_span("checkpoint", f"checkpoint {run.step}", {"proctor.step": run.step,
                                                                "proctor.checkpoint.messages": self.conversation.length}):
            state_save(run, self.state)
        self.saving = self.state

    def committed_as(self, run: Run) -> None:
        """The turn's transaction committed: ``run`` is the run as it left it, and its checkpoint the latest."""
        self.run = run
        if self.saving is not None:
            self.committed, self.saving = self.saving, None


@contextmanager
def fenced(turn: Turn):
    """A transaction on the run that commits only while we still hold the lease (by id and fence
    alone, like the claim: the tenant comes with the row, and everything the step reads is scoped
    to it). The run comes with the agent and tenant the claim loaded."""
    turn.saving = None
    with transaction.atomic():
        locked = run_lock(run_id=turn.run.pk, fence=turn.run.fence)
        if locked is None:
            raise LeaseLost(turn.run.pk)
        run, turn.run.tenant.config_version = locked  # hooks may keep the tenant's configuration until it rises
        run.agent, run.tenant = turn.run.agent, turn.run.tenant
        yield run
        run_write_and_commit(run)
    turn.committed_as(run)


MODEL_NEXT = "model_next"  # a step's boundary passed: the model is called next


def run_advance(*, run_id: int, worker: str) -> str:
    """Advance a run by a turn: a step, and the next ones while the run stays runnable and the turn
    lasts (see Turn). Safe to call twice at once and after a crash."""
    claimed = run_claim(run_id=run_id, worker=worker, lease_seconds=settings.RUN_LEASE_SECONDS)
    if claimed is None:
        return "no_lease"
    run, state_json, messages = claimed
    pin_agent_version(run)
    overrides = _overridden(run) if hooks.run_overrides else None
    state = engine.RunState.from_json(state_json)
    conversation = Conversation(instructions=run.agent.instructions, messages=messages)
    turn = Turn(run=run, state=state, conversation=conversation, ends=time.monotonic() + settings.RUN_TURN_SECONDS,
                committed=state, overrides=overrides)
    outcome = None
    while outcome in (None, MODEL_NEXT):
        with step_span(trace_id=run.trace_id, run_id=run_id, step=turn.run.step + 1, worker=worker) as span:
            if span is not None:
                span.set_attributes({"gen_ai.agent.name": run.agent.name, "gen_ai.agent.id": str(run.agent_id),
                                     "gen_ai.agent.version": str(run.agent_version)})
            try:
                if outcome is None:  # the turn's first step: its boundary in a transaction of its own
                    with fenced(turn) as locked:
                        outcome = _step_boundary(locked, turn)
                if outcome == MODEL_NEXT:
                    outcome = _model_step(turn)
            except LeaseLost:
                outcome = "lease_lost"
            if span is not None:
                span.set_attribute("proctor.outcome", outcome)
    return outcome


def _overridden(run: Run) -> RunOverrides | None:
    """The run's agent (in memory) as an app's overrides change it for this run."""
    overrides = run_overrides(run)
    if overrides is not None:
        agent = run.agent
        agent.model = overrides.model or agent.model
        if overrides.fallback_models is not None:
            agent.fallback_models = list(overrides.fallback_models)
        if overrides.instructions is not None:
            agent.instructions = overrides.instructions
        if overrides.skip_review:
            agent.plan_approval = False
    return overrides


def _step_boundary(run: Run, turn: Turn) -> str:
    """Before a step, in a transaction on the run (locked, or a reply's checked at its write): cancel and
    pause requests, a call left pending (decided, resumed or left by a crash: it runs here; a reply's
    transaction never has one, see _reply_applied), budgets and added instructions. Returns MODEL_NEXT, or
    how the run stopped or went on without the model."""
    if run.cancel_requested:
        cancel_now(run)
        return "cancelled"
    if run.pause_requested:
        set_status(run, RunStatus.PAUSED, by=who(run.control_by))
        run.pause_requested = False
        return "paused"
    if turn.state.pending_call:
        return _then_next(run, turn, tool_calls.run_pending_call(run, turn))
    return _before_model_call(run, turn) or MODEL_NEXT


def _then_next(run: Run, turn: Turn, outcome: str) -> str:
    """After a pending call was dealt with: the next step if it ran (or was refused), else how it waits."""
    return _to_next_step(run, turn, outcome) if outcome == "tool_done" else outcome


def _to_next_step(run: Run, turn: Turn, outcome: str) -> str:
    """The step is done and the run is queued for the next one. Within its turn this worker takes it
    (the lease is kept; the next step's boundary is checked in this very transaction); otherwise it
    goes back to the queue: lease released, next step enqueued on commit."""
    set_status(run, RunStatus.QUEUED)
    if turn.goes_on() or turn.extended_while_idle():
        return _step_boundary(run, turn)
    release(run)
    enqueue_on_commit(run.pk)
    return outcome


def _budgets(run: Run) -> engine.Fail | None:
    agent = run.agent
    started = run.started_at or run.created_at
    return engine.budget_exhausted(
        engine.Budgets(agent.max_steps, agent.max_tokens, float(agent.max_cost_usd), agent.max_seconds),
        engine.Usage(run.step, run.input_tokens + run.output_tokens, float(run.cost_usd),
                     (timezone.now() - started).total_seconds()),
    )


def _before_model_call(run: Run, turn: Turn) -> str | None:
    """In the step's first transaction: budgets, added instructions, status. Returns why the run
    cannot call the model ("failed"), or None."""
    with child_span("budget", "budget check", {"proctor.step": run.step + 1}) as span:
        exhausted = _budgets(run)
        span.set_attribute("proctor.budget.outcome", exhausted.reason if exhausted else "within")
    if exhausted:
        fail(run, exhausted.reason)
        return "failed"
    if hooks.gates and (gated := _gated(run, turn)):
        return gated
    if run.inbox:
        for item in run.inbox:
            # A person's edit of the plan is said as it is; anything else is an instruction.
            text = item["text"] if item.get("kind") == "plan" else f"Instruction from operator: {item['text']}"
            turn.conversation.append(run, engine.user_message(text))
            emit(run, "instruction.applied", item)
        run.inbox = []  # the instructions are messages now, committed with the emptied inbox
    run.started_at = run.started_at or timezone.now()
    planning = run.agent.plan_mode and not PlanStep.objects.filter(run=run).exists()
    set_status(run, RunStatus.PLANNING if planning else RunStatus.WAITING_FOR_MODEL)
    # The model call happens outside any transaction; keep the lease long enough for it.
    run.lease_expires_at = timezone.now() + timedelta(seconds=settings.RUN_LEASE_SECONDS + settings.MODEL_TIMEOUT_SECONDS)
    return None


def _gated(run: Run, turn: Turn) -> str | None:
    """The gates before the model call: None to go on, else how the run stopped ("failed") or waits. A
    gate's ask waits for a person through the human review, as a question does; once decided, the ask
    acts on the decision (it may grant more) and the gates are asked again, so a grant too small for
    the next call asks anew (under a new key)."""
    info = step_info(run, run.step + 1)
    for _ in range(5):
        verdict = gate_stops(info, _estimate(run, turn))
        if not isinstance(verdict, GateAsk):
            if verdict:
                fail(run, verdict[:300])
                return "failed"
            return None
        decided = review().review_for_call(run=run, step=info.step, call_id=verdict.key)
        if decided is None or decided.is_open:
            if decided is None:
                call = engine.ToolCall(call_id=verdict.key, tool=verdict.title, arguments=verdict.arguments,
                                       reason=verdict.reason)
                review().request(run=run, step=info.step, call=call, risk=0, need=review().human_step_need(
                    run=run, kind=verdict.kind), kind=verdict.kind, arguments=verdict.arguments)
            run.next_action = f"Waits for a person: {verdict.title}"
            set_status(run, RunStatus.WAITING_FOR_HUMAN, reason=verdict.reason[:300])
            return "waiting_for_human"
        if reason := verdict.decided(decided):
            fail(run, reason[:300])
            return "failed"
    fail(run, "a gate kept asking after each decision")
    return "failed"


def _estimate(run: Run, turn: Turn) -> ModelCallEstimate:
    """The next model call as the gates see it (the agent's models, the conversation's text)."""
    return call_estimate(models=(run.agent.model, *run.agent.fallback_models),
                         prompt_characters=turn.conversation.characters)


def _context_text(blocks: list[ContextBlock]) -> str:
    """Context for this step only, each block delimited and named by where it came from."""
    return "\n\n".join(f'<context source="{block.source}">\n{block.text}\n</context>' for block in blocks)


def _model_step(turn: Turn) -> str:
    agent, step = turn.run.agent, turn.run.step + 1
    info = step_info(turn.run, step, latest_messages=dict(turn.conversation.latest))
    blocks = context_blocks(info)
    tools = [spec for name in agent.tools if (spec := tool_for(turn.run.tenant, name)) is not None]
    policy = GatewayPolicy(timeout_seconds=settings.MODEL_TIMEOUT_SECONDS,
                           backoff_base_seconds=settings.MODEL_BACKOFF_SECONDS)
    result = complete(models=[agent.model, *agent.fallback_models],
                      messages=turn.conversation.model_messages(_context_text(blocks)), tools=tools,
                      plan_mode=agent.plan_mode, breaker=Breaker(redis_client(timeout=2), policy), policy=policy)
    used = tuple({"source": block.source, "references": list(block.references)} for block in blocks)
    outcome = _reply_committed(turn, lambda run: _reply_applied(run, turn, info, result, used))
    if outcome == TOOL_NEXT:
        with fenced(turn) as run:  # after the reply that asked for it committed
            return _then_next(run, turn, tool_calls.run_pending_call(run, turn))
    return outcome


TOOL_NEXT = "tool_next"  # the reply asked for a call that runs in a transaction of its own, next


def _reply_committed(turn: Turn, apply) -> str:
    """``apply(run)``, the model's reply applied, in a transaction that does not lock the run first: the run
    as the turn's last transaction committed it (run_store.run_unlocked), written only if nobody changed it
    since (a person's instruction, pause, cancel or decision, a classifier's charge, another worker's claim,
    the tenant's configuration). Then it is one round trip: BEGIN, the write and COMMIT. If somebody did,
    nothing of it was kept: the turn's state and conversation go back to before it, and the reply is applied
    again to the run as it is now, locked (the model is not asked again). A transactional tool the reply
    asked for then ran twice, the first time in a transaction that kept nothing; its trace shows both."""
    state, said = turn.state, turn.conversation.mark()
    turn.saving = None
    try:
        with transaction.atomic():
            run = run_unlocked(turn.run)
            outcome = apply(run)
            run_write_and_commit(run)
    except RunChanged:
        turn.state = state
        turn.conversation.rewind(said)
        with fenced(turn) as run:
            return apply(run)
    turn.committed_as(run)
    return outcome


def _reply_applied(run: Run, turn: Turn, info: StepInfo, result, used: tuple) -> str:
    """The model's reply (``result``) in the step's transaction: its attempts, the policy's verdicts, the
    engine's action carried out, and a call that runs in our database run with it. Returns TOOL_NEXT for a
    call that runs in a transaction of its own, or how the step ended (the next one's boundary passed:
    MODEL_NEXT)."""
    run.step = info.step
    if used:
        emit(run, "context.used", {"step": info.step, "blocks": list(used)})
    _record_attempts(run, info, result.attempts)
    if result.reply is None:
        fail(run, f"model_error: {result.error}"[:300])
        turn.save(run)
        return "failed"
    verdicts, need = _verdicts(run, result.reply, skip_review=bool(turn.overrides and turn.overrides.skip_review))
    action = engine.next_action(result.reply, verdicts=verdicts, plan_mode=run.agent.plan_mode,
                                plan_approval=run.agent.plan_approval)
    if hooks.decision:
        decision_made(info, _decision(action, result.reply, verdicts, need, used, turn.conversation), run.writes)
    outcome = actions.apply_action(run, turn, action, need)
    pending = turn.state.pending_call
    if outcome == "tool_pending" and getattr(tool_for(run.tenant, pending.tool), "transactional", False):
        # Its effects live only in our database: it runs in this transaction, with the reply that asked
        # for it, so a crash undoes both together and the step is simply taken again.
        return _then_next(run, turn, tool_calls.execute_pending(run, turn, pending))
    turn.save(run)
    if run.status == RunStatus.QUEUED:  # planned, or a refused call told to the model
        outcome = _to_next_step(run, turn, outcome)
    # A pending tool keeps the lease (it runs next, in its own transaction); an ended or waiting run
    # gave it up with its status.
    return TOOL_NEXT if outcome == "tool_pending" else outcome


def _record_attempts(run: Run, info: StepInfo, attempts) -> None:
    """Each attempt at a model: its row, the run's totals, an event, and the usage hooks."""
    for number, attempt in enumerate(attempts, start=1):
        row_add(run, ModelCall(tenant=run.tenant, run=run, step=info.step, attempt=number, provider=attempt.provider,
                               model=attempt.model, input_tokens=attempt.input_tokens,
                               output_tokens=attempt.output_tokens, cached_tokens=attempt.cached_tokens,
                               latency_ms=attempt.latency_ms, cost_usd=attempt.cost_usd, price=attempt.price,
                               status=attempt.status, error=attempt.error))
        run_charge(run, attempt)
        emit(run, "model.call", {"step": info.step, "provider": attempt.provider, "model": attempt.model,
                                 "status": attempt.status, "error": attempt.error, "latency_ms": attempt.latency_ms,
                                 "input_tokens": attempt.input_tokens, "output_tokens": attempt.output_tokens,
                                 "cost_usd": str(attempt.cost_usd)})
        usage_recorded(info, attempt_usage(attempt, number), run.writes)


def _verdicts(run: Run, reply: engine.ModelReply, *, skip_review: bool = False):
    """Policy's verdict on the call the reply makes, evaluated outside the model with the call's own
    arguments (the engine acts on the first call; the other tools are listed by name only). Returns
    the verdicts and the policy's need for that call (None without a call). A plan that needs
    approval and a question get the rule that sets who decides and by when."""
    call = reply.tool_calls[0] if reply.tool_calls else None
    verdicts, need = {}, None
    for name in run.agent.tools:
        if spec := tool_for(run.tenant, name):
            risk = tool_risk(run.tenant, spec)  # the declared risk, or the tenant's raised one
            if call is not None and call.tool == name and name != engine.ASK_TOOL:
                need = Need(False) if skip_review else review().call_need(run=run, tool=name, risk=risk,
                                                                          arguments=call.arguments)
                verdicts[name] = engine.ToolVerdict(risk, need.needs_approval)
            else:
                verdicts[name] = engine.ToolVerdict(risk, False)
    if call is not None and call.tool == engine.ASK_TOOL and engine.ASK_TOOL in verdicts:
        need = review().human_step_need(run=run, kind="question")
    elif call is not None and call.tool == engine.PLAN_TOOL and run.agent.plan_approval:
        need = review().human_step_need(run=run, kind="plan")
    return verdicts, need


def _decision(action: engine.Action, reply: engine.ModelReply, verdicts: dict, need, context: tuple,
              conversation: Conversation) -> Decision:
    call = reply.tool_calls[0] if reply.tool_calls else None
    checks = {name: {"risk": verdict.risk, "needs_approval": verdict.needs_approval} for name, verdict in verdicts.items()}
    if call is not None and need is not None and call.tool in checks:
        checks[call.tool]["rule"] = need.describe
    detail = {key: value for key, value in vars(action).items() if key != "call"}
    if (acted_on := getattr(action, "call", None)) is not None:
        detail["call"] = {"id": acted_on.call_id, "tool": acted_on.tool, "arguments": acted_on.arguments}
    return Decision(action=type(action).__name__, detail=detail, reply_text=reply.text,
                    tool_calls=tuple({"id": c.call_id, "tool": c.tool, "arguments": c.arguments, "reason": c.reason}
                                     for c in reply.tool_calls),
                    policy_checks=checks, context=context,
                    inputs={"messages": conversation.length, "tool_results": conversation.open_tool_results()})
