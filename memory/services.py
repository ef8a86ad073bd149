"""Writes of memory: people's (create, correct, pin, delete, confirm, refuse, settings, teams, policy)
and the write pipeline's (a proposal from a run, processed after commit by ``memory.process_proposal``).
Every change is a new version and an audit record (never content in the audit record); every proposal's
outcome is also an event on its run.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from console.models import Role, tenant_config_changed
from console.services import audit_record
from memory import rules
from memory.context import agent_memory_settings
from memory.embedders import embed_one
from memory.live import publish_memory_changed_on_commit
from memory.models import (
    MAX_CONTENT_CHARS,
    CaptureSetting,
    MemoryPolicy,
    MemoryProposal,
    MemoryRecord,
    MemoryType,
    MemoryVersion,
    ProposalOutcome,
    Scope,
    Status,
    Team,
    TeamMember,
)
from memory.rules import Refused
from memory.selectors import LIVE, captures_for, policy_of

DELETED_TEXT = "[a memory since deleted]"


def _label(actor) -> str:
    return getattr(actor, "username", "") or str(actor or "system")


def _version(record: MemoryRecord, *, actor, reason: str, run=None, step=None) -> MemoryVersion:
    return MemoryVersion.objects.create(
        tenant_id=record.tenant_id, record=record, number=record.version, content=record.content, type=record.type,
        confidence=record.confidence, status=record.status, reason=reason[:300],
        author=actor if getattr(actor, "pk", None) else None, author_label=_label(actor),
        source_run=run, source_step=step)


def _audit(record: MemoryRecord, actor, verb: str, **data) -> None:
    audit_record(tenant=record.tenant_id, actor=actor, verb=verb, target=f"memory #{record.pk}",
                 data={"scope": record.scope, "type": record.type, "version": record.version, **data})


def _check_type(type_: str) -> str:
    if type_ not in MemoryType.values:
        raise Refused(f"'{type_}' is not a memory type; use one of {', '.join(MemoryType.values)}.")
    return type_


def _check_confidence(value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise Refused("The confidence must be a number between 0 and 1.") from None
    if not 0 <= value <= 1:
        raise Refused("The confidence must be between 0 and 1.")
    return value


def owner_fields(tenant, *, scope: str, user=None, team=None, agent=None) -> dict:
    """The owner columns for a scope, checked to belong to the tenant."""
    if scope == Scope.USER:
        if user is None:
            raise Refused("A memory about a person needs that person.")
        return {"user": user}
    if scope == Scope.TEAM:
        if team is None or team.tenant_id != tenant.pk:
            raise Refused("A team memory needs a team of this tenant.")
        return {"team": team}
    if scope == Scope.AGENT:
        if agent is None or agent.tenant_id != tenant.pk:
            raise Refused("An agent memory needs an agent of this tenant.")
        return {"agent": agent}
    if scope == Scope.TENANT:
        return {}
    raise Refused(f"'{scope}' is not a scope; use one of {', '.join(Scope.values)}.")


def _expiry(policy: MemoryPolicy, type_: str, days: int | None = None):
    days = days if days is not None else policy.retention_days.get(type_)
    return timezone.now() + timedelta(days=int(days)) if days else None


@transaction.atomic
def memory_create(*, tenant, actor, scope: str, type: str, content: str, subject: str = "", confidence=0.8,
                  pinned: bool = False, user=None, team=None, agent=None, expires_in_days: int | None = None,
                  status: str = Status.ACTIVE, run=None, step=None, event=None, reason: str = "created") -> MemoryRecord:
    """A record made by a person (the page, the API) or by the pipeline; its first version."""
    content = rules.clean_content(content, max_chars=MAX_CONTENT_CHARS)
    vector, embedder = embed_one(content)
    record = MemoryRecord.objects.create(
        tenant=tenant, scope=scope, **owner_fields(tenant, scope=scope, user=user, team=team, agent=agent),
        subject=" ".join(subject.split())[:200], type=_check_type(type), content=content, embedding=vector,
        embedder=embedder, confidence=_check_confidence(confidence), status=status, pinned=pinned,
        expires_at=_expiry(policy_of(tenant), type, expires_in_days), source_run=run, source_step=step,
        source_event=event, created_by=actor if getattr(actor, "pk", None) else None,
        updated_by=actor if getattr(actor, "pk", None) else None)
    _version(record, actor=actor, reason=reason, run=run, step=step)
    _audit(record, actor, "memory.created", status=status, run=getattr(run, "number", None))
    if status == Status.PROPOSED:
        publish_memory_changed_on_commit(tenant.pk)
    if status == Status.ACTIVE:
        memory_activated(record.tenant_id)
    return record


def memory_activated(tenant_id: int) -> None:
    """In the transaction of a record that becomes active (created so, or confirmed): steps that kept "this
    tenant has no active memory" (memory.context) read it afresh. At the end of the change, since it locks the
    tenant's row until the commit."""
    tenant_config_changed(tenant_id)


def _locked(record: MemoryRecord) -> MemoryRecord:
    # NO KEY UPDATE: a step inserting a MemoryUse (its foreign key takes KEY SHARE on the record) is not blocked.
    return MemoryRecord.objects.select_for_update(no_key=True).get(pk=record.pk, tenant_id=record.tenant_id)


@transaction.atomic
def memory_correct(record: MemoryRecord, *, actor, content: str | None = None, type: str | None = None,
                   subject: str | None = None, reason: str = "") -> MemoryRecord:
    """A person's correction: a new version (the history keeps every one)."""
    record = _locked(record)
    if record.status == Status.DELETED:
        raise Refused("This memory was deleted.")
    if content is not None:
        record.content = rules.clean_content(content, max_chars=MAX_CONTENT_CHARS)
        record.embedding, record.embedder = embed_one(record.content)
    if type:
        record.type = _check_type(type)
    if subject is not None:
        record.subject = " ".join(subject.split())[:200]
    record.version += 1
    record.updated_by = actor
    record.save()
    _version(record, actor=actor, reason=reason.strip()[:300] or f"corrected by {_label(actor)}")
    _audit(record, actor, "memory.corrected")
    return record


@transaction.atomic
def memory_pin(record: MemoryRecord, *, actor, pinned: bool) -> MemoryRecord:
    record = _locked(record)
    if record.status == Status.DELETED:
        raise Refused("This memory was deleted.")
    record.pinned = pinned
    record.updated_by = actor
    record.save(update_fields=["pinned", "updated_by", "updated_at"])
    _audit(record, actor, "memory.pinned" if pinned else "memory.unpinned")
    return record


def _supersede(old: MemoryRecord, new: MemoryRecord, *, actor) -> None:
    old = _locked(old)
    if old.status not in LIVE:
        return
    old.status, old.superseded_by, old.version = Status.SUPERSEDED, new, old.version + 1
    old.save(update_fields=["status", "superseded_by", "version", "updated_at"])
    _version(old, actor=actor, reason=f"superseded by memory #{new.pk}", run=new.source_run, step=new.source_step)
    _audit(old, actor, "memory.superseded", by_record=new.pk)


@transaction.atomic
def memory_confirm(record: MemoryRecord, *, actor, content: str | None = None) -> MemoryRecord:
    """A proposed record confirmed (edited first when ``content`` is given): active, and any record it was
    proposed to replace is superseded now."""
    record = _locked(record)
    if record.status != Status.PROPOSED:
        raise Refused("This memory is not waiting for confirmation.")
    edited = content is not None and " ".join(content.split()) != record.content  # the form always posts the text
    if edited:
        record.content = rules.clean_content(content, max_chars=MAX_CONTENT_CHARS)
        record.embedding, record.embedder = embed_one(record.content)
    record.status, record.version, record.updated_by = Status.ACTIVE, record.version + 1, actor
    record.save()
    _version(record, actor=actor, reason="confirmed" + (" with an edit" if edited else ""))
    _audit(record, actor, "memory.confirmed", edited=edited)
    for proposal in MemoryProposal.objects.for_tenant(record.tenant_id).filter(record=record, other__isnull=False):
        _supersede(proposal.other, record, actor=actor)
    publish_memory_changed_on_commit(record.tenant_id)
    memory_activated(record.tenant_id)
    return record


@transaction.atomic
def memory_refuse(record: MemoryRecord, *, actor) -> MemoryRecord:
    """A proposed record refused: never used; its content erased as a deletion's is."""
    record = _locked(record)
    if record.status != Status.PROPOSED:
        raise Refused("This memory is not waiting for confirmation.")
    _erase(record)
    record.status, record.updated_by = Status.REFUSED, actor
    record.save()
    _audit(record, actor, "memory.refused")
    publish_memory_changed_on_commit(record.tenant_id)
    return record


# --- Deletion: the content gone everywhere ------------------------------------------------------


# Where a run keeps what it said and did, as (table, JSON column, its type). Conversation rows are kept as the text
# the runtime wrote (json: non-ASCII escaped); the others as jsonb (non-ASCII as it is).
RUN_JSON_COLUMNS = (("agents_conversationmessage", "message", "json"), ("agents_runevent", "payload", "jsonb"),
                    ("agents_toolinvocation", "arguments", "jsonb"), ("agents_toolinvocation", "result", "jsonb"),
                    ("traces_decisionrecord", "detail", "jsonb"))


def _scrub_runs(run_ids: set[int], texts: set[str]) -> None:
    """Each text out of the runs' conversation, events, tool calls (where a proposal's arguments were) and
    decision records (the call as decided, and the summary of what the model said)."""
    run_ids, texts = [i for i in run_ids if i], [t for t in texts if t]
    if not run_ids or not texts:
        return
    replacement = json.dumps(DELETED_TEXT)[1:-1]
    with connection.cursor() as cursor:
        for text in texts:
            # As the text appears inside a JSON string: as json.dumps writes it, non-ASCII kept or escaped.
            for needle in {json.dumps(text, ensure_ascii=False)[1:-1], json.dumps(text)[1:-1]}:
                for table, column, kind in RUN_JSON_COLUMNS:
                    cursor.execute(
                        f"UPDATE {table} SET {column} = replace({column}::text, %s, %s)::{kind} "
                        f"WHERE run_id = ANY(%s) AND strpos({column}::text, %s) > 0",
                        [needle, replacement, run_ids, needle])
            cursor.execute("UPDATE traces_decisionrecord SET summary = replace(summary, %s, %s)"
                           " WHERE run_id = ANY(%s) AND strpos(summary, %s) > 0", [text, DELETED_TEXT, run_ids, text])


def _erase(record: MemoryRecord) -> None:
    versions = MemoryVersion.objects.filter(record=record)
    proposals = MemoryProposal.objects.filter(Q(record=record))
    texts = {record.content, *versions.values_list("content", flat=True), *proposals.values_list("content", flat=True)}
    runs = {record.source_run_id, *versions.values_list("source_run_id", flat=True),
            *proposals.values_list("run_id", flat=True)}
    _scrub_runs(runs, texts)
    versions.update(content="")
    proposals.update(content="")
    record.content, record.subject, record.embedding, record.pinned = "", "", None, False


@transaction.atomic
def memory_delete(record: MemoryRecord, *, actor) -> MemoryRecord:
    """Content, embedding, every version's and proposal's content erased in one transaction, and the text
    taken out of the runs that proposed it; a tombstone (id, who, when: no content) in the audit log."""
    record = _locked(record)
    if record.status == Status.DELETED:
        return record
    _erase(record)
    record.status, record.updated_by = Status.DELETED, actor if getattr(actor, "pk", None) else None
    record.save()
    _audit(record, actor, "memory.deleted")
    publish_memory_changed_on_commit(record.tenant_id)
    return record


# --- The write pipeline ---------------------------------------------------------------------------


def proposal_create(*, tenant, run, step: int, call_id: str, scope: str, type: str, content: str, subject: str,
                    confidence: float) -> MemoryProposal:
    """In the step's transaction (the memory.remember tool): the proposal, processed after commit."""
    proposal, created = MemoryProposal.objects.get_or_create(
        run=run, step=step, call_id=call_id,
        defaults={"tenant": tenant, "scope": scope, "type": type, "content": content[:MAX_CONTENT_CHARS * 2],
                  "subject": subject[:200], "confidence": confidence})
    if created:
        from memory.tasks import process_proposal

        transaction.on_commit(lambda: process_proposal.delay(proposal.pk))
    return proposal


def _tell_run(proposal: MemoryProposal) -> None:
    """The outcome as an event on the run (ids only, never the content)."""
    if not proposal.run_id:
        return
    from agents.events import emit
    from agents.services import run_locked

    with run_locked(tenant=proposal.tenant_id, run_id=proposal.run_id) as run:
        emit(run, "memory.proposal", {"proposal": proposal.pk, "step": proposal.step, "outcome": proposal.outcome,
                                      "record": proposal.record_id, "other": proposal.other_id,
                                      "type": proposal.type, "scope": proposal.scope, "reason": proposal.reason,
                                      "classifier_not_asked": proposal.classifier_not_asked})


def _finish(proposal: MemoryProposal, outcome: str, *, reason: str = "", record=None, other=None) -> MemoryProposal:
    proposal.outcome, proposal.reason = outcome, reason[:300]
    proposal.record, proposal.other, proposal.processed_at = record, other, timezone.now()
    if outcome == ProposalOutcome.REFUSED:
        # A refused proposal keeps no content, and neither does its run (it may have held a secret).
        _scrub_runs({proposal.run_id}, {proposal.content})
        proposal.content = ""
    proposal.save()
    audit_record(tenant=proposal.tenant_id, actor=None, verb=f"memory.proposal_{outcome}",
                 target=f"memory #{record.pk}" if record else f"proposal {proposal.pk}",
                 data={"proposal": proposal.pk, "run": getattr(proposal.run, "number", None), "reason": reason[:300],
                       "other": getattr(other, "pk", None),
                       **({"classifier_not_asked": proposal.classifier_not_asked} if proposal.classifier_not_asked
                          else {})})
    # Told after commit, in a transaction of its own: the run's row lock is never waited for while this one
    # holds memory rows a step may be referencing (a MemoryUse's foreign key).
    transaction.on_commit(lambda: _tell_run(proposal))
    return proposal


def _candidates(tenant, *, scope: str, owner: dict, type_: str, lock: bool = True) -> list[MemoryRecord]:
    rows = (MemoryRecord.objects.for_tenant(tenant).filter(scope=scope, type=type_, status__in=LIVE, **owner)
            .exclude(expires_at__lte=timezone.now()).order_by("id"))
    return list((rows.select_for_update(no_key=True) if lock else rows)[:500])


def _as_candidates(records: list[MemoryRecord]) -> list[rules.Candidate]:
    return [rules.Candidate(c.pk, c.subject, c.content, list(c.embedding) if c.embedding is not None else None,
                            waiting=c.status == Status.PROPOSED) for c in records]


@dataclass(frozen=True)
class ModelAdvice:
    """What the configured classifier model said about a proposal, asked before anything is locked; or, with
    ``not_asked``, why it was not asked (a stopping budget is used up): the rules decide, and say so."""

    verdict: rules.Verdict | None
    why: str
    content: str
    vector: list[float]
    not_asked: str = ""

    def said(self) -> str:
        """What the outcome's reason adds about the classifier when the rules decided without it."""
        return f"the classifier model was not asked ({self.not_asked}); the rules decided" if self.not_asked else ""


def proposal_process(proposal_id: int) -> MemoryProposal:
    """Validate, apply the capture switches and policy, then add, merge or supersede; every outcome audited
    and told to the run. Safe to run twice: a processed proposal is left as it is. With a classifier model
    configured (``MEMORY_CLASSIFIER_MODEL``), it is asked first, with no row locked while it answers."""
    advice = _model_advice(proposal_id) if settings.MEMORY_CLASSIFIER_MODEL else None
    return _proposal_decide(proposal_id, advice)


def _model_advice(proposal_id: int) -> ModelAdvice | None:
    from agents.services import run_call_stopped, run_usage_record
    from memory.classifier import model_verdict, prompt_characters, question
    from memory.embedders import cosine

    proposal = (MemoryProposal.objects.filter(pk=proposal_id, outcome=ProposalOutcome.PENDING)
                .select_related("run", "run__agent", "run__requested_by", "run__tenant", "tenant").first())
    if proposal is None:
        return None
    run = proposal.run
    try:
        content = rules.clean_content(proposal.content, max_chars=MAX_CONTENT_CHARS)
        owner = owner_fields(proposal.tenant, scope=proposal.scope, user=run.requested_by if run else None,
                             agent=run.agent if run else None)
    except Refused:
        return None  # refused by the rules below, whatever a model would say
    vector, _ = embed_one(content)
    records = _as_candidates(_candidates(proposal.tenant, scope=proposal.scope, owner=owner, type_=proposal.type,
                                         lock=False))
    nearest = sorted(((cosine(vector, c.embedding) if c.embedding is not None else 0.0, c) for c in records),
                     key=lambda pair: -pair[0])
    model, prompt = settings.MEMORY_CLASSIFIER_MODEL, question(subject=proposal.subject, content=content,
                                                                type_=proposal.type, nearest=nearest)
    if run is not None and (stopped := run_call_stopped(run=run, step=proposal.step or 0, models=(model,),
                                                        prompt_characters=prompt_characters(prompt))):
        # A budget the run's steps obey (asked as before a step's call) stops the classifier too; one that would
        # ask a person to continue stops it as well (the run's next step asks): the rules decide without it.
        return ModelAdvice(None, "", content, vector, not_asked=stopped)
    answer, attempts = model_verdict(model=model, prompt=prompt, nearest=nearest)
    if run is not None:
        # What the call cost, on the run's account (its cost, and the ledger through the runtime's usage hooks),
        # whatever it answered. Keyed by the proposal and this asking: a task taken again after a crash asks (and
        # pays) again, and that call is a row of its own; each asking's attempts are written once.
        run_usage_record(run=run, step=proposal.step or 0, attempts=attempts, kind="classifier",
                         call_id=f"{proposal.pk}:{uuid.uuid4().hex[:12]}", label="memory classifier")
    return ModelAdvice(answer[0], answer[1], content, vector) if answer else None


@transaction.atomic
def _proposal_decide(proposal_id: int, advice: ModelAdvice | None) -> MemoryProposal:
    proposal = MemoryProposal.objects.select_for_update(of=("self",)).select_related(
        "run", "run__agent", "run__requested_by", "tenant").get(pk=proposal_id)
    if proposal.outcome != ProposalOutcome.PENDING:
        return proposal
    tenant, run = proposal.tenant, proposal.run
    requester = run.requested_by if run else None
    policy = policy_of(tenant)
    try:
        _check_type(proposal.type)
        content = rules.clean_content(proposal.content, max_chars=MAX_CONTENT_CHARS)
        confidence = _check_confidence(proposal.confidence)
        if run and run.agent_id in policy.capture_off_agents:
            raise Refused(f"Memory capture is off for {run.agent.name}.")
        if run and not agent_memory_settings(run.agent_id, run.agent_version).get("remember", True):
            raise Refused(f"{run.agent.name} is set not to remember (its memory settings).")
        if proposal.scope == Scope.USER and not captures_for(tenant, requester):
            raise Refused(f"{_label(requester)} switched off \"remember new things about me\".")
        if proposal.scope == Scope.TEAM:
            raise Refused("Agents may not write team memories; a person adds them.")
        owner = owner_fields(tenant, scope=proposal.scope, user=requester, agent=run.agent if run else None)
    except Refused as refusal:
        return _finish(proposal, ProposalOutcome.REFUSED, reason=str(refusal))
    advice = advice if advice and advice.content == content else None
    vector = advice.vector if advice else embed_one(content)[0]
    candidates = _candidates(tenant, scope=proposal.scope, owner=owner, type_=proposal.type)
    by_id = {c.pk: c for c in candidates}
    chosen = by_id.get(advice.verdict.record_id) if advice and advice.verdict else None
    if advice and advice.verdict and (
            advice.verdict.record_id is None
            or (chosen is not None and (advice.verdict.action == "merge" or chosen.status == Status.ACTIVE))):
        verdict, said = advice.verdict, f"; the classifier model: {advice.why}" if advice.why else ""
    else:  # no model, not asked, no usable answer, its record changed meanwhile, or it would replace one waiting
        verdict = rules.classify(subject=proposal.subject, content=content, embedding=vector,
                                 candidates=_as_candidates(candidates))
        if advice and advice.not_asked:
            proposal.classifier_not_asked = advice.not_asked[:300]
            said = f"; {advice.said()}"
        else:
            said = ""
    if verdict.action == "ignore":
        return _finish(proposal, ProposalOutcome.REFUSED, reason=f"not worth remembering{said}"[:300])
    if verdict.action == "merge":
        record = _locked(by_id[verdict.record_id])
        record.confidence = round(1 - (1 - record.confidence) * (1 - confidence) ** 0.5, 4)
        record.version += 1
        record.save(update_fields=["confidence", "version", "updated_at"])
        _version(record, actor=None, reason=f"merged: proposed again by run #{run.number}" if run else "merged",
                 run=run, step=proposal.step)
        return _finish(proposal, ProposalOutcome.MERGED, record=record,
                       reason=f"the same as memory #{record.pk} (similarity {verdict.similarity:.2f}){said}"[:300])
    uncertain = verdict.action == "ask"  # the offline rules cannot tell a paraphrase from a changed fact
    needs_confirmation = uncertain or proposal.type in policy.confirm_types or proposal.scope in policy.confirm_scopes
    record = memory_create(tenant=tenant, actor=None, scope=proposal.scope, type=proposal.type, content=content,
                           subject=proposal.subject or "", confidence=confidence, run=run, step=proposal.step,
                           status=Status.PROPOSED if needs_confirmation else Status.ACTIVE,
                           reason=f"proposed by run #{run.number}" if run else "proposed", **_owner_kwargs(owner))
    other = by_id.get(verdict.record_id) if verdict.action in ("supersede", "ask") else None
    if uncertain:
        return _finish(proposal, ProposalOutcome.TO_CONFIRM, record=record, other=other,
                       reason=f"waits for confirmation: it may replace memory #{other.pk} or say the same in other "
                              f"words; confirm to replace it, refuse to keep #{other.pk}{said}"[:300])
    if needs_confirmation:
        return _finish(proposal, ProposalOutcome.TO_CONFIRM, record=record, other=other,
                       reason=("waits for confirmation" + (f"; would supersede memory #{other.pk}" if other else "")
                               + said)[:300])
    if other is not None:
        _supersede(other, record, actor=None)
        return _finish(proposal, ProposalOutcome.SUPERSEDED, record=record, other=other,
                       reason=f"replaces memory #{other.pk}, which said something else on the same topic{said}"[:300])
    return _finish(proposal, ProposalOutcome.STORED, record=record, reason=said[2:])


def _owner_kwargs(owner: dict) -> dict:
    return {key: value for key, value in owner.items() if key in ("user", "team", "agent")}


def memories_expire() -> int:
    """Records past their expiry: status expired (retrieval already skips them by time)."""
    expired = 0
    for record in MemoryRecord.objects.filter(status__in=LIVE, expires_at__lte=timezone.now())[:1000]:
        with transaction.atomic():
            record = _locked(record)
            record.status, record.version = Status.EXPIRED, record.version + 1
            record.save(update_fields=["status", "version", "updated_at"])
            _version(record, actor=None, reason="expired")
            expired += 1
    return expired


# --- Settings, teams, policy -------------------------------------------------------------------------


def capture_set(*, tenant, user, capture: bool) -> None:
    CaptureSetting.objects.update_or_create(tenant=tenant, user=user, defaults={"capture": capture})
    audit_record(tenant=tenant, actor=user, verb="memory.capture_on" if capture else "memory.capture_off",
                 target=user.username)


@transaction.atomic
def policy_save(*, tenant, actor, confirm_types: list[str], confirm_scopes: list[str], retention_days: dict,
                capture_off_agents: list[int]) -> MemoryPolicy:
    for t in confirm_types:
        _check_type(t)
    for s in confirm_scopes:
        if s not in Scope.values:
            raise Refused(f"'{s}' is not a scope.")
    clean_retention = {}
    for t, days in retention_days.items():
        _check_type(t)
        if days in (None, ""):
            continue
        if not isinstance(days, int) or not 1 <= days <= 36500:
            raise Refused(f"Retention for {t} must be a number of days between 1 and 36500.")
        clean_retention[t] = days
    from agents.models import Agent

    agents = set(Agent.objects.for_tenant(tenant).filter(pk__in=capture_off_agents).values_list("pk", flat=True))
    policy, _ = MemoryPolicy.objects.update_or_create(tenant=tenant, defaults={
        "confirm_types": sorted(set(confirm_types)), "confirm_scopes": sorted(set(confirm_scopes)),
        "retention_days": clean_retention, "capture_off_agents": sorted(agents)})
    audit_record(tenant=tenant, actor=actor, verb="memory.policy_changed", target="memory policy",
                 data={"confirm_types": policy.confirm_types, "confirm_scopes": policy.confirm_scopes,
                       "retention_days": policy.retention_days, "capture_off_agents": policy.capture_off_agents})
    return policy


@transaction.atomic
def team_save(*, tenant, actor, name: str, member_ids: list[int], team: Team | None = None) -> Team:
    from console.models import Membership

    name = " ".join(name.split())[:100]
    if not name:
        raise Refused("A team needs a name.")
    if Team.objects.for_tenant(tenant).filter(name=name).exclude(pk=getattr(team, "pk", None)).exists():
        raise Refused(f"There is already a team called {name}.")
    if team is None:
        team = Team.objects.create(tenant=tenant, name=name)
    else:
        team.name = name
        team.save(update_fields=["name"])
    members = set(Membership.objects.for_tenant(tenant).filter(user_id__in=member_ids).values_list("user_id", flat=True))
    TeamMember.objects.filter(team=team).exclude(user_id__in=members).delete()
    for user_id in members:
        TeamMember.objects.get_or_create(tenant=tenant, team=team, user_id=user_id)
    audit_record(tenant=tenant, actor=actor, verb="memory.team_saved", target=f"team {team.name}",
                 data={"members": sorted(members)})
    return team


@transaction.atomic
def team_delete(*, tenant, actor, team: Team) -> None:
    for record in MemoryRecord.objects.for_tenant(tenant).filter(team=team).exclude(status=Status.DELETED):
        memory_delete(record, actor=actor)
    audit_record(tenant=tenant, actor=actor, verb="memory.team_deleted", target=f"team {team.name}")
    MemoryRecord.objects.for_tenant(tenant).filter(team=team).delete()
    team.delete()


def can_change(record: MemoryRecord, *, user, role: str) -> bool:
    """Who may correct, pin, delete, confirm: an admin any record of the tenant; others their own records
    and the shared ones they may see (the tenant's, their teams', the agents')."""
    return role == Role.ADMIN or record.scope != Scope.USER or record.user_id == user.pk
