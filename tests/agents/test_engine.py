"""The pure engine, without a database."""

from agents import engine
from agents.engine import AskApproval, Budgets, CallTool, Fail, Finish, ModelReply, ProposePlan, RefuseToolCall, ToolCall, ToolVerdict, Usage

VERDICTS = {"crm.get_account": ToolVerdict(0, False), "email.send": ToolVerdict(3, True)}


def reply(*calls, text=""):
    return ModelReply(text=text, tool_calls=tuple(calls))


def decide(r, plan_mode=True):
    return engine.next_action(r, verdicts=VERDICTS, plan_mode=plan_mode)


def test_text_without_tool_calls_finishes():
    assert decide(reply(text=" done ")) == Finish("done")


def test_an_empty_reply_fails_with_a_reason():
    assert isinstance(decide(reply()), Fail)


def test_a_safe_tool_is_called_and_a_risky_one_asks_for_approval():
    assert decide(reply(ToolCall("1", "crm.get_account", {"key": "A-1"}))) == CallTool(ToolCall("1", "crm.get_account", {"key": "A-1"}), 0)
    assert decide(reply(ToolCall("2", "email.send", {}))) == AskApproval(ToolCall("2", "email.send", {}), 3)


def test_an_unknown_tool_is_refused_with_the_tools_it_can_use():
    action = decide(reply(ToolCall("1", "shell.exec", {})))
    assert isinstance(action, RefuseToolCall)
    assert "crm.get_account" in action.message and "shell.exec" in action.message


def test_plans_are_proposed_only_in_plan_mode_and_must_be_steps():
    call = ToolCall("1", "plan.propose", {"steps": ["a", "b"]})
    assert decide(reply(call)) == ProposePlan(("a", "b"), call)
    assert isinstance(decide(reply(call), plan_mode=False), RefuseToolCall)
    assert isinstance(decide(reply(ToolCall("1", "plan.propose", {"steps": "x"}))), RefuseToolCall)


def test_only_the_first_of_several_calls_is_taken():
    action = decide(reply(ToolCall("1", "crm.get_account", {}), ToolCall("2", "email.send", {})))
    assert isinstance(action, CallTool) and action.call.call_id == "1"


def test_each_budget_names_itself():
    budgets = Budgets(max_steps=10, max_tokens=1000, max_cost_usd=1.0, max_seconds=60)
    assert engine.budget_exhausted(budgets, Usage(1, 10, 0.1, 1)) is None
    assert "steps" in engine.budget_exhausted(budgets, Usage(10, 0, 0, 0)).reason
    assert "tokens" in engine.budget_exhausted(budgets, Usage(1, 1000, 0, 0)).reason
    assert "budget_exhausted: cost" in engine.budget_exhausted(budgets, Usage(1, 0, 1.5, 0)).reason
    assert "wall_clock" in engine.budget_exhausted(budgets, Usage(1, 0, 0, 61)).reason


def test_the_state_machine_refuses_leaving_a_terminal_state():
    import pytest

    with pytest.raises(engine.InvalidTransition):
        engine.check_transition("completed", "queued")
    engine.check_transition("waiting_for_human", "queued")


def test_a_plan_waits_for_a_person_only_when_the_agent_requires_it():
    call = ToolCall("p", engine.PLAN_TOOL, {"steps": ["Look up", "Send"]})
    assert decide(reply(call)).needs_approval is False
    action = engine.next_action(reply(call), verdicts=VERDICTS, plan_mode=True, plan_approval=True)
    assert action == ProposePlan(("Look up", "Send"), call, needs_approval=True)


def test_a_question_goes_to_a_person_and_a_malformed_one_back_to_the_model():
    verdicts = {**VERDICTS, engine.ASK_TOOL: ToolVerdict(0, False)}
    asked = ToolCall("q", engine.ASK_TOOL, {"question": " Which account? ", "options": ["A", " B ", ""]})
    action = engine.next_action(reply(asked), verdicts=verdicts, plan_mode=False)
    assert action == engine.AskQuestion(asked, "Which account?", ("A", "B"))
    blank = engine.next_action(reply(ToolCall("q2", engine.ASK_TOOL, {"question": ""})), verdicts=verdicts,
                               plan_mode=False)
    assert isinstance(blank, RefuseToolCall) and "needs 'question'" in blank.message
    not_allowed = decide(reply(asked))  # the agent may not ask: like any tool it does not have
    assert isinstance(not_allowed, RefuseToolCall) and "no tool named 'human.ask'" in not_allowed.message


def test_plan_problems_are_said_in_words_a_person_can_fix():
    assert engine.plan_problem([]) == "A plan needs at least one step."
    assert engine.plan_problem(["ok", " "]) == "Step 2 is empty; write it or delete it."
    assert "at most 30 steps" in engine.plan_problem(["s"] * 31)
    assert engine.plan_problem(["Look up the account"]) == ""
