"""The step's reads and writes of a run in hand-written SQL: the hot path, a few statements a step.

The ORM spends longer building a statement than Postgres spends running it, and a step used to
take twenty of them. Here a step takes:

- ``run_claim``: one conditional UPDATE that claims the lease and returns the run with its agent,
  tenant and latest checkpoint state;
- ``run_lock``: at the start of each of the step's transactions, the run row *with our fence*,
  ``FOR NO KEY UPDATE``, so a worker whose lease was taken over cannot commit (``run_lock_in_tenant``
  for changes made by people: cancel, pause, instructions, decisions); sent with the transaction's
  BEGIN in one round trip;
- ``run_write``: at its end, one statement that writes the run row's changed columns together with
  everything the transaction added on it: its ``RunWrites`` (events, conversation messages, the
  checkpoint, model-call, tool-invocation and any hook's rows); a step's transaction sends it with
  its COMMIT in one round trip (``run_write_and_commit``).
- ``run_unlocked``: within a turn, the transaction that applies a model's reply skips ``run_lock``. It works
  on the row as the turn's previous transaction committed it, and its ``run_write`` writes only if the row is
  still that version (with our fence, and the tenant's configuration unchanged): otherwise the statement
  raises ``RunChanged``, the transaction keeps nothing, and the step applies the reply again under the lock
  (agents/services/step.py). A step's usual transaction is then one round trip: BEGIN, the write, COMMIT.

Who may write a run row: only a transaction that holds its row lock (``run_lock`` by fence for the
lease holder, ``run_lock_in_tenant`` for people and approvals), or the lease holder's unlocked write
checked by ``version``, and only through ``run_write``, which writes the columns that changed since
the row was read and raises ``version``. A column changed by anyone else (an ORM ``update`` in the
same transaction, or after the lock is released) is never overwritten with a stale value.
The exception is a person's instruction (``run_instruction_add``): one UPDATE that takes the row lock
itself and changes only the inbox, ``event_seq``, ``version`` and ``updated_at``, each from the row as
committed.

Rows are built as model instances, so defaults, ``auto_now`` and JSON adaptation are Django's own.
Every statement here goes through ``console.db.prepared_cursor``: prepared once per connection, so
Postgres does not parse and plan it again on every step.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import NamedTuple

from django.db import DatabaseError, connection, transaction
from psycopg import Pipeline

from agents.models import RUNNABLE, Agent, Checkpoint, ConversationMessage, PlanStep, Run, RunEvent
from console.db import db_value, prepared_cursor, row_instance, select_list
from console.models import Tenant


def _columns(model) -> list:
    return list(model._meta.concrete_fields)


RUN_COUNT, AGENT_COUNT, TENANT_COUNT = len(_columns(Run)), len(_columns(Agent)), len(_columns(Tenant))

# The claim's messages are json_agg of the stored json text (copied as written, key order kept; jsonb would sort the
# keys and the model would see other bytes after a claim). A conversation over this size as stored (compressed) is
# read row by row instead, far below the 1 GB a value may hold.
CLAIM_MESSAGES_MAX_BYTES = 16 * 1024 * 1024
CLAIM = f"""
    UPDATE agents_run r SET lease_owner = %s, lease_expires_at = now() + make_interval(secs => %s), fence = r.fence + 1
      FROM agents_agent a, console_tenant t
     WHERE r.id = %s AND a.id = r.agent_id AND t.id = r.tenant_id AND r.status = ANY(%s)
       AND (r.lease_expires_at IS NULL OR r.lease_expires_at < now())
 RETURNING {select_list("r", Run)}, {select_list("a", Agent)}, {select_list("t", Tenant)},
           (SELECT c.state FROM agents_checkpoint c WHERE c.run_id = r.id ORDER BY c.step DESC LIMIT 1),
           CASE WHEN (SELECT coalesce(sum(pg_column_size(m.message)), 0) FROM agents_conversationmessage m
                       WHERE m.run_id = r.id) < %s
                THEN (SELECT coalesce(json_agg(m.message ORDER BY m.seq), '[]') FROM agents_conversationmessage m
                       WHERE m.run_id = r.id) END
"""

LOCK = (f'SELECT {select_list("r", Run)}, t.config_version FROM agents_run r JOIN console_tenant t ON t.id = r.tenant_id'
        ' WHERE r.id = %s AND r.fence = %s FOR NO KEY UPDATE OF r')


def run_claim(*, run_id: int, worker: str, lease_seconds: float) -> tuple[Run, dict, list[dict]] | None:
    """Claim a runnable run if nobody holds a live lease: the run (its agent and tenant attached), its
    latest state and its conversation (as ``conversation_load`` reads it; in the same statement unless it is
    over CLAIM_MESSAGES_MAX_BYTES), or None. By id alone: the step
    task carries only the run id; the tenant comes with the row. Only the lease holder writes checkpoints
    and messages, so what the claim read stays ours to use."""
    with prepared_cursor() as cursor:
        cursor.execute(CLAIM, [worker, lease_seconds, run_id, list(RUNNABLE), CLAIM_MESSAGES_MAX_BYTES])
        row = cursor.fetchone()
    if row is None:
        return None
    run = row_instance(Run, row[:RUN_COUNT])
    run.agent = row_instance(Agent, row[RUN_COUNT:RUN_COUNT + AGENT_COUNT])
    run.tenant = row_instance(Tenant, row[RUN_COUNT + AGENT_COUNT:RUN_COUNT + AGENT_COUNT + TENANT_COUNT])
    state = db_value(Checkpoint._meta.get_field("state"), row[-2])
    messages = db_value(ConversationMessage._meta.get_field("message"), row[-1]) if row[-1] is not None \
        else conversation_load(run_id=run_id)
    return run, state if isinstance(state, dict) else {}, messages


LOCK_IN_TENANT = (f'SELECT {select_list("r", Run)} FROM agents_run r WHERE r.id = %s AND r.tenant_id = %s'
                  ' FOR NO KEY UPDATE')


def run_lock(*, run_id: int, fence: int) -> tuple[Run, int] | None:
    """In the caller's transaction: the run row if we still hold the lease (its fence), locked, with its
    tenant's configuration version (``Tenant.config_version``, read in the same statement); else None.
    As the transaction's first statement it goes with its BEGIN in one round trip (see _with_begin)."""
    with prepared_cursor() as cursor:
        with _with_begin():
            cursor.execute(LOCK, [run_id, fence])
        row = cursor.fetchone()
    return (_locked(row[:-1]), row[-1]) if row else None


@contextmanager
def _with_begin():
    """A statement that opens the caller's transaction sent with its BEGIN in one round trip, not two: psycopg
    sends BEGIN on its own and waits for it, but in pipeline mode it queues it, and the block's end sends both
    with one Sync (the statement's rows are read after it). Outside a transaction, or where libpq has no
    pipeline mode, the statement goes as usual."""
    if not connection.in_atomic_block or not Pipeline.is_supported():
        yield
        return
    with connection.wrap_database_errors, connection.connection.pipeline():
        yield


def run_lock_in_tenant(*, run_id: int, tenant_id: int) -> Run | None:
    """In the caller's transaction: the tenant's run, locked (for changes made by people), or None."""
    with prepared_cursor() as cursor:
        cursor.execute(LOCK_IN_TENANT, [run_id, tenant_id])
        row = cursor.fetchone()
    return _locked(row)


def run_created(run: Run) -> Run:
    """A run inserted in the caller's transaction (nobody else can see it before commit) gets its
    write set, as a locked one does."""
    run.writes = RunWrites(run)
    return run


def _locked(row) -> Run | None:
    if row is None:
        return None
    run = row_instance(Run, row)
    run.writes = RunWrites(run)
    return run


USER = Run._meta.get_field("requested_by").related_model
USER_COUNT = len(_columns(USER))
_SHOWN = (f'SELECT {select_list("r", Run)}, {select_list("a", Agent)}, {select_list("t", Tenant)}, '
          f'{select_list("u", USER)}, {select_list("c", USER)} FROM agents_run r '
          f'JOIN agents_agent a ON a.id = r.agent_id JOIN console_tenant t ON t.id = r.tenant_id '
          f'LEFT JOIN {USER._meta.db_table} u ON u.id = r.requested_by_id '
          f'LEFT JOIN {USER._meta.db_table} c ON c.id = r.control_by_id WHERE r.tenant_id = %s AND ')
SHOWN_BY_ID, SHOWN_BY_NUMBER = _SHOWN + "r.id = %s", _SHOWN + "r.number = %s"


def run_shown(*, tenant_id: int, run_id: int | None = None, number: int | None = None) -> Run | None:
    """The tenant's run as pages and sockets show it (its agent, tenant, requester and who last controlled
    it attached), by id or number, in one statement the ORM need not build: a run socket reads it for every
    frame it renders. None outside the tenant."""
    with prepared_cursor() as cursor:
        cursor.execute(SHOWN_BY_ID if run_id is not None else SHOWN_BY_NUMBER,
                       [tenant_id, run_id if run_id is not None else number])
        row = cursor.fetchone()
    if row is None:
        return None
    ends = [RUN_COUNT, RUN_COUNT + AGENT_COUNT, RUN_COUNT + AGENT_COUNT + TENANT_COUNT]
    ends += [ends[-1] + USER_COUNT, ends[-1] + 2 * USER_COUNT]
    run = row_instance(Run, row[:ends[0]])
    run.agent = row_instance(Agent, row[ends[0]:ends[1]])
    run.tenant = row_instance(Tenant, row[ends[1]:ends[2]])
    run.requested_by = row_instance(USER, row[ends[2]:ends[3]]) if run.requested_by_id is not None else None
    run.control_by = row_instance(USER, row[ends[3]:ends[4]]) if run.control_by_id is not None else None
    return run


@cache
def _requests_shown() -> tuple[type, type, str]:
    """The run card's requests (approvals' model, reached through the reverse relation it adds to Run: the
    runtime imports no approvals code), who decided each, who is asked to, and the status of the call that ran."""
    requests = Run._meta.get_field("approval_requests").related_model
    invocation = requests._meta.get_field("tool_invocation").related_model
    sql = (f'SELECT {select_list("a", requests)}, {select_list("d", USER)}, {select_list("s", USER)}, i."status" '
           f'FROM {requests._meta.db_table} a LEFT JOIN {USER._meta.db_table} d ON d.id = a.decided_by_id '
           f'LEFT JOIN {USER._meta.db_table} s ON s.id = a.assignee_id '
           f'LEFT JOIN {invocation._meta.db_table} i ON i.id = a.tool_invocation_id '
           'WHERE a.tenant_id = %s AND a.run_id = %s ORDER BY a.id')
    return requests, invocation, sql


def run_requests_attach(run: Run) -> Run:
    """The run's approval requests, as the run card shows them, attached as a prefetch of
    ``run.approval_requests`` (oldest first; each with its decider, assignee and the call that ran, its
    status only), read in one prepared statement in the run's tenant: the ORM's prefetch with its joins
    cost four times as long, on every frame a run socket renders."""
    requests, invocation, sql = _requests_shown()
    with prepared_cursor() as cursor:
        cursor.execute(sql, [run.tenant_id, run.pk])
        rows = cursor.fetchall()
    count = len(_columns(requests))
    shown = []
    for row in rows:
        request = row_instance(requests, row[:count])
        users = row[count:count + USER_COUNT], row[count + USER_COUNT:count + 2 * USER_COUNT]
        request.decided_by = row_instance(USER, users[0]) if request.decided_by_id is not None else None
        request.assignee = row_instance(USER, users[1]) if request.assignee_id is not None else None
        request.tool_invocation = (invocation.from_db(connection.alias, ["id", "status"], [request.tool_invocation_id,
                                                                                          row[-1]])
                                   if request.tool_invocation_id is not None else None)
        request.run = run
        shown.append(request)
    attached = run.approval_requests.get_queryset()  # as a prefetch leaves it: .all() gives these rows
    attached._result_cache, attached._prefetch_done = shown, True
    run._prefetched_objects_cache = {**getattr(run, "_prefetched_objects_cache", {}), "approval_requests": attached}
    return run


EVENTS = f'SELECT {select_list("e", RunEvent)} FROM agents_runevent e WHERE e.run_id = %s AND e.seq > %s AND e.seq <= %s' \
         ' ORDER BY e.seq LIMIT %s'


def events_between(*, run_id: int, after: int, upto: int, limit: int | None = None) -> list[RunEvent]:
    """The run's events ``after`` < seq ≤ ``upto``, oldest first (at most ``limit``): a prepared statement, read
    for every frame a run socket renders."""
    with prepared_cursor() as cursor:
        cursor.execute(EVENTS, [run_id, after, upto, limit])
        return [row_instance(RunEvent, row) for row in cursor.fetchall()]


PLAN = f'SELECT {select_list("p", PlanStep)} FROM agents_planstep p WHERE p.run_id = %s ORDER BY p.position'


def plan_steps(*, run_id: int) -> list[PlanStep]:
    """The run's plan, in order (prepared: a planning agent's run card reads it for every frame)."""
    with prepared_cursor() as cursor:
        cursor.execute(PLAN, [run_id])
        return [row_instance(PlanStep, row) for row in cursor.fetchall()]


MESSAGES = "SELECT message FROM agents_conversationmessage WHERE run_id = %s ORDER BY seq"


def conversation_load(*, run_id: int) -> list[dict]:
    """The run's conversation: once per turn, not per step. Every message was written in the transaction
    of the step that said it, by the lease holder (the run locked, or its write checked by ``version``), so
    what is committed is what the run has said."""
    with prepared_cursor() as cursor:
        cursor.execute(MESSAGES, [run_id])
        rows = cursor.fetchall()
    field = ConversationMessage._meta.get_field("message")
    return [db_value(field, value) for (value,) in rows]


# --- Writing ---------------------------------------------------------------------------------------

RUN_FIELDS = [field for field in _columns(Run) if not field.primary_key]
_JSON_FIELDS = {field.attname for field in RUN_FIELDS if field.get_internal_type() == "JSONField"}


class RunWrites:
    """What one transaction on a run writes, in one statement at its end (``run_write``):
    the run row's changed columns, its events (dense ``seq``), conversation messages, checkpoint
    (the last one set wins, upserted by step) and any other rows (model calls, tool invocations,
    hook rows such as cost ledger entries). Made when the row is locked, or read unlocked by the lease
    holder (``run_unlocked``, with its guard); a run read any other way has none, so it cannot be written
    by mistake."""

    def __init__(self, run: Run, guard: Guard | None = None):
        self.run = run
        self.guard = guard  # an unlocked write's: what the row must still be
        self.events: list[RunEvent] = []
        self.messages: list[ConversationMessage] = []
        self.rows: list = []
        self.checkpoint: Checkpoint | None = None
        self.hook_items: dict[str, tuple[Callable[[list], tuple[list[str], list]], list]] = {}
        self._publish_registered = False
        self._as_locked = self._columns_now()
        # For the publish after commit: the transaction's first event and what it changed (live.publish_run).
        self._first_seq = 0
        self._changed_names: set[str] = set()
        self._event_types: set[str] = set()
        self._written_events: list[RunEvent] = []

    def _columns_now(self) -> dict:
        values = {field.attname: getattr(self.run, field.attname) for field in RUN_FIELDS}
        for name in _JSON_FIELDS:  # lists and dicts are changed in place too
            values[name] = copy.deepcopy(values[name])
        return values

    def event(self, type: str, payload: dict) -> RunEvent:
        self.run.event_seq += 1
        event = RunEvent(run=self.run, seq=self.run.event_seq, type=type, payload=payload)
        self.events.append(event)
        self._first_seq = self._first_seq or event.seq
        self._event_types.add(type)
        if not self._publish_registered:  # one publish per run and transaction, announcing its last seq
            self._publish_registered = True
            transaction.on_commit(self._publish)
        return event

    def _publish(self) -> None:
        from agents.live import publish_run

        publish_run(self.run.pk, seq=self.run.event_seq, tenant_id=self.run.tenant_id, first=self._first_seq,
                    columns=frozenset(self._changed_names), event_types=frozenset(self._event_types),
                    events=self._written_events)

    def message(self, message: ConversationMessage) -> None:
        self.messages.append(message)

    def add(self, row) -> None:
        """A row (no id needed afterwards) written with the run."""
        self.rows.append(row)

    def hook_items_for(self, key: str, statement: Callable[[list], tuple[list[str], list]]) -> list:
        """A hook's own items written in the run's statement: the list to append them to. At write time
        ``statement(items)`` gives data-modifying CTEs (``"name AS (INSERT ...)"``, names unique to the hook;
        a later one may read an earlier one's RETURNING) and their parameters, in order."""
        return self.hook_items.setdefault(key, (statement, []))[1]

    def changed_columns(self) -> list:
        now = self._columns_now()
        return [field for field in RUN_FIELDS if now[field.attname] != self._as_locked[field.attname]]

    def pending_rows(self) -> list:
        rows = [*self.events, *self.messages, *self.rows]
        if self.checkpoint is not None:
            rows.append(self.checkpoint)
        return rows

    def written(self, changed: list) -> None:
        """``changed``: the run columns the statement wrote (kept, with the events, for the publish)."""
        self._changed_names.update(field.attname for field in changed)
        self._written_events.extend(self.events)
        self.events, self.messages, self.rows, self.checkpoint, self.hook_items = [], [], [], None, {}
        self._as_locked = self._columns_now()


class Guard(NamedTuple):
    """What an unlocked write's row must still be: as the turn last committed it, still ours, under the same
    configuration of its tenant."""

    fence: int
    version: int
    config_version: int


class RunChanged(Exception):
    """An unlocked write found the run row changed since its turn last committed it (or the lease or the
    tenant's configuration changed): nothing of its transaction was kept."""


def run_unlocked(run: Run) -> Run:
    """The run as the turn's previous transaction left it, to be written in the caller's transaction without
    its lock: ``run_write`` then writes only if the row is still that version (see the module's docstring)."""
    run.writes = RunWrites(run, guard=Guard(run.fence, run.version, run.tenant.config_version))
    return run


def row_add(run: Run, row) -> None:
    """A ModelCall or ToolInvocation (no id needed afterwards) written with the run's next ``run_write``."""
    run.writes.add(row)


def checkpoint_set(run: Run, checkpoint: Checkpoint) -> None:
    """The transaction's checkpoint (the last one set wins), upserted by step with the run's next ``run_write``."""
    run.writes.checkpoint = checkpoint


def _insert(rows: list, suffix: str = "") -> tuple[str, str]:
    """An INSERT of rows of one model with ONE parameter: the rows as a JSON array, spread into the
    table's columns by ``json_populate_recordset``. The statement's text is the same whatever the
    number of rows, so the driver parses it once per process, and the values are encoded in one
    ``json.dumps`` instead of a parameter (and a JSON dump) per value."""
    model = type(rows[0])
    fields = _insertable(model)
    data = [{field.column: field.pre_save(row, True) for field in fields} for row in rows]
    return _insert_sql(model, suffix), json.dumps(data, default=_json_value, separators=(",", ":"))


@cache
def _insertable(model) -> list:
    return [field for field in _columns(model) if not field.primary_key]


@cache
def _insert_sql(model, suffix: str) -> str:
    columns = ", ".join(f'"{field.column}"' for field in _insertable(model))
    table = model._meta.db_table
    return f"INSERT INTO {table} ({columns}) SELECT {columns} FROM json_populate_recordset(NULL::{table}, %s){suffix}"


def insert_cte(name: str, rows: list, returning: str = "") -> tuple[str, str]:
    """For a hook's own statement in ``run_write`` (``RunWrites.hook_items_for``): ``name AS (INSERT ...)`` of
    rows of one model, and its one parameter (the rows as JSON); ``returning``: what a later CTE reads of them."""
    sql, values = _insert(rows, f" RETURNING {returning}" if returning else "")
    return f"{name} AS ({sql})", values


def events_json(events: list[RunEvent]) -> str:
    """Written events as the JSON a live socket renders them from (``agents.live.events_from_json``): what a
    read of their rows would give, without the read."""
    return json.dumps([{"seq": e.seq, "type": e.type, "payload": e.payload, "at": e.at} for e in events],
                      default=_json_value, separators=(",", ":"))


def _json_value(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} in a row")


CHECKPOINT_UPSERT = " ON CONFLICT (run_id, step) DO UPDATE SET state = EXCLUDED.state, at = EXCLUDED.at"
UPDATED_AT, VERSION = Run._meta.get_field("updated_at"), Run._meta.get_field("version")
# An unlocked write's UPDATE: only the row as its turn last committed it, still ours, its tenant's configuration
# unchanged; when it matched none, the statement fails (agents/migrations/0014_run_version.py), and with it the
# rows the statement inserted.
GUARD = (" AND fence = %s AND version = %s"
         " AND (SELECT config_version FROM console_tenant WHERE id = %s) = %s RETURNING id")
UNLESS_WRITTEN = "SELECT proctor_run_changed(%s) WHERE NOT EXISTS (SELECT FROM u)"


def run_write_and_commit(run: Run) -> None:
    """The last statement of the caller's atomic block: ``run_write``, with the transaction's COMMIT sent
    in the same round trip (queued in pipeline mode, one Sync for both), when that block is a whole
    transaction. The block's own commit then finds nothing left to do and runs the on-commit hooks as
    usual; a failed COMMIT raises here, inside the block, which rolls back as for any error. Inside an
    outer transaction (the block is a savepoint, or an atomic block without one), one marked for rollback,
    or where libpq has no pipeline mode, it is just ``run_write`` and the block commits as usual."""
    with _changed_is_raised(run):
        if connection.savepoint_ids or connection.needs_rollback or not connection.in_atomic_block \
                or not Pipeline.is_supported():  # savepoint_ids: one entry (None without a savepoint) per inner block
            run_write(run)
            return
        with connection.wrap_database_errors, connection.connection.pipeline():
            run_write(run)
            connection.connection.commit()


# What an unlocked write that found the row changed fails with: its guard's error; the events' unique (run, seq),
# should an instruction ever take the next event number first; or a deadlock or serialization failure (its early
# rows, e.g. a budget alert, locked before the run's row, which a classifier's charge may hold and wait on): the
# whole transaction was rolled back each time, so it is applied again, locked.
_CHANGED_STATES = {"PRCHG", "23505", "40P01", "40001"}


@contextmanager
def _changed_is_raised(run: Run):
    """An unlocked run's write that failed because the row changed (in pipeline mode the failure shows at the
    COMMIT) raises RunChanged."""
    try:
        yield
    except DatabaseError as error:
        if run.writes.guard is None or getattr(error.__cause__, "sqlstate", None) not in _CHANGED_STATES:
            raise
        raise RunChanged(run.pk) from error


def run_write(run: Run) -> None:
    """One statement: the run row's changed columns (and ``updated_at``, ``version``), and the events,
    messages, rows and checkpoint the transaction added on it. Nothing changed and nothing added: no
    statement, unless the run was read unlocked (its guard is then checked all the same): that statement
    fails when the row is not the version it read (``run_write_and_commit`` raises it as ``RunChanged``)."""
    writes = run.writes
    changed = [field for field in writes.changed_columns() if field not in (UPDATED_AT, VERSION)]
    rows = writes.pending_rows()
    hook_items = [(statement, items) for statement, items in writes.hook_items.values() if items]
    if not changed and not rows and not hook_items and writes.guard is None:
        return
    run.version += 1
    changed.append(VERSION)
    by_model: dict[type, list] = {}
    for row in rows:
        by_model.setdefault(type(row), []).append(row)
    parts, params = [], []
    for number, (model, model_rows) in enumerate(by_model.items()):
        sql, values = _insert(model_rows, CHECKPOINT_UPSERT if model is Checkpoint else "")
        parts.append(f"w{number} AS ({sql})")
        params.append(values)
    for statement, items in hook_items:
        ctes, values = statement(items)
        parts.extend(ctes)
        params.extend(values)
    columns = [*changed, UPDATED_AT]
    params.extend(field.get_db_prep_save(field.pre_save(run, False), connection) for field in columns)
    update = "UPDATE agents_run SET " + ", ".join(f'"{field.column}" = %s' for field in columns) + " WHERE id = %s"
    if writes.guard is None:
        params.append(run.pk)
        sql = (f"WITH {', '.join(parts)} " if parts else "") + update
    else:
        guard = writes.guard
        params.extend([run.pk, guard.fence, guard.version, run.tenant_id, guard.config_version, run.pk])
        sql = f"WITH {''.join(part + ', ' for part in parts)}u AS ({update}{GUARD}) {UNLESS_WRITTEN}"
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
    # In pipeline mode (run_write_and_commit) a failure shows at the COMMIT, after this: the run and its write set
    # are then dropped by the caller (an atomic block rolled back; an unlocked step applies its reply again).
    writes.written(changed)


# --- A person's instruction: one statement, no lock held by Python ------------------------------------------

INSTRUCTION_ADD = f"""
    WITH r AS (
        UPDATE agents_run SET inbox = inbox || jsonb_build_array(%s::jsonb), event_seq = event_seq + 1,
                              version = version + 1, updated_at = %s
         WHERE id = %s AND tenant_id = %s AND NOT (status = ANY(%s))
     RETURNING {select_list("agents_run", Run)}
    ), e AS (
        INSERT INTO agents_runevent (run_id, seq, type, payload, at) SELECT r.id, r.event_seq, %s, %s::jsonb, %s FROM r
    )
    SELECT * FROM r
"""
INSTRUCTION_COLUMNS = frozenset({"inbox", "event_seq", "version"})  # what the statement changes, as run_write would name them


def run_instruction_add(*, run_id: int, tenant_id: int, item: dict, event_type: str, at: datetime,
                        terminal: frozenset[str]) -> Run | None:
    """Append ``item`` to the run's inbox with its event (the run's next ``seq``) in ONE statement: in autocommit it
    is the whole transaction, a round trip and no Python between the row's lock and the commit (inside a caller's
    transaction it just runs there). The UPDATE takes the row lock itself: behind a step holding it, it waits and
    then applies to the step's committed row (READ COMMITTED re-checks the WHERE and reads ``inbox`` and
    ``event_seq`` as committed), so an instruction the step did not see stays in the inbox and the seq stays dense.
    The run as written, or None when no row matched: not in the tenant, or in a ``terminal`` status (the caller
    tells which). After commit the run is published as ``RunWrites._publish`` publishes a run_write's change."""
    payload = json.dumps(item, default=_json_value)
    with prepared_cursor() as cursor:
        cursor.execute(INSTRUCTION_ADD, [payload, at, run_id, tenant_id, list(terminal), event_type, payload, at])
        row = cursor.fetchone()
    if row is None:
        return None
    run = row_instance(Run, row)
    event = RunEvent(run=run, seq=run.event_seq, type=event_type, payload=item, at=at)
    transaction.on_commit(lambda: _instruction_published(run, event))
    return run


def _instruction_published(run: Run, event: RunEvent) -> None:
    from agents.live import publish_run

    publish_run(run.pk, seq=event.seq, tenant_id=run.tenant_id, first=event.seq, columns=INSTRUCTION_COLUMNS,
                event_types=frozenset({event.type}), events=[event])
