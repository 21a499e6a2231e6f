"""The recurrent layers of the aot engine: support checks and emitters.

UNIDIRECTIONAL_SEQUENCE_LSTM (Keras LSTM with `unroll=False`, tf_keras and Keras 3) runs in
te_lstm_s8 (firmware/kernels/te_recurrent.c) with the integer semantics of TFLite Micro's
8x8->16 LSTM: every multiplier, shift and table is computed here at generation time the way
TFLite Micro's Prepare computes it.  The hidden and cell state are variable tensors: the
planner keeps them live for the whole invoke and never lets another buffer share their
bytes, init sets them to their zero points, and they carry over from one invoke to the next,
as they do in the TFLite Micro interpreter (until its reset()).

What the converter makes of the other recurrent layers (GRU, SimpleRNN, LSTM with
`unroll=True`) is a graph of ordinary ops (FULLY_CONNECTED, LOGISTIC, TANH, MUL, ADD, SUB,
SPLIT, UNPACK, PACK, ...) or a WHILE loop; the WHILE loop is refused here with the fix
(`unroll=True`), see `check_while`.
"""

from __future__ import annotations

import functools
import math
import re

import numpy as np

from ..errors import ModelError
from . import quant as q

LSTM = "UNIDIRECTIONAL_SEQUENCE_LSTM"
LSTM_MAX_VERSION = 1

# TFLite's LSTM input tensor indices (the layout of lstm_shared.h)
_W_IN = (1, 2, 3, 4)        # input -> input, forget, cell, output gate
_W_REC = (5, 6, 7, 8)       # recurrent -> the same gates
_PEEPHOLE = (9, 10, 11)
_BIAS = (12, 13, 14, 15)
_PROJECTION = (16, 17)
_H_STATE, _C_STATE = 18, 19
_LAYER_NORM = (20, 21, 22, 23)

_GATE_IN_SCALE = np.float32(2.0 ** -12)    # FC outputs: int16 Q3.12
_GATE_OUT_SCALE = np.float32(2.0 ** -15)   # sigmoid / tanh outputs: int16 Q0.15


_TABLE_FILE = "tensorflow/lite/kernels/internal/common.h"
_TABLE_NAME = "sigmoid_table_uint16"


@functools.lru_cache(maxsize=1)
def sigmoid_table() -> tuple[int, ...]:
    """The 256-entry table of sigmoid(k / 24) in unsigned 0.16 that TFLite's int16 logistic and
    tanh interpolate in.  Its entries are tuned (they are not the rounded function values), so
    it is read from the pinned TFLite Micro source tree (tinyedge.sources), the tree the tflm
    runtime builds from, and checked against the function it approximates."""
    from ..sources import source_tree

    path = source_tree("tflite-micro") / _TABLE_FILE
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise ModelError(f"cannot read {path}: {e}", hint="the LSTM kernel needs TFLite Micro's int16 "
                         "sigmoid table; check TINYEDGE_SOURCES_DIR or the source cache") from e
    m = re.search(_TABLE_NAME + r"\s*\[\s*256\s*\]\s*=\s*\{([^}]*)\}", text)
    vals = [int(v) for v in re.findall(r"\d+", m.group(1))] if m else []
    ok = len(vals) == 256 and all(abs(v - 65536.0 / (1.0 + math.exp(-k / 24.0))) < 3.0 for k, v in enumerate(vals))
    if not ok or any(b < a for a, b in zip(vals[:-1], vals[1:], strict=True)):
        raise ModelError(f"{path} has no usable {_TABLE_NAME} (256 increasing values near sigmoid(k / 24))",
                         hint="the pinned TFLite Micro source tree is damaged; remove it from the source cache")
    return tuple(vals)


def _opt(graph, op, k: int):
    return graph.tensors[op.inputs[k]] if k < len(op.inputs) and op.inputs[k] >= 0 else None


def check_lstm(graph, op) -> str | None:
    """None when te_lstm_s8 runs `op` exactly as TFLite Micro does, else why not."""
    if len(op.inputs) != 24:
        return f"expected 24 inputs, the op has {len(op.inputs)}"
    x = _opt(graph, op, 0)
    y = graph.tensors[op.outputs[0]]
    for what, t in (("input", x), ("output", y)):
        if t is None or t.dtype != "int8" or not t.is_quantized or t.per_channel:
            return f"the {what} must be per-tensor int8 (convert with full-int8 quantization)"
    if len(x.shape) != 3 or len(y.shape) != 3:
        return "input and output must be 3-D (batch, time, features)"
    o = op.options
    if o.get("time_major") and x.shape[1] != 1:
        return "time-major LSTM with a batch above 1 is not supported (Keras emits batch-major)"
    if o.get("asymmetric_quantize_inputs"):
        return "hybrid (asymmetric_quantize_inputs) LSTM is not supported"
    if o.get("diagonal_recurrent_tensors"):
        return "diagonal recurrent weights are not supported"
    if o.get("fused_activation_function", "TANH") not in ("TANH", "SIGMOID"):
        return f"cell activation {o.get('fused_activation_function')} is not supported (tanh or sigmoid)"
    for k in (*_PEEPHOLE, *_PROJECTION, *_LAYER_NORM):
        if _opt(graph, op, k) is not None:
            return "peephole, projection and layer-norm LSTM variants are not supported"
    units = None
    for k in (*_W_IN, *_W_REC):
        w = _opt(graph, op, k)
        if w is None:
            return "every gate needs its weights (CIFG LSTM without an input gate is not supported)"
        if w.dtype != "int8" or not w.is_const or not w.is_quantized or len(w.shape) != 2:
            return f"weights '{w.name}' must be constant 2-D int8"
        if w.per_channel:
            return f"weights '{w.name}' are quantized per channel (TFLite Micro's LSTM takes per-tensor weights)"
        if w.zero_point is not None and (w.zero_point != 0).any():
            return f"weights '{w.name}' are not symmetric"
        units = w.shape[0]
    for k in _BIAS:
        b = _opt(graph, op, k)
        if b is None or b.dtype != "int32" or not b.is_const:
            return "every gate needs a constant int32 bias"
    h, c = _opt(graph, op, _H_STATE), _opt(graph, op, _C_STATE)
    if h is None or c is None or not (h.is_variable and c.is_variable):
        return "the hidden and cell state must be variable tensors"
    if h.dtype != "int8" or c.dtype != "int16" or not h.is_quantized or not c.is_quantized:
        return "the hidden state must be int8 and the cell state int16"
    if y.shape[2] != units or h.num_elements != c.num_elements:
        return "the state and output sizes do not match the weights"
    if (float(h.scale[0]), int(h.zero_point[0])) != (float(y.scale[0]), int(y.zero_point[0])):
        return "the output is quantized differently from the hidden state"
    return None


def check_while(graph, op) -> str | None:
    """The converter turns a Keras GRU / SimpleRNN / LSTM layer that it cannot fuse into a
    WHILE loop over the time steps (with its body and condition as subgraphs)."""
    return ("WHILE (a recurrent layer converted to a loop over time steps) is not supported by the aot "
            "engine; build the layer with unroll=True (Keras GRU / SimpleRNN / LSTM) so the converter "
            "emits one set of ops per time step")


def _per_tensor_mult(in_scale, w_scale, out_scale) -> tuple[int, int]:
    """TFLite's per-tensor FC multiplier: the float product of the input and weight scales."""
    prod = np.float32(in_scale) * np.float32(w_scale)
    return q.quantize_multiplier(float(np.float64(prod) / np.float64(out_scale)))


def _mul_mult(s1, s2, out_scale) -> tuple[int, int]:
    return q.quantize_multiplier(float(np.float64(np.float32(s1)) * np.float64(np.float32(s2))
                                       / np.float64(np.float32(out_scale))))


def _checked_log2(x: float) -> int:
    """TFLite's CheckedLog2 result: log2 in float32, rounded half away from zero."""
    v = np.float32(np.log(np.float32(x))) * (np.float32(1.0) / np.float32(np.log(np.float32(2.0))))
    return q.round_away(float(np.float32(v)))


def emit_lstm(ctx, op) -> dict:
    g = ctx.g
    x = g.tensors[op.inputs[0]]
    h, c = g.tensors[op.inputs[_H_STATE]], g.tensors[op.inputs[_C_STATE]]
    o = op.options
    time_major = bool(o.get("time_major", False))
    d0, d1, n_in = (int(d) for d in x.shape)
    steps, batches = (d0, d1) if time_major else (d1, d0)
    units = int(g.tensors[op.inputs[1]].shape[0])
    xs, hs, cs = float(x.scale[0]), float(h.scale[0]), float(c.scale[0])
    x_zp, h_zp = int(x.zero_point[0]), int(h.zero_point[0])
    w_in, w_rec, b_in, b_rec, in_ms, rec_ms = [], [], [], [], [], []
    for k_in, k_rec, k_b in zip(_W_IN, _W_REC, _BIAS, strict=True):
        wi, wr, b = g.tensors[op.inputs[k_in]], g.tensors[op.inputs[k_rec]], g.tensors[op.inputs[k_b]]
        w_in.append(wi.data.reshape(units, n_in))
        w_rec.append(wr.data.reshape(units, units))
        bias = b.data.astype(np.int64).reshape(-1)
        b_in.append(bias - x_zp * wi.data.astype(np.int64).reshape(units, n_in).sum(axis=1))
        b_rec.append(-h_zp * wr.data.astype(np.int64).reshape(units, units).sum(axis=1))
        in_ms.append(_per_tensor_mult(xs, wi.scale[0], _GATE_IN_SCALE))
        rec_ms.append(_per_tensor_mult(hs, wr.scale[0], _GATE_IN_SCALE))
    b_in_all = np.concatenate(b_in)
    b_rec_all = np.concatenate(b_rec)
    for arr, what in ((b_in_all, "input"), (b_rec_all, "recurrent")):
        if arr.max() > q.INT32_MAX or arr.min() < q.INT32_MIN:
            raise ModelError(f"LSTM op {op.index}: {what} effective bias overflows int32")
    fc = _mul_mult(_GATE_OUT_SCALE, cs, cs)
    ic = _mul_mult(_GATE_OUT_SCALE, _GATE_OUT_SCALE, cs)
    oh = _mul_mult(_GATE_OUT_SCALE, _GATE_OUT_SCALE, hs)
    clip = float(np.float32(o.get("cell_clip", 0.0) or 0.0))
    # TFLite Micro clips when the float cell_clip is > 0, to its quantized value (-1 here: no clip)
    qclip = int(min(max(clip / float(np.float32(cs)), -32768.0), 32767.0)) if clip > 0 else -1
    left = 15 + _checked_log2(cs) - 3
    tanh_mult, tanh_shift = (3, -left) if left < 0 else (3 << left, 0)
    i = op.index
    table = f"{ctx.prefix}_sigmoid_q16"
    if not any(cst["name"] == table for cst in ctx.consts):
        ctx.consts.append({"name": table, "ctype": "uint16_t", "count": 256, "data": _fmt16(sigmoid_table()),
                           "comment": "sigmoid(k / 24) in 0.16 (int16 logistic / tanh interpolation)",
                           "size": 2, "align": 4})
        ctx.const_bytes += 512
    fields = {
        "batches": batches, "steps": steps, "in_n": n_in, "units": units,
        "in_step_t": batches * n_in if time_major else n_in, "in_step_b": n_in if time_major else steps * n_in,
        "out_step_t": batches * units if time_major else units,
        "out_step_b": units if time_major else steps * units,
        "w_in": ctx.const(f"op{i}_w_in", "int8_t", np.concatenate(w_in), f"LSTM input weights of op {i}"),
        "w_rec": ctx.const(f"op{i}_w_rec", "int8_t", np.concatenate(w_rec), f"LSTM recurrent weights of op {i}"),
        "b_in": ctx.const(f"op{i}_b_in", "int32_t", b_in_all, "bias - input zero point x row sums"),
        "b_rec": ctx.const(f"op{i}_b_rec", "int32_t", b_rec_all, "- hidden zero point x row sums"),
        "in_mult": [m for m, _ in in_ms], "in_shift": [s for _, s in in_ms],
        "rec_mult": [m for m, _ in rec_ms], "rec_shift": [s for _, s in rec_ms],
        "fc_mult": fc[0], "fc_shift": fc[1], "ic_mult": ic[0], "ic_shift": ic[1],
        "oh_mult": oh[0], "oh_shift": oh[1], "h_zp": h_zp, "cell_clip": qclip,
        "tanh_mult": tanh_mult, "tanh_shift": tanh_shift,
        "cell_gate_sigmoid": int(o.get("fused_activation_function", "TANH") == "SIGMOID"),
        "sigmoid_table": table,
    }
    macs = batches * steps * 4 * units * (n_in + units)
    scratch = f"(int16_t *)(void *)({ctx.prefix}_arena + {ctx.plan.scratch[i]})"
    args = [f"&{ctx.prefix}_op{i}", ctx.t(op.inputs[0]), ctx.t(op.inputs[_H_STATE]),
            f"(int16_t *)(void *)({ctx.t(op.inputs[_C_STATE])})", scratch, ctx.t(op.outputs[0])]
    return {"struct": "te_lstm_params_t", "fields": fields, "fn": "te_lstm_s8", "args": args, "macs": macs}


def _fmt16(values, per_line: int = 16) -> str:
    vals = [str(int(v)) for v in values]
    return ",\n    ".join(", ".join(vals[k:k + per_line]) for k in range(0, len(vals), per_line))


def variables(graph, plan) -> list[dict]:
    """The variable tensors (recurrent state) init sets to their zero points, as TFLite Micro's
    ResetVariableTensors does (int8: the zero point, other types: 0)."""
    out = []
    for t in sorted({t for op in graph.ops for t in op.inputs if t >= 0 and graph.tensors[t].is_variable}):
        ten = graph.tensors[t]
        value = int(ten.zero_point[0]) if ten.dtype == "int8" and ten.zero_point is not None and len(
            ten.zero_point) else 0
        out.append({"offset": plan.offsets[t], "bytes": ten.nbytes, "value": value, "name": ten.name})
    return out


EMIT = {LSTM: emit_lstm}
CHECKS = {LSTM: check_lstm}
VERSIONS = {LSTM: LSTM_MAX_VERSION}
