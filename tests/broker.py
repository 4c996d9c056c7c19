"""What the services sent to the unit tests' broker (``memory://``, set in tests/conftest.py), which no worker
consumes: a test reads the real messages instead of replacing the code that sends them, and plays the worker by
calling the task with their arguments."""

from __future__ import annotations

from collections.abc import Iterator

from config.celery import app as celery_app

# The evaluation of a submission, and the queue it is routed to (settings.CELERY_TASK_ROUTES).
EVALUATION = ("benchmark.tasks.submission_evaluate", "eval")


class Enqueued:
    """The calls of one task sent to its queue since this object was made (older messages are dropped: another
    test's), in the order sent; compares as the list of their argument tuples. Reading takes the messages off the
    queue; ``clear()`` forgets the calls read so far."""

    def __init__(self, task: str, queue: str) -> None:
        # The project's app sends the services' tasks only while it is the current one, and a test that made an app
        # of its own (``Celery()`` becomes current) leaves that one current for the rest of the process; its
        # messages would go to its default queue, past this reader.
        celery_app.set_current()
        self.task, self.queue = task, queue
        self._calls: list[tuple] = []
        self.clear()

    def _read(self) -> list[tuple]:
        with celery_app.connection_for_read() as connection:
            channel = connection.default_channel
            while (message := channel.basic_get(self.queue, no_ack=True)) is not None:
                assert message.headers["task"] == self.task, f"{message.headers['task']} on queue {self.queue}"
                args, _kwargs, _embed = message.decode()
                self._calls.append(tuple(args))
        return self._calls

    def clear(self) -> None:
        self._read()
        self._calls.clear()

    def __iter__(self) -> Iterator[tuple]:
        return iter(list(self._read()))

    def __len__(self) -> int:
        return len(self._read())

    def __eq__(self, other: object) -> bool:
        return self._read() == other

    __hash__ = None  # mutable, compared by content

    def __repr__(self) -> str:
        return f"Enqueued({self.task}: {self._read()!r})"
