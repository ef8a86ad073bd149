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
