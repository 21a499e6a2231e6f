"""QUANTIZE and DEQUANTIZE at a model's float edges (firmware/kernels/te_math.c).

A model converted with float32 input and output (`inference_input_type` / `_output_type`
float32) starts with QUANTIZE (float32 -> int8) and ends with DEQUANTIZE (int8 -> float32);
TFLite Micro computes them as round(x / scale) + zero point (a float division, rounding half
away from zero, clamped) and (float)(scale * (q - zero point)).  The kernels do the same; the
float tensors live in the arena like any other (4 bytes per value).  QUANTIZE int8 -> int8
(a requantization) stays the lookup table of codegen.py.
"""

from __future__ import annotations

import numpy as np


def _support():
    from . import support  # at call time: support.py imports this module

    return support


def float_literal(x: float) -> str:
    """`x` as an exact C float literal (hexadecimal: no decimal rounding on the way)."""
    return float(np.float32(x)).hex() + "f"


def is_float_quantize(graph, op) -> bool:
    return op.opcode == "QUANTIZE" and graph.tensors[op.inputs[0]].dtype == "float32"


def emit_quantize_f32(ctx, op) -> dict:
    y = ctx.tensor(op.outputs[0])
    return {"struct": None, "fields": {}, "fn": "te_quantize_f32_s8",
            "args": [ctx.t(op.inputs[0]), ctx.t(op.outputs[0]), str(y.num_elements), float_literal(y.scale[0]),
                     str(int(y.zero_point[0]))]}


def emit_dequantize(ctx, op) -> dict:
    x = ctx.tensor(op.inputs[0])
    return {"struct": None, "fields": {}, "fn": "te_dequantize_s8_f32",
            "args": [ctx.t(op.inputs[0]), ctx.t(op.outputs[0]), str(x.num_elements), float_literal(x.scale[0]),
                     str(int(x.zero_point[0]))]}


def quantize_or(lut_emit):
    """The QUANTIZE emitter: float32 -> int8 here, int8 -> int8 by `lut_emit` (codegen's table)."""
    def emit(ctx, op):
        return emit_quantize_f32(ctx, op) if is_float_quantize(ctx.g, op) else lut_emit(ctx, op)
    return emit


def check_quantize(graph, op) -> str | None:
    s = _support()
    x = graph.tensors[op.inputs[0]]
    if x.dtype == "float32":
        if x.is_const:
            return "QUANTIZE of a constant float tensor is not supported"
        return s._need_int8_act(graph, op.outputs[0], "output 0")
    return s._io(graph, op)


def check_dequantize(graph, op) -> str | None:
    s = _support()
    r = s._need_int8_act(graph, op.inputs[0], "input 0")
    if r:
        return r
    y = graph.tensors[op.outputs[0]]
    if y.dtype != "float32":
        return f"DEQUANTIZE to {y.dtype} is not supported (float32 only)"
    return None


MAX_VERSION = {"DEQUANTIZE": 6}
EMIT = {"DEQUANTIZE": emit_dequantize}
CHECKS = {"QUANTIZE": check_quantize, "DEQUANTIZE": check_dequantize}
