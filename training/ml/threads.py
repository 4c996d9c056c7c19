"""A fixed number of CPU threads for a block of work whose result must not depend on the machine running it.

A sum split across threads adds in another order on each thread count, so the last bits of the result move: a
single-frame block of the feature extractor (a matrix-vector product) gave other features at one and two threads,
and the HMM's EM carried such differences into alignments that differed on 8 to 12 % of frames (docs/training.md,
"Runs that reproduce"). PyTorch's intra-op pool is the one that matters: the NumPy code on these paths is
element-wise and never calls BLAS.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")


@contextlib.contextmanager
def fixed_threads(count: int) -> Iterator[None]:
    """Run the block on ``count`` intra-op CPU threads, then give the process back its own number."""
    if count < 1:
        raise ValueError(f"a number of CPU threads is at least 1, not {count}")
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int = 1) -> Iterator[R]:
    """``map(fn, items)`` on ``workers`` threads, the results yielded in the items' order and at most ``workers``
    computed ahead of the one the caller is on (a batch's results can be large).

    For independent pieces of work whose result does not depend on which thread computed it: each keeps the
    process's intra-op thread count (``fixed_threads``), and the caller combines the results in the items' order,
    as a loop would, so the numbers are those of ``workers=1`` bit for bit. PyTorch's and NumPy's kernels release
    the GIL, so the threads use the cores."""
    if workers <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(workers) as pool:
        pending: collections.deque = collections.deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
