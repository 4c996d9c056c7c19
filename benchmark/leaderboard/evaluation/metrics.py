"""What a leaderboard row says about a model besides its error rate: parameters, depth, MACs per second.

Every weight tensor counts, wherever the graph keeps it: initializers, ``Constant`` node values,
``ConstantOfShape`` outputs whose shape is itself constant, and all of these inside ``If``/``Loop``/``Scan``
bodies. A layer fed by any constant value (an initializer, a ``Constant``, or anything computed only from
constants) is a weight layer, so hiding the weights in nodes changes neither the parameter count nor the depth.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

WEIGHT_OPS = frozenset({"MatMul", "Gemm", "Conv", "ConvTranspose", "LSTM", "GRU", "RNN", "Einsum"})
# Operators whose output is not a function of their inputs: never constant, even with constant inputs.
NONDETERMINISTIC_OPS = frozenset(
    {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli"}
)
PROBE_SAMPLES = 16_000  # one second of 16 kHz audio
MAX_FOLDED_SHAPE = 64  # shape tensors folded to read a ConstantOfShape's size have at most this many elements


@dataclass(frozen=True)
class GraphMetrics:
    parameters: int
    depth: int  # weight layers on the longest path from input to output
    macs_per_second: int | None  # multiply-accumulates for one second of 16 kHz audio; None if shapes unknown


def _numel(dims) -> int:
    count = 1
    for d in dims:
        count *= int(d)
    return count


def graph_metrics(path: Path) -> GraphMetrics:
    model = onnx.load(str(path), load_external_data=False)
    return GraphMetrics(parameters=count_parameters(model), depth=_depth(model), macs_per_second=_macs(model, path))


# --- parameters ----------------------------------------------------------------------------------------------------
def _subgraphs(node: onnx.NodeProto) -> Iterator[onnx.GraphProto]:
    for attribute in node.attribute:
        if attribute.type == onnx.AttributeProto.GRAPH:
            yield attribute.g
        yield from attribute.graphs


def _constant_numel(node: onnx.NodeProto) -> int:
    """Elements a ``Constant`` node holds, whichever attribute carries them."""
    for attribute in node.attribute:
        if attribute.name == "value":
            return _numel(attribute.t.dims)
        if attribute.name == "sparse_value":
            return _numel(attribute.sparse_tensor.values.dims)
        if attribute.name in ("value_float", "value_int", "value_string"):
            return 1
        if attribute.name == "value_floats":
            return len(attribute.floats)
        if attribute.name == "value_ints":
            return len(attribute.ints)
        if attribute.name == "value_strings":
            return len(attribute.strings)
    return 0


def _constant_array(node: onnx.NodeProto) -> np.ndarray | None:
    for attribute in node.attribute:
        if attribute.name == "value" and _numel(attribute.t.dims) <= MAX_FOLDED_SHAPE:
            return numpy_helper.to_array(attribute.t)
        if attribute.name == "value_int":
            return np.array(attribute.i, dtype=np.int64)
        if attribute.name == "value_ints" and len(attribute.ints) <= MAX_FOLDED_SHAPE:
            return np.array(list(attribute.ints), dtype=np.int64)
    return None


def _fold_small(node: onnx.NodeProto, values: dict[str, np.ndarray]) -> np.ndarray | None:
    """The value of a few shape-building operators over small constant integer tensors; None otherwise."""
    found = [values.get(name) for name in node.input if name]
    inputs = [v for v in found if v is not None]
    if len(inputs) != len(found) or not inputs:
        return None
    try:
        if node.op_type in ("Identity", "Cast", "Squeeze", "Flatten"):
            result = inputs[0].reshape(-1) if node.op_type != "Identity" else inputs[0]
        elif node.op_type == "Unsqueeze" or node.op_type == "Reshape":
            result = inputs[0].reshape(-1)
        elif node.op_type == "Concat":
            result = np.concatenate([np.atleast_1d(v) for v in inputs])
        else:
            return None
    except ValueError:
        return None
    return result if result.size <= MAX_FOLDED_SHAPE else None


def _parameters_in(graph: onnx.GraphProto, outer: dict[str, np.ndarray]) -> int:
    total = sum(_numel(t.dims) for t in graph.initializer)
    total += sum(_numel(t.values.dims) for t in graph.sparse_initializer)
    values = dict(outer)  # small constant tensors, by name, to read ConstantOfShape sizes
    for tensor in graph.initializer:
        if _numel(tensor.dims) <= MAX_FOLDED_SHAPE:
            values[tensor.name] = numpy_helper.to_array(tensor)
    for node in graph.node:
        if node.op_type == "Constant":
            total += _constant_numel(node)
            array = _constant_array(node)
        elif node.op_type == "ConstantOfShape":
            shape = values.get(node.input[0]) if node.input else None
            if shape is not None and shape.size <= MAX_FOLDED_SHAPE:
                total += _numel(shape.reshape(-1).tolist())
            array = None
        else:
            array = _fold_small(node, values)
        if array is not None and node.output:
            values[node.output[0]] = array
        for subgraph in _subgraphs(node):
            total += _parameters_in(subgraph, values)
    return total


def count_parameters(model: onnx.ModelProto) -> int:
    """Every weight tensor's elements: initializers, Constant values, constant-shaped ConstantOfShape, subgraphs."""
    return _parameters_in(model.graph, {})


# --- depth ---------------------------------------------------------------------------------------------------------
def _is_weight_layer(node: onnx.NodeProto, constant: set[str]) -> bool:
    if node.op_type not in WEIGHT_OPS:
        return False
    inputs = [name for name in node.input if name]
    fed = [name in constant for name in inputs]
    if all(fed):
        return False  # computed from constants alone: folded away, not a layer
    if node.op_type in ("MatMul", "Einsum", "Gemm"):
        return any(fed)  # MatMul(W, x) holds its weight first
    return any(fed[1:])


def _graph_depth(graph: onnx.GraphProto, depth_of: dict[str, int], constant: set[str], start: int) -> int:
    """Longest path, counting weight layers, through ``graph`` (nodes are in topological order)."""
    depth_of = dict(depth_of)
    constant = set(constant)
    constant.update(t.name for t in graph.initializer)
    constant.update(t.values.name for t in graph.sparse_initializer)
    for value in graph.input:
        if value.name not in constant:
            depth_of[value.name] = start
    for node in graph.node:
        inputs = [name for name in node.input if name]
        incoming = max((depth_of.get(name, 0) for name in inputs), default=start)
        inner = [_graph_depth(g, depth_of, constant, incoming) for g in _subgraphs(node)]
        here = max([incoming, *inner]) + int(_is_weight_layer(node, constant))
        is_constant = (
            node.op_type not in NONDETERMINISTIC_OPS
            and not inner
            and all(name in constant for name in inputs)
            and (bool(inputs) or node.op_type in ("Constant", "ConstantOfShape"))
        )
        for name in node.output:
            if is_constant:
                constant.add(name)
                depth_of[name] = 0
            else:
                depth_of[name] = here
    return max((depth_of.get(o.name, start) for o in graph.output), default=start)


def _depth(model: onnx.ModelProto) -> int:
    return _graph_depth(model.graph, {}, set(), 0)


# --- MACs per second of audio --------------------------------------------------------------------------------------
def _probe_model(model: onnx.ModelProto) -> onnx.ModelProto | None:
    """A copy whose one waveform input is fixed at [1, one second]; None when the signature is not [1, samples]."""
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    initializers = {t.name for t in fixed.graph.initializer}
    graph_inputs = [i for i in fixed.graph.input if i.name not in initializers]
    if len(graph_inputs) != 1:
        return None
    dims = graph_inputs[0].type.tensor_type.shape.dim
    if len(dims) != 2:
        return None
    dims[0].dim_value, dims[1].dim_value = 1, PROBE_SAMPLES
    return fixed


def _counted(node: onnx.NodeProto) -> bool:
    return node.op_type in {"MatMul", "Gemm", "Conv", "ConvTranspose"}


def _needed(node: onnx.NodeProto) -> list[str]:
    if node.op_type in {"MatMul", "Gemm"}:
        return [node.input[0], node.output[0]]
    return [node.input[1], node.output[0]]


def _count_macs(nodes, shapes: dict[str, list[int]]) -> int | None:
    total = 0
    for node in nodes:
        if not _counted(node):
            continue
        out = shapes.get(node.output[0]) if node.output else None
        if node.op_type in {"MatMul", "Gemm"}:
            a = shapes.get(node.input[0])
            if not a or not out or -1 in a or -1 in out:
                return None
            inner = a[-2] if node.op_type == "Gemm" and _attr(node, "transA") else a[-1]
            total += _numel(out) * inner
        else:
            w = shapes.get(node.input[1])
            if not w or not out or -1 in w or -1 in out:
                return None
            per_output = _numel(w[1:]) if node.op_type == "Conv" else _numel(w[2:]) * w[0] // max(out[1], 1)
            total += _numel(out) * per_output
    return total


def _static_shapes(fixed: onnx.ModelProto) -> dict[str, list[int]]:
    try:
        inferred = shape_inference.infer_shapes(fixed, data_prop=True)
    except Exception:
        return {}
    shapes: dict[str, list[int]] = {}
    for info in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        if info.type.tensor_type.HasField("shape"):
            shape = [d.dim_value if d.HasField("dim_value") else -1 for d in info.type.tensor_type.shape.dim]
            shapes[info.name] = shape
    for tensor in inferred.graph.initializer:
        shapes[tensor.name] = list(tensor.dims)
    for node in inferred.graph.node:
        if node.op_type == "Constant" and node.output:
            for attribute in node.attribute:
                if attribute.name == "value":
                    shapes[node.output[0]] = list(attribute.t.dims)
    return shapes


def _probed_shapes(fixed: onnx.ModelProto, names: set[str]) -> dict[str, list[int]]:
    """Run the model once on a second of silence and read the shapes of ``names`` off the run."""
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(fixed)
    present = {o.name for o in probe.graph.output}
    wanted = sorted(names - present - {t.name for t in probe.graph.initializer})
    probe.graph.output.extend(onnx.ValueInfoProto(name=name) for name in wanted)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every name
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    (waveform,) = session.get_inputs()
    values = session.run(None, {waveform.name: np.zeros((1, PROBE_SAMPLES), dtype=np.float32)})
    shapes = {t.name: list(t.dims) for t in probe.graph.initializer}
    for output, value in zip(session.get_outputs(), values, strict=True):
        shapes[output.name] = list(np.shape(value))
    return shapes


def _macs(model: onnx.ModelProto, path: Path | None = None) -> int | None:
    """MatMul/Gemm/Conv multiply-accumulates for a one-second input: from shape inference, else from one probe run.

    Shape inference cannot follow a frame count the graph computes itself (features made inside the model), so
    when it leaves a counted layer's shape open the model runs once on a second of silence and the shapes are
    read off that run.
    """
    fixed = _probe_model(model)
    if fixed is None:
        return None
    nodes = [n for n in fixed.graph.node if _counted(n) and n.output]
    shapes = _static_shapes(fixed)
    total = _count_macs(nodes, shapes)
    if total is not None:
        return total
    try:
        probed = _probed_shapes(fixed, {name for n in nodes for name in _needed(n) if name})
    except Exception:
        return None
    return _count_macs(nodes, {**shapes, **probed})


def _attr(node: onnx.NodeProto, name: str) -> int:
    for attribute in node.attribute:
        if attribute.name == name:
            return attribute.i
    return 0
