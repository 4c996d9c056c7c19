"""The PostgreSQL backend's health check (core/db/postgresql/base.py): no round trip for a connection the server
still holds, a new connection in place of one it has closed."""

from __future__ import annotations

import time

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


def _other_connection():
    other = connection.get_new_connection(connection.get_connection_params())
    other.autocommit = True
    return other


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.fixture(autouse=True)
def _postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("the backend is PostgreSQL's")


def test_a_connection_the_server_holds_is_usable_without_asking_it():
    pid = _backend_pid()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'the last statement'")

    assert connection.is_usable()

    with _other_connection() as other:
        last = other.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()[0]
    assert last == "SELECT 'the last statement'"  # Django's own check would have sent SELECT 1


def test_a_connection_the_server_closed_is_replaced_before_the_next_request_uses_it():
    pid = _backend_pid()
    with _other_connection() as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
    deadline = time.monotonic() + 10
    while connection.is_usable():
        assert time.monotonic() < deadline, "the closed connection still reads as usable"
        time.sleep(0.02)

    connection.close_if_unusable_or_obsolete()  # what every request starts with: its first statement checks
    assert _backend_pid() != pid
