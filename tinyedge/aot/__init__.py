"""Runtime `aot`: the int8 graph compiled ahead of time into plain C.

- `generate_model_sources(tflite, out_dir, prefix="te_model") -> AotResult`
  writes model.c / model.h (templates/aot/).
- `kernel_sources()` / `include_dirs()`: the firmware C the generated model
  needs (firmware/kernels, firmware/include).
- `tinyedge.aot.host.HostModel(tflite)`: the same C built for the host and
  run through ctypes.
"""

from __future__ import annotations

from pathlib import Path

from ..resources import firmware_dir
from .codegen import AotResult, build_context, c_comment, generate_model_sources, render

__all__ = ["AotResult", "build_context", "c_comment", "generate_model_sources", "render",
           "kernel_sources", "include_dirs", "runtime_source"]


# op family -> kernel file in firmware/kernels (one file per family, as CMSIS-NN's Source/ folders)
KERNEL_FILES = {
    "CONV_2D": "te_conv.c",
    "DEPTHWISE_CONV_2D": "te_depthwise.c",
    "FULLY_CONNECTED": "te_fc.c",
    "AVERAGE_POOL_2D": "te_pool.c",
    "MAX_POOL_2D": "te_pool.c",
    "ADD": "te_elementwise.c",
    "MUL": "te_elementwise.c",
    "MEAN": "te_elementwise.c",
    "PAD": "te_elementwise.c",
    "CONCATENATION": "te_elementwise.c",
    "RESHAPE": "te_elementwise.c",
    "SOFTMAX": "te_activation.c",
    "RELU": "te_activation.c",
    "RELU6": "te_activation.c",
    "LEAKY_RELU": "te_activation.c",
    "QUANTIZE": "te_activation.c",
    "LOGISTIC": "te_activation.c",
    "TANH": "te_activation.c",
    "HARD_SWISH": "te_activation.c",
    "SQUEEZE": "te_elementwise.c",
    "EXPAND_DIMS": "te_elementwise.c",
    **{op: "te_shape.c" for op in ("TRANSPOSE", "SLICE", "STRIDED_SLICE", "TILE", "SPLIT", "SPLIT_V", "UNPACK",
                                   "GATHER")},
    "PACK": "te_elementwise.c",
    **{op: "te_math.c" for op in ("SUB", "SQUARED_DIFFERENCE", "PRELU", "MAXIMUM", "MINIMUM", "REDUCE_MAX",
                                  "L2_NORMALIZATION")},
    "SUM": "te_elementwise.c",
    "RESIZE_NEAREST_NEIGHBOR": "te_resize.c",
    "RESIZE_BILINEAR": "te_resize.c",
    "TRANSPOSE_CONV": "te_transpose_conv.c",
    "RSQRT": "te_activation.c",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "te_recurrent.c",
    "BATCH_MATMUL": "te_matmul.c",
    "ARG_MAX": "te_matmul.c",
    "DEQUANTIZE": "te_math.c",
}


# kernel file -> the file of its Helium paths
MVE_FILES = {"te_conv.c": "te_mve_conv.c", "te_depthwise.c": "te_mve_depthwise.c", "te_fc.c": "te_mve_fc.c",
             "te_elementwise.c": "te_mve_elementwise.c", "te_pool.c": "te_mve_pool.c"}


def kernel_sources(opcodes=None) -> list[Path]:
    """The kernel C files a generated model links against.

    With no argument: every kernel file (what a build that serves any model compiles). With
    `opcodes` (an iterable of TFLite op names, e.g. `{op.opcode for op in graph.ops}`): only the
    files of those op families, plus the weight decoders and zero-skipping kernels when a conv or
    FC op is among them.
    """
    kdir = firmware_dir() / "kernels"
    if opcodes is None:
        return sorted(kdir.glob("*.c"))
    names = {KERNEL_FILES[o] for o in opcodes if o in KERNEL_FILES}
    if "CONV_2D" in opcodes:
        names.add("te_transpose_conv.c")   # grouped CONV_2D
    if "QUANTIZE" in opcodes:
        names.add("te_math.c")             # QUANTIZE of a float input
    if "GATHER" in opcodes:
        names.add("te_shape.c")
    if names & {"te_conv.c", "te_depthwise.c", "te_fc.c"}:
        names.update(("te_weights.c", "te_sparse.c"))   # compact weight storage (decoders, zero skipping)
    # their Helium (MVE) paths: compiled on every core, empty without MVE (firmware/kernels/te_mve.h)
    names.update(MVE_FILES[n] for n in names & MVE_FILES.keys())
    return sorted(kdir / n for n in names)


def include_dirs() -> list[Path]:
    """Folders to put on the include path (te_status.h, te_runtime.h, te_kernels.h)."""
    return [firmware_dir() / "include", firmware_dir() / "kernels"]


def runtime_source() -> Path:
    """firmware/runtime/te_runtime_aot.c: te_runtime_* on top of the generated te_model_* API."""
    return firmware_dir() / "runtime" / "te_runtime_aot.c"
