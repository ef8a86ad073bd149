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
    ModelRequest,
    ModelResponse,
    RetryPromptPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

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


def renewal_planner(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    prompts, returns, calls = _conversation(messages)
    goal = prompts[0] if prompts else ""
    instructions = [p.removeprefix("Instruction from operator: ") for p in prompts[1:] if p.startswith("Instruction from operator: ")]
    tools = {t.name for t in info.function_tools}
    done = {c.tool_name: _result(r) for c, r in zip(calls, returns, strict=False)}
    n = len(calls) + 1

    if returns and _result(returns[-1]).get("error_type") == "rejected_by_reviewer":
        last_tool = calls[-1].tool_name
        feedback = _result(returns[-1]).get("message", "")
        return ModelResponse(parts=[TextPart(
            f"I did not run {last_tool}: {feedback} The draft stays saved so someone can adjust and send it."
        )])
    if "plan.propose" in tools and "plan.propose" not in done:
        return _call("plan.propose", {"steps": [
            "Look up the account and its notes", "Draft the renewal email", "Send it to the success manager",
            "Report what was done",
        ]}, n, "Plan before acting")

    match = ACCOUNT_KEY.search(goal)
    if match is None and "crm.search_accounts" not in done:
        words = [w for w in re.findall(r"[A-Za-z]{4,}", goal) if w.lower() not in {"prepare", "renewal", "plan", "email", "account"}]
        return _call("crm.search_accounts", {"query": words[0] if words else goal[:20]}, n, "Find the account", 1)
    key = match.group(1) if match else next(iter(a["key"] for a in done["crm.search_accounts"].get("data", {}).get("accounts", [])), None)
    if key is None:
        return ModelResponse(parts=[TextPart("I could not find an account matching the goal, so there is nothing to send.")])

    account = done.get("crm.get_account")
    if account is None:
        return _call("crm.get_account", {"key": key}, n, "Read the account and its notes", 1)
    if account.get("status") != "ok":
        return ModelResponse(parts=[TextPart(f"I could not read account {key}: {account.get('message')}")])
    data = account["data"]
    extra = "".join(f"\n\nNote: {text}" for text in instructions)
    subject = f"Renewal plan for {data['name']} ({data['key']})"
    body = (
        f"Hi,\n\nHere is the renewal plan for {data['name']}: ARR ${data['arr_usd']:,}, renewal on "
        f"{data['renewal_date'] or 'a date to confirm'}, health {data['health']}.\n\n"
        "1. Confirm usage and stakeholders this week.\n2. Send the renewal quote two weeks before the date.\n"
        "3. Book a review call with the champion." + extra + "\n\nProctor demo agent"
    )
    email = {"to": data["success_manager"], "subject": subject, "body": body}
    if "email.draft" in tools and "email.draft" not in done:
        return _call("email.draft", email, n, "Save a draft first so it can be reviewed", 2)
    if "email.send" in tools and "email.send" not in done:
        return _call("email.send", email, n, f"Send the renewal plan to {data['success_manager']}", 3)
    sent = done.get("email.send", {})
    outcome = f"sent to {sent['data']['sent_to']}" if sent.get("status") == "ok" else "not sent"
    return ModelResponse(parts=[TextPart(
        f"Renewal plan for {data['name']} prepared and {outcome}." + (" Instructions followed: " + "; ".join(instructions) if instructions else "")
    )])


def noop_looper(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """For benchmarks and tests: call the no-op tool until the goal's number of steps is reached."""
    prompts, returns, calls = _conversation(messages)
    wanted = int(re.search(r"\d+", prompts[0]).group()) if prompts and re.search(r"\d+", prompts[0]) else 3
    if len(calls) < wanted:
        return _call("noop", {"n": len(calls) + 1}, len(calls) + 1, "")
    return ModelResponse(parts=[TextPart(f"done after {len(calls)} calls")])


async def noop_looper_200ms(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """The no-op looper behind a provider that takes 200 ms to answer (benchmark P2)."""
    await asyncio.sleep(0.2)
    return noop_looper(messages, info)


DEMO_MODELS = {
    "planner": renewal_planner,
    "noop": noop_looper,
    "noop-200ms": noop_looper_200ms,
}


def demo_model(name: str) -> FunctionModel:
    return FunctionModel(DEMO_MODELS[name], model_name=f"demo-{name}")
