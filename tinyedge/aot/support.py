"""Which ops the `aot` runtime runs: `check_op(graph, op) -> None | reason`.

`inspect` and the generator both ask this one function (through
`tinyedge.runtimes`), so their verdicts never differ.  The engine is int8
only: activations int8 (per-tensor), weights int8 (per-channel or per-tensor,
symmetric), biases int32.
"""

from __future__ import annotations

from . import islands, ops_math, ops_matmul, ops_quantize, ops_recurrent, ops_shape

ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")

# op -> highest op version the engine knows the semantics of
MAX_VERSION = {
    "CONV_2D": 8,
    "DEPTHWISE_CONV_2D": 7,
    "FULLY_CONNECTED": 12,
    "AVERAGE_POOL_2D": 3,
    "MAX_POOL_2D": 3,
    "ADD": 5,
    "MUL": 7,
    "RESHAPE": 2,
    "SOFTMAX": 3,
    "PAD": 4,
    "CONCATENATION": 4,
    "RELU": 3,
    "RELU6": 3,
    "LEAKY_RELU": 2,
    "QUANTIZE": 3,
    "LOGISTIC": 3,
    "TANH": 3,
    "HARD_SWISH": 1,
    "MEAN": 3,
    "SQUEEZE": 1,
    "EXPAND_DIMS": 1,
}
MAX_VERSION.update(ops_shape.MAX_VERSION)   # the layout ops (tinyedge/aot/ops_shape.py)
MAX_VERSION.update(ops_math.MAX_VERSION)    # SUB, PRELU, resize, TRANSPOSE_CONV, ... (tinyedge/aot/ops_math.py)
MAX_VERSION.update(ops_recurrent.VERSIONS)
MAX_VERSION.update(ops_matmul.MAX_VERSION)    # BATCH_MATMUL, ARG_MAX
MAX_VERSION.update(ops_quantize.MAX_VERSION)  # DEQUANTIZE (QUANTIZE's float side)

SUPPORTED_OPS = tuple(sorted(MAX_VERSION))


def _dtype(graph, t: int) -> str:
    return graph.tensors[t].dtype if t >= 0 else "none"


def _need_int8_act(graph, t: int, what: str) -> str | None:
    if t < 0:
        return f"{what} is missing"
    ten = graph.tensors[t]
    if ten.dtype != "int8":
        return f"{what} '{ten.name}' is {ten.dtype}; the aot engine runs int8 only (convert with full-int8 quantization)"
    if not ten.is_quantized:
        return f"{what} '{ten.name}' has no quantization parameters"
    if ten.per_channel:
        return f"{what} '{ten.name}' is quantized per channel; activations must be per-tensor"
    return None


def _act(op) -> str | None:
    a = op.options.get("fused_activation_function", "NONE")
    if a not in ACTIVATIONS:
        return f"fused activation {a} is not supported (only {', '.join(ACTIVATIONS)})"
    return None


def _weights(graph, op, w_idx: int, b_idx: int, rank: int, out_ch: int) -> str | None:
    if w_idx < 0 or w_idx >= len(op.inputs) or op.inputs[w_idx] < 0:
        return "the op has no weights tensor"
    w = graph.tensors[op.inputs[w_idx]]
    if w.dtype not in ("int8", "int4"):   # int4: unpacked to int8 values by tinyedge.graph, stored as int4
        return f"weights '{w.name}' are {w.dtype}; only int8 and int4 weights are supported"
    if not w.is_const and _decoded(graph, op.inputs[w_idx]) is None:   # TFLM_DECODE of a LUT: folded
        return f"weights '{w.name}' are not constant"
    if len(w.shape) != rank:
        return f"weights '{w.name}' have rank {len(w.shape)}, expected {rank}"
    if not w.is_quantized:
        return f"weights '{w.name}' have no quantization parameters"
    if w.zero_point is not None and (w.zero_point != 0).any():
        return f"weights '{w.name}' are not symmetric (zero point != 0)"
    if w.per_channel and len(w.scale) != out_ch:
        return f"weights '{w.name}' have {len(w.scale)} scales for {out_ch} output channels"
    if b_idx < len(op.inputs) and op.inputs[b_idx] >= 0:
        b = graph.tensors[op.inputs[b_idx]]
        if b.dtype != "int32":
            return f"bias '{b.name}' is {b.dtype}; only int32 biases are supported"
        if not b.is_const:
            return f"bias '{b.name}' is not constant"
    return None


def _io(graph, op, n_in: int | None = 1) -> str | None:
    ins = op.inputs if n_in is None else op.inputs[:n_in]
    for k, t in enumerate(ins):
        r = _need_int8_act(graph, t, f"input {k}")
        if r:
            return r
    for k, t in enumerate(op.outputs):
        r = _need_int8_act(graph, t, f"output {k}")
        if r:
            return r
    return None


def _rank(graph, t: int) -> int:
    return len(graph.tensors[t].shape)


def _check_conv(graph, op) -> str | None:
    r = _io(graph, op) or _act(op)
    if r:
        return r
    if _rank(graph, op.inputs[0]) != 4:
        return "input must be 4-D (NHWC)"
    r = ops_math.check_conv_sizes(graph, op)
    if r:
        return r
    out_ch = graph.tensors[op.outputs[0]].shape[-1]
    r = _weights(graph, op, 1, 2, 4, out_ch)
    if r:
        return r
    if op.opcode == "CONV_2D" and ops_math.is_grouped(graph, op):
        return ops_math.check_grouped_conv(graph, op)
    return None


def _check_fc(graph, op) -> str | None:
    r = _io(graph, op) or _act(op)
    if r:
        return r
    if op.options.get("weights_format", "DEFAULT") != "DEFAULT":
        return f"weights format {op.options.get('weights_format')} is not supported"
    if op.options.get("asymmetric_quantize_inputs"):
        return "hybrid (asymmetric_quantize_inputs) fully connected is not supported"
    out_ch = graph.tensors[op.outputs[0]].shape[-1]
    return _weights(graph, op, 1, 2, 2, out_ch)


def _check_pool(graph, op) -> str | None:
    r = _io(graph, op) or _act(op)
    if r:
        return r
    if _rank(graph, op.inputs[0]) != 4:
        return "input must be 4-D (NHWC)"
    return ops_math.check_conv_sizes(graph, op)


def _check_binary(graph, op) -> str | None:
    r = _io(graph, op, 2) or _act(op)
    if r:
        return r
    if max(_rank(graph, op.inputs[0]), _rank(graph, op.inputs[1]), _rank(graph, op.outputs[0])) > 4:
        return "more than 4 dimensions are not supported"
    return None


def _check_unary(graph, op) -> str | None:
    return _io(graph, op)


def _check_reshape(graph, op) -> str | None:
    if op.inputs and op.inputs[0] >= 0 and graph.tensors[op.inputs[0]].is_const:
        return "RESHAPE of a constant tensor is not supported"
    return _io(graph, op)


def _check_softmax(graph, op) -> str | None:
    return _check_fixed_out(1.0 / 256, -128)(graph, op)


def _check_pad(graph, op) -> str | None:
    r = _io(graph, op)
    if r:
        return r
    if len(op.inputs) < 2 or not graph.tensors[op.inputs[1]].is_const:
        return "paddings must be a constant tensor"
    if _rank(graph, op.inputs[0]) > 4:
        return "more than 4 dimensions are not supported"
    a, b = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if float(a.scale[0]) != float(b.scale[0]) or int(a.zero_point[0]) != int(b.zero_point[0]):
        return "input and output quantization differ"
    return None


def _check_concat(graph, op) -> str | None:
    r = _io(graph, op, None) or _act(op)
    if r:
        return r
    if op.options.get("fused_activation_function", "NONE") != "NONE":
        return "a fused activation on CONCATENATION is not supported"
    out = graph.tensors[op.outputs[0]]
    for t in op.inputs:
        ten = graph.tensors[t]
        if float(ten.scale[0]) != float(out.scale[0]) or int(ten.zero_point[0]) != int(out.zero_point[0]):
            return f"input '{ten.name}' is quantized differently from the output (requantizing concat)"
        if len(ten.shape) != len(out.shape):
            return "inputs differ in rank"
    return None


def _check_fixed_out(scale: float, zp: int):
    def check(graph, op) -> str | None:
        r = _io(graph, op)
        if r:
            return r
        y = graph.tensors[op.outputs[0]]
        if abs(float(y.scale[0]) - scale) > 1e-9 or int(y.zero_point[0]) != zp:
            return f"int8 {op.opcode} output must have scale {scale:g} and zero point {zp}"
        return None
    return check


def _check_mean(graph, op) -> str | None:
    r = _io(graph, op)
    if r:
        return r
    if len(op.inputs) < 2 or not graph.tensors[op.inputs[1]].is_const:
        return "the axis must be a constant tensor"
    if _rank(graph, op.inputs[0]) > 4:
        return "more than 4 dimensions are not supported"
    return None


_CHECKS = {
    "CONV_2D": _check_conv,
    "DEPTHWISE_CONV_2D": _check_conv,
    "FULLY_CONNECTED": _check_fc,
    "AVERAGE_POOL_2D": _check_pool,
    "MAX_POOL_2D": _check_pool,
    "ADD": _check_binary,
    "MUL": _check_binary,
    "RESHAPE": _check_reshape,
    "SOFTMAX": _check_softmax,
    "PAD": _check_pad,
    "CONCATENATION": _check_concat,
    "RELU": _check_unary,
    "RELU6": _check_unary,
    "LEAKY_RELU": _check_unary,
    "QUANTIZE": _check_unary,
    "LOGISTIC": _check_fixed_out(1.0 / 256, -128),
    "TANH": _check_fixed_out(1.0 / 128, 0),
    "HARD_SWISH": _check_unary,
    "MEAN": _check_mean,
    "SQUEEZE": _check_reshape,
    "EXPAND_DIMS": _check_reshape,
    **ops_shape.CHECKS,
    **ops_math.CHECKS,
}
_CHECKS.update(ops_recurrent.CHECKS)
_CHECKS.update(ops_matmul.CHECKS)
_CHECKS.update(ops_quantize.CHECKS)   # QUANTIZE: float32 -> int8 too

# ops the engine refuses with advice of their own (what to change in the model)
_REFUSALS = {"WHILE": ops_recurrent.check_while,
             "GELU": lambda graph, op: ("GELU: TFLite Micro (90b983c2) registers no GELU kernel, int8 or float, so "
                                        "there is no reference to be bit-exact with")}
# float ops the engine runs only inside a float island (tinyedge/aot/islands.py), and why not elsewhere
_ISLAND_ONLY = {
    "ELU": "ELU stays float: TF's converter has no int8 ELU (either quantizer: 'Quantization not yet supported "
           "for op: ELU'); the aot engine runs it as an int8 table only between the DEQUANTIZE and the QUANTIZE "
           "the converter puts around it, and this one's input or output leads elsewhere",
    "NEG": "NEG is float here; the aot engine runs a float NEG only between a DEQUANTIZE and a QUANTIZE",
}


def dsp_notes(graph) -> list[dict]:
    """The ops of `graph` the engine runs on a slower path than its best on Cortex-M4 (DSP), each
    with a sentence saying so; `inspect` prints them."""
    notes = []
    for op in graph.ops:
        note = (ops_math.m4_note(graph, op) or ops_matmul.m4_note(graph, op)) if check_op(graph, op) is None \
            else None
        if note:
            notes.append({"op_index": op.index, "opcode": op.opcode, "note": note})
    return notes


def _decoded(graph, t: int):
    """The constant a TFLM_DECODE LUT op makes of tensor t (folded at generation), or None."""
    from ..errors import TinyedgeError
    from .storage import decoded_const

    try:
        return decoded_const(graph, t)
    except TinyedgeError:
        return None


def check_op(graph, op) -> str | None:
    """None when the aot engine runs `op`, else the reason it cannot (one sentence)."""
    if op.opcode == "CUSTOM:TFLM_DECODE":   # TFLite Micro's compressed tensors: folded at generation
        if all(_decoded(graph, t) is not None for t in op.outputs):
            return None
        return "TFLM_DECODE is read only for LUT-compressed constant int8 tensors"
    if op.is_custom:
        return f"custom op {op.opcode[7:]} is not supported by the aot engine"
    if op.opcode in islands.FLOAT_UNARY or (op.opcode in islands.FLOAT_MOVE and op.inputs
                                            and _dtype(graph, op.inputs[1 if op.opcode == "SPLIT" else 0]) == "float32"):
        if islands.roles(graph).get(op.index) in ("unary", "move"):
            return None   # inside a float island: run on the int8 codes, the closing QUANTIZE a table
        if op.opcode in _ISLAND_ONLY:
            return _ISLAND_ONLY[op.opcode]
    check = _CHECKS.get(op.opcode)
    if check is None and op.opcode in _REFUSALS:
        return _REFUSALS[op.opcode](graph, op)
    if check is None:
        return f"{op.opcode} is not an op of the aot engine (it runs {', '.join(SUPPORTED_OPS)})"
    if op.version > MAX_VERSION[op.opcode]:
        return f"{op.opcode} version {op.version} is newer than the aot engine knows (max {MAX_VERSION[op.opcode]})"
    return check(graph, op)
