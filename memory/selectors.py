"""Reads of memory, always inside what the reader may see (the ACL is part of every query's WHERE).

Who sees what: a person sees their own records (scope user), their teams', the tenant's and every
agent's of the tenant; an admin sees every record of the tenant. A run's step is given, among only the
records its requester may see, the requester's own, their teams', the tenant's and the run's agent's.
"""

from __future__ import annotations

import re
import time
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


@dataclass(frozen=True)
class UsedMemory:
    """One memory a step was given, as a viewer may see it: ``content`` is the text of the version the step
    used, read now (so a deleted memory shows as gone), and empty when the viewer may not see the record."""

    rank: int
    score: float
    version: int
    record_id: int
    scope: str
    visible: bool
    deleted: bool
    type: str = ""
    subject: str = ""
    content: str = ""
    current_version: int = 0


@dataclass(frozen=True)
class StepProposal:
    """What a step asked to remember and what became of it; its content only for a viewer who may see the
    record it became (a refused proposal has no record: its reason says why, never its text)."""

    proposal: MemoryProposal
    visible: bool
    content: str = ""


@dataclass(frozen=True)
class StepMemories:
    step: int
    used: list[UsedMemory]
    proposals: list[StepProposal]


def step_memories(tenant, viewer, role: str, run, *, step: int | None = None) -> list[StepMemories]:
    """Per step of ``run`` (or one step): the memories it used (rank order) and its proposals, each shown only
    as far as ``viewer`` may see it. A reviewer who may not see the requester's own memories sees that the step
    used one, its rank and score, never its text, type or subject."""
    uses = MemoryUse.objects.for_tenant(tenant).filter(run=run)
    proposals = MemoryProposal.objects.for_tenant(tenant).filter(run=run)
    if step is not None:
        uses, proposals = uses.filter(step=step), proposals.filter(step=step)
    uses = list(uses.select_related("record").order_by("step", "rank"))
    proposals = list(proposals.select_related("record", "other").order_by("step", "id"))
    record_ids = {u.record_id for u in uses} | {p.record_id for p in proposals if p.record_id}
    visible = set(MemoryRecord.objects.for_tenant(tenant).filter(visible_q(tenant, viewer, role), pk__in=record_ids)
                  .values_list("pk", flat=True))
    texts = {(v.record_id, v.number): v.content for v in MemoryVersion.objects.for_tenant(tenant).filter(
        record_id__in=visible & {u.record_id for u in uses}).only("record_id", "number", "content")}
    steps: dict[int, StepMemories] = {}
    for use in uses:
        record, seen = use.record, use.record_id in visible
        gone = record.status == Status.DELETED
        shown = seen and not gone
        steps.setdefault(use.step, StepMemories(use.step, [], [])).used.append(UsedMemory(
            rank=use.rank, score=use.score, version=use.version, record_id=use.record_id, scope=record.scope,
            visible=seen, deleted=gone, type=record.type if shown else "", subject=record.subject if shown else "",
            content=texts.get((use.record_id, use.version), "") if shown else "",
            current_version=record.version if shown else 0))
    for proposal in proposals:
        seen = bool(proposal.record_id) and proposal.record_id in visible and proposal.record.status != Status.DELETED
        steps.setdefault(proposal.step or 0, StepMemories(proposal.step or 0, [], [])).proposals.append(
            StepProposal(proposal=proposal, visible=seen, content=proposal.content if seen else ""))
    return [steps[n] for n in sorted(steps)]


def proposals_of(record: MemoryRecord) -> list[MemoryProposal]:
    return list(MemoryProposal.objects.for_tenant(record.tenant_id).filter(Q(record=record) | Q(other=record))
                .select_related("run").order_by("-created_at"))


def record_it_would_replace(record: MemoryRecord) -> MemoryRecord | None:
    """For a record waiting for confirmation: the live record that confirming it supersedes (of the same scope,
    owner and type, so whoever may confirm it may see that one too), else None."""
    if record.status != Status.PROPOSED:
        return None
    proposal = (MemoryProposal.objects.for_tenant(record.tenant_id).filter(record=record, other__isnull=False)
                .select_related("other").first())
    return proposal.other if proposal and proposal.other.status == Status.ACTIVE else None


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


def names_and_keys_query(text: str) -> str:
    """The words a step's question names things with: keys (ACME-042, a word with a digit) and names (a capital
    letter), for websearch_to_tsquery. Meaning covers the rest; a common word ("account", "renewal") makes every
    eligible row a match to rank. At 1M rows with words from a P7 sentence: 5.2 → 2.2 ms for a person who sees
    1,000 rows; the same (~35 ms, the exact sort of meaning's candidates) for one who sees 10,000."""
    found = [word for word in _QUERY_WORD.findall(text)
             if word[0].isupper() or any(ch.isdigit() for ch in word)][:32]
    return " or ".join(dict.fromkeys(found))


# Retrieval, one statement and one round trip. Each candidate row carries what the final score needs, so nothing is
# read twice. Candidates by meaning come in one of two shapes, chosen by how many records the requester may see
# (``eligible_is_small``):
# - few (up to EXACT_UP_TO): one exact sort of every eligible row (``+ 0`` keeps the HNSW index out of it), the
#   ACL as one WHERE. The cheapest to plan: P7 at 100k, 0.1% visible, 0.27 → 0.18 ms of planning.
# - many: two branches of the ACL, each with estimates the planner can trust: the requester's own records (the
#   btree and an exact sort when they are few) and the shared ones (tenant, the run's agent, the requester's
#   teams: HNSW with an iterative scan when they are many), the query's vector parsed once (``q``). One OR over
#   everything there made the planner walk HNSW for 100 rows (17× B7).
# The score is float arithmetic: numeric division (rank, recency) cost 0.04 ms over 40 candidates.
LIVE_IN_TENANT = ("r.tenant_id = %(tenant)s AND r.status = 'active' AND (r.expires_at IS NULL OR r.expires_at > %(now)s) "
                  "AND r.embedding IS NOT NULL")
OWN = "r.scope = 'user' AND r.user_id = %(user)s"
SHARED = ("(r.scope = 'tenant' OR (r.scope = 'agent' AND r.agent_id = %(agent)s) OR (r.scope = 'team' AND r.team_id = "
          "ANY(ARRAY(SELECT team_id FROM memory_teammember WHERE tenant_id = %(tenant)s AND user_id = %(user)s))))")
ELIGIBLE = f"{LIVE_IN_TENANT} AND (({OWN}) OR {SHARED})"
CANDIDATE = "r.id, r.version, r.pinned, r.confidence, r.updated_at"
CONTENT = ", r.type, r.subject, r.content"
EXACT_UP_TO = 2_000  # eligible records: an exact sort of 2,000 distances takes ~1 ms


def _by_meaning(exact: bool, columns: str = CANDIDATE) -> str:
    if exact:
        return (f"SELECT {columns}, (r.embedding <=> %(vector)s::vector) + 0 AS distance FROM memory_memoryrecord r "
                f"WHERE {ELIGIBLE} ORDER BY distance LIMIT %(candidates)s")
    return "\n        UNION ALL\n        ".join(
        f"(SELECT {columns}, r.embedding <=> (SELECT v FROM q) AS distance FROM memory_memoryrecord r "
        f"WHERE {LIVE_IN_TENANT} AND {branch} ORDER BY distance LIMIT %(candidates)s)" for branch in (OWN, SHARED)
    ) + "\n        ORDER BY distance LIMIT %(candidates)s"


WITH_Q = {True: "", False: "WITH q AS (SELECT %(vector)s::vector AS v)"}
EXTRAS = ("CASE WHEN pinned THEN 0.01::float8 ELSE 0::float8 END + 0.004::float8 * confidence "
          "+ 0.002::float8 / (1 + date_part('epoch', now() - updated_at) / 2592000.0::float8)")  # 30 days
RANK = "1.0::float8 / (%(rrf)s + position)"
# By meaning alone (no names or keys in the question): the candidates in order of distance, each with what pins,
# confidence and recency add, fused by ``retrieve`` (their rank is their place in that order): no window, no
# second sort and no subquery around the exact sort for the planner (P7 at 100k, 0.1% visible: 0.36 → 0.29 ms
# inside Postgres, against B7's 0.19).
MEANING_SQL = """{with_q}
SELECT id, version, {extras} AS extra{content} FROM ({by_meaning}) candidates ORDER BY distance
"""
FUSED_SQL = """{with_q}{comma}
meaning AS (
    SELECT *, row_number() OVER (ORDER BY distance) AS position FROM ({by_meaning}) candidates
), words AS (
    SELECT {candidate}, row_number() OVER (ORDER BY ts_rank(r.search, tq) DESC, r.id) AS position
      FROM memory_memoryrecord r, websearch_to_tsquery('english', %(words)s) tq
     WHERE {eligible} AND r.search @@ tq
     ORDER BY position
     LIMIT %(candidates)s
)
SELECT id, version, sum({rank}) + {extras} AS score FROM (
    SELECT id, version, pinned, confidence, updated_at, position FROM meaning
    UNION ALL
    SELECT id, version, pinned, confidence, updated_at, position FROM words
) parts GROUP BY id, version, pinned, confidence, updated_at
 ORDER BY score DESC, id
 LIMIT %(k)s
"""
# The step's context wants each chosen record's words too, in the same statement rather than read again by id in
# a second round trip: joined on the k rows chosen (words and meaning), or carried by each candidate (meaning).
WITH_CONTENT_SQL = """
SELECT chosen.id, chosen.version, chosen.score, r.type, r.subject, r.content
  FROM ({ranked}) chosen JOIN memory_memoryrecord r ON r.id = chosen.id
 ORDER BY chosen.score DESC, chosen.id
"""


def _statement(exact: bool, fused: bool, with_content: bool) -> str:
    if not fused:
        columns = CANDIDATE + (CONTENT if with_content else "")
        if exact:  # the exact sort itself, no subquery around it
            return (f"SELECT r.id, r.version, {EXTRAS} AS extra{CONTENT if with_content else ''} "
                    f"FROM memory_memoryrecord r WHERE {ELIGIBLE} "
                    "ORDER BY (r.embedding <=> %(vector)s::vector) + 0 LIMIT %(candidates)s")
        return MEANING_SQL.format(with_q=WITH_Q[False], extras=EXTRAS, by_meaning=_by_meaning(False, columns),
                                  content=", type, subject, content" if with_content else "")
    ranked = FUSED_SQL.format(with_q=WITH_Q[exact] or "WITH", comma="," if WITH_Q[exact] else "",
                              by_meaning=_by_meaning(exact), candidate=CANDIDATE, eligible=ELIGIBLE, rank=RANK,
                              extras=EXTRAS)
    return WITH_CONTENT_SQL.format(ranked=ranked) if with_content else ranked


# (exact, fused, with_content) → the statement. Fused: the k chosen rows, (id, version, score[, type, subject,
# content]); by meaning alone: the candidates by distance, (id, version, extra[, type, subject, content]).
RETRIEVE_SQL = {(exact, fused, with_content): _statement(exact, fused, with_content)
                for exact in (True, False) for fused in (True, False) for with_content in (True, False)}
# How many records a requester may see, counted up to one past EXACT_UP_TO (a bounded read of the ACL's btrees),
# kept per process for a minute: only which shape to take depends on it, never what may be seen (the ACL is in
# both statements), and both shapes return k rows whenever k are eligible.
ELIGIBLE_COUNT_SQL = f"SELECT count(*) FROM (SELECT 1 FROM memory_memoryrecord r WHERE {ELIGIBLE} LIMIT %(bound)s) e"
ELIGIBLE_TTL = 60.0
_eligible_small: dict[tuple[int, int, int], tuple[float, bool]] = {}


def eligible_is_small(params: dict) -> bool:
    """Whether the requester of ``params`` may see at most EXACT_UP_TO records (counted at most once a minute)."""
    key, now = (params["tenant"], params["user"], params["agent"]), time.monotonic()
    kept = _eligible_small.get(key)
    if kept is not None and kept[0] > now:
        return kept[1]
    with connection.cursor() as cursor:
        cursor.execute(ELIGIBLE_COUNT_SQL, {**params, "bound": EXACT_UP_TO + 1})
        small = cursor.fetchone()[0] <= EXACT_UP_TO
    if len(_eligible_small) > 10_000:
        _eligible_small.clear()
    _eligible_small[key] = (now + ELIGIBLE_TTL, small)
    return small


# Session settings for retrieval's HNSW scans, set when a connection opens rather than with SET LOCAL in a
# transaction around each query (two round trips a step saved): iterative scans keep a filtered walk going until
# it has the rows asked for (pgvector >= 0.8), in relaxed order, which the statements above sort again. ef_search
# 200, not 100: at 1M rows, 10% visible, recall@10 was 0.975 and 0.997 on two index builds with 100, 1.000 with
# 200, no slower (the walk is the iterative scan's, not ef's).
HNSW_SESSION = "SET hnsw.iterative_scan = relaxed_order; SET hnsw.ef_search = 200"


def hnsw_session_settings(sender, connection, **kwargs) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(HNSW_SESSION)


@dataclass(frozen=True)
class Retrieved:
    id: int
    version: int
    score: float
    rank: int
    type: str = ""  # these three only when asked for (``with_content``)
    subject: str = ""
    content: str = ""


def retrieval_statement(*, tenant_id: int, user_id: int | None, agent_id: int | None, text: str,
                        vector: list[float], k: int, with_content: bool = False) -> tuple[str, dict]:
    """The statement ``retrieve`` runs for these arguments and its parameters (the benchmark EXPLAINs it)."""
    words = names_and_keys_query(text)
    params = {"tenant": tenant_id, "user": user_id or 0, "agent": agent_id or 0, "now": timezone.now(),
              "vector": "[" + ",".join(f"{v:.6f}" for v in vector) + "]", "words": words,
              "candidates": max(CANDIDATES, 4 * k), "rrf": RRF_K, "k": k}
    return RETRIEVE_SQL[eligible_is_small(params), bool(words), with_content], params


def retrieve(*, tenant_id: int, user_id: int | None, agent_id: int | None, text: str, vector: list[float],
             k: int, with_content: bool = False) -> list[Retrieved]:
    """The k records most relevant to ``text`` among those the requester may see for the run's agent: the ACL
    is in every WHERE, before any ranking. Meaning (an exact sort when the requester may see few records, else
    HNSW with an iterative scan so a selective filter still yields its rows) and words (ts_rank, keys like
    ACME-042 included) fused by reciprocal rank, then pins, confidence and recency. Never a record that is not
    active or has expired. Words rank by the names and keys in ``text``. ``with_content``: each with its type,
    subject and content too."""
    sql, params = retrieval_statement(tenant_id=tenant_id, user_id=user_id, agent_id=agent_id, text=text,
                                      vector=vector, k=k, with_content=with_content)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if params["words"]:  # the k chosen, (id, version, score[, type, subject, content])
        return [Retrieved(row[0], row[1], round(float(row[2]), 6), n, *row[3:]) for n, row in enumerate(rows, start=1)]
    # The candidates by distance, each with its extra: fused here, by score (descending), then id.
    chosen = sorted([(-(1.0 / (RRF_K + position) + row[2]), row[0], row) for position, row in enumerate(rows, start=1)])
    return [Retrieved(row[0], row[1], round(-negative, 6), n, *row[3:])
            for n, (negative, _, row) in enumerate(chosen[:k], start=1)]


def search(tenant, user, role: str, text: str, *, base=None, limit: int = 50) -> list[MemoryRecord]:
    """The page's and the API's search: by meaning and by words, within what the reader may see (and the
    page's filters, ``base``). Deleted records have no content and never match."""
    from memory.embedders import embed_one

    rows = base if base is not None else MemoryRecord.objects.for_tenant(tenant).filter(
        visible_q(tenant, user, role)).exclude(status=Status.DELETED).select_related("user", "team", "agent",
                                                                                    "source_run")
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
