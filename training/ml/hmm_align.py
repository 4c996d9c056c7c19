"""A monophone HMM forced aligner trained by Viterbi EM from a flat start, as HTK and Kaldi bootstrap alignments.

Each phone (and silence) is a 3-state left-to-right HMM with diagonal-covariance Gaussian-mixture emissions over
39-dim MFCCs (12 cepstra and log energy, with deltas and delta-deltas) derived from the store's 123-dim log-mel
features by a DCT: the mixtures model them far better than they model correlated log-mel bands. Training starts
from a uniform segmentation of each utterance, then alternates Viterbi alignment through the utterance's graph
([sil] word [sil] word ... [sil], every silence optional) with re-estimation of the Gaussians and the transition
probabilities, splitting every Gaussian in two at the start of each later stage. The Viterbi recursion runs over a
batch of utterances at once, vectorised over (utterance, state), so a pass over 2,000 utterances takes seconds.

A trained model is kept (``save_hmm``/``load_hmm``: plain tensors and a small dict) so that a later corpus starts
from it: ``train_and_align(init=...)`` re-estimates it with a few Viterbi EM passes instead of training from a flat
start (see ``HmmSettings.refine_passes``).

Plain torch and numpy; the labels it returns are the state labels (phone * 3 + state) the rest of training uses.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speech.lexicon import INVENTORY, N_PHONES, N_STATES, PHONE_INDEX, SILENCE_INDEX, STATES_PER_PHONE
from training.ml.threads import ordered_map

NEG = -1e30
N_CEPSTRA = 12  # c1..c12; c0 is left out because log energy stands for it
N_MELS = 40
MFCC_DIM = 3 * (N_CEPSTRA + 1)  # 39


@dataclass
class HmmSettings:
    stages: tuple[int, ...] = (6, 3, 3, 3)  # EM iterations at 1, 2, 4, 8 Gaussians per state
    baum_welch: int = 6  # of the single-Gaussian iterations, the first ones are Baum-Welch (the rest Viterbi)
    flat_start: str = "global"  # global: every state the data's mean and variance (HTK's HCompV) | uniform: segments
    silence_prob: float = 0.3  # prior of an optional silence between words, re-estimated after each pass
    variance_floor: float = 0.01  # times the global variance, as HTK's HCompV -f
    split_offset: float = 0.2  # standard deviations each half of a split Gaussian moves
    batch_frames: int = 60_000  # frames per Viterbi batch (utterances of similar length together)
    min_count: float = 20.0  # a Gaussian seen in fewer frames keeps its old parameters
    # Viterbi EM passes that re-estimate a model trained elsewhere (train_and_align's init) on this corpus, in
    # place of the flat start's stages. On espeak-ng voices the model never heard, 2 passes put 90.1 % of
    # boundaries within 20 ms (a flat start on them: 91.2 %) at 0.2-0.4 times the flat start's time; more passes
    # gained at most 0.2 points (docs/training.md, "Aligning a release from the platform's latest model").
    refine_passes: int = 2
    # Threads over the Viterbi and forward-backward batches: each batch is computed as on one thread and the batches'
    # results are combined in order, so the model and the alignments do not depend on it (threads.ordered_map).
    workers: int = 1


# --- features ------------------------------------------------------------------------------------------------


def dct_matrix(n_mels: int = N_MELS, n_ceps: int = N_CEPSTRA) -> torch.Tensor:
    """(n_ceps, n_mels) orthonormal DCT-II rows 1..n_ceps: log-mel energies -> cepstra."""
    k = torch.arange(1, n_ceps + 1, dtype=torch.float64)[:, None]
    n = torch.arange(n_mels, dtype=torch.float64)[None, :]
    return (math.sqrt(2.0 / n_mels) * torch.cos(math.pi * k * (n + 0.5) / n_mels)).float()


def mfcc_from_logmel(raw: torch.Tensor) -> torch.Tensor:
    """(T, 3 (M + 1)) un-normalised [M log-mel, log energy] x (static, delta, delta-delta) -> (T, 39) MFCC_E_D_A
    (M = 40 by default; any ``features.n_mels`` the store was built with).

    The DCT is linear, so the deltas of the cepstra are the DCT of the log-mel deltas: no audio is needed."""
    width = raw.shape[1] // 3
    n_mels = width - 1
    dct = dct_matrix(n_mels, min(N_CEPSTRA, n_mels - 1)).to(raw)
    blocks = []
    for order in range(3):
        block = raw[:, order * width : (order + 1) * width]
        blocks += [block[:, :n_mels] @ dct.T, block[:, n_mels:]]
    return torch.cat(blocks, dim=1)


def utterance_features(frames: torch.Tensor, offsets: torch.Tensor, mean: torch.Tensor, std: torch.Tensor):
    """Store frames (normalised 123-dim) -> per-utterance 39-dim MFCCs with the utterance's mean removed (CMN)
    and scaled by the global standard deviation, as one (N, 39) float32 tensor."""
    raw = frames.float().cpu() * std.float().cpu() + mean.float().cpu()
    return cmn_features(mfcc_from_logmel(raw), offsets.cpu().tolist())[0]


def cmn_features(mfcc: torch.Tensor, bounds: Sequence[int], scale: torch.Tensor | None = None):
    """(N, D) MFCCs of utterances laid end to end -> each utterance's mean removed, all divided by ``scale`` (by
    default the result's global standard deviation): the features and the scale used. A model trained on one
    corpus is used on another with the scale it was trained with, so that both are in the same space."""
    out = torch.empty_like(mfcc)
    for start, end in itertools.pairwise(bounds):
        if end > start:
            out[start:end] = mfcc[start:end] - mfcc[start:end].mean(0)
    if scale is None:
        scale = out.std(0).clamp(min=1e-5)
    return out / scale, scale


# --- the utterance graph -------------------------------------------------------------------------------------


@dataclass
class Graph:
    """One utterance's chain of HMM states: [sil] w1 [sil] w2 ... wn [sil], every silence optional."""

    states: np.ndarray  # (S,) physical state (phone * 3 + s) of each chain position
    optional: np.ndarray  # (S // 3,) per segment: an optional silence
    junction: np.ndarray  # (S // 3,) per segment: a silence between two words (not at either end)

    @property
    def mandatory_frames(self) -> int:
        return STATES_PER_PHONE * int((~self.optional).sum())


def utterance_graph(words: Sequence[Sequence[str]]) -> Graph:
    phones, optional, junction = [SILENCE_INDEX], [True], [False]
    for k, word in enumerate(words):
        for p in word:
            phones.append(PHONE_INDEX[p])
            optional.append(False)
            junction.append(False)
        phones.append(SILENCE_INDEX)
        optional.append(True)
        junction.append(k < len(words) - 1)
    states = np.array([p * STATES_PER_PHONE + s for p in phones for s in range(STATES_PER_PHONE)], dtype=np.int64)
    return Graph(states, np.array(optional), np.array(junction))


def flat_start_states(graph: Graph, n_frames: int) -> np.ndarray:
    """Uniform segmentation of [sil] phones [sil] (no silence between words) over the frames: (T,) states."""
    keep = ~(graph.optional & graph.junction)
    chain = graph.states.reshape(-1, STATES_PER_PHONE)[keep].reshape(-1)
    index = np.minimum((np.arange(n_frames) * len(chain)) // max(1, n_frames), len(chain) - 1)
    return chain[index]


# --- the model -----------------------------------------------------------------------------------------------


@dataclass
class MonophoneHmm:
    """Diagonal GMM emissions (N_STATES, M, D) and a self-loop probability per state."""

    means: torch.Tensor
    variances: torch.Tensor
    log_weights: torch.Tensor  # (N_STATES, M)
    log_loop: torch.Tensor  # (N_STATES,)
    log_exit: torch.Tensor  # (N_STATES,)
    silence_prob: float = 0.3
    floor: torch.Tensor = field(default_factory=lambda: torch.zeros(0))

    @property
    def mixtures(self) -> int:
        return self.means.shape[1]

    def component_weights(self) -> torch.Tensor:
        """(2D + 1, M * N_STATES), mixture-major: [x*x, x, 1] @ W is every component's log-likelihood in one matmul."""
        inv = 1.0 / self.variances  # (S, M, D)
        const = (
            self.log_weights
            - 0.5 * torch.log(self.variances).sum(2)
            - 0.5 * self.means.shape[2] * math.log(2 * math.pi)
            - 0.5 * (self.means * self.means * inv).sum(2)
        )  # (S, M)
        w = torch.cat([-0.5 * inv, self.means * inv, const[..., None]], dim=2)  # (S, M, 2D + 1)
        return w.permute(2, 1, 0).reshape(w.shape[2], -1).contiguous()

    def component_log_likelihoods(self, x: torch.Tensor) -> torch.Tensor:
        """(N, D) -> (N, M, N_STATES)."""
        return (augment(x) @ self.component_weights()).view(len(x), self.mixtures, N_STATES)

    def state_log_likelihoods(self, x: torch.Tensor, chunk: int = 20_000) -> torch.Tensor:
        """(N, D) -> (N, N_STATES): log-sum-exp over each state's mixture, in place, a chunk of frames at a time."""
        weights = self.component_weights()
        out = torch.empty(len(x), N_STATES)
        for i in range(0, len(x), chunk):
            ll = (augment(x[i : i + chunk]) @ weights).view(-1, self.mixtures, N_STATES)
            top = ll.amax(1, keepdim=True)
            ll.sub_(top).exp_()
            out[i : i + chunk] = ll.sum(1).log_().add_(top[:, 0])
        return out

    def copy(self) -> MonophoneHmm:
        """A model to re-estimate without changing this one."""
        return MonophoneHmm(
            means=self.means.clone(),
            variances=self.variances.clone(),
            log_weights=self.log_weights.clone(),
            log_loop=self.log_loop.clone(),
            log_exit=self.log_exit.clone(),
            silence_prob=self.silence_prob,
            floor=self.floor.clone(),
        )

    def split(self, offset: float) -> None:
        """Every Gaussian into two, moved +-offset standard deviations apart: M -> 2M."""
        shift = offset * self.variances.sqrt()
        self.means = torch.cat([self.means + shift, self.means - shift], dim=1)
        self.variances = torch.cat([self.variances, self.variances], dim=1)
        self.log_weights = torch.cat([self.log_weights, self.log_weights], dim=1) - math.log(2.0)


# --- keeping a trained model -----------------------------------------------------------------------------------

HMM_FORMAT = 1  # the saved dict's layout; a file of another layout is refused


class HmmMismatch(ValueError):
    """A saved HMM that cannot initialise this aligner: unreadable, another phone set, other features."""


@dataclass
class StoredHmm:
    """A trained HMM and what its input must be to use it: the features' front-end settings and the global scale
    (the per-dimension standard deviation its training data's CMN'd MFCCs were divided by). Features computed
    with other settings, or scaled otherwise, would put every frame in another space than its Gaussians'."""

    model: MonophoneHmm
    features: dict[str, Any]
    scale: torch.Tensor  # (D,)


def save_hmm(stored: StoredHmm, path: str | Path) -> None:
    """Plain tensors and a small dict (torch.save; read back with weights_only=True). Byte-identical for the same
    model, so that a rebuilt release stores the same file."""
    m = stored.model
    payload = {
        "format": HMM_FORMAT,
        "phones": list(INVENTORY),
        "states_per_phone": STATES_PER_PHONE,
        "mixtures": m.mixtures,
        "features": dict(sorted(stored.features.items())),
        "scale": stored.scale.float().contiguous(),
        "means": m.means.float().contiguous(),
        "variances": m.variances.float().contiguous(),
        "log_weights": m.log_weights.float().contiguous(),
        "log_loop": m.log_loop.float().contiguous(),
        "log_exit": m.log_exit.float().contiguous(),
        "floor": m.floor.float().contiguous(),
        "silence_prob": float(m.silence_prob),
    }
    with open(path, "wb") as handle:  # through a handle: the archive's inner folder is then not the file's name
        torch.save(payload, handle)


def load_hmm(path: str | Path, *, features: Mapping[str, Any]) -> StoredHmm:
    """The HMM saved at ``path``, refused (HmmMismatch, with the reason) when it cannot be read, was saved for
    another phone set or topology, or for other feature settings than ``features``."""
    try:
        payload = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: torch raises several kinds
        raise HmmMismatch(f"unreadable ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != HMM_FORMAT:
        raise HmmMismatch(f"not a saved HMM of format {HMM_FORMAT}")
    if payload.get("phones") != list(INVENTORY) or payload.get("states_per_phone") != STATES_PER_PHONE:
        raise HmmMismatch(
            f"saved for another phone set or topology ({len(payload.get('phones') or [])} phones, "
            f"{payload.get('states_per_phone')} states each; this aligner has {N_PHONES} and {STATES_PER_PHONE})"
        )
    saved = payload.get("features")
    if not isinstance(saved, dict):
        raise HmmMismatch("saved without its feature settings")
    if saved != dict(features):
        differ = sorted(k for k in {*saved, *features} if saved.get(k) != features.get(k))
        raise HmmMismatch(f"saved for other feature settings (differ: {', '.join(differ)})")
    try:
        model = MonophoneHmm(
            means=payload["means"],
            variances=payload["variances"],
            log_weights=payload["log_weights"],
            log_loop=payload["log_loop"],
            log_exit=payload["log_exit"],
            silence_prob=float(payload["silence_prob"]),
            floor=payload["floor"],
        )
        scale = payload["scale"]
    except KeyError as exc:
        raise HmmMismatch(f"incomplete (no {exc.args[0]})") from exc
    except (TypeError, ValueError) as exc:
        raise HmmMismatch(f"malformed ({exc})") from exc
    if not isinstance(scale, torch.Tensor) or scale.ndim != 1 or not bool(scale.isfinite().all()):
        raise HmmMismatch("scale is not a finite vector")
    mixtures, dim = int(payload.get("mixtures", 0)), len(scale)
    shapes = {
        "means": (model.means, (N_STATES, mixtures, dim)),
        "variances": (model.variances, (N_STATES, mixtures, dim)),
        "log_weights": (model.log_weights, (N_STATES, mixtures)),
        "log_loop": (model.log_loop, (N_STATES,)),
        "log_exit": (model.log_exit, (N_STATES,)),
        "floor": (model.floor, (dim,)),
    }
    for name, (tensor, shape) in shapes.items():
        if not isinstance(tensor, torch.Tensor) or tuple(tensor.shape) != shape or not bool(tensor.isfinite().all()):
            raise HmmMismatch(f"{name} is not a finite tensor of shape {shape}")
    if not bool((model.variances > 0).all()) or not bool((scale > 0).all()) or not 0 < model.silence_prob < 1:
        raise HmmMismatch("variances, scale or silence prior out of range")
    return StoredHmm(model, dict(saved), scale)


def augment(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x * x, x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)


def initial_model(
    x: torch.Tensor, states: torch.Tensor, floor: torch.Tensor, silence_prob: float, uniform: bool = True
) -> MonophoneHmm:
    """Every state the global mean and variance, or (uniform) estimated on a uniform segmentation."""
    dim = x.shape[1]
    model = MonophoneHmm(
        means=x.mean(0).repeat(N_STATES, 1, 1).clone(),
        variances=x.var(0).repeat(N_STATES, 1, 1).clone(),
        log_weights=torch.zeros(N_STATES, 1),
        log_loop=torch.full((N_STATES,), math.log(0.7)),
        log_exit=torch.full((N_STATES,), math.log(0.3)),
        silence_prob=silence_prob,
        floor=floor,
    )
    assert model.means.shape == (N_STATES, 1, dim)
    if uniform:
        reestimate_emissions(model, x, states, min_count=1.0)
    return model


def reestimate_emissions(model: MonophoneHmm, x: torch.Tensor, states: torch.Tensor, min_count: float) -> float:
    """M step for the Gaussians given each frame's state (EM over the mixture within a state); returns the
    average log-likelihood per frame under the old parameters."""
    total = 0.0
    means, variances, log_weights = model.means.clone(), model.variances.clone(), model.log_weights.clone()
    order = torch.argsort(states)
    counts = torch.bincount(states, minlength=N_STATES).tolist()
    start = 0
    components = model.component_weights().view(-1, model.mixtures, N_STATES)
    for s, n in enumerate(counts):
        rows = order[start : start + n]
        start += n
        if n == 0:
            continue
        xs = x[rows]
        ll = augment(xs) @ components[:, :, s]  # (n, M)
        norm = torch.logsumexp(ll, dim=1, keepdim=True)
        total += float(norm.sum())
        post = torch.exp(ll - norm)  # (n, M)
        occ = post.sum(0)
        first = post.T @ xs
        second = post.T @ (xs * xs)
        good = occ >= min_count
        if not bool(good.any()):
            continue
        mu = first[good] / occ[good, None]
        var = second[good] / occ[good, None] - mu * mu
        means[s, good] = mu
        variances[s, good] = torch.maximum(var, model.floor)
        weights = occ.clamp(min=1e-3)
        log_weights[s] = torch.log(weights / weights.sum())
    model.means, model.variances, model.log_weights = means, variances, log_weights
    return total / max(1, len(x))


def reestimate_transitions(model: MonophoneHmm, paths: list[np.ndarray], graphs: list[Graph]) -> None:
    """Self-loop probabilities from the state durations, and the optional-silence prior from how often the
    alignments put a silence between two words."""
    frames = np.zeros(N_STATES)
    visits = np.zeros(N_STATES)
    taken = offered = 0
    for path, graph in zip(paths, graphs, strict=True):
        starts = np.flatnonzero(np.diff(path, prepend=-1) != 0)
        np.add.at(visits, graph.states[path[starts]], 1)
        np.add.at(frames, graph.states[path], 1)
        segments = np.unique(path // STATES_PER_PHONE)
        junctions = np.flatnonzero(graph.junction)
        offered += len(junctions)
        taken += int(np.isin(junctions, segments).sum())
    loop = np.where(frames > 0, (frames - visits) / np.maximum(frames, 1), 0.7)
    loop = np.clip(loop, 0.05, 0.95)
    model.log_loop = torch.tensor(np.log(loop), dtype=torch.float32)
    model.log_exit = torch.tensor(np.log1p(-loop), dtype=torch.float32)
    if offered:
        model.silence_prob = float(np.clip(taken / offered, 0.02, 0.98))


# --- batched Viterbi -----------------------------------------------------------------------------------------


def _transition_arrays(model: MonophoneHmm, graph: Graph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per chain position j: log-probabilities of staying, of coming from j - 1, and of coming from j - 4 (the
    last state of the segment before an optional silence, skipping that silence)."""
    states = graph.states
    n = len(states)
    log_loop = model.log_loop.numpy().astype(np.float64)
    log_exit = model.log_exit.numpy().astype(np.float64)
    loop = log_loop[states]
    prev = np.full(n, NEG)
    prev[1:] = log_exit[states[:-1]]
    skip = np.full(n, NEG)
    log_sil, log_no_sil = math.log(model.silence_prob), math.log1p(-model.silence_prob)
    for k in range(1, n // STATES_PER_PHONE):
        j = k * STATES_PER_PHONE
        if graph.optional[k] and graph.junction[k]:
            prev[j] += log_sil  # into a silence between words
        elif graph.optional[k - 1] and graph.junction[k - 1]:
            skip[j] = log_exit[states[j - 4]] + log_no_sil  # straight on, no silence between the words
    return loop, prev, skip


def viterbi_batch(
    model: MonophoneHmm, x_list: list[torch.Tensor], graphs: list[Graph]
) -> tuple[list[np.ndarray], list[float]]:
    """Best chain positions (T_b,) for each utterance of a batch, and each path's log-likelihood.

    The recursion runs over all (utterance, chain position) cells of a time step at once; a position is entered
    from itself, from the one before, or (skipping an optional silence between words) from four before."""
    lengths, emit, loop, prev, skip, init, final = _batch_arrays(model, x_list, graphs)
    t_max, b_size, s_max = emit.shape
    delta = np.full((b_size, s_max + 4), NEG, dtype=np.float32)  # four dead positions in front: shifted views
    delta[:, 4:] = init + emit[0]
    back = np.zeros((t_max, b_size, s_max), dtype=np.int8)
    last = np.where((lengths == 1)[:, None], delta[:, 4:], NEG)
    done_at = {int(t): np.flatnonzero(lengths - 1 == t) for t in np.unique(lengths - 1)}
    best = np.empty((b_size, s_max), dtype=np.float32)
    other = np.empty((b_size, s_max), dtype=np.float32)
    for t in range(1, t_max):
        current = delta[:, 4:]
        np.add(current, loop, out=best)
        np.add(delta[:, 3:-1], prev, out=other)
        choice = back[t]
        np.greater(other, best, out=choice, casting="unsafe")
        np.maximum(best, other, out=best)
        np.add(delta[:, :-4], skip, out=other)
        jump = other > best
        choice[jump] = 2
        np.maximum(best, other, out=best)
        np.add(best, emit[t], out=current)
        if t in done_at:
            last[done_at[t]] = current[done_at[t]]
    scores = last + final
    state = scores.argmax(axis=1)
    total = scores[np.arange(b_size), state]
    # Backtrace, vectorised over the batch: an utterance starts moving back once t reaches its last frame.
    steps = np.array([0, 1, 4])
    rows = np.arange(b_size)
    path = np.zeros((b_size, t_max), dtype=np.int64)
    for t in range(t_max - 1, -1, -1):
        path[:, t] = state
        moved = state - steps[back[t, rows, state]]
        state = np.where((t <= lengths - 1) & (t > 0), moved, state)
    return [path[b, : lengths[b]] for b in range(b_size)], total.tolist()


def _batch_arrays(model: MonophoneHmm, x_list: list[torch.Tensor], graphs: list[Graph]):
    """Emission scores (T, B, S) by chain position, the transition arrays (B, S) and the initial and final scores."""
    b_size = len(x_list)
    lengths = np.array([len(x) for x in x_list])
    t_max, s_max = int(lengths.max()), max(len(g.states) for g in graphs)
    ll = model.state_log_likelihoods(torch.cat(x_list)).numpy()  # real frames only: (sum T_b, N_STATES)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    emit = np.full((t_max, b_size, s_max), NEG, dtype=np.float32)  # time first: one contiguous block per step
    loop, prev, skip, init, final = (np.full((b_size, s_max), NEG) for _ in range(5))
    for b, g in enumerate(graphs):
        n = len(g.states)
        emit[: lengths[b], b, :n] = ll[starts[b] : starts[b] + lengths[b]][:, g.states]
        loop[b, :n], prev[b, :n], skip[b, :n] = _transition_arrays(model, g)
        final[b, n - 1] = final[b, n - 1 - STATES_PER_PHONE] = 0.0  # with or without the trailing silence
        init[b, 0] = init[b, STATES_PER_PHONE] = math.log(0.5)  # with or without the leading silence
    arrays = tuple(a.astype(np.float32) for a in (loop, prev, skip, init, final))
    return lengths, emit, *arrays


def forward_backward_batch(
    model: MonophoneHmm, x_list: list[torch.Tensor], graphs: list[Graph]
) -> tuple[list[np.ndarray], np.ndarray, float]:
    """Baum-Welch E step over a batch: per utterance the (T_b, N_STATES) state occupation probabilities, the
    expected self-loop transitions per state, and the summed log-likelihood.

    Scaled forward-backward in the probability domain (Rabiner's scaling): emissions are taken relative to each
    frame's best chain position, and every step is renormalised, so no step needs a log or an exp."""
    lengths, emit, loop, prev, skip, init, final = _batch_arrays(model, x_list, graphs)
    t_max, b_size, s_max = emit.shape
    top = emit.max(axis=2, keepdims=True)
    probs = np.exp((emit - top).astype(np.float64))
    beyond = np.arange(t_max)[:, None] >= lengths[None, :]  # (T, B): frames past an utterance's end
    probs[beyond] = 1.0  # keeps the recursions finite there; nothing past the end is used
    stay, step, jump, first, last = (np.exp(a.astype(np.float64)) for a in (loop, prev, skip, init, final))
    zero = np.zeros((b_size, 4))
    alpha = np.empty((t_max, b_size, s_max))
    log_scale = np.zeros(b_size)
    a = first * probs[0]
    for t in range(t_max):
        if t > 0:
            shifted = np.concatenate([zero, alpha[t - 1]], axis=1)
            a = (alpha[t - 1] * stay + shifted[:, 3:-1] * step + shifted[:, :-4] * jump) * probs[t]
        norm = a.sum(axis=1, keepdims=True)
        norm[norm <= 0] = 1e-300
        alpha[t] = a / norm
        log_scale += np.where(beyond[t], 0.0, np.log(norm[:, 0]))
    rows = np.arange(b_size)
    end_mass = (alpha[lengths - 1, rows] * last).sum(axis=1)
    total = log_scale + np.log(np.maximum(end_mass, 1e-300)) + np.where(beyond, 0.0, top[..., 0]).sum(axis=0)
    gamma = np.empty((t_max, b_size, s_max), dtype=np.float32)
    loops = np.zeros((b_size, s_max))
    pad = np.zeros((b_size, 4))
    step_next = np.concatenate([step[:, 1:], pad[:, :1]], axis=1)  # transition j -> j + 1, indexed by j
    jump_next = np.concatenate([jump[:, 4:], pad], axis=1)  # transition j -> j + 4, indexed by j
    beta = np.zeros((b_size, s_max))
    for t in range(t_max - 1, -1, -1):
        if t < t_max - 1:
            ahead = probs[t + 1] * beta
            shifted = np.concatenate([ahead, pad], axis=1)
            raw = stay * ahead + step_next * shifted[:, 1 : s_max + 1] + jump_next * shifted[:, 4:]
            z = (alpha[t] * raw).sum(axis=1, keepdims=True)
            live = (t + 1 < lengths)[:, None] & (z > 0)
            loops += np.where(live, alpha[t] * stay * ahead / np.where(z > 0, z, 1.0), 0.0)
            scale = raw.sum(axis=1, keepdims=True)
            beta = raw / np.where(scale > 0, scale, 1.0)
        ending = lengths - 1 == t
        beta[ending] = last[ending]
        post = alpha[t] * beta
        mass = post.sum(axis=1, keepdims=True)
        gamma[t] = post / np.where(mass > 0, mass, 1.0)
    occupancy = []
    loop_counts = np.zeros(N_STATES)
    for b, g in enumerate(graphs):
        n = len(g.states)
        per_state = np.zeros((lengths[b], N_STATES), dtype=np.float32)
        np.add.at(per_state.T, g.states, gamma[: lengths[b], b, :n].T)
        occupancy.append(per_state)
        np.add.at(loop_counts, g.states, loops[b, :n])
    return occupancy, loop_counts, float(total.sum())


def baum_welch_pass(
    model: MonophoneHmm, x: torch.Tensor, offsets: Sequence[int], graphs: list[Graph], settings: HmmSettings
) -> tuple[torch.Tensor, float]:
    """One Baum-Welch iteration for single-Gaussian states; returns each frame's most likely state and the mean
    log-likelihood per frame."""
    dim = x.shape[1]
    occ = torch.zeros(N_STATES, dtype=torch.float64)
    first = torch.zeros(N_STATES, dim, dtype=torch.float64)
    second = torch.zeros(N_STATES, dim, dtype=torch.float64)
    loops = np.zeros(N_STATES)
    lengths = [offsets[u + 1] - offsets[u] for u in range(len(graphs))]
    best = torch.zeros(len(x), dtype=torch.long)
    total = 0.0
    fitting = [
        [u for u in batch if lengths[u] >= graphs[u].mandatory_frames]
        for batch in batches(lengths, settings.batch_frames)
    ]
    groups = [(fits, [x[offsets[u] : offsets[u + 1]] for u in fits]) for fits in fitting if fits]

    def expect(group: tuple[list[int], list[torch.Tensor]]) -> tuple[list[np.ndarray], np.ndarray, float]:
        fits, xs = group
        return forward_backward_batch(model, xs, [graphs[u] for u in fits])

    results = ordered_map(expect, groups, settings.workers)
    for (fits, xs), (occupancy, loop_counts, ll) in zip(groups, results, strict=True):
        total += ll
        loops += loop_counts
        for u, xu, gu in zip(fits, xs, occupancy, strict=True):
            g = torch.from_numpy(gu).double()
            xd = xu.double()
            occ += g.sum(0)
            first += g.T @ xd
            second += g.T @ (xd * xd)
            best[offsets[u] : offsets[u + 1]] = g.argmax(1)
    seen = occ > 1.0
    mu = first[seen] / occ[seen, None]
    model.means[seen, 0] = mu.float()
    model.variances[seen, 0] = torch.maximum((second[seen] / occ[seen, None] - mu * mu).float(), model.floor)
    loop = np.clip(np.where(occ.numpy() > 1.0, loops / np.maximum(occ.numpy(), 1.0), 0.7), 0.05, 0.95)
    model.log_loop = torch.tensor(np.log(loop), dtype=torch.float32)
    model.log_exit = torch.tensor(np.log1p(-loop), dtype=torch.float32)
    return best, total / max(1, len(x))


def batches(lengths: Sequence[int], batch_frames: int) -> list[list[int]]:
    """Utterance indices grouped by similar length, each batch about batch_frames padded frames."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    out: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and (len(current) + 1) * lengths[i] > batch_frames:
            out.append(current)
            current = []
        current.append(i)
    if current:
        out.append(current)
    return out


def viterbi_all(
    model: MonophoneHmm,
    x: torch.Tensor,
    offsets: Sequence[int],
    graphs: list[Graph],
    batch_frames: int,
    workers: int = 1,
) -> tuple[list[np.ndarray], float]:
    """Chain-position paths for every utterance (a uniform segmentation where the graph cannot fit), and the
    mean log-likelihood per frame; the batches on ``workers`` threads (the same numbers on any count)."""
    n_utt = len(graphs)
    lengths = [offsets[u + 1] - offsets[u] for u in range(n_utt)]
    paths: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * n_utt
    fits = [u for u in range(n_utt) if lengths[u] >= graphs[u].mandatory_frames and lengths[u] > 0]
    total = 0.0
    groups = [[fits[i] for i in batch] for batch in batches([lengths[u] for u in fits], batch_frames)]

    def decode(ids: list[int]) -> tuple[list[np.ndarray], list[float]]:
        return viterbi_batch(model, [x[offsets[u] : offsets[u + 1]] for u in ids], [graphs[u] for u in ids])

    for ids, (found, scores) in zip(groups, ordered_map(decode, groups, workers), strict=True):
        for u, p, score in zip(ids, found, scores, strict=True):
            paths[u] = p
            total += score
    for u in set(range(n_utt)) - set(fits):
        paths[u] = _uniform_positions(graphs[u], lengths[u])
    return paths, total / max(1, sum(lengths[u] for u in fits))


def _uniform_positions(graph: Graph, n_frames: int) -> np.ndarray:
    keep = np.repeat(~(graph.optional & graph.junction), STATES_PER_PHONE)
    chain = np.flatnonzero(keep)
    index = np.minimum((np.arange(n_frames) * len(chain)) // max(1, n_frames), len(chain) - 1)
    return chain[index]


# --- training ------------------------------------------------------------------------------------------------

Report = Callable[[dict[str, Any]], None]


def train_and_align(
    x: torch.Tensor,
    offsets: Sequence[int],
    words: list[list[list[str]]],
    settings: HmmSettings | None = None,
    train_ids: Sequence[int] | None = None,
    report: Report | None = None,
    init: MonophoneHmm | None = None,
) -> tuple[np.ndarray, MonophoneHmm, list[dict[str, float]]]:
    """EM on the train_ids utterances (all by default), then the forced alignment of every utterance: (N,) state
    labels over all frames, the model, and one record per EM pass.

    From a flat start through ``settings.stages``; or from ``init``, a model trained elsewhere on features in the
    same space (same front end, same global scale), re-estimated here by ``settings.refine_passes`` Viterbi EM
    passes at its number of Gaussians (it is left unchanged)."""
    settings = settings or HmmSettings()
    offsets = [int(o) for o in offsets]
    graphs = [utterance_graph(w) for w in words]
    n_utt = len(graphs)
    train_ids = list(range(n_utt)) if train_ids is None else list(train_ids)
    train_rows = torch.cat([torch.arange(offsets[u], offsets[u + 1]) for u in train_ids])
    x_train = x[train_rows]
    train_offsets = np.concatenate([[0], np.cumsum([offsets[u + 1] - offsets[u] for u in train_ids])]).tolist()
    train_graphs = [graphs[u] for u in train_ids]
    floor = settings.variance_floor * x_train.var(0)

    def frame_states(paths: list[np.ndarray], gs: list[Graph]) -> torch.Tensor:
        return torch.from_numpy(np.concatenate([g.states[p] for p, g in zip(paths, gs, strict=True)]))

    flat = [flat_start_states(g, train_offsets[i + 1] - train_offsets[i]) for i, g in enumerate(train_graphs)]
    states = torch.from_numpy(np.concatenate(flat))
    # Stages of (split every Gaussian first, EM passes, the first settings.baum_welch of them Baum-Welch while
    # there is one Gaussian per state); a model trained elsewhere gets Viterbi passes only, at its mixtures.
    stages: list[tuple[bool, int, int]]
    if init is None:
        model = initial_model(x_train, states, floor, settings.silence_prob, uniform=settings.flat_start == "uniform")
        stages = [(stage > 0, iterations, settings.baum_welch) for stage, iterations in enumerate(settings.stages)]
    else:
        model = init.copy()
        model.floor = floor  # this corpus's: variances are floored relative to the data they are estimated on
        stages = [(False, settings.refine_passes, 0)]
    history: list[dict[str, float]] = []
    previous = states
    for split, iterations, baum_welch in stages:
        if split:
            model.split(settings.split_offset)
        for it in range(iterations):
            if model.mixtures == 1 and it < baum_welch:
                states, ll = baum_welch_pass(model, x_train, train_offsets, train_graphs, settings)
            else:
                paths, ll = viterbi_all(
                    model, x_train, train_offsets, train_graphs, settings.batch_frames, settings.workers
                )
                states = frame_states(paths, train_graphs)
                reestimate_transitions(model, paths, train_graphs)
                reestimate_emissions(model, x_train, states, settings.min_count)
            record = {
                "mixtures": float(model.mixtures),
                "iteration": float(it + 1),
                "log_likelihood": ll,
                "changed": float((states != previous).float().mean()),
                "phones_changed": float((states // STATES_PER_PHONE != previous // STATES_PER_PHONE).float().mean()),
                "silence_prob": model.silence_prob,
                "silence_fraction": float((states // STATES_PER_PHONE == SILENCE_INDEX).float().mean()),
            }
            previous = states
            history.append(record)
            if report:
                report(record)
    paths, _ = viterbi_all(model, x, offsets, graphs, settings.batch_frames, settings.workers)
    labels = np.concatenate([g.states[p] for p, g in zip(paths, graphs, strict=True)])
    return labels, model, history


def align_store(
    store: Any,
    settings: HmmSettings | None = None,
    report: Report | None = None,
    save_to: str | Path | None = None,
    features: Any = None,
):
    """A FrameStore's utterances -> (N,) state labels (torch.long) and the EM history; trained on the train split.
    With ``save_to``, the trained HMM is saved there (``save_hmm``) for ``features``, the FeatureConfig the store
    was built with, so that a later corpus (a release's build) can start from it."""
    raw = store.frames.float().cpu() * store.normaliser.std.float().cpu() + store.normaliser.mean.float().cpu()
    x, scale = cmn_features(mfcc_from_logmel(raw), store.offsets.cpu().tolist())
    words = [u.words for u in store.utterances]
    train_ids = store.utterance_ids("train") or None
    labels, model, history = train_and_align(x, store.offsets.tolist(), words, settings, train_ids, report)
    if save_to is not None:
        if features is None:
            raise ValueError("saving the HMM needs the feature settings it was trained on")
        save_hmm(StoredHmm(model, feature_settings(features), scale), save_to)
    return torch.from_numpy(labels).long(), history


def feature_settings(features: Any) -> dict[str, Any]:
    """What a saved HMM's input depends on: the front end's settings (a FeatureConfig, less the splice context the
    HMM does not use) and how the MFCCs are made from its log-mel features."""
    front_end = {k: v for k, v in dataclasses.asdict(features).items() if k != "context"}
    return {**front_end, "mfcc": f"c1-c{N_CEPSTRA} and log energy, deltas, delta-deltas; per-utterance mean removed"}


assert N_STATES == N_PHONES * STATES_PER_PHONE
