"""What a leaderboard row says about a model besides its error rate: parameters, depth, MACs per second."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import shape_inference

WEIGHT_OPS = frozenset({"MatMul", "Gemm", "Conv", "ConvTranspose", "LSTM", "GRU", "RNN", "Einsum"})


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
    initializers = {t.name for t in model.graph.initializer}
    parameters = sum(_numel(t.dims) for t in model.graph.initializer)
    return GraphMetrics(parameters=parameters, depth=_depth(model, initializers), macs_per_second=_macs(model))


def _is_weight_layer(node: onnx.NodeProto, initializers: set[str]) -> bool:
    return node.op_type in WEIGHT_OPS and any(name in initializers for name in node.input[1:])


def _depth(model: onnx.ModelProto, initializers: set[str]) -> int:
    """Longest path, counting weight layers, over the top-level graph (nodes are in topological order)."""
    depth_of: dict[str, int] = defaultdict(int)
    for node in model.graph.node:
        incoming = max((depth_of[name] for name in node.input if name), default=0)
        here = incoming + int(_is_weight_layer(node, initializers))
        for name in node.output:
            depth_of[name] = here
    return max((depth_of[o.name] for o in model.graph.output), default=0)


def _macs(model: onnx.ModelProto) -> int | None:
    """Shapes inferred for a one-second input; MatMul/Gemm/Conv counted from them."""
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    initializers = {t.name for t in fixed.graph.initializer}
    graph_inputs = [i for i in fixed.graph.input if i.name not in initializers]
    if len(graph_inputs) != 1:
        return None
    dims = graph_inputs[0].type.tensor_type.shape.dim
    if len(dims) != 2:
        return None
    dims[0].dim_value, dims[1].dim_value = 1, 16_000
    try:
        inferred = shape_inference.infer_shapes(fixed, data_prop=True)
    except Exception:
        return None
    shapes: dict[str, list[int]] = {}
    for info in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        shape = [d.dim_value if d.HasField("dim_value") else -1 for d in info.type.tensor_type.shape.dim]
        shapes[info.name] = shape
    for tensor in inferred.graph.initializer:
        shapes[tensor.name] = list(tensor.dims)
    total = 0
    for node in inferred.graph.node:
        out = shapes.get(node.output[0]) if node.output else None
        if node.op_type in {"MatMul", "Gemm"}:
            a = shapes.get(node.input[0])
            if not a or not out or -1 in a or -1 in out:
                return None
            inner = a[-2] if node.op_type == "Gemm" and _attr(node, "transA") else a[-1]
            total += _numel(out) * inner
        elif node.op_type in {"Conv", "ConvTranspose"}:
            w = shapes.get(node.input[1])
            if not w or not out or -1 in out:
                return None
            per_output = _numel(w[1:]) if node.op_type == "Conv" else _numel(w[2:]) * w[0] // max(out[1], 1)
            total += _numel(out) * per_output
    return total


def _attr(node: onnx.NodeProto, name: str) -> int:
    for attribute in node.attribute:
        if attribute.name == name:
            return attribute.i
    return 0
