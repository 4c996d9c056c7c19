"""The monophone HMM aligner: boundaries recovered from a flat start, its graph, features and dispatch."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch

from speech.lexicon import PHONE_INDEX, SILENCE_INDEX, STATES_PER_PHONE
from training.ml import hmm_align
from training.ml.align import phone_segments
from training.ml.config import Config

PHONES = ["HH", "AH", "L", "OW", "W", "ER", "D", "S", "IY", "DH", "K", "AE", "T", "IH", "M", "N"]
# Random words, so that each phone is heard in many contexts (as in speech): EM tells phones apart by their contexts.
VOCABULARY = [
    list(np.random.default_rng(7).choice(PHONES, size=n, replace=False))
    for n in np.random.default_rng(8).integers(2, 6, 30)
]
FAST = hmm_align.HmmSettings(stages=(4, 2, 2), batch_frames=20_000, min_count=5.0)


def synthetic_corpus(n: int = 80, dim: int = 39, seed: int = 0, utterance_seed: int | None = None):
    """Utterances of random words whose frames are drawn around a mean per (phone, state), with silences at the ends
    and between some words: features, offsets, words and the true phone segments (phone, start, end) in frames.
    ``seed`` draws the sounds (the means); ``utterance_seed``, when given, other utterances of the same sounds."""
    rng = np.random.default_rng(seed)
    # A phone's three states are onset, steady part and offset of one sound: near one another, far from other phones.
    phone_means = rng.normal(0.0, 1.5, size=(len(PHONE_INDEX), 1, dim))
    means = phone_means + rng.normal(0.0, 0.7, size=(len(PHONE_INDEX), STATES_PER_PHONE, dim))
    means[SILENCE_INDEX] = phone_means[SILENCE_INDEX]  # silence is stationary, as a room's background is
    if utterance_seed is not None:
        rng = np.random.default_rng(utterance_seed)
    feats, offsets, words_all, truths = [], [0], [], []
    for _ in range(n):
        words = [VOCABULARY[i] for i in rng.integers(0, len(VOCABULARY), size=rng.integers(2, 5))]
        segments: list[int] = [SILENCE_INDEX]
        for k, word in enumerate(words):
            segments += [PHONE_INDEX[p] for p in word]
            if k < len(words) - 1 and rng.random() < 0.3:
                segments.append(SILENCE_INDEX)
        segments.append(SILENCE_INDEX)
        frames, truth, t = [], [], 0
        for phone in segments:
            lengths = rng.integers(2, 7, size=STATES_PER_PHONE) + (
                rng.integers(5, 30, size=3) if phone == SILENCE_INDEX else 0
            )
            for s, length in enumerate(lengths):
                frames.append(means[phone, s] + rng.normal(0.0, 1.0, size=(length, dim)))
            truth.append((phone, t, t + int(lengths.sum())))
            t += int(lengths.sum())
        feats.append(np.concatenate(frames))
        offsets.append(offsets[-1] + t)
        words_all.append(words)
        truths.append(truth)
    return torch.from_numpy(np.concatenate(feats)).float(), offsets, words_all, truths


def phone_runs(labels: np.ndarray) -> list[tuple[int, int, int]]:
    return [run for run in phone_segments(labels) if run[0] != SILENCE_INDEX]


def boundary_hits(labels: np.ndarray, offsets: list[int], truths, tolerance: int) -> float:
    """Share of spoken phones' onsets and offsets within `tolerance` frames of the truth."""
    hits = total = 0
    for u, truth in enumerate(truths):
        found = phone_runs(labels[offsets[u] : offsets[u + 1]])
        spoken = [seg for seg in truth if seg[0] != SILENCE_INDEX]
        assert [p for p, _, _ in found] == [p for p, _, _ in spoken]
        for (_, s1, e1), (_, s2, e2) in zip(found, spoken, strict=True):
            hits += (abs(s1 - s2) <= tolerance) + (abs(e1 - e2) <= tolerance)
            total += 2
    return hits / total


@pytest.fixture(scope="module")
def synthetic():
    torch.manual_seed(0)
    x, offsets, words, truths = synthetic_corpus()
    labels, model, history = hmm_align.train_and_align(x, offsets, words, FAST)
    return {"x": x, "offsets": offsets, "words": words, "truths": truths, "labels": labels, "model": model,
            "history": history}  # fmt: skip


def test_em_from_a_flat_start_recovers_the_boundaries(synthetic):
    offsets, words, truths = synthetic["offsets"], synthetic["words"], synthetic["truths"]
    flat = np.concatenate(
        [
            hmm_align.flat_start_states(hmm_align.utterance_graph(w), offsets[u + 1] - offsets[u])
            for u, w in enumerate(words)
        ]
    )
    uniform = boundary_hits(flat, offsets, truths, tolerance=1)
    aligned = boundary_hits(synthetic["labels"], offsets, truths, tolerance=1)
    exact = boundary_hits(synthetic["labels"], offsets, truths, tolerance=0)
    print(f"boundaries within a frame: uniform {uniform:.3f}, HMM {aligned:.3f} (exact {exact:.3f})")
    assert aligned >= 0.9
    assert uniform < 0.5


def test_em_improves_the_likelihood_and_settles(synthetic):
    history = synthetic["history"]
    assert [h["mixtures"] for h in history] == [1.0] * 4 + [2.0] * 2 + [4.0] * 2
    assert synthetic["model"].mixtures == 4
    assert history[-1]["log_likelihood"] > history[0]["log_likelihood"]
    assert history[-1]["phones_changed"] < 0.01 < history[0]["phones_changed"]


def test_silence_between_words_is_optional(synthetic):
    """The aligner puts a silence between two words where there is one, and none where there is none."""
    offsets, truths, labels = synthetic["offsets"], synthetic["truths"], synthetic["labels"]
    agree = total = 0
    for u, truth in enumerate(truths):
        inner = truth[1:-1]
        found = [run[0] for run in phone_segments(labels[offsets[u] : offsets[u + 1]])][1:-1]
        agree += int(found == [p for p, _, _ in inner])
        total += 1
    assert agree / total >= 0.95


def test_every_label_is_a_state_of_the_utterance_in_order(synthetic):
    offsets, words, labels = synthetic["offsets"], synthetic["words"], synthetic["labels"]
    for u, w in enumerate(words):
        lab = labels[offsets[u] : offsets[u + 1]]
        graph = hmm_align.utterance_graph(w)
        assert set(lab.tolist()) <= set(graph.states.tolist())
        phones = [p for p, _, _ in phone_runs(lab)]
        assert phones == [PHONE_INDEX[p] for word in w for p in word]
        # within a phone the states only move forward, 0 -> 1 -> 2, each at least one frame
        for _, start, end in phone_runs(lab):
            assert lab[start:end].tolist() == sorted(lab[start:end].tolist())
            assert len(set(lab[start:end].tolist())) == STATES_PER_PHONE


def test_batched_viterbi_matches_one_utterance_at_a_time(synthetic):
    model, x, offsets, words = synthetic["model"], synthetic["x"], synthetic["offsets"], synthetic["words"]
    graphs = [hmm_align.utterance_graph(w) for w in words[:6]]
    xs = [x[offsets[u] : offsets[u + 1]] for u in range(6)]
    together, scores = hmm_align.viterbi_batch(model, xs, graphs)
    for u in range(6):
        alone, score = hmm_align.viterbi_batch(model, [xs[u]], [graphs[u]])
        np.testing.assert_array_equal(together[u], alone[0])
        assert scores[u] == pytest.approx(score[0], rel=1e-5)


def test_too_short_an_utterance_gets_a_uniform_segmentation(synthetic):
    model = synthetic["model"]
    graph = hmm_align.utterance_graph([["HH", "AH", "L", "OW"]])
    paths, _ = hmm_align.viterbi_all(model, torch.zeros(5, 39), [0, 5], [graph], 10_000)
    assert len(paths[0]) == 5


FEATURES = {"sample_rate": 16000, "n_mels": 40, "mfcc": "test"}


def stored(synthetic) -> hmm_align.StoredHmm:
    return hmm_align.StoredHmm(synthetic["model"], FEATURES, torch.linspace(0.5, 2.0, 39))


def test_a_saved_hmm_loads_back_whole_and_aligns_alike(synthetic, tmp_path):
    hmm_align.save_hmm(stored(synthetic), tmp_path / "a.pt")
    hmm_align.save_hmm(stored(synthetic), tmp_path / "b.pt")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()  # a rebuilt release stores the same
    loaded = hmm_align.load_hmm(tmp_path / "a.pt", features=dict(FEATURES))
    model = synthetic["model"]
    assert loaded.features == FEATURES and torch.equal(loaded.scale, torch.linspace(0.5, 2.0, 39))
    for name in ("means", "variances", "log_weights", "log_loop", "log_exit", "floor"):
        assert torch.equal(getattr(loaded.model, name), getattr(model, name)), name
    assert loaded.model.silence_prob == model.silence_prob
    # Started from the loaded model with no pass of its own, the aligner gives the alignment the model made.
    x, offsets, words = synthetic["x"], synthetic["offsets"], synthetic["words"]
    no_passes = dataclasses.replace(FAST, refine_passes=0)
    labels, _, history = hmm_align.train_and_align(x, offsets, words, no_passes, init=loaded.model)
    assert history == [] and np.array_equal(labels, synthetic["labels"])


def test_a_saved_hmm_for_other_features_or_phones_or_a_damaged_file_is_refused(synthetic, tmp_path):
    path = tmp_path / "hmm.pt"
    hmm_align.save_hmm(stored(synthetic), path)
    with pytest.raises(hmm_align.HmmMismatch, match=r"other feature settings \(differ: n_mels\)"):
        hmm_align.load_hmm(path, features={**FEATURES, "n_mels": 80})
    payload = torch.load(path, weights_only=True)
    torch.save({**payload, "phones": payload["phones"][:-1]}, tmp_path / "phones.pt")
    with pytest.raises(hmm_align.HmmMismatch, match="another phone set"):
        hmm_align.load_hmm(tmp_path / "phones.pt", features=FEATURES)
    torch.save({**payload, "means": payload["means"][:, :1]}, tmp_path / "shape.pt")
    with pytest.raises(hmm_align.HmmMismatch, match="means is not a finite tensor"):
        hmm_align.load_hmm(tmp_path / "shape.pt", features=FEATURES)
    (tmp_path / "cut.pt").write_bytes(path.read_bytes()[:500])
    with pytest.raises(hmm_align.HmmMismatch, match="unreadable"):
        hmm_align.load_hmm(tmp_path / "cut.pt", features=FEATURES)


def test_a_model_trained_on_other_utterances_aligns_new_ones_after_a_few_passes(synthetic):
    """The release builder's path: the previous model, re-estimated on a new corpus of the same sounds."""
    x, offsets, words, truths = synthetic_corpus(n=40, utterance_seed=5)
    before = synthetic["model"].means.clone()
    labels, model, history = hmm_align.train_and_align(x, offsets, words, FAST, init=synthetic["model"])
    assert len(history) == FAST.refine_passes == 2 and model.mixtures == synthetic["model"].mixtures
    assert torch.equal(synthetic["model"].means, before)  # the given model is left as it was
    assert boundary_hits(labels, offsets, truths, tolerance=1) >= 0.9


def test_em_and_alignment_on_threads_give_the_one_thread_numbers_bit_for_bit(synthetic):
    """Batches on several threads (the release build's two cores), combined in order: the same model, labels and
    history as one thread, from a flat start (Baum-Welch and Viterbi passes, mixture splits) and from a model."""
    x, offsets, words = synthetic["x"], synthetic["offsets"], synthetic["words"]
    small = dataclasses.replace(FAST, batch_frames=1_500)  # some twenty batches: every pass spans many
    assert len(hmm_align.batches(np.diff(offsets).tolist(), small.batch_frames)) > 10
    for init in (None, synthetic["model"]):
        one = hmm_align.train_and_align(x, offsets, words, small, init=init)
        three = hmm_align.train_and_align(x, offsets, words, dataclasses.replace(small, workers=3), init=init)
        assert np.array_equal(one[0], three[0]) and one[2] == three[2]
        for name in ("means", "variances", "log_weights", "log_loop", "log_exit"):
            assert torch.equal(getattr(one[1], name), getattr(three[1], name)), name


def test_ordered_map_keeps_the_order_runs_ahead_boundedly_and_raises():
    import threading
    import time

    from training.ml.threads import ordered_map

    started: list[int] = []
    lock = threading.Lock()

    def work(i: int) -> int:
        with lock:
            started.append(i)
        time.sleep(0.002 * (i % 3))  # later items may finish first
        return i * i

    results = []
    for i, value in enumerate(ordered_map(work, range(20), workers=3)):
        with lock:
            assert len(started) <= i + 1 + 3  # at most `workers` ahead of the one being consumed
        results.append(value)
    assert results == [i * i for i in range(20)]
    assert list(ordered_map(work, range(5), workers=1)) == [0, 1, 4, 9, 16]

    def fail(i: int) -> int:
        if i == 4:
            raise ValueError("item 4")
        return i

    with pytest.raises(ValueError, match="item 4"):
        list(ordered_map(fail, range(10), workers=2))


def test_mfcc_deltas_are_the_dct_of_the_log_mel_deltas():
    from training.ml.config import FeatureConfig
    from training.ml.features import FeatureExtractor, deltas

    wave = torch.from_numpy(np.random.default_rng(1).normal(0, 0.1, 16000).astype(np.float32))[None]
    raw = FeatureExtractor(FeatureConfig())(wave)[0]
    mfcc = hmm_align.mfcc_from_logmel(raw)
    assert mfcc.shape == (raw.shape[0], hmm_align.MFCC_DIM)
    static = mfcc[:, :13].T[None]
    np.testing.assert_allclose(deltas(static)[0].T.numpy(), mfcc[:, 13:26].numpy(), atol=1e-3)
    np.testing.assert_allclose(deltas(deltas(static))[0].T.numpy(), mfcc[:, 26:].numpy(), atol=1e-3)


def synthetic_store(n: int = 30):
    """A FrameStore whose 123-dim frames carry the synthetic corpus (so its MFCCs separate the phones)."""
    from training.ml.data import FrameStore, Utterance
    from training.ml.features import Normaliser

    x, offsets, words, truths = synthetic_corpus(n=n, dim=123, seed=3)
    utterances = [
        Utterance(utt_id=f"u{u}", speaker=f"s{u % 3}", audio="", text="", split="train", words=w)
        for u, w in enumerate(words)
    ]
    store = FrameStore(utterances, x, torch.tensor(offsets), Normaliser(), context=1)
    return store, truths


def test_align_corpus_dispatches_on_the_method(tmp_path):
    from training.ml.align import align_corpus

    store, truths = synthetic_store()
    config = Config()
    config.train.device = "cpu"
    config.train.progress = False
    hmm = dataclasses.replace(config, align=dataclasses.replace(config.align, method="hmm", rounds=0))
    labels, history = align_corpus(store, hmm, progress=False, hmm_path=tmp_path / "hmm.pt")
    assert len(labels) == len(store.frames)
    # The HMM is kept for the features it was trained on, which a release build checks before starting from it.
    kept = hmm_align.load_hmm(tmp_path / "hmm.pt", features=hmm_align.feature_settings(config.features))
    assert kept.model.mixtures == 2 ** (len(config.align.hmm_stages) - 1) and len(kept.scale) == 39
    assert history and all("mixtures" in h for h in history)
    assert boundary_hits(labels.numpy(), store.offsets.tolist(), truths, tolerance=1) > 0.7
    wrong = dataclasses.replace(config, align=dataclasses.replace(config.align, method="ctc"))
    with pytest.raises(ValueError, match=r"align\.method"):
        align_corpus(store, wrong, progress=False)


def test_an_espeak_ng_reading_is_aligned_within_20_ms():
    """A dozen espeak-ng readings with their own phone timings: the HMM puts most boundaries within 20 ms."""
    alignment = pytest.importorskip("benchmarks.alignment")
    if not alignment.espeak_available():
        pytest.skip("libespeak-ng is not installed")
    references = alignment.espeak_corpus(list(alignment.DEMO_SENTENCES[:12]), 12, seed=1)
    words, phones = references[0].words, references[0].phones
    assert [p for w in words for p in w] == [p for p, _, _ in phones]
    assert all(s < e for _, s, e in phones) and all(a[2] <= b[1] + 1e-9 for a, b in itertools.pairwise(phones))
    store = alignment.store_for(references, Config())
    labels, _ = hmm_align.align_store(store, FAST)
    scores = alignment.score_labels(references, store, labels)
    uniform = alignment.score_labels(references, store, torch.from_numpy(np.concatenate([
        hmm_align.flat_start_states(hmm_align.utterance_graph(r.words), int(store.offsets[u + 1] - store.offsets[u]))
        for u, r in enumerate(references)])))  # fmt: skip
    print(f"espeak-ng, 12 readings: HMM {scores.within(0.02):.3f} within 20 ms, uniform {uniform.within(0.02):.3f}")
    assert scores.mismatched == 0
    assert scores.within(0.02) > 0.7 > uniform.within(0.02) + 0.3
