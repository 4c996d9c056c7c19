"""The embedded Celery broker: a kombu virtual transport on one SQLite file that redelivers unacknowledged work.

kombu's filesystem transport deletes a message as it hands it out (a killed worker's task is lost) and can read
a file its writer has not finished (a worker died of ``JSONDecodeError``); its SQLAlchemy transport marks a
handed-out message invisible and never shows it again, acknowledged or not. Here each message is a row, written
and taken in SQLite transactions, and stays until its consumer acknowledges it. A taken row is leased to the
process that took it; each consuming process holds a POSIX lock on a file of its own for as long as it lives,
and the kernel drops that lock however the process ends, SIGKILL included. A lease whose lock can be taken
belongs to a dead process: its rows are handed out again. A live worker's lease never expires, so a training
run of many hours is never given to a second worker while the first still runs it (Redis, by contrast, needs a
visibility timeout longer than the longest task). The leases need one machine: the embedded default's.

URL: ``sqlite:///relative/path.sqlite3`` or ``sqlite:////absolute/path.sqlite3`` (SQLAlchemy's convention).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
import uuid
from json import dumps, loads
from pathlib import Path
from queue import Empty
from urllib.parse import urlparse

from kombu.transport import TRANSPORT_ALIASES, virtual

SCHEME = "sqlite"
# How often a polling consumer looks for the leases of dead processes: a killed worker's task is back within
# this many seconds of a live consumer polling its queue.
RECLAIM_SECONDS = 2.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS message (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    delivery_tag TEXT NOT NULL,
    payload TEXT NOT NULL,
    holder TEXT,      -- the consuming process that holds the lease; NULL while the message waits
    taken_at REAL
);
CREATE INDEX IF NOT EXISTS message_waiting ON message (queue, holder, id);
CREATE INDEX IF NOT EXISTS message_tag ON message (delivery_tag);
"""


def register() -> None:
    """Make ``sqlite://`` URLs name this transport (kombu resolves a URL's scheme through its aliases)."""
    TRANSPORT_ALIASES[SCHEME] = "config.broker:Transport"


def database_path(url: str) -> Path:
    """``sqlite:///var/broker.sqlite3`` → ``var/broker.sqlite3``; four slashes make an absolute path."""
    parsed = urlparse(url)
    if parsed.scheme != SCHEME or not parsed.path.removeprefix("/"):
        raise ValueError(f"not a sqlite broker URL with a file path: {url!r}")
    return Path(parsed.path.removeprefix("/"))


class _Holder:
    """This process's identity as a lease holder: a token and the locked file that proves it alive.

    POSIX record locks (``lockf``) are not inherited by fork, so a prefork pool's children never keep a dead
    parent's lease alive. The file is locked under a temporary name and then renamed, so that another process
    never sees it unlocked and mistakes a starting holder for a dead one."""

    _lock = threading.Lock()
    _held: dict[tuple[int, Path], _Holder] = {}  # by process and broker

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.token = uuid.uuid4().hex
        self.path = folder / f"{self.token}.lock"
        staging = folder / f".{self.token}.new"
        self._file = staging.open("wb")
        fcntl.lockf(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        staging.rename(self.path)

    @classmethod
    def of_this_process(cls, folder: Path) -> _Holder:
        key = (os.getpid(), folder)
        with cls._lock:
            holder = cls._held.get(key)
            if holder is None:
                holder = cls._held[key] = cls(folder)
            return holder

    @classmethod
    def held_by_this_process(cls, folder: Path) -> _Holder | None:
        """This process's holder if it has taken a lease here yet; never creates one."""
        with cls._lock:
            return cls._held.get((os.getpid(), folder))


def holder_is_alive(path: Path) -> bool:
    """Whether the process behind a holder file still lives: it does while nobody else can lock the file."""
    try:
        with path.open("rb+") as handle:
            try:
                fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.lockf(handle, fcntl.LOCK_UN)
            return False
    except FileNotFoundError:
        return False


class QoS(virtual.QoS):
    """Acknowledging (or rejecting without requeue) deletes the row; until then it stays leased."""

    def ack(self, delivery_tag: str) -> None:
        self.channel._forget(delivery_tag)
        super().ack(delivery_tag)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        if not requeue:
            self.channel._forget(delivery_tag)
        super().reject(delivery_tag, requeue=requeue)


class Channel(virtual.Channel):
    QoS = QoS
    # Polled: at kombu's default of 1 s a worker with prefetch 1 takes about one message a second, so the
    # demo's few hundred clip analyses would hold its training runs back for minutes.
    polling_interval = 0.1

    def __init__(self, connection, **kwargs) -> None:
        super().__init__(connection, **kwargs)
        self._path = database_path(self.connection.client.hostname).resolve()
        self._holders = self._path.with_name(self._path.name + ".holders")
        self._mutex = threading.Lock()  # acks may come from other threads than the consuming one
        self._db = self._connect()
        self._reclaimed_at = 0.0

    def _connect(self) -> sqlite3.Connection:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: each statement is its own transaction. The pool hands a connection to one thread at a
        # time, and the mutex covers acks from others, hence check_same_thread=False.
        db = sqlite3.connect(self._path, timeout=30, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")  # pollers read while a publisher writes
        # As the embedded database: a commit survives any crash of a process, SIGKILL included; only a power cut
        # may lose the last few. FULL syncs on every commit: a third of the messages a second (measured).
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
        return db

    # --- storage --------------------------------------------------------------------------------------
    def _put(self, queue: str, message: dict, **kwargs) -> None:
        tag = message["properties"]["delivery_tag"]
        with self._mutex:
            self._db.execute(
                "INSERT INTO message (queue, delivery_tag, payload) VALUES (?, ?, ?)", (queue, tag, dumps(message))
            )

    def _get(self, queue: str, timeout: float | None = None) -> dict:
        holder = _Holder.of_this_process(self._holders)
        with self._mutex:
            if time.monotonic() - self._reclaimed_at > RECLAIM_SECONDS:
                self._reclaim_dead_leases(holder)
            # A plain read first: an idle poll must not take SQLite's write lock ten times a second.
            waiting = self._db.execute(
                "SELECT id FROM message WHERE queue = ? AND holder IS NULL ORDER BY id LIMIT 1", (queue,)
            ).fetchone()
            if waiting is None:
                raise Empty()
            # Taken only if still waiting: two consumers may have read the same id.
            row = self._db.execute(
                "UPDATE message SET holder = ?, taken_at = ? WHERE id = ? AND holder IS NULL RETURNING payload",
                (holder.token, time.time(), waiting[0]),
            ).fetchone()
        if row is None:
            raise Empty()
        return loads(row[0])

    def _forget(self, delivery_tag: str) -> None:
        with self._mutex:
            self._db.execute("DELETE FROM message WHERE delivery_tag = ?", (delivery_tag,))

    def _restore(self, message) -> None:
        """A graceful shutdown's prefetched messages and a requeued rejection wait again, in their old place.

        Only this process's own leases: a forked child that closes a channel it inherited must not release the
        messages its parent is still working on."""
        holder = _Holder.held_by_this_process(self._holders)
        if holder is None:
            return
        with self._mutex:
            self._db.execute(
                "UPDATE message SET holder = NULL WHERE delivery_tag = ? AND holder = ?",
                (message.delivery_tag, holder.token),
            )

    def _reclaim_dead_leases(self, me: _Holder) -> None:
        holders = {row[0] for row in self._db.execute("SELECT DISTINCT holder FROM message WHERE holder IS NOT NULL")}
        holders |= {path.stem for path in self._holders.glob("*.lock")}
        for token in holders - {me.token}:
            path = self._holders / f"{token}.lock"
            if holder_is_alive(path):
                continue
            self._db.execute("UPDATE message SET holder = NULL WHERE holder = ?", (token,))
            path.unlink(missing_ok=True)
        self._reclaimed_at = time.monotonic()

    def _size(self, queue: str) -> int:
        with self._mutex:
            return self._db.execute(
                "SELECT count(*) FROM message WHERE queue = ? AND holder IS NULL", (queue,)
            ).fetchone()[0]

    def _purge(self, queue: str) -> int:
        with self._mutex:
            return self._db.execute("DELETE FROM message WHERE queue = ? AND holder IS NULL", (queue,)).rowcount

    def _delete(self, queue: str, *args, **kwargs) -> None:
        with self._mutex:
            self._db.execute("DELETE FROM message WHERE queue = ?", (queue,))

    def close(self) -> None:
        super().close()  # restores unacknowledged messages through _restore first
        with self._mutex:
            self._db.close()


class Transport(virtual.Transport):
    Channel = Channel
    can_parse_url = True  # the whole URL reaches the channel as ``hostname``
    # kombu leaves these unannotated, so mypy takes its defaults (None, a one-element tuple) for their types.
    default_port = 0  # type: ignore[assignment]
    driver_type = "sqlite"
    driver_name = "sqlite3"
    connection_errors = (*virtual.Transport.connection_errors, sqlite3.OperationalError)  # type: ignore[assignment]
    channel_errors = (*virtual.Transport.channel_errors, sqlite3.DatabaseError)  # type: ignore[assignment]

    def driver_version(self) -> str:
        return sqlite3.sqlite_version
