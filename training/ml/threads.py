"""A fixed number of CPU threads for a block of work whose result must not depend on the machine running it.

A sum split across threads adds in another order on each thread count, so the last bits of the result move: a
single-frame block of the feature extractor (a matrix-vector product) gave other features at one and two threads,
and the HMM's EM carried such differences into alignments that differed on 8 to 12 % of frames (docs/training.md,
"Runs that reproduce"). PyTorch's intra-op pool is the one that matters: the NumPy code on these paths is
element-wise and never calls BLAS.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


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
