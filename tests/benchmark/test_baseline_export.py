"""The platform's own trained models go through exactly the checks and sandbox a researcher's model does."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.leaderboard.evaluation.checks import check_submission
from benchmark.leaderboard.evaluation.metrics import graph_metrics
from benchmark.leaderboard.evaluation.sandbox import SandboxLimits, run_sandboxed
from speech.phones import INVENTORY

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("kind", ["dnn", "snn"])
def test_a_training_export_passes_the_submission_checks_and_runs_in_the_sandbox(tmp_path, kind):
    from training.ml.config import FeatureConfig, ModelConfig
    from training.ml.export import WaveformModel, export_onnx
    from training.ml.features import Normaliser
    from training.ml.models import build_model

    torch.manual_seed(0)
    config = ModelConfig(kind=kind, depth=2, width=64, bottleneck=16, dropout=0.0)
    model = WaveformModel(build_model(config), Normaliser(), FeatureConfig())
    path = export_onnx(model, tmp_path / f"{kind}.onnx")

    checked = check_submission(path)
    metrics = graph_metrics(path)
    wave = (np.random.default_rng(0).standard_normal(16_000) * 0.05).astype(np.float32)
    result = run_sandboxed(
        path, {"utt": wave}, classes=len(INVENTORY), limits=SandboxLimits(rtf_runs=1, rtf_utterances=1)
    )

    assert checked.output_classes in (None, len(INVENTORY))
    # Weight layers on the longest path: 2 hidden + output; the SNN: bottleneck + hidden + output. The feature
    # extractor's fixed layers (DFT conv, mel matmul) keep their weights in Constant nodes, which count like any
    # weight (issue #16): two more on the same path (deltas are shifted differences, no weights).
    assert metrics.depth == 3 + 2
    assert metrics.macs_per_second is not None and metrics.parameters == checked.parameters
    log_probs = result.log_probs["utt"]
    assert log_probs.shape[1] == len(INVENTORY) and 95 <= log_probs.shape[0] <= 101
    expected = model(torch.from_numpy(wave)[None]).detach().numpy()[0]
    assert np.allclose(log_probs, expected, atol=1e-4)
