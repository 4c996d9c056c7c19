#!/usr/bin/env python
"""How closely mimics follow their teacher (issue #17's L2-mimic causes), on the dev frames of the teacher's store.

    OMP_NUM_THREADS=1 python scripts/mimic_diagnostics.py TEACHER_RUN MIMIC_RUN [MIMIC_RUN ...]

For the teacher: its agreement with the alignment's frame labels and the shape of its logits (their per-frame mean
moves from frame to frame, which the paper's raw-logit L2 objective must also regress). For each mimic: its
agreement with the labels and with the teacher's argmax, and the mean squared distance of its logits to the
teacher's, raw and with each frame's mean removed. Plain PyTorch on training.ml; no Django.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from training.ml import pipeline
from training.ml.train import load_model


def dev_logits(model: torch.nn.Module, store, positions: torch.Tensor, batch: int = 4096) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return torch.cat(
            [model(store.inputs(positions[i : i + batch])).float() for i in range(0, len(positions), batch)]
        )


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    teacher_dir, *mimic_dirs = argv
    teacher, config = load_model(teacher_dir)
    store = pipeline.prepare(config)
    labels, _ = pipeline.align(config, None, store)
    positions = store.frame_positions(store.utterance_ids("dev"))
    reference = labels[positions]
    t = dev_logits(teacher, store, positions)
    t_best, t_centred = t.argmax(1), t - t.mean(1, keepdim=True)
    print(f"dev frames: {len(positions)}")
    print(
        f"teacher {Path(teacher_dir).name}: label agreement {float((t_best == reference).float().mean()):.4f}; logits: "
        f"per-frame mean {float(t.mean()):.2f} (sd over frames {float(t.mean(1).std()):.2f}), "
        f"per-frame sd {float(t.std(1).mean()):.2f}"
    )
    print("| mimic | label agreement | teacher-argmax agreement | L2 to the teacher's logits | the same, centred |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for run in mimic_dirs:
        model, _ = load_model(run)
        s = dev_logits(model, store, positions)
        centred = ((s - s.mean(1, keepdim=True) - t_centred) ** 2).mean()
        print(
            f"| {Path(run).name} | {float((s.argmax(1) == reference).float().mean()):.4f} "
            f"| {float((s.argmax(1) == t_best).float().mean()):.4f} | {float(((s - t) ** 2).mean()):.2f} "
            f"| {float(centred):.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
