"""Log-mel + log-energy features with deltas, normalisation and splicing: one torch module for CPU, GPU and ONNX.

Framing, DC removal, pre-emphasis, windowing and the DFT are all linear in the samples of a frame, so for ONNX
they fold into one strided convolution and the graph exports as plain Conv/MatMul/Log ops. Everywhere else the
same frames go through an FFT: the convolution multiplies every frame by all 514 DFT rows (206k multiply-adds a
frame against about 10k for a 512-point real FFT), which made feature extraction 4x slower than librosa's
log-mel alone. Both paths compute the same features up to float32 rounding (a test holds them together).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from training.ml.config import FeatureConfig
from training.ml.threads import fixed_threads

N_STATIC = 41  # 40 log-mel + log energy
N_FEATURES = 3 * N_STATIC  # with deltas and delta-deltas: 123
LOG_FLOOR = 1e-10
CPU_BLOCK_FRAMES = 256  # frames per block on the CPU: see FeatureExtractor.static_fft


def feature_dim(config: FeatureConfig) -> int:
    """Features per frame: n_mels log-mel energies and the log energy, with deltas and delta-deltas."""
    return 3 * (config.n_mels + 1)


def input_dim(config: FeatureConfig) -> int:
    """A network's input size: the frame and its +-context neighbours."""
    return (2 * config.context + 1) * feature_dim(config)


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) HTK-scale triangles, unnormalised: librosa.filters.mel(htk=True, norm=None)."""
    mel_f = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    fft_freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    return np.maximum(0.0, np.minimum(lower, upper)).astype(np.float32)


def window_function(name: str, length: int) -> np.ndarray:
    n = np.arange(length)
    if name == "hamming":  # symmetric, as HTK and Kaldi use
        return 0.54 - 0.46 * np.cos(2 * math.pi * n / (length - 1))
    if name == "povey":
        return (0.5 - 0.5 * np.cos(2 * math.pi * n / (length - 1))) ** 0.85
    if name == "hann":  # periodic, as librosa and scipy's get_window use
        return 0.5 - 0.5 * np.cos(2 * math.pi * n / length)
    raise ValueError(f"unknown window {name!r}")


def frame_kernels(config: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """Kernels (2 * bins, 1, L) giving the real and imaginary DFT of each prepared frame, and (1, 1, L) the DC one.

    A frame x (L samples) is prepared as w * P (I - J/L) x, where J/L takes the mean (DC removal) and P is
    pre-emphasis with x[-1] = x[0] (Kaldi's convention); the DFT of that is a fixed linear map of x.
    """
    length, bins = config.frame_length, config.n_fft // 2 + 1
    prep = np.eye(length)
    if config.remove_dc:
        prep = prep - 1.0 / length
    if config.preemphasis:
        shift = np.eye(length, k=-1)
        shift[0, 0] = 1.0
        prep = (np.eye(length) - config.preemphasis * shift) @ prep
    prep = window_function(config.window, length)[:, None] * prep
    k = np.arange(bins)[:, None] * np.arange(length)[None, :]
    cos = np.cos(2 * math.pi * k / config.n_fft) @ prep
    sin = -np.sin(2 * math.pi * k / config.n_fft) @ prep
    dft = np.concatenate([cos, sin])[:, None, :].astype(np.float32)
    dc = np.full((1, 1, length), 1.0 / length, dtype=np.float32)
    return dft, dc


def num_frames(num_samples: int | torch.Tensor, config: FeatureConfig) -> int | torch.Tensor:
    """Frames with every sample inside the signal (Kaldi's snip_edges)."""
    if isinstance(num_samples, torch.Tensor):
        return torch.clamp((num_samples - config.frame_length) // config.frame_shift + 1, min=0)
    return max(0, (num_samples - config.frame_length) // config.frame_shift + 1)


def _replicate_beyond(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """x (B, C, T): frames at or past each utterance's length become copies of its last frame."""
    if lengths is None:
        return x
    t = torch.arange(x.shape[-1], device=x.device)
    index = torch.minimum(t[None, :], (lengths - 1).clamp(min=0)[:, None])
    return torch.gather(x, 2, index[:, None, :].expand(-1, x.shape[1], -1))


def deltas(x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """HTK regression deltas over +-2 frames with edge replication; x (B, C, T).

    Written as four shifted differences rather than a grouped convolution: for 41 channels and five taps the
    convolution's set-up cost more than its arithmetic (a sixth of feature extraction's time)."""
    x = _replicate_beyond(x, lengths)
    padded = torch.cat([x[..., :1], x[..., :1], x, x[..., -1:], x[..., -1:]], dim=-1)
    t = x.shape[-1]
    near = padded[..., 3 : t + 3] - padded[..., 1 : t + 1]
    far = padded[..., 4 : t + 4] - padded[..., 0:t]
    return near.add_(far, alpha=2.0).div_(10.0)  # in place: near is this call's own (same numbers, fewer buffers)


class FeatureExtractor(nn.Module):
    """Waveform (B, N) at 16 kHz -> (B, T, 123) un-normalised features; with lengths, per-utterance edges."""

    # Buffers (register_buffer), typed for the checker: torch types a module attribute as Tensor | Module.
    dft: torch.Tensor
    dc: torch.Tensor
    fbank: torch.Tensor
    window: torch.Tensor

    def __init__(self, config: FeatureConfig | None = None) -> None:
        super().__init__()
        self.config = config or FeatureConfig()
        c = self.config
        dft, dc = frame_kernels(c)
        fbank = mel_filterbank(c.sample_rate, c.n_fft, c.n_mels, c.f_min, c.f_max)
        self.register_buffer("dft", torch.from_numpy(dft), persistent=False)
        self.register_buffer("dc", torch.from_numpy(dc), persistent=False)
        self.register_buffer("fbank", torch.from_numpy(fbank.T.copy()), persistent=False)
        window = torch.from_numpy(window_function(c.window, c.frame_length)).float()
        self.register_buffer("window", window, persistent=False)

    def power_spectrum(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, N) -> (B, T, bins), through the DFT as a convolution (the ONNX path)."""
        spec = F.conv1d(wave[:, None, :], self.dft, stride=self.config.frame_shift)  # (B, 2 * bins, T)
        bins = spec.shape[1] // 2
        return (spec[:, :bins] ** 2 + spec[:, bins:] ** 2).transpose(1, 2)

    def log_energy(self, wave: torch.Tensor) -> torch.Tensor:
        """Log of the sum of squares of each DC-removed frame (before pre-emphasis and window): (B, T)."""
        c = self.config
        mean = F.conv1d(wave[:, None, :], self.dc, stride=c.frame_shift)[:, 0]
        power = F.conv1d((wave * wave)[:, None, :], self.dc, stride=c.frame_shift)[:, 0]
        energy = power - mean * mean if c.remove_dc else power
        return torch.log(torch.clamp(energy * c.frame_length, min=LOG_FLOOR))

    def log_mel(self, wave: torch.Tensor) -> torch.Tensor:
        return torch.log(torch.clamp(self.power_spectrum(wave) @ self.fbank, min=LOG_FLOOR))

    def static_fft(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, N) -> (B, T, n_mels + 1): log-mel and log energy from the frames themselves, through an FFT.

        On the CPU the frames go through in blocks of one utterance and ``CPU_BLOCK_FRAMES`` frames: a block's
        frames (400 KB) stay in the cache across the dozen element-wise passes, where a whole batch of
        frames (tens of MB) went to memory and back on each pass (1.7x slower).

        On the CPU they go through on one thread: a block is too small to share between threads (300 clips took 0.35
        CPU-s on one thread, 2.8 on two), and a one-frame block's mel projection, a matrix-vector product, rounded
        differently on two threads than on one, so the same audio gave other features on another machine
        (docs/training.md, "Runs that reproduce")."""
        if wave.device.type != "cpu":
            return self._static_fft_block(wave)
        with fixed_threads(1):
            return self._static_fft_cpu(wave)

    def _static_fft_cpu(self, wave: torch.Tensor) -> torch.Tensor:
        c = self.config
        total = int(num_frames(wave.shape[-1], c))
        if wave.shape[0] * total <= CPU_BLOCK_FRAMES:
            return self._static_fft_block(wave)
        rows = []
        for row in wave[:, None, :]:
            blocks = []
            for start in range(0, total, CPU_BLOCK_FRAMES):
                end = min(total, start + CPU_BLOCK_FRAMES)
                blocks.append(
                    self._static_fft_block(row[:, start * c.frame_shift : (end - 1) * c.frame_shift + c.frame_length])
                )
            rows.append(torch.cat(blocks, dim=1))
        return torch.cat(rows, dim=0)

    def _static_fft_block(self, wave: torch.Tensor) -> torch.Tensor:
        c = self.config
        frames = wave.unfold(-1, c.frame_length, c.frame_shift)  # a view: (B, T, L)
        mean = frames.mean(-1, keepdim=True)
        prepared = frames - mean if c.remove_dc else frames.clone()
        energy = (prepared * prepared).sum(-1) if c.remove_dc else (frames * frames).sum(-1)
        if c.preemphasis:  # Kaldi's convention: the first sample is its own predecessor
            previous = frames[..., :-1] - mean if c.remove_dc else frames[..., :-1].clone()
            prepared[..., 1:] -= previous.mul_(c.preemphasis)
            prepared[..., 0] *= 1.0 - c.preemphasis
        spec = torch.fft.rfft(prepared.mul_(self.window), n=c.n_fft)
        power = spec.real.square().add_(spec.imag.square())
        log_mel = torch.log(torch.clamp(power @ self.fbank, min=LOG_FLOOR))
        return torch.cat([log_mel, torch.log(torch.clamp(energy, min=LOG_FLOOR))[..., None]], dim=-1)

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if torch.onnx.is_in_onnx_export():
            static = torch.cat([self.log_mel(wave), self.log_energy(wave)[..., None]], dim=-1)
        else:
            static = self.static_fft(wave)
        static = static.transpose(1, 2)
        frames = None if lengths is None else torch.as_tensor(num_frames(lengths, self.config))
        d1 = deltas(static, frames)
        d2 = deltas(d1, frames)
        return torch.cat([static, d1, d2], dim=1).transpose(1, 2)


def splice_indices(positions: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor, context: int) -> torch.Tensor:
    """Row indices (B, 2c+1) of the +-context frames around each position, clamped inside its utterance."""
    offsets = torch.arange(-context, context + 1, device=positions.device)
    index = positions[:, None] + offsets[None, :]
    return torch.maximum(torch.minimum(index, (ends - 1)[:, None]), starts[:, None])


def splice(frames: torch.Tensor, context: int) -> torch.Tensor:
    """(T, D) frames of one utterance -> (T, (2c+1) D) spliced inputs, edges replicated."""
    t = torch.arange(frames.shape[0], device=frames.device)
    zero = torch.zeros_like(t)
    index = splice_indices(t, zero, zero + frames.shape[0], context)
    return frames[index].reshape(frames.shape[0], -1)


class Normaliser(nn.Module):
    """Training-set mean and standard deviation per feature dimension."""

    mean: torch.Tensor  # buffers, typed for the checker
    std: torch.Tensor

    def __init__(self, mean: torch.Tensor | None = None, std: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(N_FEATURES) if mean is None else mean.float().clone())
        self.register_buffer("std", torch.ones(N_FEATURES) if std is None else std.float().clone())

    @classmethod
    def fit(cls, frames: torch.Tensor) -> Normaliser:
        frames = frames.double()
        return cls(frames.mean(0).float(), frames.std(0).clamp(min=1e-5).float())

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return (frames - self.mean) / self.std
