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
    if _float_edge(graph, op):   # QUANTIZE of a float model input, DEQUANTIZE into a float model output
        return None
    if any(t.dtype in _FLOAT for t in acts):
        if any(t.is_const and t.dtype in ("int8", "int4") for t in ins):
            return "hybrid op (float activations, int8 weights): TFLM has no hybrid kernels"
        return "float op: tinyedge deploys full-int8 models (convert with 'tinyedge convert')"
    if op.opcode in ("ARG_MAX", "ARG_MIN") and outs and outs[0].dtype != "int32":   # arg_min_max.cc
        return f"TFLM's {op.opcode} writes int32 only (this one {outs[0].dtype}: use output_type=tf.int32)"
    if op.opcode == "GATHER" and len(ins) > 1 and ins[1].dtype != "int32":   # gather.cc: int32 coords
        return f"TFLM's GATHER takes int32 indices only (these are {ins[1].dtype})"
    if op.opcode == "CONCATENATION" and len(op.inputs) > 10:   # kernels/concatenation.cc kMaxInputNum
        return f"TFLM's CONCATENATION takes at most 10 inputs (this one has {len(op.inputs)})"
    if op.opcode in ("SOFTMAX", "LOG_SOFTMAX") and ins and ins[0].dtype == "int8":
        return _softmax_scale_reason(op, ins[0])
    return None


def _float_edge(graph, op) -> bool:
    """A model converted with float32 input / output (`inference_input_type` float32) starts with a
    QUANTIZE of that input and ends with a DEQUANTIZE into that output: TFLM runs both (its
    quantize and dequantize kernels), and tinyedge's validation streams and compares float32 there."""
    if op.opcode == "QUANTIZE" and op.inputs and op.inputs[0] in graph.inputs:
        return graph.tensors[op.inputs[0]].dtype == "float32" and graph.tensors[op.outputs[0]].dtype == "int8"
    if op.opcode == "DEQUANTIZE" and op.outputs and op.outputs[0] in graph.outputs:
        return graph.tensors[op.inputs[0]].dtype == "int8" and graph.tensors[op.outputs[0]].dtype == "float32"
    return False


# TFLM's int8 (log-)softmax rescales its input to a fixed point number with 5 integer bits
# (softmax_common.cc, kScaledDiffIntegerBits; log_softmax.cc, kInputIntegerBits):
# PreprocessSoftmaxScaling asks QuantizeMultiplierGreaterThanOne for
# beta * input_scale * 2^26, which aborts the interpreter (TFLITE_CHECK_GT(x, 1.),
# SIGABRT) when that is not above 1.
_SOFTMAX_SHIFT = 1 << (31 - 5)


def _softmax_scale_reason(op, tin) -> str | None:
    import numpy as np

    scale = float(np.asarray(tin.scale, dtype=np.float32).reshape(-1)[0]) if tin.scale is not None else 0.0
    beta = float(np.float32(op.options.get("beta", 1.0))) if op.opcode == "SOFTMAX" else 1.0
    if beta * scale * _SOFTMAX_SHIFT > 1.0:
        return None
    least = 1.0 / (beta * _SOFTMAX_SHIFT)
    return (f"its int8 input's scale {scale:.3g} is below the {least:.3g} TFLM's {op.opcode} kernel needs "
            f"(its interpreter aborts): the calibrated range of the values it normalizes is only "
            f"{scale * 255:.2g}, so they are all but constant (untrained weights whose activations vanish, "
            f"or calibration data the model maps to one output)")


# TFLM kernel sources (tensorflow/lite/micro/kernels/<stem>.cc, and <stem>_common.cc
# where it exists) that register each builtin op, kept sorted (a test checks it).
# With OPTIMIZED_KERNEL_DIR=cmsis_nn a stem with a kernels/cmsis_nn/<stem>.cc
# takes that file instead of the reference one, as TFLM's own make build does.
TFLM_KERNEL_STEMS: dict[str, tuple[str, ...]] = {
    "ABS": ("elementwise",), "ADD": ("add",), "ADD_N": ("add_n",), "ARG_MAX": ("arg_min_max",),
    "ARG_MIN": ("arg_min_max",), "ASSIGN_VARIABLE": ("assign_variable",), "AVERAGE_POOL_2D": ("pooling",),
    "BATCH_MATMUL": ("batch_matmul",), "BATCH_TO_SPACE_ND": ("batch_to_space_nd",),
    "BROADCAST_ARGS": ("broadcast_args",), "BROADCAST_TO": ("broadcast_to",), "CALL_ONCE": ("call_once",),
    "CAST": ("cast",), "CEIL": ("ceil",), "CONCATENATION": ("concatenation",), "CONV_2D": ("conv",),
    "COS": ("elementwise",), "CUMSUM": ("cumsum",), "DEPTHWISE_CONV_2D": ("depthwise_conv",),
    "DEPTH_TO_SPACE": ("depth_to_space",), "DEQUANTIZE": ("dequantize",), "DIV": ("div",), "ELU": ("elu",),
    "EMBEDDING_LOOKUP": ("embedding_lookup",), "EQUAL": ("comparisons",), "EXP": ("exp",),
    "EXPAND_DIMS": ("expand_dims",), "FILL": ("fill",), "FLOOR": ("floor",), "FLOOR_DIV": ("floor_div",),
    "FLOOR_MOD": ("floor_mod",), "FULLY_CONNECTED": ("fully_connected",), "GATHER": ("gather",),
    "GATHER_ND": ("gather_nd",), "GREATER": ("comparisons",), "GREATER_EQUAL": ("comparisons",),
    "HARD_SWISH": ("hard_swish",), "IF": ("if",), "L2_NORMALIZATION": ("l2norm",), "L2_POOL_2D": ("l2_pool_2d",),
    "LEAKY_RELU": ("leaky_relu",), "LESS": ("comparisons",), "LESS_EQUAL": ("comparisons",),
    "LOG": ("elementwise",), "LOGICAL_AND": ("logical",), "LOGICAL_NOT": ("elementwise",),
    "LOGICAL_OR": ("logical",), "LOGISTIC": ("logistic",), "LOG_SOFTMAX": ("log_softmax",),
    "MAXIMUM": ("maximum_minimum",), "MAX_POOL_2D": ("pooling",), "MEAN": ("reduce",),
    "MINIMUM": ("maximum_minimum",), "MIRROR_PAD": ("mirror_pad",), "MUL": ("mul",), "NEG": ("neg",),
    "NOT_EQUAL": ("comparisons",), "PACK": ("pack",), "PAD": ("pad",), "PADV2": ("pad",), "PRELU": ("prelu",),
    "QUANTIZE": ("quantize",), "READ_VARIABLE": ("read_variable",), "REDUCE_MAX": ("reduce",),
    "REDUCE_MIN": ("reduce",), "RELU": ("activations",), "RELU6": ("activations",), "RESHAPE": ("reshape",),
    "RESIZE_BILINEAR": ("resize_bilinear",), "RESIZE_NEAREST_NEIGHBOR": ("resize_nearest_neighbor",),
    "ROUND": ("round",), "RSQRT": ("elementwise",), "SELECT_V2": ("select",), "SHAPE": ("shape",),
    "SIN": ("elementwise",), "SLICE": ("slice",), "SOFTMAX": ("softmax",), "SPACE_TO_BATCH_ND": ("space_to_batch_nd",),
    "SPACE_TO_DEPTH": ("space_to_depth",), "SPLIT": ("split",), "SPLIT_V": ("split_v",), "SQRT": ("elementwise",),
    "SQUARE": ("elementwise",), "SQUARED_DIFFERENCE": ("squared_difference",), "SQUEEZE": ("squeeze",),
    "STRIDED_SLICE": ("strided_slice",), "SUB": ("sub",), "SUM": ("reduce",), "SVDF": ("svdf",), "TANH": ("tanh",),
    "TRANSPOSE": ("transpose",), "TRANSPOSE_CONV": ("transpose_conv",),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": ("unidirectional_sequence_lstm", "lstm_eval"), "UNPACK": ("unpack",),
    "VAR_HANDLE": ("var_handle",), "WHILE": ("while",), "ZEROS_LIKE": ("zeros_like",),
}

# Every TFLM library tinyedge builds holds the kernels of these ops (those of
# the usual int8 CNNs and MLPs), so most models share one cached library per
# core; a model with other ops adds theirs (and gets a library of its own).
TFLM_LIBRARY_OPS = frozenset({
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEQUANTIZE",
    "FULLY_CONNECTED", "HARD_SWISH", "LOGISTIC", "MAX_POOL_2D", "MEAN", "MUL", "PAD", "QUANTIZE", "RELU",
    "RESHAPE", "SOFTMAX",
})

# Kernel sources every library holds (helpers the kernels share).
TFLM_KERNEL_HELPERS = ("kernel_util", "micro_tensor_utils")

# CMSIS-NN Source/ folders the cmsis_nn kernel of each stem calls into
# (NNSupportFunctions always).
CMSIS_NN_FOLDERS: dict[str, tuple[str, ...]] = {
    "add": ("BasicMathFunctions",), "batch_matmul": ("FullyConnectedFunctions", "ConvolutionFunctions"),
    "conv": ("ConvolutionFunctions",), "depthwise_conv": ("ConvolutionFunctions", "TransposeFunctions"),
    "fully_connected": ("FullyConnectedFunctions",), "maximum_minimum": ("BasicMathFunctions",),
    "mul": ("BasicMathFunctions",), "pad": ("PadFunctions",), "pooling": ("PoolingFunctions",),
    "softmax": ("SoftmaxFunctions",), "svdf": ("SVDFunctions",), "transpose": ("TransposeFunctions",),
    "transpose_conv": ("ConvolutionFunctions",),
    "unidirectional_sequence_lstm": ("LSTMFunctions", "FullyConnectedFunctions", "BasicMathFunctions",
                                     "ActivationFunctions"),
}


def kernel_stems(opcodes) -> tuple[str, ...]:
    """The sorted kernel source stems of a TFLM library that registers `opcodes` (plus TFLM_LIBRARY_OPS)."""
    stems = set(TFLM_KERNEL_HELPERS)
    for op in set(opcodes) | TFLM_LIBRARY_OPS:
        stems.update(TFLM_KERNEL_STEMS.get(op, ()))
    return tuple(sorted(stems))


def cmsis_nn_folders(stems) -> tuple[str, ...]:
    folders = {"NNSupportFunctions"}
    for s in stems:
        folders.update(CMSIS_NN_FOLDERS.get(s, ()))
    return tuple(sorted(folders))
