"""The trust engine: Wilson lower bounds, clip statuses, contributor trust, and the fixed point joining them.

Plain NumPy, no Django: the trust services, the management commands, the simulation and the benchmarks call
the same functions. Everything here is a pure function of its inputs.

The rules (DESIGN.md, "The trust engine")
-----------------------------------------
* **Wilson lower bound.** For ``n`` counted votes of which ``v`` say valid, ``p = v / n``:
  ``score = (p + z²/(2n) - z·sqrt((p(1-p) + z²/(4n)) / n)) / (1 + z²/n)``, and 0 when ``n = 0``.
  At ``z = 1.96`` and ``min_trust = 0.6`` a clip needs at least 6 unanimous votes: n = 5 gives 0.566,
  n = 6 gives 0.610.
* **Counted votes** are the votes of contributors who are trustees *now*. A trustee who loses the status
  stops counting on every clip at once; the votes are kept and count again if the status returns.
* **Clip status**, first rule that holds: *valid* if ``score > min_trust`` and ``n >= min_votes``;
  *invalid* if the bound taken on the invalid votes (``n - v`` of ``n``) ``> min_trust``; *discarded* if
  ``n >= discard_min_votes`` and ``score < discard_max_score``; otherwise *pending*. An imported clip
  carries a fixed status that no vote changes (its score and counts are still reported).
* **Contributor trust** depends on the preset (``TrustParams.preset``):

  - ``wilson`` (the default): the Wilson lower bound of the contributor's valid clips among their
    *decided* clips (valid + invalid + discarded; a discarded clip counts as not valid). Clips under
    review do not dilute it, and trust needs evidence: six unanimous valid clips make a trustee exactly
    as six unanimous votes make a valid clip, and one invalid clip in seven keeps you out (6 of 7: 0.487)
    until the valid ones outweigh it (11 of 12: 0.646).
  - ``proposal``: the original proposal to the letter, ``max(0, (valid - invalid) / total)`` over every
    clip submitted, pending ones included (so recording a new set lowers a trustee's trust until it is
    validated).

  Founding trustees have trust 1 under both.
* **Trustee**: founding, or ``trust > min_trust``.
* **Quota** (enforced by the vote service, computed by :func:`vote_quota`): a trustee casts at most
  ``quota_votes_per_clip`` votes per clip they submitted, plus an allowance an operator may give (founders,
  who seed the crowd before anyone else has recorded). The proposal's rule is 1 vote per clip; at that
  rate a clip, which needs six trustee votes, is validated only if every trustee records six clips for
  each one of theirs validated, and the crowd starves (benchmarks/trust_sim.py: recall 2 %). The ``wilson``
  preset's default of 13 is the smallest the simulation found that lets validation keep pace with
  recording in every scenario, 10 % of malicious trustees voting down everything included (a valid clip
  costs 6 votes when unanimous, 11 with one dissent, 14 with two; docs/benchmarks.md).

The fixed point: keep who still earns it, admit only what is grounded
--------------------------------------------------------------------
Statuses depend on who is a trustee, trust on statuses, and trustees on trust. Write ``F(T)`` for the
trustee set that follows from counting the votes of the set ``T``: evaluate the statuses with ``T``, then
trust, then ``founders | {trust > min_trust}``. Call ``T`` *sound* when ``T ⊆ F(T)``: every member earns
the status from the votes that ``T`` itself counts. A *fixed point* is ``T = F(T)``: sound, and nobody
outside earns the status either.

:func:`trust_recompute` starts from the trustees before (``trustees_before``, the set the database holds;
the founders alone for a crowd's first recompute or an operator's ``--from-founders``) and alternates:

1. **Descent.** ``T ← T ∩ F(T)`` until ``T`` is sound. It drops exactly the trustees whose status the
   counted votes no longer support, then those who leaned on them, and so on. It shrinks strictly at every
   step and never drops a founder, so it ends within ``|T \\ founders| + 1`` evaluations.
2. **Ascent.** If ``F(T) = T`` the result is a fixed point: stop. Otherwise the contributors in
   ``F(T) \\ T`` earned the status from the votes of a sound set that is already trusted: admit them,
   ``T ← F(T)``, and descend again (their votes may cost someone else the status).

Why not climb from the founders alone, as the first version did. In a crowd that has grown past its
founders, a clip is typically validated by two founders and four other trustees; counted from the founders
alone almost nothing is valid, so the climb stops at once and every non-founder loses the status in one
recompute, though every one of them still earned it from the votes counted (the simulation saw 400 → 0).
Starting from the trustees before, a recompute drops nobody who still earns the status.

Why this admits no ring. A contributor enters only in an ascent, and only by earning the status from the
votes of a set that was sound and trusted already; by induction from the founders (the first state), every
trustee was admitted on votes of trustees grounded in the founders' votes. A ring whose members vote each
other's clips valid never counts until a member is admitted on other trustees' votes, and then only that
member's votes count. Removing a founder takes their votes away from everyone at once (``founders_set``
recomputes); ``--from-founders`` re-grounds the whole set from the remaining founders when an operator
wants a clean slate.

The result depends on the trustees before, on purpose ("trustees who still earn their status keep it"),
so *the* full recompute is ``trust_recompute(votes, founders, trustees_before = the stored trustees)``:
the database must equal that, and ``trust_recompute --check`` compares the two. From a fixed point the
recompute is idempotent (one evaluation: the descent drops nobody, the ascent admits nobody).

**Cycles and the cap.** ``F`` is not monotone (a new trustee's *invalid* votes can pull a clip back to
pending), so descent and ascent can alternate through the same sound sets for ever. Every sound set
reached is remembered (as packed bits, 1/8 byte per contributor); at the first repeat the result is the
*largest* sound set on the cycle (most trustees; ties broken by the packed bits, so the choice does not
depend on where the cycle was entered) (``cycle_resolved``). Every set on the cycle is sound and grounded
(each was reached by descents and ascents from the trustees before), so any of them is safe; the largest
keeps the most trustees who still earn the status. The first version took the intersection of the cycle,
which is smaller than every set on it: the simulation saw a cycle of sets of 9 to 99 trustees end at 8.
The rule also makes the recompute idempotent on a cycle: started from the chosen set, it walks the same
cycle and chooses it again. Every evaluation counts towards ``max_iterations``, checked at each ascent;
past it the largest sound set reached so far is kept, by the same choice (``capped``; a descent in
progress is always finished, as it is bounded; the simulation saw a crowd oscillate for 218 evaluations
before its cycle closed, and keeping whatever set the cap fell on then turned 133 trustees into 58).
Either way the result is *sound*, every status is computed from exactly the reported trustees'
votes, and what may be lost is completeness: a contributor can end with ``trust > min_trust`` yet not be
a trustee (``exact`` is false). Wrongly admitting a trustee lets their votes validate clips that enter a
release; wrongly holding one back only delays validation, so the error goes that way.

Defaults and why
----------------
* ``z = 1.96``, ``min_trust = 0.6``: the proposal's. Two-sided 95 % Wilson interval.
* ``min_votes = 1``: no extra floor. At the default ``z`` the bound itself already needs 6 unanimous
  votes, so a larger floor would only matter to an operator who lowers ``z``, who should then raise it.
* ``discard_min_votes = 10``, ``discard_max_score = 0.3``: a clip is given up once 10 counted votes still
  leave it far from valid, so that trustees' time goes to clips that can still be decided. At n = 10,
  5 valid votes give 0.237 (discarded) and 6 give 0.313 (pending). From 5 of 10, reaching valid would take
  15 more unanimous valid votes (20/25 gives 0.609), three times what a fresh clip needs. Invalid is tested
  first, so a clearly rejected clip is reported invalid, not discarded; discarded is for the contested or
  near-rejected (9 invalid of 10 gives an invalid bound of 0.596, not enough for invalid: discarded).
* ``offer_max_votes = 30`` (a rule of the validation queue, not of the engine): a clip still pending after
  30 counted votes is contested (its share of valid votes sits between about 0.3 and 0.8, where the bound
  decides nothing yet) and is no longer offered; it stays pending, out of every release. Offered for ever,
  such clips drew 41 % of all votes in the simulation's 60 %-lazy crowd (the queue hands the most-voted
  clip first), and the bad ones among them ended valid once lazy votes tipped their share past 0.64. At
  20 the cap cost too much recall where a tenth of the trustees vote everything down (a good clip there
  collects about one invalid vote in six: 72 % recall against 81 % at 30); 30 votes validate a clip with
  up to six dissenting votes (24 of 30 is 0.627).
* ``max_iterations = 400``: crowds settle in a handful of evaluations, but an oscillating one can take a
  couple of hundred before its cycle closes (above); one evaluation over 10 M votes costs about 0.13 s on
  a 2-core machine, so the cap bounds a pathological input to under a minute.

Full and incremental
--------------------
:func:`trust_recompute` is the full, vectorised recompute. :func:`wilson_lower_bound`,
:func:`clip_outcome`, :func:`contributor_trust` and :func:`contributor_is_trustee` are the scalar versions
of the same steps; they perform the same IEEE operations in the same order as the vectorised code, so they
give bit-identical numbers.

They make the incremental path after a vote exact, with no approximation. Let the stored state be a fixed
point ``R = F(R)`` (``exact``). A new vote changes, under ``R``'s counting, only its clip's counts and
status, hence at most its author's trust. If the author's trustee status under that trust is unchanged,
``R`` is still a fixed point: the full recompute started from ``R`` evaluates ``R`` once, drops nobody,
admits nobody, and returns exactly the state the scalar steps produced. Only when a trustee status would
flip (or the stored state is not exact) must the full recompute run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray


class ClipStatus(IntEnum):
    """Clip status codes as stored in the engine's int8 arrays."""

    PENDING = 0
    VALID = 1
    INVALID = 2
    DISCARDED = 3


NO_FIXED_STATUS = -1  # in ``clip_fixed``: the clip's status comes from its votes
NO_AUTHOR = -1  # in ``clip_author``: an imported clip that no contributor submitted


PRESETS = ("wilson", "proposal")
# Votes a trustee may cast per clip they submitted, by preset; argued in the module docstring.
DEFAULT_QUOTA_VOTES_PER_CLIP = {"wilson": 13.0, "proposal": 1.0}


@dataclass(frozen=True)
class TrustParams:
    """The engine's parameters; the defaults and their reasons are in the module docstring.

    ``quota_votes_per_clip`` left at ``None`` takes the preset's default."""

    preset: str = "wilson"  # how contributor trust is scored: "wilson" (decided clips) or "proposal"
    z: float = 1.96  # normal quantile of the two-sided 95 % Wilson interval
    min_trust: float = 0.6  # a clip's bound and a contributor's trust must exceed this
    min_votes: int = 1  # floor on counted votes for valid; the bound already needs 6 at z = 1.96
    discard_min_votes: int = 10  # counted votes before a clip can be discarded
    discard_max_score: float = 0.3  # discarded below this bound (10 votes: 5 valid discards, 6 does not)
    max_iterations: int = 400  # evaluations before the largest sound set reached so far is kept
    quota_votes_per_clip: float | None = None  # votes per clip submitted; None: the preset's default
    offer_max_votes: int = 30  # the validation queue stops offering a pending clip with this many counted votes

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {', '.join(PRESETS)}, not {self.preset!r}")
        if not (math.isfinite(self.z) and self.z > 0):
            raise ValueError(f"z must be a positive finite number, not {self.z!r}")
        if not 0 <= self.min_trust < 1:
            raise ValueError(f"min_trust must lie in [0, 1), not {self.min_trust!r}")
        if not 0 <= self.discard_max_score <= 1:
            raise ValueError(f"discard_max_score must lie in [0, 1], not {self.discard_max_score!r}")
        if self.min_votes < 0 or self.discard_min_votes < 0:
            raise ValueError("min_votes and discard_min_votes must not be negative")
        if self.max_iterations < 1:
            raise ValueError(f"max_iterations must be at least 1, not {self.max_iterations!r}")
        if self.offer_max_votes < 1:
            raise ValueError(f"offer_max_votes must be at least 1, not {self.offer_max_votes!r}")
        if self.quota_votes_per_clip is None:
            object.__setattr__(self, "quota_votes_per_clip", DEFAULT_QUOTA_VOTES_PER_CLIP[self.preset])
        quota = self.quota_votes_per_clip
        if not (isinstance(quota, int | float) and math.isfinite(quota) and quota >= 0):
            raise ValueError(f"quota_votes_per_clip must be a finite number of at least 0, not {quota!r}")

    @property
    def votes_per_clip(self) -> float:
        """``quota_votes_per_clip`` as ``__post_init__`` left it: never None, so typed without the None."""
        quota = self.quota_votes_per_clip
        if quota is None:  # __post_init__ always fills it in
            raise ValueError("quota_votes_per_clip was never filled in")
        return quota


@dataclass(frozen=True)
class ClipOutcome:
    """One clip's result: its status, its Wilson score and how many votes counted."""

    status: ClipStatus
    score: float
    counted: int


@dataclass(frozen=True, eq=False)
class TrustResult:
    """The full recompute's result. Arrays are indexed like the inputs (clips, contributors)."""

    clip_status: NDArray[np.int8]  # ClipStatus codes
    clip_score: NDArray[np.float64]  # Wilson lower bound of the counted valid votes
    clip_counted: NDArray[np.int64]  # counted votes (trustees' only)
    clip_valid_counted: NDArray[np.int64]  # of which valid; invalid = counted - valid
    contributor_trust: NDArray[np.float64]
    contributor_valid: NDArray[np.int64]  # clips by status, for the incremental path and explanations
    contributor_invalid: NDArray[np.int64]
    contributor_discarded: NDArray[np.int64]
    contributor_total: NDArray[np.int64]  # every clip submitted, whatever its status
    trustees: NDArray[np.bool_]
    iterations: int  # evaluations performed, the final one included
    cycle_resolved: bool  # descent and ascent revisited a sound set and the cycle rule decided the trustees
    capped: bool  # max_iterations was reached and the current sound set was kept
    exact: bool  # a fixed point: exactly the founders and those with trust above min_trust are trustees

    @property
    def clip_invalid_counted(self) -> NDArray[np.int64]:
        return self.clip_counted - self.clip_valid_counted


# --- scalar steps, for one clip or one contributor ---------------------------------------------------


def wilson_lower_bound(valid: int, n: int, z: float = 1.96) -> float:
    """Lower bound of the Wilson score interval for ``valid`` successes in ``n`` trials; 0 when n = 0."""
    if n <= 0 or valid <= 0:
        return 0.0  # exactly; the formula would leave rounding noise of either sign at p = 0
    # Same operations in the same order as wilson_lower_bounds, so both give bit-identical results.
    z2 = z * z
    nf = float(n)
    p = float(valid) / nf
    centre = p + z2 / (2.0 * nf)
    spread = z * math.sqrt((p * (1.0 - p) + z2 / (4.0 * nf)) / nf)
    score = (centre - spread) / (1.0 + z2 / nf)
    return max(score, 0.0)


def clip_outcome(
    valid_counted: int,
    invalid_counted: int,
    params: TrustParams,
    *,
    fixed_status: int = NO_FIXED_STATUS,
) -> ClipOutcome:
    """One clip's status from its counted (trustees') valid and invalid votes."""
    n = valid_counted + invalid_counted
    score = wilson_lower_bound(valid_counted, n, params.z)
    if fixed_status != NO_FIXED_STATUS:
        status = ClipStatus(fixed_status)
    elif score > params.min_trust and n >= params.min_votes:
        status = ClipStatus.VALID
    elif wilson_lower_bound(invalid_counted, n, params.z) > params.min_trust:
        status = ClipStatus.INVALID
    elif n >= params.discard_min_votes and score < params.discard_max_score:
        status = ClipStatus.DISCARDED
    else:
        status = ClipStatus.PENDING
    return ClipOutcome(status=status, score=score, counted=n)


def contributor_trust(
    valid: int, invalid: int, discarded: int, total: int, founding: bool, params: TrustParams
) -> float:
    """A contributor's trust from their clips' statuses (``total`` counts every clip, pending included);
    1 for a founder. The formula is the preset's (module docstring)."""
    if founding:
        return 1.0
    if params.preset == "proposal":
        if total <= 0:
            return 0.0
        return max(float(valid - invalid) / float(total), 0.0)
    return wilson_lower_bound(valid, valid + invalid + discarded, params.z)


def contributor_is_trustee(trust: float, founding: bool, params: TrustParams) -> bool:
    """A trustee is a founder or has trust above ``min_trust``."""
    return founding or trust > params.min_trust


def vote_quota(*, clips_submitted: int, votes_cast: int, allowance: int, params: TrustParams) -> int:
    """Votes a trustee may still cast: ``quota_votes_per_clip`` per clip submitted, plus an operator's
    allowance, minus the votes already cast; never negative."""
    per_clip = params.quota_votes_per_clip
    assert per_clip is not None  # TrustParams.__post_init__ fills in the preset's default
    earned = math.floor(per_clip * clips_submitted + 1e-9) + max(allowance, 0)
    return max(0, earned - votes_cast)


# --- vectorised steps -------------------------------------------------------------------------------


def wilson_lower_bounds(valid: ArrayLike, n: ArrayLike, z: float = 1.96) -> NDArray[np.float64]:
    """Elementwise :func:`wilson_lower_bound`, bit-identical to it."""
    valid_f = np.asarray(valid, dtype=np.float64)
    n_f = np.asarray(n, dtype=np.float64)
    z2 = z * z
    empty = n_f <= 0
    nf = np.where(empty, 1.0, n_f)  # any positive value: the result is replaced by 0 below
    zero = empty | (valid_f <= 0)
    p = valid_f / nf
    centre = p + z2 / (2.0 * nf)
    spread = p * (1.0 - p)
    spread += z2 / (4.0 * nf)
    spread /= nf
    np.sqrt(spread, out=spread)
    spread *= z
    centre -= spread
    centre /= 1.0 + z2 / nf
    np.maximum(centre, 0.0, out=centre)
    centre[zero] = 0.0
    return centre


def clip_statuses(
    valid_counted: NDArray[np.integer],
    counted: NDArray[np.integer],
    params: TrustParams,
    clip_fixed: NDArray[np.integer] | None = None,
) -> tuple[NDArray[np.int8], NDArray[np.float64]]:
    """Statuses and scores of many clips from their counted votes; elementwise :func:`clip_outcome`."""
    score = wilson_lower_bounds(valid_counted, counted, params.z)
    invalid_score = wilson_lower_bounds(counted - valid_counted, counted, params.z)
    status = np.zeros(len(score), dtype=np.int8)
    # Assigned from the last rule to the first, so that the first rule that holds wins.
    status[(counted >= params.discard_min_votes) & (score < params.discard_max_score)] = ClipStatus.DISCARDED
    status[invalid_score > params.min_trust] = ClipStatus.INVALID
    status[(score > params.min_trust) & (counted >= params.min_votes)] = ClipStatus.VALID
    if clip_fixed is not None:
        fixed = clip_fixed != NO_FIXED_STATUS
        status[fixed] = clip_fixed[fixed]
    return status, score


# --- the full recompute -----------------------------------------------------------------------------


def _as_index(name: str, values: ArrayLike, low: int, high: int) -> NDArray[np.intp]:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, not {array.dtype}")
    array = array.astype(np.intp, copy=False)
    if array.size and (array.min() < low or array.max() >= high):
        raise ValueError(f"{name} must lie in [{low}, {high})")
    return array


class _Crowd:
    """The inputs, checked and reshaped once for the repeated evaluations."""

    def __init__(
        self,
        vote_clip: ArrayLike,
        vote_voter: ArrayLike,
        vote_valid: ArrayLike,
        clip_author: ArrayLike,
        clip_fixed: ArrayLike | None,
        founders: ArrayLike,
    ) -> None:
        self.founders = np.asarray(founders, dtype=bool)
        if self.founders.ndim != 1:
            raise ValueError("founders must be one-dimensional")
        self.n_contributors = len(self.founders)
        author = _as_index("clip_author", clip_author, NO_AUTHOR, self.n_contributors)
        self.n_clips = len(author)
        if clip_fixed is None:
            self.clip_fixed = None
        else:
            fixed = _as_index("clip_fixed", clip_fixed, NO_FIXED_STATUS, len(ClipStatus))
            if len(fixed) != self.n_clips:
                raise ValueError("clip_fixed must have one entry per clip")
            self.clip_fixed = fixed.astype(np.int8) if (fixed != NO_FIXED_STATUS).any() else None
        clip = _as_index("vote_clip", vote_clip, 0, self.n_clips)
        self.vote_voter = _as_index("vote_voter", vote_voter, 0, self.n_contributors)
        valid = np.asarray(vote_valid)
        if valid.size == 0:
            valid = valid.astype(bool)
        if valid.ndim != 1 or valid.dtype != np.bool_:
            raise ValueError(f"vote_valid must be a one-dimensional boolean array, not {valid.dtype}")
        if not len(clip) == len(self.vote_voter) == len(valid):
            raise ValueError("vote_clip, vote_voter and vote_valid must have the same length")
        # One bincount per evaluation gives both counts: bin 2 + 2·clip is valid, 3 + 2·clip invalid, and
        # a vote that does not count is multiplied into bin 0 (cheaper than selecting the votes that do).
        self.vote_bin = clip * 2
        self.vote_bin += 3
        self.vote_bin -= valid
        self.vote_counted_bin = np.empty_like(self.vote_bin)  # reused by every evaluation
        # The last evaluation (its trustees, bin counts, parameters and state), which the next one updates
        # by the votes of the voters whose status differs, when they are few.
        self.last: tuple[NDArray[np.bool_], NDArray[np.int64], TrustParams, _State] | None = None
        # Clips by (author + 1, status), so that NO_AUTHOR falls into row 0 and is dropped.
        self.clip_key = (author + 1) * len(ClipStatus)
        self.contributor_total = np.bincount(author + 1, minlength=self.n_contributors + 1)[1:]
        self.contributor_total = self.contributor_total.astype(np.int64, copy=False)


@dataclass
class _State:
    valid_counted: NDArray[np.int64]
    counted: NDArray[np.int64]
    status: NDArray[np.int8]
    score: NDArray[np.float64]
    valid: NDArray[np.int64]
    invalid: NDArray[np.int64]
    discarded: NDArray[np.int64]
    trust: NDArray[np.float64]


def _evaluate(crowd: _Crowd, trustees: NDArray[np.bool_], params: TrustParams) -> _State:
    """Statuses from the votes of ``trustees``, then every contributor's trust.

    The votes are counted afresh or, when the crowd's last evaluation counted the votes of a set that
    differs in voters casting at most a quarter of the votes, from its counts by adding and removing those
    voters' votes alone; then only the clips whose counts moved are scored again, by the same elementwise
    operations, so that the state is identical either way."""
    last = crowd.last if crowd.last is not None and crowd.last[2] is params else None
    counts = moved_clips = None
    if last is not None:
        last_trustees, last_counts, _, last_state = last
        moved_votes = np.flatnonzero((trustees != last_trustees).take(crowd.vote_voter))
        if len(moved_votes) <= len(crowd.vote_voter) // 4:
            bins = crowd.vote_bin[moved_votes]
            gained = trustees.take(crowd.vote_voter[moved_votes])
            delta = np.bincount(bins[gained], minlength=len(last_counts))
            delta -= np.bincount(bins[~gained], minlength=len(last_counts))
            counts = last_counts + delta
            moved_clips = np.flatnonzero(delta[2:].reshape(crowd.n_clips, 2).any(axis=1))
    if counts is None:
        bins = np.multiply(crowd.vote_bin, trustees.take(crowd.vote_voter), out=crowd.vote_counted_bin)
        counts = np.bincount(bins, minlength=2 * crowd.n_clips + 2)
    pairs = counts[2:].reshape(crowd.n_clips, 2)
    valid_counted = pairs[:, 0]
    counted = valid_counted + pairs[:, 1]
    if moved_clips is None:
        status, score = clip_statuses(valid_counted, counted, params, crowd.clip_fixed)
    else:
        status, score = last_state.status.copy(), last_state.score.copy()
        fixed = None if crowd.clip_fixed is None else crowd.clip_fixed[moved_clips]
        status[moved_clips], score[moved_clips] = clip_statuses(
            valid_counted[moved_clips], counted[moved_clips], params, fixed
        )
    by_status = np.bincount(crowd.clip_key + status, minlength=(crowd.n_contributors + 1) * len(ClipStatus))
    by_status = by_status.reshape(crowd.n_contributors + 1, len(ClipStatus))[1:]
    valid = by_status[:, ClipStatus.VALID]
    invalid = by_status[:, ClipStatus.INVALID]
    discarded = by_status[:, ClipStatus.DISCARDED]
    total = crowd.contributor_total
    if params.preset == "proposal":
        trust = (valid - invalid).astype(np.float64)
        np.divide(trust, total, out=trust, where=total > 0)
        trust[total <= 0] = 0.0
        np.maximum(trust, 0.0, out=trust)
    else:
        trust = wilson_lower_bounds(valid, valid + invalid + discarded, params.z)
    trust[crowd.founders] = 1.0
    state = _State(valid_counted, counted, status, score, valid, invalid, discarded, trust)
    crowd.last = (trustees.copy(), counts, params, state)
    return state


def _largest(sound_sets: list[NDArray[np.bool_]]) -> NDArray[np.bool_]:
    """The set with the most trustees; ties go to the greatest packed bits, whatever the list's order."""
    return max(sound_sets, key=lambda sound: (int(sound.sum()), np.packbits(sound).tobytes()))


def trust_recompute(
    *,
    vote_clip: ArrayLike,
    vote_voter: ArrayLike,
    vote_valid: ArrayLike,
    clip_author: ArrayLike,
    founders: ArrayLike,
    clip_fixed: ArrayLike | None = None,
    trustees_before: ArrayLike | None = None,
    params: TrustParams | None = None,
) -> TrustResult:
    """Recompute every clip's status and every contributor's trust from all the votes.

    ``vote_clip``, ``vote_voter`` (integer indices) and ``vote_valid`` (bool) describe one vote each.
    ``clip_author`` gives each clip's contributor index (``NO_AUTHOR`` for an imported clip nobody
    submitted), ``clip_fixed`` an imported clip's fixed ``ClipStatus`` or ``NO_FIXED_STATUS``, ``founders``
    one bool per contributor (its length is the number of contributors), and ``trustees_before`` the
    trustees the recompute starts from (one bool per contributor; the founders alone when omitted). Raises
    ``ValueError`` on malformed input. The algorithm and the cycle rule are in the module docstring.
    """
    params = params or TrustParams()
    crowd = _Crowd(vote_clip, vote_voter, vote_valid, clip_author, clip_fixed, founders)
    trustees = crowd.founders.copy()
    if trustees_before is not None:
        before = np.asarray(trustees_before, dtype=bool)
        if before.shape != trustees.shape:
            raise ValueError("trustees_before must have one entry per contributor")
        trustees |= before

    history: list[NDArray[np.bool_]] = []  # the sound sets reached, in order
    seen: dict[bytes, int] = {}
    iterations = 0
    cycle_resolved = capped = False
    while True:
        # Descent: drop whoever the counted votes no longer support, until the set is sound.
        while True:
            state = _evaluate(crowd, trustees, params)
            iterations += 1
            earned = crowd.founders | (state.trust > params.min_trust)
            if not (trustees & ~earned).any():
                break
            trustees = trustees & earned
        if cycle_resolved or capped or not (earned & ~trustees).any():
            break  # a fixed point, or the set the cycle rule or the cap chose (evaluated once more)
        key = np.packbits(trustees).tobytes()
        first = seen.get(key)
        if first is not None:
            trustees = _largest(history[first:])
            cycle_resolved = True
            continue  # one more evaluation of the chosen set, which is sound: the descent drops nobody
        seen[key] = len(history)
        history.append(trustees)
        if iterations >= params.max_iterations:
            trustees = _largest(history)
            capped = True
            continue
        # Ascent: admit those who earned the status from the votes of this sound, trusted set.
        trustees = trustees | earned

    return _result(crowd, state, trustees, params, iterations=iterations, cycle_resolved=cycle_resolved, capped=capped)


def _result(
    crowd: _Crowd,
    state: _State,
    trustees: NDArray[np.bool_],
    params: TrustParams,
    *,
    iterations: int,
    cycle_resolved: bool,
    capped: bool,
    exact: bool | None = None,
) -> TrustResult:
    """The result of ``state``; ``exact`` defaults to whether ``trustees`` are exactly those it makes."""
    if exact is None:
        exact = bool(np.array_equal(trustees, crowd.founders | (state.trust > params.min_trust)))
    return TrustResult(
        clip_status=state.status,
        clip_score=state.score,
        clip_counted=state.counted.astype(np.int64, copy=False),
        clip_valid_counted=state.valid_counted.astype(np.int64, copy=False),
        contributor_trust=state.trust,
        contributor_valid=state.valid.astype(np.int64, copy=False),
        contributor_invalid=state.invalid.astype(np.int64, copy=False),
        contributor_discarded=state.discarded.astype(np.int64, copy=False),
        contributor_total=crowd.contributor_total,
        trustees=trustees,
        iterations=iterations,
        cycle_resolved=cycle_resolved,
        capped=capped,
        exact=exact,
    )


def trust_evaluate(
    *,
    vote_clip: ArrayLike,
    vote_voter: ArrayLike,
    vote_valid: ArrayLike,
    clip_author: ArrayLike,
    founders: ArrayLike,
    counted: ArrayLike,
    clip_fixed: ArrayLike | None = None,
    params: TrustParams | None = None,
) -> TrustResult:
    """One evaluation with exactly the ``counted`` voters' votes counted, no fixed point: the statuses and
    every contributor's trust they give (founders at 1). For probes such as "would last round's trustees
    still support each other on today's votes?"; ``trustees`` in the result is ``F(counted)``."""
    params = params or TrustParams()
    crowd = _Crowd(vote_clip, vote_voter, vote_valid, clip_author, clip_fixed, founders)
    counted_set = np.asarray(counted, dtype=bool)
    if counted_set.shape != crowd.founders.shape:
        raise ValueError("counted must have one entry per contributor")
    state = _evaluate(crowd, counted_set, params)
    earned = crowd.founders | (state.trust > params.min_trust)
    exact = bool(np.array_equal(earned, counted_set))
    return _result(crowd, state, earned, params, iterations=1, cycle_resolved=False, capped=False, exact=exact)
