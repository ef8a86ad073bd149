"""Approval writes. A decision is taken under the request's row lock: exactly one final decision
wins, a repeated submit is harmless, and the loser is told who decided and when."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.db import connection, transaction
from django.utils import timezone

from agents.engine import ASK_TOOL, PLAN_TOOL, plan_diff, plan_problem, plan_steps_cleaned
from agents.events import emit
from agents.models import Run
from agents.run_store import insert_cte, row_add
from agents.services import run_cancel, run_continue_after_decision, run_locked
from agents.tools import tool_for
from agents.tools.registry import parse_arguments
from agents.tracing import record_span

from approvals.live import Audience, notify_on_commit, publish_queue_changed_on_commit
from approvals.models import (
    OPEN,
    ApprovalDecision,
    ApprovalKind,
    ApprovalPolicy,
    ApprovalRequest,
    ApprovalStatus,
    ApprovalWebhook,
)
from approvals.policy import BUDGET_TOOL, Requirement, Rule, human_step_rule, requirement
from approvals.selectors import REQUEST_JOINED, REQUEST_WITH_RUN, policy_rule, policy_rules, request_with_run
from console.db import prepared_cursor
from console.models import Membership, tenant_config_changed
from console.roles import can_open
from console.services import audit_event, audit_record


class DecisionRefused(Exception):
    """The decision cannot be taken; the message says why (and who decided first). ``kind`` is
    "conflict" (decided, expired or cancelled already), "forbidden" (not this person),
    "invalid" (the edited arguments fail the tool's schema) or "needs_more_approvals" (the edit
    was recorded, but the edited call needs more than the request did: it waits for them)."""

    def __init__(self, message: str, kind: str = "conflict"):
        super().__init__(message)
        self.kind = kind


# How pages and the API answer a refusal. An edit that raised the requirement is taken (202), not run.
REFUSAL_STATUS = {"conflict": 409, "forbidden": 403, "invalid": 422, "needs_more_approvals": 202}


# The pseudo-tool a policy names for each kind of request a person answers that is not a tool call.
HUMAN_STEP_TOOLS = {ApprovalKind.PLAN: PLAN_TOOL, ApprovalKind.QUESTION: ASK_TOOL, ApprovalKind.BUDGET: BUDGET_TOOL}


def human_step_requirement(*, run, kind: str) -> Requirement:
    """What a plan approval (at least one approval), a question (one answer) or a budget extension (one
    approval) needs, by policy (a rule scoped to the pseudo-tool plan.propose, human.ask or budget.extend)."""
    tool = HUMAN_STEP_TOOLS.get(kind, ASK_TOOL)
    rule = human_step_rule(policy_rules(tenant=run.tenant), agent_id=run.agent_id, tool=tool)
    return Requirement(max(1, rule.required_approvals) if kind == ApprovalKind.PLAN else 1, rule)


DEMO_POLICIES = [
    {"name": "Side effects need a reviewer", "min_risk": 3, "required_approvals": 1, "allow_self_approval": True},
    {"name": "Large invoices need two reviewers", "tool": "billing.create_invoice", "min_risk": 0,
     "required_approvals": 2, "condition": {"argument": "amount_usd", "op": "gt", "value": 1000},
     "expiry_outcome": "cancel_run"},
]


def approval_policies_seed_demo(tenant) -> None:
    """Idempotent: the demo tenants' policies, so the policy behaviour can be seen without setting any up."""
    for policy in DEMO_POLICIES:
        ApprovalPolicy.objects.get_or_create(tenant=tenant, name=policy["name"], defaults=policy)
    tenant_config_changed(tenant)


def approval_policy_save(*, form, tenant, actor):
    """Create or change a policy from a valid PolicyForm; audited."""
    created = form.instance.pk is None
    policy = form.save(commit=False)
    policy.tenant = tenant
    with transaction.atomic():
        policy.save()
        tenant_config_changed(tenant)
    audit_record(tenant=tenant, actor=actor, verb="approval_policy.created" if created else "approval_policy.changed",
                 target=f"policy {policy.name}", data={"policy_id": policy.id, "rule": _describe(policy)})
    return policy


def approval_webhook_set(*, tenant, url: str, actor):
    """Set (a new secret each time, shown once), or remove with an empty URL. Returns (hook, secret)."""
    url = (url or "").strip()
    if not url:
        ApprovalWebhook.objects.for_tenant(tenant).delete()
        audit_record(tenant=tenant, actor=actor, verb="approval_webhook.removed", target="approval webhook")
        return None, None
    secret = "whsec_" + secrets.token_urlsafe(24)
    hook, _ = ApprovalWebhook.objects.update_or_create(tenant=tenant, defaults={"url": url, "secret": secret,
                                                                                 "enabled": True, "last_status": ""})
    audit_record(tenant=tenant, actor=actor, verb="approval_webhook.set", target="approval webhook", data={"url": url})
    return hook, secret


def approval_policy_delete(*, policy, actor) -> None:
    audit_record(tenant=policy.tenant_id, actor=actor, verb="approval_policy.deleted", target=f"policy {policy.name}",
                 data={"rule": _describe(policy)})
    with transaction.atomic():
        policy.delete()
        tenant_config_changed(policy.tenant_id)


def _describe(policy) -> str:
    return policy_rule(policy).describe()


def approval_request_create(*, run, step: int, call, risk: int, rule: Rule, kind: str = ApprovalKind.TOOL_CALL,
                            arguments: dict | None = None) -> ApprovalRequest:
    """``rule``: the policy rule that asks for approval (agents evaluated it for this very call).
    ``arguments``: what is decided on, when not the call's own (a plan's steps, a question)."""
    # Described as what it is (a budget ask's call is named after its budget, not budget.extend).
    now, policy = timezone.now(), rule.describe(HUMAN_STEP_TOOLS.get(kind, call.tool))
    required = 1 if kind in (ApprovalKind.QUESTION, ApprovalKind.BUDGET) else max(1, rule.required_approvals)
    approval, _ = ApprovalRequest.objects.for_tenant(run.tenant).get_or_create(
        run=run, step=step, call_id=call.call_id,
        defaults={"tenant": run.tenant, "kind": kind, "tool": call.tool,
                  "arguments": call.arguments if arguments is None else arguments, "reason": call.reason,
                  "risk": risk, "policy": policy[:200], "required_approvals": required,
                  "allow_self_approval": rule.allow_self_approval, "requested_by": run.requested_by,
                  "due_at": now + timedelta(minutes=rule.sla_minutes),
                  "expires_at": now + timedelta(minutes=max(rule.expire_minutes, rule.sla_minutes)),
                  "expiry_outcome": rule.expiry_outcome, "escalate_to_role": rule.escalate_to_role},
    )
    publish_queue_changed_on_commit(run.tenant_id)
    notify_on_commit(approval, "requested")
    emit(run, "approval.requested", {"approval_id": approval.id, "kind": kind, "tool": call.tool, "risk": risk,
                                     "policy": policy,
                                     "required_approvals": approval.required_approvals,
                                     "due_at": approval.due_at.isoformat()})
    return approval


def approval_invocation_link(*, run, approval_id: int, invocation) -> None:
    """The call a request approved ran, in the step's transaction on the locked run: its invocation row (not yet
    written) goes in with the run's statement (``run_write``), and the request links to it in that statement."""
    run.writes.hook_items_for("approvals.invocation", _invocations_linked).append((approval_id, invocation))


INVOCATIONS_LINKED = (f"approvals_linked AS (UPDATE {ApprovalRequest._meta.db_table} a SET tool_invocation_id = ran.id "
                      "FROM approvals_ran ran, json_to_recordset(%s) AS l(approval_id bigint, key text) "
                      "WHERE a.id = l.approval_id AND ran.idempotency_key = l.key AND a.tenant_id = %s)")


def _invocations_linked(items: list) -> tuple[list[str], list]:
    invocations = [invocation for _, invocation in items]
    insert, rows = insert_cte("approvals_ran", invocations, returning="id, idempotency_key")
    links = json.dumps([{"approval_id": approval_id, "key": invocation.idempotency_key}
                        for approval_id, invocation in items])
    return [insert, INVOCATIONS_LINKED], [rows, links, invocations[0].tenant_id]


def approvals_cancel_for_run(*, run) -> int:
    cancelled = ApprovalRequest.objects.for_tenant(run.tenant_id).filter(run=run, status__in=OPEN).update(
        status=ApprovalStatus.CANCELLED, decided_at=timezone.now())
    if cancelled:
        publish_queue_changed_on_commit(run.tenant_id)
    return cancelled


def _refusal(approval: ApprovalRequest) -> str:
    when = approval.decided_at.strftime("%Y-%m-%d %H:%M:%S UTC") if approval.decided_at else ""
    if approval.status == ApprovalStatus.EXPIRED:
        return f"This request expired at {when} without a decision; the policy's outcome ({approval.expiry_outcome}) applied."
    if approval.status == ApprovalStatus.CANCELLED:
        return f"The run was cancelled at {when}; there is nothing left to decide."
    who = approval.decided_by.username if approval.decided_by else "the system"
    return f"Already {approval.status} by {who} at {when}."


DECISIONS = ("approve", "reject", "edit", "respond")


def approval_decision_take(*, approval: ApprovalRequest, decision: str, actor, note: str = "",
                           arguments: dict | None = None, answer: str = "", client_key: str = "") -> ApprovalRequest:
    """A decision by name, as the pages and the API send it: approve, reject, edit (approve these
    ``arguments`` instead) or respond (``answer`` a question)."""
    if decision not in DECISIONS:
        raise DecisionRefused("Choose approve, reject, edit or respond (answer a question).", "invalid")
    if decision == "edit" and arguments is None:
        raise DecisionRefused("An edit needs 'arguments': the arguments to run instead.", "invalid")
    return approval_decide(approval=approval, approve=decision != "reject", actor=actor, note=note,
                           arguments=arguments if decision == "edit" else None,
                           answer=answer if decision == "respond" else None, client_key=client_key)


def approval_decide(*, approval: ApprovalRequest, approve: bool, actor, note: str = "", arguments: dict | None = None,
                    answer: str | None = None, client_key: str = "") -> ApprovalRequest:
    """Approve (optionally with edited arguments, validated against the tool's schema, or an edited
    plan), answer a question, or reject (decline to answer). Rejecting is final at once; approving is
    final when enough distinct people approved the same arguments; one answer closes a question."""
    note = (note or "").strip()[:2000]
    client_key = (client_key or "").strip()[:100]
    with transaction.atomic():
        locked, repeated = _request_locked(tenant_id=approval.tenant_id, approval_id=approval.pk, client_key=client_key)
        if repeated:
            return locked  # the same submit again: already taken
        if locked.is_open and locked.expires_at and locked.expires_at <= timezone.now():
            _expire(locked)  # committed, then refused below
        if locked.is_open:
            if not locked.allow_self_approval and locked.requested_by_id == actor.pk:
                raise DecisionRefused("You started this run; the policy needs someone else to decide on it.", "forbidden")
            if not approve:
                return _reject(locked, actor, note, client_key)
            if locked.kind == ApprovalKind.QUESTION:
                return _answer(locked, actor, answer, note, client_key)
            if answer is not None:
                raise DecisionRefused(f"This request is a {locked.get_kind_display()}, not a question; approve, "
                                      "reject or edit it.", "invalid")
            if not (raised := _approve(locked, actor, note, arguments, client_key)):
                return locked
    raise DecisionRefused(raised, "needs_more_approvals") if locked.is_open else DecisionRefused(_refusal(locked))


_REQUESTER = ApprovalRequest._meta.get_field("requested_by").related_model
REQUEST_LOCK = (
    f'{REQUEST_WITH_RUN}, '
    f'EXISTS (SELECT 1 FROM {ApprovalWebhook._meta.db_table} w WHERE w.tenant_id = a.tenant_id AND w.enabled), '
    "COALESCE(u.email, '') <> '', "
    f"%s <> '' AND EXISTS (SELECT 1 FROM {ApprovalDecision._meta.db_table} d WHERE d.approval_id = a.id "
    f'AND d.client_key = %s){REQUEST_JOINED} LEFT JOIN {_REQUESTER._meta.db_table} u ON u.id = a.requested_by_id '
    'WHERE a.id = %s AND a.tenant_id = %s FOR UPDATE OF a')


def _request_locked(*, tenant_id: int, approval_id: int, client_key: str) -> tuple[ApprovalRequest, bool]:
    """In the decision's transaction: the tenant's request, its row locked (ApprovalRequest.DoesNotExist outside the
    tenant), with its run's number and agent (only the request's row is locked) and who its notice would reach
    (``notice_audience``), and whether ``client_key`` was decided already. One prepared statement: the ORM spent
    longer building this lock, the webhook's and the key's reads than Postgres spends running them (bench p3).
    Its decider is not read: the row is read again after any decision we waited for."""
    with prepared_cursor() as cursor:
        cursor.execute(REQUEST_LOCK, [client_key, client_key, approval_id, tenant_id])
        row = cursor.fetchone()
    if row is None:
        raise ApprovalRequest.DoesNotExist("no such request in this tenant")
    locked = request_with_run(row)
    webhook, requester_email, repeated = row[-3:]
    locked.notice_audience = Audience(webhook=webhook, requester_email=requester_email)
    return locked, repeated


def _record(approval, actor, verdict: str, arguments: dict, note: str, client_key: str) -> list:
    """The decision's row and its audit row, not yet written: ``_tell_run`` writes them in the run's own
    statement, with the event that tells the run (every decision tells its run)."""
    # A repeated client key never gets here: approval_decide checks it under the request's row lock
    # (the unique constraint is the backstop).
    decision = ApprovalDecision(tenant_id=approval.tenant_id, approval=approval, actor=actor, verdict=verdict,
                                arguments=arguments, note=note, client_key=client_key)
    # An answer is what the person wrote, not an edit of the question.
    what = ({"answer": arguments.get("answer", "")} if verdict == "answer"
            else {"edited": verdict != "reject" and arguments != approval.arguments})
    return [decision, audit_event(tenant=approval.tenant_id, actor=actor, verb=f"approval.{verdict}",
                                  target=f"run #{approval.run.number}: {approval.tool}",
                                  data={"approval_id": approval.id, "note": note, **what})]


def _reject(approval, actor, note: str, client_key: str) -> ApprovalRequest:
    recorded = _record(approval, actor, "reject", approval.arguments_to_run, note, client_key)
    _close(approval, ApprovalStatus.REJECTED, actor=actor, note=note, rows=recorded)
    return approval


def _checked_edit(approval, arguments: dict) -> dict:
    """The edited arguments as they will be approved, or DecisionRefused ("invalid") saying what is wrong:
    a plan's steps by the plan rules (an emptied step is a deleted one), a call's by the tool's schema."""
    if approval.kind == ApprovalKind.PLAN:
        steps = plan_steps_cleaned(arguments.get("steps"))
        if problem := plan_problem(steps):
            raise DecisionRefused(problem, "invalid")
        return {"steps": steps}
    if approval.kind == ApprovalKind.BUDGET:
        return {**approval.arguments, **budget_extension_checked(arguments)}
    spec = tool_for(approval.tenant_id, approval.tool)
    checked = parse_arguments(spec, arguments) if spec else arguments
    if isinstance(checked, dict) and checked.get("status") == "error":
        raise DecisionRefused(checked["message"], "invalid")
    return arguments


def budget_extension_checked(arguments: dict) -> dict:
    """A budget extension as a reviewer edited it: USD and/or tokens, not negative, not both nothing.
    Raises DecisionRefused ("invalid") saying what is wrong."""
    checked = {}
    try:
        usd = arguments.get("extension_usd")
        if usd not in (None, ""):
            checked["extension_usd"] = str(Decimal(str(usd)).quantize(Decimal("0.0001")))
        tokens = arguments.get("extension_tokens")
        if tokens not in (None, ""):
            checked["extension_tokens"] = int(str(tokens))
    except (InvalidOperation, ValueError, TypeError):
        raise DecisionRefused("The extension is an amount in USD (e.g. 0.50) and/or a whole number of tokens.",
                              "invalid") from None
    usd, tokens = Decimal(checked.get("extension_usd", "0")), checked.get("extension_tokens", 0)
    if not usd.is_finite():
        raise DecisionRefused("The extension is an amount in USD (e.g. 0.50) and/or a whole number of tokens.",
                              "invalid")
    if usd >= 10**9 or tokens >= 10**15:
        raise DecisionRefused("An extension is less than $1,000,000,000 and 10^15 tokens.", "invalid")
    if usd < 0 or tokens < 0:
        raise DecisionRefused("An extension is not negative: reject the request to end the run instead.", "invalid")
    if not (usd > 0 or tokens > 0):
        raise DecisionRefused("Give an extension of more than nothing, or reject the request to end the run.",
                              "invalid")
    return checked


def _answer(approval, actor, answer: str | None, note: str, client_key: str) -> ApprovalRequest:
    if answer is None:  # approved or edited, as if it were a call
        raise DecisionRefused("This request is a question: answer it (respond, with the answer) or decline it "
                              "(reject, with a reason).", "invalid")
    answer = answer.strip()[:5000]
    if not answer:
        raise DecisionRefused("Write the answer to the agent's question (or decline it with a reason).", "invalid")
    approval.answer = answer
    approval.save(update_fields=["answer"])
    recorded = _record(approval, actor, "answer", {"answer": answer}, note, client_key)
    _close(approval, ApprovalStatus.APPROVED, actor=actor, note=note, rows=recorded)
    return approval


def _approve(approval, actor, note: str, arguments: dict | None, client_key: str) -> str:
    """Approve the request's arguments, or an edit of them. Returns "" when the decision did what the
    reviewer asked, or what to tell them when their edit raised the requirement (it is recorded, and
    the call waits for the approvals the edited call needs)."""
    raised = ""
    if arguments is not None:
        arguments = _checked_edit(approval, arguments)
    if arguments is not None and arguments != approval.arguments_to_run:
        approval.approved_arguments = arguments  # earlier approvals were of other arguments: they no longer count
        raised = _requirement_raise(approval, arguments)
        approval.save(update_fields=["approved_arguments", "required_approvals", "allow_self_approval", "policy",
                                     "escalate_to_role"])
    current = approval.arguments_to_run
    if raised and not approval.allow_self_approval and approval.requested_by_id == actor.pk:
        recorded = _record(approval, actor, "edit", current, note, client_key)  # an edit the requester may not approve
        _tell_run(approval, "approval.partial", {"by": actor.username, "note": note, "approvals": 0,
                                                 "required": approval.required_approvals, "policy": approval.policy},
                  rows=recorded)
        return f"{raised} You started this run, so your approval does not count: the edit is recorded and waits for them."
    # One approval needed: it closes the request, so an open one has none yet to count.
    approvers = set(approval.decisions.filter(verdict="approve", arguments=current).values_list(
        "actor_id", flat=True)) if approval.required_approvals > 1 else set()
    if actor.pk in approvers:
        raise DecisionRefused(f"You already approved this; it needs {approval.required_approvals} different people.")
    recorded = _record(approval, actor, "approve", current, note, client_key)
    if len(approvers) + 1 < approval.required_approvals:
        _tell_run(approval, "approval.partial", {"by": actor.username, "note": note, "approvals": len(approvers) + 1,
                                                 "required": approval.required_approvals,
                                                 **({"policy": approval.policy} if raised else {})}, rows=recorded)
        missing = approval.required_approvals - len(approvers) - 1
        return raised and (f"{raised} Your approval is 1 of {approval.required_approvals}: the edited call waits for "
                           f"{_people(missing, more=True)}.")
    _close(approval, ApprovalStatus.APPROVED, actor=actor, note=note, rows=recorded)
    return ""


def _requirement_raise(approval, arguments: dict) -> str:
    """The policy asked again about the edited call, as about a new call: when it needs more (more
    approvals, no self-approval) the request's requirement rises to that and never falls (an edit
    cannot make a call need less than it did). Returns what to tell the reviewer, or ""."""
    if approval.kind != ApprovalKind.TOOL_CALL:
        return ""  # a plan's and a question's rule does not depend on what they say
    needs = requirement(policy_rules(tenant=approval.tenant_id), agent_id=approval.run.agent_id, tool=approval.tool,
                        risk=approval.risk, arguments=arguments)
    if not needs.needs_approval:
        return ""
    more = needs.required_approvals > approval.required_approvals
    stricter = approval.allow_self_approval and not needs.rule.allow_self_approval
    if not (more or stricter):
        return ""
    approval.required_approvals = max(approval.required_approvals, needs.required_approvals)
    approval.allow_self_approval = approval.allow_self_approval and needs.rule.allow_self_approval
    approval.policy, approval.escalate_to_role = needs.rule.describe()[:200], needs.rule.escalate_to_role
    publish_queue_changed_on_commit(approval.tenant_id)
    who = "" if approval.allow_self_approval else " other than the person who started the run"
    return (f"Your edit changes what the policy asks ({needs.rule.describe()}): this request now needs "
            f"{_people(approval.required_approvals)}{who}.")


def _people(count: int, *, more: bool = False) -> str:
    more = " more" if more else ""
    return f"one{more} reviewer" if count == 1 else f"{count}{more} different reviewers"


def _tell_run(approval, event: str, payload: dict, *, decided: bool | None = None, rows: list = (),
              written: tuple[str, ...] = ()) -> Run:
    """The event on the request's run, under its row lock; with ``decided``, a run that waited for
    this request goes on (approved or not). ``rows`` (a decision's, from _record) and the request's
    ``written`` fields are written in the run's statement with the event. Returns the run as locked."""
    with run_locked(tenant=approval.tenant_id, run_id=approval.run_id, savepoint=False) as run:  # all or nothing
        for row in rows:
            row_add(run, row)
        if written:
            run.writes.hook_items_for("approvals.request", _requests_written).append((approval, written))
        emit(run, event, {"approval_id": approval.id, **payload})
        if decided is not None:
            run_continue_after_decision(run=run, tool=approval.tool, approved=decided, actor=approval.decided_by,
                                        kind=approval.kind)
    return run


def _close(approval, status: str, *, actor, note: str, rows: list = ()) -> None:
    """Final: record it, tell the run, and let a run that waited for it go on."""
    approval.status, approval.decided_by, approval.decided_at, approval.decision_note = status, actor, timezone.now(), note
    publish_queue_changed_on_commit(approval.tenant_id)
    payload = {"decision": status, "kind": approval.kind, "tool": approval.tool, "by": getattr(actor, "username", "policy"), "note": note}
    if approval.approved_arguments is not None:
        payload["edited_arguments"] = approval.approved_arguments
    if approval.kind == ApprovalKind.QUESTION and approval.answer:
        payload["answer"] = approval.answer
    if approval.kind == ApprovalKind.PLAN and approval.approved_arguments is not None:
        before, after = approval.arguments["steps"], approval.approved_arguments["steps"]
        payload["plan_diff"] = plan_diff(before, after)
    run = _tell_run(approval, "approval.decided", payload, decided=status == ApprovalStatus.APPROVED, rows=rows,
                    written=("status", "decided_by", "decided_at", "decision_note"))
    _wait_span_on_commit(approval, payload, trace_id=run.trace_id)
    # After the run's step is enqueued: the run goes first.
    notify_on_commit(approval, "decided", getattr(approval, "notice_audience", None))


def _requests_written(items: list) -> tuple[list[str], list]:
    """The requests' changed fields, written in the run's statement (``run_write``): one UPDATE each, in the tenant."""
    ctes, params = [], []
    for number, (approval, names) in enumerate(items):
        fields = [ApprovalRequest._meta.get_field(name) for name in names]
        columns = ", ".join(f'"{field.column}" = %s' for field in fields)
        ctes.append(f"approvals_request{number} AS (UPDATE {ApprovalRequest._meta.db_table} SET {columns} "
                    "WHERE id = %s AND tenant_id = %s)")
        params += [field.get_db_prep_save(getattr(approval, field.attname), connection) for field in fields]
        params += [approval.pk, approval.tenant_id]
    return ctes, params


def _wait_span_on_commit(approval, payload: dict, *, trace_id: str) -> None:
    """The run waited for a person: a span of kind "approval" in the run's trace, from the request to
    the decision, saying who decided, how long it waited and what they changed (docs/ARCHITECTURE.md,
    Traces). Recorded through the runtime's tracing like any span, after commit."""
    waited = approval.decided_at - approval.created_at
    attributes = {"proctor.approval.id": approval.id, "proctor.approval.kind": approval.kind,
                  "proctor.approval.decision": payload["decision"], "proctor.approval.decided_by": payload["by"],
                  "proctor.approval.requested_at": approval.created_at.isoformat(),
                  "proctor.approval.decided_at": approval.decided_at.isoformat(),
                  "proctor.approval.waited_ms": int(waited.total_seconds() * 1000), "proctor.step": approval.step,
                  "proctor.approval.note": payload["note"][:500], "proctor.approval.risk": approval.risk,
                  "proctor.approval.policy": approval.policy, "proctor.approval.edited": "edited_arguments" in payload}
    if approval.kind == ApprovalKind.TOOL_CALL:
        attributes.update({"gen_ai.tool.name": approval.tool, "gen_ai.tool.call.id": approval.call_id})
    if "edited_arguments" in payload:
        changed = payload.get("plan_diff") or {"proposed": approval.arguments, "approved": payload["edited_arguments"]}
        attributes["proctor.approval.changes"] = json.dumps(changed, sort_keys=True, default=str)[:4000]
    if "answer" in payload:
        attributes["proctor.approval.answer"] = payload["answer"][:500]
    span = {"trace_id": trace_id or "", "kind": "approval", "name": f"approval wait {approval.tool or approval.kind}",
            "started": approval.created_at, "ended": approval.decided_at, "attributes": attributes,
            "error": "expired without a decision" if payload["decision"] == ApprovalStatus.EXPIRED else ""}
    transaction.on_commit(lambda: record_span(**span))


def approval_assign(*, approval: ApprovalRequest, assignee: str | None, actor) -> ApprovalRequest:
    """Ask one person, by username, to decide (None or "": nobody in particular). They must be a
    reviewer or admin of the tenant; they hear of it by email; "assigned to me" shows it to them."""
    with transaction.atomic():
        locked = ApprovalRequest.objects.for_tenant(approval.tenant_id).select_related("tenant").select_for_update(
            of=("self",)).get(pk=approval.pk)
        if not locked.is_open:
            raise DecisionRefused(_refusal(locked))
        person = None
        if assignee:
            member = Membership.objects.for_tenant(locked.tenant).filter(user__username=assignee).select_related(
                "user").first()
            if member is None:
                raise DecisionRefused(f"There is nobody called {assignee!r} in {locked.tenant.name}.", "invalid")
            if not can_open(member.role, "approvals"):
                raise DecisionRefused(f"{assignee} cannot decide approvals in this tenant; choose a reviewer or an "
                                      "admin.", "invalid")
            person = member.user
        if locked.assignee_id == getattr(person, "pk", None):
            return locked
        locked.assignee = person
        locked.save(update_fields=["assignee"])
        audit_record(tenant=locked.tenant, actor=actor, verb="approval.assigned", target=f"run #{locked.run.number}: "
                     f"{locked.tool}", data={"approval_id": locked.id, "to": assignee or None})
        publish_queue_changed_on_commit(locked.tenant_id)
        if person is not None and person != actor:
            notify_on_commit(locked, "assigned")
        _tell_run(locked, "approval.assigned", {"to": assignee or None, "by": actor.username})
    return locked


def _expire(approval) -> None:
    """The policy's outcome on expiry: reject (the agent is told), or cancel the run."""
    if approval.expiry_outcome == "cancel_run":
        approval.status, approval.decided_at = ApprovalStatus.EXPIRED, timezone.now()
        approval.save(update_fields=["status", "decided_at"])
        publish_queue_changed_on_commit(approval.tenant_id)
        run = Run.objects.for_tenant(approval.tenant_id).get(pk=approval.run_id)
        if not run.is_terminal:
            run_cancel(run=run, actor=None, by="policy (approval expired)")
        return
    _close(approval, ApprovalStatus.EXPIRED, actor=None, note="expired without a decision")


def approvals_sweep() -> dict:
    """Beat: escalate overdue requests (once), then apply the expiry outcome to expired ones.
    Across tenants by design (a system task); each request is handled under its own row lock."""
    now, escalated, expired = timezone.now(), 0, 0
    for approval_id in ApprovalRequest.objects.filter(status=ApprovalStatus.PENDING, due_at__lt=now).values_list(
            "id", flat=True)[:500]:
        with transaction.atomic():
            approval = ApprovalRequest.objects.select_for_update().filter(pk=approval_id, status=ApprovalStatus.PENDING).first()
            if approval is None:
                continue
            approval.status, approval.escalated_at = ApprovalStatus.ESCALATED, now
            approval.save(update_fields=["status", "escalated_at"])
            publish_queue_changed_on_commit(approval.tenant_id)
            notify_on_commit(approval, "escalated")
            audit_record(tenant=approval.tenant_id, actor=None, verb="approval.escalated",
                         target=f"run #{approval.run.number}: {approval.tool}",
                         data={"approval_id": approval.id, "to_role": approval.escalate_to_role})
            _tell_run(approval, "approval.escalated", {"to_role": approval.escalate_to_role,
                                                       "due_at": approval.due_at.isoformat()})
            escalated += 1
    for approval_id in ApprovalRequest.objects.filter(status__in=OPEN, expires_at__lt=now).values_list(
            "id", flat=True)[:500]:
        with transaction.atomic():
            approval = ApprovalRequest.objects.select_for_update().filter(pk=approval_id, status__in=OPEN).first()
            if approval is None:
                continue
            _expire(approval)
            expired += 1
    return {"escalated": escalated, "expired": expired}
