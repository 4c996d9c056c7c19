"""Fenced claims: a worker writes to the row it claimed only while the row still holds its claim's token.

Whoever claims a training run or an evaluation raises the row's token (an attempt counter that is never reset)
under the row lock. Every write the worker makes afterwards is ``UPDATE ... WHERE pk = X AND token = T`` (and
whatever else must still hold, such as ``status = running``), so once a later claim has taken the row over, a
superseded worker's writes change nothing; each raises :class:`Superseded`, which the task's body logs before it
stops, leaving the row to the claim that holds it. A heartbeat is not enough on its own: a worker that was only
paused (a stopped process, a lost network) wakes up believing it still owns the row.

:class:`Heartbeat` beats the row from a background thread through every long stage (feature extraction, a wait
on another run's file lock, loading test audio), not only where the work happens to report progress, so that a
row goes stale, and may be taken over, only when its worker is really gone.

:func:`reap_silent` is the other side, run periodically for each kind of claimed row (release builds, evaluations
and re-evaluations, training runs): a row whose heartbeat went stale is re-queued while it has attempts left, else
failed with the reason. Each caller says what re-queueing and failing write; a new token, or a state the dead
worker's claim does not hold, fences that worker out.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from django.db import DatabaseError, connections, models, transaction
from django.db.models import Case, Q, Value, When
from django.utils import timezone

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=models.Model)


class Superseded(Exception):
    """A later claim holds the row (or it is no longer in the state this claim left it in): this worker's writes
    are refused, and it stops without touching the row."""


@dataclass(frozen=True)
class Fence(Generic[M]):
    """Claim ``token`` of row ``pk``: the row is this worker's while its ``counter`` equals ``token`` and
    ``holds`` is true of it."""

    model: type[M]
    pk: int
    token: int
    counter: str = "attempts"
    holds: Q = field(default_factory=Q)

    def __str__(self) -> str:
        return f"{self.model._meta.label} {self.pk} (claim {self.token})"

    def rows(self) -> models.QuerySet[M]:
        return self.model._default_manager.filter(self.holds, pk=self.pk, **{self.counter: self.token})

    def update(self, **values: Any) -> None:
        """One conditional UPDATE; :class:`Superseded` when it changed nothing."""
        if not self.rows().update(**values):
            raise Superseded(f"{self} is no longer held by this worker")

    def lock(self) -> M:
        """The row, locked for the caller's transaction, while the claim holds it; else :class:`Superseded`."""
        row = self.rows().select_for_update().first()
        if row is None:
            raise Superseded(f"{self} is no longer held by this worker")
        return row

    def held(self) -> bool | None:
        """True while the claim holds the row, False once it does not, None when this connection cannot see the
        row (deleted, or its creating transaction not committed)."""
        mine = Q(self.holds, **{self.counter: self.token})
        state = Case(When(mine, then=Value(True)), default=Value(False), output_field=models.BooleanField())
        rows = self.model._default_manager.filter(pk=self.pk).annotate(fence_held=state)
        return rows.values_list("fence_held", flat=True).first()


class Heartbeat:
    """A context manager that writes ``timezone.now()`` to the fenced row's ``heartbeat_at`` every ``every``
    seconds from a background thread, for as long as its block runs.

    It stops by itself when the claim is superseded and says so through :attr:`lost` (the worker checks it where
    it can stop cleanly); a database error costs one beat, not the claim. It beats only a row it can see: one
    that this connection cannot see has nothing to keep alive, and the worker's own fenced writes will fail.
    The thread closes its database connections when it ends. Leave the block before taking the row's lock to
    finish: the thread may be waiting on that lock, and leaving joins it."""

    def __init__(self, fence: Fence, *, every: float, field_name: str = "heartbeat_at") -> None:
        self.fence = fence
        self.every = max(0.01, float(every))
        self.field_name = field_name
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat {fence}", daemon=True)

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def check(self) -> None:
        """Raise :class:`Superseded` once the thread has seen the claim superseded."""
        if self.lost:
            raise Superseded(f"{self.fence} was claimed again while this worker held it")

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.every + 60)  # a beat stuck on the network must not hold the worker forever

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.every):
                if not self._beat():
                    return
        finally:
            connections.close_all()  # this thread's connections only: they are per thread

    def _beat(self) -> bool:
        """One beat; False when there is nothing more to beat."""
        try:
            held = self.fence.held()
            if held is None:
                logger.info("heartbeat of %s stops: the row is not visible", self.fence)
                return False
            if held:
                self.fence.update(**{self.field_name: timezone.now()})
                return True
        except Superseded:
            pass  # claimed again between the look and the write
        except DatabaseError:
            logger.warning("heartbeat of %s failed; trying again in %.0f s", self.fence, self.every, exc_info=True)
            connections.close_all()  # a broken connection is opened afresh at the next beat
            return True
        logger.warning("%s was claimed again while this worker held it; the worker stops", self.fence)
        self._lost.set()
        return False


def reap_silent(
    claimed: models.QuerySet[M],
    *,
    stale_after: timedelta,
    max_attempts: int,
    requeue: Callable[[M], None],
    fail: Callable[[M, datetime], None],
) -> dict[str, int]:
    """Re-queue or fail each of the ``claimed`` rows (those in the state a worker holds) whose worker went silent:
    no heartbeat for ``stale_after``, or none yet and claimed that long ago. ``requeue(row)`` while its
    ``attempts`` are under ``max_attempts``, else ``fail(row, now)``; each is called under the row's lock, in its
    own transaction, and saves the row itself (and enqueues after commit). Returns how many rows went each way.

    A row is read again under its lock: one that finished, was taken over or beat again since the list was read is
    left alone, and so is a re-queued one (out of the ``claimed`` state, or with neither a heartbeat nor a start
    until a worker claims it again), so no row is reaped twice. A row locked by someone else (its worker's final
    write, a new claim) is skipped: what it is doing decides the row, and a row still silent is found again at the
    next run."""
    now = timezone.now()
    stale = now - stale_after
    silent = Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True, started_at__lt=stale)
    counts = {"requeued": 0, "failed": 0}
    for pk in list(claimed.filter(silent).values_list("pk", flat=True)):
        with transaction.atomic():
            row = claimed.select_for_update(skip_locked=True).filter(silent, pk=pk).first()
            if row is None:
                continue
            # Every claimed model counts attempts; a TypeVar cannot be bound to "a Model with an attempts field".
            if row.attempts < max_attempts:  # type: ignore[attr-defined]
                requeue(row)
                counts["requeued"] += 1
            else:
                fail(row, now)
                counts["failed"] += 1
    return counts
