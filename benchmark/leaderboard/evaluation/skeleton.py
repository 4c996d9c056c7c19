"""A submitted model's structure without the bytes of its large weights, read from the file without loading it.

Parsing an ONNX file whole costs about twice its size while it is parsed (the file's bytes and the message), and
onnx.checker reads the file the same way again: a 200 MB submission cost its web process 400 MB at least. Nearly
all of a large model is the ``raw_data`` of its main graph's initializers, and no static check reads those bytes.
So the file is mapped and its protobuf wire format walked (``ModelProto.graph`` -> ``GraphProto.initializer`` ->
``TensorProto.raw_data``; onnx.proto's field numbers); everything but large ``raw_data`` payloads is copied, and
the pages of the skipped payloads are never read. Two skeletons come out:

- ``bare``: the large tensors without data, for this project's checks (operators, domains, opsets, signature,
  parameter counts; they read names, types and shapes only);
- ``pointed``: the same tensors marked as external data at their own offsets in the submitted file, for
  onnx.checker, which then checks the graph, types and shapes without holding the weights.

What the checker no longer sees, whether a payload's length matches its tensor's shape and type, is checked here
(:func:`payload_mismatch`). Weights elsewhere (Constant nodes, subgraphs) stay in the skeletons as they are.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass, field
from pathlib import Path

import onnx
from onnx import TensorProto

# onnx.proto's field numbers, and the protobuf wire type of length-delimited fields.
MODEL_GRAPH = 7
GRAPH_INITIALIZER = 5
TENSOR_RAW_DATA = 9
TENSOR_EXTERNAL_DATA = 13
TENSOR_DATA_LOCATION = 14
LENGTH_DELIMITED = 2
STRIP_BYTES = 1024 * 1024  # a payload smaller than this stays: small tensors feed shape inference (Reshape's shape)
# Types whose elements take half a byte each in raw_data.
_PACKED_4BIT = {getattr(TensorProto, name) for name in ("INT4", "UINT4", "FLOAT4E2M1") if hasattr(TensorProto, name)}


class SkeletonError(ValueError):
    """The file is not a well-formed protobuf message."""


@dataclass(frozen=True)
class Payload:
    """A large tensor's ``raw_data`` left in the file: its tensor's other fields, and where its bytes lie."""

    header: bytes
    offset: int
    length: int


@dataclass
class Skeleton:
    bare: bytes
    pointed: bytes
    payloads: list[Payload] = field(default_factory=list)


def read_skeleton(path: Path, *, strip_bytes: int | None = None) -> Skeleton:
    """The skeletons of the model at ``path`` (a non-empty file); :class:`SkeletonError` for malformed bytes."""
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        walk = _Walk(buf, location=path.name, strip_bytes=STRIP_BYTES if strip_bytes is None else strip_bytes)
        bare, pointed = walk.message(0, len(buf), {MODEL_GRAPH: walk.graph})
    return Skeleton(bare=bare, pointed=pointed, payloads=walk.payloads)


def payload_mismatch(payload: Payload) -> str | None:
    """Why a stripped payload's length does not fit its tensor's type and shape, as onnx.checker would have said;
    None when it fits."""
    tensor = TensorProto.FromString(payload.header)
    count = 1
    for dim in tensor.dims:
        count *= dim
    if tensor.data_type in _PACKED_4BIT:
        expected = (count + 1) // 2
    else:
        try:
            expected = count * onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
        except (KeyError, ValueError, TypeError):
            return f"Tensor {tensor.name!r} has raw data but no fixed-size element type ({tensor.data_type})."
        if tensor.data_type == TensorProto.STRING:
            return f"Tensor {tensor.name!r} holds strings, which cannot be raw data."
    if expected != payload.length:
        return f"Tensor {tensor.name!r} has {payload.length} bytes of raw data; its shape and type need {expected}."
    return None


class _Walk:
    def __init__(self, buf: mmap.mmap, *, location: str, strip_bytes: int) -> None:
        self.buf = buf
        self.location = location
        self.strip_bytes = strip_bytes
        self.payloads: list[Payload] = []

    def message(self, start: int, end: int, rewrite) -> tuple[bytes, bytes]:
        """The fields of the message in ``buf[start:end]``, copied as they are except the length-delimited ones
        in ``rewrite`` (field number -> function of the submessage's bounds giving its two rewritten bodies)."""
        bare, pointed = [], []
        for number, wire, key, value, value_end in _fields(self.buf, start, end):
            if wire == LENGTH_DELIMITED and number in rewrite:
                sub_bare, sub_pointed = rewrite[number](value, value_end)
                bare.append(_length_delimited(number, sub_bare))
                pointed.append(_length_delimited(number, sub_pointed))
            else:
                chunk = self.buf[key:value_end]
                bare.append(chunk)
                pointed.append(chunk)
        return b"".join(bare), b"".join(pointed)

    def graph(self, start: int, end: int) -> tuple[bytes, bytes]:
        return self.message(start, end, {GRAPH_INITIALIZER: self.tensor})

    def tensor(self, start: int, end: int) -> tuple[bytes, bytes]:
        fields = list(_fields(self.buf, start, end))
        raw = [f for f in fields if f[0] == TENSOR_RAW_DATA and f[1] == LENGTH_DELIMITED]
        marked = any(f[0] in (TENSOR_EXTERNAL_DATA, TENSOR_DATA_LOCATION) for f in fields)
        if len(raw) != 1 or marked or raw[0][4] - raw[0][3] < self.strip_bytes:
            whole = self.buf[start:end]  # small, or unusual enough to be left to the checks as it is
            return whole, whole
        _, _, _, offset, payload_end = raw[0]
        header = b"".join(self.buf[key:value_end] for number, _, key, _, value_end in fields
                          if number != TENSOR_RAW_DATA)  # fmt: skip
        self.payloads.append(Payload(header=header, offset=offset, length=payload_end - offset))
        entries = {"location": self.location, "offset": str(offset), "length": str(payload_end - offset)}
        external = b"".join(
            _length_delimited(TENSOR_EXTERNAL_DATA, _length_delimited(1, k.encode()) + _length_delimited(2, v.encode()))
            for k, v in entries.items()
        )
        location = _varint_bytes(TENSOR_DATA_LOCATION << 3) + _varint_bytes(TensorProto.EXTERNAL)
        return header, header + external + location


def _fields(buf, start: int, end: int):
    """(field number, wire type, offset of its key, of its value, of its end) for each field in ``buf[start:end]``."""
    pos = start
    while pos < end:
        key_at = pos
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, value_end = _varint(buf, pos, end)
        elif wire == 1:
            value_end = pos + 8
        elif wire == LENGTH_DELIMITED:
            length, pos = _varint(buf, pos, end)
            value_end = pos + length
        elif wire == 5:
            value_end = pos + 4
        else:  # groups (3, 4) are not in onnx.proto; 6 and 7 are not wire types
            raise SkeletonError(f"wire type {wire} at byte {key_at}")
        if number == 0 or value_end > end:
            raise SkeletonError(f"a field at byte {key_at} runs past its message")
        yield number, wire, key_at, pos, value_end
        pos = value_end


def _varint(buf, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while pos < end and shift < 64:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
    raise SkeletonError(f"a malformed varint ends at byte {pos}")


def _varint_bytes(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _length_delimited(number: int, body: bytes) -> bytes:
    return _varint_bytes(number << 3 | LENGTH_DELIMITED) + _varint_bytes(len(body)) + body
