"""The step's reads and writes of a run in hand-written SQL: the hot path, a few statements a step.

The ORM spends longer building a statement than Postgres spends running it, and a step used to
take twenty of them. Here a step takes:

- ``run_claim``: one conditional UPDATE that claims the lease and returns the run with its agent,
  tenant and latest checkpoint state;
- ``run_lock``: at the start of each of the step's transactions, the run row *with our fence*,
  ``FOR NO KEY UPDATE``, so a worker whose lease was taken over cannot commit (``run_lock_in_tenant``
  for changes made by people: cancel, pause, instructions, decisions);
- ``run_write``: at its end, one statement that writes the run row together with everything the
  transaction added on it: its events (``agents.events.emit``), its checkpoint and its model-call
  and tool-invocation rows (``row_add``).

Rows are built as model instances, so defaults, ``auto_now`` and JSON adaptation are Django's own.
"""

from __future__ import annotations

from django.db import connection

from agents.models import RUNNABLE, Agent, Checkpoint, Run
from console.models import Tenant


def _columns(model) -> list:
    return list(model._meta.concrete_fields)


def _select_list(alias: str, model) -> str:
    return ", ".join(f'{alias}."{field.column}"' for field in _columns(model))


def _instance(model, values) -> object:
    """The model instance for a row of its columns, converted as the ORM converts them (JSON, say)."""
    fields = _columns(model)
    values = [_converted(field, value) for field, value in zip(fields, values)]
    return model.from_db(connection.alias, [field.attname for field in fields], values)


def _converted(field, value):
    for converter in field.get_db_converters(connection):
        value = converter(value, field, connection)
    return value


RUN_COUNT, AGENT_COUNT, TENANT_COUNT = len(_columns(Run)), len(_columns(Agent)), len(_columns(Tenant))

CLAIM = f"""
    UPDATE agents_run r SET lease_owner = %s, lease_expires_at = now() + make_interval(secs => %s), fence = r.fence + 1
      FROM agents_agent a, console_tenant t
     WHERE r.id = %s AND a.id = r.agent_id AND t.id = r.tenant_id AND r.status = ANY(%s)
       AND (r.lease_expires_at IS NULL OR r.lease_expires_at < now())
 RETURNING {_select_list("r", Run)}, {_select_list("a", Agent)}, {_select_list("t", Tenant)},
           (SELECT c.state FROM agents_checkpoint c WHERE c.run_id = r.id ORDER BY c.step DESC LIMIT 1)
"""

LOCK = f'SELECT {_select_list("r", Run)} FROM agents_run r WHERE r.id = %s AND r.fence = %s FOR NO KEY UPDATE'


def run_claim(*, run_id: int, worker: str, lease_seconds: float) -> tuple[Run, dict] | None:
    """Claim a runnable run if nobody holds a live lease: the run (its agent and tenant attached) and
    its latest state, or None. By id alone: the step task carries only the run id; the tenant comes
    with the row. Only the lease holder writes checkpoints, so the state stays ours to use."""
    with connection.cursor() as cursor:
        cursor.execute(CLAIM, [worker, lease_seconds, run_id, list(RUNNABLE)])
        row = cursor.fetchone()
    if row is None:
        return None
    run = _instance(Run, row[:RUN_COUNT])
    run.agent = _instance(Agent, row[RUN_COUNT:RUN_COUNT + AGENT_COUNT])
    run.tenant = _instance(Tenant, row[RUN_COUNT + AGENT_COUNT:RUN_COUNT + AGENT_COUNT + TENANT_COUNT])
    state = _converted(Checkpoint._meta.get_field("state"), row[-1])
    return run, state if isinstance(state, dict) else {}


LOCK_IN_TENANT = (f'SELECT {_select_list("r", Run)} FROM agents_run r WHERE r.id = %s AND r.tenant_id = %s'
                  ' FOR NO KEY UPDATE')


def run_lock(*, run_id: int, fence: int) -> Run | None:
    """In the caller's transaction: the run row if we still hold the lease (its fence), locked; else None."""
    with connection.cursor() as cursor:
        cursor.execute(LOCK, [run_id, fence])
        row = cursor.fetchone()
    return _instance(Run, row) if row else None


def run_lock_in_tenant(*, run_id: int, tenant_id: int) -> Run | None:
    """In the caller's transaction: the tenant's run, locked (for changes made by people), or None."""
    with connection.cursor() as cursor:
        cursor.execute(LOCK_IN_TENANT, [run_id, tenant_id])
        row = cursor.fetchone()
    return _instance(Run, row) if row else None


# --- Writing ---------------------------------------------------------------------------------------


def row_add(run: Run, row) -> None:
    """A ModelCall or ToolInvocation (no id needed afterwards) written with the run's next ``run_write``."""
    run.__dict__.setdefault("_rows_to_write", []).append(row)


def checkpoint_set(run: Run, checkpoint: Checkpoint) -> None:
    """The transaction's checkpoint (the last one set wins), upserted by step with the run's next ``run_write``."""
    run.__dict__["_checkpoint_to_write"] = checkpoint


def _rows_pending(run: Run) -> list:
    """What ``run_write`` inserts, taken off the run: events, rows, checkpoint."""
    rows = [*run.__dict__.pop("_events_to_write", []), *run.__dict__.pop("_rows_to_write", [])]
    if checkpoint := run.__dict__.pop("_checkpoint_to_write", None):
        rows.append(checkpoint)
    return rows


def _insert(rows: list, suffix: str = "") -> tuple[str, list]:
    model = type(rows[0])
    fields = [field for field in _columns(model) if not field.primary_key]
    placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
    params = [field.get_db_prep_save(field.pre_save(row, True), connection) for row in rows for field in fields]
    columns = ", ".join(f'"{field.column}"' for field in fields)
    values = ", ".join([placeholders] * len(rows))
    return f"INSERT INTO {model._meta.db_table} ({columns}) VALUES {values}{suffix}", params


CHECKPOINT_UPSERT = (" ON CONFLICT (run_id, step) DO UPDATE SET state = EXCLUDED.state,"
                     " state_hash = EXCLUDED.state_hash, at = EXCLUDED.at")
RUN_FIELDS = [field for field in _columns(Run) if not field.primary_key]
RUN_UPDATE = "UPDATE agents_run SET " + ", ".join(f'"{field.column}" = %s' for field in RUN_FIELDS) + " WHERE id = %s"


def run_write(run: Run) -> None:
    """One statement: the run row, and the events, rows and checkpoint the transaction added on it.
    The caller holds the row lock (``run_lock``), so writing every column loses nobody's change."""
    by_model: dict[type, list] = {}
    for row in _rows_pending(run):
        by_model.setdefault(type(row), []).append(row)
    parts, params = [], []
    for number, (model, rows) in enumerate(by_model.items()):
        sql, values = _insert(rows, CHECKPOINT_UPSERT if model is Checkpoint else "")
        parts.append(f"w{number} AS ({sql})")
        params.extend(values)
    params.extend(field.get_db_prep_save(field.pre_save(run, False), connection) for field in RUN_FIELDS)
    params.append(run.pk)
    sql = (f"WITH {', '.join(parts)} " if parts else "") + RUN_UPDATE
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
