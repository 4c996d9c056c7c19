"""The stages the CLI runs: prepare, align, train (labels or mimic), evaluate, export; all under work_dir.

Shared artefacts live in folders keyed by a hash of exactly the settings they depend on, with that key's
settings in key.json beside them: work_dir/features/KEY (store.pt, and the teachers' logits for its training
frames), work_dir/alignments/KEY (alignment.pt, phn/, hmm.pt). Runs that differ in any such setting never share one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import platform
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speech.decoding import decode_greedy
from speech.lexicon import STATES_PER_PHONE
from speech.score import ErrorCounts, align_counts, corpus_counts, paired_speaker_bootstrap
from speech.score import scored as scored_phones
from training.ml.align import align_corpus, load_alignment, save_alignment, state_prior, write_phn
from training.ml.config import (
    Config,
    ConfigMismatch,
    InvalidConfig,
    TrainConfig,
    apply_overrides,
    config_digest,
    save_config,
)
from training.ml.data import (
    FrameStore,
    MissingSplit,
    attach_pronunciations,
    compute_features,
    load_audio,
    prepare_corpus,
    read_manifest,
    read_release_manifest,
    require_splits,
    store_dir,
    store_settings,
)
from training.ml.decode import Decoder, DecodeWeights, PhoneBigram, collapse, to_phones, transition_logs, tune
from training.ml.export import WaveformModel, export_onnx
from training.ml.features import Normaliser
from training.ml.models import build_model, count_parameters, depth_of, outputs_for
from training.ml.threads import fixed_threads
from training.ml.train import (
    CHECKPOINT,
    Progress,
    fit,
    frame_accuracy,
    load_model,
    resolve_device,
    run_digest,
    teacher_logits,
    utterance_log_probs,
)
from training.ml.transfer import check_transfer, transfer_positions, with_transfer

ALIGNMENT = "alignment.pt"
HMM = "hmm.pt"  # the "hmm" aligner's monophone HMM (hmm_align.save_hmm), beside the alignment it made


@contextlib.contextmanager
def _work_dir_lock(config: Config) -> Iterator[None]:
    """One process at a time builds a work_dir's shared store and alignment; the others wait, then read them."""
    folder = Path(config.work_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def prepare(config: Config) -> FrameStore:
    """The feature store of the config's data and features (built once per key); train and dev splits required."""
    with _work_dir_lock(config):
        store = prepare_corpus(config, progress=config.train.progress)
    require_splits(store, ("train", "dev"))
    return store


def aligner_config(config: Config) -> Config:
    """The config the aligner runs under: the run's data, features and alignment settings and its seed, the
    default training settings otherwise (not the run's learning rate or batch size), so that an alignment is a
    function of what its key holds and a learning-rate sweep of the models shares one alignment. Only the
    machine (device) stays the run's."""
    tc = config.train
    train = TrainConfig(seed=alignment_seed(config), device=tc.device, progress=tc.progress)
    return dataclasses.replace(config, train=train)


def alignment_seed(config: Config) -> int:
    """``align.seed``, or the run's seed when that is 0 (the default, so that runs of another seed realign)."""
    return config.align.seed or config.train.seed


def alignment_settings(config: Config) -> dict[str, Any]:
    """Exactly what an alignment depends on: its store's settings, the splice context, the alignment settings
    and the seed (the effective one, so that ``align.seed`` equal to ``train.seed`` keys the same alignment)."""
    align = dataclasses.asdict(config.align)
    del align["seed"]
    return {
        "store": store_settings(config),
        "context": config.features.context,
        "align": align,
        "seed": alignment_seed(config),
    }


def alignment_dir(config: Config) -> Path:
    """work_dir/alignments/KEY: alignment.pt, alignment.json, phn/ (TIMIT .phn files, alignments.jsonl) and, for
    ``align.method = "hmm"``, hmm.pt (the HMM that started the alignment)."""
    return Path(config.work_dir) / "alignments" / config_digest(alignment_settings(config))


def align(
    config: Config, callback: Progress | None = None, store: FrameStore | None = None
) -> tuple[torch.Tensor, list[dict[str, float]]]:
    if config.align.threads < 1:
        raise InvalidConfig(f"align.threads is a number of CPU threads, at least 1, not {config.align.threads}.")
    folder = alignment_dir(config)
    path = folder / ALIGNMENT
    with _work_dir_lock(config):
        if path.exists():
            return load_alignment(path)
    store = store if store is not None else prepare(config)
    require_splits(store, ("train",))  # the aligner's classifiers and prior: the train split only
    with _work_dir_lock(config):
        if path.exists():  # another process aligned while this one waited
            return load_alignment(path)
        torch.manual_seed(alignment_seed(config))  # the aligner's classifiers: the same labels whatever ran before
        folder.mkdir(parents=True, exist_ok=True)
        with fixed_threads(config.align.threads):
            labels, history = align_corpus(
                store, aligner_config(config), progress=config.train.progress, callback=callback, hmm_path=folder / HMM
            )
        (folder / "key.json").write_text(json.dumps(alignment_settings(config), indent=2, sort_keys=True) + "\n")
        save_alignment(path, labels, history)
        shift, length = config.features.frame_shift, config.features.frame_length
        write_phn(store, labels, folder / "phn", shift, length)
    return labels, history


def _load(config: Config, device: torch.device, callback: Progress | None = None) -> tuple[FrameStore, torch.Tensor]:
    store = prepare(config)
    labels, _ = align(config, callback, store)
    return store.to(device), labels.to(device)


def is_ctc(config: Config) -> bool:
    """A CTC run learns from the canonical phones alone: no alignment, no HMM decoder, greedy decoding."""
    return config.train.objective == "ctc"


def train(
    config: Config, run_dir: str | Path, stop_after: int | None = None, callback: Progress | None = None
) -> list[dict[str, float]]:
    """A teacher or student on labels, or a mimic of config.train.teacher; resumes from run_dir."""
    run_dir = Path(run_dir)
    if config.model.kind == "ensemble":
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / "config.json")
        return []
    check_transfer(config)  # before minutes of features and alignment
    if config.train.objective.startswith("mimic"):
        check_teacher(config)
    device = resolve_device(config.train.device)
    if is_ctc(config):
        store, labels = prepare(config).to(device), None
    else:
        store, labels = _load(config, device, callback)
    torch.manual_seed(config.train.seed)
    model = build_model(config.model, store.input_dim, store.context, outputs_for(config.train.objective))
    store = with_transfer(config, store, progress=config.train.progress)  # a mimic's transfer set, if it has one
    train_pos = transfer_positions(store)
    dev_pos = store.frame_positions(store.utterance_ids("dev"))
    targets, digest = None, ""
    if config.train.objective.startswith("mimic"):
        targets, digest = teacher_targets(config, store, train_pos, device)
    return fit(
        model,
        store,
        train_pos,
        config,
        run_dir,
        labels=labels,
        dev_positions=dev_pos,
        stop_after=stop_after,
        desc=run_dir.name,
        callback=callback,
        targets=targets,
        teacher_digest=digest,
    )


def check_teacher(config: Config) -> Path:
    """The mimic's teacher directory; ConfigMismatch when the teacher was trained on other features."""
    teacher_dir = Path(config.train.teacher)
    if not config.train.teacher or not (teacher_dir / "config.json").exists():
        raise FileNotFoundError(teacher_dir / "config.json")
    teacher_config = Config.from_dict(json.loads((teacher_dir / "config.json").read_text()))
    if dataclasses.asdict(teacher_config.features) != dataclasses.asdict(config.features):
        raise ConfigMismatch(
            f"The teacher {teacher_dir} was trained on other features ({dataclasses.asdict(teacher_config.features)}) "
            f"than this mimic's ({dataclasses.asdict(config.features)}); a mimic learns from the teacher's logits for "
            "its own input frames, so both take the same features."
        )
    return teacher_dir


def teacher_targets(
    config: Config, store: FrameStore, train_positions: torch.Tensor, device: torch.device
) -> tuple[torch.Tensor, str]:
    """The teacher's float32 logits for every training frame and the teacher's checkpoint digest: the paper's
    "label the data with the teacher" step, done once per teacher and store and cached under the store's folder,
    so a mimic epoch costs one forward pass of the student only."""
    teacher_dir = check_teacher(config)
    digest = run_digest(teacher_dir)
    key = config_digest(
        {"teacher_sha256": digest, "context": store.context, "split": "train"}
        | ({"transfer_speeds": config.train.transfer_speeds} if config.train.transfer_speeds else {})
    )
    path = store_dir(config) / "teacher_logits" / f"{key}.pt"
    with _work_dir_lock(config):
        if path.exists():
            cached = torch.load(path, map_location=device, weights_only=True)
            if cached["teacher_sha256"] == digest and len(cached["logits"]) == len(train_positions):
                return cached["logits"].to(device), digest
        teacher = load_model(teacher_dir, device)[0]
        logits = teacher_logits(teacher, store, train_positions)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save({"logits": logits.cpu(), "teacher_sha256": digest}, tmp)
        tmp.replace(path)
    return logits, digest


def _decoder(store: FrameStore, labels: torch.Tensor, config: Config) -> Decoder:
    require_splits(store, ("train",))  # the bigram, state prior and transitions: training transcripts only
    train_ids = store.utterance_ids("train")
    sequences = [collapse(labels[int(store.offsets[u]) : int(store.offsets[u + 1])].cpu().numpy()) for u in train_ids]
    train_labels = labels[store.frame_positions(train_ids)].cpu()
    log_loop, log_next = transition_logs(train_labels, config.decode.self_loop)
    return Decoder(PhoneBigram.estimate(sequences), torch.log(state_prior(train_labels)), log_loop, log_next)


def _references(store: FrameStore, utt_ids: list[int]) -> list[list[str]]:
    return [[p for word in store.utterances[u].words for p in word] for u in utt_ids]


def evaluate(
    run_dir: str | Path,
    splits: tuple[str, ...] = ("test", "hidden"),
    callback: Progress | None = None,
    decode: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Frame accuracy and PER; decoding weights tuned on dev only, then applied to the reported splits.
    ``decode``: settings of the decoding grid to use instead of the run's (e.g. the same grid for every model)."""
    run_dir = Path(run_dir)
    device = resolve_device("auto")
    model, config = load_model(run_dir, device)
    if is_ctc(config):
        return _evaluate_ctc(run_dir, model, config, splits, device)
    apply_overrides(config, {"decode": decode or {}})
    store, labels = _load(config, device)
    decoder = _decoder(store, labels, config)
    dec = config.decode
    require_splits(store, ("dev",))  # the decoding weights are tuned on dev, never on a reported split
    dev_ids = store.utterance_ids("dev")
    dev_refs = _references(store, dev_ids)
    dev_lp = utterance_log_probs(model, store, dev_ids)
    grid = len(dec.acoustic_scales) * len(dec.prior_scales) * len(dec.lm_weights) * len(dec.insertion_penalties)
    tried = 0

    def dev_per_of(hyps: list[list[int]]) -> float:
        nonlocal tried
        tried += 1
        if callback:  # a decoding grid on a large dev split takes minutes: report, so the run looks alive
            callback({"event": "decode", "stage": "evaluate", "point": tried, "points": grid})
        return corpus_counts(dev_refs, [to_phones(h) for h in hyps]).per

    weights, dev_per, _ = tune(
        decoder,
        dev_lp,
        dev_per_of,
        dec.acoustic_scales,
        dec.prior_scales,
        dec.lm_weights,
        dec.insertion_penalties,
    )
    metrics: dict[str, Any] = {
        "run": run_dir.name,
        "kind": config.model.kind,
        "objective": config.train.objective,
        "parameters": count_parameters(model),
        "depth": depth_of(model),
        "weights": weights.__dict__,
        "dev": {"per": dev_per, "frame_acc": _frame_acc(model, store, dev_ids, labels)},
        "hardware": {
            "device": str(device),
            "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
        },
    }
    for split in splits:
        ids = store.utterance_ids(split)
        if not ids:
            continue
        hyps = decoder.decode(utterance_log_probs(model, store, ids), weights)
        metrics[split] = _split_scores(store, ids, [to_phones(h) for h in hyps])
        metrics[split]["frame_acc"] = _frame_acc(model, store, ids, labels)
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def _split_scores(store: FrameStore, ids: list[int], hypotheses: list[list[str]]) -> dict[str, Any]:
    """PER counts of a split, and each utterance's errors and reference length with its speaker: what a paired
    speaker bootstrap between runs (``finding``) resamples."""
    references = _references(store, ids)
    counts = [align_counts(r, h) for r, h in zip(references, hypotheses, strict=True)]
    return {
        **sum(counts, ErrorCounts()).as_dict(),
        "utterances": {
            "utt_id": [store.utterances[u].utt_id for u in ids],
            "speaker": [store.utterances[u].speaker for u in ids],
            "errors": [c.errors for c in counts],
            "n": [c.reference for c in counts],
        },
    }


def ctc_phones(log_probs: torch.Tensor) -> list[str]:
    """The leaderboard's ``greedy_ctc`` decoding of one utterance's (T, 41) outputs: argmax, repeats collapsed,
    blank and silence dropped."""
    return decode_greedy(log_probs.numpy(), ctc=True)


def _evaluate_ctc(
    run_dir: Path, model: torch.nn.Module, config: Config, splits: tuple[str, ...], device: torch.device
) -> dict[str, Any]:
    """PER of a CTC run with greedy decoding (nothing to tune: dev is reported, not used); no frame accuracy,
    since CTC has no frame targets."""
    store = prepare(config).to(device)
    metrics: dict[str, Any] = {
        "run": run_dir.name,
        "kind": config.model.kind,
        "objective": config.train.objective,
        "decoder": "greedy_ctc",
        "parameters": count_parameters(model),
        "depth": depth_of(model),
        "weights": None,
        "hardware": {
            "device": str(device),
            "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
        },
    }
    for split in ("dev", *splits):
        ids = store.utterance_ids(split)
        if not ids:
            continue
        hyps = [ctc_phones(lp) for lp in utterance_log_probs(model, store, ids)]
        metrics[split] = _split_scores(store, ids, hyps)
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def score_manifest(
    run_dirs: Sequence[str | Path],
    manifest: str | Path,
    *,
    split: str = "",
    lexicon: str | Path | None = None,
    resamples: int = 2000,
) -> dict[str, Any]:
    """Score trained runs on any corpus: a release's JSONL manifest (its canonical phones; ``split`` picks one
    split) or a corpus TSV in the shared format (pronounced with ``lexicon``, else the manifest's lexicon.txt,
    every utterance scored). Each run decodes with what it learnt, never with the scored data: its checkpoint's
    normaliser, its training store's bigram and state prior, and the decoding weights ``evaluate`` tuned on its
    dev split. Every run after the first is compared with the first by a paired speaker-level bootstrap."""
    manifest = Path(manifest)
    if manifest.suffix == ".jsonl":
        utterances = read_release_manifest(manifest)
    else:
        utterances = read_manifest(manifest)
        attach_pronunciations(utterances, lexicon or manifest.parent / "lexicon.txt")
    if split:
        utterances = [u for u in utterances if u.split == split]
    if not utterances:
        raise MissingSplit(f"{manifest} has no utterances" + (f" in the {split} split" if split else "") + ".")
    waves = [load_audio(u.audio) for u in utterances]
    references = [[p for word in u.words for p in word] for u in utterances]
    features: dict[str, list[torch.Tensor]] = {}  # by feature settings: runs trained alike share them
    results: list[dict[str, Any]] = []
    for run_dir in map(Path, run_dirs):
        model, config = load_model(run_dir, "cpu")
        metrics_path = run_dir / "metrics.json"
        if not is_ctc(config) and not metrics_path.is_file():
            raise MissingSplit(f"{run_dir} has no dev-tuned decoding weights yet: run `evaluate --run` on it first.")
        key = json.dumps(dataclasses.asdict(config.features), sort_keys=True)
        if key not in features:
            features[key] = compute_features(waves, config.features)
        feats = features[key]
        normaliser = _normaliser(run_dir, config)
        scored = [i for i, f in enumerate(feats) if len(f)]
        offsets = torch.zeros(len(scored) + 1, dtype=torch.long)
        offsets[1:] = torch.cumsum(torch.tensor([len(feats[i]) for i in scored]), 0)
        with torch.no_grad():
            frames = normaliser(torch.cat([feats[i] for i in scored]))
        target = FrameStore([utterances[i] for i in scored], frames, offsets, normaliser, config.features.context)
        log_probs = utterance_log_probs(model, target, list(range(len(scored))))
        if is_ctc(config):  # greedy, as the leaderboard decodes CTC output: no weights, no bigram
            hypotheses = [ctc_phones(lp) for lp in log_probs]
        else:
            weights = DecodeWeights(**json.loads(metrics_path.read_text())["weights"])
            store, labels = _load(config, torch.device("cpu"))
            hypotheses = [to_phones(h) for h in _decoder(store, labels, config).decode(log_probs, weights)]
        per_utterance = {i: align_counts(references[i], []) for i in range(len(utterances))}  # no frame: all deleted
        for i, hypothesis in zip(scored, hypotheses, strict=True):
            per_utterance[i] = align_counts(references[i], hypothesis)
        total = sum(per_utterance.values(), ErrorCounts())
        results.append(
            {
                "run": run_dir.name,
                "kind": config.model.kind,
                "objective": config.train.objective,
                "parameters": count_parameters(model),
                **total.as_dict(),
                "_errors": [per_utterance[i].errors for i in range(len(utterances))],
            }
        )
    speakers = [u.speaker for u in utterances]
    lengths = [len(scored_phones(r)) for r in references]
    first = results[0]["_errors"]
    for result in results:
        errors = result.pop("_errors")
        if result is not results[0]:
            diff = paired_speaker_bootstrap(speakers, first, errors, lengths, resamples=resamples)
            result["vs_first"] = dataclasses.asdict(diff) | {"significant": diff.significant}
    return {
        "manifest": str(manifest),
        "split": split,
        "utterances": len(utterances),
        "speakers": len(set(speakers)),
        "runs": results,
    }


def manifest_table(scores: dict[str, Any]) -> str:
    """Markdown: one row per run, the first run the reference of the bootstrap column."""
    runs = scores["runs"]
    rows = [
        f"{scores['manifest']}{' (' + scores['split'] + ')' if scores['split'] else ''}: {scores['utterances']} "
        f"utterances, {scores['speakers']} speakers; differences against {runs[0]['run']}, paired speaker "
        "bootstrap, 95 %",
        "",
        "| run | model | objective | params | PER | S | D | I | PER - first [95 % interval] |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in runs:
        vs = r.get("vs_first")
        diff = f"{100 * vs['difference']:+.2f} [{100 * vs['low']:+.2f}, {100 * vs['high']:+.2f}]" if vs else "-"
        rows.append(
            f"| {r['run']} | {r['kind']} | {r['objective']} | {r['parameters']:,} | {100 * r['per']:.1f} | "
            f"{r['sub']} | {r['del']} | {r['ins']} | {diff} |"
        )
    return "\n".join(rows)


def _frame_acc(model: torch.nn.Module, store: FrameStore, ids: list[int], labels: torch.Tensor) -> float:
    return frame_accuracy(model, store, store.frame_positions(ids), labels)


def phone_frame_accuracy(model: torch.nn.Module, store: FrameStore, ids: list[int], labels: torch.Tensor) -> float:
    hits, total = 0, 0
    for u, lp in zip(ids, utterance_log_probs(model, store, ids), strict=True):
        ref = labels[int(store.offsets[u]) : int(store.offsets[u + 1])].cpu() // STATES_PER_PHONE
        hits += int((lp.argmax(1) // STATES_PER_PHONE == ref).sum())
        total += len(ref)
    return hits / max(1, total)


def _normaliser(run_dir: Path, config: Config) -> Normaliser:
    """The training-set statistics a run's checkpoint carries (an ensemble's: its first member's, the same)."""
    if config.model.kind == "ensemble":
        member = Path(config.model.members[0])
        return _normaliser(member, Config.from_dict(json.loads((member / "config.json").read_text())))
    saved = torch.load(run_dir / CHECKPOINT, map_location="cpu", weights_only=True)["normaliser"]
    return Normaliser(saved["mean"], saved["std"])


def export(run_dir: str | Path, out: str | Path | None = None) -> Path:
    run_dir = Path(run_dir)
    model, config = load_model(run_dir, "cpu")
    wrapper = WaveformModel(model, _normaliser(run_dir, config), config.features, ctc=is_ctc(config))
    return export_onnx(wrapper, out or run_dir / "model.onnx")


def results_table(run_dirs: Sequence[str | Path], split: str = "test") -> str:
    """Markdown: one row per evaluated run."""
    rows = [
        "| run | model | objective | params | depth | frame acc | PER | S | D | I |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in run_dirs:
        path = Path(run) / "metrics.json"
        if not path.exists():
            continue
        m = json.loads(path.read_text())
        s = m.get(split, {})
        rows.append(
            f"| {m['run']} | {m['kind']} | {m['objective']} | {m['parameters']:,} | {m['depth']} | "
            f"{100 * s.get('frame_acc', np.nan):.1f} | {100 * s.get('per', np.nan):.1f} | {s.get('sub', '')} | "
            f"{s.get('del', '')} | {s.get('ins', '')} |"
        )
    return "\n".join(rows)
