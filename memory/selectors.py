"""Reads of memory, always inside what the reader may see (the ACL is part of every query's WHERE).

Who sees what: a person sees their own records (scope user), their teams', the tenant's and every
agent's of the tenant; an admin sees every record of the tenant. A run's step is given, among only the
records its requester may see, the requester's own, their teams', the tenant's and the run's agent's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from console.models import Role
from memory.models import (
    CaptureSetting,
    MemoryPolicy,
    MemoryProposal,
    MemoryRecord,
    MemoryUse,
    MemoryVersion,
    Scope,
    Status,
    Team,
    TeamMember,
)

LIVE = (Status.ACTIVE, Status.PROPOSED)
RRF_K = 60  # reciprocal rank fusion's constant
CANDIDATES = 40  # per ranking (vector, words) before fusion


def team_ids_of(tenant, user) -> list[int]:
    return list(TeamMember.objects.for_tenant(tenant).filter(user=user).values_list("team_id", flat=True))


def visible_q(tenant, user, role: str) -> Q:
    """The records ``user`` may see in ``tenant``, as a filter (used in every read below)."""
    if role == Role.ADMIN:
        return Q(tenant=tenant)
    return Q(tenant=tenant) & (Q(scope=Scope.TENANT) | Q(scope=Scope.AGENT) | Q(scope=Scope.USER, user=user)
                               | Q(scope=Scope.TEAM, team_id__in=team_ids_of(tenant, user)))


def tab_q(tab: str, tenant, user) -> Q:
    return {
        "me": Q(scope=Scope.USER, user=user),
        "people": Q(scope=Scope.USER),  # an admin's view of everyone's
        "teams": Q(scope=Scope.TEAM),
        "tenant": Q(scope=Scope.TENANT),
        "agents": Q(scope=Scope.AGENT),
        "confirm": Q(status=Status.PROPOSED) & (Q(scope=Scope.USER, user=user) | ~Q(scope=Scope.USER)),
        "all": Q(),
    }[tab]


TABS = ["me", "teams", "tenant", "agents", "confirm", "people"]


def tabs_for(role: str) -> list[str]:
    return TABS if role == Role.ADMIN else TABS[:-1]


@dataclass(frozen=True)
class Filters:
    tab: str = "me"
    type: str = ""
    scope: str = ""
    agent: int | None = None
    status: str = ""
    q: str = ""


def memory_list(tenant, user, role: str, filters: Filters, *, limit: int = 200) -> list[MemoryRecord]:
    rows = (MemoryRecord.objects.for_tenant(tenant).filter(visible_q(tenant, user, role))
            .filter(tab_q(filters.tab, tenant, user)).select_related("user", "team", "agent", "source_run"))
    if filters.type:
        rows = rows.filter(type=filters.type)
    if filters.scope:
        rows = rows.filter(scope=filters.scope)
    if filters.agent:
        rows = rows.filter(agent_id=filters.agent)
    if filters.status:
        rows = rows.filter(status=filters.status)
    elif filters.tab != "confirm":
        rows = rows.exclude(status=Status.DELETED)
    if filters.q.strip():
        return search(tenant, user, role, filters.q, base=rows, limit=limit)
    return list(rows[:limit])


def to_confirm_count(tenant, user, role: str) -> int:
    return (MemoryRecord.objects.for_tenant(tenant).filter(visible_q(tenant, user, role))
            .filter(tab_q("confirm", tenant, user)).count())


def memory_get(tenant, user, role: str, record_id: int) -> MemoryRecord | None:
    return (MemoryRecord.objects.for_tenant(tenant).filter(visible_q(tenant, user, role), pk=record_id)
            .select_related("user", "team", "agent", "source_run", "superseded_by", "created_by", "updated_by").first())


def versions_of(record: MemoryRecord) -> list[MemoryVersion]:
    return list(MemoryVersion.objects.for_tenant(record.tenant_id).filter(record=record).order_by("-number"))


def uses_of(record: MemoryRecord, limit: int = 50) -> list[MemoryUse]:
    return list(MemoryUse.objects.for_tenant(record.tenant_id).filter(record=record).select_related("run")
                .order_by("-at")[:limit])


def uses_in_run(tenant, run) -> list[MemoryUse]:
    return list(MemoryUse.objects.for_tenant(tenant).filter(run=run).select_related("record").order_by("step", "rank"))


def proposals_of(record: MemoryRecord) -> list[MemoryProposal]:
    return list(MemoryProposal.objects.for_tenant(record.tenant_id).filter(Q(record=record) | Q(other=record))
                .select_related("run").order_by("-created_at"))


def policy_of(tenant) -> MemoryPolicy:
    """The tenant's policy, or the default (unsaved): preferences wait for the person's confirmation."""
    return MemoryPolicy.objects.filter(tenant=tenant).first() or MemoryPolicy(tenant=tenant, confirm_types=["preference"])


def captures_for(tenant, user) -> bool:
    setting = CaptureSetting.objects.for_tenant(tenant).filter(user=user).first() if user else None
    return setting.capture if setting else True


def agents_of_tenant(tenant) -> list:
    from agents.models import Agent

    return list(Agent.objects.for_tenant(tenant).order_by("name").only("pk", "name"))


def teams_of_tenant(tenant) -> list[Team]:
    return list(Team.objects.for_tenant(tenant).prefetch_related("members__user"))


# --- Ranking: meaning and words ---------------------------------------------------------------

_QUERY_WORD = re.compile(r"[A-Za-z0-9]+(?:[-_.][A-Za-z0-9]+)*")


def words_query(text: str) -> str:
    """Any of the text's words (keys such as ACME-042 kept whole), for websearch_to_tsquery."""
    found = _QUERY_WORD.findall(text)[:32]
    return " or ".join(dict.fromkeys(found))


RANKED_SQL = """
WITH by_meaning AS MATERIALIZED (
    SELECT id, distance FROM (
        {by_owner}
    ) owners ORDER BY distance LIMIT %(candidates)s
), meaning AS (
    SELECT id, distance, row_number() OVER (ORDER BY distance) AS position FROM by_meaning
), words AS (
    SELECT r.id, ts_rank(r.search, q) AS rank, row_number() OVER (ORDER BY ts_rank(r.search, q) DESC, r.id) AS position
      FROM memory_memoryrecord r, websearch_to_tsquery('english', %(words)s) q
     WHERE {acl} AND %(words)s <> '' AND r.search @@ q
     ORDER BY rank DESC
     LIMIT %(candidates)s
), fused AS (
    SELECT id, sum(score) AS score, min(distance) AS distance FROM (
        SELECT id, 1.0 / (%(rrf)s + position) AS score, distance FROM meaning
        UNION ALL
        SELECT id, 1.0 / (%(rrf)s + position) AS score, NULL FROM words
    ) parts GROUP BY id
)
SELECT r.id, r.version,
       f.score
       + CASE WHEN r.pinned THEN 0.01 ELSE 0 END
       + 0.004 * r.confidence
       + 0.002 / (1 + extract(epoch FROM (now() - r.updated_at)) / 86400.0 / 30) AS score,
       f.distance
  FROM fused f JOIN memory_memoryrecord r ON r.id = f.id
 ORDER BY score DESC, r.id
 LIMIT %(k)s
"""


# The ACL's branches one by one, each with an equality the planner can estimate: a selective branch (a person's
# 100 rows) reads its btree and sorts exactly, a broad one (the tenant's 10,000) walks the HNSW index with an
# iterative scan. One OR over all of them made the planner walk HNSW for 100 rows (P7: 17× B7 at 0.1%).
OWNER_BRANCHES = ("r.scope = 'tenant'", "r.scope = 'user' AND r.user_id = %(user)s",
                  "r.scope = 'team' AND r.team_id IN (SELECT team_id FROM memory_teammember "
                  "WHERE tenant_id = %(tenant)s AND user_id = %(user)s)", "r.scope = 'agent' AND r.agent_id = %(agent)s")
LIVE_IN_TENANT = ("r.tenant_id = %(tenant)s AND r.status = 'active' AND (r.expires_at IS NULL OR r.expires_at > %(now)s) "
                  "AND r.embedding IS NOT NULL")
BY_OWNER = "\n        UNION ALL\n        ".join(
    f"(SELECT r.id, r.embedding <=> %(vector)s::vector AS distance FROM memory_memoryrecord r "
    f"WHERE {LIVE_IN_TENANT} AND {branch} ORDER BY r.embedding <=> %(vector)s::vector LIMIT %(candidates)s)"
    for branch in OWNER_BRANCHES)


def _retrieval_acl(alias: str = "r") -> str:
    return (f"{alias}.tenant_id = %(tenant)s AND {alias}.status = 'active' "
            f"AND ({alias}.expires_at IS NULL OR {alias}.expires_at > %(now)s) "
            f"AND ({alias}.scope = 'tenant' OR ({alias}.scope = 'user' AND {alias}.user_id = %(user)s) "
            f"OR ({alias}.scope = 'team' AND {alias}.team_id IN (SELECT team_id FROM memory_teammember "
            f"WHERE tenant_id = %(tenant)s AND user_id = %(user)s)) "
            f"OR ({alias}.scope = 'agent' AND {alias}.agent_id = %(agent)s))")


@dataclass(frozen=True)
class Retrieved:
    id: int
    version: int
    score: float
    rank: int


def retrieve(*, tenant_id: int, user_id: int | None, agent_id: int | None, text: str, vector: list[float],
             k: int) -> list[Retrieved]:
    """The k records most relevant to ``text`` among those the requester may see for the run's agent: the ACL
    is in every WHERE, before any ranking. Meaning (HNSW, iterative scan so a selective filter still
    yields its rows) and words (ts_rank, keys like ACME-042 included) fused by reciprocal rank, then
    pins, confidence and recency. Never a record that is not active or has expired."""
    sql = RANKED_SQL.replace("{by_owner}", BY_OWNER).replace("{acl}", _retrieval_acl())
    params = {"tenant": tenant_id, "user": user_id or 0, "agent": agent_id or 0, "now": timezone.now(),
              "vector": "[" + ",".join(f"{v:.6f}" for v in vector) + "]", "words": words_query(text),
              "candidates": max(CANDIDATES, 4 * k), "rrf": RRF_K, "k": k}
    # One round trip, not four (BEGIN, SET, query, COMMIT): the statements of one simple query run as one
    # transaction, so the SET LOCALs hold for this query only (inside a caller's transaction, until it ends).
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order; SET LOCAL hnsw.ef_search = 100; " + sql, params)
        while cursor.description is None and cursor.nextset():
            pass  # past the SETs' results to the query's rows
        rows = cursor.fetchall()
    return [Retrieved(id=row[0], version=row[1], score=round(float(row[2]), 6), rank=n)
            for n, row in enumerate(rows, start=1)]


def search(tenant, user, role: str, text: str, *, base=None, limit: int = 50) -> list[MemoryRecord]:
    """The page's and the API's search: by meaning and by words, within what the reader may see (and the
    page's filters, ``base``). Deleted records have no content and never match."""
    from memory.embedders import embed_one

    rows = base if base is not None else MemoryRecord.objects.for_tenant(tenant).filter(
        visible_q(tenant, user, role)).exclude(status=Status.DELETED)
    vector, _ = embed_one(text)
    # The reader's rows (ACL and filters) as a subquery of both rankings: no list of ids, no cap.
    allowed_sql, allowed_params = rows.order_by().values("id").query.sql_with_params()
    sql = f"""
    WITH allowed AS MATERIALIZED ({allowed_sql}), meaning AS (
        SELECT id, row_number() OVER (ORDER BY embedding <=> %s::vector) AS position
          FROM memory_memoryrecord WHERE id IN (SELECT id FROM allowed) AND embedding IS NOT NULL
         ORDER BY embedding <=> %s::vector LIMIT %s
    ), words AS (
        SELECT id, row_number() OVER (ORDER BY ts_rank(search, q) DESC, id) AS position
          FROM memory_memoryrecord, websearch_to_tsquery('english', %s) q
         WHERE id IN (SELECT id FROM allowed) AND %s <> '' AND search @@ q ORDER BY position LIMIT %s
    )
    SELECT id, sum(score) AS score FROM (
        SELECT id, 3.0 / (60 + position) AS score FROM words
        UNION ALL
        SELECT id, 1.0 / (60 + position) FROM meaning WHERE position <= 10
    ) parts GROUP BY id ORDER BY score DESC, id LIMIT %s
    """
    literal = "[" + ",".join(f"{v:.6f}" for v in vector) + "]"
    query = words_query(text)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*allowed_params, literal, literal, limit, query, query, limit, limit])
        order = [row[0] for row in cursor.fetchall()]
    by_id = {r.pk: r for r in rows.filter(pk__in=order)}
    return [by_id[i] for i in order if i in by_id]


def export_rows(tenant, user, role: str, *, tab: str = "all") -> list[dict]:
    """Everything the reader may see (deleted records excepted), as plain rows."""
    rows = (MemoryRecord.objects.for_tenant(tenant).filter(visible_q(tenant, user, role)).filter(tab_q(tab, tenant, user))
            .exclude(status=Status.DELETED).select_related("user", "team", "agent", "source_run").order_by("id"))
    return [record_row(r) for r in rows]


def owner_label(record: MemoryRecord) -> str:
    if record.scope == Scope.USER:
        return record.user.username if record.user_id else ""
    if record.scope == Scope.TEAM:
        return record.team.name if record.team_id else ""
    if record.scope == Scope.AGENT:
        return record.agent.name if record.agent_id else ""
    return "tenant"


EXPORT_FIELDS = ("id", "scope", "owner", "subject", "type", "content", "confidence", "status", "pinned", "version",
                 "expires_at", "source_run", "source_step", "embedder", "created_at", "updated_at")


def record_row(r: MemoryRecord) -> dict:
    return {"id": r.pk, "scope": r.scope, "owner": owner_label(r), "subject": r.subject, "type": r.type,
            "content": r.content, "confidence": r.confidence, "status": r.status, "pinned": r.pinned,
            "version": r.version, "expires_at": r.expires_at.isoformat() if r.expires_at else None,
            "source_run": r.source_run.number if r.source_run_id and r.source_run else None,
            "source_step": r.source_step, "embedder": r.embedder,
            "created_at": r.created_at.isoformat(), "updated_at": r.updated_at.isoformat()}
