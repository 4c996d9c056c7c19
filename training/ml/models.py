"""The acoustic models: deep MLP and CNN teachers, an ensemble wrapper, and the shallow (optionally factorised) student.

Every model maps (B, 1845) spliced, normalised frames to (B, 120) logits over 3 HMM states x 40 units.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from training.ml.config import ModelConfig
from training.ml.features import N_FEATURES, N_STATIC
from training.ml.lexicon import N_STATES


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


class Ensemble(nn.Module):
    """Averages the members' probabilities; its logits are the log of that average (a valid logit vector)."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        log_probs = torch.stack([F.log_softmax(m(x).float(), dim=-1) for m in self.members])
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
    raise ValueError(f"unknown model kind {config.kind!r} (ensembles are built from trained members)")


# The ModelConfig settings each kind's constructor reads; the rest of ModelConfig does not change its shape.
_SHAPE_SETTINGS = {
    "dnn": ("depth", "width", "dropout"),
    "snn": ("width", "bottleneck", "dropout"),
    "cnn": ("conv_channels", "conv_kernel", "pool", "depth", "width", "dropout"),
}


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
