"""Generate model.c / model.h for the aot runtime from a TFLite graph.

The Python side computes everything that can be known ahead of time
(multipliers, shifts, effective biases, padding, lookup tables, arena
offsets) into a typed context; the Jinja templates in templates/aot/ hold
all C text.  Names from the model only reach C inside comments, escaped.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np

from .. import __version__ as _version
from .. import stream
from ..errors import ModelError, UsageError
from ..fsutil import atomic_write_text
from ..graph import Graph, load_tflite
from ..planner import Plan, plan
from ..resources import templates_dir
from ..runtimes import require_supported
from . import islands, ops_math, ops_matmul, ops_quantize, ops_recurrent, ops_shape
from . import quant as q
from . import storage as ws
from .ops_math import _bstrides, _shape4  # one definition for both modules' broadcasting ops

log = logging.getLogger(__name__)

_PREFIX_RE = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")


@dataclass
class AotResult:
    files: list[Path]
    arena_bytes: int
    const_bytes: int
    op_count: int
    sha256: str
    prefix: str
    peak_live_bytes: int = 0
    plan: Plan | None = field(default=None, repr=False)
    storage: list[dict] = field(default_factory=list)   # per weight tensor: storage, dense and stored bytes
    layer_arena_bytes: int = 0                           # the arena op by op (the layer-by-layer plan)
    stages: list[dict] = field(default_factory=list)     # row-streamed stages (tinyedge.stream.Stage.describe)


def has_arm_dsp(board) -> bool:
    """Whether `board`'s aot conv / depthwise / FC kernels take the Cortex-M DSP paths
    (__ARM_FEATURE_DSP), on which `auto` weight storage's estimates were measured: a Cortex-M with
    the DSP extension and without MVE (a Cortex-M55's dense kernels take the Helium paths,
    te_mve_*.c, which the compact storages' kernels do not: VWW on qemu-cortex-m55 ran 9.94 M
    instructions with the M4's choices, 6.22 M dense).  The ESP32-S3's `dsp` is Xtensa's, which
    these kernels do not use."""
    return board is None or (board.family == "cortex-m" and bool(board.dsp) and not board.mve)


def c_comment(text: str, limit: int = 120) -> str:
    """Make `text` safe inside a C block comment: printable ASCII, no comment delimiters, no trigraphs."""
    s = "".join(ch if 32 <= ord(ch) < 127 else "_" for ch in str(text))
    s = s.replace("*/", "*_/").replace("/*", "/_*").replace("??", "?_?").replace("\\", "/")
    if len(s) > limit:
        s = s[: limit - 3] + "..."
    return s


def _fmt(values, per_line: int = 24) -> str:
    vals = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    if not vals:
        return "0"
    lines = [", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line)]
    return ",\n    ".join(lines)


class _Ctx:
    def __init__(self, graph: Graph, pl: Plan, prefix: str, weights: str = "auto", scratch_cap: int | None = None,
                 survey: dict | None = None, decisions: dict | None = None, arm_dsp: bool = True):
        self.g = graph
        self.arm_dsp = arm_dsp                                  # kernels take the Cortex-M DSP paths
        self.plan = pl
        self.prefix = prefix
        self.consts: list[dict] = []
        self.ops: list[dict] = []
        self.const_bytes = 0
        self.weights = weights
        self.storage: list[dict] = []
        self.arena_bytes = pl.arena_bytes
        self.scratch_cap = scratch_cap
        self.survey: dict = {} if survey is None else survey    # op -> (dense instr, dense bytes, plans)
        self.decisions = decisions                              # op -> chosen plan; None in the survey pass
        self.native_int4: set[int] = set()                      # ops whose weights the model carries as INT4

    def free_gap(self, op_index: int) -> tuple[int, int]:
        """(offset, bytes) of the largest 16-byte aligned arena range no live buffer uses at `op_index`."""
        used = sorted((b.offset, b.offset + b.nbytes) for b in self.plan.buffers if b.first <= op_index <= b.last)
        best, pos = (0, 0), 0
        for lo, hi in used + [(self.plan.arena_bytes, self.plan.arena_bytes)]:
            start = (pos + 15) // 16 * 16
            if lo - start > best[1]:
                best = (start, lo - start)
            pos = max(pos, hi)
        return best

    def stored_weights(self, op, rows: np.ndarray, transposed: bool, macs: int, pixels: int, need_all: bool,
                       taps: int = 1, pointwise: bool = False, wide_ok: bool = False):
        """The storage of `op`'s weights ([rows][row_len] int8) and the kernel that runs it.

        In the survey pass (`self.decisions is None`) this records every storage that saves bytes
        with its estimated extra instructions and returns None (dense); `decide` then picks, and the
        emitting pass returns None for dense, else (descriptor, scratch expression, block, kernel)."""
        w = self.tensor(op.inputs[1])
        n_rows, row_len = rows.shape
        gap_off, gap = self.free_gap(op.index)
        cap = 4096 if self.scratch_cap is None else self.scratch_cap
        if self.scratch_cap is not None:
            gap = min(gap, self.scratch_cap)
        if self.decisions is None:
            dense = macs * ws.DENSE_PER_MAC[op.opcode]
            plans = []
            for name in ws.candidates(self.weights):
                st = ws.encode(rows, name)
                if st.stored_bytes >= rows.size:
                    continue
                block = n_rows if need_all else ws.blocks_for(n_rows, row_len, gap)
                if block == 0:   # not even 4 channels fit in the free room: a scratch of its own (about 4 KB)
                    block = min(n_rows, max(4, cap // max(row_len, 1) // 4 * 4))
                options = [(ws.cost(op.opcode, macs, st, block, pixels)[1], "_w", block, block * row_len)]
                if wide_ok:   # decoded to 16-bit lanes for the paired conv kernel (te_conv2d_s8_wide)
                    wblock = ws.blocks_for(n_rows, 2 * row_len, gap)
                    if wblock == 0:
                        wblock = min(n_rows, max(4, cap // max(2 * row_len, 1) // 4 * 4))
                    options.append((ws.cost(op.opcode, macs, st, wblock, pixels, wide=True)[1], "_wide", wblock,
                                    2 * wblock * row_len))
                if st.storage != "sparse" and op.opcode == "FULLY_CONNECTED":   # decoded in the dot product
                    options.append((ws.fused_fc_cost(macs, st) - dense, "_pal", 0, 0))
                if st.storage == "sparse" and op.opcode in ("CONV_2D", "FULLY_CONNECTED"):
                    nnz = (rows != 0).sum(axis=1)
                    if op.opcode == "FULLY_CONNECTED":
                        cost = ws.skip_cost(op.opcode, macs, nnz, row_len, pixels, codes=st.row_codes)
                        options.append((cost - dense, "_sparse", 0, 0))
                    else:
                        win = 0 if pointwise else (2 * row_len + 3) // 4 * 4
                        per = 4 * (1 + int(nnz.max()))
                        sblock = min(n_rows, max(0, (gap - win) // per))
                        if sblock == 0:
                            sblock = min(n_rows, max(1, (cap - win) // per))
                        cost = ws.skip_cost(op.opcode, macs, nnz, row_len, pixels, taps, pointwise, sblock)
                        options.append((cost - dense, "_sparse", sblock, win + per * sblock))
                plans.append((st, *min(options, key=lambda t: t[0])))
            self.survey[op.index] = (dense, int(rows.size), plans)
            if w.dtype == "int4":
                self.native_int4.add(op.index)
            return None
        dense, _, _ = self.survey[op.index]
        best = self.decisions.get(op.index)
        choice = best[0] if best is not None else ws.encode(rows, "dense")
        entry = {"op": op.index, "opcode": op.opcode, "tensor": c_comment(w.name), "storage": choice.storage,
                 "dense_bytes": int(rows.size), "stored_bytes": int(choice.stored_bytes), "rows": n_rows, "block": 0,
                 "scratch_bytes": 0, "kernel": "dense", "dense_instr_estimate": int(dense),
                 "extra_instr_estimate": int(best[1]) if best is not None else 0}
        self.storage.append(entry)
        if best is None:
            return None
        st, _, kernel, block, scratch = best
        if scratch <= gap:
            off = gap_off
        else:   # no room free during the op: the arena grows by the scratch
            off = (self.plan.arena_bytes + 15) // 16 * 16
            self.arena_bytes = max(self.arena_bytes, off + scratch)
        entry.update(block=block, scratch_bytes=scratch,
                     kernel={"_sparse": "skip zeros", "_wide": "decode wide", "_pal": "decode in loop"}.get(kernel, "decode"))
        i = op.index
        fields = {"kind": ws.KINDS[st.storage], "rows": n_rows, "row_len": row_len, "bits": st.bits,
                  "shared_table": int(st.shared_table), "transposed": int(transposed),
                  # symbol names op<i>_w_<storage> / _mode / _nnz / _table: the memory report reads them
                  "data": self.const(f"op{i}_w_{st.storage}", "uint8_t", st.data, f"{st.storage} weights of op {i}", 4),
                  "row_mode": self.const(f"op{i}_w_mode", "uint8_t", st.row_mode, align=1) if st.row_mode.size else "NULL",
                  "table": self.const(f"op{i}_w_table", "int8_t", st.table, align=1) if st.table.size else "NULL",
                  # only the decoders this tensor needs are referenced, so only those are linked
                  "decode": f"te_decode_{ws.DECODER[st.storage]}",
                  "decode_wide": f"te_decode_{ws.DECODER[st.storage]}_wide" if kernel == "_wide" else "NULL"}
        var = f"{self.prefix}_op{i}_w"
        desc = {"struct": "te_weights_t", "var": var, "field_items": [(k, _field_text(v)) for k, v in fields.items()]}
        return desc, f"{self.prefix}_arena + {off}", block, kernel

    def const(self, name: str, ctype: str, values, comment: str = "", align: int = 16) -> str:
        arr = np.asarray(values).reshape(-1)
        cname = f"{self.prefix}_{name}"
        size = {"int8_t": 1, "uint8_t": 1, "uint16_t": 2, "int32_t": 4}[ctype]
        self.consts.append({"name": cname, "ctype": ctype, "count": max(arr.size, 1), "data": _fmt(arr),
                            "comment": c_comment(comment), "size": size, "align": align})
        self.const_bytes += max(arr.size, 1) * size
        return cname

    def drop_const(self, name: str) -> None:
        """Forget a constant emitted before its storage was chosen (the dense weights)."""
        cname = f"{self.prefix}_{name}"
        for k, c in enumerate(self.consts):
            if c["name"] == cname:
                self.const_bytes -= c["count"] * c["size"]
                del self.consts[k]
                return

    def t(self, idx: int) -> str:
        return f"{self.prefix}_arena + {self.plan.offsets[idx]}"

    def tensor(self, idx: int):
        return self.g.tensors[idx]


def _scale(t) -> float:
    return float(t.scale[0])


def _zp(t) -> int:
    return int(t.zero_point[0])


def _pad(padding: str, in_size: int, k: int, stride: int, dil: int, out_size: int) -> int:
    eff = (k - 1) * dil + 1
    total = (out_size - 1) * stride + eff - in_size
    return max(total, 0) // 2


def _bias(ctx: _Ctx, op, n: int) -> np.ndarray:
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        return ctx.tensor(op.inputs[2]).data.astype(np.int64).reshape(-1)
    return np.zeros(n, np.int64)


def _check_i32(arr: np.ndarray, what: str) -> np.ndarray:
    if arr.size and (arr.max() > q.INT32_MAX or arr.min() < q.INT32_MIN):
        raise ModelError(f"{what} overflows int32")
    return arr


def _conv(ctx: _Ctx, op, depthwise: bool) -> dict:
    x, w, y = ctx.tensor(op.inputs[0]), ctx.tensor(op.inputs[1]), ctx.tensor(op.outputs[0])
    o = op.options
    n, in_h, in_w, in_c = x.shape
    _, out_h, out_w, out_c = y.shape
    wd = w.data.astype(np.int64)
    if depthwise:
        _, k_h, k_w, _ = w.shape
        wsum = wd.reshape(-1, out_c).sum(axis=0)
        weights = w.data.reshape(-1)
    else:
        _, k_h, k_w, _ = w.shape
        wsum = wd.reshape(out_c, -1).sum(axis=1)
        weights = w.data.reshape(-1)
    sh, sw = int(o.get("stride_h", 1)), int(o.get("stride_w", 1))
    dh, dw = int(o.get("dilation_h_factor", 1) or 1), int(o.get("dilation_w_factor", 1) or 1)
    in_zp = _zp(x)
    bias = _bias(ctx, op, out_c)
    eff = _check_i32(bias - in_zp * wsum, "effective bias")
    in_s, out_s = np.float64(_scale(x)), np.float64(_scale(y))
    w_scales = w.scale if w.per_channel else np.repeat(w.scale[:1], out_c)
    ms = [q.quantize_multiplier(float(in_s * np.float64(ws) / out_s)) for ws in w_scales]
    lo, hi = q.act_range(o.get("fused_activation_function", "NONE"), _scale(y), _zp(y))
    i = op.index
    fields = {
        "batches": n, "in_h": in_h, "in_w": in_w, "in_c": in_c, "out_h": out_h, "out_w": out_w, "out_c": out_c,
        "k_h": k_h, "k_w": k_w, "stride_h": sh, "stride_w": sw, "dil_h": dh, "dil_w": dw,
        "pad_h": _pad(o.get("padding"), in_h, k_h, sh, dh, out_h),
        "pad_w": _pad(o.get("padding"), in_w, k_w, sw, dw, out_w),
        "depth_mult": out_c // in_c if depthwise else 1,
        "in_offset": -in_zp, "out_offset": _zp(y), "act_min": lo, "act_max": hi,
        "weights": ctx.const(f"op{i}_w", "int8_t", weights, f"weights of op {i}"),
        "bias": ctx.const(f"op{i}_b", "int32_t", bias, f"bias of op {i}"),
        "eff_bias": ctx.const(f"op{i}_eb", "int32_t", eff, f"bias + input offset x weight sums, op {i}"),
        "mult": ctx.const(f"op{i}_m", "int32_t", [m for m, _ in ms]),
        "shift": ctx.const(f"op{i}_s", "int8_t", [s for _, s in ms]),
    }
    fn = "te_depthwise_conv2d_s8" if depthwise else "te_conv2d_s8"
    macs = out_h * out_w * out_c * k_h * k_w * (1 if depthwise else in_c) * n
    rows = w.data.reshape(-1, out_c).T if depthwise else w.data.reshape(out_c, -1)
    pointwise = k_h == 1 and k_w == 1 and fields["pad_h"] == 0 and fields["pad_w"] == 0
    n_w = k_h * k_w * in_c
    wide_ok = (not depthwise and n_w % 4 == 0 and out_c >= 2
               and n_w <= (ws.PAIR_MAX if in_c % 4 == 0 else ws.PAIR_GATHER))
    stored = ctx.stored_weights(op, rows, depthwise, macs, n * out_h * out_w, depthwise, k_h * k_w, pointwise,
                                wide_ok)
    args = [f"&{ctx.prefix}_op{i}", ctx.t(op.inputs[0]), ctx.t(op.outputs[0])]
    extra = []
    paired = None
    if stored is None and ctx.arm_dsp and depthwise and fields["depth_mult"] == 1:
        g4 = _dw_g4(rows, eff)
        if g4 is not None:   # the same bytes as dense, grouped for te_depthwise_conv2d_s8_g4
            ctx.drop_const(f"op{i}_w")
            ctx.drop_const(f"op{i}_b")
            fields["weights"] = ctx.const(f"op{i}_w", "int8_t", g4, f"weights of op {i}, 4-channel groups")
            fields["bias"] = "NULL"   # taps outside the input read zero points: the folded bias is exact
            fn = "te_depthwise_conv2d_s8_g4" + ("_fast" if _fast_rq(ms, lo, hi) else "")
            if fn.endswith("_fast") and k_h * k_w == 9:
                fn += "9"   # without the loop for other tap counts
    if stored is None and ctx.arm_dsp and not depthwise and out_c >= 2 and n_w <= (
            ws.PAIR_MAX if in_c % 4 == 0 else ws.PAIR_GATHER):
        paired = _conv_paired(rows, eff, ms, packed=_fast_rq(ms, lo, hi))
    if paired is not None:   # the weights re-ordered for te_conv2d_s8_paired, the per-pair constants apart
        for k in ("w", "b", "eb", "m", "s"):
            ctx.drop_const(f"op{i}_{k}")
        fields["weights"] = ctx.const(f"op{i}_w", "int8_t", paired[0], f"weights of op {i}, paired layout")
        fields["eff_bias"] = ctx.const(f"op{i}_ph", "int32_t", paired[1],
                                       f"op {i}: per channel pair folded biases, multipliers, shifts"
                                       + (" (packed)" if paired[2] else ""))
        for k in ("bias", "mult", "shift"):
            fields[k] = "NULL"   # in the per-pair constants
        fn = "te_conv2d_s8_paired" + ("_fast" if _fast_rq(ms, lo, hi) else "") + ("_packed" if paired[2] else "")
    if stored is not None:
        desc, scratch, block, kernel = stored
        fields["weights"] = "NULL"
        ctx.drop_const(f"op{i}_w")
        extra.append(desc)
        args = [args[0], f"&{desc['var']}", scratch, *([] if depthwise else [str(block)]), *args[1:]]
        fn += kernel
        if kernel == "_wide":   # the paired kernel reads only the folded bias
            fields["bias"] = "NULL"
            ctx.drop_const(f"op{i}_b")
    fields["out_pitch"] = out_c
    ops_math.check_conv_fields(fields, op)
    return {"struct": "te_conv_params_t", "fields": fields, "fn": fn, "args": args, "macs": macs, "extra": extra}


def _fast_rq(ms: list, lo: int, hi: int) -> bool:
    """Every channel's requantization a right shift and the clamp the whole int8 range: the _fast
    kernel variants' precondition."""
    return lo == -128 and hi == 127 and all(s < 0 for _, s in ms)


DW_G4_MAX_C, DW_G4_MAX_TAPS = 1024, 25   # te_depthwise.c: TE_DW_ZMAX, TE_DW_TAPS
# te_mve_depthwise.c: its band kernel runs rows of at least 8 output pixels, or (an image narrower
# than tall) whole columns of 8+; a band of a few rows takes such columns away (kws on the M55:
# 1.40 M instructions streamed against 1.14 M op by op), so the Helium schedule keeps them whole
MVE_DW_MIN_PIXELS = 8


def _dw_g4(rows: np.ndarray, eff: np.ndarray) -> np.ndarray | None:
    """DEPTHWISE_CONV_2D weights (rows: [out_c][taps]) as te_depthwise_conv2d_s8_g4 reads them,
    [out_c / 4][taps][4], or None when that kernel cannot run them (out_c % 4, 4..1024 channels,
    at most 25 taps, every accumulator |eff_bias + sum x w| < 2^30 for its SMMULR requantization)."""
    oc, taps = rows.shape
    if oc % 4 or not 4 <= oc <= DW_G4_MAX_C or taps > DW_G4_MAX_TAPS:
        return None
    if (np.abs(eff) + 128 * np.abs(rows.astype(np.int64)).sum(axis=1)).max() >= 1 << 30:
        return None
    return np.ascontiguousarray(rows.T.reshape(taps, oc // 4, 4).transpose(1, 0, 2)).reshape(-1)


PACKED_EFF1_LIMIT = 1 << 20   # te_conv2d_s8_paired_fast_packed: eff1 in 21 bits of its head's word


def _conv_paired(rows: np.ndarray, eff: np.ndarray, ms: list,
                 packed: bool = False) -> tuple[np.ndarray, np.ndarray, bool] | None:
    """CONV_2D weights [out_c][window] in te_conv2d_s8_paired's order, or None when it cannot run
    them: for the exact recovery of every second channel's sum, 128 * sum |w| < 2^23 on those
    channels; every accumulator |eff_bias + sum x w| < 2^30 (the kernel's SMMULR requantization);
    and the high byte (second weight - 1 when the first is negative) must fit int8.

    Returns (weights, per-pair constants, whether packed): a te_pair_head_t per channel pair (folded
    biases, multipliers, shifts: 20 bytes, as int32 words) goes in p->eff_bias; with `packed` (the
    fast variants' shifts, -32..-1), every second channel's |folded bias| < 2^20 and that plus
    128 * sum |w| < 2^23 - 1, the 16-byte heads of te_conv2d_s8_paired_fast_packed instead: eff0,
    eff1 * 2048 + ~shift1 * 32 + ~shift0, mult0, mult1 (te_conv.c says why that is exact).  Channels in pairs (an odd count padded with a zero channel), the window zero padded to a
    multiple of 8 (an even number of groups); per pair and group of 4 window bytes k..k+3 two words (inputs k, k+2, then
    k+1, k+3), each lane (first channel's weight, second's - (first < 0)): byte
    [pair][g][parity][lane][ch] = w[2 pair + ch][4 g + 2 lane + parity]."""
    oc, n = rows.shape
    w = np.pad(rows.astype(np.int16), ((0, oc % 2), (0, -n % 8)))
    wsum = 128 * np.abs(w.astype(np.int64)).sum(axis=1)
    if wsum[1::2].max(initial=0) >= 1 << 23 or (np.abs(eff) + wsum[:oc]).max(initial=0) >= 1 << 30:
        return None
    w[1::2] -= w[0::2] < 0
    if w.min() < -128:
        return None
    u = w.reshape(w.shape[0] // 2, 2, w.shape[1] // 4, 2, 2).transpose(0, 2, 4, 3, 1).astype(np.int8)
    # te_pair_head_t: int32 eff0, eff1, mult0, mult1; int8 shift0, shift1, 2 bytes padding
    e = np.zeros(w.shape[0], np.int64)
    m = np.zeros(w.shape[0], np.int64)
    sh = np.full(w.shape[0], -1, np.int64)   # a padding channel's: it never makes the kernel's slow path
    e[:oc], m[:oc], sh[:oc] = eff, [v for v, _ in ms], [v for _, v in ms]
    e1 = np.abs(e[1::2])
    if (packed and e1.max(initial=0) < PACKED_EFF1_LIMIT and (e1 + wsum[1::2]).max(initial=0) < (1 << 23) - 1
            and -32 <= sh.min() and sh.max() < 0):
        em = ~sh   # 0..31
        words = np.stack([e[0::2], e[1::2] * 2048 + em[1::2] * 32 + em[0::2], m[0::2], m[1::2]], axis=1)
        return u.reshape(-1), words.astype("<i4").reshape(-1), True
    head = np.zeros((w.shape[0] // 2, 20), np.uint8)
    head[:, :16] = np.stack([e[0::2], e[1::2], m[0::2], m[1::2]], axis=1).astype("<i4").view(np.uint8)
    head[:, 16:18] = np.stack([sh[0::2], sh[1::2]], axis=1).astype(np.int8).view(np.uint8)
    return u.reshape(-1), head.reshape(-1).view("<i4"), False


def _fc(ctx: _Ctx, op) -> dict:
    x, w, y = ctx.tensor(op.inputs[0]), ctx.tensor(op.inputs[1]), ctx.tensor(op.outputs[0])
    out_n, in_n = w.shape
    batches = x.num_elements // in_n
    in_zp = _zp(x)
    bias = _bias(ctx, op, out_n)
    eff = _check_i32(bias - in_zp * w.data.astype(np.int64).sum(axis=1), "effective bias")
    if w.per_channel:
        ms = [q.quantize_multiplier(float(np.float64(_scale(x)) * np.float64(ws) / np.float64(_scale(y))))
              for ws in w.scale]
    else:
        prod = np.float32(_scale(x)) * np.float32(w.scale[0])   # float product, as TFLite does
        ms = [q.quantize_multiplier(float(np.float64(prod) / np.float64(_scale(y))))]   # one value, per_channel 0
    lo, hi = q.act_range(op.options.get("fused_activation_function", "NONE"), _scale(y), _zp(y))
    i = op.index
    fields = {
        "batches": batches, "in_n": in_n, "out_n": out_n, "out_offset": _zp(y), "act_min": lo, "act_max": hi,
        "weights": ctx.const(f"op{i}_w", "int8_t", w.data, f"weights of op {i}"),
        "eff_bias": ctx.const(f"op{i}_eb", "int32_t", eff, f"bias + input offset x weight sums, op {i}"),
        "mult": ctx.const(f"op{i}_m", "int32_t", [m for m, _ in ms]),
        "shift": ctx.const(f"op{i}_s", "int8_t", [s for _, s in ms]),
        "per_channel": int(w.per_channel),
    }
    macs = batches * in_n * out_n
    stored = ctx.stored_weights(op, w.data.reshape(out_n, in_n), False, macs, 1, batches != 1)
    args = [f"&{ctx.prefix}_op{i}", ctx.t(op.inputs[0]), ctx.t(op.outputs[0])]
    fn, extra = "te_fully_connected_s8", []
    small = stored is None and ctx.arm_dsp and getattr(ctx, "small_fc", False)
    paired = _fc_paired(w.data.reshape(out_n, in_n)) if stored is None and ctx.arm_dsp and not small else None
    if small:
        fn = "te_fully_connected_s8_small"
    if paired is not None:   # same bytes as dense, re-ordered for te_fully_connected_s8_paired
        ctx.drop_const(f"op{i}_w")
        fields["weights"] = ctx.const(f"op{i}_w", "int8_t", paired, f"weights of op {i}, paired layout")
        fn = "te_fully_connected_s8_paired"
    if stored is not None:
        desc, scratch, block, kernel = stored
        fields["weights"] = "NULL"
        ctx.drop_const(f"op{i}_w")
        extra.append(desc)
        args = [args[0], f"&{desc['var']}", *([scratch, str(block)] if kernel == "_w" else []), *args[1:]]
        fn += kernel
    return {"struct": "te_fc_params_t", "fields": fields, "fn": fn, "args": args, "macs": macs, "extra": extra}


SMALL_FC_MACS = 4096       # te_fully_connected_s8_small when every FC is this small: flash over speed
PAIRED_FC_MAX_IN = 1024   # TE_FC_XMAX: the input's 16-bit lanes go on the stack


def _fc_paired(w: np.ndarray) -> np.ndarray | None:
    """FC weights [out_n][in_n] in te_fully_connected_s8_paired's order, or None when that kernel
    cannot run them: rows and inputs multiples of 4, in_n <= 1024 and, for the exact recovery of
    every second row's sum from the high bytes, 128 * sum |w| < 2^23 on those rows.  (The kernel
    also runs zero-padded rows and inputs; the generator does not pad, so the weight symbol keeps
    the tensor's size.)

    Per group of 4 rows (pairs A, B) and 4 inputs k..k+3: words A-even, B-even, A-odd, B-odd; the
    even words hold inputs k, k+2 and the odd ones k+1, k+3, each lane as (first row's weight + 128,
    second row's weight): byte [g][i][parity][pair][lane][row] = w[4g + 2 pair + row][4i + 2 lane + parity]."""
    rows, n = w.shape
    if rows % 4 or n % 4 or n > PAIRED_FC_MAX_IN:   # unpadded, so the memory report's dense bytes stay exact
        return None
    if (128 * np.abs(w[1::2].astype(np.int64)).sum(axis=1)).max() >= 1 << 23:
        return None
    w = np.pad(w, ((0, -rows % 4), (0, -n % 4)))   # zero rows / inputs: the kernel skips or zero-pads them
    rows, n = w.shape
    u = w.astype(np.int16).reshape(rows // 4, 2, 2, n // 4, 2, 2).transpose(0, 3, 5, 1, 4, 2).copy()
    u[..., 0] += 128
    return u.astype(np.uint8).view(np.int8).reshape(-1)


def _pool(ctx: _Ctx, op) -> dict:
    x, y = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    o = op.options
    n, in_h, in_w, c = x.shape
    _, out_h, out_w, _ = y.shape
    kh, kw = int(o["filter_height"]), int(o["filter_width"])
    sh, sw = int(o["stride_h"]), int(o["stride_w"])
    lo, hi = q.act_range(o.get("fused_activation_function", "NONE"), _scale(y), _zp(y))
    fields = {"batches": n, "in_h": in_h, "in_w": in_w, "c": c, "out_h": out_h, "out_w": out_w,
              "k_h": kh, "k_w": kw, "stride_h": sh, "stride_w": sw,
              "pad_h": _pad(o.get("padding"), in_h, kh, sh, 1, out_h),
              "pad_w": _pad(o.get("padding"), in_w, kw, sw, 1, out_w), "act_min": lo, "act_max": hi}
    fn = "te_max_pool_s8" if op.opcode == "MAX_POOL_2D" else "te_avg_pool_s8"
    if (fn == "te_avg_pool_s8" and (out_h, out_w, kh, kw) == (1, 1, in_h, in_w)
            and fields["pad_h"] == fields["pad_w"] == 0):
        fn = "te_avg_pool_s8_global"   # one window, the whole input: the windowed kernel is not linked
    ops_math.check_conv_fields(fields, op)
    return {"struct": "te_pool_params_t", "fields": fields, "fn": fn,
            "args": [f"&{ctx.prefix}_op{op.index}", ctx.t(op.inputs[0]), ctx.t(op.outputs[0])]}


def _binary(ctx: _Ctx, op) -> dict:
    a, b, y = ctx.tensor(op.inputs[0]), ctx.tensor(op.inputs[1]), ctx.tensor(op.outputs[0])
    lo, hi = q.act_range(op.options.get("fused_activation_function", "NONE"), _scale(y), _zp(y))
    sa, sb, so = _scale(a), _scale(b), _scale(y)
    fields = {"size": y.num_elements, "broadcast": int(tuple(a.shape) != tuple(b.shape)),
              "out_dims": _shape4(y.shape), "in1_strides": _bstrides(_shape4(a.shape)),
              "in2_strides": _bstrides(_shape4(b.shape)),
              "in1_offset": -_zp(a), "in2_offset": -_zp(b), "out_offset": _zp(y),
              "left_shift": 0, "in1_mult": 0, "in1_shift": 0, "in2_mult": 0, "in2_shift": 0,
              "out_mult": 0, "out_shift": 0, "act_min": lo, "act_max": hi}
    if op.opcode == "ADD":
        left_shift = 20
        twice_max = 2 * np.float64(max(np.float32(sa), np.float32(sb)))
        m1, s1 = q.quantize_multiplier(float(np.float64(sa) / twice_max))
        m2, s2 = q.quantize_multiplier(float(np.float64(sb) / twice_max))
        mo, so_ = q.quantize_multiplier(float(twice_max / ((1 << left_shift) * np.float64(so))))
        fields.update(left_shift=left_shift, in1_mult=m1, in1_shift=s1, in2_mult=m2, in2_shift=s2,
                      out_mult=mo, out_shift=so_)
        # same shapes and every rescale a right shift (the usual ADD): the kernel that runs only that
        # loop, so the general one is not linked
        fn = "te_add_s8_flat" if not fields["broadcast"] and max(s1, s2, so_) <= 0 else "te_add_s8"
    else:
        mo, so_ = q.quantize_multiplier(float(np.float64(sa) * np.float64(sb) / np.float64(so)))
        fields.update(out_mult=mo, out_shift=so_)
        fn = "te_mul_s8"
    args = [f"&{ctx.prefix}_op{op.index}"]
    for t in op.inputs[:2]:
        if ctx.tensor(t).is_const:
            args.append(ctx.const(f"op{op.index}_in{t}", "int8_t", ctx.tensor(t).data, "constant operand"))
        else:
            args.append(ctx.t(t))
    args.append(ctx.t(op.outputs[0]))
    return {"struct": "te_binary_params_t", "fields": fields, "fn": fn, "args": args}


def _softmax(ctx: _Ctx, op) -> dict:
    x, y = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    if _zp(y) != -128 or abs(_scale(y) - 1.0 / 256) > 1e-9:
        raise ModelError(f"SOFTMAX op {op.index}: int8 output must have scale 1/256 and zero point -128")
    depth = x.shape[-1]
    table = q.softmax_exp_table(float(op.options.get("beta", 1.0)), float(np.float32(_scale(x))))
    reach = q.softmax_exp_reach(table)   # the entries past it act as 0: not stored
    i = op.index
    fields = {"outer": x.num_elements // depth, "depth": depth, "exp_len": reach,
              "exp_table": ctx.const(f"op{i}_exp", "int32_t", table[:reach],
                                     f"softmax exp table of op {i} (entries past {reach - 1} read as 0)")}
    return {"struct": "te_softmax_params_t", "fields": fields, "fn": "te_softmax_s8",
            "args": [f"&{ctx.prefix}_op{i}", ctx.t(op.inputs[0]), ctx.t(op.outputs[0])]}


def _lut(ctx: _Ctx, op) -> dict:
    x, y = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    si, zi, so, zo = _scale(x), _zp(x), _scale(y), _zp(y)
    if op.opcode == "RELU":
        table = q.relu_table(si, zi, so, zo, 0.0, None)
    elif op.opcode == "RELU_N1_TO_1":
        table = q.relu_table(si, zi, so, zo, -1.0, 1.0)
    elif op.opcode == "RELU6":
        table = q.relu6_table(si, zi, so, zo)
    elif op.opcode == "LEAKY_RELU":
        table = q.leaky_relu_table(op.options.get("alpha", 0.2), si, zi, so, zo)
    elif op.opcode == "LOGISTIC":
        table = q.logistic_table(si, zi)
    elif op.opcode == "TANH":
        table = q.tanh_table(si, zi)
    elif op.opcode == "HARD_SWISH":
        table = q.hard_swish_table(si, zi, so, zo)
    elif op.opcode == "QUANTIZE":   # a float island's closing QUANTIZE carries its table (islands.fold)
        table = op.options["table"] if "table" in op.options else q.requantize_table(si, zi, so, zo)
    else:  # pragma: no cover - support.py guards this
        raise ModelError(f"no lookup table for {op.opcode}")
    name = ctx.const(f"op{op.index}_lut", "int8_t", table, f"{op.opcode} lookup table of op {op.index}")
    return {"struct": None, "fields": {}, "fn": "te_lut_s8",
            "args": [name, ctx.t(op.inputs[0]), ctx.t(op.outputs[0]), str(y.num_elements)]}


def _mean(ctx: _Ctx, op) -> dict:
    x, ax, y = ctx.tensor(op.inputs[0]), ctx.tensor(op.inputs[1]), ctx.tensor(op.outputs[0])
    rank = len(x.shape)
    axes = sorted({int(a) % rank for a in np.asarray(ax.data).reshape(-1)})
    shape = [int(d) for d in x.shape]
    pad = 4 - rank
    dims4 = [1] * pad + shape
    red = [1] * 4
    keep = list(dims4)
    for a in axes:
        red[a + pad], keep[a + pad] = dims4[a + pad], 1
    strides = [0, 0, 0, 0]
    acc = 1
    for d in range(3, -1, -1):
        strides[d] = acc
        acc *= dims4[d]
    count = int(np.prod([dims4[a + pad] for a in axes])) if axes else 1
    # TFLite Micro requantizes even when input and output quantization are equal
    # (checked bit for bit against its interpreter), so one path serves both.
    mult, shift = q.quantize_multiplier(float(np.float64(np.float32(_scale(x))) / np.float64(np.float32(_scale(y)))))
    if count > 0:
        n = min(count.bit_length() - 1, 32, 31 + shift)
        mult = (mult << n) // count
        shift -= n
    fields = {"out_dims": keep, "red_dims": red, "strides": strides, "count": count,
              "in_zp": _zp(x), "out_zp": _zp(y), "mult": mult, "shift": shift}
    return {"struct": "te_mean_params_t", "fields": fields, "fn": "te_mean_s8",
            "args": [f"&{ctx.prefix}_op{op.index}", ctx.t(op.inputs[0]), ctx.t(op.outputs[0])]}


def _padop(ctx: _Ctx, op) -> dict:
    x, p, y = ctx.tensor(op.inputs[0]), ctx.tensor(op.inputs[1]), ctx.tensor(op.outputs[0])
    pads = np.asarray(p.data).reshape(-1, 2).astype(np.int64)
    rank = len(x.shape)
    before = [0] * (4 - rank) + [int(v) for v in pads[:, 0]]
    after = [0] * (4 - rank) + [int(v) for v in pads[:, 1]]
    fields = {"dims": _shape4(x.shape), "before": before, "after": after, "pad_value": _zp(y)}
    return {"struct": "te_pad_params_t", "fields": fields, "fn": "te_pad_s8",
            "args": [f"&{ctx.prefix}_op{op.index}", ctx.t(op.inputs[0]), ctx.t(op.outputs[0])]}


def _concat(ctx: _Ctx, op) -> dict:
    y = ctx.tensor(op.outputs[0])
    rank = len(y.shape)
    axis = int(op.options.get("axis", 0))
    axis = axis + rank if axis < 0 else axis
    outer = int(np.prod(y.shape[:axis])) if axis > 0 else 1
    copies = [int(np.prod(ctx.tensor(t).shape[axis:])) for t in op.inputs]
    i = op.index
    ins = []
    for t in op.inputs:
        if ctx.tensor(t).is_const:
            ins.append(ctx.const(f"op{i}_in{t}", "int8_t", ctx.tensor(t).data, "constant operand"))
        else:
            ins.append(f"{ctx.t(t)}")
    copy_name = ctx.const(f"op{i}_copy", "int32_t", copies)
    return {"struct": None, "fields": {}, "fn": "te_concat_s8", "ptr_table": {"name": f"{ctx.prefix}_op{i}_ins",
            "items": ins}, "args": [str(len(ins)), f"{ctx.prefix}_op{i}_ins", copy_name, str(outer),
                                    ctx.t(op.outputs[0])]}


def _reshape(ctx: _Ctx, op) -> dict:
    src, dst = op.inputs[0], op.outputs[0]
    if ctx.plan.offsets.get(src) == ctx.plan.offsets.get(dst):
        return {"struct": None, "fields": {}, "fn": None, "args": [], "alias": True}
    return {"struct": None, "fields": {}, "fn": "te_copy_s8",
            "args": [ctx.t(src), ctx.t(dst), str(ctx.tensor(dst).num_elements)]}


_EMIT = {
    "CONV_2D": ops_math.conv2d_or_grouped(lambda c, op: _conv(c, op, False)),
    "DEPTHWISE_CONV_2D": lambda c, op: _conv(c, op, True),
    "FULLY_CONNECTED": _fc,
    "AVERAGE_POOL_2D": _pool,
    "MAX_POOL_2D": _pool,
    "ADD": _binary,
    "MUL": _binary,
    "SOFTMAX": _softmax,
    "RELU": _lut,
    "RELU6": _lut,
    "LEAKY_RELU": _lut,
    "QUANTIZE": ops_quantize.quantize_or(_lut),   # float32 -> int8 at a float input; int8 -> int8: a table
    "LOGISTIC": _lut,
    "TANH": _lut,
    "HARD_SWISH": _lut,
    "MEAN": _mean,
    "PAD": _padop,
    "CONCATENATION": _concat,
    "RESHAPE": _reshape,
    "SQUEEZE": _reshape,
    "EXPAND_DIMS": _reshape,
    **ops_shape.EMIT,   # TRANSPOSE, SLICE, STRIDED_SLICE, TILE, SPLIT, SPLIT_V, UNPACK, PACK, GATHER
    **ops_math.EMIT,    # SUB, SQUARED_DIFFERENCE, PRELU, MAXIMUM, MINIMUM, REDUCE_MAX, SUM, RESIZE_*, TRANSPOSE_CONV
}
_EMIT.update(ops_recurrent.EMIT)
_EMIT.update(ops_matmul.EMIT)     # BATCH_MATMUL, ARG_MAX
_EMIT.update(ops_quantize.EMIT)   # DEQUANTIZE


def _field_text(v) -> str:
    if isinstance(v, (list, tuple)):
        return "{" + ", ".join(str(int(x)) for x in v) + "}"
    if isinstance(v, str):
        return v
    return str(int(v))


# model I/O dtypes the engine reads and writes -> te_dtype_t (int8; float32 at QUANTIZE / DEQUANTIZE
# edges; int32 / int64 indices out of ARG_MAX, or into GATHER)
IO_DTYPES = {"int8": "TE_DTYPE_INT8", "float32": "TE_DTYPE_FLOAT32", "int32": "TE_DTYPE_INT32",
             "int64": "TE_DTYPE_INT64"}


def _io_info(g: Graph, idx: int, pl: Plan) -> dict:
    t = g.tensors[idx]
    quant = t.is_quantized
    return {"dims": list(t.shape) or [1], "rank": len(t.shape), "bytes": t.nbytes, "dtype": t.dtype,
            "c_dtype": IO_DTYPES[t.dtype], "scale": repr(float(t.scale[0])) if quant else "0.0",
            "zero_point": _zp(t) if quant else 0, "offset": pl.offsets[idx], "name": c_comment(t.name)}


def build_context(graph: Graph, prefix: str = "te_model", weights: str = "auto",
                  scratch_cap: int | None = None, arm_dsp: bool = True, schedule: str = "auto",
                  mve: bool = False) -> dict:
    """The typed context the templates render (also used by tests and tools).

    `arm_dsp`: the target's kernels take the Cortex-M DSP paths, on which `auto` weight storage's
    instruction estimates were measured (see `tinyedge.aot.storage.decide`; `has_arm_dsp(board)`).

    `weights`: the storage policy of the conv / FC weights (tinyedge.aot.storage.POLICIES);
    `scratch_cap`: at most this many bytes of decode scratch per op (default: the free arena room,
    or 4 KB more; the tests use small caps to run the channel-block loops).
    `schedule`: `auto` streams stages of spatial ops row by row and writes elementwise outputs
    over dead inputs where that lowers the arena (tinyedge.stream); `layer` runs op by op.
    `mve`: the target's kernels take the Helium paths (the schedule keeps off what they need whole).
    """
    ws.candidates(weights)   # a bad policy is a usage error before anything else
    graph = ws.fold_tflm_decode(graph)   # TFLite Micro's compressed (LUT) tensors become constants
    if not _PREFIX_RE.match(prefix):
        raise UsageError(f"prefix {prefix!r} is not a valid C identifier prefix",
                         hint="use lowercase letters, digits and '_', starting with a letter")
    require_supported(graph, "aot")
    graph = islands.fold(graph)   # float islands (DEQUANTIZE -> ELU / NEG / SPLIT ... -> QUANTIZE) as int8
    for t in graph.inputs + graph.outputs:
        ten = graph.tensors[t]
        if ten.dtype not in IO_DTYPES:
            raise ModelError(f"model input/output '{ten.name}' is {ten.dtype}; the aot engine reads and writes "
                             f"{', '.join(IO_DTYPES)}", hint="convert with int8 (or float32) inputs and outputs")
    def survey(pl):   # what every weight tensor could be stored as, and at what cost, in plan `pl`
        sctx = _Ctx(graph, pl, prefix, weights, scratch_cap)
        for op in graph.ops:
            if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
                _EMIT[op.opcode](sctx, op)
        return sctx, ws.decide(weights, sctx.survey, frozenset(sctx.native_int4), arm_dsp)

    pl = plan(graph, "layer")
    survey_ctx, decisions = survey(pl)
    if schedule != "layer":
        # storage first: an op whose weights are stored compactly is never streamed (its kernel
        # would decode them once per band); then the storage again in the streamed plan (the
        # decoders' scratch goes in the room free at their op), the streamed ops dense
        fixed = {k for k, v in decisions.items() if v is not None}
        if mve:   # Helium's depthwise band kernel takes rows of 8+ pixels, or whole columns of 8+
            fixed |= {op.index for op in graph.ops if op.opcode == "DEPTHWISE_CONV_2D"
                      and graph.tensors[op.outputs[0]].shape[2] < MVE_DW_MIN_PIXELS
                      <= graph.tensors[op.outputs[0]].shape[1]}
        pl = plan(graph, schedule, fixed=frozenset(fixed))
        if pl.stages or pl.inplace:
            survey_ctx, decisions = survey(pl)
            streamed = {i for st in pl.stages for i in st.ops}
            decisions = {k: v for k, v in decisions.items() if k not in streamed}
    ctx = _Ctx(graph, pl, prefix, weights, scratch_cap, survey=survey_ctx.survey, decisions=decisions,
               arm_dsp=arm_dsp)
    # every FULLY_CONNECTED small (classifier heads): the size-compiled kernel, not the paired one's code
    fcs = [op for op in graph.ops if op.opcode == "FULLY_CONNECTED"]
    ctx.small_fc = all(graph.tensors[op.inputs[1]].num_elements * graph.tensors[op.inputs[0]].num_elements
                       // max(graph.tensors[op.inputs[1]].shape[-1], 1) <= SMALL_FC_MACS for op in fcs)
    for op in graph.ops:
        d = _EMIT[op.opcode](ctx, op)
        out = graph.tensors[op.outputs[0]]
        d.update(index=op.index, opcode=op.opcode, name=c_comment(out.name), var=f"{prefix}_op{op.index}",
                 field_items=[(k, _field_text(v)) for k, v in d["fields"].items()],
                 shape="x".join(str(s) for s in out.shape),
                 out_offset=pl.offsets[op.outputs[0]], out_bytes=out.nbytes,
                 more_outputs=[(pl.offsets[t], graph.tensors[t].nbytes) for t in op.outputs[1:] if t >= 0])
        d.setdefault("alias", False)
        d.setdefault("ptr_table", None)
        d.setdefault("extra", [])
        d["stage"] = d["stage_first"] = None
        ctx.ops.append(d)
    stages = [_stage(ctx, k, st) for k, st in enumerate(pl.stages)]
    # one case per distinct kernel call in the stages' shared runner (kws: 8 streamed ops, 2 cases)
    stream_kernels: list[dict] = []
    for s in stages:
        for o in s["ops"]:
            key = {"struct": o["struct"], "fn": o["fn"], "args": o["args"]}
            if key not in stream_kernels:
                stream_kernels.append(key)
            o["kernel"] = stream_kernels.index(key)
    sha = graph.sha256
    return {
        "prefix": prefix, "PREFIX": prefix.upper(), "sha256": sha,
        "sha_bytes": ", ".join(f"0x{sha[i:i + 2]}" for i in range(0, 64, 2)),
        "source": c_comment(graph.path.name if graph.path else "model.tflite"),
        "version": _version, "arena_bytes": max(ctx.arena_bytes, 16), "peak_live_bytes": pl.peak_live_bytes,
        "consts": ctx.consts, "const_bytes": ctx.const_bytes, "ops": ctx.ops,
        "inputs": [_io_info(graph, t, pl) for t in graph.inputs],
        "outputs": [_io_info(graph, t, pl) for t in graph.outputs],
        "variables": [dict(v, name=c_comment(v["name"])) for v in ops_recurrent.variables(graph, pl)],
        "header": "model.h", "plan": pl, "storage": ctx.storage, "weights": weights,
        "stages": stages, "stream_kernels": stream_kernels, "stream_max": stream.MAX_STAGE_OPS + 1,
        "schedule": schedule,
        "layer_arena_bytes": max(pl.layer_arena_bytes, 16),
    }


def _stage(ctx: _Ctx, k: int, st) -> dict:
    """The template's view of a row-streamed stage: each op's row geometry, its input's place
    (the stage input, or the op's row buffer) and its kernel call with the band's in / out."""
    ops = []
    for i, g in zip(st.ops, st.geom, strict=True):
        d = ctx.ops[i]
        op = ctx.g.ops[i]
        src, dst = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
        if d["struct"] not in ("te_conv_params_t", "te_pool_params_t") or d["args"][-2:] != [src, dst] \
                or d["args"][0] != f"&{d['var']}":   # pragma: no cover - stream.geometry guards this
            raise ModelError(f"op {i} ({op.opcode}) cannot be streamed: its kernel call is {d['fn']}")
        d["stage"] = k
        ops.append({"index": i, "struct": d["struct"], "var": d["var"], "fn": d["fn"],
                    "args": ["&p", *d["args"][1:-2], "in", "out"], "in_h": g.in_h, "stride": g.stride,
                    "pad": g.pad, "keff": g.keff, "row_in": g.row_in, "row_out": g.row_out,
                    "in_offset": ctx.plan.offsets[op.inputs[0]]})
    last = ctx.g.ops[st.last]
    ctx.ops[st.first]["stage_first"] = k
    return {"index": k, "first": st.first, "last": st.last, "ops": ops, "m": len(ops), "rows": st.rows,
            "out_h": st.geom[-1].out_h, "out_offset": ctx.plan.offsets[last.outputs[0]],
            "row_buffers": st.buffer_bytes(), "overlap": st.overlap, "calls": st.calls}


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir() / "aot")),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              trim_blocks=True, lstrip_blocks=True, autoescape=False)


def render(graph: Graph, prefix: str = "te_model", weights: str = "auto",
           scratch_cap: int | None = None, arm_dsp: bool = True, schedule: str = "auto",
           mve: bool = False) -> tuple[dict[str, str], dict]:
    """Render model.c and model.h; returns ({filename: text}, context)."""
    ctx = build_context(graph, prefix, weights, scratch_cap, arm_dsp, schedule, mve)
    env = _env()
    files = {"model.c": env.get_template("model.c.j2").render(**ctx),
             "model.h": env.get_template("model.h.j2").render(**ctx)}
    return files, ctx


def generate_model_sources(tflite_path_or_graph, out_dir: os.PathLike | str, prefix: str = "te_model",
                           weights: str = "auto", arm_dsp: bool = True, schedule: str = "auto",
                           mve: bool = False) -> AotResult:
    """Write model.c and model.h for `tflite_path_or_graph` into `out_dir` (atomically); `weights`
    is the weight storage policy (auto, dense, palette, sparse, int4); `arm_dsp`, `schedule` and
    `mve` as in `build_context`."""
    graph = tflite_path_or_graph if isinstance(tflite_path_or_graph, Graph) else load_tflite(tflite_path_or_graph)
    files, ctx = render(graph, prefix, weights, arm_dsp=arm_dsp, schedule=schedule, mve=mve)
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is not a folder", hint="choose another output folder")
    written = [atomic_write_text(out / name, text) for name, text in files.items()]
    log.info("aot: wrote %s (arena %d B, constants %d B, %d ops)", out, ctx["arena_bytes"], ctx["const_bytes"],
             len(graph.ops))
    return AotResult(files=written, arena_bytes=ctx["arena_bytes"], const_bytes=ctx["const_bytes"],
                     op_count=len(graph.ops), sha256=graph.sha256, prefix=prefix,
                     peak_live_bytes=ctx["peak_live_bytes"], plan=ctx["plan"], storage=ctx["storage"],
                     layer_arena_bytes=ctx["layer_arena_bytes"], stages=[st.describe() for st in ctx["plan"].stages])
