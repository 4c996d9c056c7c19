"""Simulation: synthetic crowds with ground truth, voting round by round through the real trust engine.

Usage::

    .venv/bin/python benchmarks/trust_sim.py [--seed S] [--rounds R] [--presets wilson proposal]
        [--quota [PRESET=]Q ...] [--offer-max-votes N] [--founders F] [--founder-allowance A] [--scenario NAME ...]
        [--contributors N] [--join-rounds J] [--assignment most-voted|uniform] [--per-round] [--details]
        [--json FILE]

Every clip in a scenario is known to be good or bad. Each scenario runs once per engine preset
(``TrustParams(preset=...)``: ``wilson``, the default, and ``proposal``; for tuning, ``--quota Q`` overrides
every preset's ``quota_votes_per_clip`` and ``--quota wilson=Q`` one preset's, ``--offer-max-votes N`` the
queue's ``offer_max_votes``). A run lasts ``--rounds`` rounds, each run the way the platform runs:

1. **Recording.** Every contributor who has joined records clips (Poisson, per round); they start pending.
   Ordinary contributors join at random over the first ``join_rounds`` rounds (the crowd grows), the
   ``--founders`` founders (10 by default, on top of the 400 contributors) and the ring in round 1, sybils
   in ``sybil_round``.
2. **Voting.** Every current trustee (the engine's last result; the founders in round 1), in random order,
   is handed pending clips that they did not record, have not voted on and that carry fewer than
   ``offer_max_votes`` counted votes (the eligible clips; the platform's queue stops offering a contested clip
   there) until they reach their activity cap for the round or their quota, ``vote_quota``: votes cast,
   cumulatively, at most the preset's ``quota_votes_per_clip`` per clip submitted plus an operator's
   allowance (``--founder-allowance`` for founders, 0 for everyone else). Which clip, by ``--assignment``:

   * ``most-voted`` (the default; the platform's validation queue, ``validation_next_for`` in
     ``contributors/selectors.py``): one drawn uniformly among the eligible clips with the most counted
     votes (the votes of the current trustees), "finish started clips first";
   * ``uniform`` (the queue before that change): one drawn uniformly among all the eligible clips.

   Non-trustees cast nothing: the platform refuses them. After each vote the clip's counted votes and
   status are updated by the engine's clip rule (the incremental path), so a clip leaves the pool once
   decided or once it reaches ``offer_max_votes`` counted votes, and the next assignment sees its new count.
   The trustee set is held fixed within a round (a clip whose counted votes fall under the cap after a
   recompute, because some of its voters lost the status, is offered again).
   (Nobody skips or reports a clip here.)
3. **Recompute.** ``trust_recompute`` on every vote so far, from ``trustees_before`` = last round's
   trustees (the founders in round 1), exactly as the platform passes the stored trustees, gives the new
   statuses and trustees. Two probes, each one ``trust_evaluate`` (one evaluation with exactly a given
   set's votes counted), ask whether last round's trustees would still support each other on the new
   votes, and what every contributor's trust would be if exactly the founders and the honest contributors
   counted (the oracle's trustees).

Then, on the same votes, other methods are scored against the truth next to the engine:

* Common Voice's rule: valid with at least 2 up votes and more up than down; every vote counts (CV has
  no trust), the votes of demoted trustees included.
* Common Voice, stopping: the same rule applied as Common Voice applies it, to each clip's votes in the
  order they were cast, the clip decided by the first 2-vote majority (valid: up >= 2 and up > down;
  invalid: down >= 2 and down > up) and later votes ignored. Its "votes per valid clip" counts only the
  votes it used.
* Dawid-Skene (crowd-kit 1.4, defaults), every voter: valid where the posterior of valid exceeds 1/2
  (left out when crowd-kit is not installed: ``pip install -e '.[bench]'``).

Clips with no vote are valid under none of them.

The targets (issue #11), per preset and scenario, printed first as one table and written by ``--json``
(an object keyed by preset, then scenario):

* precision of the engine's valid set at every round's end, the minimum over the rounds: >= 99.9 %;
* recall, the share of good clips valid at the end: >= 90 % in baseline, lazy20-ring5, lazy40 and
  lazy20-ring5-sleeper, >= 80 % in the others;
* trustee votes per valid clip, the mean number of votes cast on the clips valid at the end: <= 8;
* collapses, rounds in which the non-founder trustees fell to fewer than half of the previous round's:
  none in baseline (reported everywhere);
* ring and sybil members who were ever trustees (at the end of any round): none.

Behaviours:

* founder: an operator-named trustee; votes right with ``founder_accuracy``; 99 % of their clips are good.
* honest: votes right with an accuracy of 0.70 + 0.29 * Beta(4, 2) (mean 0.89, range 0.70-0.99); records
  good clips with a probability drawn uniformly in [0.90, 0.97].
* lazy: records like an honest contributor (so can earn trust), votes valid on everything.
* malicious: records like an honest contributor, votes invalid on everything.
* ring: a colluding ring. From round ``ring_sleeper_rounds + 1`` on it records only bad clips and votes
  valid on ring members' clips; on everyone else's it votes invalid (``ring_votes="ring-only"``: it
  sabotages) or valid (``"everything"``: it pushes all). Before that it records and votes honestly, to
  earn trust (0 rounds by default: garbage from the start).
* sybil: a fresh account from round ``sybil_round``; records ``sybil_clips`` bad clips once and nothing
  more; votes valid on everything if it is ever allowed to vote.

Trustees are eager: they spend their whole quota, up to the per-round cap, which is the best case for
the engine's throughput. A contested clip stays in the pool while it is pending and under the offer cap
(and with ``most-voted`` is handed first, to every trustee who has not voted on it yet). The default run (8
scenarios x 2 presets, 40 rounds) takes about 26 s on a 2-core machine. The output is the targets' table, then
one table per scenario (``--details`` adds each run's trustees, statuses, collapses, offer-capped clips and ring
timing; ``--per-round`` one line per round), then observations computed from the numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from dataclasses import dataclass, replace
from enum import IntEnum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from speech.trust import (
    PRESETS,
    ClipStatus,
    TrustParams,
    TrustResult,
    clip_statuses,
    trust_evaluate,
    trust_recompute,
    vote_quota,
)

SEED = 20240601

# The targets (module docstring).
PRECISION_TARGET = 0.999
RECALL_TARGET = 0.80
RECALL_TARGET_BY_SCENARIO = {"baseline": 0.90, "lazy20-ring5": 0.90, "lazy40": 0.90, "lazy20-ring5-sleeper": 0.90}
VOTES_PER_VALID_TARGET = 8.0
NO_COLLAPSE_SCENARIOS = ("baseline",)


class Behaviour(IntEnum):
    FOUNDER = 0
    HONEST = 1
    LAZY = 2
    MALICIOUS = 3
    RING = 4
    SYBIL = 5


@dataclass(frozen=True)
class Crowd:
    """Sizes and rates shared by every scenario; a scenario only says who misbehaves."""

    contributors: int = 400  # ordinary accounts; founders and sybils come on top
    founders: int = 10  # at least 7: a clip needs 6 unanimous trustee votes and nobody votes on their own
    founder_accuracy: float = 0.98
    founder_clips_per_round: float = 20.0  # staff seeding the corpus; their recordings are their quota
    clips_per_round: float = 3.0  # Poisson mean for everyone else
    founder_votes_per_round: int = 500  # activity cap of a founder in one round (the quota also applies)
    votes_per_round: int = 100  # the same for everyone else
    join_rounds: int = 20  # ordinary contributors join uniformly over the first this many rounds
    honest_accuracy_beta: tuple[float, float] = (4.0, 2.0)  # scaled into [0.70, 0.99]
    honest_good: tuple[float, float] = (0.90, 0.97)  # range of the share of good clips an honest person records


@dataclass(frozen=True)
class Platform:
    """What the operator runs: the engine's parameters (its preset and quota) and the founders' allowance."""

    params: TrustParams
    founder_allowance: int = 0  # votes an operator grants each founder on top of the quota

    @property
    def name(self) -> str:
        return self.params.preset

    def describe(self) -> str:
        return (
            f"preset {self.params.preset}: quota {self.params.quota_votes_per_clip:g} votes per clip submitted, "
            f"founders' allowance {self.founder_allowance}, queue offers a clip below "
            f"{self.params.offer_max_votes} counted votes"
        )


@dataclass(frozen=True)
class Scenario:
    """Who misbehaves, as fractions of ``Crowd.contributors``, plus sybil accounts on top."""

    name: str
    lazy: float = 0.0
    malicious: float = 0.0
    ring: float = 0.0
    ring_votes: str = "ring-only"  # or "everything"
    ring_sleeper_rounds: int = 0  # rounds of honest behaviour before the ring turns
    sybils: int = 0
    sybil_round: int = 10  # 1-based round in which the sybil accounts appear
    sybil_clips: int = 3

    def describe(self) -> str:
        parts = []
        if self.lazy:
            parts.append(f"{self.lazy:.0%} lazy")
        if self.malicious:
            parts.append(f"{self.malicious:.0%} malicious")
        if self.ring:
            turn = f", honest until round {self.ring_sleeper_rounds}" if self.ring_sleeper_rounds else ""
            parts.append(f"{self.ring:.0%} colluding ring (votes valid on {self.ring_votes}{turn})")
        if self.sybils:
            parts.append(f"{self.sybils} sybils from round {self.sybil_round}, {self.sybil_clips} bad clips each")
        return ", ".join(parts) or "honest crowd only"

    @property
    def recall_target(self) -> float:
        return RECALL_TARGET_BY_SCENARIO.get(self.name, RECALL_TARGET)


SCENARIOS = {
    scenario.name: scenario
    for scenario in (
        Scenario("baseline"),
        Scenario("lazy20-ring5", lazy=0.20, ring=0.05),
        Scenario("lazy40", lazy=0.40),
        Scenario("lazy60", lazy=0.60),
        Scenario("lazy20-ring5-sleeper", lazy=0.20, ring=0.05, ring_votes="everything", ring_sleeper_rounds=8),
        Scenario("malicious10", malicious=0.10),
        Scenario("sybil200", sybils=200),
        Scenario(
            "mix",
            lazy=0.15,
            malicious=0.05,
            ring=0.05,
            ring_votes="everything",
            ring_sleeper_rounds=8,
            sybils=200,
        ),
    )
}


@dataclass
class Simulation:
    """Everything one run produced: the crowd, its clips and votes, and the engine's history."""

    scenario: Scenario
    platform: Platform
    behaviour: np.ndarray  # per contributor
    founders: np.ndarray
    clip_author: np.ndarray
    clip_good: np.ndarray
    vote_clip: np.ndarray
    vote_voter: np.ndarray
    vote_valid: np.ndarray
    result: TrustResult
    valid_rounds: np.ndarray  # per clip: rounds at whose end it was valid
    trustee_history: np.ndarray  # rounds x contributors
    supported_history: np.ndarray  # rounds x contributors: last round's trustees who still support each other
    oracle_trust: np.ndarray  # rounds x contributors: trust with the founders' and honest people's votes counted
    engine_precision: np.ndarray  # per round, of the engine's valid set (nan while it is empty)
    engine_valid: np.ndarray  # per round
    inexact_rounds: list[int]  # 1-based rounds whose recompute ended off a fixed point (cycle rule or cap)
    cycle_rounds: list[int]  # 1-based rounds whose recompute was decided by the cycle rule
    capped_rounds: list[int]  # 1-based rounds whose recompute reached max_iterations
    round_lines: list[str]
    seconds: float = 0.0


def crowd_people(
    crowd: Crowd, scenario: Scenario, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Behaviour, vote accuracy, share of good clips and joining round (0-based) of every contributor."""
    lazy = round(scenario.lazy * crowd.contributors)
    malicious = round(scenario.malicious * crowd.contributors)
    ring = round(scenario.ring * crowd.contributors)
    honest = crowd.contributors - lazy - malicious - ring
    if honest < 0:
        raise ValueError(f"scenario {scenario.name!r} has more misbehaving contributors than contributors")
    ordinary = np.repeat(
        [Behaviour.HONEST, Behaviour.LAZY, Behaviour.MALICIOUS, Behaviour.RING], [honest, lazy, malicious, ring]
    )
    rng.shuffle(ordinary)
    behaviour = np.concatenate(
        [np.full(crowd.founders, Behaviour.FOUNDER), ordinary, np.full(scenario.sybils, Behaviour.SYBIL)]
    ).astype(np.int8)
    people = len(behaviour)
    a, b = crowd.honest_accuracy_beta
    accuracy = 0.70 + 0.29 * rng.beta(a, b, people)
    accuracy[behaviour == Behaviour.FOUNDER] = crowd.founder_accuracy
    good = rng.uniform(*crowd.honest_good, people)
    good[behaviour == Behaviour.FOUNDER] = 0.99
    joins = rng.integers(0, max(crowd.join_rounds, 1), people)
    joins[(behaviour == Behaviour.FOUNDER) | (behaviour == Behaviour.RING)] = 0
    joins[behaviour == Behaviour.SYBIL] = scenario.sybil_round - 1
    return behaviour, accuracy, good, joins


def votes_by(
    *,
    behaviour: int,
    accuracy: float,
    clip_good: np.ndarray,
    clip_by_ring: np.ndarray,
    ring_turned: bool,
    ring_votes: str,
    rng: np.random.Generator,
) -> np.ndarray:
    """The valid (True) or invalid votes one voter casts on the given clips."""
    honest = clip_good == (rng.random(len(clip_good)) < accuracy)
    if behaviour in (Behaviour.FOUNDER, Behaviour.HONEST) or (behaviour == Behaviour.RING and not ring_turned):
        return honest
    if behaviour in (Behaviour.LAZY, Behaviour.SYBIL):
        return np.ones(len(clip_good), dtype=bool)
    if behaviour == Behaviour.MALICIOUS:
        return np.zeros(len(clip_good), dtype=bool)
    return clip_by_ring | (ring_votes == "everything")


def clips_handed(
    *,
    voter: int,
    budget: int,
    pool: np.ndarray,
    is_open: np.ndarray,
    clip_author: np.ndarray,
    seen: set[int],
    rng: np.random.Generator,
) -> list[int]:
    """Up to ``budget`` clips drawn uniformly from ``pool`` that are open, not the voter's, not voted on."""
    chosen: list[int] = []
    # Cheap draws with replacement first; a full shuffle only if they run short (a small or exhausted pool).
    for draw in (pool[rng.integers(0, len(pool), 4 * budget + 16)] if len(pool) else pool, rng.permutation(pool)):
        for clip in draw.tolist():
            if len(chosen) == budget:
                return chosen
            if is_open[clip] and clip_author[clip] != voter and clip not in seen:
                chosen.append(clip)
                is_open[clip] = False  # not handed twice; the vote below reopens it if it is still pending
    return chosen


def clips_most_voted(
    *,
    voter: int,
    budget: int,
    pool: np.ndarray,
    is_open: np.ndarray,
    clip_author: np.ndarray,
    voted_row: np.ndarray,
    counted: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Up to ``budget`` clips of ``pool``, in the order the platform's validation queue hands them out.

    The queue hands one clip at a time, drawn uniformly among the eligible clips (open, not the voter's,
    not voted on by them: ``voted_row``) with the most counted votes. During one voter's turn only their own
    votes change counts and statuses, and a clip they vote on leaves their eligible set, so handing one at a
    time is the same as ordering the eligible clips by counted votes, most first, ties in a uniformly random
    order, and taking the first ``budget``: one pass over the pool instead of one per vote.
    """
    eligible = pool[is_open[pool] & (clip_author[pool] != voter) & ~voted_row[pool]]
    key = counted[eligible] + rng.random(len(eligible))  # the count, then a random tie-break below 1
    if len(eligible) > budget:
        top = np.argpartition(-key, budget - 1)[:budget]
        return eligible[top[np.argsort(-key[top])]]
    return eligible[np.argsort(-key)]


ASSIGNMENT_TEXT = {
    "most-voted": "most-voted, a random eligible pending clip among those with the most counted votes (the "
    "platform's validation queue)",
    "uniform": "uniform, a random eligible pending clip (the validation queue before it finished started clips first)",
}
ASSIGNMENTS = tuple(ASSIGNMENT_TEXT)


def simulate(
    *,
    crowd: Crowd,
    platform: Platform,
    scenario: Scenario,
    rounds: int,
    seed: int,
    assignment: str = "most-voted",
) -> Simulation:
    start = time.perf_counter()
    params = platform.params
    offer_max = params.offer_max_votes
    rng = np.random.default_rng(seed)
    behaviour, accuracy, good_share, joins = crowd_people(crowd, scenario, rng)
    people = len(behaviour)
    founders = behaviour == Behaviour.FOUNDER
    ring = behaviour == Behaviour.RING
    sybil = behaviour == Behaviour.SYBIL
    rate = np.where(founders, crowd.founder_clips_per_round, crowd.clips_per_round)
    rate[sybil] = 0.0  # sybils record once, on arrival
    cap = np.where(founders, crowd.founder_votes_per_round, crowd.votes_per_round)
    allowance = np.where(founders, platform.founder_allowance, 0)

    clip_author = np.zeros(0, dtype=np.int64)
    clip_good = np.zeros(0, dtype=bool)
    valid_rounds = np.zeros(0, dtype=np.int64)
    vote_clip = np.zeros(0, dtype=np.int64)
    vote_voter = np.zeros(0, dtype=np.int64)
    vote_valid = np.zeros(0, dtype=bool)
    voted: list[set[int]] = [set() for _ in range(people)]  # for ``uniform``
    voted_mask = np.zeros((people, 0), dtype=bool)  # for ``most-voted``: voter x clip, columns grown as needed
    submitted = np.zeros(people, dtype=np.int64)
    spent = np.zeros(people, dtype=np.int64)
    result: TrustResult | None = None
    trustee_history = np.zeros((rounds, people), dtype=bool)
    supported_history = np.zeros((rounds, people), dtype=bool)
    oracle_trust = np.zeros((rounds, people))
    oracle = founders | (behaviour == Behaviour.HONEST)
    engine_precision = np.full(rounds, np.nan)
    engine_valid = np.zeros(rounds, dtype=np.int64)
    inexact_rounds: list[int] = []
    cycle_rounds: list[int] = []
    capped_rounds: list[int] = []
    round_lines = []

    for index in range(rounds):
        ring_turned = index >= scenario.ring_sleeper_rounds
        # 1. Recording.
        recorded = np.where(joins <= index, rng.poisson(rate), 0)
        recorded[sybil & (joins == index)] = scenario.sybil_clips
        authors = np.repeat(np.arange(people), recorded)
        good = rng.random(len(authors)) < good_share[authors]
        good &= ~(sybil[authors] | (ring[authors] & ring_turned))
        submitted += recorded
        new = len(authors)
        clip_author = np.concatenate([clip_author, authors])
        clip_good = np.concatenate([clip_good, good])
        valid_rounds = np.concatenate([valid_rounds, np.zeros(new, dtype=np.int64)])
        if assignment == "most-voted" and voted_mask.shape[1] < len(clip_author):
            grown = np.zeros((people, max(2 * voted_mask.shape[1], len(clip_author))), dtype=bool)
            grown[:, : voted_mask.shape[1]] = voted_mask
            voted_mask = grown

        # 2. Voting by last round's trustees (the stored ones; the founders in round 1), on pending clips.
        if result is None:
            trustees = founders.copy()
            status = np.zeros(len(clip_author), dtype=np.int8)
            valid_counted = np.zeros(len(clip_author), dtype=np.int64)
            counted = np.zeros(len(clip_author), dtype=np.int64)
        else:
            trustees = result.trustees
            status = np.concatenate([result.clip_status, np.zeros(new, dtype=np.int8)])
            valid_counted = np.concatenate([result.clip_valid_counted, np.zeros(new, dtype=np.int64)])
            counted = np.concatenate([result.clip_counted, np.zeros(new, dtype=np.int64)])
        # The queue offers a pending clip only while it carries fewer than offer_max_votes counted votes.
        is_open = (status == ClipStatus.PENDING) & (counted < offer_max)
        pool = np.flatnonzero(is_open)
        clip_by_ring = ring[clip_author]
        round_clips, round_voters, round_valid = [], [], []
        for voter in rng.permutation(np.flatnonzero(trustees)).tolist():
            left = vote_quota(
                clips_submitted=int(submitted[voter]),
                votes_cast=int(spent[voter]),
                allowance=int(allowance[voter]),
                params=params,
            )
            budget = min(int(cap[voter]), left)
            if budget <= 0:
                continue
            if assignment == "most-voted":
                chosen = clips_most_voted(
                    voter=voter,
                    budget=budget,
                    pool=pool,
                    is_open=is_open,
                    clip_author=clip_author,
                    voted_row=voted_mask[voter],
                    counted=counted,
                    rng=rng,
                )
                voted_mask[voter, chosen] = True
            else:
                chosen = np.asarray(
                    clips_handed(
                        voter=voter,
                        budget=budget,
                        pool=pool,
                        is_open=is_open,
                        clip_author=clip_author,
                        seen=voted[voter],
                        rng=rng,
                    ),
                    dtype=np.int64,
                )
                voted[voter].update(chosen.tolist())
            valid = votes_by(
                behaviour=int(behaviour[voter]),
                accuracy=float(accuracy[voter]),
                clip_good=clip_good[chosen],
                clip_by_ring=clip_by_ring[chosen],
                ring_turned=ring_turned,
                ring_votes=scenario.ring_votes,
                rng=rng,
            )
            # The chosen clips are distinct and only this voter's votes touch them during the turn, so one
            # vectorised update (the engine's clip rule, elementwise clip_outcome) equals one vote at a time.
            counted[chosen] += 1
            valid_counted[chosen] += valid
            now, _ = clip_statuses(valid_counted[chosen], counted[chosen], params)
            is_open[chosen] = (now == ClipStatus.PENDING) & (counted[chosen] < offer_max)
            round_clips.append(chosen)
            round_voters.append(np.full(len(chosen), voter, dtype=np.int64))
            round_valid.append(valid)
            spent[voter] += len(chosen)
        round_votes = sum(len(chosen) for chosen in round_clips)
        vote_clip = np.concatenate([vote_clip, *round_clips])
        vote_voter = np.concatenate([vote_voter, *round_voters])
        vote_valid = np.concatenate([vote_valid, *round_valid])

        # 3. Full recompute on every vote so far, from the stored trustees, and the probes.
        votes = {"vote_clip": vote_clip, "vote_voter": vote_voter, "vote_valid": vote_valid, "clip_author": clip_author}
        result = trust_recompute(**votes, founders=founders, trustees_before=trustees, params=params)
        probe = trust_evaluate(**votes, founders=founders, counted=trustees, params=params)
        supported_history[index] = trustees & ~founders & (probe.contributor_trust > params.min_trust)
        oracle_trust[index] = trust_evaluate(
            **votes, founders=founders, counted=oracle, params=params
        ).contributor_trust

        valid_now = result.clip_status == ClipStatus.VALID
        valid_rounds += valid_now
        trustee_history[index] = result.trustees
        engine_valid[index] = int(valid_now.sum())
        if engine_valid[index]:
            engine_precision[index] = float(clip_good[valid_now].mean())
        if not result.exact:
            inexact_rounds.append(index + 1)
        if result.cycle_resolved:
            cycle_rounds.append(index + 1)
        if result.capped:
            capped_rounds.append(index + 1)
        kinds = ", ".join(
            f"{Behaviour(kind).name.lower()} {int((result.trustees & (behaviour == kind)).sum())}"
            for kind in Behaviour
            if (behaviour == kind).any()
        )
        flags = " cycle" if result.cycle_resolved else ""
        flags += " capped" if result.capped else ""
        flags += "" if result.exact else " inexact"
        round_lines.append(
            f"round {index + 1:>2}: {len(clip_author):>6} clips, {round_votes:>6} votes, "
            f"{engine_valid[index]:>6} valid ({int((valid_now & ~clip_good).sum())} bad); "
            f"trustees {kinds}; last round's {int((trustees & ~founders).sum())} non-founder trustees, "
            f"{int(supported_history[index].sum())} self-supporting [{result.iterations} evaluations{flags}]"
        )

    assert result is not None
    return Simulation(
        scenario=scenario,
        platform=platform,
        behaviour=behaviour,
        founders=founders,
        clip_author=clip_author,
        clip_good=clip_good,
        vote_clip=vote_clip,
        vote_voter=vote_voter,
        vote_valid=vote_valid,
        result=result,
        valid_rounds=valid_rounds,
        trustee_history=trustee_history,
        supported_history=supported_history,
        oracle_trust=oracle_trust,
        engine_precision=engine_precision,
        engine_valid=engine_valid,
        inexact_rounds=inexact_rounds,
        cycle_rounds=cycle_rounds,
        capped_rounds=capped_rounds,
        round_lines=round_lines,
        seconds=time.perf_counter() - start,
    )


# --- the methods, on the same votes ------------------------------------------------------------


def valid_by_engine(sim: Simulation) -> np.ndarray:
    return sim.result.clip_status == ClipStatus.VALID


def valid_by_common_voice(sim: Simulation) -> np.ndarray:
    """Common Voice: at least 2 up votes and more up than down, every vote counted."""
    clips = len(sim.clip_author)
    up = np.bincount(sim.vote_clip[sim.vote_valid], minlength=clips)
    down = np.bincount(sim.vote_clip[~sim.vote_valid], minlength=clips)
    return (up >= 2) & (up > down)


def common_voice_stopping(sim: Simulation) -> tuple[np.ndarray, int]:
    """Common Voice as it runs: each clip decided by its first 2-vote majority, in voting order.

    Returns the valid clips and the number of votes the rule used (votes after a decision are ignored).
    """
    clips = len(sim.clip_author)
    order = np.argsort(sim.vote_clip, kind="stable")  # by clip, then in the order the votes were cast
    clip = sim.vote_clip[order]
    up_vote = sim.vote_valid[order].astype(np.int64)
    starts = np.searchsorted(clip, np.arange(clips))
    before = np.concatenate([[0], np.cumsum(up_vote)])  # up votes before each sorted position
    position = np.arange(len(clip))
    up = np.cumsum(up_vote) - before[starts[clip]]
    down = position - starts[clip] + 1 - up
    decides = ((up >= 2) & (up > down)) | ((down >= 2) & (down > up))
    never = len(clip)
    first = np.full(clips, never)
    np.minimum.at(first, clip[decides], position[decides])
    decided = first < never
    valid = np.zeros(clips, dtype=bool)
    valid[decided] = up_vote[first[decided]].astype(bool)  # the deciding vote is on the winning side
    counts = np.bincount(clip, minlength=clips)
    used = np.where(decided, first - starts + 1, counts)
    return valid, int(used.sum())


def valid_by_dawid_skene(sim: Simulation) -> np.ndarray:
    """Dawid-Skene over every voter; valid where the posterior of valid exceeds 1/2."""
    import pandas as pd
    from crowdkit.aggregation import DawidSkene

    valid = np.zeros(len(sim.clip_author), dtype=bool)
    if not len(sim.vote_clip):
        return valid
    frame = pd.DataFrame({"task": sim.vote_clip, "worker": sim.vote_voter, "label": sim.vote_valid.astype(np.int8)})
    probas = DawidSkene().fit(frame).probas_
    if 1 in probas.columns:  # absent when nobody ever voted valid
        valid[probas.index.to_numpy()] = probas[1].to_numpy() > 0.5
    return valid


ENGINE = "trust engine"


DAWID_SKENE = "Dawid-Skene"


def crowd_kit() -> str | None:
    """crowd-kit's version, or None when it is not installed (the Dawid-Skene row is then left out)."""
    try:
        return version("crowd-kit")
    except PackageNotFoundError:
        return None


def method_results(sim: Simulation) -> dict[str, tuple[np.ndarray, int]]:
    """Each method's valid clips and the votes it used, all on the same votes."""
    votes = len(sim.vote_clip)
    methods = {
        ENGINE: (valid_by_engine(sim), votes),
        "Common Voice": (valid_by_common_voice(sim), votes),
        "Common Voice, stopping": common_voice_stopping(sim),
    }
    if crowd_kit() is not None:
        methods[DAWID_SKENE] = (valid_by_dawid_skene(sim), votes)
    return methods


@dataclass(frozen=True)
class Score:
    valid: int
    precision: float  # nan when nothing is valid
    recall: float  # of every good clip recorded
    votes_per_valid: float  # votes the method used (all cast, by trustees of the moment) per valid clip
    bad_valid: int
    bad_share: float  # of every bad clip recorded
    bad_up_by: dict[str, float]  # who cast the valid votes on the bad clips this method accepts


def score(sim: Simulation, valid: np.ndarray, votes_used: int) -> Score:
    count = int(valid.sum())
    bad = valid & ~sim.clip_good
    hits = count - int(bad.sum())
    up_on_bad = bad[sim.vote_clip] & sim.vote_valid
    voters = sim.behaviour[sim.vote_voter[up_on_bad]]
    bad_up_by = {Behaviour(kind).name.lower(): float((voters == kind).mean()) for kind in np.unique(voters).tolist()}
    return Score(
        valid=count,
        precision=hits / count if count else float("nan"),
        recall=hits / max(int(sim.clip_good.sum()), 1),
        votes_per_valid=votes_used / count if count else float("inf"),
        bad_valid=int(bad.sum()),
        bad_share=int(bad.sum()) / max(int((~sim.clip_good).sum()), 1),
        bad_up_by=bad_up_by,
    )


# --- the report --------------------------------------------------------------------------------------


def recompute_end(sim: Simulation, round_number: int) -> str:
    """How the recompute of a 1-based round ended: "fixed point", "cycle rule" or "capped"."""
    if round_number in sim.capped_rounds:
        return "capped"
    return "cycle rule" if round_number in sim.cycle_rounds else "fixed point"


def collapse_rounds(sim: Simulation) -> list[int]:
    """1-based rounds in which the non-founder trustees fell by more than half from the previous round."""
    held = sim.trustee_history[:, ~sim.founders].sum(axis=1)
    return [index + 1 for index in range(1, len(held)) if 2 * held[index] < held[index - 1]]


def ring_timing(sim: Simulation, min_trust: float) -> str:
    ring = sim.behaviour == Behaviour.RING
    if not ring.any():
        return ""
    turn = sim.scenario.ring_sleeper_rounds + 1  # 1-based round from which the ring records garbage
    history = sim.trustee_history[:, ring]
    ever = history.any(axis=0)
    parts = []
    if ever.any():
        first = history.argmax(axis=0)[ever] + 1
        parts.append(
            f"{int(ever.sum())} of {int(ring.sum())} members were trustees at some point, first in round "
            f"{int(first.min())} (median {float(np.median(first)):.0f}), for "
            f"{float(history.sum(axis=0)[ever].mean()):.1f} rounds on average"
        )
    else:
        parts.append(f"none of its {int(ring.sum())} members was ever a trustee")
    rounds = len(sim.trustee_history)
    parts.append(f"it turned in round {turn}" if turn <= rounds else f"it would turn in round {turn}, after the run")
    if 2 <= turn <= rounds:
        # Who held the status when the ring turned, and how many rounds after the turn they lost it.
        held = history[turn - 2]
        collapses = set(collapse_rounds(sim))
        losses, in_collapse = [], 0
        for column in np.flatnonzero(held):
            lost = np.flatnonzero(~history[turn - 1 :, column])
            if len(lost):
                losses.append(int(lost[0]) + turn)  # the 1-based round in which they lost it
                in_collapse += int(lost[0]) + turn in collapses
        if held.any():
            parts.append(
                f"{int(held.sum())} were trustees then; the engine took the status from {len(losses)} of them "
                + (
                    f"in round {float(np.median(losses)):.0f} (median; last {max(losses)}), "
                    f"{in_collapse} of them in a collapse round"
                    if losses
                    else ""
                )
            )
        # The same, had exactly the founders and the honest crowd counted: how fast honest voting exposes them.
        trust = sim.oracle_trust[:, ring]
        above = trust[turn - 2] > min_trust
        falls = [np.flatnonzero(trust[turn - 1 :, column] <= min_trust) for column in np.flatnonzero(above)]
        fallen = [int(f[0]) + turn for f in falls if len(f)]  # 1-based rounds
        if above.any():
            parts.append(
                f"with the founders and the honest crowd counting, {int(above.sum())} had trust above {min_trust:g} "
                f"at the turn and {len(fallen)} fell to {min_trust:g} or below"
                + (f", in round {float(np.median(fallen)):.0f} (median; last {max(fallen)})" if fallen else "")
            )
    parts.append(f"{int(history[-1].sum())} are trustees at the end")
    return "ring: " + "; ".join(parts)


def garbage_survival(sim: Simulation) -> str:
    bad_ever = (sim.valid_rounds > 0) & ~sim.clip_good
    if not bad_ever.any():
        return "garbage: no bad clip was valid at the end of any round"
    rounds = sim.valid_rounds[bad_ever]
    end = int((bad_ever & (sim.result.clip_status == ClipStatus.VALID)).sum())
    return (
        f"garbage: {int(bad_ever.sum())} bad clips were valid at the end of some round, for {float(rounds.mean()):.1f} "
        f"rounds on average (max {int(rounds.max())}); {end} still valid at the end"
    )


def engine_history(sim: Simulation) -> list[str]:
    held = sim.trustee_history[:, ~sim.founders].sum(axis=1)
    precision = sim.engine_precision
    if not np.isfinite(precision).any():
        worst = "n/a (never any valid clip)"
    elif np.nanmin(precision) == 1.0:
        worst = "100% (no bad clip was ever valid)"
    else:
        worst = f"{format_percent(float(np.nanmin(precision)))} (round {int(np.nanargmin(precision)) + 1})"
    lines = [
        f"non-founder trustees: peak {int(held.max())} (round {int(held.argmax()) + 1}), "
        f"mean {float(held.mean()):.0f}, end {int(held[-1])}; valid clips: peak {int(sim.engine_valid.max())} "
        f"(round {int(sim.engine_valid.argmax()) + 1}), end {int(sim.engine_valid[-1])}",
        f"engine precision, worst at the end of any round: {worst}",
    ]
    collapses = collapse_rounds(sim)
    if collapses:
        supported = sim.supported_history.sum(axis=1)
        shown = [
            f"{r}: {int(held[r - 2])} -> {int(held[r - 1])} ({int(supported[r - 1])}; {recompute_end(sim, r)})"
            for r in collapses[:8]
        ]
        more = f" and {len(collapses) - 8} more" if len(collapses) > 8 else ""
        lines.append(
            "collapses, round: non-founder trustees before -> after (how many of those before would still "
            f"support each other on the same votes; how the recompute ended): {'; '.join(shown)}{more}"
        )
    if sim.inexact_rounds:
        lines.append(
            f"recomputes that ended off a fixed point: {len(sim.inexact_rounds)} ({len(sim.cycle_rounds)} by the "
            f"cycle rule, {len(sim.capped_rounds)} capped), rounds "
            + ", ".join(map(str, sim.inexact_rounds[:10]))
            + (" ..." if len(sim.inexact_rounds) > 10 else "")
        )
    cap = sim.platform.params.offer_max_votes
    not_offered = (sim.result.clip_status == ClipStatus.PENDING) & (sim.result.clip_counted >= cap)
    if not_offered.any():
        lines.append(
            f"pending clips no longer offered at the end ({cap} counted votes or more): {int(not_offered.sum())} "
            f"({int((not_offered & ~sim.clip_good).sum())} bad), holding "
            f"{float(not_offered[sim.vote_clip].mean()):.1%} of the votes"
        )
    if len(sim.vote_clip):
        status = sim.result.clip_status[sim.vote_clip]
        spent = ", ".join(f"{s.name.lower()} {float((status == s).mean()):.0%}" for s in ClipStatus)
        voters = sim.behaviour[sim.vote_voter]
        cast = ", ".join(
            f"{Behaviour(kind).name.lower()} {float((voters == kind).mean()):.1%}"
            for kind in Behaviour
            if (sim.behaviour == kind).any()
        )
        lines.append(f"votes cast, by behaviour of the voter: {cast}")
        lines.append(f"votes, by the final status of their clip: {spent}")
    valid = sim.result.clip_status == ClipStatus.VALID
    if valid.any():
        cast_on = float(np.bincount(sim.vote_clip, minlength=len(valid))[valid].mean())
        counted = float(sim.result.clip_counted[valid].mean())
        lines.append(
            f"a valid clip carries {cast_on:.1f} votes on average, {counted:.1f} of them counted (cast by voters "
            "who are trustees at the end)"
        )
    return lines


def format_percent(value: float) -> str:
    """Two decimals, more where that would round a value below 1 up to 100.00%."""
    if np.isnan(value):
        return "n/a"
    digits = 2
    while value < 1 and f"{value:.{digits}%}" == f"{1:.{digits}%}" and digits < 6:
        digits += 1
    return f"{value:.{digits}%}"


def culprits(item: Score) -> str:
    top = sorted(item.bad_up_by.items(), key=lambda pair: -pair[1])[:3]
    return ", ".join(f"{kind} {share:.0%}" for kind, share in top)


def finite(value: float) -> float | None:
    """A number for JSON: None for nan and infinities."""
    return value if math.isfinite(value) else None


def target_figures(sim: Simulation, scores: dict[str, Score]) -> dict:
    """The issue's target figures for one run, with pass/fail per target (None: no target here); JSON-ready."""
    precision = sim.engine_precision
    decided = np.isfinite(precision)
    min_precision = float(np.nanmin(precision)) if decided.any() else float("nan")
    valid = sim.result.clip_status == ClipStatus.VALID
    good = int(sim.clip_good.sum())
    recall = int((valid & sim.clip_good).sum()) / max(good, 1)
    votes_on = np.bincount(sim.vote_clip, minlength=len(valid))
    votes_per_valid = float(votes_on[valid].mean()) if valid.any() else float("inf")
    collapses = collapse_rounds(sim)
    held = sim.trustee_history[:, ~sim.founders].sum(axis=1)
    supported = sim.supported_history.sum(axis=1)
    ever = sim.trustee_history.any(axis=0)
    ring = sim.behaviour == Behaviour.RING
    sybil = sim.behaviour == Behaviour.SYBIL
    params = sim.platform.params
    not_offered = (sim.result.clip_status == ClipStatus.PENDING) & (sim.result.clip_counted >= params.offer_max_votes)
    passed = {
        # Vacuously met while nothing is valid; the recall target catches an engine that validates nothing.
        "precision": not decided.any() or min_precision >= PRECISION_TARGET,
        "recall": recall >= sim.scenario.recall_target,
        "votes_per_valid_clip": votes_per_valid <= VOTES_PER_VALID_TARGET,
        "collapses": not collapses if sim.scenario.name in NO_COLLAPSE_SCENARIOS else None,
        "ring": int((ever & ring).sum()) == 0,
        "sybil": int((ever & sybil).sum()) == 0,
    }
    figures = {
        "quota_votes_per_clip": params.quota_votes_per_clip,
        "founders": int(sim.founders.sum()),
        "founder_allowance": sim.platform.founder_allowance,
        "accounts": len(sim.behaviour),  # founders, ordinary contributors and sybils
        "rounds": len(sim.trustee_history),
        "clips": len(sim.clip_author),
        "good_clips": good,
        "votes": len(sim.vote_clip),
        "valid_clips": int(valid.sum()),
        "min_precision": finite(min_precision),
        "min_precision_round": int(np.nanargmin(precision)) + 1 if decided.any() else None,
        "final_precision": finite(scores[ENGINE].precision),
        "recall": recall,
        "recall_target": sim.scenario.recall_target,
        "votes_per_valid_clip": finite(votes_per_valid),
        "collapses": collapses,
        "collapse_trustees": [  # non-founder trustees before and after, and how many before still supported each other
            {
                "round": r,
                "before": int(held[r - 2]),
                "after": int(held[r - 1]),
                "still_supported": int(supported[r - 1]),
                "recompute": recompute_end(sim, r),
            }
            for r in collapses
        ],
        "ring_ever_trustees": int((ever & ring).sum()),
        "ring_members": int(ring.sum()),
        "sybil_ever_trustees": int((ever & sybil).sum()),
        "sybils": int(sybil.sum()),
        "non_founder_trustees_end": int((sim.result.trustees & ~sim.founders).sum()),
        "inexact_rounds": sim.inexact_rounds,
        "cycle_rounds": sim.cycle_rounds,
        "capped_rounds": sim.capped_rounds,
        "offer_max_votes": params.offer_max_votes,
        # Pending at the end with offer_max_votes counted votes or more: the queue no longer offers them.
        "pending_not_offered": int(not_offered.sum()),
        "pending_not_offered_bad": int((not_offered & ~sim.clip_good).sum()),
        "votes_on_not_offered_share": float(not_offered[sim.vote_clip].mean()) if len(sim.vote_clip) else 0.0,
        "pass": passed,
        "all_pass": all(value is not False for value in passed.values()),
        "peers": {
            method: {
                "valid_clips": item.valid,
                "precision": finite(item.precision),
                "recall": item.recall,
                "votes_per_valid_clip": finite(item.votes_per_valid),
            }
            for method, item in scores.items()
            if method != ENGINE
        },
        "seconds": round(sim.seconds, 2),
    }
    return figures


def mark(passed: bool | None) -> str:
    return "" if passed is None else (" ✓" if passed else " ✗")


PEER_SHORT = {"Common Voice": "CV", "Common Voice, stopping": "CV stopping", DAWID_SKENE: "DS"}


def summary_table(figures: dict[str, dict[str, dict]]) -> list[str]:
    """One row per preset and scenario: the targets with pass (✓) or fail (✗), then the peers on the same votes."""
    peers = list(
        dict.fromkeys(peer for by_scenario in figures.values() for f in by_scenario.values() for peer in f["peers"])
    )
    header = (
        "| preset | scenario | min precision | recall (target) | votes / valid clip | collapses | ring ever trustees "
        "| sybils ever trustees | targets met | off fixed point (cycle · capped) | "
        + " | ".join(f"{PEER_SHORT.get(peer, peer)} precision · recall" for peer in peers)
        + " |"
    )
    lines = [header, "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | --- | ---: |" + " ---: |" * len(peers)]
    for preset, by_scenario in figures.items():
        for scenario, f in by_scenario.items():
            passed = f["pass"]
            precision = "n/a" if f["min_precision"] is None else format_percent(f["min_precision"])
            votes = "n/a" if f["votes_per_valid_clip"] is None else f"{f['votes_per_valid_clip']:.2f}"
            collapses = ", ".join(f"{c['round']}: {c['before']}→{c['after']}" for c in f["collapse_trustees"]) or "none"
            ring = f"{f['ring_ever_trustees']}/{f['ring_members']}" if f["ring_members"] else "-"
            sybil = f"{f['sybil_ever_trustees']}/{f['sybils']}" if f["sybils"] else "-"
            judged = [name for name, value in passed.items() if value is not None]
            missed = [name for name in judged if not passed[name]]
            verdict = f"{len(judged) - len(missed)}/{len(judged)}" + (
                f" (missed: {', '.join(missed)})" if missed else ""
            )
            cells = [
                f"{preset} (quota {f['quota_votes_per_clip']:g})",
                scenario,
                precision + mark(passed["precision"]),
                f"{f['recall']:.1%} ({f['recall_target']:.0%})" + mark(passed["recall"]),
                votes + mark(passed["votes_per_valid_clip"]),
                collapses + mark(passed["collapses"]),
                ring + mark(passed["ring"]),
                sybil + mark(passed["sybil"]),
                verdict,
                f"{len(f['inexact_rounds'])} ({len(f['cycle_rounds'])} · {len(f['capped_rounds'])})",
            ]
            for peer in peers:
                item = f["peers"].get(peer)
                if item is None:
                    cells.append("")
                    continue
                shown = "n/a" if item["precision"] is None else format_percent(item["precision"])
                cells.append(f"{shown} · {item['recall']:.1%}")
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def scenario_report(name: str, runs: list[tuple[Simulation, dict[str, Score]]], min_trust: float) -> list[str]:
    lines = [f"### {name}: {runs[0][0].scenario.describe()}", ""]
    lines.append(
        "| preset | method | valid clips | precision | recall | votes used per valid clip | garbage valid at end |"
    )
    lines.append("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for sim, scores in runs:
        for method, item in scores.items():
            lines.append(
                f"| {sim.platform.name} | {method} | {item.valid} | {format_percent(item.precision)} | "
                f"{item.recall:.2%} | {item.votes_per_valid:.1f} | {item.bad_valid} ({item.bad_share:.1%} of bad) |"
            )
    lines.append("")
    for sim, _ in runs:
        trustees = sim.result.trustees
        by_kind = ", ".join(
            f"{Behaviour(kind).name.lower()} {int((trustees & (sim.behaviour == kind)).sum())}"
            f"/{int((sim.behaviour == kind).sum())}"
            for kind in Behaviour
            if (sim.behaviour == kind).any()
        )
        statuses = ", ".join(f"{s.name.lower()} {int((sim.result.clip_status == s).sum())}" for s in ClipStatus)
        details = [
            f"trustees at the end by behaviour: {by_kind}",
            f"engine statuses at the end: {statuses}",
            *engine_history(sim),
            garbage_survival(sim),
        ]
        timing = ring_timing(sim, min_trust)
        if timing:
            details.append(timing)
        lines.append(
            f"- {sim.platform.name}: {len(sim.behaviour)} contributors, {len(sim.clip_author)} clips "
            f"({int((~sim.clip_good).sum())} bad), {len(sim.vote_clip)} votes, simulated in {sim.seconds:.1f} s"
        )
        lines.extend(f"  - {detail}" for detail in details)
    return lines


def observations(results: dict[str, list[tuple[Simulation, dict[str, Score]]]], target: float) -> list[str]:
    """Sentences computed from every scenario's numbers."""
    notes = []
    runs = [run for scenario_runs in results.values() for run in scenario_runs]
    for method in runs[0][1]:
        scored = [(sim, scores[method]) for sim, scores in runs if scores[method].valid]
        broken = [(sim, item) for sim, item in scored if item.precision < target]
        if not scored:
            notes.append(f"{method}: validates nothing anywhere.")
            continue
        low_sim, low = min(scored, key=lambda pair: pair[1].precision)
        if broken:
            listed = "; ".join(
                f"{sim.scenario.name}/{sim.platform.name} {format_percent(item.precision)} "
                f"({item.bad_valid} bad of {item.valid}; valid votes on them from {culprits(item)})"
                for sim, item in broken
            )
            notes.append(
                f"{method}: below {target:.1%} precision at the end in {len(broken)} of {len(scored)} runs: {listed}."
            )
        else:
            where = f"{low_sim.scenario.name}/{low_sim.platform.name}"
            who = f"; valid votes on its bad clips from {culprits(low)}" if low.bad_valid else ""
            notes.append(
                f"{method}: never below {target:.1%} precision at the end; lowest {format_percent(low.precision)} in "
                f"{where} ({low.bad_valid} bad of {low.valid}{who})."
            )
    for preset in dict.fromkeys(sim.platform.name for sim, _ in runs):
        chosen = [(sim, scores) for sim, scores in runs if sim.platform.name == preset]
        recall = {method: float(np.mean([scores[method].recall for _, scores in chosen])) for method in chosen[0][1]}
        recall_text = ", ".join(f"{method} {value:.1%}" for method, value in recall.items())
        held_peak = max(int(sim.trustee_history[:, ~sim.founders].sum(axis=1).max()) for sim, _ in chosen)
        held_end = [int(sim.trustee_history[-1, ~sim.founders].sum()) for sim, _ in chosen]
        never = float(
            np.mean([(np.bincount(s.vote_clip, minlength=len(s.clip_author)) == 0).mean() for s, _ in chosen])
        )
        bad_kinds = [Behaviour.LAZY, Behaviour.MALICIOUS, Behaviour.RING, Behaviour.SYBIL]
        accounts = sum(int(np.isin(sim.behaviour, bad_kinds).sum()) for sim, _ in chosen)
        all_accounts = sum(len(sim.behaviour) for sim, _ in chosen)
        bad_votes = sum(int(np.isin(sim.behaviour[sim.vote_voter], bad_kinds).sum()) for sim, _ in chosen)
        all_votes = max(sum(len(sim.vote_clip) for sim, _ in chosen), 1)
        collapses = [(sim, r) for sim, _ in chosen for r in collapse_rounds(sim)]
        self_supporting = sum(
            1
            for sim, r in collapses
            if sim.supported_history[r - 1].sum() >= 0.9 * sim.trustee_history[r - 2, ~sim.founders].sum()
        )
        inexact = sum(len(sim.inexact_rounds) for sim, _ in chosen)
        cycles = sum(len(sim.cycle_rounds) for sim, _ in chosen)
        capped = sum(len(sim.capped_rounds) for sim, _ in chosen)
        text = (
            f"Preset {preset} (quota {chosen[0][0].platform.params.quota_votes_per_clip:g}, founders' allowance "
            f"{chosen[0][0].platform.founder_allowance}): mean recall over scenarios {recall_text}; "
            f"{never:.0%} of clips never got a vote; non-founder trustees peak {held_peak}, at the end "
            f"{min(held_end)}-{max(held_end)}; lazy, malicious, ring and sybil accounts are "
            f"{accounts / all_accounts:.0%} of all accounts and cast {bad_votes / all_votes:.1%} of the votes (the "
            f"trust gate decides who votes, so the Common Voice and Dawid-Skene rows see these filtered votes); "
            f"{inexact} recomputes of {sum(len(sim.trustee_history) for sim, _ in chosen)} ended off a fixed point "
            f"({cycles} by the cycle rule, {capped} capped)"
        )
        if collapses:
            in_capped = sum(1 for sim, r in collapses if r in sim.capped_rounds)
            text += (
                f"; the non-founder trustees fell by more than half {len(collapses)} times ({in_capped} in a capped "
                f"recompute), and in {self_supporting} of them 90% or more of last round's trustees would still have "
                "supported each other on the same votes"
            )
        notes.append(text + ".")
    return notes


def parse_quotas(parser: argparse.ArgumentParser, items: list[str]) -> dict[str, float]:
    """``--quota`` items, ``Q`` (key "": every preset) or ``PRESET=Q``, as a dict; a parser error if malformed."""
    quotas: dict[str, float] = {}
    for item in items:
        preset, _, text = item.rpartition("=")
        if preset and preset not in PRESETS:
            parser.error(f"--quota {item}: the preset must be one of {', '.join(PRESETS)}")
        try:
            quota = float(text)
        except ValueError:
            quota = float("nan")
        if not (math.isfinite(quota) and quota >= 0):
            parser.error(f"--quota {item}: the quota must be a finite number of at least 0")
        quotas[preset] = quota
    return quotas


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--presets", nargs="+", choices=PRESETS, default=list(PRESETS), help="engine presets to run")
    parser.add_argument(
        "--quota",
        nargs="+",
        metavar="[PRESET=]Q",
        help="votes per clip submitted, in place of the preset's default (for tuning): Q for every preset run, "
        "PRESET=Q for one (--quota wilson=13)",
    )
    parser.add_argument(
        "--offer-max-votes",
        type=int,
        help="counted votes past which the validation queue stops offering a pending clip, in place of the "
        f"engine's default ({TrustParams().offer_max_votes})",
    )
    parser.add_argument("--founders", type=int, default=Crowd.founders)
    parser.add_argument(
        "--founder-allowance", type=int, default=0, help="votes an operator grants each founder on top of the quota"
    )
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS), help="repeatable; default all")
    parser.add_argument("--contributors", type=int, default=Crowd.contributors)
    parser.add_argument("--join-rounds", type=int, default=Crowd.join_rounds)
    parser.add_argument(
        "--assignment",
        choices=ASSIGNMENTS,
        default="most-voted",
        help="how the validation queue picks a trustee's next clip: most counted votes first (the platform's), "
        "or uniformly at random (the queue before)",
    )
    parser.add_argument("--per-round", action="store_true", help="also print one line per round")
    parser.add_argument("--details", action="store_true", help="also print every scenario's detailed report")
    parser.add_argument(
        "--target", type=float, default=PRECISION_TARGET, help="precision bar for the observations' sentences"
    )
    parser.add_argument("--json", type=Path, help="write the target figures here, keyed by preset then scenario")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.contributors < 1:
        parser.error("--rounds and --contributors must be at least 1")
    if args.founders < 0 or args.founder_allowance < 0:
        parser.error("--founders and --founder-allowance must not be negative")
    quotas = parse_quotas(parser, args.quota or [])
    if args.offer_max_votes is not None and args.offer_max_votes < 1:
        parser.error("--offer-max-votes must be at least 1")

    crowd = replace(Crowd(), contributors=args.contributors, founders=args.founders, join_rounds=args.join_rounds)
    platforms = []
    for preset in args.presets:
        params = TrustParams(preset=preset, quota_votes_per_clip=quotas.get(preset, quotas.get("")))
        if args.offer_max_votes is not None:
            params = replace(params, offer_max_votes=args.offer_max_votes)
        platforms.append(Platform(params, args.founder_allowance))
    start = time.perf_counter()
    kit = crowd_kit()
    peer = f"crowd-kit {kit} DawidSkene() defaults" if kit else "crowd-kit not installed (no Dawid-Skene row)"
    header = [
        "# Trust engine simulation",
        "",
        f"- seed {args.seed}, {args.rounds} rounds",
        f"- crowd: {crowd}",
        *(f"- {item.describe()}; engine: {item.params}" for item in platforms),
        f"- assignment: {ASSIGNMENT_TEXT[args.assignment]}",
        f"- Python {platform.python_version()}, NumPy {np.__version__}, pandas {version('pandas')}, {peer}",
        "",
    ]
    print("\n".join(header), flush=True)
    results: dict[str, list[tuple[Simulation, dict[str, Score]]]] = {}
    figures: dict[str, dict[str, dict]] = {item.name: {} for item in platforms}
    for name in args.scenario or list(SCENARIOS):
        runs = []
        for item in platforms:
            sim = simulate(
                crowd=crowd,
                platform=item,
                scenario=SCENARIOS[name],
                rounds=args.rounds,
                seed=args.seed,
                assignment=args.assignment,
            )
            scores = {method: score(sim, valid, used) for method, (valid, used) in method_results(sim).items()}
            runs.append((sim, scores))
            figures[item.name][name] = target_figures(sim, scores)
            print(
                f"{name} / {item.name}: simulated in {sim.seconds:.1f} s, {len(sim.vote_clip)} votes",
                file=sys.stderr,
                flush=True,
            )
        results[name] = runs
    print("## Targets")
    print()
    print(
        f"Targets: min precision over the rounds >= {PRECISION_TARGET:.1%}; recall at the end >= the scenario's "
        f"target; votes per valid clip <= {VOTES_PER_VALID_TARGET:g}; no collapse in "
        f"{', '.join(NO_COLLAPSE_SCENARIOS)}; no ring member or sybil ever a trustee. ✓ met, ✗ missed; "
        "collapses are given as round: non-founder trustees before→after."
    )
    print()
    print("\n".join(summary_table(figures)))
    print()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"target figures written to {args.json}")
        print()
    print("## Scenarios")
    print()
    for name, runs in results.items():
        lines = scenario_report(name, runs, platforms[0].params.min_trust)
        if not args.details:
            lines = lines[: lines.index("", 2)]  # the heading and the table only
        print("\n".join(lines))
        print()
        if args.per_round:
            for sim, _ in runs:
                print(f"per round, {name}, {sim.platform.name}:")
                print("\n".join(sim.round_lines))
                print()
    print("## Observations")
    print()
    for note in observations(results, args.target):
        print(f"- {note}")
    print()
    print(f"total time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
