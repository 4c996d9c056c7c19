"""Hot-path SQL: statements written out once, prepared on the PostgreSQL server, and model rows built from them.

The validation path (a vote with its next assignment, ``validation/next``, token authentication) runs a dozen
fixed statements per request. Through the ORM each is compiled again on every request, and compiling them cost
more CPU than PostgreSQL spent running them (py-spy on the gunicorn workers, benchmarks/vote_api.py); and
PostgreSQL parses and plans each again, 0.8 to 1.5 ms for the queue's. Written out once and sent through
:func:`prepared_cursor`, each is compiled by nobody and planned once per connection.

Prepared statements need server-side parameter binding; Django's own cursors bind on the client (which never
prepares), so only the statements sent through :func:`prepared_cursor` are prepared, after
``DATABASES["default"]["OPTIONS"]["prepare_threshold"]`` executions on a connection
(settings.DATABASE_PREPARE_THRESHOLD; unset, nothing is prepared, as a transaction-pooling pgbouncer older
than 1.21 needs). Elsewhere (SQLite) it is Django's cursor.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.db.models import Model

if TYPE_CHECKING:
    from django.db.backends.postgresql.operations import DatabaseOperations
    from django.db.backends.utils import _ExecuteParameters, _ExecuteQuery

M = TypeVar("M", bound=Model)


def prepared_cursor() -> CursorWrapper:
    """A cursor whose statements PostgreSQL prepares (server-side binding: ``%s`` placeholders, values sent
    apart from the text); Django's wrapper around it, so that errors, query logging and execute wrappers
    behave as with ``connection.cursor()``."""
    db = connections[DEFAULT_DB_ALIAS]  # once: every attribute read through ``connection`` is a lookup
    if db.vendor != "postgresql":
        return db.cursor()
    # Django 5's psycopg 3 cursor with server-side binding; django-stubs do not list it.
    from django.db.backends.postgresql.base import ServerBindingCursor  # type: ignore[attr-defined]

    db.close_if_health_check_failed()
    db.ensure_connection()
    db.validate_thread_sharing()
    with db.wrap_database_errors:
        cursor = ServerBindingCursor(db.connection)
    if db.queries_logged:
        return _PreparedDebugWrapper(cursor, db)
    return CursorWrapper(cursor, db)


class _PreparedDebugWrapper(CursorDebugWrapper):
    """Logs the statement with its values (Django reads the text back from psycopg, which keeps none for a
    statement it has prepared)."""

    def execute(self, sql: _ExecuteQuery, params: _ExecuteParameters = None) -> Any:
        if not isinstance(sql, str):  # a psycopg Composable, never sent here: Django's own wrapper logs it
            return super().execute(sql, params)
        ops = cast("DatabaseOperations", connection.ops)  # made only for PostgreSQL (prepared_cursor)
        with self.debug_sql(ops.compose_sql(sql, params) if params else sql):
            return CursorWrapper.execute(self, sql, params)


@functools.cache
def columns(model: type[Model], alias: str) -> str:
    """``alias.column, ...`` for every concrete field of ``model``, in the order :func:`from_row` reads."""
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(field.column)}" for field in model._meta.concrete_fields)


def quote(name: str) -> str:
    return connection.ops.quote_name(name)


def width(model: type[Model]) -> int:
    return len(model._meta.concrete_fields)


def from_row(model: type[M], row: Sequence[Any]) -> M:
    """An instance of ``model`` from the values of its :func:`columns`, converted as the ORM converts them
    (the backend's converters: SQLite's datetimes, decimals and booleans; none for most PostgreSQL types)."""
    db = connections[DEFAULT_DB_ALIAS]
    attnames, converters = _reading(model, db.vendor)
    if converters:
        row = list(row)
        for i, field, functions in converters:
            for function in functions:
                row[i] = function(row[i], field, db)
    return model.from_db(DEFAULT_DB_ALIAS, attnames, row)


@functools.cache
def _reading(model: type[Model], vendor: str) -> tuple[list[str], list[tuple[int, Any, tuple]]]:
    """The model's attribute names in :func:`columns` order, and (position, field, converters) for the fields
    the backend converts."""
    db = connections[DEFAULT_DB_ALIAS]
    fields = model._meta.concrete_fields
    converters = []
    for i, field in enumerate(fields):
        # Field.get_db_converters is Django's (fields/__init__.py); django-stubs list it on expressions only.
        field_functions = field.get_db_converters(db)  # type: ignore[attr-defined]
        functions = db.ops.get_db_converters(field.get_col(model._meta.db_table)) + field_functions
        if functions:
            converters.append((i, field, tuple(functions)))
    return [field.attname for field in fields], converters
