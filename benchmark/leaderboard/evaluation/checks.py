"""Static checks of a submission before anything runs it: a refusal names a stable code."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

# onnx (and the modules that use it) is imported in the functions that parse a model, not here: Django imports
# this module in every process it starts (the admin, the web server, every worker), and onnx costs half a second
# of CPU in each.
if TYPE_CHECKING:
    import onnx

    from benchmark.leaderboard.evaluation.skeleton import Skeleton


# Operators a phone recogniser needs (feature extraction, convolutions, recurrences, attention), from the
# default ONNX domain. Anything else is refused before it runs; control flow is allowed and bounded by the
# sandbox's CPU and wall-clock limits instead.
ALLOWED_OPS = frozenset(
    [
        "Abs",
        "Add",
        "And",
        "ArgMax",
        "AveragePool",
        "BatchNormalization",
        "Cast",
        "Ceil",
        "Clip",
        "Concat",
        "Constant",
        "ConstantOfShape",
        "Conv",
        "ConvTranspose",
        "Cos",
        "CumSum",
        "DFT",
        "Div",
        "Dropout",
        "Einsum",
        "Elu",
        "Equal",
        "Erf",
        "Exp",
        "Expand",
        "Flatten",
        "Floor",
        "GRU",
        "Gather",
        "GatherElements",
        "Gemm",
        "GlobalAveragePool",
        "Greater",
        "GreaterOrEqual",
        "HardSigmoid",
        "HardSwish",
        "Identity",
        "If",
        "InstanceNormalization",
        "LayerNormalization",
        "LeakyRelu",
        "Less",
        "LessOrEqual",
        "Log",
        "LogSoftmax",
        "Loop",
        "LSTM",
        "MatMul",
        "Max",
        "MaxPool",
        "Mean",
        "Min",
        "Mod",
        "Mul",
        "Neg",
        "Not",
        "Or",
        "Pad",
        "Pow",
        "PRelu",
        "Range",
        "Reciprocal",
        "ReduceL2",
        "ReduceLogSumExp",
        "ReduceMax",
        "ReduceMean",
        "ReduceMin",
        "ReduceProd",
        "ReduceSum",
        "ReduceSumSquare",
        "Relu",
        "Reshape",
        "Resize",
        "RNN",
        "STFT",
        "Scan",
        "Shape",
        "Sigmoid",
        "Sign",
        "Sin",
        "Size",
        "Slice",
        "Softmax",
        "Softplus",
        "Split",
        "Sqrt",
        "Squeeze",
        "Sub",
        "Sum",
        "Tanh",
        "Tile",
        "TopK",
        "Transpose",
        "Trilu",
        "Unsqueeze",
        "Where",
        "Xor",
        "BlackmanWindow",
        "HammingWindow",
        "HannWindow",
        "MelWeightMatrix",
    ]
)
STANDARD_DOMAINS = frozenset({"", "ai.onnx"})
MIN_OPSET, MAX_OPSET = 13, 21


class SubmissionRejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SubmissionLimits:
    max_bytes: int = 200 * 1024 * 1024
    min_opset: int = MIN_OPSET
    max_opset: int = MAX_OPSET
    allowed_ops: frozenset[str] = field(default=ALLOWED_OPS)


@dataclass(frozen=True)
class CheckedModel:
    opset: int
    input_name: str
    output_name: str
    output_classes: int | None  # the last output dimension when the graph declares it
    parameters: int


def _all_graphs(graph: onnx.GraphProto):
    import onnx

    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from _all_graphs(attribute.g)
            for subgraph in attribute.graphs:
                yield from _all_graphs(subgraph)


def _has_external_data(model: onnx.ModelProto) -> bool:
    """Any tensor, in the main graph or an If/Loop/Scan body, that points at a file outside the model."""
    import onnx

    tensors = []
    for graph in _all_graphs(model.graph):
        tensors += list(graph.initializer)
        tensors += [s.values for s in graph.sparse_initializer]
        for node in graph.node:
            tensors += [a.t for a in node.attribute if a.type == onnx.AttributeProto.TENSOR]
            tensors += [a.sparse_tensor.values for a in node.attribute if a.type == onnx.AttributeProto.SPARSE_TENSOR]
            tensors += [t for a in node.attribute for t in a.tensors]
    return any(t.data_location == onnx.TensorProto.EXTERNAL or t.external_data for t in tensors)


def _all_nodes(graph: onnx.GraphProto):
    import onnx

    for node in graph.node:
        yield node
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from _all_nodes(attribute.g)
            for subgraph in attribute.graphs:
                yield from _all_nodes(subgraph)


def _dims(value_info: onnx.ValueInfoProto) -> list[int | str | None]:
    shape = value_info.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in shape.dim]


def check_submission(path: Path, limits: SubmissionLimits | None = None) -> CheckedModel:
    """Everything that can be known without running the model; raises SubmissionRejected.

    The checks read the model's skeleton (benchmark.leaderboard.evaluation.skeleton): the file mapped and its structure
    copied without the bytes of its large weights, so that checking a model costs a fraction of its size in
    memory, not the four times its size that parsing it here and again in onnx.checker took."""
    from benchmark.leaderboard.evaluation.skeleton import SkeletonError, read_skeleton  # onnx: see the top

    limits = limits or SubmissionLimits()
    size = os.path.getsize(path)
    if size > limits.max_bytes:
        raise SubmissionRejected("model_too_large", f"The file is {size} bytes; the limit is {limits.max_bytes}.")
    if size == 0:
        raise SubmissionRejected("model_not_onnx", "The file is empty.")
    try:
        skeleton = read_skeleton(path)
    except SkeletonError as exc:
        raise SubmissionRejected("model_not_onnx", "The file is not an ONNX model.") from exc
    signature = _parsed_checks(skeleton.bare, limits)
    try:
        _checker(path, skeleton)
    except Exception as exc:
        raise SubmissionRejected("model_invalid", f"onnx.checker refused the model: {str(exc)[:300]}") from exc
    if isinstance(signature, Exception):
        raise signature
    return signature


def _checker(path: Path, skeleton: Skeleton) -> None:
    """onnx.checker (full check: shape inference too) on the skeleton whose large tensors point at their bytes in
    the submitted file, beside it; the payloads' lengths, which it then cannot see, are checked here."""
    import onnx

    from benchmark.leaderboard.evaluation.skeleton import payload_mismatch

    for payload in skeleton.payloads:
        mismatch = payload_mismatch(payload)
        if mismatch is not None:
            raise ValueError(mismatch)
    if not skeleton.payloads:
        onnx.checker.check_model(skeleton.pointed, full_check=True)
        return
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".skeleton-", suffix=".onnx") as pointed:
        pointed.write(skeleton.pointed)
        pointed.flush()
        onnx.checker.check_model(pointed.name, full_check=True)


def _parsed_checks(data: bytes, limits: SubmissionLimits) -> CheckedModel | Exception:
    """The checks on the parsed skeleton; raises the refusals that come before onnx.checker's and returns the
    signature's verdict (a refusal included) for after it, so that the checker's verdict comes first."""
    import onnx

    try:
        # External-data references are never followed: a path like ../../etc/passwd must not even be opened.
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf raises several types for garbage
        raise SubmissionRejected("model_not_onnx", "The file is not an ONNX model.") from exc
    if not model.graph.node:
        raise SubmissionRejected("model_not_onnx", "The file holds no ONNX graph.")
    if _has_external_data(model):
        raise SubmissionRejected(
            "model_external_data", "The model refers to external data files; submit one self-contained file."
        )
    if model.functions:
        raise SubmissionRejected("model_functions", "Model-local functions are not allowed; inline them.")
    domains = {o.domain for o in model.opset_import}
    if domains - STANDARD_DOMAINS:
        raise SubmissionRejected(
            "model_custom_domain",
            f"Custom operator domains are not allowed: {', '.join(sorted(domains - STANDARD_DOMAINS))}.",
        )
    opset = max((o.version for o in model.opset_import if o.domain in STANDARD_DOMAINS), default=0)
    if not limits.min_opset <= opset <= limits.max_opset:
        raise SubmissionRejected(
            "model_opset_unsupported", f"Opset {opset} is outside {limits.min_opset}-{limits.max_opset}."
        )
    for node in _all_nodes(model.graph):
        if node.domain not in STANDARD_DOMAINS:
            raise SubmissionRejected("model_custom_domain", f"Operator {node.domain}.{node.op_type} is not standard.")
        if node.op_type not in limits.allowed_ops:
            raise SubmissionRejected("model_operator_not_allowed", f"Operator {node.op_type} is not on the allow-list.")
    try:
        return _signature(model, opset)
    except Exception as exc:
        return exc.with_traceback(None)  # its traceback would hold the model's frames, and so the model


def _signature(model: onnx.ModelProto, opset: int) -> CheckedModel:
    """One float32 [1, samples] input, one [1, frames, classes] output: what the evaluation feeds and reads."""
    import onnx

    inputs = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    if len(inputs) != 1 or len(model.graph.output) != 1:
        raise SubmissionRejected(
            "model_signature", "The model must take one input (waveform [1, samples]) and give one output."
        )
    (waveform,) = inputs
    if waveform.type.tensor_type.elem_type != onnx.TensorProto.FLOAT or len(_dims(waveform)) != 2:
        raise SubmissionRejected("model_signature", "The input must be float32 [1, samples].")
    output_dims = _dims(model.graph.output[0])
    if output_dims and len(output_dims) != 3:
        raise SubmissionRejected("model_signature", "The output must be [1, frames, classes] log-probabilities.")
    classes = output_dims[2] if output_dims and isinstance(output_dims[2], int) and output_dims[2] > 0 else None
    from benchmark.leaderboard.evaluation.metrics import count_parameters  # onnx's numpy helpers: see the top

    parameters = count_parameters(model)  # every weight tensor, Constant nodes and subgraphs included
    return CheckedModel(
        opset=opset,
        input_name=waveform.name,
        output_name=model.graph.output[0].name,
        output_classes=classes,
        parameters=parameters,
    )
