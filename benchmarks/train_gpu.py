"""Training throughput: frames/s and MFU for teacher and mimic steps with GPU-resident data (spliced on the fly by
gather) against a plain PyTorch DataLoader loop over the same frames and model.

    python benchmarks/train_gpu.py [--width 2000 --depth 3 --mimic-width 8000 --bottleneck 250] [--steps 200]

Runs on CUDA when present (bf16 autocast), else on CPU at the size given (use small widths there). Frames are
synthetic normal noise with the shape of real ones (123 dims, spliced +-7, 120 state targets): throughput does
not depend on their values. MFU counts 6 FLOPs per weight per frame (forward + backward) plus the teacher's
forward (2 per weight) in mimic steps, against the matmul peak measured in the same run (square bf16 matmuls on
CUDA, float32 on CPU); the datasheet's peak (--peak-tflops, default H100 SXM bf16 dense, 989) is shown beside.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import DataLoader, Dataset

from speech.lexicon import N_STATES
from training.ml.data import FrameStore, Utterance
from training.ml.features import N_FEATURES, Normaliser
from training.ml.models import DNN, SNN, count_parameters, snn_width_for
from training.ml.train import autocast, objective_loss


def synthetic_store(frames: int, utterance_frames: int = 350) -> FrameStore:
    n_utt = max(1, frames // utterance_frames)
    offsets = torch.arange(n_utt + 1) * utterance_frames
    utts = [Utterance(f"u{i}", "s", "", "", split="train") for i in range(n_utt)]
    return FrameStore(utts, torch.randn(int(offsets[-1]), N_FEATURES), offsets, Normaliser(), 7)


class SplicedFrames(Dataset):
    """The textbook way: one spliced frame per __getitem__, collated by the DataLoader on the CPU."""

    def __init__(self, store: FrameStore, labels: torch.Tensor) -> None:
        self.store, self.labels = store, labels

    def __len__(self) -> int:
        return len(self.store.frames)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        pos = torch.tensor([i])
        return self.store.inputs(pos)[0], self.labels[i]


def weights(model: torch.nn.Module) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if n.endswith("weight"))


def timed_steps(model, optimizer, batches, device, teacher=None, steps: int = 100, warmup: int = 10) -> float:
    """Seconds per step over ``steps`` steps after ``warmup``; ``batches`` yields (x, y) on any device."""
    model.train()
    objective = "mimic_l2" if teacher is not None else "labels"
    it = iter(batches)
    elapsed = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        x, y = next(it)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with autocast(device, True):
            if teacher is not None:
                with torch.no_grad():
                    y = teacher(x)
            loss = objective_loss(model(x), y, objective, 2.0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    return elapsed / steps


def matmul_peak(device: torch.device, size: int = 0, repeats: int = 0) -> float:
    """TFLOP/s of square matmuls in the precision training uses: the ceiling MFU is measured against."""
    cuda = device.type == "cuda"
    size = size or (8192 if cuda else 2048)
    repeats = repeats or (50 if cuda else 10)
    dtype = torch.bfloat16 if cuda else torch.float32
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if cuda:
        torch.cuda.synchronize()
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e12


def resident_batches(store: FrameStore, labels: torch.Tensor, batch: int):
    n = len(store.frames)
    while True:
        pos = torch.randint(0, n, (batch,), device=store.frames.device)
        yield store.inputs(pos), labels[pos]


def loader_batches(store: FrameStore, labels: torch.Tensor, batch: int, workers: int):
    loader = DataLoader(
        SplicedFrames(store, labels),
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        drop_last=True,
        persistent_workers=workers > 0,
    )
    while True:
        yield from loader


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=int, default=0, help="teacher width (default: 2000 on CUDA, 512 on CPU)")
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--bottleneck", type=int, default=250)
    parser.add_argument("--mimic-width", type=int, default=0, help="0: parameter-matched to the teacher")
    parser.add_argument("--batch", type=int, default=0, help="default: 1024 on CUDA, 256 on CPU")
    parser.add_argument("--frames", type=int, default=0, help="resident frames (default: 1M on CUDA, 100k on CPU)")
    parser.add_argument("--steps", type=int, default=0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.type == "cuda"
    width = args.width or (2000 if cuda else 512)
    batch = args.batch or (1024 if cuda else 256)
    steps = args.steps or (200 if cuda else 20)
    frames = args.frames or (1_000_000 if cuda else 100_000)
    torch.manual_seed(0)
    store = synthetic_store(frames)
    labels = torch.randint(0, N_STATES, (len(store.frames),))
    teacher = DNN(store.input_dim, args.depth, width, 0.2).to(device)
    mimic_width = args.mimic_width or snn_width_for(count_parameters(teacher), args.bottleneck)
    student = SNN(store.input_dim, mimic_width, args.bottleneck).to(device)
    name = torch.cuda.get_device_name() if cuda else f"CPU, {torch.get_num_threads()} threads"
    peak = matmul_peak(device)
    print(
        f"{name}; teacher {args.depth}x{width} ({count_parameters(teacher):,} params), mimic SNN k={args.bottleneck} "
        f"H={mimic_width} ({count_parameters(student):,}); batch {batch}; {len(store.frames):,} frames; "
        f"measured matmul peak {peak:.2f} TFLOP/s ({'bf16' if cuda else 'float32'})"
        + (f", datasheet {args.peak_tflops:.0f}" if cuda else "")
        + "\n"
    )
    print("| step | data path | frames/s | GFLOP/s | MFU |")
    print("| --- | --- | ---: | ---: | ---: |")
    for kind, model, t_model in (("teacher (labels)", teacher, None), ("mimic (L2 on logits)", student, teacher)):
        flops = 6 * weights(model) + (2 * weights(t_model) if t_model is not None else 0)
        for path in ("GPU-resident gather" if cuda else "resident gather", f"DataLoader ({args.workers} workers)"):
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
            if path.startswith("DataLoader"):
                store.to("cpu")
                batches = loader_batches(store, labels, batch, args.workers)
                n_steps = max(5, steps // 4)
            else:
                store.to(device)
                batches = resident_batches(store, labels.to(device), batch)
                n_steps = steps
            per_step = timed_steps(model, optimizer, batches, device, t_model, steps=n_steps)
            rate = batch / per_step
            tflops = rate * flops / 1e12
            mfu = f"{100 * tflops / peak:.1f} %"
            print(f"| {kind} | {path} | {rate:,.0f} | {1000 * tflops:,.1f} | {mfu} |")


if __name__ == "__main__":
    main()
