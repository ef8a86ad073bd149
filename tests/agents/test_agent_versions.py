"""An agent's instructions and configuration are versioned; a run keeps the version it started with."""

import pytest

from agents.models import AgentVersion
from agents.services import RunError, agent_update, run_start
from console.models import AuditEvent


def test_a_change_makes_a_new_version_and_earlier_runs_keep_theirs(cast, renewals):
    before = run_start(tenant=cast.acme, agent=renewals, goal="Renew ACME-042", requested_by=cast.member)
    old_instructions = renewals.instructions

    agent = agent_update(agent=renewals, actor=cast.admin, instructions="Be brief.", max_steps=12)
    after = run_start(tenant=cast.acme, agent=agent, goal="Renew ACME-042", requested_by=cast.member)

    assert (before.agent_version, after.agent_version) == (1, 2)
    versions = {v.version: v for v in AgentVersion.objects.filter(agent=agent)}
    assert versions[1].instructions == old_instructions and versions[1].config["max_steps"] == 30
    assert versions[2].instructions == "Be brief." and versions[2].config["max_steps"] == 12
    assert versions[2].created_by == cast.admin
    audit = AuditEvent.objects.get(tenant=cast.acme, verb="agent.changed")
    assert audit.data == {"version": 2, "fields": ["instructions", "max_steps"]}


def test_saving_the_same_values_makes_no_version(cast, renewals):
    agent = agent_update(agent=renewals, actor=cast.admin, instructions=renewals.instructions)
    assert agent.version == 1 and AgentVersion.objects.filter(agent=agent).count() == 1


def test_unknown_fields_and_tools_are_refused_with_a_reason(cast, renewals):
    with pytest.raises(RunError, match="Cannot change tenant"):
        agent_update(agent=renewals, actor=cast.admin, tenant=cast.globex)
    with pytest.raises(RunError, match="Unknown tools: shell.exec"):
        agent_update(agent=renewals, actor=cast.admin, tools=["shell.exec"])
    renewals.refresh_from_db()
    assert renewals.version == 1


def test_a_run_works_with_the_version_it_started_with_while_new_runs_get_the_edit(cast, renewals, client_for):
    """Sending is taken out of the agent's tools mid-run: the running run still sends (after approval);
    a run started after the edit cannot, and says so."""
    from approvals.services import approval_decide
    from demo.models import EmailMessage
    from tests.factories import RENEWAL_GOAL, advance

    running = advance(run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member),
                      until=("planned",))
    agent = agent_update(agent=renewals, actor=cast.admin,
                         tools=[t for t in renewals.tools if t != "email.send"], max_steps=25)
    running = advance(running)
    assert running.status == "waiting_for_human" and running.approval_requests.get().tool == "email.send"
    assert "of at most 30" in client_for(cast.member).get(f"/t/acme/runs/{running.number}/").text  # shown as it runs
    approval_decide(approval=running.approval_requests.get(), approve=True, actor=cast.reviewer)
    assert advance(running).status == "completed"
    assert EmailMessage.objects.filter(run=running, sent_at__isnull=False).count() == 1

    later = advance(run_start(tenant=cast.acme, agent=agent, goal=RENEWAL_GOAL, requested_by=cast.member))
    assert later.agent_version == 2 and later.status == "completed"
    assert "I may not use email.send" in later.answer
