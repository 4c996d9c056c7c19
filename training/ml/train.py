"""The training loop: labels (cross-entropy), mimic by L2 on teacher logits, or soft targets; checkpoint and resume.

Frame models train on random batches of frames; sequence models (the BiLSTM) on random batches of whole
utterances (``train.sequence_batch``), on the frame targets or, for the CTC peer, on the canonical phones.
A run directory holds config.json (the full config), checkpoint.pt (model, its shape, optimizer, epoch, step,
config, history, normaliser: tensors and plain data only) and history.json. Every epoch reseeds its sampler and
dropout from (seed, epoch), so a run stopped after any epoch and resumed ends exactly where an uninterrupted one
ends; a resume under other settings than the checkpoint's is refused. A mimic regresses the teacher's logits for
the training frames, computed once in float32 (never under autocast) before the first epoch.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from speech.lexicon import N_STATES
from training.ml.config import Config, ConfigMismatch, InvalidConfig, TrainConfig, config_differences, save_config
from training.ml.data import FrameStore
from training.ml.features import input_dim
from training.ml.models import (
    Ensemble,
    build_model,
    count_parameters,
    is_sequential,
    model_from_shape,
    model_shape,
    outputs_for,
)
from training.ml.sequence import sequence_logits, sequence_loss, utterances_of

CHECKPOINT = "checkpoint.pt"
REPORT_EVERY = 25  # batches between progress reports

# Progress reports: {"event": "step" | "epoch", "stage", "epoch", "epochs", "step", ...}. A callback may raise to
# stop the loop (a cancelled run); the last checkpoint is then the last finished epoch's.
Progress = Callable[[dict[str, Any]], None]


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def objective_loss(
    logits: torch.Tensor, target: torch.Tensor, objective: str, temperature: float, center: bool = False
) -> torch.Tensor:
    logits = logits.float()
    if objective == "labels":
        return F.cross_entropy(logits, target)
    if objective == "mimic_l2":  # Ba & Caruana: regress the teacher's logits, 1/2 squared error per frame
        target = target.float()
        if center:  # a softmax ignores a constant added to every logit of a frame: do not spend capacity on it
            logits = logits - logits.mean(1, keepdim=True)
            target = target - target.mean(1, keepdim=True)
        return 0.5 * (logits - target).pow(2).sum(1).mean()
    if objective == "mimic_soft":  # Hinton et al.: cross-entropy to the softened teacher, scaled by T^2
        soft = F.softmax(target.float() / temperature, dim=1)
        return -(soft * F.log_softmax(logits / temperature, dim=1)).sum(1).mean() * temperature**2
    raise ValueError(f"unknown objective {objective!r}")


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


@torch.no_grad()
def frame_accuracy(
    model: nn.Module, store: FrameStore, positions: torch.Tensor, labels: torch.Tensor, batch: int = 4096
) -> float:
    model.eval()
    if is_sequential(model):
        logits = torch.cat(sequence_logits(model, store, utterances_of(store, positions)) or [torch.empty(0)])
        return int((logits.argmax(-1) == labels[positions]).sum()) / max(1, len(positions))
    correct = 0
    for i in range(0, len(positions), batch):
        pos = positions[i : i + batch]
        correct += int((model(store.inputs(pos)).argmax(1) == labels[pos]).sum())
    return correct / max(1, len(positions))


@torch.no_grad()
def teacher_logits(teacher: nn.Module, store: FrameStore, positions: torch.Tensor, batch: int = 4096) -> torch.Tensor:
    """(len(positions), states) float32 logits of ``teacher``: run in float32 outside any autocast, so the mimic's
    regression targets are never rounded to bf16 (on CUDA the training step runs under bf16 autocast)."""
    teacher.eval()
    out: torch.Tensor | None = None
    with torch.autocast(positions.device.type, enabled=False):
        if is_sequential(teacher):  # whole utterances; positions are whole utterances in order (as mimics pass)
            parts = sequence_logits(teacher, store, utterances_of(store, positions))
            return torch.cat(parts) if parts else torch.empty(0, N_STATES, device=positions.device)
        for i in range(0, len(positions), batch):
            logits = teacher(store.inputs(positions[i : i + batch]).float()).float()
            if out is None:
                out = torch.empty(len(positions), logits.shape[1], dtype=torch.float32, device=logits.device)
            out[i : i + batch] = logits
    return out if out is not None else torch.empty(0, N_STATES, device=positions.device)


@torch.no_grad()
def utterance_log_probs(model: nn.Module, store: FrameStore, utt_ids: list[int]) -> list[torch.Tensor]:
    """(T, states) log-softmax per utterance, on the CPU."""
    model.eval()
    if is_sequential(model):
        return [F.log_softmax(x, dim=1).cpu() for x in sequence_logits(model, store, utt_ids)]
    return [F.log_softmax(model(store.utterance_inputs(u)).float(), dim=1).cpu() for u in utt_ids]


def fit(
    model: nn.Module,
    store: FrameStore,
    train_positions: torch.Tensor,
    config: Config,
    run_dir: str | Path | None = None,
    labels: torch.Tensor | None = None,
    teacher: nn.Module | None = None,
    dev_positions: torch.Tensor | None = None,
    stop_after: int | None = None,
    desc: str = "train",
    callback: Progress | None = None,
    targets: torch.Tensor | None = None,
    teacher_digest: str = "",
) -> list[dict[str, float]]:
    """Train ``model`` in place, resuming from run_dir's checkpoint when there is one; returns the history.

    A mimic takes ``targets``, the teacher's float32 logits for ``train_positions`` (row i for position i), or a
    ``teacher`` whose logits are computed here once; ``teacher_digest`` names the teacher, and a resume refuses
    another one."""
    tc: TrainConfig = config.train
    device = store.frames.device
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    history: list[dict[str, float]] = []
    start_epoch, step = 0, 0
    run_path = Path(run_dir) if run_dir else None
    shape = model_shape(config.model, store.input_dim, store.context, outputs_for(tc.objective)) if run_path else {}
    if run_path:
        run_path.mkdir(parents=True, exist_ok=True)
        if (run_path / CHECKPOINT).exists():
            state = torch.load(run_path / CHECKPOINT, map_location=device, weights_only=True)
            check_resume(state, config, shape, teacher_digest, run_path)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            start_epoch, step, history = state["epoch"], state["step"], state["history"]
        save_config(config, run_path / "config.json")
    use_teacher = tc.objective.startswith("mimic")
    sequential = is_sequential(model)
    if sequential and use_teacher:
        raise InvalidConfig("A mimic is a frame model (the paper's shallow net); a BiLSTM trains on labels or CTC.")
    if tc.objective == "ctc" and not sequential:
        raise InvalidConfig("CTC trains a sequence model: set model.kind = 'blstm'.")
    if use_teacher and targets is None:
        if teacher is None:
            raise ValueError(f"{tc.objective} needs a teacher")
        targets = teacher_logits(teacher.to(device), store, train_positions)
    if use_teacher and targets is not None:
        if targets.dtype != torch.float32 or len(targets) != len(train_positions):
            raise ValueError("a mimic's targets are float32 logits, one row per training frame")
        targets = targets.to(device)
    if tc.objective == "labels" and labels is None:
        raise ValueError("training on labels needs labels")
    # The units an epoch shuffles: frames, or whole utterances for a sequence model.
    units = torch.tensor(utterances_of(store, train_positions)) if sequential else train_positions
    step_size = tc.sequence_batch if sequential else tc.batch_size

    for epoch in range(start_epoch, tc.epochs):
        if stop_after is not None and epoch >= stop_after:
            break
        for group in optimizer.param_groups:
            group["lr"] = tc.lr * tc.lr_decay**epoch
        sampler = torch.Generator().manual_seed(tc.seed * 100_003 + epoch)
        order = torch.randperm(len(units), generator=sampler)
        if tc.frames_per_epoch and sequential:  # whole utterances until the frame budget is reached
            lengths = (store.offsets[units + 1] - store.offsets[units]).cpu()[order]
            order = order[: int(torch.searchsorted(torch.cumsum(lengths, 0), tc.frames_per_epoch)) + 1]
        elif tc.frames_per_epoch:
            order = order[: tc.frames_per_epoch]
        order = order.to(device) if not sequential else order
        torch.manual_seed(tc.seed * 1_009 + epoch)  # dropout, on every device
        model.train()
        started, total, batches = time.perf_counter(), 0.0, 0
        bar = tqdm(
            range(0, len(order), step_size),
            desc=f"{desc} {epoch + 1}/{tc.epochs}",
            disable=not tc.progress,
            leave=False,
        )
        n_batches = len(bar)
        for i in bar:
            rows = order[i : i + step_size]
            with autocast(device, tc.amp):
                if sequential:
                    loss = sequence_loss(model, store, units[rows].tolist(), tc.objective, labels)
                else:
                    pos = train_positions[rows]
                    target = targets[rows] if use_teacher else labels[pos]  # type: ignore[index]
                    loss = objective_loss(
                        model(store.inputs(pos)), target, tc.objective, tc.temperature, tc.center_logits
                    )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            batches += 1
            total += float(loss.detach())
            if batches % REPORT_EVERY == 0:
                bar.set_postfix(loss=f"{total / batches:.4f}")
                if callback:
                    callback(
                        {
                            "event": "step",
                            "stage": desc,
                            "epoch": epoch + 1,
                            "epochs": tc.epochs,
                            "batch": batches,
                            "batches": n_batches,
                            "step": step,
                            "loss": total / batches,
                            "seconds": time.perf_counter() - started,
                        }
                    )
        elapsed = time.perf_counter() - started
        frames = (
            int((store.offsets[units[order] + 1] - store.offsets[units[order]]).sum()) if sequential else len(order)
        )
        record = {"epoch": epoch + 1, "loss": total / max(1, batches), "frames_per_s": frames / max(elapsed, 1e-9)}
        if dev_positions is not None and labels is not None and len(dev_positions) and tc.objective != "ctc":
            record["dev_frame_acc"] = frame_accuracy(model, store, dev_positions, labels)
        history.append(record)
        if tc.progress:
            tqdm.write(
                f"{desc} epoch {epoch + 1}: " + ", ".join(f"{k}={v:.4g}" for k, v in record.items() if k != "epoch")
            )
        if run_path:
            _atomic_save(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "epoch": epoch + 1,
                    "step": step,
                    "config": config.to_dict(),
                    "shape": shape,
                    "input_dim": store.input_dim,
                    "teacher_sha256": teacher_digest,
                    "history": history,
                    "parameters": count_parameters(model),
                    "normaliser": {"mean": store.normaliser.mean.cpu(), "std": store.normaliser.std.cpu()},
                },
                run_path / CHECKPOINT,
            )
            (run_path / "history.json").write_text(json.dumps(history, indent=2) + "\n")
        if callback:
            callback(
                {
                    "event": "epoch",
                    "stage": desc,
                    "epoch": epoch + 1,
                    "epochs": tc.epochs,
                    "step": step,
                    "record": record,
                    "history": list(history),
                }
            )
    return history


def check_resume(
    state: dict[str, Any], config: Config, shape: dict[str, Any], teacher_digest: str, run_path: Path
) -> None:
    """Raise ConfigMismatch, naming each differing setting, unless the checkpoint was trained as ``config`` says."""
    problems = config_differences(state.get("config", {}), config.to_dict())
    stored_shape = state.get("shape")
    if stored_shape and stored_shape != shape:
        problems.append(f"model shape: {stored_shape} -> {shape}")
    if state.get("teacher_sha256", "") != teacher_digest:
        stored = state.get("teacher_sha256") or "(none)"
        problems.append(f"teacher checkpoint: sha256 {stored} -> {teacher_digest or '(none)'}")
    if problems:
        raise ConfigMismatch(
            f"{run_path} holds a checkpoint trained under other settings, so it cannot resume under these: "
            + "; ".join(problems)
            + ". Train in a new run directory, or resume with the settings of its config.json."
        )


def run_digest(run_dir: str | Path) -> str:
    """SHA-256 of a run's trained weights as stored (its checkpoint file; an ensemble's: of its members')."""
    run_path = Path(run_dir)
    config = json.loads((run_path / "config.json").read_text())
    if config.get("model", {}).get("kind") == "ensemble":
        members = [run_digest(m) for m in config["model"]["members"]]
        return hashlib.sha256(" ".join(members).encode()).hexdigest()
    digest = hashlib.sha256()
    with (run_path / CHECKPOINT).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_model(run_dir: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, Config]:
    """The trained model of a run directory (an ensemble run lists its members' directories), rebuilt from the
    shape its checkpoint stores (input size, splice context, every layer size)."""
    run_path = Path(run_dir)
    config = Config.from_dict(json.loads((run_path / "config.json").read_text()))
    if config.model.kind == "ensemble":
        members = [load_model(m, device)[0] for m in config.model.members]
        return Ensemble(members).to(device).eval(), config
    state = torch.load(run_path / CHECKPOINT, map_location=device, weights_only=True)
    if "shape" in state:
        model = model_from_shape(state["shape"])
    else:  # a checkpoint from before shapes were stored: its config says the shape
        model = build_model(config.model, input_dim(config.features), config.features.context)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), config
