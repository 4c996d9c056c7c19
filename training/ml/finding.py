"""The paper's finding, measured with seeds: rows (teacher, SNN on labels, L2 and soft mimics, the BiLSTM teacher
and its mimics, the BiLSTM-CTC peer) x sizes x seeds, each run trained and evaluated once in a run directory
keyed by its full config (a second call reuses every finished run), then each row's mean and spread of PER and
the paired speaker bootstrap of row means (each utterance's errors averaged over the row's seeds).

Every run of a finding shares one alignment (``align.seed`` fixed to the base config's), so seeds vary the models
only: what a seed's spread measures is training noise, not the aligner's.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import multiprocessing
import statistics
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speech.score import paired_speaker_bootstrap
from training.ml import pipeline
from training.ml.config import LOCATION_SETTINGS, Config, _flatten, config_digest, load_config
from training.ml.features import input_dim
from training.ml.models import DNN, count_parameters, snn_width_for
from training.ml.train import CHECKPOINT

# Rows trained per size (the DNN teacher's width; every shallow net is parameter-matched to that teacher).
SIZED_ROWS = (
    "teacher",
    "snn",
    "mimic_l2",
    "mimic_soft",
    "mimic_l2_sp",
    "mimic_soft_sp",
    "blstm_mimic_l2",
    "blstm_mimic_soft",
)
# Rows of one size whatever --sizes says: the BiLSTM teacher and the BiLSTM-CTC peer (their own config files).
UNSIZED_ROWS = ("blstm", "ctc")
ROWS = SIZED_ROWS + UNSIZED_ROWS
TEACHER_OF = {
    "mimic_l2": "teacher",
    "mimic_soft": "teacher",
    "mimic_l2_sp": "teacher",
    "mimic_soft_sp": "teacher",
    "blstm_mimic_l2": "blstm",
    "blstm_mimic_soft": "blstm",
}
# The *_sp rows: the mimic also learns the teacher's logits on speed-perturbed copies of the train split (unlabelled
# frames, the paper's lever; training/ml/transfer.py).
TRANSFER_SPEEDS = [0.9, 1.1]
# The comparisons the paper's claims rest on, "B - A": (A, B). Each is made at every size where both rows exist.
COMPARISONS = (
    ("teacher", "snn"),
    ("teacher", "mimic_l2"),
    ("teacher", "mimic_soft"),
    ("snn", "mimic_l2"),
    ("snn", "mimic_soft"),
    ("teacher", "mimic_l2_sp"),
    ("teacher", "mimic_soft_sp"),
    ("snn", "mimic_soft_sp"),
    ("mimic_l2", "mimic_l2_sp"),
    ("mimic_soft", "mimic_soft_sp"),
    ("blstm", "teacher"),
    ("blstm", "blstm_mimic_l2"),
    ("blstm", "blstm_mimic_soft"),
    ("snn", "blstm_mimic_soft"),
    ("mimic_soft", "blstm_mimic_soft"),
    ("ctc", "blstm"),
    ("ctc", "teacher"),
)
CONFIGS = Path(__file__).parent / "configs"


class FindingError(ValueError):
    """Rows, sizes or seeds that make no finding; the message says which."""


@dataclass
class Cell:
    """One run of the finding: a row at a size (0: unsized) and seed, its config and keyed run directory."""

    row: str
    size: int
    seed: int
    config: Config
    run_dir: Path = field(default_factory=Path)
    teacher: Cell | None = None

    @property
    def label(self) -> str:
        return f"{self.row}@{self.size}" if self.size else self.row


def _digest(config: Config, teacher: Cell | None) -> str:
    """What the run computes: its config but where it runs (location settings), and its teacher's run."""
    settings = {k: v for k, v in _flatten(config.to_dict()).items() if k not in LOCATION_SETTINGS}
    return config_digest({"config": settings, "teacher": teacher.run_dir.name if teacher else ""})


def row_config(base: Config, row: str, size: int, seed: int, extra: dict[str, Config]) -> Config:
    """The config of ``row`` at teacher width ``size`` and ``seed``: the base config for the DNN rows, its
    parameter-matched SNN for the shallow rows, ``extra[row]`` for the BiLSTM and CTC rows."""
    config = copy.deepcopy(extra[row] if row in UNSIZED_ROWS else base)
    config.train.seed = seed
    config.align.seed = pipeline.alignment_seed(base)  # one alignment for every seed: seeds vary the models only
    if row == "teacher":
        config.model.kind, config.model.width = "dnn", size
    elif row in SIZED_ROWS:
        inputs = input_dim(base.features)
        matched = count_parameters(DNN(inputs, base.model.depth, size))
        config.model.kind, config.model.dropout = "snn", 0.0
        config.model.width = snn_width_for(matched, config.model.bottleneck, inputs)
        config.train.objective = "labels" if row == "snn" else "mimic_" + row.removesuffix("_sp").rsplit("_", 1)[1]
        if row.endswith("_sp"):
            config.train.transfer_speeds = list(TRANSFER_SPEEDS)
    return config


def plan(base: Config, rows: list[str], sizes: list[int], seeds: int, extra: dict[str, Config]) -> list[Cell]:
    """Every run the finding needs, teachers before their mimics (a mimic row brings in its teacher's runs)."""
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise FindingError(f"Unknown rows {', '.join(unknown)}; the rows are {', '.join(ROWS)}.")
    if seeds < 1 or not sizes or any(s < 1 for s in sizes):
        raise FindingError("A finding needs at least one seed and positive sizes.")
    wanted = set(rows) | {TEACHER_OF[r] for r in rows if r in TEACHER_OF}
    cells: dict[tuple[str, int, int], Cell] = {}
    runs = Path(base.work_dir) / "runs" / "finding"
    for row in [r for r in dict.fromkeys(("teacher", "blstm", "ctc", *SIZED_ROWS)) if r in wanted]:
        for size in [0] if row in UNSIZED_ROWS else sizes:
            for offset in range(seeds):
                seed = base.train.seed + offset
                teacher = None
                if row in TEACHER_OF:
                    of = TEACHER_OF[row]
                    teacher = cells[(of, 0 if of in UNSIZED_ROWS else size, seed)]
                cell = Cell(row, size, seed, row_config(base, row, size, seed, extra), teacher=teacher)
                if teacher:
                    cell.config.train.teacher = str(teacher.run_dir)
                name = f"{row}-{size}-s{seed}" if size else f"{row}-s{seed}"
                cell.run_dir = runs / f"{name}-{_digest(cell.config, teacher)}"
                cells[(row, size, seed)] = cell
    return list(cells.values())


def _finished(cell: Cell) -> bool:
    history = cell.run_dir / "history.json"
    return (
        (cell.run_dir / CHECKPOINT).is_file()
        and history.is_file()
        and (len(json.loads(history.read_text())) >= cell.config.train.epochs)
    )


def _evaluated(cell: Cell) -> bool:
    metrics = cell.run_dir / "metrics.json"
    return (
        metrics.is_file()
        and metrics.stat().st_mtime >= (cell.run_dir / CHECKPOINT).stat().st_mtime
        and "utterances" in json.loads(metrics.read_text()).get("test", {})
    )


def _evaluate(run_dir: Path) -> None:
    pipeline.evaluate(run_dir)


def run(cells: list[Cell], log: Callable[[str], None] = print, eval_workers: int = 0) -> None:
    """Train and evaluate every cell not yet done; a finished, evaluated run is read, never retrained.

    With ``eval_workers``, evaluations (dev-tuned decoding, on the CPU) run in that many worker processes while
    the next runs train: on a GPU machine decoding otherwise costs more wall time than training."""
    pool = ProcessPoolExecutor(eval_workers, mp_context=multiprocessing.get_context("spawn")) if eval_workers else None
    pending: list[tuple[Cell, Future[None]]] = []
    try:
        for number, cell in enumerate(cells, 1):
            started = time.perf_counter()
            trained = _finished(cell)
            if not trained:
                pipeline.train(cell.config, cell.run_dir)
            state = "reused" if trained else f"trained in {time.perf_counter() - started:.0f} s"
            if not (trained and _evaluated(cell)):
                if pool:
                    pending.append((cell, pool.submit(_evaluate, cell.run_dir)))
                    state += ", evaluating"
                else:
                    pipeline.evaluate(cell.run_dir)
                    state += f", evaluated at {time.perf_counter() - started:.0f} s"
            log(f"[{number}/{len(cells)}] {cell.label} seed {cell.seed}: {cell.run_dir.name} ({state})")
        for _, future in pending:
            future.result()  # an evaluation's error surfaces here, naming nothing else half-done
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)


def evaluated(cells: list[Cell]) -> list[Cell]:
    """The cells whose runs are trained and evaluated (a finding cut short reports these)."""
    return [c for c in cells if _finished(c) and _evaluated(c)]


def summarise(cells: list[Cell], split: str = "test", resamples: int = 2000) -> dict[str, Any]:
    """Per row (and size): each seed's PER, their mean and sample standard deviation; per comparison, the paired
    speaker bootstrap of the difference of row means on ``split``."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for cell in cells:
        metrics = json.loads((cell.run_dir / "metrics.json").read_text())
        if split not in metrics:
            raise FindingError(f"{cell.run_dir} has no {split} split scores.")
        groups.setdefault(cell.label, []).append(metrics | {"seed": cell.seed, "row": cell.row, "size": cell.size})
    rows = []
    mean_errors: dict[str, list[float]] = {}
    reference: dict[str, Any] | None = None
    for label, runs in groups.items():
        pers = [r[split]["per"] for r in runs]
        utterances = [r[split]["utterances"] for r in runs]
        reference = reference or utterances[0]
        if any(u["utt_id"] != reference["utt_id"] for u in utterances):
            raise FindingError(f"The runs of {label} were scored on other utterances than the others.")
        mean_errors[label] = [sum(e) / len(e) for e in zip(*(u["errors"] for u in utterances), strict=True)]
        rows.append(
            {
                "row": runs[0]["row"],
                "size": runs[0]["size"],
                "label": label,
                "kind": runs[0]["kind"],
                "objective": runs[0]["objective"],
                "parameters": runs[0]["parameters"],
                "seeds": [r["seed"] for r in runs],
                "per": pers,
                "mean": statistics.fmean(pers),
                "sd": statistics.stdev(pers) if len(pers) > 1 else 0.0,
                "frame_acc": [r[split].get("frame_acc") for r in runs],
                "runs": [str(c.run_dir) for c in cells if c.label == label],
            }
        )
    comparisons = []
    sizes = sorted({c.size for c in cells if c.size}) or [0]
    for size in sizes:
        for a, b in COMPARISONS:
            la, lb = (f"{r}@{size}" if r in SIZED_ROWS else r for r in (a, b))
            if (
                la not in mean_errors
                or lb not in mean_errors
                or (a in UNSIZED_ROWS and b in UNSIZED_ROWS and size != sizes[0])
            ):
                continue
            assert reference is not None  # set with the first row's errors
            diff = paired_speaker_bootstrap(
                reference["speaker"], mean_errors[la], mean_errors[lb], reference["n"], resamples=resamples
            )
            comparisons.append({"a": la, "b": lb, **dataclasses.asdict(diff), "significant": diff.significant})
    return {
        "split": split,
        "utterances": len(reference["utt_id"]) if reference else 0,
        "rows": rows,
        "comparisons": comparisons,
    }


def table(summary: dict[str, Any]) -> str:
    """Markdown: a row per (row, size) with each seed's PER, mean and spread; then the bootstrap of row means."""
    lines = [
        f"{summary['split']} split, {summary['utterances']} utterances; PER per seed, mean and sample sd (points)",
        "",
        "| row | model | objective | params | seeds | PER per seed | mean | sd |",
        "| --- | --- | --- | ---: | ---: | --- | ---: | ---: |",
    ]
    for r in summary["rows"]:
        seeds = " / ".join(f"{100 * p:.2f}" for p in r["per"])
        lines.append(
            f"| {r['label']} | {r['kind']} | {r['objective']} | {r['parameters']:,} | {len(r['per'])} | {seeds} | "
            f"{100 * r['mean']:.2f} | {100 * r['sd']:.2f} |"
        )
    lines += [
        "",
        "Row means compared (B - A, PER points; utterance errors averaged over seeds; paired speaker bootstrap, 95 %)",
        "",
        "| A | B | B - A | 95 % interval | significant |",
        "| --- | --- | ---: | --- | --- |",
    ]
    for c in summary["comparisons"]:
        lines.append(
            f"| {c['a']} | {c['b']} | {100 * c['difference']:+.2f} | [{100 * c['low']:+.2f}, {100 * c['high']:+.2f}] | "
            f"{'yes' if c['significant'] else 'no'} |"
        )
    return "\n".join(lines)


def extra_configs(base_files: list[str], overrides: list[str], blstm: str, ctc: str) -> dict[str, Config]:
    """The BiLSTM and CTC rows' configs: the base files, then that row's own file, then the command line's."""
    configs = {}
    for row, path in (("blstm", blstm), ("ctc", ctc)):
        configs[row] = load_config([*base_files, path], overrides)
    return configs


def default_extra_file(row: str) -> str:
    return str(CONFIGS / {"blstm": "blstm_small_cpu.json", "ctc": "blstm_ctc_small_cpu.json"}[row])
