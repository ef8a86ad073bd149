"""Approval reads."""

from __future__ import annotations

from collections.abc import Mapping

from django.db.models import Prefetch, Q

from agents.models import Agent, Run
from approvals.models import OPEN, ApprovalDecision, ApprovalPolicy, ApprovalRequest, ApprovalStatus
from approvals.policy import Rule
from console.db import db_value, prepared_cursor, row_instance, select_list
from console.input import strict_int


def approval_get(*, tenant, approval_id: int, detail: bool = True) -> ApprovalRequest | None:
    """One request of the tenant, or None. With ``detail``, with what its pane and the API show (run
    and agent, who decided, the call that ran, the assignee, the decisions and their people); without,
    with its run's number and agent only (what a decision's view reads before the decision), in one
    prepared statement."""
    if not detail:
        with prepared_cursor() as cursor:
            cursor.execute(REQUEST_BY_ID, [approval_id, getattr(tenant, "pk", tenant)])
            row = cursor.fetchone()
        return request_with_run(row) if row else None
    decisions = Prefetch("decisions", queryset=ApprovalDecision.objects.select_related("actor"))
    return ApprovalRequest.objects.for_tenant(tenant).filter(pk=approval_id).select_related(
        "run__agent", "decided_by", "tool_invocation", "assignee").prefetch_related(decisions).first()


_RUN_SHOWN = ["id", "tenant", "number", "agent"]  # what a decision reads of the request's run (the rest deferred)
_REQUEST_COUNT = len(ApprovalRequest._meta.concrete_fields)
REQUEST_WITH_RUN = f'SELECT {select_list("a", ApprovalRequest)}, {select_list("r", Run, _RUN_SHOWN)}'
REQUEST_JOINED = f' FROM {ApprovalRequest._meta.db_table} a JOIN {Run._meta.db_table} r ON r.id = a.run_id'
REQUEST_BY_ID = REQUEST_WITH_RUN + REQUEST_JOINED + " WHERE a.id = %s AND a.tenant_id = %s"


def request_with_run(row) -> ApprovalRequest:
    """A request from a row that starts with REQUEST_WITH_RUN's columns, its run attached (its other fields deferred)."""
    request = row_instance(ApprovalRequest, row[:_REQUEST_COUNT])
    request.run = row_instance(Run, row[_REQUEST_COUNT:_REQUEST_COUNT + len(_RUN_SHOWN)], _RUN_SHOWN)
    return request


_DECIDER = ApprovalRequest._meta.get_field("decided_by").related_model
_REVIEWED = ["id", "kind", "status", "decision_note", "answer", "arguments", "approved_arguments"]
CALL_REVIEW = (f'SELECT {", ".join(f"a.{name}" for name in _REVIEWED)}, u.username FROM {ApprovalRequest._meta.db_table} a '
               f'LEFT JOIN {_DECIDER._meta.db_table} u ON u.id = a.decided_by_id '
               'WHERE a.tenant_id = %s AND a.run_id = %s AND a.step = %s AND a.call_id = %s')


def call_review(*, tenant_id: int, run_id: int, step: int, call_id: str) -> dict | None:
    """What the run needs of the request for one of its calls (its fields in ``_REVIEWED``, and ``decided_by``: the
    decider's username or None), or None. A prepared statement: the step that resumes after a decision reads it."""
    with prepared_cursor() as cursor:
        cursor.execute(CALL_REVIEW, [tenant_id, run_id, step, call_id])
        row = cursor.fetchone()
    if row is None:
        return None
    fields = [ApprovalRequest._meta.get_field(name) for name in _REVIEWED]
    return {**{field.name: db_value(field, value) for field, value in zip(fields, row)}, "decided_by": row[-1]}


def policy_rule(p: ApprovalPolicy) -> Rule:
    return Rule(id=p.id, name=p.name, agent_id=p.agent_id, tool=p.tool, min_risk=p.min_risk,
                required_approvals=p.required_approvals, condition=p.condition or {},
                allow_self_approval=p.allow_self_approval, sla_minutes=p.sla_minutes, expire_minutes=p.expire_minutes,
                expiry_outcome=p.expiry_outcome, escalate_to_role=p.escalate_to_role)


def policy_rules(*, tenant) -> list[Rule]:
    return [policy_rule(p) for p in ApprovalPolicy.objects.for_tenant(tenant).filter(enabled=True)]


def policy_list(*, tenant) -> list[tuple[ApprovalPolicy, str]]:
    return [(p, policy_rule(p).describe()) for p in ApprovalPolicy.objects.for_tenant(tenant)]


SORTS = {"newest": ["-created_at"], "oldest": ["created_at"], "risk": ["-risk", "created_at"], "due": ["due_at"]}
QUEUE_PAGE = 50  # the queue shows the head of the sorted, filtered list


def queue_filters(params: Mapping[str, str]) -> dict:
    """The queue's filters from a query string (the page's and its socket's), defaults for anything unusable."""
    return {"sort": params.get("sort") if params.get("sort") in SORTS else "risk", "tool": params.get("tool", "")[:100],
            "agent": params.get("agent", "")[:60], "min_risk": max(0, strict_int(params.get("min_risk", ""), 0)),
            "mine": params.get("mine") in ("1", "on", "true")}


def queue_query(filters: dict) -> str:
    """The filters as the queue's query string (defaults left out), for links that keep them."""
    from urllib.parse import urlencode

    kept = {"sort": filters["sort"] if filters["sort"] != "risk" else "", "tool": filters["tool"],
            "agent": filters["agent"], "min_risk": filters["min_risk"] or "", "mine": "1" if filters["mine"] else ""}
    return urlencode({k: v for k, v in kept.items() if v})


def assigned_to(membership) -> Q:
    """What "assigned to me" means: requests assigned to the person, and overdue ones escalated to their role."""
    return Q(assignee_id=membership.user_id) | Q(status=ApprovalStatus.ESCALATED, escalate_to_role=membership.role)


def is_assigned_to(approval, membership) -> bool:
    """``assigned_to``'s rule on a request in hand (as it was read), without a query."""
    return approval.assignee_id == membership.user_id or (
        approval.status == ApprovalStatus.ESCALATED and approval.escalate_to_role == membership.role)


def _filtered(approvals, *, tool: str = "", agent: str = "", min_risk: int = 0, mine: bool = False, viewer=None):
    """The queue's filters (not its status) on a queryset of requests."""
    if tool:
        approvals = approvals.filter(tool=tool)
    if agent:
        approvals = approvals.filter(run__agent__slug=agent)
    if min_risk:
        approvals = approvals.filter(risk__gte=min_risk)
    if mine and viewer is not None:
        approvals = approvals.filter(assigned_to(viewer))
    return approvals


def approval_list(*, tenant, status: str = "open", tool: str = "", agent: str = "", min_risk: int = 0,
                  sort: str = "newest", limit: int = 50, with_decisions: bool = False, mine: bool = False,
                  viewer=None):
    """``mine`` with ``viewer`` (their membership): only what is assigned to them."""
    approvals = ApprovalRequest.objects.for_tenant(tenant).select_related("decided_by", "run__agent", "assignee")
    if with_decisions:
        approvals = approvals.prefetch_related("decisions__actor")
    if status == "open":
        approvals = approvals.filter(status__in=OPEN)
    elif status:
        approvals = approvals.filter(status=status)
    approvals = _filtered(approvals, tool=tool, agent=agent, min_risk=min_risk, mine=mine, viewer=viewer)
    return list(approvals.order_by(*SORTS.get(sort, SORTS["newest"]))[:limit])


def queue_ids_around(*, viewer, decided, sort: str = "risk", tool: str = "", agent: str = "", min_risk: int = 0,
                     mine: bool = False) -> list[int]:
    """The viewer's queue (its first QUEUE_PAGE, ids in its order) as it was just before ``decided``
    left it: the open requests, and ``decided`` in its place if it was in the queue then. One prepared
    statement, ids only (a decision's view asks it after the commit, beside the worker resuming the run and the
    requester's socket: the ORM took longer to build it than Postgres to run it); its text has only the filters
    set, so each combination is planned as the ORM's query would be. A decision moves the pane to the request
    after the decided one (``decided`` is the request as read before the decision: what it was then says
    whether it was in the queue). Same rules as ``approval_list``'s filters and ``assigned_to``."""
    in_queue, params = "a.status = ANY(%s)", [list(OPEN)]
    if mine:  # assigned_to(viewer)
        in_queue += " AND (a.assignee_id = %s OR (a.status = %s AND a.escalate_to_role = %s))"
        params += [viewer.user_id, ApprovalStatus.ESCALATED, viewer.role]
    if decided.status in OPEN and (not mine or is_assigned_to(decided, viewer)):
        in_queue = f"({in_queue}) OR a.id = %s"  # "mine" reads the status the decision changed: asked of it before
        params.append(decided.pk)
    sql, joins = [f"a.tenant_id = %s AND ({in_queue})"], ""
    params.insert(0, viewer.tenant_id)
    if tool:
        sql.append("a.tool = %s")
        params.append(tool)
    if agent:
        joins = f" JOIN {Run._meta.db_table} r ON r.id = a.run_id JOIN {Agent._meta.db_table} g ON g.id = r.agent_id"
        sql.append("g.slug = %s")
        params.append(agent)
    if min_risk:
        sql.append("a.risk >= %s")
        params.append(min_risk)
    order = ", ".join(f'a."{name.lstrip("-")}" {"DESC" if name.startswith("-") else "ASC"}'
                      for name in SORTS.get(sort, SORTS["newest"]))
    with prepared_cursor() as cursor:
        cursor.execute(f"SELECT a.id FROM {ApprovalRequest._meta.db_table} a{joins} WHERE {' AND '.join(sql)} "
                       f"ORDER BY {order} LIMIT {QUEUE_PAGE}", params)
        return [pk for (pk,) in cursor.fetchall()]


def open_count(*, tenant) -> int:
    return ApprovalRequest.objects.for_tenant(tenant).filter(status__in=OPEN).count()


def assignable_people(*, tenant) -> list:
    """Who may be asked to decide: the tenant's reviewers and admins."""
    from console.models import Membership
    from console.roles import SECTION_ROLES

    return [m.user for m in Membership.objects.for_tenant(tenant).filter(role__in=SECTION_ROLES["approvals"]).select_related(
        "user").order_by("user__username")]
