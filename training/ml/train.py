"""The training loop: labels (cross-entropy), mimic by L2 on teacher logits, or soft targets; checkpoint and resume.

A run directory holds config.json (the full config), checkpoint.pt (model, optimizer, epoch, step, config,
history, normaliser) and history.json. Every epoch reseeds its sampler and dropout from (seed, epoch), so a
run stopped after any epoch and resumed ends exactly where an uninterrupted one ends.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from training.ml.config import Config, TrainConfig, save_config
from training.ml.data import FrameStore
from training.ml.models import Ensemble, build_model, count_parameters

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
    correct = 0
    for i in range(0, len(positions), batch):
        pos = positions[i : i + batch]
        correct += int((model(store.inputs(pos)).argmax(1) == labels[pos]).sum())
    return correct / max(1, len(positions))


@torch.no_grad()
def utterance_log_probs(model: nn.Module, store: FrameStore, utt_ids: list[int]) -> list[torch.Tensor]:
    """(T, states) log-softmax per utterance, on the CPU."""
    model.eval()
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
) -> list[dict[str, float]]:
    """Train ``model`` in place, resuming from run_dir's checkpoint when there is one; returns the history."""
    tc: TrainConfig = config.train
    device = store.frames.device
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    history: list[dict[str, float]] = []
    start_epoch, step = 0, 0
    run_path = Path(run_dir) if run_dir else None
    if run_path:
        run_path.mkdir(parents=True, exist_ok=True)
        save_config(config, run_path / "config.json")
        if (run_path / CHECKPOINT).exists():
            state = torch.load(run_path / CHECKPOINT, map_location=device, weights_only=False)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            start_epoch, step, history = state["epoch"], state["step"], state["history"]
    if teacher is not None:
        teacher.to(device).eval()
    use_teacher = tc.objective.startswith("mimic")
    if use_teacher and teacher is None:
        raise ValueError(f"{tc.objective} needs a teacher")
    if not use_teacher and labels is None:
        raise ValueError("training on labels needs labels")

    for epoch in range(start_epoch, tc.epochs):
        if stop_after is not None and epoch >= stop_after:
            break
        for group in optimizer.param_groups:
            group["lr"] = tc.lr * tc.lr_decay**epoch
        sampler = torch.Generator().manual_seed(tc.seed * 100_003 + epoch)
        order = torch.randperm(len(train_positions), generator=sampler)
        if tc.frames_per_epoch:
            order = order[: tc.frames_per_epoch]
        order = order.to(device)
        torch.manual_seed(tc.seed * 1_009 + epoch)  # dropout, on every device
        model.train()
        started, total, batches = time.perf_counter(), 0.0, 0
        bar = tqdm(
            range(0, len(order), tc.batch_size),
            desc=f"{desc} {epoch + 1}/{tc.epochs}",
            disable=not tc.progress,
            leave=False,
        )
        n_batches = len(bar)
        for i in bar:
            pos = train_positions[order[i : i + tc.batch_size]]
            x = store.inputs(pos)
            with autocast(device, tc.amp):
                if use_teacher:
                    with torch.no_grad():
                        target = teacher(x)
                else:
                    target = labels[pos]
                loss = objective_loss(model(x), target, tc.objective, tc.temperature, tc.center_logits)
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
        record = {"epoch": epoch + 1, "loss": total / max(1, batches), "frames_per_s": len(order) / max(elapsed, 1e-9)}
        if dev_positions is not None and labels is not None and len(dev_positions):
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


def load_model(run_dir: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, Config]:
    """The trained model of a run directory (an ensemble run lists its members' directories)."""
    run_path = Path(run_dir)
    config = Config.from_dict(json.loads((run_path / "config.json").read_text()))
    if config.model.kind == "ensemble":
        members = [load_model(m, device)[0] for m in config.model.members]
        return Ensemble(members).to(device).eval(), config
    state = torch.load(run_path / CHECKPOINT, map_location=device, weights_only=False)
    model = build_model(config.model, context=config.features.context)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), config
