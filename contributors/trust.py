"""The trust engine: Wilson lower bounds, clip statuses, contributor trust, and the fixed point joining them.

Plain NumPy, no Django: the trust services, the management commands and the benchmarks call the same
functions. Everything here is a pure function of its inputs.

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
* **Contributor trust** ``= max(0, (valid - invalid) / total)`` where ``total`` counts every clip the
  contributor submitted, whatever its status; 0 with no clips. Founding trustees have trust 1.
* **Trustee**: founding, or ``trust > min_trust``.

The fixed point and the cycle rule
----------------------------------
Statuses depend on who is a trustee, trust on statuses, and trustees on trust. Write ``F(T)`` for the
trustee set that follows from counting the votes of the set ``T``: evaluate the statuses with ``T``,
then trust, then ``founders | {trust > min_trust}``. :func:`trust_recompute` runs in two phases.

1. **Ascent.** ``T₀ = founders``, ``Tₖ₊₁ = F(Tₖ)``. It stops at a fixed point ``F(T) = T``: the normal
   outcome, and then the result satisfies every rule above exactly. ``F`` is not monotone (a new
   trustee's *invalid* votes can pull a clip back to pending), so the sequence can instead revisit a set
   it has already seen, ``Tₖ₊₁ = Tⱼ`` with ``j < k``, and would then loop for ever. Every set is
   remembered (as packed bits, 1/8 byte per contributor), so the first repeat is detected.
2. **Descent**, only after a cycle. Start from the intersection of the sets on the cycle,
   ``Tⱼ ∩ … ∩ Tₖ``: the contributors that every state of the oscillation agrees are trustees. Then
   narrow it, ``T ← T ∩ F(T)``, until nobody else drops out. This shrinks strictly at every step and
   founders never leave, so it ends after at most ``|T \\ founders| + 1`` evaluations.

Why the intersection. In a cycle the votes support more than one answer, or none (two contributors who
each vote down the other's only clip: either one alone is a consistent trustee, both or neither is not),
and any tie-break between the members would be arbitrary and order-dependent. Taking only what all the
states agree on, then dropping whoever cannot earn the status from the votes that set itself counts,
gives a result that is *sound*: every reported trustee is a founder or has ``trust > min_trust`` under
the reported statuses, and every status is computed from exactly the reported trustees' votes. What may
be lost is completeness: a contributor can end with ``trust > min_trust`` yet not be a trustee. The
result says so (``cycle_resolved``), that contributor's trust is visible, and the next recompute (after
more votes) starts again from the founders. Wrongly admitting a trustee lets their votes validate clips
that enter a release; wrongly holding one back only delays validation, so the error goes that way.

**Cap.** Detection guarantees termination but not a small bound, so every evaluation counts towards
``max_iterations``. If the cap is reached the result falls back to the founders alone and one more
evaluation (``capped``). That is the same rule taken to its limit: every visited set contains the
founders and the first one is the founders, so the intersection of everything seen is exactly the
founders, who are always sound.

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
  With many votes the bound tends to ``p``, so a clip stuck at ``p`` between about 0.3 and 0.6 stays
  pending; the validation queue, not this engine, decides how long to keep offering it.
* ``max_iterations = 100``: crowds converge in a handful of evaluations (the benchmark's synthetic crowd,
  a million clips grown over six generations of trustees, takes 5); one evaluation over 10 M votes costs
  about 0.13 s on a 2-core machine, so the cap bounds a pathological input to well under a minute.

Full and incremental
--------------------
:func:`trust_recompute` is the full, vectorised recompute. :func:`wilson_lower_bound`,
:func:`clip_outcome`, :func:`contributor_trust` and :func:`contributor_is_trustee` are the scalar
versions of the same steps, for the incremental update after one vote. They perform the same IEEE
operations in the same order as the vectorised code, so they give bit-identical numbers. The two paths
can only agree when the full recompute reached a true fixed point (``cycle_resolved`` and ``capped``
both false); otherwise the incremental path should hand over to a full recompute.
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


@dataclass(frozen=True)
class TrustParams:
    """The engine's parameters; the defaults and their reasons are in the module docstring."""

    z: float = 1.96  # normal quantile of the two-sided 95 % Wilson interval
    min_trust: float = 0.6  # a clip's bound and a contributor's trust must exceed this
    min_votes: int = 1  # floor on counted votes for valid; the bound already needs 6 at z = 1.96
    discard_min_votes: int = 10  # counted votes before a clip can be discarded
    discard_max_score: float = 0.3  # discarded below this bound (10 votes: 5 valid discards, 6 does not)
    max_iterations: int = 100  # evaluations before falling back to the founders alone

    def __post_init__(self) -> None:
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
    contributor_valid: NDArray[np.int64]  # clips by status, for the incremental path
    contributor_invalid: NDArray[np.int64]
    contributor_total: NDArray[np.int64]  # every clip submitted, whatever its status
    trustees: NDArray[np.bool_]
    iterations: int  # evaluations performed, the final one included
    cycle_resolved: bool  # the ascent revisited a set and the cycle rule decided the trustees
    capped: bool  # max_iterations was reached and the founders alone were kept

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


def contributor_trust(valid: int, invalid: int, total: int, founding: bool) -> float:
    """``max(0, (valid - invalid) / total)`` over the contributor's clips; 1 for a founder, 0 with no clips."""
    if founding:
        return 1.0
    if total <= 0:
        return 0.0
    return max(float(valid - invalid) / float(total), 0.0)


def contributor_is_trustee(trust: float, founding: bool, params: TrustParams) -> bool:
    """A trustee is a founder or has trust above ``min_trust``."""
    return founding or trust > params.min_trust


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
        # One bincount per evaluation gives both counts: bin 2·clip is valid, 2·clip + 1 invalid.
        self.vote_key = clip * 2
        self.vote_key += ~valid
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
    trust: NDArray[np.float64]


def _evaluate(crowd: _Crowd, trustees: NDArray[np.bool_], params: TrustParams) -> _State:
    """Statuses from the votes of ``trustees``, then every contributor's trust."""
    keys = crowd.vote_key[trustees[crowd.vote_voter]]
    counts = np.bincount(keys, minlength=2 * crowd.n_clips).reshape(crowd.n_clips, 2)
    valid_counted = counts[:, 0]
    counted = valid_counted + counts[:, 1]
    status, score = clip_statuses(valid_counted, counted, params, crowd.clip_fixed)
    by_status = np.bincount(crowd.clip_key + status, minlength=(crowd.n_contributors + 1) * len(ClipStatus))
    by_status = by_status.reshape(crowd.n_contributors + 1, len(ClipStatus))[1:]
    valid = by_status[:, ClipStatus.VALID]
    invalid = by_status[:, ClipStatus.INVALID]
    total = crowd.contributor_total
    trust = (valid - invalid).astype(np.float64)
    np.divide(trust, total, out=trust, where=total > 0)
    trust[total <= 0] = 0.0
    np.maximum(trust, 0.0, out=trust)
    trust[crowd.founders] = 1.0
    return _State(valid_counted, counted, status, score, valid, invalid, trust)


def trust_recompute(
    *,
    vote_clip: ArrayLike,
    vote_voter: ArrayLike,
    vote_valid: ArrayLike,
    clip_author: ArrayLike,
    founders: ArrayLike,
    clip_fixed: ArrayLike | None = None,
    params: TrustParams | None = None,
) -> TrustResult:
    """Recompute every clip's status and every contributor's trust from all the votes.

    ``vote_clip``, ``vote_voter`` (integer indices) and ``vote_valid`` (bool) describe one vote each.
    ``clip_author`` gives each clip's contributor index (``NO_AUTHOR`` for an imported clip nobody
    submitted), ``clip_fixed`` an imported clip's fixed ``ClipStatus`` or ``NO_FIXED_STATUS``, and
    ``founders`` one bool per contributor (its length is the number of contributors). Raises
    ``ValueError`` on malformed input. The algorithm and the cycle rule are in the module docstring.
    """
    params = params or TrustParams()
    crowd = _Crowd(vote_clip, vote_voter, vote_valid, clip_author, clip_fixed, founders)

    trustees = crowd.founders.copy()
    history = [trustees]
    seen = {np.packbits(trustees).tobytes(): 0}
    descending = False
    cycle_resolved = capped = False
    iterations = 0
    while True:
        state = _evaluate(crowd, trustees, params)
        iterations += 1
        proposed = crowd.founders | (state.trust > params.min_trust)
        if descending:
            narrowed = trustees & proposed
            if np.array_equal(narrowed, trustees):
                break
            trustees = narrowed
        else:
            if np.array_equal(proposed, trustees):
                break
            key = np.packbits(proposed).tobytes()
            first = seen.get(key)
            if first is not None:
                trustees = np.logical_and.reduce(history[first:])
                descending = cycle_resolved = True
            else:
                seen[key] = len(history)
                history.append(proposed)
                trustees = proposed
        if iterations >= params.max_iterations:
            trustees = crowd.founders.copy()
            state = _evaluate(crowd, trustees, params)
            iterations += 1
            capped = True
            break

    return TrustResult(
        clip_status=state.status,
        clip_score=state.score,
        clip_counted=state.counted.astype(np.int64, copy=False),
        clip_valid_counted=state.valid_counted.astype(np.int64, copy=False),
        contributor_trust=state.trust,
        contributor_valid=state.valid.astype(np.int64, copy=False),
        contributor_invalid=state.invalid.astype(np.int64, copy=False),
        contributor_total=crowd.contributor_total,
        trustees=trustees,
        iterations=iterations,
        cycle_resolved=cycle_resolved,
        capped=capped,
    )
