"""Which ops TensorFlow Lite Micro runs, with integer kernels (runtime `tflm`).

`check_op(graph, op) -> None | reason` is the `tflm` entry of
`tinyedge.runtimes.RUNTIMES`.  TFLM resolves builtin ops by name through its
op resolver and does not check op versions, so the check is: the builtin is
one TFLM registers, it has an integer kernel, and the op is not a float or
hybrid op (tinyedge deploys full-int8 models only).
"""

from __future__ import annotations

# Builtin ops TFLM's MicroMutableOpResolver can register (tensorflow/lite/micro,
# micro_mutable_op_resolver.h), kept sorted (a test checks it).
TFLM_BUILTINS = frozenset({
    "ABS", "ADD", "ADD_N", "ARG_MAX", "ARG_MIN", "ASSIGN_VARIABLE", "AVERAGE_POOL_2D", "BATCH_MATMUL",
    "BATCH_TO_SPACE_ND", "BROADCAST_ARGS", "BROADCAST_TO", "CALL_ONCE", "CAST", "CEIL", "CONCATENATION",
    "CONV_2D", "COS", "CUMSUM", "DEPTHWISE_CONV_2D", "DEPTH_TO_SPACE", "DEQUANTIZE", "DIV", "ELU", "EMBEDDING_LOOKUP",
    "EQUAL", "EXP", "EXPAND_DIMS", "FILL", "FLOOR", "FLOOR_DIV", "FLOOR_MOD", "FULLY_CONNECTED", "GATHER",
    "GATHER_ND", "GREATER", "GREATER_EQUAL", "HARD_SWISH", "IF", "L2_NORMALIZATION", "L2_POOL_2D",
    "LEAKY_RELU", "LESS", "LESS_EQUAL", "LOG", "LOGICAL_AND", "LOGICAL_NOT", "LOGICAL_OR", "LOGISTIC",
    "LOG_SOFTMAX", "MAXIMUM", "MAX_POOL_2D", "MEAN", "MINIMUM", "MIRROR_PAD", "MUL", "NEG", "NOT_EQUAL",
    "PACK", "PAD", "PADV2", "PRELU", "QUANTIZE", "READ_VARIABLE", "REDUCE_MAX", "REDUCE_MIN", "RELU",
    "RELU6", "RESHAPE", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "ROUND", "RSQRT", "SELECT_V2",
    "SHAPE", "SIN", "SLICE", "SOFTMAX", "SPACE_TO_BATCH_ND", "SPACE_TO_DEPTH", "SPLIT", "SPLIT_V", "SQRT",
    "SQUARE", "SQUARED_DIFFERENCE", "SQUEEZE", "STRIDED_SLICE", "SUB", "SUM", "SVDF", "TANH", "TRANSPOSE",
    "TRANSPOSE_CONV", "UNIDIRECTIONAL_SEQUENCE_LSTM", "UNPACK", "VAR_HANDLE", "WHILE", "ZEROS_LIKE",
})

# Registered, but TFLM has only float kernels for them.
TFLM_FLOAT_ONLY = frozenset({
    "CEIL", "COS", "EXP", "FLOOR", "FLOOR_DIV", "FLOOR_MOD", "L2_POOL_2D", "LOG", "ROUND", "SIN", "SQRT",
})

_FLOAT = ("float32", "float16", "float64")


def check_op(graph, op) -> str | None:
    """None when TFLM runs `op` on integer kernels, else the reason it does not."""
    if op.is_custom:
        return f"custom op '{op.opcode[len('CUSTOM:'):]}' needs its own kernel registered in TFLM"
    if op.opcode not in TFLM_BUILTINS:
        return f"TFLM has no kernel for {op.opcode}"
    if op.opcode in TFLM_FLOAT_ONLY:
        return f"TFLM has only a float kernel for {op.opcode}"
    ins = [graph.tensors[i] for i in op.inputs if i >= 0]
    outs = [graph.tensors[i] for i in op.outputs if i >= 0]
    acts = [t for t in ins if not t.is_const] + outs
    if any(t.dtype in _FLOAT for t in acts):
        if any(t.is_const and t.dtype in ("int8", "int4") for t in ins):
            return "hybrid op (float activations, int8 weights): TFLM has no hybrid kernels"
        return "float op: tinyedge deploys full-int8 models (convert with 'tinyedge convert')"
    return None
