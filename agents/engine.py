"""The pure agent engine: run state + model reply + policy → one action.

No Django, no I/O. Services feed it what the database and the gateway said and
carry out what it decides. Policy is decided outside the model: the engine gets
each tool's verdict (risk, needs approval) and the model cannot argue past it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from difflib import SequenceMatcher


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
    needs_approval: bool = False  # the agent requires a person to approve (or edit) the plan first


@dataclass(frozen=True)
class AskQuestion:
    """The model asks a person; the run waits and the answer comes back as the tool's result."""

    call: ToolCall
    question: str
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class CallTool:
    call: ToolCall
    risk: int


@dataclass(frozen=True)
class AskApproval:
    call: ToolCall
    risk: int


@dataclass(frozen=True)
class RefuseToolCall:
    """The call cannot run; the message goes back to the model as the tool's result."""

    call: ToolCall
    message: str


Action = Finish | Fail | ProposePlan | AskQuestion | CallTool | AskApproval | RefuseToolCall

PLAN_TOOL = "plan.propose"
ASK_TOOL = "human.ask"  # answered by a person through the approval queue, never run as code
MAX_PLAN_STEPS = 30
MAX_PLAN_STEP_CHARS = 300


def plan_steps_cleaned(steps):
    """A person's edit of a plan: each step's text stripped, emptied steps dropped (they were deleted);
    anything that is not text is kept for plan_problem to name."""
    if not isinstance(steps, list):
        return steps
    return [step.strip() if isinstance(step, str) else step for step in steps if not isinstance(step, str) or step.strip()]


def plan_problem(steps) -> str:
    """Why a plan (from the model or a person's edit) cannot be used, or ""."""
    if not isinstance(steps, list) or not steps:
        return "A plan needs at least one step."
    if len(steps) > MAX_PLAN_STEPS:
        return f"A plan has at most {MAX_PLAN_STEPS} steps; this one has {len(steps)}."
    for number, step in enumerate(steps, start=1):
        if not isinstance(step, str) or not step.strip():
            return f"Step {number} is empty; write it or delete it."
        if len(step.strip()) > MAX_PLAN_STEP_CHARS:
            return f"Step {number} is {len(step.strip())} characters; keep each step under {MAX_PLAN_STEP_CHARS}."
    return ""


PLAN_CHANGED = re.compile(r"^The plan was changed by \S+\. Follow this plan from now on:\n")


def plan_text(steps: list[str], *, by: str) -> str:
    """How an edited plan is said to the agent: numbered lines (``plan_in_text`` reads them back)."""
    lines = "\n".join(f"{number}. {title}" for number, title in enumerate(steps, start=1))
    return f"The plan was changed by {by}. Follow this plan from now on:\n{lines}"


def plan_in_text(text: str) -> list[str] | None:
    """The steps of a plan said by ``plan_text``, or None for any other text."""
    if not PLAN_CHANGED.match(text):
        return None
    return re.findall(r"^\d+\. (.+)$", text, re.M)


def plan_diff(before: list[str], after: list[str]) -> list[dict]:
    """What an edit did to a plan, step by step: kept, added, removed, changed, or moved (the same
    text at another position). Each item has the op, the text and, where it applies, the old text."""
    matcher = SequenceMatcher(a=before, b=after, autojunk=False)
    diff: list[dict] = []
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            diff += [{"op": "kept", "text": text} for text in after[b1:b2]]
        elif op == "replace" and a2 - a1 == b2 - b1:
            diff += [{"op": "changed", "text": new, "was": old} for old, new in zip(before[a1:a2], after[b1:b2])]
        else:
            diff += [{"op": "removed", "text": text} for text in before[a1:a2]]
            diff += [{"op": "added", "text": text} for text in after[b1:b2]]
    removed = {item["text"] for item in diff if item["op"] == "removed"}
    added = {item["text"] for item in diff if item["op"] == "added"}
    moved = removed & added
    return [{**item, "op": "moved"} if item["op"] == "added" and item["text"] in moved else item
            for item in diff if not (item["op"] == "removed" and item["text"] in moved)]


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


def next_action(reply: ModelReply, *, verdicts: dict[str, ToolVerdict], plan_mode: bool,
                plan_approval: bool = False) -> Action:
    """Decide what the run does with this reply. `verdicts` holds only the tools this agent may use;
    with `plan_approval` a proposed plan waits for a person."""
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
        steps = tuple(s.strip()[:MAX_PLAN_STEP_CHARS] for s in steps[:MAX_PLAN_STEPS])
        return ProposePlan(steps, call, needs_approval=plan_approval)
    verdict = verdicts.get(call.tool)
    if verdict is None:
        allowed = ", ".join(sorted(verdicts)) or "none"
        return RefuseToolCall(call, f"There is no tool named '{call.tool}' for this agent. Tools you can use: {allowed}.")
    if call.tool == ASK_TOOL:
        question, options = call.arguments.get("question"), call.arguments.get("options") or []
        if not isinstance(question, str) or not question.strip():
            return RefuseToolCall(call, "human.ask needs 'question': the question to put to a person.")
        if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
            return RefuseToolCall(call, "human.ask 'options', when given, is a list of short strings.")
        return AskQuestion(call, question.strip(), tuple(o.strip() for o in options if o.strip())[:10])
    if verdict.needs_approval:
        return AskApproval(call, verdict.risk)
    return CallTool(call, verdict.risk)


# --- The run's state ---------------------------------------------------------------------------
#
# What a run carries from one step to the next, besides its conversation (stored append-only, a row
# per message, in the transaction of the step that said it) and its row: the call waiting to run or to
# be decided. Small and of constant size, and written only when it changes (a step that asked for a
# call and ran it in its own transaction ends where it began: no checkpoint row), so a checkpoint
# costs the same at step 1,000 as at step 1, and most steps write none.


@dataclass(frozen=True)
class PendingCall:
    """A call the run will make (or a plan or question a person decides) once nothing stands in the way."""

    id: str
    tool: str
    arguments: dict
    step: int
    reason: str = ""
    risk: int = 0
    plan_step: int | None = None
    needs_approval: bool = False
    kind: str = "tool_call"  # tool_call, plan, question

    @classmethod
    def for_call(cls, call: ToolCall, *, step: int, risk: int, needs_approval: bool, kind: str = "tool_call",
                 arguments: dict | None = None) -> PendingCall:
        return cls(id=call.call_id, tool=call.tool, arguments=call.arguments if arguments is None else arguments,
                   step=step, reason=call.reason, risk=risk, plan_step=call.plan_step if kind == "tool_call" else None,
                   needs_approval=needs_approval, kind=kind)



PENDING_FIELDS = {field.name for field in fields(PendingCall)}


@dataclass(frozen=True)
class RunState:
    pending_call: PendingCall | None = None

    def to_json(self) -> dict:
        return {"pending_call": asdict(self.pending_call) if self.pending_call else None}

    @classmethod
    def from_json(cls, data: dict | None) -> RunState:
        data = data or {}
        pending = data.get("pending_call")
        if pending:  # a checkpoint written by an older version may carry keys since dropped
            pending = PendingCall(**{name: pending[name] for name in PENDING_FIELDS if name in pending})
        return cls(pending_call=pending or None)  # an older checkpoint's conversation watermark is not needed


def user_message(text: str) -> dict:
    return {"role": "user", "text": text}


def assistant_message(text: str = "", call: ToolCall | None = None) -> dict:
    message = {"role": "assistant", "text": text}
    if call is not None:
        message["tool_call"] = {"id": call.call_id, "tool": call.tool, "arguments": call.arguments}
    return message


def tool_message(call_id: str, tool: str, result: dict) -> dict:
    return {"role": "tool", "call_id": call_id, "tool": tool, "result": result}


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
