"""Read a `.tflite` flatbuffer into a small, typed graph that every later stage shares.

The flatbuffer is parsed with the schema module that the `tflite-micro`
package ships (generated from TFLite's schema), never by hand.  The graph
keeps what analysis and code generation need: tensors with shapes, dtypes,
quantization and constant data; ops in execution order with their builtin
options as a plain dict (snake_case keys, enums as names).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputFileError, ModelError

TFLITE_IDENT = b"TFL3"

# TensorType enum value -> numpy dtype name
_DTYPES = {
    0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string", 6: "bool",
    7: "int16", 8: "complex64", 9: "int8", 10: "float64", 11: "complex128", 12: "uint64",
    13: "resource", 14: "variant", 15: "uint32", 16: "uint16", 17: "int4",
}


@cache
def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as s

    return s


@cache
def _enum_names(enum_name: str) -> dict[int, str]:
    cls = getattr(_schema(), enum_name)
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


def builtin_op_name(code: int) -> str:
    return _enum_names("BuiltinOperator").get(code, f"UNKNOWN_{code}")


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: np.ndarray | None = None        # float32 array (len 1 per-tensor, len C per-channel)
    zero_point: np.ndarray | None = None   # int64 array
    quantized_dim: int = 0
    data: np.ndarray | None = None         # constant data in `dtype` and `shape`, or None
    is_variable: bool = False
    shape_signature: tuple[int, ...] | None = None

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def itemsize(self) -> int:
        if self.dtype == "int4":
            return 1
        if self.dtype in ("string", "resource", "variant"):
            return 0
        return np.dtype(self.dtype).itemsize

    @property
    def num_elements(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.num_elements * self.itemsize

    @property
    def per_channel(self) -> bool:
        return self.scale is not None and len(self.scale) > 1

    @property
    def is_quantized(self) -> bool:
        return self.scale is not None and len(self.scale) > 0


@dataclass
class Op:
    index: int
    opcode: str                     # builtin name, e.g. "CONV_2D", or "CUSTOM:<name>"
    version: int
    inputs: list[int]               # tensor indices; -1 for an omitted optional input
    outputs: list[int]
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def is_custom(self) -> bool:
        return self.opcode.startswith("CUSTOM:")


@dataclass
class Graph:
    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]
    description: str
    sha256: str
    size_bytes: int
    path: Path | None = None
    subgraph_count: int = 1

    def tensor(self, i: int) -> Tensor:
        return self.tensors[i]

    @property
    def input_tensors(self) -> list[Tensor]:
        return [self.tensors[i] for i in self.inputs]

    @property
    def output_tensors(self) -> list[Tensor]:
        return [self.tensors[i] for i in self.outputs]

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op in self.ops:
            counts[op.opcode] = counts.get(op.opcode, 0) + 1
        return counts

    def producers(self) -> dict[int, int]:
        """tensor index -> index of the op that writes it."""
        return {t: op.index for op in self.ops for t in op.outputs if t >= 0}

    def consumers(self) -> dict[int, list[int]]:
        """tensor index -> indices of the ops that read it."""
        c: dict[int, list[int]] = {}
        for op in self.ops:
            for t in op.inputs:
                if t >= 0:
                    c.setdefault(t, []).append(op.index)
        return c


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


# option field -> enum class used to turn its integer into a name
_OPTION_ENUMS = {
    "padding": "Padding",
    "fused_activation_function": "ActivationFunctionType",
    "weights_format": "FullyConnectedOptionsWeightsFormat",
    "mode": "MirrorPadMode",
    "combiner": "CombinerType",
}


def _options(op_t) -> dict[str, Any]:
    opts = op_t.builtinOptions
    if opts is None:
        return {}
    out: dict[str, Any] = {}
    for k, v in vars(opts).items():
        key = _snake(k)
        if key in _OPTION_ENUMS and isinstance(v, int):
            try:
                v = _enum_names(_OPTION_ENUMS[key]).get(v, v)
            except AttributeError:
                pass
        elif isinstance(v, np.ndarray):
            v = v.tolist()
        out[key] = v
    return out


def _tensor_data(t, buffers, dtype: str, shape: tuple[int, ...]) -> np.ndarray | None:
    if t.buffer is None or t.buffer <= 0 or t.buffer >= len(buffers):
        return None
    buf = buffers[t.buffer]
    raw = getattr(buf, "data", None)
    if raw is None or len(raw) == 0:
        return None
    raw = np.asarray(raw, dtype=np.uint8).tobytes()
    if dtype == "int4":
        packed = np.frombuffer(raw, dtype=np.uint8)
        lo = (packed & 0x0F).astype(np.int8)
        hi = (packed >> 4).astype(np.int8)
        vals = np.stack([lo, hi], axis=-1).reshape(-1)
        vals = np.where(vals > 7, vals - 16, vals).astype(np.int8)
        return vals[: int(np.prod(shape)) if shape else 1].reshape(shape)
    if dtype in ("string", "resource", "variant"):
        return np.frombuffer(raw, dtype=np.uint8)
    arr = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
    n = int(np.prod(shape)) if shape else 1
    if arr.size != n:
        return arr.copy()
    return arr.reshape(shape).astype(np.dtype(dtype), copy=True)


def read_model_bytes(path: os.PathLike | str) -> bytes:
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path} does not exist", path=path, hint="check the path")
    if path.is_dir():
        raise InputFileError(f"{path} is a folder, not a .tflite file", path=path)
    try:
        return path.read_bytes()
    except OSError as e:
        raise InputFileError(f"cannot read {path} ({e.strerror})", path=path) from None


def is_tflite_bytes(data: bytes) -> bool:
    return len(data) >= 8 and data[4:8] == TFLITE_IDENT


def parse_tflite(data: bytes, *, path: Path | None = None) -> Graph:
    """Parse flatbuffer bytes into a Graph (first subgraph)."""
    where = str(path) if path else "model"
    if not is_tflite_bytes(data):
        raise InputFileError(f"{where} is not a TFLite flatbuffer (no 'TFL3' identifier)", path=path,
                             hint="pass a .tflite file, or a Keras model to convert first")
    s = _schema()
    try:
        m = s.ModelT.InitFromPackedBuf(bytearray(data), 0)
    except Exception as e:  # the generated reader raises many kinds on corrupt input
        raise InputFileError(f"{where} is a corrupt TFLite flatbuffer ({type(e).__name__}: {e})",
                             path=path) from None
    if not m.subgraphs:
        raise ModelError(f"{where} has no subgraph")
    sg = m.subgraphs[0]
    buffers = m.buffers or []
    tensors: list[Tensor] = []
    for i, t in enumerate(sg.tensors or []):
        dtype = _DTYPES.get(t.type, f"type{t.type}")
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
        q = t.quantization
        scale = zp = None
        qdim = 0
        if q is not None and q.scale is not None and len(q.scale) > 0:
            scale = np.asarray(q.scale, dtype=np.float32)
            zp = np.asarray(q.zeroPoint if q.zeroPoint is not None else np.zeros(len(scale)), dtype=np.int64)
            qdim = int(q.quantizedDimension or 0)
        name = t.name.decode("utf-8", "replace") if isinstance(t.name, bytes) else str(t.name or "")
        sig = tuple(int(d) for d in t.shapeSignature) if t.shapeSignature is not None else None
        tensors.append(Tensor(
            index=i, name=name, shape=shape, dtype=dtype, scale=scale, zero_point=zp, quantized_dim=qdim,
            data=_tensor_data(t, buffers, dtype, shape), is_variable=bool(t.isVariable),
            shape_signature=sig,
        ))
    ops: list[Op] = []
    for i, o in enumerate(sg.operators or []):
        oc = m.operatorCodes[o.opcodeIndex]
        code = max(int(oc.builtinCode or 0), int(oc.deprecatedBuiltinCode or 0))
        name = builtin_op_name(code)
        if name == "CUSTOM":
            cc = oc.customCode.decode() if isinstance(oc.customCode, bytes) else str(oc.customCode)
            name = f"CUSTOM:{cc}"
        ops.append(Op(
            index=i, opcode=name, version=int(oc.version or 1),
            inputs=[int(x) for x in (o.inputs if o.inputs is not None else [])],
            outputs=[int(x) for x in (o.outputs if o.outputs is not None else [])],
            options=_options(o),
        ))
    desc = m.description.decode("utf-8", "replace") if isinstance(m.description, bytes) else (m.description or "")
    return Graph(
        tensors=tensors, ops=ops,
        inputs=[int(x) for x in sg.inputs], outputs=[int(x) for x in sg.outputs],
        description=desc, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data), path=path,
        subgraph_count=len(m.subgraphs),
    )


def load_tflite(path: os.PathLike | str) -> Graph:
    """Read and parse a `.tflite` file."""
    path = Path(path).expanduser().resolve()
    return parse_tflite(read_model_bytes(path), path=path)
