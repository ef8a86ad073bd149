"""The engine's action carried out, in the step's transaction: the run's conversation, plan, status
and events, and a request to a person where policy or the agent asks for one."""

from __future__ import annotations

from dataclasses import replace

from agents import engine
from agents.events import emit
from agents.hooks import review
from agents.models import PlanStep, Run, RunEvent, RunStatus
from agents.services.transitions import fail, set_status
from agents.tools import tool_for


def apply_action(run: Run, turn, action: engine.Action, need=None) -> str:
    """``need``: the policy's need for the reply's call (it sets up the request to a person)."""
    conversation = turn.conversation
    match action:
        case engine.Finish(answer=answer):
            conversation.append(run, engine.assistant_message(answer))
            # Done is what the agent completed: the step it was on, if its last call succeeded (a rejected
            # send is not done); steps it never reached stay as they were.
            last = RunEvent.objects.filter(run=run, type="tool.result").order_by("-seq").values_list("payload", flat=True).first()
            if last and last.get("result", {}).get("status") == "ok":
                PlanStep.objects.filter(run=run, status="active").update(status="done")
            run.answer, run.last_action, run.terminal_reason = answer, "Answered", "completed"
            emit(run, "model.answer", {"text": answer})
            set_status(run, RunStatus.COMPLETED)
            return "completed"
        case engine.Fail(reason=reason):
            fail(run, reason)
            return "failed"
        case engine.ProposePlan(steps=steps, call=call, needs_approval=needs_approval):
            PlanStep.objects.filter(run=run).delete()
            PlanStep.objects.bulk_create(PlanStep(run=run, position=i, title=t, status="proposed" if needs_approval
                                                  else "pending") for i, t in enumerate(steps, start=1))
            conversation.append(run, engine.assistant_message(call=call))
            run.last_action = f"Proposed a plan of {len(steps)} steps"
            emit(run, "plan.proposed", {"steps": list(steps), "needs_approval": needs_approval})
            if needs_approval:
                return _wait_for_person(run, turn, call, need, kind="plan", arguments={"steps": list(steps)},
                                        next_action="The plan waits for approval", reason="the plan needs approval")
            conversation.append(run, engine.tool_message(call.call_id, call.tool, {"status": "ok", "data": {"accepted": True}}))
            set_status(run, RunStatus.QUEUED)
            return "planned"
        case engine.AskQuestion(call=call, question=question, options=options):
            conversation.append(run, engine.assistant_message(call=call))
            run.last_action = "Asked a question"
            arguments = {"question": question, "options": list(options)}
            emit(run, "question.asked", arguments)
            if (answer := _answered_without_person(run, turn, arguments)) is not None:
                conversation.append(run, engine.tool_message(call.call_id, call.tool, answer))
                emit(run, "tool.result", {"tool": call.tool, "arguments": arguments, "result": answer, "duration_ms": None})
                run.last_action = "Question answered from the recording" if answer.get("status") == "ok" else \
                    f"Question not answered: {answer.get('error_type', '')}"[:300]
                set_status(run, RunStatus.QUEUED)
                return "answered"
            return _wait_for_person(run, turn, call, need, kind="question", arguments=arguments,
                                    next_action="Waits for an answer", reason="the agent asked a question")
        case engine.RefuseToolCall(call=call, message=message):
            conversation.append(run, engine.assistant_message(call=call))
            conversation.append(run, engine.tool_message(call.call_id, call.tool, {
                "status": "error", "error_type": "refused", "retryable": False, "message": message}))
            emit(run, "tool.refused", {"tool": call.tool, "arguments": call.arguments, "message": message})
            set_status(run, RunStatus.QUEUED)
            return "refused"
        case engine.CallTool(call=call, risk=risk) | engine.AskApproval(call=call, risk=risk):
            conversation.append(run, engine.assistant_message(call=call))
            needs_approval = isinstance(action, engine.AskApproval)
            turn.state = replace(turn.state, pending_call=engine.PendingCall.for_call(
                call, step=run.step, risk=risk, needs_approval=needs_approval))
            if call.plan_step:
                PlanStep.objects.filter(run=run, position__lt=call.plan_step).exclude(status="done").update(status="done")
                PlanStep.objects.filter(run=run, position=call.plan_step).update(status="active")
            emit(run, "tool.proposed", {"tool": call.tool, "arguments": call.arguments, "reason": call.reason,
                                        "risk": risk, "needs_approval": needs_approval})
            if needs_approval:
                review().request(run=run, step=run.step, call=call, risk=risk, need=need, kind="tool_call",
                                 arguments=None)
                run.next_action = f"{call.tool} waits for approval"
                set_status(run, RunStatus.WAITING_FOR_HUMAN, reason=f"{call.tool} needs approval")
                return "waiting_for_human"
            run.next_action = f"Run {call.tool}"
            set_status(run, RunStatus.RUNNING_TOOL)
            return "tool_pending"
    raise AssertionError(f"unhandled action {action!r}")


def _answered_without_person(run: Run, turn, arguments: dict) -> dict | None:
    """A run nobody reviews (an app's overrides say skip_review, e.g. a replay) has its question answered
    by the overrides' tool runner, as a call of human.ask with the question's arguments; None: a person answers."""
    overrides = getattr(turn, "overrides", None)
    if overrides is None or not overrides.skip_review or overrides.tool_runner is None:
        return None
    spec = tool_for(run.tenant, engine.ASK_TOOL)
    return overrides.tool_runner(run, spec, arguments) if spec is not None else None


def _wait_for_person(run: Run, turn, call: engine.ToolCall, need, *, kind: str, arguments: dict,
                     next_action: str, reason: str) -> str:
    """A plan to approve or a question to answer: the call stays pending until a person decides."""
    turn.state = replace(turn.state, pending_call=engine.PendingCall.for_call(
        call, step=run.step, risk=0, needs_approval=True, kind=kind, arguments=arguments))
    review().request(run=run, step=run.step, call=call, risk=0, need=need, kind=kind, arguments=arguments)
    run.next_action = next_action
    set_status(run, RunStatus.WAITING_FOR_HUMAN, reason=reason)
    return "waiting_for_human"
