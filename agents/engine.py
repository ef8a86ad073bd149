"""The pure agent engine: run state + model reply + policy → one action.

No Django, no I/O. Services feed it what the database and the gateway said and
carry out what it decides. Policy is decided outside the model: the engine gets
each tool's verdict (risk, needs approval) and the model cannot argue past it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ToolCall:
    call_id: str
    tool: str
    arguments: dict
    reason: str = ""  # the model's stated reason, shown to reviewers
    plan_step: int | None = None  # which plan step this call works on, when the model says


@dataclass(frozen=True)
class ModelReply:
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class ToolVerdict:
    """What policy says about one tool for this run."""

    risk: int
    needs_approval: bool
    rule: str = ""


@dataclass(frozen=True)
class Budgets:
    max_steps: int
    max_tokens: int
    max_cost_usd: float
    max_seconds: float


@dataclass(frozen=True)
class Usage:
    steps: int
    tokens: int
    cost_usd: float
    elapsed_seconds: float


# --- Actions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finish:
    answer: str


@dataclass(frozen=True)
class Fail:
    reason: str


@dataclass(frozen=True)
class ProposePlan:
    steps: tuple[str, ...]
    call: ToolCall


@dataclass(frozen=True)
class CallTool:
    call: ToolCall
    risk: int


@dataclass(frozen=True)
class AskApproval:
    call: ToolCall
    risk: int
    rule: str


@dataclass(frozen=True)
class RefuseToolCall:
    """The call cannot run; the message goes back to the model as the tool's result."""

    call: ToolCall
    message: str


Action = Finish | Fail | ProposePlan | CallTool | AskApproval | RefuseToolCall

PLAN_TOOL = "plan.propose"


def budget_exhausted(budgets: Budgets, usage: Usage) -> Fail | None:
    """Checked before every step; the reason names the budget that ran out."""
    if usage.steps >= budgets.max_steps:
        return Fail(f"budget_exhausted: steps ({usage.steps} of {budgets.max_steps})")
    if usage.tokens >= budgets.max_tokens:
        return Fail(f"budget_exhausted: tokens ({usage.tokens} of {budgets.max_tokens})")
    if usage.cost_usd >= budgets.max_cost_usd:
        return Fail(f"budget_exhausted: cost (${usage.cost_usd:.4f} of ${budgets.max_cost_usd:.4f})")
    if usage.elapsed_seconds >= budgets.max_seconds:
        return Fail(f"budget_exhausted: wall_clock ({usage.elapsed_seconds:.0f}s of {budgets.max_seconds:.0f}s)")
    return None


def next_action(reply: ModelReply, *, verdicts: dict[str, ToolVerdict], plan_mode: bool) -> Action:
    """Decide what the run does with this reply. `verdicts` holds only the tools this agent may use."""
    if not reply.tool_calls:
        if reply.text.strip():
            return Finish(reply.text.strip())
        return Fail("model_error: the model returned neither an answer nor a tool call")
    call = reply.tool_calls[0]  # one action per step; further calls are asked for again next step
    if call.tool == PLAN_TOOL:
        steps = call.arguments.get("steps")
        if not plan_mode:
            return RefuseToolCall(call, "Planning is off for this agent: act directly with the other tools.")
        if not isinstance(steps, list) or not steps or not all(isinstance(s, str) and s.strip() for s in steps):
            return RefuseToolCall(call, "plan.propose needs 'steps': a non-empty list of short strings.")
        return ProposePlan(tuple(s.strip()[:300] for s in steps[:30]), call)
    verdict = verdicts.get(call.tool)
    if verdict is None:
        allowed = ", ".join(sorted(verdicts)) or "none"
        return RefuseToolCall(call, f"There is no tool named '{call.tool}' for this agent. Tools you can use: {allowed}.")
    if verdict.needs_approval:
        return AskApproval(call, verdict.risk, verdict.rule)
    return CallTool(call, verdict.risk)


# The run state machine, in one place: services ask check_transition before every status change.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    "created": frozenset({"queued", "cancelled"}),
    # queued → running_tool / waiting_for_human: a pending tool call resumes (after approval or a crash)
    "queued": frozenset({"planning", "waiting_for_model", "running_tool", "waiting_for_human", "paused",
                         "cancelled", "failed", "completed"}),
    "planning": frozenset({"waiting_for_model", "waiting_for_human", "queued", "paused", "cancelled", "failed"}),
    "waiting_for_model": frozenset({"running_tool", "waiting_for_human", "queued", "completed", "failed",
                                    "paused", "cancelled", "planning"}),
    "running_tool": frozenset({"queued", "waiting_for_model", "failed", "paused", "cancelled", "completed"}),
    "waiting_for_tool": frozenset({"running_tool", "queued", "failed", "cancelled"}),
    "waiting_for_human": frozenset({"queued", "cancelled", "failed", "paused"}),
    "paused": frozenset({"queued", "cancelled"}),
    "completed": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
}


class InvalidTransition(Exception):
    pass


def check_transition(current: str, new: str) -> None:
    if current != new and new not in ALLOWED_TRANSITIONS.get(current, frozenset()):
        raise InvalidTransition(f"a run cannot go from {current} to {new}")
