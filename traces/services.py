"""Writes of the traces app: the engine's decisions as structured records. Spans are written by the
exporter (traces.exporter)."""

from __future__ import annotations

from agents.hooks import Decision, StepInfo
from traces.models import DecisionRecord, DecisionType

TYPES = {"CallTool": DecisionType.CALL_TOOL, "AskApproval": DecisionType.CALL_TOOL,
         "RefuseToolCall": DecisionType.REFUSE, "ProposePlan": DecisionType.PLAN, "AskQuestion": DecisionType.ASK,
         "Finish": DecisionType.FINISH, "Fail": DecisionType.FAIL}
SUMMARY_CHARS = 500


def _summary(decision: Decision, tool: str) -> str:
    """From what the model said for all to see: its text, else the reason it gave for the call, else the
    action's own words (a failure's reason). Never hidden reasoning: the gateway keeps none."""
    if text := decision.reply_text.strip():
        return text[:SUMMARY_CHARS]
    for call in decision.tool_calls:
        if call.get("tool") == tool and call.get("reason"):
            return str(call["reason"])[:SUMMARY_CHARS]
    detail = decision.detail
    return str(detail.get("reason") or detail.get("message") or detail.get("question") or detail.get("answer") or "")[:SUMMARY_CHARS]


def _outcome(check: dict, *, chosen: bool, action: str) -> str:
    if not chosen:
        return "not called"
    if action == "RefuseToolCall":
        return "refused"
    return "needs approval" if check.get("needs_approval") else "allowed"


def decision_record(info: StepInfo, decision: Decision) -> DecisionRecord:
    call = decision.detail.get("call") or {}
    tool = call.get("tool", "")
    if not tool and decision.action in ("ProposePlan", "AskQuestion", "RefuseToolCall") and decision.tool_calls:
        tool = decision.tool_calls[0].get("tool", "")
    memory_ids = [reference["id"] for block in decision.context if block.get("source") == "memory"
                  for reference in block.get("references", []) if "id" in reference]
    checks = [{"tool": name, **check, "outcome": _outcome(check, chosen=name == tool, action=decision.action)}
              for name, check in sorted(decision.policy_checks.items())]
    return DecisionRecord(tenant_id=info.tenant_id, run_id=info.run_id, step=info.step, type=TYPES.get(decision.action, DecisionType.FAIL),
                          tool=tool, summary=_summary(decision, tool),
                          inputs={"messages": decision.inputs.get("messages", 0), "memory_ids": memory_ids,
                                  "tool_results": list(decision.inputs.get("tool_results", []))},
                          policy_checks=checks, detail=decision.detail)


def decision_recorded(info: StepInfo, decision: Decision, writes) -> None:
    """The decision hook (agents.hooks): the record commits with the step that made the decision."""
    writes.add(decision_record(info, decision))
