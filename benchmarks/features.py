"""Our torch features against librosa on the same audio, in x real time per core.

    python benchmarks/features.py [--clips 200] [--threads 1]

Both compute 40 log-mel energies (same HTK-scale filterbank, 25 ms / 10 ms) on the same speechocean762
clips; ours adds log energy, deltas and delta-deltas (123 dims) and runs batched over utterances. Falls
back to espeak-ng-free synthetic audio when the shared data are absent. With CUDA, the GPU is measured too.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# Per core means one thread for every library: NumPy's BLAS (librosa's mel product) would otherwise start a
# thread per core and, on a busy 2-core machine, spin against the other process (its time then varied 10x).
_THREADS = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv[:-1] else "1"
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = _THREADS

import numpy as np  # noqa: E402  (after the thread settings)
import torch  # noqa: E402

from training.ml.config import FeatureConfig  # noqa: E402
from training.ml.data import compute_features, load_audio, read_manifest  # noqa: E402
from training.ml.features import FeatureExtractor  # noqa: E402

MANIFEST = Path(__file__).resolve().parents[1] / "../shared/data/speechocean762-train/manifest.tsv"


def clips(n: int) -> tuple[list[np.ndarray], str]:
    if MANIFEST.exists():
        utterances = read_manifest(MANIFEST)[:: max(1, 2500 // n)][:n]
        return [load_audio(u.audio) for u in utterances], f"speechocean762-train, {len(utterances)} clips"
    rng = np.random.default_rng(0)
    return [rng.normal(0, 0.1, int(16000 * rng.uniform(2, 6))).astype(np.float32) for _ in range(n)], "synthetic noise"


def librosa_features(waves: list[np.ndarray]) -> None:
    import librosa

    fbank = librosa.filters.mel(sr=16000, n_fft=512, n_mels=40, fmin=20, fmax=8000, htk=True, norm=None)
    for y in waves:
        spec = np.abs(librosa.stft(y, n_fft=512, hop_length=160, win_length=400, window="hamming", center=False)) ** 2
        np.log(np.maximum(fbank @ spec, 1e-10))


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    waves, source = clips(args.clips)
    seconds = sum(len(w) for w in waves) / 16000
    config = FeatureConfig()
    rows = []
    t = best_of(lambda: librosa_features(waves))
    rows.append(("librosa (stft + mel + log), per clip", t))
    extractor = FeatureExtractor(config)
    with torch.no_grad():
        t = best_of(lambda: [extractor(torch.from_numpy(w)[None]) for w in waves])
    rows.append(("ours, 123 dims, per clip", t))
    t = best_of(lambda: compute_features(waves, config))
    rows.append(("ours, 123 dims, compute_features (the pipeline's path)", t))

    def convolution() -> None:  # the exported graph's path: the DFT as a strided convolution
        with torch.no_grad():
            for w in waves:
                wave = torch.from_numpy(w)[None]
                torch.cat([extractor.log_mel(wave), extractor.log_energy(wave)[..., None]], dim=-1)

    rows.append(("ours, static 41 dims only, DFT as a convolution (the ONNX graph's path)", best_of(convolution)))
    if torch.cuda.is_available():
        extractor = extractor.cuda()
        batch = torch.zeros(len(waves), max(len(w) for w in waves))
        for i, w in enumerate(waves):
            batch[i, : len(w)] = torch.from_numpy(w)
        batch, lengths = batch.cuda(), torch.tensor([len(w) for w in waves]).cuda()

        def gpu() -> None:
            extractor(batch, lengths)
            torch.cuda.synchronize()

        gpu()
        rows.append((f"ours on {torch.cuda.get_device_name()}, one batch", best_of(gpu)))
    print(f"{source}: {seconds:.0f} s of audio, {args.threads} thread(s)\n")
    print("| features | seconds | x real time | x real time per core | speed vs librosa |")
    print("| --- | ---: | ---: | ---: | ---: |")
    reference = rows[0][1]
    for name, t in rows:
        per_core = (
            ""
            if "on " in name and "cuda" in str(torch.cuda.is_available()).lower()
            else f"{seconds / t / args.threads:,.0f}"
        )
        print(f"| {name} | {t:.3f} | {seconds / t:,.0f} | {per_core} | {reference / t:.2f} |")


if __name__ == "__main__":
    main()
