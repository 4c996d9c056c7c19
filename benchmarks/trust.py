"""Benchmark: the trust engine's full recompute against crowd-kit's Dawid-Skene on the same votes.

Usage::

    .venv/bin/python benchmarks/trust.py [--clips N --votes M --contributors K] [--peer-scale F]

Builds a seeded synthetic crowd (default: 1,000,000 clips, 10,000,000 votes, 100,000 contributors), times
``trust_recompute`` on it (best of 3), then crowd-kit's ``DawidSkene`` (its defaults: up to 100 EM
iterations, tol 1e-5; best of 3) on the same votes. Dawid-Skene takes about 45 s a run at the default
size on a 2-core machine, so the whole benchmark takes about 3 minutes. With ``--peer-scale F`` below 1
the peer is timed instead on a crowd F times the size, and our engine again at that size, so that the
ratio always compares like with like. Dawid-Skene weighs every vote, trusted or not, so it answers the
same question (which clips are valid) by a different, much heavier method.

The synthetic crowd: clip counts per contributor are heavy-tailed (Pareto); each contributor records good
clips with their own probability (Beta(18, 2)); the founders are the most prolific 1 %. The crowd grew in
6 generations after the founders: votes land on clips uniformly, and a clip by generation h is voted on
by generations 0 .. h-1, the voter drawn in proportion to the clips they submitted (the quota rule), so
the engine must rediscover the trustees generation by generation. Votes are correct with the voter's own
accuracy (Beta(19, 1); 3 % of voters answer at random); nobody votes on their own clip.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness
from speech.trust import ClipStatus, TrustResult, trust_recompute

SEED = 20240601


@dataclass(frozen=True)
class Crowd:
    vote_clip: np.ndarray
    vote_voter: np.ndarray
    vote_valid: np.ndarray
    clip_author: np.ndarray
    clip_truth: np.ndarray
    founders: np.ndarray

    def size(self) -> str:
        return f"{len(self.clip_author):,} clips / {len(self.vote_clip):,} votes / {len(self.founders):,} people"


def crowd_synthesise(*, clips: int, votes: int, contributors: int, generations: int = 6, seed: int = SEED) -> Crowd:
    rng = np.random.default_rng(seed)
    activity = rng.pareto(1.5, contributors) + 1.0
    clip_author = rng.choice(contributors, size=clips, p=activity / activity.sum())
    quality = rng.beta(18.0, 2.0, contributors)
    clip_truth = rng.random(clips) < quality[clip_author]
    submitted = np.bincount(clip_author, minlength=contributors).astype(np.float64)
    founders = np.zeros(contributors, dtype=bool)
    founders[np.argsort(-submitted, kind="stable")[: max(1, contributors // 100)]] = True

    # The crowd grew in generations: a clip by generation h is voted on by earlier generations (the
    # founders, generation 0, vote on their own), each voter drawn in proportion to the clips they
    # submitted (the quota rule). Sampling by inverse CDF over contributors sorted by generation.
    generation = np.where(founders, 0, 1 + rng.integers(0, generations, contributors))
    order = np.argsort(generation, kind="stable")
    cumulative = np.cumsum(submitted[order])
    cumulative_from = np.concatenate([[0.0], cumulative])
    starts = np.searchsorted(generation[order], np.arange(generations + 2))
    vote_clip = rng.integers(0, clips, size=votes)
    voter_generation = (rng.random(votes) * np.maximum(generation[clip_author[vote_clip]], 1)).astype(np.int64)
    low = cumulative_from[starts[voter_generation]]
    high = cumulative_from[starts[voter_generation + 1]]
    drawn = np.searchsorted(cumulative, low + rng.random(votes) * (high - low), side="right")
    vote_voter = order[np.minimum(drawn, contributors - 1)]
    own = vote_voter == clip_author[vote_clip]
    vote_clip[own] = (vote_clip[own] + 1) % clips  # a neighbour's clip instead of their own

    accuracy = rng.beta(19.0, 1.0, contributors)
    accuracy[rng.random(contributors) < 0.03] = 0.5  # voters who click at random
    correct = rng.random(votes) < accuracy[vote_voter]
    vote_valid = clip_truth[vote_clip] == correct
    return Crowd(
        vote_clip=vote_clip.astype(np.int64),
        vote_voter=vote_voter.astype(np.int64),
        vote_valid=vote_valid,
        clip_author=clip_author.astype(np.int64),
        clip_truth=clip_truth,
        founders=founders,
    )


def best_of(repeats: int, run: Callable[[], object]) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def engine_time(crowd: Crowd, repeats: int) -> tuple[float, TrustResult]:
    seconds, result = best_of(
        repeats,
        lambda: trust_recompute(
            vote_clip=crowd.vote_clip,
            vote_voter=crowd.vote_voter,
            vote_valid=crowd.vote_valid,
            clip_author=crowd.clip_author,
            founders=crowd.founders,
        ),
    )
    assert isinstance(result, TrustResult)
    return seconds, result


def peer_time(crowd: Crowd, repeats: int) -> tuple[float, int, float] | str:
    """Dawid-Skene's time, its EM iterations and its accuracy on decided clips, or why it could not run."""
    try:
        import pandas as pd
        from crowdkit.aggregation import DawidSkene
    except ImportError as error:
        return f"crowd-kit not installed ({error.name}): pip install 'crowd-kit>=1.4,<2'"
    frame = pd.DataFrame({"task": crowd.vote_clip, "worker": crowd.vote_voter, "label": crowd.vote_valid})
    frame["label"] = frame["label"].astype(np.int8)

    def run() -> tuple[DawidSkene, object]:
        model = DawidSkene()
        return model, model.fit_predict(frame)

    seconds, (model, labels) = best_of(repeats, run)
    predicted = np.zeros(len(crowd.clip_truth), dtype=bool)
    predicted[labels.index.to_numpy()] = labels.to_numpy() == 1
    voted = np.zeros(len(crowd.clip_truth), dtype=bool)
    voted[labels.index.to_numpy()] = True
    accuracy = float((predicted[voted] == crowd.clip_truth[voted]).mean())
    return seconds, len(model.loss_history_), accuracy


def engine_accuracy(crowd: Crowd, result: TrustResult) -> tuple[float, float]:
    """Share of clips decided valid or invalid, and how often that decision matches the synthetic truth."""
    decided = (result.clip_status == ClipStatus.VALID) | (result.clip_status == ClipStatus.INVALID)
    if not decided.any():
        return 0.0, float("nan")
    agree = (result.clip_status[decided] == ClipStatus.VALID) == crowd.clip_truth[decided]
    return float(decided.mean()), float(agree.mean())


def machine() -> str:
    # The cores this process may run on (its CPU affinity), not all the machine's.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{harness.cpu_model()}, {cores} cores, Python {platform.python_version()}, NumPy {np.__version__}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1_000_000)
    parser.add_argument("--votes", type=int, default=10_000_000)
    parser.add_argument("--contributors", type=int, default=100_000)
    parser.add_argument(
        "--peer-scale",
        type=float,
        default=1.0,
        help="size of the crowd Dawid-Skene is timed on, as a fraction of the full one (default 1: the same)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs (default 3)")
    parser.add_argument("--peer-repeats", type=int, default=3, help="best of this many Dawid-Skene runs (default 3)")
    args = parser.parse_args(argv)

    sizes = [(args.clips, args.votes, args.contributors)]
    if args.peer_scale != 1:
        scale = args.peer_scale
        sizes.append((int(args.clips * scale), int(args.votes * scale), max(1, int(args.contributors * scale))))

    rows = []
    for index, (clips, votes, contributors) in enumerate(sizes):
        print(f"building {clips:,} clips / {votes:,} votes / {contributors:,} contributors ...", flush=True)
        crowd = crowd_synthesise(clips=clips, votes=votes, contributors=contributors)
        ours, result = engine_time(crowd, args.repeats)
        decided, agree = engine_accuracy(crowd, result)
        print(
            f"  trust engine: {ours:.3f} s, {result.iterations} evaluations, "
            f"{int(result.trustees.sum()):,} trustees, {decided:.1%} of clips decided, "
            f"{agree:.2%} of those match the synthetic truth, cycle resolved: {result.cycle_resolved}",
            flush=True,
        )
        peer: tuple[float, int, float] | str | None = None
        if index == len(sizes) - 1:
            print("  Dawid-Skene (crowd-kit) ...", flush=True)
            peer = peer_time(crowd, args.peer_repeats)
            if isinstance(peer, str):
                print(f"  {peer}")
            else:
                print(f"  Dawid-Skene: {peer[0]:.3f} s, {peer[1]} EM iterations, {peer[2]:.2%} accuracy")
        rows.append((crowd.size(), ours, peer))

    print()
    print(f"machine: {machine()}")
    try:
        print(f"peer: crowd-kit {version('crowd-kit')} DawidSkene(n_iter=100, tol=1e-5), pandas {version('pandas')}")
    except PackageNotFoundError:
        print("peer: crowd-kit not installed")
    print()
    print(f"| {'size':<52} | {'trust engine (s)':>16} | {'Dawid-Skene (s)':>15} | {'ratio':>7} |")
    print(f"| {'-' * 52} | {'-' * 16}:| {'-' * 15}:| {'-' * 7}:|")
    for size, ours, peer in rows:
        if isinstance(peer, tuple):
            peer_cell, ratio_cell = f"{peer[0]:.3f}", f"{peer[0] / ours:.0f}x"
        else:
            peer_cell, ratio_cell = "not timed", "-"
        print(f"| {size:<52} | {ours:>16.3f} | {peer_cell:>15} | {ratio_cell:>7} |")


if __name__ == "__main__":
    main()
