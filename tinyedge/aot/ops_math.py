"""The aot engine's arithmetic beyond the MLPerf Tiny set: SUB, SQUARED_DIFFERENCE, PRELU, MAXIMUM,
MINIMUM, REDUCE_MAX, SUM, RSQRT, L2_NORMALIZATION, RESIZE_NEAREST_NEIGHBOR, RESIZE_BILINEAR, TRANSPOSE_CONV and
grouped CONV_2D.

Every multiplier, shift, source coordinate and weight sum is computed here, at generation time,
with the arithmetic TFLite Micro's Prepare uses (float32 where it computes in float, double where
it computes in double), so the kernels in firmware/kernels/te_math.c, te_resize.c and
te_transpose_conv.c run integer code only.  `EMIT`, `CHECKS` and `MAX_VERSION` are registered into
the engine's tables by codegen.py and support.py.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ModelError
from . import quant as q

MAX_VERSION = {
    "SUB": 5,
    "SQUARED_DIFFERENCE": 2,
    "PRELU": 1,
    "MAXIMUM": 4,
    "MINIMUM": 4,
    "REDUCE_MAX": 3,
    "SUM": 2,
    "RESIZE_NEAREST_NEIGHBOR": 4,
    "RESIZE_BILINEAR": 4,
    "TRANSPOSE_CONV": 4,
    "RSQRT": 3,
    "L2_NORMALIZATION": 2,
}


def _support():
    from . import support  # at call time: support.py imports this module to register it

    return support


def _scale(t) -> float:
    return float(t.scale[0])


def _zp(t) -> int:
    return int(t.zero_point[0])


def _shape4(shape) -> list[int]:
    s = [int(d) for d in shape]
    if len(s) > 4:
        raise ModelError("more than 4 dimensions")
    return [1] * (4 - len(s)) + s


def _bstrides(shape4: list[int]) -> list[int]:
    strides, acc = [0, 0, 0, 0], 1
    for d in range(3, -1, -1):
        strides[d] = 0 if shape4[d] == 1 else acc
        acc *= shape4[d]
    return strides


def _operand(ctx, op, k: int) -> str:
    t = op.inputs[k]
    ten = ctx.tensor(t)
    if ten.is_const:
        return ctx.const(f"op{op.index}_in{t}", "int8_t", ten.data, "constant operand")
    return ctx.t(t)


# ---- binary elementwise --------------------------------------------------------------------

_BINARY_FN = {"SUB": "te_sub_s8", "SQUARED_DIFFERENCE": "te_squared_difference_s8", "PRELU": "te_prelu_s8",
              "MAXIMUM": "te_maximum_s8", "MINIMUM": "te_minimum_s8"}


def emit_binary(ctx, op) -> dict:
    a, b, y = ctx.tensor(op.inputs[0]), ctx.tensor(op.inputs[1]), ctx.tensor(op.outputs[0])
    lo, hi = q.act_range(op.options.get("fused_activation_function", "NONE"), _scale(y), _zp(y))
    fields = {"size": y.num_elements, "broadcast": int(tuple(a.shape) != tuple(b.shape)),
              "out_dims": _shape4(y.shape), "in1_strides": _bstrides(_shape4(a.shape)),
              "in2_strides": _bstrides(_shape4(b.shape)),
              "in1_offset": -_zp(a), "in2_offset": -_zp(b), "out_offset": _zp(y),
              "left_shift": 0, "in1_mult": 0, "in1_shift": 0, "in2_mult": 0, "in2_shift": 0,
              "out_mult": 0, "out_shift": 0, "act_min": lo, "act_max": hi}
    f32 = np.float32
    if op.opcode == "SUB":   # CalculateOpDataSub: the ratios in float32, then widened
        left = 20
        twice = f32(2) * max(f32(_scale(a)), f32(_scale(b)))
        m1, s1 = q.quantize_multiplier(float(f32(_scale(a)) / twice))
        m2, s2 = q.quantize_multiplier(float(f32(_scale(b)) / twice))
        mo, so = q.quantize_multiplier(float(twice / (f32(1 << left) * f32(_scale(y)))))
        fields.update(left_shift=left, in1_mult=m1, in1_shift=s1, in2_mult=m2, in2_shift=s2, out_mult=mo, out_shift=so)
    elif op.opcode == "SQUARED_DIFFERENCE":   # PrepareQuantized: in double, left shift 7
        left = 7
        twice = 2.0 * float(max(f32(_scale(a)), f32(_scale(b))))
        m1, s1 = q.quantize_multiplier(_scale(a) / twice)
        m2, s2 = q.quantize_multiplier(_scale(b) / twice)
        mo, so = q.quantize_multiplier(twice * twice / (float(1 << (2 * left)) * _scale(y)))
        fields.update(left_shift=left, in1_mult=m1, in1_shift=s1, in2_mult=m2, in2_shift=s2, out_mult=mo,
                      out_shift=so, act_min=-128, act_max=127)
    elif op.opcode == "PRELU":   # CalculatePreluParams, in double
        m1, s1 = q.quantize_multiplier(_scale(a) / _scale(y))
        m2, s2 = q.quantize_multiplier(_scale(a) * _scale(b) / _scale(y))
        fields.update(out_mult=m1, out_shift=s1, in1_mult=m2, in1_shift=s2, act_min=-128, act_max=127)
    args = [f"&{ctx.prefix}_op{op.index}", _operand(ctx, op, 0), _operand(ctx, op, 1), ctx.t(op.outputs[0])]
    return {"struct": "te_binary_params_t", "fields": fields, "fn": _BINARY_FN[op.opcode], "args": args}


# ---- reductions ----------------------------------------------------------------------------

def _reduce_fields(ctx, op) -> dict:
    x, ax = ctx.tensor(op.inputs[0]), ctx.tensor(op.inputs[1])
    rank = len(x.shape)
    axes = sorted({int(v) % rank for v in np.asarray(ax.data).reshape(-1)})
    pad = 4 - rank
    dims4 = [1] * pad + [int(d) for d in x.shape]
    red, keep = [1] * 4, list(dims4)
    for a in axes:
        red[a + pad], keep[a + pad] = dims4[a + pad], 1
    strides, acc = [0, 0, 0, 0], 1
    for d in range(3, -1, -1):
        strides[d] = acc
        acc *= dims4[d]
    count = int(np.prod([dims4[a + pad] for a in axes])) if axes else 1
    return {"out_dims": keep, "red_dims": red, "strides": strides, "count": count}


def emit_reduce(ctx, op) -> dict:
    x, y = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    fields = _reduce_fields(ctx, op)
    if op.opcode == "SUM":   # QuantizedMeanOrSum with compute_sum: the plain ratio, no 1/count
        mult, shift = q.quantize_multiplier(float(np.float64(np.float32(_scale(x))) /
                                                  np.float64(np.float32(_scale(y)))))
        fn = "te_mean_s8"
    else:
        mult, shift, fn = 0, 0, "te_reduce_max_s8"
    fields.update(in_zp=_zp(x), out_zp=_zp(y), mult=mult, shift=shift)
    return {"struct": "te_mean_params_t", "fields": fields, "fn": fn,
            "args": [f"&{ctx.prefix}_op{op.index}", ctx.t(op.inputs[0]), ctx.t(op.outputs[0])]}


# ---- resize --------------------------------------------------------------------------------

def nearest_index(out_size: int, in_size: int, align_corners: bool, half_pixel: bool) -> list[int]:
    """TFLite's GetNearestNeighbor for every output coordinate, in float32 as the kernel computes it."""
    f32 = np.float32
    if align_corners and out_size > 1:
        scale = f32(in_size - 1) / f32(out_size - 1)
    else:
        scale = f32(in_size) / f32(out_size)
    offset = f32(0.5) if half_pixel else f32(0.0)
    out = []
    for v in range(out_size):
        p = (f32(v) + offset) * scale
        k = q.round_away(float(p)) if align_corners else int(math.floor(float(p)))
        k = min(k, in_size - 1)
        if half_pixel:
            k = max(0, k)
        out.append(k)
    return out


def _cdiv(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    qv = abs(a) // abs(b)
    return qv if (a >= 0) == (b > 0) else -qv


def bilinear_index(out_size: int, in_size: int, align_corners: bool, half_pixel: bool):
    """TFLite's ResizeBilinearInteger coordinates: (lower, upper, 10-bit weight of upper) per output."""
    scale = _cdiv((1 << 10) * in_size + out_size // 2, out_size)
    if align_corners and out_size > 1:
        scale = _cdiv((1 << 10) * (in_size - 1) + (out_size - 1) // 2, out_size - 1)
    lo, hi, frac = [], [], []
    for v in range(out_size):
        scaled = v * scale + _cdiv(scale, 2) - (1 << 9) if half_pixel else v * scale
        v0 = max(_cdiv(scaled, 1 << 10), 0)
        v1 = min(_cdiv(scaled + (1 << 10) - 1, 1 << 10), in_size - 1)
        lo.append(v0)
        hi.append(v1)
        frac.append(scaled - (1 << 10) * v0)
    return lo, hi, frac


def emit_resize(ctx, op) -> dict:
    x, y = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    n, in_h, in_w, c = _shape4(x.shape)
    _, out_h, out_w, _ = _shape4(y.shape)
    ac, hp = bool(op.options.get("align_corners")), bool(op.options.get("half_pixel_centers"))
    i = op.index
    fields = {"batches": n, "in_h": in_h, "in_w": in_w, "c": c, "out_h": out_h, "out_w": out_w}
    if op.opcode == "RESIZE_NEAREST_NEIGHBOR":
        fields.update(y0=ctx.const(f"op{i}_y", "int32_t", nearest_index(out_h, in_h, ac, hp), "source rows"),
                      y1="NULL",
                      x0=ctx.const(f"op{i}_x", "int32_t", nearest_index(out_w, in_w, ac, hp), "source columns"),
                      x1="NULL", fy="NULL", fx="NULL")
        fn = "te_resize_nearest_s8"
    else:
        ylo, yhi, yf = bilinear_index(out_h, in_h, ac, hp)
        xlo, xhi, xf = bilinear_index(out_w, in_w, ac, hp)
        fields.update(y0=ctx.const(f"op{i}_y0", "int32_t", ylo, "source rows"),
                      y1=ctx.const(f"op{i}_y1", "int32_t", yhi),
                      x0=ctx.const(f"op{i}_x0", "int32_t", xlo, "source columns"),
                      x1=ctx.const(f"op{i}_x1", "int32_t", xhi),
                      fy=ctx.const(f"op{i}_fy", "int32_t", yf, "10-bit weights of the lower neighbour's partner"),
                      fx=ctx.const(f"op{i}_fx", "int32_t", xf))
        fn = "te_resize_bilinear_s8"
    return {"struct": "te_resize_params_t", "fields": fields, "fn": fn,
            "args": [f"&{ctx.prefix}_op{i}", ctx.t(op.inputs[0]), ctx.t(op.outputs[0])]}


# ---- RSQRT (a lookup table of TFLite Micro's integer RsqrtEvalQuantized) -------------------------

def inv_sqrt_multiplier_exp(value: int) -> tuple[int, int]:
    """TFLite's GetInvSqrtQuantizedMultiplierExp(value, kReverseShift): gemmlowp Newton-Raphson in
    F3 fixed point; (multiplier, shift with left positive)."""
    if value <= 1:
        return q.INT32_MAX, 0
    shift = 11
    while value >= (1 << 29):
        value //= 4
        shift += 1
    clz = 32 - value.bit_length()
    pairs = (clz - 1) // 2 - 1
    shift -= pairs
    value <<= 2 * pairs
    half_input = q.rdbpot(value >> 1, 1)
    half_three = (1 << 28) + (1 << 27)
    x = 1 << 28                                           # F3 one
    for _ in range(5):
        x3 = q.sat_shl(q.srdhm(q.srdhm(x, x), x), 6)     # Rescale<3>(x * x * x): F9 -> F3
        x = q.sat_shl(q._wrap32(q.srdhm(half_three, x) - q.srdhm(half_input, x3)), 3)
    x = q.srdhm(x, 1518500250)                            # times sqrt(2) / 2
    if shift < 0:
        x = q._wrap32(x << -shift)
        shift = 0
    return x, -shift


def rsqrt_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> list[int]:
    f32 = np.float32
    m, s = q.quantize_multiplier(1.0 / float(f32(np.sqrt(f32(in_scale))) * f32(out_scale)))
    table = []
    for v in range(-128, 128):
        value = v - int(in_zp)
        if value <= 0:   # 0: TFLM's "max output"; below: TFLM fails the invoke (not a real input)
            table.append(127)
            continue
        im, ish = inv_sqrt_multiplier_exp(value)
        data = q.mbqm(1, im, ish + 20)
        table.append(max(-128, min(127, q.mbqm(data, m, s - 20) + int(out_zp))))
    return table


def emit_rsqrt(ctx, op) -> dict:
    x, y = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    table = rsqrt_table(_scale(x), _zp(x), _scale(y), _zp(y))
    name = ctx.const(f"op{op.index}_lut", "int8_t", table, f"RSQRT lookup table of op {op.index}")
    return {"struct": None, "fields": {}, "fn": "te_lut_s8",
            "args": [name, ctx.t(op.inputs[0]), ctx.t(op.outputs[0]), str(y.num_elements)]}


def emit_l2norm(ctx, op) -> dict:
    x = ctx.tensor(op.inputs[0])
    depth = int(x.shape[-1])
    return {"struct": None, "fields": {}, "fn": "te_l2norm_s8",
            "args": [str(x.num_elements // depth), str(depth), str(_zp(x)), ctx.t(op.inputs[0]),
                     ctx.t(op.outputs[0])]}


# ---- TRANSPOSE_CONV and grouped CONV_2D ------------------------------------------------------

def _tf_pad(padding: str, in_size: int, k: int, stride: int, dil: int, out_size: int) -> int:
    eff = (k - 1) * dil + 1
    return max((out_size - 1) * stride + eff - in_size, 0) // 2


def _conv_common(ctx, op, x, w, y, bias_k: int) -> tuple[dict, np.ndarray]:
    out_c = int(w.shape[0])
    i = op.index
    w_scales = w.scale if w.per_channel else np.repeat(w.scale[:1], out_c)
    in_s, out_s = np.float64(_scale(x)), np.float64(_scale(y))
    ms = [q.quantize_multiplier(float(in_s * np.float64(s) / out_s)) for s in w_scales]
    if bias_k < len(op.inputs) and op.inputs[bias_k] >= 0:
        bias = ctx.tensor(op.inputs[bias_k]).data.astype(np.int64).reshape(-1)
    else:
        bias = np.zeros(out_c, np.int64)
    lo, hi = q.act_range(op.options.get("fused_activation_function", "NONE"), _scale(y), _zp(y))
    taps = w.data.astype(np.int64).sum(axis=3).reshape(-1)   # [out_c][k_h][k_w]
    fields = {"in_offset": -_zp(x), "out_offset": _zp(y), "act_min": lo, "act_max": hi,
              "weights": ctx.const(f"op{i}_w", "int8_t", w.data.reshape(-1), f"weights of op {i}"),
              "bias": ctx.const(f"op{i}_b", "int32_t", bias, f"bias of op {i}"), "eff_bias": "NULL",
              "mult": ctx.const(f"op{i}_m", "int32_t", [m for m, _ in ms]),
              "shift": ctx.const(f"op{i}_s", "int8_t", [s for _, s in ms]), "out_pitch": out_c}
    return fields, taps


def _conv_ext(ctx, op, fields: dict, taps: np.ndarray, groups: int, fn: str) -> dict:
    i = op.index
    check_conv_fields(fields, op)
    inner = ", ".join(f".{k} = {_text(v)}" for k, v in fields.items())
    ext = {"conv": "{" + inner + "}", "groups": groups,
           "tap_sums": ctx.const(f"op{i}_ts", "int32_t", taps, f"weight sums per output channel and tap, op {i}")}
    return {"struct": "te_conv_ext_params_t", "fields": ext, "fn": fn,
            "args": [f"&{ctx.prefix}_op{i}", ctx.t(op.inputs[2] if op.opcode == "TRANSPOSE_CONV" else op.inputs[0]),
                     ctx.t(op.outputs[0])]}


def _text(v) -> str:
    if isinstance(v, (list, tuple)):
        return "{" + ", ".join(str(int(x)) for x in v) + "}"
    return v if isinstance(v, str) else str(int(v))


def emit_transpose_conv(ctx, op) -> dict:
    w, x, y = ctx.tensor(op.inputs[1]), ctx.tensor(op.inputs[2]), ctx.tensor(op.outputs[0])
    o = op.options
    n, in_h, in_w, in_c = x.shape
    _, out_h, out_w, out_c = y.shape
    _, k_h, k_w, _ = w.shape
    sh, sw = int(o.get("stride_h", 1)), int(o.get("stride_w", 1))

    def pad(out_size, k, s):   # ComputePaddingHeightWidth on the output size, as TFLM's Prepare
        conv_out = (out_size + s - 1) // s if o.get("padding") == "SAME" else (out_size - k + s) // s
        return _tf_pad(o.get("padding"), out_size, k, s, 1, conv_out)

    fields, taps = _conv_common(ctx, op, x, w, y, 3)
    fields.update(batches=n, in_h=in_h, in_w=in_w, in_c=in_c, out_h=out_h, out_w=out_w, out_c=out_c,
                  k_h=k_h, k_w=k_w, stride_h=sh, stride_w=sw, dil_h=1, dil_w=1,
                  pad_h=pad(out_h, k_h, sh), pad_w=pad(out_w, k_w, sw), depth_mult=1)
    d = _conv_ext(ctx, op, fields, taps, 1, "te_transpose_conv_s8")
    d["macs"] = int(n * in_h * in_w * in_c * k_h * k_w * out_c)
    return d


def emit_grouped_conv(ctx, op) -> dict:
    x, w, y = ctx.tensor(op.inputs[0]), ctx.tensor(op.inputs[1]), ctx.tensor(op.outputs[0])
    o = op.options
    n, in_h, in_w, in_c = x.shape
    _, out_h, out_w, out_c = y.shape
    _, k_h, k_w, fd = w.shape
    sh, sw = int(o.get("stride_h", 1)), int(o.get("stride_w", 1))
    dh, dw = int(o.get("dilation_h_factor", 1) or 1), int(o.get("dilation_w_factor", 1) or 1)
    fields, taps = _conv_common(ctx, op, x, w, y, 2)
    fields.update(batches=n, in_h=in_h, in_w=in_w, in_c=in_c, out_h=out_h, out_w=out_w, out_c=out_c,
                  k_h=k_h, k_w=k_w, stride_h=sh, stride_w=sw, dil_h=dh, dil_w=dw,
                  pad_h=_tf_pad(o.get("padding"), in_h, k_h, sh, dh, out_h),
                  pad_w=_tf_pad(o.get("padding"), in_w, k_w, sw, dw, out_w), depth_mult=1)
    d = _conv_ext(ctx, op, fields, taps, in_c // fd, "te_conv2d_grouped_s8")
    d["macs"] = int(n * out_h * out_w * out_c * k_h * k_w * fd)
    return d


def is_grouped(graph, op) -> bool:
    return op.opcode == "CONV_2D" and graph.tensors[op.inputs[1]].shape[3] != graph.tensors[op.inputs[0]].shape[3]


def conv2d_or_grouped(dense_emit):
    """The CONV_2D emitter: grouped convolutions here, every other one by `dense_emit` (codegen's)."""
    def emit(ctx, op):
        return emit_grouped_conv(ctx, op) if is_grouped(ctx.g, op) else dense_emit(ctx, op)
    return emit


EMIT = {
    "SUB": emit_binary,
    "SQUARED_DIFFERENCE": emit_binary,
    "PRELU": emit_binary,
    "MAXIMUM": emit_binary,
    "MINIMUM": emit_binary,
    "REDUCE_MAX": emit_reduce,
    "SUM": emit_reduce,
    "RESIZE_NEAREST_NEIGHBOR": emit_resize,
    "RESIZE_BILINEAR": emit_resize,
    "TRANSPOSE_CONV": emit_transpose_conv,
    "RSQRT": emit_rsqrt,
    "L2_NORMALIZATION": emit_l2norm,
}

# ---- checking ------------------------------------------------------------------------------


def _check_binary(graph, op) -> str | None:
    s = _support()
    r = s._check_binary(graph, op)
    if r:
        return r
    if op.opcode in ("SQUARED_DIFFERENCE", "PRELU", "MAXIMUM", "MINIMUM") and \
            op.options.get("fused_activation_function", "NONE") != "NONE":
        return f"a fused activation on {op.opcode} is not supported"
    return None


def _check_prelu(graph, op) -> str | None:
    r = _check_binary(graph, op)
    if r:
        return r
    a = graph.tensors[op.inputs[1]]
    if a.per_channel:
        return "a per-channel quantized PRELU alpha is not supported"
    return None


def _check_reduce(graph, op) -> str | None:
    s = _support()
    r = s._check_mean(graph, op)
    if r:
        return r
    if op.opcode == "REDUCE_MAX":
        x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        if float(x.scale[0]) != float(y.scale[0]) or int(x.zero_point[0]) != int(y.zero_point[0]):
            return "REDUCE_MAX input and output are quantized differently (TFLite Micro requires them equal)"
    return None


def _check_resize(graph, op) -> str | None:
    s = _support()
    r = s._io(graph, op)
    if r:
        return r
    if len(op.inputs) < 2 or not graph.tensors[op.inputs[1]].is_const:
        return "the output size must be a constant tensor"
    if len(graph.tensors[op.inputs[0]].shape) != 4:
        return "input must be 4-D (NHWC)"
    if op.options.get("align_corners") and op.options.get("half_pixel_centers"):
        return "align_corners and half_pixel_centers together are invalid"
    return None


def _check_transpose_conv(graph, op) -> str | None:
    s = _support()
    if len(op.inputs) < 3:
        return "TRANSPOSE_CONV needs output shape, weights and input"
    for k, t in (("input", op.inputs[2]), ("output", op.outputs[0])):
        r = s._need_int8_act(graph, t, k)
        if r:
            return r
    r = s._act(op)
    if r:
        return r
    if not graph.tensors[op.inputs[0]].is_const:
        return "the output shape must be a constant tensor"
    if len(graph.tensors[op.inputs[2]].shape) != 4:
        return "input must be 4-D (NHWC)"
    w = graph.tensors[op.inputs[1]]
    if len(w.shape) == 4 and w.shape[3] != graph.tensors[op.inputs[2]].shape[3]:
        return "filter depth differs from the input depth"
    r = check_conv_sizes(graph, op)
    if r:
        return r
    return s._weights(graph, op, 1, 3, 4, graph.tensors[op.outputs[0]].shape[-1])


CONV_SIZE_MAX = 65535   # te_conv_params_t and te_pool_params_t hold sizes in 16 bits (DSP builds: te_kernels.h)


def check_conv_sizes(graph, op) -> str | None:
    """What a convolution's or pool's sizes say to the 16-bit fields of te_conv_params_t and
    te_pool_params_t (None: they fit)."""
    for t in [*op.inputs, *op.outputs]:
        big = [int(d) for d in graph.tensors[t].shape if int(d) > CONV_SIZE_MAX] if t >= 0 else []
        if big:
            return f"size {big[0]} is above {CONV_SIZE_MAX}, the largest the aot convolution and pooling kernels take"
    return None


def check_conv_fields(fields: dict, op) -> None:
    """Raise ModelError when an emitted te_conv_params_t / te_pool_params_t field does not fit its
    16 bits."""
    for k, v in fields.items():
        if isinstance(v, (int, np.integer)):
            lo, hi = (-32768, 32767) if k in ("in_offset", "out_offset", "act_min", "act_max") else (0, CONV_SIZE_MAX)
            if not lo <= int(v) <= hi:
                raise ModelError(f"{op.opcode} op {op.index}: {k} = {int(v)} does not fit its 16-bit field "
                                 f"({lo}..{hi})")


def check_grouped_conv(graph, op) -> str | None:
    """What support.py's CONV_2D check says of a grouped convolution's grouping (None: runs)."""
    w, x, y = graph.tensors[op.inputs[1]], graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    fd, in_c, out_c = int(w.shape[3]), int(x.shape[3]), int(y.shape[3])
    if fd <= 0 or in_c % fd:
        return f"filter depth {fd} does not divide the input depth {in_c}"
    if out_c % (in_c // fd):
        return f"{out_c} output channels do not split into {in_c // fd} groups"
    return None


def m4_note(graph, op) -> str | None:
    """What `inspect` says of an op whose Cortex-M4 code is slower than the engine's best path."""
    if op.opcode == "TRANSPOSE_CONV" or is_grouped(graph, op):
        return ("Cortex-M4: SMLAD dot products over the input channels, one output channel at a time "
                "(not the blocked 4-channel CONV_2D kernel)")
    if op.opcode == "RESIZE_BILINEAR":
        return "Cortex-M4: portable C interpolation (no DSP path)"
    return None


CHECKS = {
    "SUB": _check_binary,
    "SQUARED_DIFFERENCE": _check_binary,
    "PRELU": _check_prelu,
    "MAXIMUM": _check_binary,
    "MINIMUM": _check_binary,
    "REDUCE_MAX": _check_reduce,
    "SUM": _check_reduce,
    "RESIZE_NEAREST_NEIGHBOR": _check_resize,
    "RESIZE_BILINEAR": _check_resize,
    "TRANSPOSE_CONV": _check_transpose_conv,
    "RSQRT": lambda graph, op: _support()._io(graph, op),
    "L2_NORMALIZATION": lambda graph, op: _support()._act(op) or _support()._check_fixed_out(1.0 / 128, 0)(graph, op),
}
