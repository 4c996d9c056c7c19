"""The feature extractor's GPU path against torchaudio's Kaldi-compatible fbank on the same clips and device.

    python scripts/gpu_features.py --manifest DATA/manifest.tsv [--clips 500] [--json OUT/features_gpu.json]

Rows: ours per clip and as one padded batch (123 dims: 40 log-mel, log energy, deltas), and
``torchaudio.compliance.kaldi.fbank`` per clip (40 log-mel and energy, the same 25 ms / 10 ms Hamming frames,
pre-emphasis 0.97, DC removed, no dither), each the best of 3 after a warm-up. It also reports how far the two
agree on the 40 log-mel energies (both use the HTK mel scale; Kaldi's filters start at 20 Hz like ours).
torchaudio is imported only here (it is installed on the GPU machine, not in the project's environment); without
it the Kaldi row is left out, so the script also runs where it is absent.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from training.ml.config import FeatureConfig
from training.ml.data import load_audio, read_manifest
from training.ml.features import FeatureExtractor


def timed(fn, device: torch.device, repeats: int = 3) -> float:
    fn()  # warm-up: kernels compiled and caches filled before timing
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--clips", type=int, default=500)
    parser.add_argument("--json")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    utterances = read_manifest(args.manifest)[:: max(1, 2500 // args.clips)][: args.clips]
    waves = [torch.from_numpy(load_audio(u.audio)).to(device) for u in utterances]
    seconds = sum(len(w) for w in waves) / 16000
    config = FeatureConfig()
    ours = FeatureExtractor(config).to(device)
    batch = torch.nn.utils.rnn.pad_sequence(waves, batch_first=True)
    lengths = torch.tensor([len(w) for w in waves], device=device)
    rows = {}
    with torch.no_grad():
        rows["ours, 123 dims, per clip"] = timed(lambda: [ours(w[None]) for w in waves], device)
        rows["ours, 123 dims, one padded batch"] = timed(lambda: ours(batch, lengths), device)
        try:
            from torchaudio.compliance import kaldi
        except ImportError:
            kaldi = None
        agreement = None
        if kaldi is not None:

            def fbank(w: torch.Tensor) -> torch.Tensor:
                return kaldi.fbank(
                    w[None] * 32768,  # Kaldi reads 16-bit sample values
                    num_mel_bins=config.n_mels,
                    frame_length=1000 * config.frame_length / config.sample_rate,
                    frame_shift=1000 * config.frame_shift / config.sample_rate,
                    low_freq=config.f_min,
                    high_freq=config.f_max,
                    window_type=config.window,
                    preemphasis_coefficient=config.preemphasis,
                    remove_dc_offset=config.remove_dc,
                    dither=0.0,
                    use_energy=True,
                    sample_frequency=config.sample_rate,
                )

            rows["torchaudio kaldi.fbank, 41 dims, per clip"] = timed(lambda: [fbank(w) for w in waves], device)
            diffs = []
            for w in waves[:50]:
                theirs = fbank(w)[:, 1:] - 2 * torch.log(
                    torch.tensor(32768.0, device=device)
                )  # energies back to [-1, 1] scale
                mine = ours.log_mel(w[None])[0]
                n = min(len(theirs), len(mine))
                diffs.append((theirs[:n] - mine[:n]).abs().median())
            agreement = float(torch.stack(diffs).median())
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    print(f"{name}: {len(waves)} clips, {seconds:.0f} s of audio\n")
    print("| features | seconds | x real time |")
    print("| --- | ---: | ---: |")
    for label, t in rows.items():
        print(f"| {label} | {t:.4f} | {seconds / t:,.0f} |")
    if agreement is not None:
        print(f"\nmedian |Kaldi - ours| over the 40 log-mel energies (first 50 clips): {agreement:.4f} (natural log)")
    if args.json:
        result = {
            "device": name,
            "clips": len(waves),
            "seconds": seconds,
            "rows": rows,
            "log_mel_median_abs_diff": agreement,
        }
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
