"""The write pipeline on the real database: validation, dedupe/merge, supersede with history, the
confirmation flow, refusals (secrets, capture switched off), expiry, and every outcome audited and told to
the run (ids only)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from agents.models import RunEvent
from console.models import AuditEvent
from memory import services
from memory.models import MemoryPolicy, MemoryRecord, MemoryVersion, ProposalOutcome, Status
from memory.rules import Refused


def _events(run, type_="memory.proposal"):
    return [e.payload for e in RunEvent.objects.filter(run=run, type=type_).order_by("seq")]


def test_a_new_fact_is_stored_attributed_and_told_to_the_run(cast, max_run, propose):
    p = propose(max_run, "The champion at ACME-042 is Dana (VP Ops).", subject="champion of ACME-042")
    assert p.outcome == ProposalOutcome.STORED
    record = p.record
    assert (record.status, record.scope, record.type, record.source_run_id, record.source_step) == \
        ("active", "tenant", "fact", max_run.pk, 1)
    assert record.embedder.startswith("wordllama") and len(record.embedding) == 256
    [event] = _events(max_run)
    assert event["outcome"] == "stored" and event["record"] == record.pk
    assert "Dana" not in str(event)  # ids, never content
    assert AuditEvent.objects.filter(verb="memory.proposal_stored", target=f"memory #{record.pk}").exists()


def test_the_same_fact_again_merges_into_one_record_with_higher_confidence(cast, max_run, propose):
    first = propose(max_run, "The champion at ACME-042 is Dana (VP Ops).", subject="champion of ACME-042")
    again = propose(max_run, "The champion at ACME-042 is Dana (VP Ops)", subject="champion of ACME-042", step=2)
    assert again.outcome == ProposalOutcome.MERGED and again.record_id == first.record_id
    record = MemoryRecord.objects.get(pk=first.record_id)
    assert record.confidence > 0.7 and record.version == 2
    assert MemoryRecord.objects.filter(tenant=cast.acme, status="active").count() == 1
    assert [v.reason for v in record.versions.order_by("number")][1].startswith("merged")


def test_a_changed_fact_supersedes_the_old_one_which_stays_linked(cast, max_run, propose):
    old = propose(max_run, "The champion at ACME-042 is Dana (VP Ops).", subject="champion of ACME-042").record
    new = propose(max_run, "The champion at ACME-042 is Lee (CFO).", subject="champion of ACME-042", step=2)
    assert new.outcome == ProposalOutcome.SUPERSEDED and new.other_id == old.pk
    old.refresh_from_db()
    assert old.status == Status.SUPERSEDED and old.superseded_by_id == new.record_id
    assert old.content == "The champion at ACME-042 is Dana (VP Ops)."  # never silently deleted
    assert [v.status for v in old.versions.order_by("number")] == ["active", "superseded"]


def test_a_rewording_the_rules_cannot_tell_from_a_change_waits_for_a_person(cast, client_for, max_run, propose):
    """"Sam's customer emails are in German" after "Sam writes to customers in German": the same, or not? The
    offline rules do not guess; the old memory stays in use until a person says."""
    old = propose(max_run, "Sam writes to customers in German.", subject="language").record
    maybe = propose(max_run, "Sam's customer emails are in German.", subject="language", step=2)
    assert maybe.outcome == ProposalOutcome.TO_CONFIRM and maybe.other_id == old.pk
    assert f"may replace memory #{old.pk}" in maybe.reason
    old.refresh_from_db()
    assert old.status == Status.ACTIVE and maybe.record.status == Status.PROPOSED
    page = client_for(cast.admin).get(reverse("memory_detail", args=["acme", maybe.record_id]),
                                      HTTP_HX_REQUEST="true").content.decode()
    assert f"Confirming this replaces <a href=\"?id={old.pk}\">memory #{old.pk}</a>: “Sam writes to customers in German.”" \
        in page
    services.memory_refuse(maybe.record, actor=cast.admin)  # "it says the same": the old one stays
    old.refresh_from_db()
    assert old.status == Status.ACTIVE and old.superseded_by_id is None

    changed = propose(max_run, "Sam writes to customers in French.", subject="language", step=3)
    assert changed.outcome == ProposalOutcome.TO_CONFIRM and changed.other_id == old.pk
    services.memory_confirm(changed.record, actor=cast.admin)  # "it changed": the new one replaces it
    old.refresh_from_db()
    assert old.status == Status.SUPERSEDED and old.superseded_by_id == changed.record_id


def test_a_waiting_record_whose_memory_was_deleted_meanwhile_replaces_nothing(cast, client_for, max_run, propose):
    old = propose(max_run, "Sam writes to customers in German.", subject="language").record
    maybe = propose(max_run, "Sam's customer emails are in German.", subject="language", step=2)
    services.memory_delete(old, actor=cast.admin)
    page = client_for(cast.admin).get(reverse("memory_detail", args=["acme", maybe.record_id]),
                                      HTTP_HX_REQUEST="true").content.decode()
    assert "Confirming this replaces" not in page and 'id="memory-replaces"' not in page
    services.memory_confirm(maybe.record, actor=cast.admin)
    old.refresh_from_db()
    assert old.status == Status.DELETED and old.superseded_by_id is None and old.content == ""


def test_a_record_waiting_for_a_person_is_never_replaced_without_one(cast, max_run, propose):
    """A later proposal closer to the waiting rewording than to the memory in use is weighed against the memory
    in use: the waiting one stays for the person, and confirming the change replaces the memory in use."""
    old = propose(max_run, "Sam writes to customers in German.", subject="language").record
    waiting = propose(max_run, "Sam's customer emails are in German.", subject="language", step=2)
    changed = propose(max_run, "Sam's customer emails are in French.", subject="language", step=3)
    waiting.record.refresh_from_db()
    assert waiting.record.status == Status.PROPOSED
    assert changed.outcome == ProposalOutcome.TO_CONFIRM and changed.other_id == old.pk
    services.memory_confirm(changed.record, actor=cast.admin)
    old.refresh_from_db()
    assert old.status == Status.SUPERSEDED and old.superseded_by_id == changed.record_id
    assert MemoryRecord.objects.filter(tenant=cast.acme, status=Status.ACTIVE).get().pk == changed.record_id


def test_a_preference_waits_for_the_persons_confirmation_then_supersedes(cast, max_run, propose):
    stored = services.memory_create(tenant=cast.acme, actor=cast.member, scope="user", user=cast.member,
                                    type="preference", subject="email format",
                                    content="Max prefers long, detailed prose emails.")
    p = propose(max_run, "Max prefers a short bullet summary at the top of emails.", type="preference",
                subject="email format", scope="user")
    assert p.outcome == ProposalOutcome.TO_CONFIRM and p.other_id == stored.pk
    record = p.record
    assert record.status == Status.PROPOSED and record.user == cast.member
    stored.refresh_from_db()
    assert stored.status == Status.ACTIVE  # nothing replaced before the person says so
    services.memory_confirm(record, actor=cast.member, content="Max prefers a 3-bullet summary at the top of emails.")
    record.refresh_from_db(); stored.refresh_from_db()
    assert record.status == Status.ACTIVE and record.content.startswith("Max prefers a 3-bullet")
    assert stored.status == Status.SUPERSEDED and stored.superseded_by_id == record.pk


def test_confirming_the_text_as_proposed_is_not_recorded_as_an_edit(cast, max_run, propose):
    p = propose(max_run, "Max reads email in the morning.", type="preference", subject="email time", scope="user")
    services.memory_confirm(p.record, actor=cast.member, content="  Max reads email in the morning. ")  # the form's text
    assert p.record.versions.order_by("-number").first().reason == "confirmed"
    edited = propose(max_run, "Max reads email at night.", type="preference", subject="reading", scope="user")
    services.memory_confirm(edited.record, actor=cast.member, content="Max reads email at noon.")
    assert edited.record.versions.order_by("-number").first().reason == "confirmed with an edit"


def test_a_refused_proposal_keeps_no_content(cast, max_run, propose):
    p = propose(max_run, "Max likes dark mode.", type="preference", scope="user")
    services.memory_refuse(p.record, actor=cast.member)
    record = MemoryRecord.objects.get(pk=p.record_id)
    assert record.status == Status.REFUSED and record.content == "" and record.embedding is None
    assert not MemoryVersion.objects.filter(record=record).exclude(content="").exists()
    with pytest.raises(Refused):
        services.memory_confirm(record, actor=cast.member)


@pytest.mark.parametrize("content,why", [
    ("The OpenAI key is sk-proj-abcdefghijklmnopqrstuvwxyz123456", "API key"),
    ("Max's password is hunter22", "password"),
    ("AWS key AKIAIOSFODNN7EXAMPLE for billing", "AWS"),
    ("   ", "empty"),
    ("x" * 2001, "limit"),
])
def test_bad_proposals_are_refused_with_a_reason_and_the_run_keeps_no_secret(cast, max_run, propose, content, why):
    p = propose(max_run, content)
    assert p.outcome == ProposalOutcome.REFUSED and why in p.reason
    assert p.content == "" and p.record is None
    [event] = _events(max_run)
    assert event["outcome"] == "refused" and why in event["reason"]


def test_an_unknown_type_is_refused(cast, max_run, propose):
    assert "not a memory type" in propose(max_run, "Something", type="rumour").reason


def test_capture_switched_off_refuses_memories_about_me_only(cast, max_run, propose):
    services.capture_set(tenant=cast.acme, user=cast.member, capture=False)
    assert propose(max_run, "Max likes tea.", type="preference", scope="user").outcome == ProposalOutcome.REFUSED
    assert propose(max_run, "ACME-042 renews in March.", scope="tenant").outcome == ProposalOutcome.STORED


def test_policy_can_switch_capture_off_per_agent_and_set_retention(cast, max_run, propose, renewals):
    services.policy_save(tenant=cast.acme, actor=cast.admin, confirm_types=[], confirm_scopes=[],
                         retention_days={"episode": 7}, capture_off_agents=[])
    episode = propose(max_run, "Drafted the ACME-042 renewal email on Monday.", type="episode").record
    assert timedelta(days=6) < episode.expires_at - timezone.now() <= timedelta(days=7)
    MemoryPolicy.objects.filter(tenant=cast.acme).update(capture_off_agents=[renewals.pk])
    assert "capture is off" in propose(max_run, "Another fact about ACME-042.", step=3).reason


def test_expired_records_are_marked_by_the_sweep(cast):
    record = services.memory_create(tenant=cast.acme, actor=cast.admin, scope="tenant", type="episode",
                                    content="A call happened on Monday.")
    MemoryRecord.objects.filter(pk=record.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert services.memories_expire() == 1
    record.refresh_from_db()
    assert record.status == Status.EXPIRED


def test_processing_twice_changes_nothing(cast, max_run, propose):
    p = propose(max_run, "ACME-042 renews in March.")
    again = services.proposal_process(p.pk)
    assert again.outcome == ProposalOutcome.STORED
    assert MemoryRecord.objects.filter(tenant=cast.acme).count() == 1
    assert len(_events(max_run)) == 1


def test_corrections_are_versions_with_author_and_reason(cast):
    record = services.memory_create(tenant=cast.acme, actor=cast.member, scope="user", user=cast.member,
                                    type="preference", content="Max prefers email.")
    services.memory_correct(record, actor=cast.member, content="Max prefers Slack.", reason="changed my mind")
    versions = list(record.versions.order_by("number"))
    assert [(v.number, v.content, v.author_label) for v in versions] == [
        (1, "Max prefers email.", "max"), (2, "Max prefers Slack.", "max")]
    assert versions[1].reason == "changed my mind"
    with pytest.raises(Refused):
        services.memory_correct(record, actor=cast.member, content="my password is swordfish99")


def test_an_agents_memory_settings_apply_to_runs_on_the_versions_that_have_them(cast, max_run, propose, renewals):
    """The agent page's "Recall memories" and "Remember" switches: a run keeps its version's settings."""
    from agents.hooks import StepInfo
    from agents.services import run_start
    from agents.services.agent_versions import agent_update
    from memory.context import memory_context

    services.memory_create(tenant=cast.acme, actor=cast.admin, scope="tenant", type="fact",
                           content="ACME-042 renews every March.")
    agent_update(agent=renewals, actor=cast.admin, memory={"recall": False, "remember": False})
    renewals.refresh_from_db()
    later = run_start(tenant=cast.acme, agent=renewals, goal="Prepare the renewal for ACME-042", requested_by=cast.member)

    def step_of(run):
        return StepInfo(tenant_id=cast.acme.pk, run_id=run.pk, agent_id=renewals.pk, agent_version=run.agent_version,
                        requested_by_id=cast.member.pk, step=1, goal=run.goal, trace_id=run.trace_id)

    assert later.agent_version > max_run.agent_version
    assert memory_context(step_of(later)) == []  # recall off: nothing placed in the prompt
    assert "ACME-042 renews every March" in memory_context(step_of(max_run))[0].text  # its version recalls
    assert "set not to remember" in propose(later, "ACME-042 has 40 seats.").reason
    assert propose(max_run, "ACME-042 has 40 seats.").outcome == ProposalOutcome.STORED
