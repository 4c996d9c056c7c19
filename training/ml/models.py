"""The acoustic models: deep MLP, CNN and BiLSTM teachers, an ensemble wrapper, and the shallow (optionally
factorised) student.

Every frame model maps (B, 1845) spliced, normalised frames to (B, 120) logits over 3 HMM states x 40 units. The
BiLSTM (``sequential``) maps a whole utterance's frames, (T, 1845) or a padded batch (B, T, ...), to (T, 120)
logits, or to 41 CTC outputs (the 40 units and a blank, last: the leaderboard's ``greedy_ctc`` layout).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from speech.lexicon import N_PHONES, N_STATES
from training.ml.config import ModelConfig
from training.ml.features import N_FEATURES, N_STATIC

CTC_OUTPUTS = N_PHONES + 1  # the 40 units, then the blank


class DNN(nn.Module):
    """depth x width ReLU layers with dropout, then a linear output layer."""

    def __init__(
        self, input_dim: int, depth: int = 3, width: int = 2000, dropout: float = 0.2, outputs: int = N_STATES
    ):
        super().__init__()
        layers: list[nn.Module] = []
        size = input_dim
        for _ in range(depth):
            layers += [nn.Linear(size, width), nn.ReLU(), nn.Dropout(dropout)]
            size = width
        self.hidden = nn.Sequential(*layers)
        self.output = nn.Linear(size, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.hidden(x))


class CNN(nn.Module):
    """Convolution over the mel bands (static, delta, delta-delta of every spliced frame as channels), max pooling
    over frequency, then fully connected layers: the shape of the paper's CNN teacher."""

    def __init__(
        self,
        context: int = 7,
        channels: int = 128,
        kernel: int = 8,
        pool: int = 3,
        depth: int = 3,
        width: int = 2000,
        dropout: float = 0.2,
        outputs: int = N_STATES,
        n_mels: int = N_STATIC - 1,
    ):
        super().__init__()
        self.frames = 2 * context + 1
        self.n_mels = n_mels
        self.conv = nn.Conv1d(3 * self.frames, channels, kernel)
        self.pool = pool
        pooled = (self.n_mels - kernel + 1) // pool
        self.fc = DNN(channels * pooled + 3 * self.frames, depth, width, dropout, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        x = x.view(b, self.frames, 3, self.n_mels + 1)  # per frame: static, delta, delta-delta (n_mels + 1 each)
        mel = x[..., : self.n_mels].reshape(b, 3 * self.frames, self.n_mels)
        energy = x[..., self.n_mels].reshape(b, 3 * self.frames)
        conv = F.max_pool1d(F.relu(self.conv(mel)), self.pool)
        return self.fc(torch.cat([conv.flatten(1), energy], dim=1))


class SNN(nn.Module):
    """One hidden layer of H ReLU units; its input weights factorised as W = U V through k linear units."""

    def __init__(self, input_dim: int, hidden: int, bottleneck: int = 0, dropout: float = 0.0, outputs: int = N_STATES):
        super().__init__()
        self.bottleneck = nn.Linear(input_dim, bottleneck, bias=False) if bottleneck else nn.Identity()
        self.hidden = nn.Linear(bottleneck or input_dim, hidden)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.dropout(F.relu(self.hidden(self.bottleneck(x)))))


class BLSTM(nn.Module):
    """depth bidirectional LSTM layers of width units each way over a whole utterance, then a linear layer per frame.

    It takes the spliced frames every frame model takes and reads only their centre frame (the recurrence sees
    the context), so the feature store, the teacher-logits cache and the ONNX wrapper serve it unchanged; plain
    (unspliced) frames are accepted too, which is what training feeds it. (T, D) is one utterance; (B, T, D) is
    a padded batch, with ``lengths``.

    Each direction is its own LSTM, the backward one reading every utterance reversed within its own length, so
    padding (always at the end) never reaches a real frame in either direction. That is exact without packed
    sequences, whose backward pass on the CPU was 8x slower than the whole padded batch's."""

    sequential = True

    def __init__(
        self,
        input_dim: int,
        context: int = 7,
        depth: int = 3,
        width: int = 256,
        dropout: float = 0.2,
        outputs: int = N_STATES,
    ):
        super().__init__()
        self.frames = 2 * context + 1
        self.context = context
        self.n_features, rest = divmod(input_dim, self.frames)
        if rest:
            raise ValueError(f"a BiLSTM over +-{context} spliced frames cannot take {input_dim} inputs")
        sizes = [self.n_features] + [2 * width] * (depth - 1)
        self.forward_layers = nn.ModuleList(nn.LSTM(n, width, batch_first=True) for n in sizes)
        self.backward_layers = nn.ModuleList(nn.LSTM(n, width, batch_first=True) for n in sizes)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(2 * width, outputs)

    @staticmethod
    def _reverse(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """Each sequence reversed within its length; the padding stays where it was (an involution)."""
        if lengths is None:
            return x.flip(1)
        t = torch.arange(x.shape[1], device=x.device)[None, :]
        n = lengths.to(x.device)[:, None]
        index = torch.where(t < n, n - 1 - t, t)
        return x.gather(1, index[:, :, None].expand_as(x))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        single = x.dim() == 2
        if single:
            x = x[None]
        if x.shape[-1] != self.n_features:  # spliced: the centre frame
            x = x.unflatten(-1, (self.frames, self.n_features))[..., self.context, :]
        for k, (ahead, back) in enumerate(zip(self.forward_layers, self.backward_layers, strict=True)):
            if k:
                x = self.dropout(x)
            later = self._reverse(back(self._reverse(x, lengths))[0], lengths)
            x = torch.cat([ahead(x)[0], later], dim=-1)
        logits = self.output(self.dropout(x))
        return logits[0] if single else logits


def is_sequential(model: nn.Module) -> bool:
    """Whether a model reads whole utterances (its output for a frame depends on the others) rather than frames."""
    return bool(getattr(model, "sequential", False))


class Ensemble(nn.Module):
    """Averages the members' probabilities; its logits are the log of that average (a valid logit vector)."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        kinds = {is_sequential(m) for m in members}
        if len(kinds) > 1:  # a batch is either frames or utterances, never both
            raise ValueError("an ensemble's members are all frame models or all BiLSTMs, not a mix")
        self.sequential = kinds == {True}
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor, *lengths: torch.Tensor | None) -> torch.Tensor:
        log_probs = torch.stack([F.log_softmax(m(x, *lengths).float(), dim=-1) for m in self.members])
        return torch.logsumexp(log_probs, dim=0) - math.log(len(self.members))


def build_model(
    config: ModelConfig, input_dim: int = 15 * N_FEATURES, context: int = 7, outputs: int = N_STATES
) -> nn.Module:
    if config.kind == "dnn":
        return DNN(input_dim, config.depth, config.width, config.dropout, outputs)
    if config.kind == "cnn":
        per_frame, rest = divmod(input_dim, 3 * (2 * context + 1))
        if rest:
            raise ValueError(f"a CNN over +-{context} frames cannot take {input_dim} inputs")
        return CNN(
            context,
            config.conv_channels,
            config.conv_kernel,
            config.pool,
            config.depth,
            config.width,
            config.dropout,
            outputs,
            n_mels=per_frame - 1,
        )
    if config.kind == "snn":
        return SNN(input_dim, config.width, config.bottleneck, config.dropout, outputs)
    if config.kind == "blstm":
        return BLSTM(input_dim, context, config.depth, config.width, config.dropout, outputs)
    raise ValueError(f"unknown model kind {config.kind!r} (ensembles are built from trained members)")


# The ModelConfig settings each kind's constructor reads; the rest of ModelConfig does not change its shape.
_SHAPE_SETTINGS = {
    "dnn": ("depth", "width", "dropout"),
    "snn": ("width", "bottleneck", "dropout"),
    "cnn": ("conv_channels", "conv_kernel", "pool", "depth", "width", "dropout"),
    "blstm": ("depth", "width", "dropout"),
}


def outputs_for(objective: str) -> int:
    """Output units: 120 HMM states for frame targets and mimics, the 40 units and a blank for CTC."""
    return CTC_OUTPUTS if objective == "ctc" else N_STATES


def model_shape(config: ModelConfig, input_dim: int, context: int, outputs: int = N_STATES) -> dict[str, Any]:
    """Everything :func:`model_from_shape` needs to rebuild the network: kept in every checkpoint."""
    if config.kind not in _SHAPE_SETTINGS:
        raise ValueError(f"unknown model kind {config.kind!r} (ensembles are built from trained members)")
    settings = {name: getattr(config, name) for name in _SHAPE_SETTINGS[config.kind]}
    return {"kind": config.kind, "input_dim": input_dim, "context": context, "outputs": outputs, **settings}


def model_from_shape(shape: dict[str, Any]) -> nn.Module:
    settings = {k: v for k, v in shape.items() if k not in ("input_dim", "context", "outputs")}
    return build_model(ModelConfig(**settings), shape["input_dim"], shape["context"], shape["outputs"])


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def depth_of(model: nn.Module) -> int:
    """Weight layers on the longest path (the bottleneck is a layer, though linear)."""
    if isinstance(model, Ensemble):
        return max(depth_of(m) for m in model.members)
    return sum(1 for m in model.modules() if isinstance(m, nn.Linear | nn.Conv1d))


def snn_width_for(parameters: int, bottleneck: int, input_dim: int = 15 * N_FEATURES, outputs: int = N_STATES) -> int:
    """The hidden width H giving an SNN with about ``parameters`` parameters."""
    fixed = input_dim * bottleneck + outputs
    per_unit = (bottleneck or input_dim) + 1 + outputs
    return max(1, round((parameters - fixed) / per_unit))
