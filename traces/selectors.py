"""Reads for the runs' traces: the traces list, a trace's skeleton (with subtree rollups computed
here, on the server, from the stored spans: current while the run runs, final when it ends), search
within a trace, and one span's detail."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

import json
import logging
import threading
import zlib
from collections import OrderedDict

from django.core.cache import cache
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from redis.exceptions import RedisError

from agents.models import ConversationMessage, ModelCall, Run, RunEvent, ToolInvocation
from approvals.models import OPEN, ApprovalRequest
from console.input import strict_int, strict_number
from traces.live import spans_stored_count
from traces.models import KINDS, DecisionRecord, Span
from traces.skeleton_tree import SkeletonTree

logger = logging.getLogger(__name__)

STATUSES = ("unset", "ok", "error", "open")  # open: an approval wait still waiting (no stored span yet)
SKELETON_FIELDS = ("id", "parent", "depth", "kind", "name", "start_us", "duration_us", "status", "tokens", "cost_usd",
                   "subtree_tokens", "subtree_cost_usd", "subtree_errors", "subtree_duration_us")
SKELETON_NAME_CHARS = 80


def span_list(*, tenant, run) -> list[Span]:
    """The run's stored spans (``run``: the run or its id), in the order they started; none for a run
    of another tenant."""
    return list(Span.objects.for_tenant(tenant).filter(run=run).order_by("started_at", "id"))


def open_waits(*, tenant, run: Run) -> list[ApprovalRequest]:
    """The approvals a running run waits for: each shows as an open approval-wait span until it is decided."""
    if run.is_terminal:
        return []
    return list(ApprovalRequest.objects.for_tenant(tenant).filter(run=run, status__in=OPEN)
                .select_related("assignee").order_by("created_at", "id"))


def _wait_name(wait: ApprovalRequest) -> str:
    return f"approval wait {wait.tool or wait.kind}"


def open_wait_detail(*, tenant, run: Run, approval_id: int) -> dict | None:
    """An open approval wait as the span detail shows it: who it waits for, since when, and its approval."""
    wait = next((wait for wait in open_waits(tenant=tenant, run=run) if wait.pk == approval_id), None)
    if wait is None:
        return None
    waited = timezone.now() - wait.created_at
    if wait.assignee is not None:
        waiting_for = wait.assignee.username
    elif wait.status == "escalated":
        waiting_for = f"any {wait.escalate_to_role} (escalated)"
    else:
        waiting_for = "any reviewer"
    return {"id": -wait.pk, "kind": "approval", "name": _wait_name(wait), "status": "open", "step": wait.step,
            "started_at": wait.created_at.isoformat(), "duration_ms": round(waited.total_seconds() * 1000, 3),
            "tokens": 0, "cost_usd": "0", "attributes": {},
            "approval": {"open": True, "id": wait.pk, "kind": wait.kind, "waiting_for": waiting_for,
                         "requested_at": wait.created_at.isoformat(), "waited_ms": int(waited.total_seconds() * 1000),
                         "due_at": wait.due_at.isoformat() if wait.due_at else "", "policy": wait.policy,
                         "risk": wait.risk}}


def _us(delta: timedelta) -> int:
    return int(delta.total_seconds() * 1_000_000)


SPAN_COLUMNS = ("id", "span_id", "parent_span_id", "kind", "name", "started_at", "ended_at", "status", "tokens", "cost_usd")


def _span_rows(tenant, run: Run, *, after_id: int = 0):
    """The run's spans' narrow columns (never the attributes), in start order; those stored after ``after_id``."""
    spans = Span.objects.for_tenant(tenant).filter(run=run)
    if after_id:
        spans = spans.filter(pk__gt=after_id)
    return spans.order_by("started_at", "id").values_list(*SPAN_COLUMNS)


class _LiveTree:
    """A running run's tree, kept by this process between reads and fed only the spans stored since."""

    def __init__(self, trace_id: str) -> None:
        self.trace_id, self.tree, self.lock = trace_id, SkeletonTree(), threading.Lock()


LIVE_TREES = 32  # running runs whose trees a process keeps (the least recently read go first)
_live_trees: OrderedDict[int, _LiveTree] = OrderedDict()
_live_trees_lock = threading.Lock()


def _live_tree(run: Run) -> _LiveTree:
    with _live_trees_lock:
        kept = _live_trees.get(run.pk)
        if kept is None or kept.trace_id != run.trace_id:
            kept = _live_trees[run.pk] = _LiveTree(run.trace_id)
        _live_trees.move_to_end(run.pk)
        while len(_live_trees) > LIVE_TREES:
            _live_trees.popitem(last=False)
    return kept


def _stored_count(run: Run) -> int:
    try:
        return spans_stored_count(run.pk)
    except RedisError:  # without the counter, nothing to check against
        return 0


def trace_skeleton(*, tenant, run: Run) -> dict:
    """The whole trace as compact arrays, one row per span in tree order (a parent before its children,
    siblings by start): ``fields`` names the columns; ``parent`` and ``depth`` place a row in the tree
    (parent is a row index, -1 for the root); ``kind`` and ``status`` index ``kinds`` and ``statuses``;
    times are microseconds from the trace's start. Each row carries its own tokens and cost and its
    subtree's totals (tokens, cost, error spans, duration from its start to the last end below it).

    An ended run's is built in one pass. A running run's tree is kept by the process and fed only the spans
    stored since its last read, each adding to its ancestors' totals (traces.skeleton_tree): a step of a
    50,000-span run costs its own spans, not the trace. If the exporter's count says spans were stored that
    the tree has not seen (a batch committed late under lower ids), it is read again whole. A running run has
    no run span yet (it is recorded when the run ends): its spans hang under a stand-in root (id 0) for the
    run so far, beside its open approval waits."""
    if run.is_terminal:
        with _live_trees_lock:
            _live_trees.pop(run.pk, None)
        tree = SkeletonTree()
        tree.add(_span_rows(tenant, run))
        return _skeleton_out(tenant, run, tree)
    kept = _live_tree(run)
    with kept.lock:
        kept.tree.add(_span_rows(tenant, run, after_id=kept.tree.last_id))
        if _stored_count(run) > len(kept.tree):
            kept.tree = SkeletonTree()
            kept.tree.add(_span_rows(tenant, run))
        return _skeleton_out(tenant, run, kept.tree)


def _skeleton_out(tenant, run: Run, tree: SkeletonTree) -> dict:
    now = timezone.now()
    stand_in, waits = None, []
    if tree.run_span() is None:  # the run so far: from its creation to now (or its end)
        stand_in = (0, "", "", "run", f"invoke_agent {run.agent.name}", run.created_at, run.finished_at or now,
                    "error" if run.status == "failed" else "unset", 0, Decimal(0))
        # An approval still open is a wait span up to now, under the run, with id -(approval id); the span
        # approvals records with the decision (approvals._wait_span_on_commit) replaces it.
        waits = [(-wait.pk, f"open-wait-{wait.pk}", "", "approval", _wait_name(wait), wait.created_at,
                  max(now, wait.created_at), "open", 0, Decimal(0)) for wait in open_waits(tenant=tenant, run=run)]
    start, spans = tree.skeleton_rows(stand_in=stand_in, extra=waits, kinds=KINDS, statuses=STATUSES,
                                      name_chars=SKELETON_NAME_CHARS)
    start = start or run.created_at
    return {"run": run.number, "trace_id": run.trace_id, "status": run.status, "running": not run.is_terminal,
            "started_at": start.isoformat(), "fields": list(SKELETON_FIELDS), "kinds": list(KINDS),
            "statuses": list(STATUSES), "spans": spans}


HEAD_ROWS = 100  # the first screenful: the page carries these rows, so its first paint waits for nothing else
PAGE_ROWS = 5000  # the rest of an ended run's skeleton comes after the first paint in pages of this many rows
SKELETON_CACHE_SECONDS = 7 * 24 * 3600


def _dumps(data) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def _meta(data: dict, version: int) -> dict:
    """Everything of a skeleton but its rows, with the row count and the version its pages belong to."""
    return {key: value for key, value in data.items() if key != "spans"} | {"total": len(data["spans"]), "version": version}


def _with_rows(meta: dict, rows: bytes) -> bytes:
    """A skeleton document from its metadata and its rows' JSON (without the brackets), joined as bytes: a page
    or the whole is served from the cache without parsing anything."""
    return _dumps(meta)[:-1] + b',"spans":[' + rows + b"]}"


def _rows_json(spans: list) -> bytes:
    return _dumps(spans)[1:-1]


def _skeleton_key(run: Run, version: int) -> str:
    return f"trace-skeleton:{run.pk}:{version}"


def skeleton_materialize(*, tenant, run: Run, version: int | None = None) -> dict:
    """A finished run's skeleton computed once, with its final rollups, and kept for as long as no span is
    added to the run: its metadata, its head (the first screenful) and its rows in pages of PAGE_ROWS
    (compressed), plus the search text. Spans are only ever added to a run, by the exporter, which counts
    them (traces.live): the count names the version, read in one Redis GET whatever the trace's size.
    Returns the skeleton."""
    version = spans_stored_count(run.pk) if version is None else version
    key = _skeleton_key(run, version)
    data = trace_skeleton(tenant=tenant, run=run)
    meta, spans = _meta(data, version), data["spans"]
    pages = max(1, -(-len(spans) // PAGE_ROWS))
    kept = {key + ":meta": _dumps(meta | {"pages": pages}), key + ":head": _head_json(meta, spans),
            key + ":search": zlib.compress(_search_corpus(tenant, run).encode(), 1)}
    for page in range(pages):
        kept[f"{key}:page:{page}"] = zlib.compress(_rows_json(spans[page * PAGE_ROWS:(page + 1) * PAGE_ROWS]), 1)
    cache.set_many(kept, SKELETON_CACHE_SECONDS)
    return data


def _head_json(meta: dict, spans: list) -> bytes:
    return _with_rows(meta | {"head": True}, _rows_json(spans[:HEAD_ROWS]))


def _search_corpus(tenant, run: Run) -> str:
    """What search within an ended trace reads: a line per span in start order, its id and its name and attributes
    as lower-case text (the attributes as PostgreSQL writes JSON as text), so a search is one cache read."""
    spans = Span.objects.for_tenant(tenant).filter(run=run).order_by("started_at", "id").values_list("id", "name", "attributes")
    return "\n".join(f"{pk}\t{name} {json.dumps(attributes, ensure_ascii=False)}".replace("\n", " ").lower()
                     for pk, name, attributes in spans)


class SkeletonRefused(ValueError):
    """A skeleton page that the trace does not have; the message says which pages it has."""


def _computed(data: dict, *, head: bool, page: int | None) -> bytes:
    """A skeleton computed for this read (a running run's, or an ended run's without the cache). A running
    run's comes in one page: pages computed at different moments would not fit together."""
    meta, spans = _meta(data, 0), data["spans"]
    if head:
        return _head_json(meta, spans)
    if page is None:
        return _with_rows(meta, _rows_json(spans))
    size = max(1, len(spans)) if data["running"] else PAGE_ROWS
    pages = max(1, -(-len(spans) // size))
    if not 0 <= page < pages:
        raise SkeletonRefused(f"This trace has pages 0 to {pages - 1}." if pages > 1 else "This trace has one page, page 0.")
    return _with_rows(meta | {"page": page, "offset": page * size, "pages": pages},
                      _rows_json(spans[page * size:(page + 1) * size]))


def trace_skeleton_json(*, tenant, run: Run, head: bool = False, page: int | None = None) -> bytes:
    """The skeleton as JSON: a running run's computed on every read (its rollups current), an ended run's
    materialized once (skeleton_materialize) and read from the cache. ``head``: only the first HEAD_ROWS rows,
    with ``total`` (what the page carries); ``page``: the rows from page × PAGE_ROWS on, at most PAGE_ROWS of
    them, with ``offset``, ``pages`` and ``version`` (a page of another version belongs to another skeleton);
    neither: the whole. Without Redis (the counter and the cache) it is computed on every read, like a running
    run's. Raises SkeletonRefused for a page the trace does not have."""
    if run.is_terminal:
        try:
            return _cached_skeleton(tenant, run, head=head, page=page)
        except RedisError:
            logger.warning("trace skeleton of run %s computed without the cache", run.pk, exc_info=True)
    return _computed(trace_skeleton(tenant=tenant, run=run), head=head, page=page)


def _cached_skeleton(tenant, run: Run, *, head: bool, page: int | None) -> bytes:
    version = spans_stored_count(run.pk)
    key = _skeleton_key(run, version)
    wanted = [key + ":head"] if head else [key + ":meta"]
    kept = cache.get_many(wanted)
    if not kept:
        data = skeleton_materialize(tenant=tenant, run=run, version=version)
        kept = cache.get_many(wanted)
        if not kept:  # the cache keeps nothing: computed for this read
            return _computed(data, head=head, page=page)
    if head:
        return kept[key + ":head"]
    meta = json.loads(kept[key + ":meta"])
    if page is not None and not 0 <= page < meta["pages"]:
        raise SkeletonRefused(f"This trace has pages 0 to {meta['pages'] - 1}.")
    numbers = [page] if page is not None else range(meta["pages"])
    pages = cache.get_many([f"{key}:page:{n}" for n in numbers])
    if len(pages) < len(numbers):  # a page evicted: computed for this read, and kept again
        return _computed(skeleton_materialize(tenant=tenant, run=run, version=version), head=False, page=page)
    rows = b",".join(part for part in (zlib.decompress(pages[f"{key}:page:{n}"]) for n in numbers) if part)
    if page is not None:
        meta |= {"page": page, "offset": page * PAGE_ROWS}
    return _with_rows(meta, rows)


SEARCH_LIMIT = 5000


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def trace_search(*, tenant, run: Run, query: str) -> list[int]:
    """Ids of the run's spans whose name or attributes (keys and values) contain ``query``, in start order:
    an ended run's from its materialized search text, a running run's in the database."""
    query = query.strip()[:200]
    if not query:
        return []
    corpus = None
    if run.is_terminal:
        try:
            version = spans_stored_count(run.pk)
            key = _skeleton_key(run, version)
            corpus = cache.get(key + ":search")
            if corpus is None:
                skeleton_materialize(tenant=tenant, run=run, version=version)
                corpus = cache.get(key + ":search")
        except RedisError:  # without the cache: the database, as for a running run
            logger.warning("trace search of run %s made without the cache", run.pk, exc_info=True)
            corpus = None
        if corpus is not None:
            needle, found = query.lower(), []
            for line in zlib.decompress(corpus).decode().split("\n"):
                if needle in line.partition("\t")[2]:
                    found.append(int(line.partition("\t")[0]))
                    if len(found) == SEARCH_LIMIT:
                        break
            return found
    pattern = _like(query)
    spans = Span.objects.for_tenant(tenant).filter(run=run).extra(
        where=["(traces_span.name ILIKE %s OR traces_span.attributes::text ILIKE %s)"], params=[pattern, pattern])
    return list(spans.order_by("started_at", "id").values_list("id", flat=True)[:SEARCH_LIMIT])


def span_get(*, tenant, run: Run, span_id: int) -> Span | None:
    return Span.objects.for_tenant(tenant).filter(run=run, pk=span_id).first()


def _step_of(span: Span, tenant) -> int | None:
    """The step a span belongs to: its own ``proctor.step``, or its parent's (a model or tool call)."""
    if "proctor.step" in span.attributes:
        return strict_int(str(span.attributes["proctor.step"]))
    parent = Span.objects.for_tenant(tenant).filter(run_id=span.run_id, span_id=span.parent_span_id).values_list(
        "attributes", flat=True).first()
    return strict_int(str(parent.get("proctor.step", ""))) if parent else None


def decision_for(*, tenant, run: Run, step: int | None) -> DecisionRecord | None:
    if step is None:
        return None
    return DecisionRecord.objects.for_tenant(tenant).filter(run=run, step=step).first()


def decision_list(*, tenant, run: Run) -> list[DecisionRecord]:
    return list(DecisionRecord.objects.for_tenant(tenant).filter(run=run).order_by("step"))


def _model_call(span: Span, tenant, step: int) -> ModelCall | None:
    """The ModelCall row of a model span: the attempts of its step in order, matched by the span's place
    among the step's model spans."""
    siblings = list(Span.objects.for_tenant(tenant).filter(run_id=span.run_id, parent_span_id=span.parent_span_id,
                                                           kind="model").order_by("started_at", "id").values_list("id", flat=True))
    attempt = siblings.index(span.pk) + 1 if span.pk in siblings else 1
    return ModelCall.objects.for_tenant(tenant).filter(run_id=span.run_id, step=step, attempt=attempt).first()


MESSAGES_SHOWN = 20


def span_detail(*, tenant, run: Run, span: Span) -> dict:
    """What the span's detail shows, read on demand: its attributes and, by kind, the messages in and
    out, the call's arguments and result, the price snapshot, the memories used, the approval and the
    step's decision record."""
    step = _step_of(span, tenant)
    detail: dict = {"id": span.pk, "span_id": span.span_id, "parent_span_id": span.parent_span_id, "kind": span.kind,
                    "name": span.name, "started_at": span.started_at.isoformat(), "ended_at": span.ended_at.isoformat(),
                    "duration_ms": round((span.ended_at - span.started_at).total_seconds() * 1000, 3),
                    "status": span.status, "tokens": span.tokens, "cost_usd": str(span.cost_usd), "step": step,
                    "attributes": span.attributes}
    attributes = span.attributes
    if span.kind == "model" and step is not None:
        if call := _model_call(span, tenant, step):
            detail["model_call"] = {"provider": call.provider, "model": call.model, "attempt": call.attempt,
                                    "status": call.status, "error": call.error, "input_tokens": call.input_tokens,
                                    "output_tokens": call.output_tokens, "cached_tokens": call.cached_tokens,
                                    "cost_usd": str(call.cost_usd), "price": call.price}
        messages = ConversationMessage.objects.filter(run=run, step__lte=step).order_by("-seq")
        recent = list(messages.values_list("step", "message")[:MESSAGES_SHOWN])[::-1]
        detail["messages_in"] = [message for at, message in recent if at < step]
        detail["messages_out"] = [message for at, message in recent if at == step and message.get("role") == "assistant"]
    if span.kind == "tool" and (call_id := attributes.get("gen_ai.tool.call.id")):
        if invocation := ToolInvocation.objects.for_tenant(tenant).filter(run=run, call_id=call_id).order_by("-id").first():
            detail["tool_call"] = {"tool": invocation.tool, "status": invocation.status, "arguments": invocation.arguments,
                                   "result": invocation.result, "duration_ms": invocation.duration_ms}
    if span.kind == "approval":
        detail["approval"] = {key.removeprefix("proctor.approval."): value for key, value in attributes.items()
                              if key.startswith("proctor.approval.")}
    if span.kind in ("memory_search", "memory_write"):
        detail["memories"] = list(attributes.get("proctor.memory.ids", []))
    if span.kind in ("step", "model") and step is not None:
        used = RunEvent.objects.filter(run=run, type="context.used", payload__step=step).values_list("payload", flat=True).first()
        detail["memories"] = [reference.get("id") for block in (used or {}).get("blocks", [])
                              if block.get("source") == "memory" for reference in block.get("references", [])]
    if span.kind in ("step", "model", "tool") and (decision := decision_for(tenant=tenant, run=run, step=step)):
        detail["decision"] = decision_out(decision)
    return detail


def decision_out(decision: DecisionRecord) -> dict:
    return {"step": decision.step, "type": decision.type, "tool": decision.tool, "summary": decision.summary,
            "inputs": decision.inputs, "policy_checks": decision.policy_checks, "at": decision.at.isoformat()}


# The traces list: one trace per run.
TRACES_PAGE = 50
SORTS = {"newest": ("-number",), "oldest": ("number",), "cost": ("-cost_usd", "-number"),
         "duration": ("-duration", "-number")}


def trace_filters(params) -> dict:
    """The traces list's filters from a query string (page and API): agent, status, requester, has error,
    min duration (seconds), min cost (USD), time range (ISO dates or times), sort, and q (a run number or
    a trace id)."""
    return {"agent": params.get("agent", "")[:60], "status": params.get("status", "")[:24],
            "requester": params.get("requester", "")[:150], "has_error": params.get("has_error", "") in ("1", "true", "on"),
            "min_duration": params.get("min_duration", "")[:12], "min_cost": params.get("min_cost", "")[:16],
            "since": params.get("since", "")[:40], "until": params.get("until", "")[:40],
            "sort": params.get("sort", "newest") if params.get("sort", "newest") in SORTS else "newest",
            "q": params.get("q", "").strip().lstrip("#")[:40]}


class FilterRefused(ValueError):
    """A filter's value cannot be read; the message says which and how to write it."""


def _moment(text: str, name: str) -> datetime | None:
    if not text:
        return None
    try:
        moment = parse_datetime(text) or parse_datetime(text + "T00:00:00")
    except ValueError:  # well formed, but no such date (2026-13-45)
        moment = None
    if moment is None:
        raise FilterRefused(f"{name} must be a date or time like 2026-11-28 or 2026-11-28T12:00")
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


def _number(text: str, name: str) -> Decimal | None:
    if not text:
        return None
    value = strict_number(text)
    if value is None or not 0 <= value <= 1e9:
        raise FilterRefused(f"{name} must be a number from 0 to 1,000,000,000, like 2.5")
    return Decimal(text)


def _traces(tenant, filters: dict) -> QuerySet[Run]:
    runs = (Run.objects.for_tenant(tenant).exclude(trace_id="").select_related("agent", "requested_by")
            .annotate(duration=F("finished_at") - F("created_at"),
                      has_error=Exists(Span.objects.filter(run=OuterRef("pk"), status="error"))))
    if filters["agent"]:
        runs = runs.filter(agent__slug=filters["agent"])
    if filters["status"]:
        runs = runs.filter(status=filters["status"])
    if filters["requester"]:
        runs = runs.filter(requested_by__username=filters["requester"])
    if filters["has_error"]:
        runs = runs.filter(has_error=True)
    if (seconds := _number(filters["min_duration"], "Min duration")) is not None:
        runs = runs.filter(duration__gte=timedelta(seconds=float(seconds)))
    if (cost := _number(filters["min_cost"], "Min cost")) is not None:
        runs = runs.filter(cost_usd__gte=cost)
    if since := _moment(filters["since"], "From"):
        runs = runs.filter(created_at__gte=since)
    if until := _moment(filters["until"], "To"):
        runs = runs.filter(created_at__lte=until)
    if query := filters["q"]:
        runs = runs.filter(Q(number=int(query)) if query.isascii() and query.isdigit() else Q(trace_id=query.lower()))
    return runs


def _cursor_filter(runs: QuerySet[Run], sort: str, cursor: str) -> QuerySet[Run]:
    """Keyset: the rows after the last one shown, by (sort value, number); the cursor is "value:number"."""
    value, _, number = cursor.rpartition(":")
    number = strict_int(number)
    if number is None:
        raise FilterRefused("The page cursor is not one this list gave out; start from the first page.")
    if sort == "newest":
        return runs.filter(number__lt=number)
    if sort == "oldest":
        return runs.filter(number__gt=number)
    try:
        if sort == "cost":
            amount = Decimal(value)
            return runs.filter(Q(cost_usd__lt=amount) | Q(cost_usd=amount, number__lt=number))
        micros = strict_int(value)
        if micros is None:
            raise ValueError
        if micros < 0:  # a run not finished (no duration) sorts last
            return runs.filter(duration__isnull=True, number__lt=number)
        duration = timedelta(microseconds=micros)
        return runs.filter(Q(duration__lt=duration) | Q(duration__isnull=True) | Q(duration=duration, number__lt=number))
    except (InvalidOperation, ValueError):
        raise FilterRefused("The page cursor is not one this list gave out; start from the first page.") from None


def _cursor_of(run: Run, sort: str) -> str:
    if sort == "cost":
        return f"{run.cost_usd}:{run.number}"
    if sort == "duration":
        return f"{_us(run.duration) if run.duration is not None else -1}:{run.number}"
    return f":{run.number}"


def trace_page(*, tenant, filters: dict, after: str = "") -> tuple[list[Run], str]:
    """A page of the traces list in the chosen order, keyset-paged (as fast on page 1,000 as on page 1).
    Returns the runs (each with ``duration`` and ``has_error``) and the next page's cursor ("" at the end).
    Raises FilterRefused for a value it cannot read."""
    sort = filters["sort"]
    runs = _traces(tenant, filters)
    if after:
        runs = _cursor_filter(runs, sort, after)
    order = [F("duration").desc(nulls_last=True), "-number"] if sort == "duration" else SORTS[sort]
    rows = list(runs.order_by(*order)[:TRACES_PAGE + 1])
    return rows[:TRACES_PAGE], _cursor_of(rows[TRACES_PAGE - 1], sort) if len(rows) > TRACES_PAGE else ""
