"""The offline demo model: deterministic, needs no key, clearly labelled in the UI.

A pydantic-ai FunctionModel, so the gateway treats it like any other model. It
reads the conversation (goal, tool results, reviewer feedback, added
instructions) and plays a plan-and-execute agent: plan, look up the account,
draft the email, send it, report.
"""

from __future__ import annotations

import asyncio
import json
import re

from pydantic_ai.messages import (
    ModelMessage,
    ModelResponse,
    RetryPromptPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage

from agents.engine import plan_in_text

ACCOUNT_KEY = re.compile(r"\b([A-Z]{2,10}-\d{2,6})\b")


def _conversation(messages: list[ModelMessage]):
    prompts, returns, calls = [], [], []
    for message in messages:
        for part in message.parts:
            if isinstance(part, UserPromptPart):
                prompts.append(part.content if isinstance(part.content, str) else str(part.content))
            elif isinstance(part, (ToolReturnPart, RetryPromptPart)):
                returns.append(part)
            elif isinstance(part, ToolCallPart):
                calls.append(part)
    return prompts, returns, calls


def _result(part) -> dict:
    if isinstance(part, RetryPromptPart):
        return {"status": "error", "message": str(part.content)}
    content = part.content
    if isinstance(content, str):
        try:
            content = json.loads(content)
        except json.JSONDecodeError:
            return {"status": "ok", "data": content}
    return content if isinstance(content, dict) else {"status": "ok", "data": content}


def _call(tool: str, args: dict, n: int, reason: str, plan_step: int | None = None) -> ModelResponse:
    args = {**args, "_reason": reason} if reason else args
    if plan_step is not None:
        args["_plan_step"] = plan_step
    return ModelResponse(parts=[ToolCallPart(tool_name=tool, args=args, tool_call_id=f"call_{n}")])


DEFAULT_PLAN = ["Look up the account and its notes", "Draft the renewal email", "Send it to the success manager",
                "Report what was done"]


def _step_kind(title: str) -> str:
    """What a plan step asks of the demo agent, by its words (a person may have written it)."""
    text = title.lower()
    if any(w in text for w in ("write a note", "log a note", "add a note", "leave a note", "note on")):
        return "note"
    if "draft" in text:
        return "draft"
    if "send" in text or "email" in text:
        return "send"
    if any(w in text for w in ("book", "meeting", "call", "calendar")):
        return "book"
    if any(w in text for w in ("look", "read", "find", "account", "research")):
        return "lookup"
    if any(w in text for w in ("report", "summar", "tell", "finish")):
        return "report"
    return "unknown"


def _current_plan(messages: list[ModelMessage]) -> tuple[list[str] | None, bool]:
    """The plan in force (the latest of the approved plan.propose result and a person's edit), and
    whether a person changed it since the last tool result."""
    plan, changed_since = None, False
    for message in messages:
        for part in message.parts:
            if isinstance(part, (ToolReturnPart, RetryPromptPart)):
                changed_since = False
                if isinstance(part, ToolReturnPart) and part.tool_name == "plan.propose":
                    plan = (_result(part).get("data") or {}).get("steps") or plan
            elif isinstance(part, UserPromptPart) and isinstance(part.content, str) and (
                    edited := plan_in_text(part.content)) is not None:
                plan, changed_since = edited, True
    return plan, changed_since


def _chosen_account(answer: str, accounts: list[dict]) -> str | None:
    if match := ACCOUNT_KEY.search(answer.upper()):
        return match.group(1)
    named = [a["key"] for a in accounts if a["name"].lower() in answer.lower() or answer.lower().strip() in a["name"].lower()]
    return named[0] if len(named) == 1 else None


MEMORY_LINE = re.compile(r"^- \[memory #(\d+) v\d+, (\w+)[^\]]*\] (.+)$", re.MULTILINE)
CHAMPION_NOTE = re.compile(r"^Champion:\s*(.+?)\.?$", re.IGNORECASE)


def _memories(prompts: list[str]) -> list[tuple[int, str, str]]:
    """The memories placed in this step's context (id, type, text), read from the prompt like any model would."""
    block = next((p for p in reversed(prompts) if p.startswith('<context source="memory">')), "")
    return [(int(m.group(1)), m.group(2), m.group(3)) for m in MEMORY_LINE.finditer(block)]


def _wants_bullets(memories: list[tuple[int, str, str]]) -> bool:
    return any(kind == "preference" and "bullet" in text.lower() for _, kind, text in memories)


def _email_body(data: dict, *, bullets: bool, extra: str) -> str:
    renewal = data["renewal_date"] or "a date to confirm"
    if bullets:  # the requester's remembered preference: a short bullet summary first
        summary = (f"In short:\n- ARR ${data['arr_usd']:,}\n- Renews on {renewal}\n- Health: {data['health']}\n"
                   "- Next: confirm stakeholders, send the quote, book the review call")
        return f"Hi,\n\n{summary}{extra}\n\nProctor demo agent"
    return (
        f"Hi,\n\nHere is the renewal plan for {data['name']}: ARR ${data['arr_usd']:,}, renewal on "
        f"{renewal}, health {data['health']}.\n\n"
        "1. Confirm usage and stakeholders this week.\n2. Send the renewal quote two weeks before the date.\n"
        "3. Book a review call with the champion." + extra + "\n\nProctor demo agent"
    )


def _champion_proposal(data: dict) -> dict | None:
    """A CRM note naming the account's champion, as a memory worth proposing."""
    for note in data.get("notes") or []:
        if match := CHAMPION_NOTE.match(note.strip()):
            return {"type": "fact", "scope": "tenant", "subject": f"champion of {data['key']}",
                    "content": f"The champion at {data['key']} is {match.group(1)}.", "confidence": 0.8}
    return None


def renewal_planner(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Plans, then works through the plan in force (as approved or edited by people): each step's
    words pick its tool; steps it has no tool for are skipped and reported."""
    prompts, returns, calls = _conversation(messages)
    goal = prompts[0] if prompts else ""
    instructions = [p.removeprefix("Instruction from operator: ") for p in prompts[1:] if p.startswith("Instruction from operator: ")]
    tools = {t.name for t in info.function_tools}
    done = {c.tool_name: _result(r) for c, r in zip(calls, returns, strict=False)}
    n = len(calls) + 1

    plan, replanned = _current_plan(messages)
    # A refusal ends the run, unless a person has since given the agent a new plan to follow.
    if returns and _result(returns[-1]).get("error_type") == "rejected_by_reviewer" and not replanned:
        last_tool = calls[-1].tool_name
        feedback = _result(returns[-1]).get("message", "")
        if last_tool == "plan.propose":
            return ModelResponse(parts=[TextPart(f"My plan was not approved: {feedback} I stop here without acting.")])
        if last_tool == "human.ask":
            return ModelResponse(parts=[TextPart(f"I needed an answer to go on: {feedback} I stop here.")])
        return ModelResponse(parts=[TextPart(
            f"I did not run {last_tool}: {feedback} The draft stays saved so someone can adjust and send it."
        )])
    if "plan.propose" in tools and "plan.propose" not in done:
        return _call("plan.propose", {"steps": DEFAULT_PLAN}, n, "Plan before acting")
    plan = plan or DEFAULT_PLAN
    kinds = [(position, title, _step_kind(title)) for position, title in enumerate(plan, start=1)]
    first_lookup = next((p for p, _, kind in kinds if kind != "unknown"), None)

    # Every step works on the account: find it first (asking which one when several match).
    match = ACCOUNT_KEY.search(goal)
    key = match.group(1) if match else None
    if key is None:
        if "crm.search_accounts" not in done:
            words = [w for w in re.findall(r"[A-Za-z]{4,}", goal) if w.lower() not in {"prepare", "renewal", "plan", "email", "account"}]
            return _call("crm.search_accounts", {"query": words[0] if words else goal[:20]}, n, "Find the account", first_lookup)
        accounts = done["crm.search_accounts"].get("data", {}).get("accounts", [])
        if len(accounts) > 1 and "human.ask" in tools:
            if "human.ask" not in done:
                options = [f"{a['name']} ({a['key']})" for a in accounts]
                return _call("human.ask", {"question": f"Several accounts match the goal: {', '.join(options)}. Which one?",
                                           "options": options}, n, "The goal matches several accounts")
            answer = done["human.ask"].get("data", {}).get("answer", "")
            key = _chosen_account(answer, accounts)
            if key is None:
                return ModelResponse(parts=[TextPart(f"I could not tell which account you meant from “{answer}”.")])
        else:
            key = accounts[0]["key"] if accounts else None
    if key is None:
        return ModelResponse(parts=[TextPart("I could not find an account matching the goal, so there is nothing to send.")])

    account = done.get("crm.get_account")
    if account is None:
        return _call("crm.get_account", {"key": key}, n, "Read the account and its notes", first_lookup)
    if account.get("status") != "ok":
        return ModelResponse(parts=[TextPart(f"I could not read account {key}: {account.get('message')}")])
    data = account["data"]
    # What it read worth remembering (an agent allowed to propose memories): the account's champion.
    if "memory.remember" in tools and "memory.remember" not in done and (proposal := _champion_proposal(data)):
        return _call("memory.remember", proposal, n, "The CRM names the account's champion", first_lookup)
    extra = "".join(f"\n\nNote: {text}" for text in instructions)
    subject = f"Renewal plan for {data['name']} ({data['key']})"
    body = _email_body(data, bullets=_wants_bullets(_memories(prompts)), extra=extra)
    email = {"to": data["success_manager"], "subject": subject, "body": body}
    renewal = data["renewal_date"] or "2030-01-01"
    actions = {
        "draft": ("email.draft", email, "Save a draft first so it can be reviewed"),
        "send": ("email.send", email, f"Send the renewal plan to {data['success_manager']}"),
        "book": ("calendar.book", {"title": f"Renewal review: {data['name']}", "attendees": [data["success_manager"]],
                                   "starts_at": f"{renewal}T15:00:00Z", "minutes": 30},
                 "Book the renewal review with the success manager"),
        "note": ("notes.write", {"account_key": data["key"], "body": f"Renewal prepared by the agent: {subject}."},
                 "Leave a note on the account"),
    }
    skipped = []
    for position, title, kind in kinds:
        if kind == "report":
            break
        if kind in actions:
            name, args, reason = actions[kind]
            if name in tools and name not in done:
                return _call(name, args, n, reason, position)
            if name not in tools:
                skipped.append(f"{position}. {title} (I may not use {name})")
        elif kind == "unknown":
            skipped.append(f"{position}. {title} (no tool for it)")

    sent = done.get("email.send")
    outcome = (f"sent to {sent['data']['sent_to']}" if sent and sent.get("status") == "ok" else
               "not sent" + ("" if sent else " (sending was not in the plan)"))
    answer = f"Renewal plan for {data['name']} prepared and {outcome}."
    if (booked := done.get("calendar.book")) and booked.get("status") == "ok":
        answer += " The renewal review is booked."
    if skipped:
        answer += " Skipped plan steps: " + "; ".join(skipped) + "."
    if instructions:
        answer += " Instructions followed: " + "; ".join(instructions)
    return ModelResponse(parts=[TextPart(answer)])


def noop_looper(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """For benchmarks and tests: call the no-op tool until the goal's number of steps is reached.
    Reads only the goal and its own last call (a 1,000-step run costs it no more per step than a
    short one), and says its usage itself, growing with the calls made as a real provider's would."""
    goal = next((part.content for part in messages[0].parts if isinstance(part, UserPromptPart)), "") if messages else ""
    found = re.search(r"\d+", goal if isinstance(goal, str) else str(goal))
    wanted = int(found.group()) if found else 3
    made = 0
    for message in reversed(messages):
        if isinstance(message, ModelResponse) and (calls := [p for p in message.parts if isinstance(p, ToolCallPart)]):
            made = int(calls[-1].tool_call_id.removeprefix("call_"))
            break
    usage = RequestUsage(input_tokens=60 + 30 * made, output_tokens=10)
    if made < wanted:
        response = _call("noop", {"n": made + 1}, made + 1, "")
        response.usage = usage
        return response
    return ModelResponse(parts=[TextPart(f"done after {made} calls")], usage=usage)


async def noop_looper_at_once(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """The no-op looper answering at once, as a coroutine like a real provider's request: a sync function
    would be run in a worker thread, which pydantic-ai starts afresh for each request made from a new
    task (every gateway call is one), a cost no HTTP provider has."""
    return noop_looper(messages, info)


async def noop_looper_200ms(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """The no-op looper behind a provider that takes 200 ms to answer (benchmark P2)."""
    await asyncio.sleep(0.2)
    return noop_looper(messages, info)


DEMO_MODELS = {
    "planner": renewal_planner,
    "noop": noop_looper_at_once,
    "noop-200ms": noop_looper_200ms,
}


def demo_model(name: str) -> FunctionModel:
    return FunctionModel(DEMO_MODELS[name], model_name=f"demo-{name}")
