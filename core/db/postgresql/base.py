"""Django's PostgreSQL backend, with a connection health check that asks the server only when it may be gone.

Django's health check (``CONN_HEALTH_CHECKS``) sends ``SELECT 1`` before the first statement of every request
that reuses a connection: on the validation path, one of about ten round trips per request, each a context switch
for the gunicorn worker and the backend (docs/benchmarks.md, "Validation after session 8"). A connection the
server has closed (a restart, ``pg_terminate_backend``, an idle timeout) has said so on its socket: the server's
last message and the end of the stream are waiting there, so the socket reads as ready while the connection is
idle, which it never does otherwise (every answer is read to its end). Only then is the server asked; a socket
with nothing to read is a connection the server still holds. What this cannot see, a peer gone silently (a
network cut), ``SELECT 1`` would wait out on the same socket too.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql.base import DatabaseWrapper as PostgreSQLDatabaseWrapper


class DatabaseWrapper(PostgreSQLDatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        try:
            poll = select.poll()
            poll.register(connection.fileno(), select.POLLIN | select.POLLPRI)
            ready = poll.poll(0)
        except (OSError, ValueError, AttributeError):  # no fd, or no poll() on this platform: ask the server
            ready = True
        return super().is_usable() if ready else True
