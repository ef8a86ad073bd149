"""The step's extension points. Other apps register into them from their ``AppConfig.ready``;
the runtime imports none of those apps (tests/test_import_direction.py checks it).

- **context** (before the model call, outside any transaction): ``fn(StepInfo) -> list[ContextBlock]``.
  Each block is placed in the prompt, clearly delimited, for this step only; its references are
  recorded on the run (event ``context.used``) and passed to the decision hooks.
- **usage** (after each model attempt and each tool call, in the step's transaction; for a model call made
  for a run outside its steps, in ``run_usage_record``'s transaction, the run locked as in a step):
  ``fn(StepInfo, Usage, RunWrites)``. Rows added to the write set commit with the step, exactly once.
- **decision** (after the engine decided, in the step's transaction): ``fn(StepInfo, Decision, RunWrites)``.
- **status** (a run's status changed, in the transaction of the change: the run locked, or a step's reply
  written only if the row is still the version it read, see agents.run_store):
  ``fn(run, old, new)``. For what follows a run's life (run webhooks); it must not change the run: rows it
  adds commit with the change, work outside the database goes after commit (``transaction.on_commit``).
- **gate** (before each model call, in the transaction that passes the step's boundary: the run row
  locked, or, within a turn, the reply's transaction checked at its write; what it adds is rolled back and
  asked again if that check fails): ``fn(StepInfo, ModelCallEstimate) -> str | GateAsk | None``. A gate that returns a reason ends the
  run (failed, with that reason) before the model is called; ``None`` lets it go on (costs' budgets). A
  ``GateAsk`` makes the run wait for a person (a request through the human review, like a question);
  once they decided, the gates are asked again and the ask's ``decided`` acts on the decision.
  A model call made for a run outside its steps (memory's classifier) asks the same gates
  (``agents.services.usage.run_call_stopped``), with no lock held; there an ask stops the call (its
  ``stop_reason``) and opens no request.
- **span sinks**: ``factory() -> SpanExporter``; every process's TracerProvider exports to them.
- **run overrides** (once per turn, at the claim): ``fn(run) -> RunOverrides | None``. What an app changes
  for one run for its whole life (a replay: another model or instructions, tools answered from a
  recording, nobody asked to approve). The first answer that is not None applies.
- **human review** (one implementation, approvals): what policy asks of a call, the requests that
  make a run wait for a person, and what people decided. Without one, nothing waits for a person.

A hook that raises fails the step like any other error in it (the transaction rolls back and the
step is taken again), so billing rows are never half-written; context hooks are the exception: a
failing context provider is logged and the step goes on without its blocks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepInfo:
    """Who and what a step is for: enough for a hook to scope its reads and attribute its rows."""

    tenant_id: int
    run_id: int
    agent_id: int
    agent_version: int
    requested_by_id: int | None
    step: int
    goal: str
    trace_id: str
    # the tenant's configuration version (0 until its first change; None: not known): a hook may keep its
    # settings until it rises
    config_version: int | None = None
    # the conversation's latest person's message and latest tool result, as stored ({"user": ..., "tool": ...},
    # either missing when there is none yet), when the step runs in a turn that holds the conversation; None:
    # not known here (a hook that needs them reads them)
    latest_messages: dict[str, dict] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ContextBlock:
    source: str  # who placed it, e.g. "memory"
    text: str
    references: tuple[dict, ...] = ()  # what it was made of, e.g. {"id": 7, "version": 2, "score": 0.83}


@dataclass(frozen=True)
class Usage:
    kind: str  # "model" (one attempt) or "tool" (one call)
    name: str  # the model or the tool
    status: str
    provider: str = ""
    attempt: int = 1
    input_tokens: int = 0  # all input tokens, cached ones included (as OpenTelemetry counts them)
    output_tokens: int = 0  # all output tokens, reasoning included
    cached_tokens: int = 0  # input tokens read from the provider's cache
    cost_usd: Decimal = Decimal("0")
    price: dict = field(default_factory=dict)  # the price snapshot: source, version, rates, tier; "unpriced": True
    latency_ms: int = 0
    cache_write_tokens: int = 0  # input tokens written to the provider's cache
    reasoning_tokens: int = 0  # output tokens spent reasoning
    call_id: str = ""  # a tool call's id (a model attempt is identified by step and attempt)


@dataclass(frozen=True)
class ModelCallEstimate:
    """What the next model call may cost, before it is made: the models it may use (first the agent's
    own), the prompt's tokens as estimated from its text, and the most output it may ask for."""

    models: tuple[str, ...]
    input_tokens: int
    max_output_tokens: int


@dataclass(frozen=True)
class Decision:
    """The engine's decision with what it was made from: the reply, each tool's policy check, the
    context the step was given."""

    action: str  # Finish, Fail, ProposePlan, AskQuestion, CallTool, AskApproval, RefuseToolCall
    detail: dict
    reply_text: str
    tool_calls: tuple[dict, ...]
    policy_checks: dict[str, dict]  # tool → {"risk", "needs_approval", "rule"}
    context: tuple[dict, ...] = ()
    inputs: dict = field(default_factory=dict)  # what the model was given: {"messages": count, "tool_results": [call ids]}


@dataclass(frozen=True)
class Need:
    """What policy asks of one call, plan or question. ``rule`` is the review side's own value."""

    needs_approval: bool
    rule: Any = None
    describe: str = ""


@dataclass(frozen=True)
class Review:
    """A person's decision on a call, plan or question, as the run needs it."""

    id: int
    kind: str  # tool_call, plan, question, or a gate's kind (budget)
    status: str  # pending, escalated, approved, rejected, expired, cancelled
    decided_by: str = ""
    note: str = ""
    answer: str = ""
    arguments_to_run: dict | None = None
    edited: bool = False

    @property
    def is_open(self) -> bool:
        return self.status in ("pending", "escalated")


@dataclass(frozen=True)
class GateAsk:
    """A gate's "ask a person whether the run goes on", before its model call. The run waits for a
    request of ``kind`` keyed ``key`` (one per key and run; a new question needs a new key) on
    ``arguments`` (what the person sees and may edit). Once it is decided, the gate is asked again: it
    answers with the same ask, and ``decided(review)`` is called in the step's transaction to record what
    the decision grants (idempotently: a crashed step calls it again) and return None (the run goes on)
    or the reason to end the run."""

    key: str
    kind: str
    title: str  # what the request is about, as the queue lists it
    reason: str  # why the run waits, in words
    arguments: dict
    decided: Callable[[Review], str | None]
    # why a call that asks nobody stops instead (a call made for a run outside its steps, such as memory's
    # classifier: it never opens a request); empty: ``reason``
    stop_reason: str = ""


class HumanReview(Protocol):
    def call_need(self, *, run, tool: str, risk: int, arguments: dict) -> Need: ...
    def human_step_need(self, *, run, kind: str) -> Need: ...
    def request(self, *, run, step: int, call, risk: int, need: Need, kind: str, arguments: dict | None) -> None: ...
    def review_for_call(self, *, run, step: int, call_id: str) -> Review | None: ...
    # The call a review approved ran: its ToolInvocation (not yet written) goes in with the run's write set, linked.
    def invocation_ran(self, *, run, review_id: int, invocation) -> None: ...
    def cancel_open(self, *, run) -> None: ...
    def waits(self, *, run) -> bool: ...


class NoReview:
    """Nothing needs a person (no review app installed)."""

    def call_need(self, **_) -> Need:
        return Need(False)

    def human_step_need(self, **_) -> Need:
        return Need(False)

    def request(self, **_) -> None:
        raise RuntimeError("no human review is installed")

    def review_for_call(self, **_) -> None:
        return None

    def invocation_ran(self, *, run, invocation, **_) -> None:
        run.writes.add(invocation)  # nothing to link it to; written with the run all the same

    def cancel_open(self, **_) -> None:
        pass

    def waits(self, **_) -> bool:
        return False


@dataclass(frozen=True)
class RunOverrides:
    """Changes to how one run is carried out. ``tool_runner(run, spec, arguments) -> result | None``
    answers a tool call in the tool's place (a result dict as tools return) or returns None to let the
    tool run; ``skip_review``: no call, plan or question of this run waits for a person (with a
    ``tool_runner``, a question is answered by it, as a call of human.ask with the question and options)."""

    model: str = ""
    fallback_models: tuple[str, ...] | None = None
    instructions: str | None = None
    tool_runner: Callable[..., dict | None] | None = None
    skip_review: bool = False


ContextProvider = Callable[[StepInfo], list[ContextBlock]]
UsageHook = Callable[..., None]
DecisionHook = Callable[..., None]
StatusHook = Callable[..., None]
Gate = Callable[[StepInfo, ModelCallEstimate], "str | GateAsk | None"]


class Hooks:
    def __init__(self):
        self.context: list[ContextProvider] = []
        self.usage: list[UsageHook] = []
        self.decision: list[DecisionHook] = []
        self.status: list[StatusHook] = []
        self.gates: list[Gate] = []
        self.span_sinks: dict[str, Callable[[], Any]] = {}
        self.run_overrides: list[Callable[[Any], RunOverrides | None]] = []
        self.review: HumanReview = NoReview()


hooks = Hooks()


def register_context(provider: ContextProvider) -> ContextProvider:
    hooks.context.append(provider)
    return provider


def register_usage(hook: UsageHook) -> UsageHook:
    hooks.usage.append(hook)
    return hook


def register_decision(hook: DecisionHook) -> DecisionHook:
    hooks.decision.append(hook)
    return hook


def register_status_change(hook: StatusHook) -> StatusHook:
    hooks.status.append(hook)
    return hook


def status_changed(run, old: str, new: str) -> None:
    for hook in hooks.status:
        hook(run, old, new)


def register_gate(gate: Gate) -> Gate:
    hooks.gates.append(gate)
    return gate


def register_span_sink(name: str, factory: Callable[[], Any]) -> None:
    hooks.span_sinks[name] = factory


def register_run_overrides(provider: Callable[[Any], RunOverrides | None]) -> None:
    hooks.run_overrides.append(provider)


def run_overrides(run) -> RunOverrides | None:
    for provider in hooks.run_overrides:
        if (overrides := provider(run)) is not None:
            return overrides
    return None


def register_human_review(review: HumanReview) -> None:
    hooks.review = review


@contextmanager
def registered(*, context=(), usage=(), decision=(), gates=()):
    """For tests: hooks registered for the duration of a block."""
    added = [(hooks.context, list(context)), (hooks.usage, list(usage)), (hooks.decision, list(decision)),
             (hooks.gates, list(gates))]
    for target, items in added:
        target.extend(items)
    try:
        yield
    finally:
        for target, items in added:
            for item in items:
                target.remove(item)


def context_blocks(info: StepInfo) -> list[ContextBlock]:
    blocks: list[ContextBlock] = []
    for provider in hooks.context:
        try:
            blocks.extend(provider(info))
        except Exception:  # a step goes on without context it could not get; the log says why
            logger.warning("context provider %s failed for run %s", getattr(provider, "__name__", provider),
                           info.run_id, exc_info=True)
    return blocks


def usage_recorded(info: StepInfo, usage: Usage, writes) -> None:
    for hook in hooks.usage:
        hook(info, usage, writes)


def decision_made(info: StepInfo, decision: Decision, writes) -> None:
    for hook in hooks.decision:
        hook(info, decision, writes)


def gate_stops(info: StepInfo, estimate: ModelCallEstimate) -> str | GateAsk | None:
    """The first gate's reason to stop the run before its model call (or its ask to a person), or None."""
    for gate in hooks.gates:
        if verdict := gate(info, estimate):
            return verdict
    return None


def review() -> HumanReview:
    return hooks.review


def span_sinks() -> dict[str, Any]:
    return {name: factory() for name, factory in hooks.span_sinks.items()}
