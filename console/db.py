"""Statements the step sends on every turn, prepared once per connection.

Django binds parameters on the client and never prepares (so that transaction-mode connection poolers
work), and Postgres plans such a statement afresh each time: for the run's claim, its lock and its
end-of-transaction write, with their CTEs, planning takes as long as running them. ``prepared_cursor``
is a Django cursor (errors wrapped, queries logged when Django logs them) that binds on the server and
prepares each statement the first time this connection sends it; later executions skip parsing and,
once Postgres judges its generic plan good, planning.

While Django logs queries (DEBUG, or a test capturing them) the statements go unprepared, so that the log
shows their text (psycopg keeps no text for an execution of a prepared statement).

``DATABASE_PREPARED_STATEMENTS=0`` turns it off (a plain cursor instead), for a pooler that cannot keep
prepared statements (PgBouncer in transaction mode before 1.21, or without ``max_prepared_statements``).
"""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.db import connection
from django.db.backends.postgresql.base import ServerBindingCursor


class _PreparingCursor(ServerBindingCursor):
    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True if prepare is None else prepare, binary=binary)


def prepared_cursor():
    """A cursor on the default connection whose statements are prepared (see the module's docstring)."""
    if not settings.DATABASE_PREPARED_STATEMENTS or connection.queries_logged:
        return connection.cursor()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        return connection._prepare_cursor(_PreparingCursor(connection.connection))


# --- Rows of hand-written statements as the ORM would give them ----------------------------------------------


def _fields(model, names) -> list:
    return list(model._meta.concrete_fields) if names is None else [model._meta.get_field(name) for name in names]


def select_list(alias: str, model, names: list[str] | None = None) -> str:
    """The model's columns (or those of the fields ``names``) for a SELECT, qualified by ``alias``."""
    fields = _fields(model, names)
    return ", ".join(f'{alias}."{field.column}"' for field in fields)


def db_value(field, value):
    """A column's value converted as the ORM converts it (JSON decoded, say)."""
    for converter in field.get_db_converters(connection):
        value = converter(value, field, connection)
    return value


def row_instance(model, values, names: list[str] | None = None):
    """The model instance for a row of its columns (of the fields ``names``: the others deferred), as a query gives."""
    attnames, conversions = _row_shape(model, None if names is None else tuple(names))
    values = list(values)
    for index, field, converters in conversions:
        value = values[index]
        for converter in converters:
            value = converter(value, field, connection)
        values[index] = value
    return model.from_db(connection.alias, attnames, values)


@cache
def _row_shape(model, names: tuple[str, ...] | None) -> tuple[list[str], list[tuple]]:
    """The fields' attribute names, and the converters of those that have any (asked once per model, not per row)."""
    fields = _fields(model, names)
    conversions = [(index, field, converters) for index, field in enumerate(fields)
                   if (converters := field.get_db_converters(connection))]
    return [field.attname for field in fields], conversions
