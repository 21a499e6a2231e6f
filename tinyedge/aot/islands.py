"""Float islands the converter leaves in a full-int8 graph, run as int8 lookups, bit for bit.

TF's full-int8 converter keeps some ops in float between a DEQUANTIZE and a QUANTIZE: Keras' ELU
(neither quantizer has an int8 ELU: "Quantization not yet supported for op: 'ELU'"), the NEG of
Keras 3's LayerNormalization, and on some conversions the gate SPLIT of an unrolled GRU.  Such an
island starts from one int8 tensor, so every float value in it is a function of one int8 code:
the aot engine moves the codes (the island's data-movement ops run on int8, its unary ops and the
DEQUANTIZE become aliases) and the closing QUANTIZE becomes a 256-entry table of what TFLite
Micro computes on the way: DEQUANTIZE's (float)(scale * (q - zero point)), the float kernels
(ELU: x < 0 ? expm1f(x) : x; NEG: -x; data movement: the value itself), and QUANTIZE's
round(x / scale) + zero point, all in float32 as there (expm1f is the C library's, the one the
tflite-micro interpreter calls).

`roles(graph)` says which ops are island ops (what `check_op` accepts), `fold(graph)` rewrites
them before planning and code generation.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import functools

import numpy as np

# float ops an island may hold: unary elementwise ones (their float32 function) and data movement
FLOAT_MOVE = frozenset({"RESHAPE", "SQUEEZE", "EXPAND_DIMS", "SPLIT", "SPLIT_V", "UNPACK", "SLICE",
                        "STRIDED_SLICE", "TRANSPOSE"})


@functools.lru_cache(maxsize=1)
def _expm1f():
    lib = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    fn = lib.expm1f
    fn.restype, fn.argtypes = ctypes.c_float, [ctypes.c_float]
    return fn


def _elu(x: np.ndarray) -> np.ndarray:
    f = _expm1f()
    return np.array([np.float32(f(float(v))) if v < 0 else v for v in x], np.float32)


FLOAT_UNARY = {"ELU": _elu, "NEG": lambda x: (-x).astype(np.float32)}


def _data_input(op) -> int:
    return op.inputs[1] if op.opcode == "SPLIT" else op.inputs[0]


def _islands(graph):
    """(role per op index, source quantization per island float tensor, per op index the float ops
    that lead to each island tensor); roles: head (DEQUANTIZE), unary, move, tail (QUANTIZE)."""
    consumers = graph.consumers()
    roles: dict[int, str] = {}
    source: dict[int, tuple[float, int]] = {}
    chain: dict[int, tuple[str, ...]] = {}   # float tensor -> the unary ops applied since the head
    outputs = set(graph.outputs)
    for head in graph.ops:
        if head.opcode != "DEQUANTIZE" or len(head.inputs) != 1 or len(head.outputs) != 1:
            continue
        x, y = graph.tensors[head.inputs[0]], graph.tensors[head.outputs[0]]
        if x.dtype != "int8" or y.dtype != "float32" or not x.is_quantized or x.per_channel or x.is_const:
            continue
        mine = {head.index: "head"}
        todo, seen, ok = [head.outputs[0]], {}, True
        seen[head.outputs[0]] = ()
        while todo and ok:
            t = todo.pop()
            if t in outputs:
                ok = False
                break
            for ci in consumers.get(t, []):
                op = graph.ops[ci]
                if ci in mine:
                    continue
                outs = [o for o in op.outputs if o >= 0]
                if op.opcode == "QUANTIZE" and graph.tensors[outs[0]].dtype == "int8" \
                        and graph.tensors[outs[0]].is_quantized and not graph.tensors[outs[0]].per_channel:
                    mine[ci] = "tail"
                    continue
                role = "unary" if op.opcode in FLOAT_UNARY else "move" if op.opcode in FLOAT_MOVE else None
                others = [i for i in op.inputs if i >= 0 and i != t]
                if role is None or (role == "unary" and others) or _data_input(op) != t or \
                        any(not graph.tensors[i].is_const for i in others) or \
                        any(graph.tensors[o].dtype != "float32" for o in outs):
                    ok = False
                    break
                mine[ci] = role
                for o in outs:
                    seen[o] = seen[t] + ((op.opcode,) if role == "unary" else ())
                    todo.append(o)
        if not ok or "tail" not in mine.values():
            continue
        roles.update(mine)
        for t, ch in seen.items():
            source[t] = (float(x.scale[0]), int(x.zero_point[0]))
            chain[t] = ch
    return roles, source, chain


def roles(graph) -> dict[int, str]:
    """op index -> its role in a float island the engine runs as int8 (head, unary, move, tail)."""
    return _islands(graph)[0]


def tail_table(in_scale: float, in_zp: int, ops: tuple[str, ...], out_scale: float, out_zp: int) -> list[int]:
    """The int8 code -> int8 table of DEQUANTIZE, the float ops `ops`, QUANTIZE, in float32 as TFLite Micro."""
    codes = np.arange(-128, 128, dtype=np.int64)
    x = (np.float64(np.float32(in_scale)) * (codes - int(in_zp)).astype(np.float64)).astype(np.float32)
    for name in ops:
        x = FLOAT_UNARY[name](x)
    r = (x / np.float32(out_scale)).astype(np.float32)
    q = np.where(np.isnan(r), -(1 << 40), np.sign(r) * np.floor(np.abs(r) + np.float32(0.5)))
    return [int(v) for v in np.clip(q + int(out_zp), -128, 127)]


def fold(graph):
    """`graph` with its float islands rewritten to int8: the island's float tensors carry the source
    tensor's int8 codes (and its quantization), DEQUANTIZE and the unary ops become RESHAPE aliases,
    each closing QUANTIZE a table (options["table"]).  The same graph when it has none."""
    rl, source, chain = _islands(graph)
    if not rl:
        return graph
    tensors = list(graph.tensors)
    for t, (s, zp) in source.items():
        tensors[t] = dataclasses.replace(tensors[t], dtype="int8", scale=np.array([s], np.float32),
                                         zero_point=np.array([zp], np.int64), quantized_dim=0)
    ops = []
    for op in graph.ops:
        role = rl.get(op.index)
        if role in ("head", "unary"):
            op = dataclasses.replace(op, opcode="RESHAPE", inputs=[op.inputs[0]], options={}, version=1)
        elif role == "tail":
            y = graph.tensors[op.outputs[0]]
            s, zp = source[op.inputs[0]]
            table = tail_table(s, zp, chain[op.inputs[0]], float(y.scale[0]), int(y.zero_point[0]))
            op = dataclasses.replace(op, options=dict(op.options, table=table, island=chain[op.inputs[0]]))
        ops.append(op)
    return dataclasses.replace(graph, tensors=tensors, ops=ops)
