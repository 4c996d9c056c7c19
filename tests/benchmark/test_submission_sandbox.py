"""Submitted ONNX models: static checks and the sandboxed run, against every bad input the issue names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from benchmark.leaderboard.evaluation.checks import SubmissionLimits, SubmissionRejected, check_submission
from benchmark.leaderboard.evaluation.metrics import graph_metrics
from benchmark.leaderboard.evaluation.sandbox import SandboxLimits, network_isolation_available, run_sandboxed

CLASSES = 41
HOP = 160
FAST = SandboxLimits(memory_bytes=2 * 1024**3, cpu_seconds=20, wall_seconds=60, rtf_runs=2, rtf_utterances=2)


def frame_model(*, extra_nodes=(), extra_inits=(), post=None, classes=CLASSES, opsets=(("", 17),), domain=""):
    """waveform [1, N] -> frames of 160 samples -> one linear layer -> log-softmax [1, N/160, classes]."""
    rng = np.random.default_rng(0)
    weights = numpy_helper.from_array(rng.standard_normal((HOP, classes)).astype(np.float32) * 0.01, "W")
    shape = numpy_helper.from_array(np.array([1, -1, HOP], dtype=np.int64), "frame_shape")
    nodes = [
        helper.make_node("Reshape", ["waveform", "frame_shape"], ["frames"]),
        helper.make_node("MatMul", ["frames", "W"], ["logits"], domain=domain),
        *extra_nodes,
        helper.make_node("LogSoftmax", [post or "logits"], ["log_probs"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "submission",
        [helper.make_tensor_value_info("waveform", TensorProto.FLOAT, [1, "samples"])],
        [helper.make_tensor_value_info("log_probs", TensorProto.FLOAT, [1, "frames", classes])],
        initializer=[weights, shape, *extra_inits],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])


def loop_model(trips: int = 10**12, classes: int = CLASSES - 1) -> bytes:
    """A frame model (by default of the 40 units a greedy submission declares) plus a Loop with a huge trip count
    whose result feeds the output."""
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["acc_in", "one"], ["acc_out"]),
        ],
        "forever",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, []),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, []),
        ],
        initializer=[numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one")],
    )
    inits = [
        numpy_helper.from_array(np.array(trips, dtype=np.int64), "trips"),
        numpy_helper.from_array(np.array(True), "keep_going"),
        numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero"),
    ]
    extra = [
        helper.make_node("Loop", ["trips", "keep_going", "zero"], ["acc"], body=body),
        helper.make_node("Mul", ["acc", "zero"], ["nothing"]),
        helper.make_node("Add", ["logits", "nothing"], ["logits_loop"]),
    ]
    return frame_model(classes=classes, extra_nodes=extra, extra_inits=inits, post="logits_loop").SerializeToString()


def save(model: onnx.ModelProto, tmp_path: Path, name: str = "model.onnx") -> Path:
    path = tmp_path / name
    path.write_bytes(model.SerializeToString())
    return path


def waveforms(n: int = 2) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {f"utt{i}": (rng.standard_normal(HOP * 100) * 0.1).astype(np.float32) for i in range(n)}


def rejected(callable_, *args, **kwargs) -> SubmissionRejected:
    with pytest.raises(SubmissionRejected) as exc:
        callable_(*args, **kwargs)
    assert exc.value.message
    return exc.value


def test_a_good_model_passes_the_checks_and_runs_in_the_sandbox(tmp_path):
    path = save(frame_model(), tmp_path)

    checked = check_submission(path)
    result = run_sandboxed(path, waveforms(), classes=CLASSES, limits=FAST)

    assert (checked.output_classes, checked.parameters, checked.opset) == (CLASSES, HOP * CLASSES + 3, 17)
    assert set(result.log_probs) == {"utt0", "utt1"}
    assert result.log_probs["utt0"].shape == (100, CLASSES)
    assert np.allclose(np.exp(result.log_probs["utt0"]).sum(axis=1), 1.0, atol=1e-5)
    assert len(result.rtf_runs) == 2 and all(r > 0 for r in result.rtf_runs)
    if network_isolation_available():
        assert result.isolation == "network-namespace"


def test_metrics_count_parameters_depth_and_macs(tmp_path):
    metrics = graph_metrics(save(frame_model(), tmp_path))

    assert metrics.parameters == HOP * CLASSES + 3
    assert metrics.depth == 1
    assert metrics.macs_per_second == 100 * HOP * CLASSES  # 100 frames a second, one 160 x 41 layer


def test_a_non_onnx_file_is_refused(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"this is not a protobuf \x00\xff" * 10)

    assert rejected(check_submission, path).code == "model_not_onnx"


def test_a_file_over_the_cap_is_refused_before_it_is_parsed(tmp_path):
    path = save(frame_model(), tmp_path)

    error = rejected(check_submission, path, SubmissionLimits(max_bytes=1000))

    assert error.code == "model_too_large"


def test_a_custom_domain_operator_is_refused(tmp_path):
    model = frame_model(opsets=(("", 17), ("com.evil", 1)), domain="com.evil")

    assert rejected(check_submission, save(model, tmp_path)).code == "model_custom_domain"


def test_external_data_pointing_outside_is_refused_without_being_opened(tmp_path):
    model = frame_model()
    weights = model.graph.initializer[0]
    weights.ClearField("raw_data")
    weights.data_location = TensorProto.EXTERNAL
    weights.external_data.add(key="location", value="../../etc/passwd")

    assert rejected(check_submission, save(model, tmp_path)).code == "model_external_data"


def test_an_operator_off_the_allow_list_is_refused(tmp_path):
    extra = [helper.make_node("RandomNormalLike", ["logits"], ["noise"])]
    model = frame_model(extra_nodes=extra, post="noise")

    assert rejected(check_submission, save(model, tmp_path)).code == "model_operator_not_allowed"


def test_a_graph_that_allocates_100_gb_is_stopped_and_reported(tmp_path):
    huge = numpy_helper.from_array(np.array([25_000_000_000], dtype=np.int64), "huge_shape")
    extra = [
        helper.make_node(
            "ConstantOfShape", ["huge_shape"], ["huge"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])
        ),
        helper.make_node("ReduceSum", ["huge"], ["huge_sum"], keepdims=0),
        helper.make_node("Add", ["logits", "huge_sum"], ["logits_big"]),
    ]
    path = save(frame_model(extra_nodes=extra, extra_inits=[huge], post="logits_big"), tmp_path)
    check_submission(path)  # statically fine: only running it shows the allocation

    error = rejected(run_sandboxed, path, waveforms(1), classes=CLASSES, limits=FAST)

    assert error.code == "eval_memory"


def test_a_loop_that_never_ends_is_stopped_by_the_cpu_limit(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(loop_model(2**62, classes=CLASSES))
    check_submission(path)

    limits = SandboxLimits(cpu_seconds=3, wall_seconds=30, rtf_runs=1, rtf_utterances=1)
    error = rejected(run_sandboxed, path, waveforms(1), classes=CLASSES, limits=limits)

    assert error.code in {"eval_cpu_time", "eval_timeout"}


def test_a_wrong_output_shape_is_reported(tmp_path):
    path = save(frame_model(classes=10), tmp_path)

    error = rejected(run_sandboxed, path, waveforms(1), classes=CLASSES, limits=FAST)

    assert error.code == "eval_output_shape"
    assert "expected [1, frames, 41]" in error.message


def test_nan_outputs_are_reported(tmp_path):
    extra = [
        helper.make_node("Abs", ["logits"], ["magnitude"]),
        helper.make_node("Neg", ["magnitude"], ["negative"]),
        helper.make_node("Sqrt", ["negative"], ["not_a_number"]),  # sqrt of a negative: NaN
    ]
    path = save(frame_model(extra_nodes=extra, post="not_a_number"), tmp_path)

    error = rejected(run_sandboxed, path, waveforms(1), classes=CLASSES, limits=FAST)

    assert error.code == "eval_output_not_finite"


def test_a_model_without_the_submission_signature_is_refused(tmp_path):
    model = frame_model()
    model.graph.input[0].type.tensor_type.elem_type = TensorProto.DOUBLE

    assert rejected(check_submission, save(model, tmp_path)).code in {"model_signature", "model_invalid"}
