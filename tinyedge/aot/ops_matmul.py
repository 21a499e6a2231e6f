"""The aot engine's BATCH_MATMUL and ARG_MAX (firmware/kernels/te_matmul.c).

BATCH_MATMUL is what the converter makes of `tf.matmul` / Keras `Dot` / attention scores between
two activations (and of a matmul with a constant of rank 3 or more); the integer semantics are
TFLite Micro's reference BatchMatMul: int32 sums of (lhs - lhs_zp)(rhs - rhs_zp), one
requantization (QuantizeMultiplier of lhs_scale * rhs_scale / out_scale in double), batch dims
broadcast.  ARG_MAX (int8 in, int32 or int64 indices out) picks the first of equal maxima, as
TFLite's.  `EMIT`, `CHECKS`, `MAX_VERSION` and `m4_note` are registered by codegen.py and
support.py; `scratch_bytes` by the planner.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError
from . import quant as q

MAX_VERSION = {"BATCH_MATMUL": 4, "ARG_MAX": 3}


def _support():
    from . import support  # at call time: support.py imports this module

    return support


def _ext5(shape) -> list[int]:
    s = [int(d) for d in shape]
    if len(s) > 5:
        raise ModelError("BATCH_MATMUL of more than 5 dimensions")
    return [1] * (5 - len(s)) + s


def matmul_dims(graph, op) -> dict:
    """rows (M), cols (N), depth (K), the 3 broadcast batch dims and each operand's batch strides."""
    lhs, rhs = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    adj_x, adj_y = bool(op.options.get("adj_x")), bool(op.options.get("adj_y"))
    l5, r5 = _ext5(lhs.shape), _ext5(rhs.shape)
    m, k = (l5[4], l5[3]) if adj_x else (l5[3], l5[4])
    k2, n = (r5[4], r5[3]) if adj_y else (r5[3], r5[4])
    if k != k2:
        raise ModelError(f"BATCH_MATMUL op {op.index}: depths differ ({k} and {k2})")

    def strides(s5):
        return [0 if s5[d] == 1 else int(np.prod(s5[d + 1:])) for d in range(3)]
    batch = [max(a, b) for a, b in zip(l5[:3], r5[:3], strict=True)]
    return {"rows": m, "cols": n, "depth": k, "batch": batch, "lhs_bstride": strides(l5),
            "rhs_bstride": strides(r5), "adj_x": adj_x, "adj_y": adj_y}


def scratch_bytes(graph, op) -> int:
    """The kernel's working memory: the right-hand side's column sums, its transpose (unless it is
    stored [n][k] already or is a constant, stored transposed) and the left-hand side's (adj_x)."""
    d = matmul_dims(graph, op)
    n = 4 * d["cols"]
    if not d["adj_y"] and not graph.tensors[op.inputs[1]].is_const:
        n += (d["cols"] * d["depth"] + 3) // 4 * 4
    if d["adj_x"]:
        n += d["rows"] * d["depth"]
    return n


def emit_batch_matmul(ctx, op) -> dict:
    lhs, rhs, y = ctx.tensor(op.inputs[0]), ctx.tensor(op.inputs[1]), ctx.tensor(op.outputs[0])
    d = matmul_dims(ctx.g, op)
    i = op.index
    mult, shift = q.quantize_multiplier(float(np.float64(lhs.scale[0]) * np.float64(rhs.scale[0]) /
                                              np.float64(y.scale[0])))
    rhs_transpose = int(not d["adj_y"])
    if rhs.is_const:
        data = rhs.data
        if not d["adj_y"]:   # stored [..., n, k]: every output a contiguous dot product
            data = np.swapaxes(data, -1, -2)
        rhs_arg = ctx.const(f"op{i}_rhs", "int8_t", np.ascontiguousarray(data), f"constant rhs of op {i}, [n][k]")
        rhs_transpose = 0
    else:
        rhs_arg = ctx.t(op.inputs[1])
    fields = {"batch": d["batch"], "lhs_bstride": d["lhs_bstride"], "rhs_bstride": d["rhs_bstride"],
              "rows": d["rows"], "cols": d["cols"], "depth": d["depth"], "lhs_transpose": int(d["adj_x"]),
              "rhs_transpose": rhs_transpose, "lhs_zp": int(lhs.zero_point[0]), "rhs_zp": int(rhs.zero_point[0]),
              "out_offset": int(y.zero_point[0]), "out_mult": mult, "out_shift": shift}
    lhs_arg = (ctx.const(f"op{i}_lhs", "int8_t", lhs.data, f"constant lhs of op {i}") if lhs.is_const
               else ctx.t(op.inputs[0]))
    macs = int(np.prod(d["batch"])) * d["rows"] * d["cols"] * d["depth"]
    return {"struct": "te_batch_matmul_params_t", "fields": fields, "fn": "te_batch_matmul_s8",
            "args": [f"&{ctx.prefix}_op{i}", lhs_arg, rhs_arg, ctx.t(op.outputs[0]),
                     f"{ctx.prefix}_arena + {ctx.plan.scratch[i]}"], "macs": macs}


def _axis_of(graph, op) -> int:
    x = graph.tensors[op.inputs[0]]
    a = int(np.asarray(graph.tensors[op.inputs[1]].data).reshape(-1)[0])
    return a + len(x.shape) if a < 0 else a


def emit_arg_max(ctx, op) -> dict:
    x, y = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    axis = _axis_of(ctx.g, op)
    shape = [int(v) for v in x.shape]
    outer = int(np.prod(shape[:axis])) if axis > 0 else 1
    inner = int(np.prod(shape[axis + 1:]))
    return {"struct": None, "fields": {}, "fn": "te_arg_max_s8",
            "args": [str(outer), str(shape[axis]), str(inner), ctx.t(op.inputs[0]), ctx.t(op.outputs[0]),
                     str(8 if y.dtype == "int64" else 4)]}


def _check_batch_matmul(graph, op) -> str | None:
    s = _support()
    if len(op.inputs) != 2:
        return "BATCH_MATMUL takes two inputs"
    if op.options.get("asymmetric_quantize_inputs"):
        return "hybrid (asymmetric_quantize_inputs) BATCH_MATMUL is not supported"
    for k, t in enumerate(op.inputs):
        ten = graph.tensors[t]
        if ten.is_const:
            if ten.dtype != "int8" or not ten.is_quantized:
                return f"constant operand {k} '{ten.name}' is {ten.dtype}; only quantized int8 is supported"
            if ten.per_channel:
                return f"constant operand {k} '{ten.name}' is quantized per channel (TFLite Micro's BATCH_MATMUL " \
                       "takes one scale)"
            continue
        r = s._need_int8_act(graph, t, f"input {k}")
        if r:
            return r
    r = s._need_int8_act(graph, op.outputs[0], "output 0")
    if r:
        return r
    ranks = [len(graph.tensors[t].shape) for t in op.inputs]
    if min(ranks) < 2 or max(ranks) > 5:
        return "BATCH_MATMUL operands must have 2 to 5 dimensions"
    lhs, rhs = (_ext5(graph.tensors[t].shape) for t in op.inputs)
    for a, b in zip(lhs[:3], rhs[:3], strict=True):
        if a != b and 1 not in (a, b):
            return f"batch dims {a} and {b} do not broadcast"
    try:
        d = matmul_dims(graph, op)
    except ModelError as e:
        return str(e)
    if d["depth"] * 127 * 255 >= 2 ** 31:
        return "BATCH_MATMUL depth too large for int32 sums"
    return None


def _check_arg_max(graph, op) -> str | None:
    s = _support()
    r = s._need_int8_act(graph, op.inputs[0], "input 0")
    if r:
        return r
    if len(op.inputs) < 2 or not graph.tensors[op.inputs[1]].is_const:
        return "the axis must be a constant tensor"
    y = graph.tensors[op.outputs[0]]
    if y.dtype not in ("int32", "int64"):
        return f"ARG_MAX output '{y.name}' is {y.dtype} (int32 or int64 only)"
    return None


def m4_note(graph, op) -> str | None:
    if op.opcode == "BATCH_MATMUL":
        return ("Cortex-M4: SMLAD dot products one output at a time (not the 4-row FULLY_CONNECTED kernel)"
                + ("; the right-hand side is first transposed into arena scratch, per batch"
                   if not op.options.get("adj_y") and not graph.tensors[op.inputs[1]].is_const else ""))
    return None


EMIT = {"BATCH_MATMUL": emit_batch_matmul, "ARG_MAX": emit_arg_max}
CHECKS = {"BATCH_MATMUL": _check_batch_matmul, "ARG_MAX": _check_arg_max}
