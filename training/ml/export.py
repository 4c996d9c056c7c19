"""One ONNX graph from 16 kHz waveform to per-frame log-probabilities over the 40 units (features inside), or over
the 40 units and the CTC blank (41, blank last) for a CTC model: the leaderboard's ``greedy_ctc`` layout."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from speech.lexicon import N_PHONES, STATES_PER_PHONE
from training.ml.config import FeatureConfig
from training.ml.features import FeatureExtractor, Normaliser

OPSET = 18


class WaveformModel(nn.Module):
    """(1, N) float waveform -> (1, T, 40) log-probabilities, the states of each unit summed; a CTC model's
    (1, T, 41) as they are. A BiLSTM takes the utterance's spliced frames as one sequence."""

    def __init__(self, net: nn.Module, normaliser: Normaliser, features: FeatureConfig, ctc: bool = False) -> None:
        super().__init__()
        self.ctc = ctc
        self.extractor = FeatureExtractor(features)
        self.normaliser = normaliser
        self.net = net
        self.context = features.context

    def state_log_probs(self, wave: torch.Tensor) -> torch.Tensor:
        frames = self.normaliser(self.extractor(wave))[0]  # (T, 123)
        t = frames.shape[0]
        index = torch.arange(t)[:, None] + torch.arange(-self.context, self.context + 1)[None, :]
        index = torch.clamp(index, min=0)
        index = torch.minimum(index, torch.full_like(index, 1) * (t - 1))
        spliced = frames[index].reshape(t, -1)
        return F.log_softmax(self.net(spliced), dim=-1)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        states = self.state_log_probs(wave)
        if self.ctc:
            return states[None]
        return torch.logsumexp(states.view(-1, N_PHONES, STATES_PER_PHONE), dim=-1)[None]


def export_onnx(model: WaveformModel, path: str | Path, seconds: float = 2.0) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    example = torch.zeros(1, int(seconds * model.extractor.config.sample_rate))
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated; it needs no onnxscript
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=["waveform"],
            output_names=["log_probs"],
            dynamic_axes={"waveform": {1: "samples"}, "log_probs": {1: "frames"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return path


def onnx_log_probs(path: str | Path, wave: torch.Tensor) -> torch.Tensor:
    import onnxruntime  # only where parity is checked

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (out,) = session.run(["log_probs"], {"waveform": wave.detach().cpu().numpy().astype("float32")})
    return torch.from_numpy(out)
