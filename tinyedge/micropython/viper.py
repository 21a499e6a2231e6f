"""The aot engine's graph as data for the viper kernels (templates/micropython/kernels.py.j2).

The aot code generator's per-op facts (multipliers, shifts, effective
biases, padding, lookup tables, arena offsets: tinyedge.aot.codegen) are
reused as they are; this module packs them into one int32 parameter block and
one constant byte string per op, which the generated package passes to the
viper kernel of that op.  Nothing here is arithmetic of its own: the numbers
are the ones the C engine uses, so both engines agree bit for bit.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelError
from ..graph import Graph

# kernel of each aot C function
_KERNEL = {
    "te_conv2d_s8": "conv", "te_depthwise_conv2d_s8": "dwconv", "te_fully_connected_s8": "fc",
    "te_avg_pool_s8": "pool", "te_avg_pool_s8_global": "pool", "te_max_pool_s8": "pool",
    "te_add_s8": "binary", "te_add_s8_flat": "binary", "te_mul_s8": "binary",
    "te_softmax_s8": "softmax", "te_lut_s8": "lut", "te_mean_s8": "mean", "te_pad_s8": "pad",
    "te_concat_s8": "concat", "te_copy_s8": "copy",
}

# the ops the MicroPython engine has kernels for (the aot engine runs more: its layout, resize, math and
# transposed-convolution ops have no viper / native-module glue yet)
ENGINE_OPS = frozenset({
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "EXPAND_DIMS", "FULLY_CONNECTED",
    "HARD_SWISH", "LEAKY_RELU", "LOGISTIC", "MAX_POOL_2D", "MEAN", "MUL", "PAD", "QUANTIZE", "RELU", "RELU6",
    "RESHAPE", "SOFTMAX", "SQUEEZE", "TANH",
})


def check_op(graph, op) -> str | None:
    """The `micropython` runtime's op check: the aot engine's, within the ops this engine has kernels for."""
    from ..aot import ops_math
    from ..aot.support import check_op as aot_check

    if not op.is_custom and op.opcode not in ENGINE_OPS:
        return f"{op.opcode} is not an op of the MicroPython engine (the aot runtime runs it)"
    if not op.is_custom and ops_math.is_grouped(graph, op):
        return "grouped CONV_2D is not supported by the MicroPython engine (the aot runtime runs it)"
    return aot_check(graph, op)


# convolutions with fewer input channels run output-channels-innermost (kernel convt)
CONVT_MAX_IN_C = 8


@dataclass
class ViperOp:
    index: int
    opcode: str
    kernel: str
    params: bytes          # little-endian int32 block
    const: bytes           # weights / table / constant operands (b"" when none)
    macs: int = 0


@dataclass
class ViperModel:
    sha256: str
    arena_bytes: int
    ops: list[ViperOp]
    inputs: list[dict]
    outputs: list[dict]
    const_bytes: int = 0
    macs: int = 0
    scratch_bytes: int = 4
    notes: list[str] = field(default_factory=list)
    # every graph op's first output in the arena, (offset, bytes), for the per-op profiler (aliases
    # included: their output is their input's buffer)
    op_outputs: list[tuple[int, int]] = field(default_factory=list)
    fault_op: int | None = None


class _Capture:
    """A stand-in for the aot generator's context that keeps the constants as arrays."""

    arm_dsp = False   # the viper kernels read the dense layouts, not the paired DSP ones

    def __init__(self, graph: Graph, pl, prefix: str = "te_model"):
        from ..aot.codegen import _Ctx

        self._base = _Ctx(graph, pl, prefix)
        self.g, self.plan, self.prefix = graph, pl, prefix
        self.arrays: dict[str, np.ndarray] = {}

    def const(self, name: str, ctype: str, values, comment: str = "") -> str:
        cname = f"{self.prefix}_{name}"
        self.arrays[cname] = np.asarray(values).reshape(-1)
        return cname

    def stored_weights(self, *args, **kwargs):
        """The viper kernels read dense int8 weights: every tensor keeps the dense storage."""
        return None

    def t(self, idx: int) -> str:
        return f"@{self.plan.offsets[idx]}"

    def tensor(self, idx: int):
        return self.g.tensors[idx]


def _off(arg: str) -> int:
    if not arg.startswith("@"):
        raise ModelError(f"unexpected operand {arg!r}")
    return int(arg[1:])


def _i32(values) -> bytes:
    vals = [int(v) for v in values]
    for v in vals:
        if not -(1 << 31) <= v < (1 << 31):
            raise ModelError(f"parameter {v} does not fit int32")
    return struct.pack(f"<{len(vals)}i", *vals)


def _u8(arr: np.ndarray) -> bytes:
    """int8 values as offset-binary bytes (v + 128), the kernels' storage format."""
    return (np.asarray(arr).astype(np.int16).reshape(-1) + 128).astype(np.uint8).tobytes()


def _eff2(eff: np.ndarray, weights: np.ndarray, out_c: int, channels_last: bool) -> np.ndarray:
    """The effective bias of the offset-binary dot product: eff - 128 * sum of the channel's weights."""
    w = np.asarray(weights).astype(np.int64)
    wsum = w.reshape(-1, out_c).sum(axis=0) if channels_last else w.reshape(out_c, -1).sum(axis=1)
    return np.asarray(eff).astype(np.int64) - 128 * wsum


def build_model(graph: Graph, *, fault_op: int | None = None) -> ViperModel:
    """The per-op parameter blocks and constants of `graph` for the viper kernels.

    `fault_op` (tests of the profiler only): a `fault` step after that op adds one int8 step to
    element 0 of its output, a deliberately broken kernel (as the firmware's TE_FAULT_OP)."""
    from ..aot.codegen import _EMIT
    from ..planner import plan
    from ..runtimes import require_supported

    require_supported(graph, "micropython")
    for t in graph.inputs + graph.outputs:
        ten = graph.tensors[t]
        if ten.dtype != "int8":
            raise ModelError(f"model input/output '{ten.name}' is {ten.dtype}; the engine needs int8 I/O",
                             hint="convert with int8 inputs and outputs")
    pl = plan(graph)
    cap = _Capture(graph, pl)
    ops: list[ViperOp] = []
    scratch = 1
    for op in graph.ops:
        d = _EMIT[op.opcode](cap, op)
        if d.get("alias"):
            continue
        fn = d["fn"]
        kernel = _KERNEL[fn]
        f = d["fields"]
        args = d["args"]
        const = b""
        if kernel in ("conv", "dwconv"):
            if f["batches"] != 1:
                raise ModelError(f"op {op.index} {op.opcode}: batch {f['batches']}; the MicroPython engine runs batch 1")
            scal = [_off(args[1]), _off(args[2]), f["batches"], f["in_h"], f["in_w"], f["in_c"], f["out_h"],
                    f["out_w"], f["out_c"], f["k_h"], f["k_w"], f["stride_h"], f["stride_w"], f["dil_h"], f["dil_w"],
                    f["pad_h"], f["pad_w"], f["depth_mult"], f["in_offset"], f["out_offset"], f["act_min"],
                    f["act_max"]]
            wts = cap.arrays[f["weights"]]
            eff2 = _eff2(cap.arrays[f["eff_bias"]], wts, f["out_c"], kernel == "dwconv")
            if kernel == "dwconv" and f["depth_mult"] == 1:
                kernel = "dwconv1"
                scratch = max(scratch, f["out_c"])
            elif kernel == "conv" and f["in_c"] < CONVT_MAX_IN_C:
                kernel = "convt"
                scratch = max(scratch, f["out_c"])
                wts = np.asarray(wts).reshape(f["out_c"], f["k_h"], f["k_w"], f["in_c"]).transpose(1, 2, 3, 0)
            tables = [cap.arrays[f["bias"]], eff2, cap.arrays[f["mult"]], cap.arrays[f["shift"]]]
            params = _i32(scal + [int(v) for t in tables for v in t])
            const = _u8(wts)
        elif kernel == "fc":
            scal = [_off(args[1]), _off(args[2]), f["batches"], f["in_n"], f["out_n"], f["out_offset"],
                    f["act_min"], f["act_max"], f["per_channel"]]
            wts = cap.arrays[f["weights"]]
            tables = [_eff2(cap.arrays[f["eff_bias"]], wts, f["out_n"], False), cap.arrays[f["mult"]],
                      cap.arrays[f["shift"]]]
            params = _i32(scal + [int(v) for t in tables for v in t])
            const = _u8(wts)
        elif kernel == "pool":
            if f["batches"] != 1:
                raise ModelError(f"op {op.index} {op.opcode}: batch {f['batches']}; the MicroPython engine runs batch 1")
            params = _i32([_off(args[1]), _off(args[2]), f["batches"], f["in_h"], f["in_w"], f["c"], f["out_h"],
                           f["out_w"], f["k_h"], f["k_w"], f["stride_h"], f["stride_w"], f["pad_h"], f["pad_w"],
                           f["act_min"], f["act_max"], int(op.opcode == "MAX_POOL_2D")])
        elif kernel == "binary":
            srcs, consts = [], []
            for a in args[1:3]:
                if a.startswith("@"):
                    srcs.append((_off(a), 0))
                else:
                    if consts:
                        raise ModelError(f"op {op.index} {op.opcode} has two constant operands")
                    consts.append(cap.arrays[a])
                    srcs.append((0, 1))
            const = _u8(consts[0]) if consts else b""
            params = _i32([srcs[0][0], srcs[1][0], _off(args[3]), srcs[0][1], srcs[1][1], *f["out_dims"],
                           *f["in1_strides"], *f["in2_strides"], f["in1_offset"], f["in2_offset"], f["out_offset"],
                           f["left_shift"], f["in1_mult"], f["in1_shift"], f["in2_mult"], f["in2_shift"],
                           f["out_mult"], f["out_shift"], f["act_min"], f["act_max"], int(op.opcode == "MUL")])
        elif kernel == "softmax":
            table = [int(v) for v in cap.arrays[f["exp_table"]]]   # the stored prefix; the rest act as 0
            params = _i32([_off(args[1]), _off(args[2]), f["outer"], f["depth"], *table, *[0] * (256 - len(table))])
        elif kernel == "lut":
            params = _i32([_off(args[1]), _off(args[2]), int(args[3])])
            const = _u8(cap.arrays[args[0]])      # table[u] for u = x + 128
        elif kernel == "mean":
            params = _i32([_off(args[1]), _off(args[2]), *f["out_dims"], *f["red_dims"], *f["strides"], f["count"],
                           f["in_zp"], f["out_zp"], f["mult"], f["shift"]])
        elif kernel == "pad":
            params = _i32([_off(args[1]), _off(args[2]), *f["dims"], *f["before"], *f["after"], f["pad_value"]])
        elif kernel == "concat":
            items = d["ptr_table"]["items"]
            copies = cap.arrays[args[2]]
            blob = bytearray()
            rows = []
            for it, cp in zip(items, copies, strict=True):
                if it.startswith("@"):
                    rows += [_off(it), int(cp), 0]
                else:
                    rows += [len(blob), int(cp), 1]
                    blob += _u8(cap.arrays[it])
            params = _i32([_off(args[4]), len(items), int(args[3]), *rows])
            const = bytes(blob)
        else:  # copy
            params = _i32([_off(args[0]), _off(args[1]), int(args[2])])
        ops.append(ViperOp(op.index, op.opcode, kernel, params, const, int(d.get("macs", 0))))

    outs = [(int(pl.offsets[op.outputs[0]]), int(graph.tensors[op.outputs[0]].nbytes))
            if op.outputs and op.outputs[0] >= 0 else (0, 0) for op in graph.ops]
    if fault_op is not None:
        if not 0 <= fault_op < len(graph.ops) or not outs[fault_op][1]:
            raise ModelError(f"fault op {fault_op} is not an op of the model with an output")
        at = max([k + 1 for k, o in enumerate(ops) if o.index <= fault_op], default=0)
        ops.insert(at, ViperOp(fault_op, "FAULT", "fault", _i32([outs[fault_op][0]]), b""))

    def io(idx: int) -> dict:
        t = graph.tensors[idx]
        return {"shape": [int(s) for s in t.shape], "bytes": int(t.nbytes), "scale": float(t.scale[0]),
                "zero_point": int(t.zero_point[0]), "offset": int(pl.offsets[idx])}

    return ViperModel(
        sha256=graph.sha256, arena_bytes=max(int(pl.arena_bytes), 16), ops=ops,
        inputs=[io(t) for t in graph.inputs], outputs=[io(t) for t in graph.outputs],
        const_bytes=sum(len(o.const) + len(o.params) for o in ops), macs=sum(o.macs for o in ops),
        scratch_bytes=4 * scratch, op_outputs=outs, fault_op=fault_op,
    )
