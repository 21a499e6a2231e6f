"""Compact storage of the constant weights of CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED.

Per weight tensor the generator picks one storage (`decide`):

- ``dense``: int8, as in the model;
- ``palette4`` / ``palette2``: per output channel (or one for the tensor, when smaller) a
  table of at most 16 / 4 int8 values and 4- / 2-bit indices, packed low bits first; one bit
  per row says coded or plain;
- ``int4``: weights on a uniform 4-bit grid (``q * step``, ``q`` in -8..7), two per byte, low
  nibble first (CMSIS-NN's s4 layout).  One step for the whole tensor when it has one (always
  so for models that carry INT4 weights: step 1): then the rows are one stream of nibbles and
  nothing is stored per channel; otherwise a step byte per channel (0: a plain row);
- ``sparse``: 2 bits per row say plain, mask (a one-bit-per-weight mask and the non-zero int8
  values) or list (per 256 weights a count, the indices and the values: smaller where few
  weights are non-zero).  int8 weights are symmetric, zero point 0, so a skipped zero weight
  contributes exactly nothing.

Rows (output channels) whose coding would not save bytes stay plain int8 inside the tensor.
Kernels (firmware/kernels; the generator picks per op the cheapest estimate, `cost`):

- CONV_2D ``_wide``: a block of output channels decoded into 16-bit lanes in arena room free
  during the op, once per inference, then a paired 2-pixel x 2-channel kernel whose inner loop
  needs no widening of the weights (16 MACs in 12 instructions against 16 for dense int8), so a
  stored conv runs in fewer instructions than dense; ``_sparse``: lists of the non-zeros;
- DEPTHWISE_CONV_2D: decoded once into int8, the dense kernel, skipping per 4 channels the taps
  whose weights are all zero when the weights are sparse;
- FULLY_CONNECTED: each weight is used once per batch, so nothing amortises a decode.
  Palette / int4 (``_pal``): decoded inside the dot product, about 3.4 instructions per
  weight against 1.4 dense; sparse (``_sparse``): list rows at about 5 instructions per
  non-zero, mask rows about 8.  `auto` therefore keeps palettized FC layers dense unless the
  model's budget allows them.

Exactness: `encode` decodes every stored tensor back with `decode` (written from the format,
not from the encoder) and compares it with the model's int8 weights; a mismatch raises
`StorageBug`, never a silent fallback.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import TinyedgeError, UsageError

POLICIES = ("auto", "dense", "palette", "sparse", "int4")
KINDS = {"palette4": 1, "palette2": 1, "int4": 2, "sparse": 3}     # TE_W_* in te_kernels.h
DECODER = {"palette4": "palette", "palette2": "palette", "int4": "int4", "sparse": "sparse"}   # te_decode_*
PAIR_MAX, PAIR_GATHER = 576, 128     # window bytes of te_conv.c's paired kernel (TE_PAIR_MAX / _GATHER)

# The `auto` bound: the stored tensors' estimated extra instructions (decoding, plus the
# re-expanded input windows of extra channel blocks; negative for zero skipping) at most this
# fraction of the model's estimated dense conv / depthwise / FC instructions (see `decide`).
# Instruction estimates per MAC / per decoded weight on the Cortex-M4 paths, measured with
# benchmarks/bench_storage.py on ad01 (whose FC layers decode every weight for a single use: the
# worst case), rounded up.
AUTO_BOUND = 0.05
DENSE_PER_MAC = {"CONV_2D": 1.2, "DEPTHWISE_CONV_2D": 2.5, "FULLY_CONNECTED": 1.4}
DECODE_PER_WEIGHT = {"palette4": 8.5, "int4": 9.0, "palette2": 15.5, "sparse": 17.0}
# Code the storages bring into the firmware (Cortex-M4, -O2): te_weights.c with the _w wrappers
# (_wide: te_conv2d_s8_wide and its paired kernel, measured on kws: 3.1 KB),
# and te_sparse.c.  `auto` stores nothing unless the bytes it saves pay for that code.
CODE_BYTES = {"_w": 1100, "_wide": 3100, "_sparse": 2400, "_pal": 1200}
# te_conv2d_s8_wide: decoding to 16-bit lanes per weight, and what its inner loop saves per MAC
# against the dense paired kernel (12 instead of 16 instructions per 16 MACs, plus loop).
DECODE_WIDE_PER_WEIGHT = {"palette4": 3.5, "int4": 3.5, "palette2": 4.0, "sparse": 6.0}
WIDE_SAVES_PER_MAC = 0.25


class StorageBug(TinyedgeError):
    """A stored weight tensor did not decode back to the model's weights: a tinyedge bug."""

    exit_code = 1


@dataclass
class Stored:
    """One weight tensor in one storage: its bytes and what the C descriptor needs."""

    storage: str                    # dense, palette4, palette2, int4, sparse
    rows: int
    row_len: int
    dense_bytes: int
    stored_bytes: int = 0           # data + tables + per-row bytes
    data: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))
    row_mode: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))
    row_codes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))   # sparse: per row (not emitted)
    table: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    bits: int = 0
    shared_table: bool = False
    coded_rows: int = 0


def _pack(idx: np.ndarray, bits: int) -> np.ndarray:
    """Indices (0 .. 2^bits - 1) of one row, low bits first, padded to a byte."""
    per = 8 // bits
    n = idx.size
    pad = np.zeros(-n % per, np.uint8)
    v = np.concatenate([idx.astype(np.uint8), pad]).reshape(-1, per).astype(np.uint32)
    out = np.zeros(v.shape[0], np.uint32)
    for k in range(per):
        out |= v[:, k] << (k * bits)
    return out.astype(np.uint8)


def _palette(rows: np.ndarray, bits: int) -> Stored:
    r, n = rows.shape
    levels = 1 << bits
    coded_len = (n * bits + 7) // 8
    uniq = [np.unique(row) for row in rows]
    everything = np.unique(rows)
    st = Stored(f"palette{bits}", r, n, rows.size, bits=bits)
    if everything.size <= levels:
        # one table for the tensor: no per-row tables
        st.shared_table = True
        table = np.zeros(levels, np.int8)
        table[:everything.size] = everything
        parts = [_pack(np.searchsorted(everything, row), bits) for row in rows]
        st.row_mode = _pack(np.ones(r, np.uint8), 1)
        st.table = table
        st.coded_rows = r
    else:
        tables = []
        mode = np.zeros(r, np.uint8)
        parts = []
        for i, (row, u) in enumerate(zip(rows, uniq, strict=True)):
            if u.size <= levels and coded_len + levels < n:
                t = np.zeros(levels, np.int8)
                t[:u.size] = u
                tables.append(t)
                mode[i] = 1
                parts.append(_pack(np.searchsorted(u, row), bits))
            else:
                parts.append(row.astype(np.int8).view(np.uint8))
        st.row_mode = _pack(mode, 1)
        st.table = np.concatenate(tables) if tables else np.zeros(0, np.int8)
        st.coded_rows = int(mode.sum())
    st.data = np.concatenate(parts) if parts else np.zeros(0, np.uint8)
    st.stored_bytes = st.data.size + st.table.size + st.row_mode.size
    return st


def _int4(rows: np.ndarray) -> Stored:
    r, n = rows.shape
    st = Stored("int4", r, n, rows.size, bits=4)
    wide = rows.astype(np.int64)
    g = int(np.gcd.reduce(np.abs(wide).reshape(-1))) if wide.any() else 1
    if g <= 127 and (wide // g).min() >= -8 and (wide // g).max() <= 7:
        # one step for the tensor (a model that carries int4 weights: step 1): every row coded,
        # the rows one stream of nibbles (row r from nibble r * row_len), nothing per row
        st.shared_table = True
        st.table = np.array([g], np.int8)
        st.data = _pack(((wide // g) & 15).astype(np.uint8).reshape(-1), 4)
        st.coded_rows = r
        st.stored_bytes = st.data.size + 1
        return st
    steps = np.zeros(r, np.int8)      # 0: plain row
    parts = []
    for i, row in enumerate(rows.astype(np.int64)):
        g = int(np.gcd.reduce(np.abs(row))) if row.any() else 1
        q = row // g
        if g <= 127 and q.min() >= -8 and q.max() <= 7 and (n + 1) // 2 + 1 < n:
            steps[i] = g
            parts.append(_pack((q & 15).astype(np.uint8), 4))
        else:
            parts.append(row.astype(np.int8).view(np.uint8))
    st.table = steps
    st.data = np.concatenate(parts) if parts else np.zeros(0, np.uint8)
    st.coded_rows = int((steps != 0).sum())
    st.stored_bytes = st.data.size + st.table.size
    return st


SPARSE_PLAIN, SPARSE_MASK, SPARSE_LIST = 0, 1, 2     # 2-bit row codes (te_kernels.h)


def _sparse(rows: np.ndarray) -> Stored:
    r, n = rows.shape
    st = Stored("sparse", r, n, rows.size)
    modes = np.zeros(r, np.uint8)
    parts = []
    mask_len = (n + 7) // 8
    nseg = (n + 255) // 256
    for i, row in enumerate(rows):
        nz = row != 0
        k = int(nz.sum())
        seg_counts = [int(nz[s * 256:(s + 1) * 256].sum()) for s in range(nseg)]
        mask_cost = mask_len + k
        list_cost = nseg + 2 * k if max(seg_counts) <= 255 else n + 1
        if min(mask_cost, list_cost) >= n:
            parts.append(row.astype(np.int8).view(np.uint8))
        elif list_cost < mask_cost:
            modes[i] = SPARSE_LIST
            for s in range(nseg):
                seg = row[s * 256:(s + 1) * 256]
                idx = np.flatnonzero(seg)
                parts += [np.array([idx.size], np.uint8), idx.astype(np.uint8), seg[idx].astype(np.int8).view(np.uint8)]
        else:
            modes[i] = SPARSE_MASK
            parts.append(np.packbits(nz, bitorder="little"))
            parts.append(row[nz].astype(np.int8).view(np.uint8))
    st.row_mode = _pack(modes, 2)
    st.data = np.concatenate(parts) if parts else np.zeros(0, np.uint8)
    st.coded_rows = int((modes != SPARSE_PLAIN).sum())
    st.stored_bytes = st.data.size + st.row_mode.size
    st.row_codes = modes
    return st


def _row_code(st: Stored, i: int, bits: int) -> int:
    return (int(st.row_mode[i * bits // 8]) >> (i * bits % 8)) & ((1 << bits) - 1)


def decode(st: Stored) -> np.ndarray:
    """The dense [rows][row_len] int8 weights that `st` stands for (the C decoder's rules)."""
    r, n = st.rows, st.row_len
    out = np.zeros((r, n), np.int8)
    data = st.data
    pos = 0
    coded = 0       # palette tables belong to the coded rows, in order
    for i in range(r):
        if st.storage == "sparse":
            code = _row_code(st, i, 2)
            if code == SPARSE_PLAIN:
                out[i] = data[pos:pos + n].view(np.int8)
                pos += n
            elif code == SPARSE_MASK:
                m = (n + 7) // 8
                bits = np.unpackbits(data[pos:pos + m], bitorder="little")[:n].astype(bool)
                k = int(bits.sum())
                out[i, bits] = data[pos + m:pos + m + k].view(np.int8)
                pos += m + k
            elif code == SPARSE_LIST:
                for s in range(0, n, 256):
                    c = int(data[pos])
                    idx = data[pos + 1:pos + 1 + c].astype(np.int64) + s
                    if idx.size and (idx.max() >= n or np.any(np.diff(idx) <= 0)):
                        raise StorageBug(f"sparse row {i}: list indices out of order or range")
                    out[i, idx] = data[pos + 1 + c:pos + 1 + 2 * c].view(np.int8)
                    pos += 1 + 2 * c
            else:
                raise StorageBug(f"sparse row {i}: row code {code}")
            continue
        if st.storage == "int4" and st.shared_table:
            raw = data.astype(np.uint32)
            j = np.arange(i * n, (i + 1) * n)
            q = ((raw[j // 2] >> ((j % 2) * 4)) & 15).astype(np.int64)
            out[i] = ((q ^ 8) - 8) * int(st.table[0])
            pos = ((i + 1) * n + 1) // 2
            continue
        if (st.storage == "int4" and st.table[i] == 0) or (st.storage != "int4" and not _row_code(st, i, 1)):
            out[i] = data[pos:pos + n].view(np.int8)
            pos += n
            continue
        bits = 4 if st.storage == "int4" else st.bits
        m = (n * bits + 7) // 8
        raw = data[pos:pos + m].astype(np.uint32)
        j = np.arange(n)
        idx = (raw[j * bits // 8] >> ((j * bits) % 8)) & ((1 << bits) - 1)
        if st.storage == "int4":
            out[i] = ((idx.astype(np.int64) ^ 8) - 8) * int(st.table[i])
        else:
            levels = 1 << bits
            tab = st.table[:levels] if st.shared_table else st.table[coded * levels:(coded + 1) * levels]
            out[i] = tab[idx]
            coded += 1
        pos += m
    if pos != data.size:
        raise StorageBug(f"{st.storage}: decoded {pos} of {data.size} data bytes")
    return out


def encode(rows: np.ndarray, storage: str) -> Stored:
    """`rows` ([out channels][weights per channel], int8) in `storage`, checked by decoding back."""
    rows = np.asarray(rows, np.int8)
    r, n = rows.shape
    if storage == "dense":
        return Stored("dense", r, n, rows.size, stored_bytes=rows.size)
    st = {"palette4": lambda: _palette(rows, 4), "palette2": lambda: _palette(rows, 2),
          "int4": lambda: _int4(rows), "sparse": lambda: _sparse(rows)}[storage]()
    back = decode(st)
    if not np.array_equal(back, rows):
        bad = np.argwhere(back != rows)[0]
        raise StorageBug(f"{storage} storage decodes weight {tuple(int(b) for b in bad)} to "
                         f"{int(back[tuple(bad)])}, the model has {int(rows[tuple(bad)])}",
                         hint="please report this with the model; use --weights dense meanwhile")
    return st


def plain_format_bytes(rows: np.ndarray, storage: str) -> int:
    """The plain per-channel format's bytes (the issue's yardstick), counted only on channels
    where it saves: palette: index bits + a 2^bits-byte table; sparse: mask + non-zeros;
    int4: half a byte per weight on channels that sit on a 4-bit grid (q * step)."""
    rows = np.asarray(rows, np.int8)
    total = 0
    for row in rows:
        n = row.size
        if storage in ("palette4", "palette2"):
            bits = 4 if storage == "palette4" else 2
            c = (n * bits + 7) // 8 + (1 << bits) if np.unique(row).size <= (1 << bits) else n
        elif storage == "sparse":
            c = (n + 7) // 8 + int((row != 0).sum())
        else:
            g = int(np.gcd.reduce(np.abs(row.astype(np.int64)))) or 1
            q = row.astype(np.int64) // g
            c = (n + 1) // 2 if q.min() >= -8 and q.max() <= 7 else n
        total += min(c, n)
    return total


def blocks_for(storage_rows: int, row_len: int, gap: int) -> int:
    """Output channels decoded per block into a scratch of `gap` bytes (multiples of 4)."""
    b = min(storage_rows, gap // max(row_len, 1))
    if b >= storage_rows:
        return storage_rows
    return (b // 4) * 4


def cost(opcode: str, macs: int, st: Stored, block: int, pixels: int, wide: bool = False) -> tuple[float, float]:
    """(dense, extra) estimated instructions of one op with storage `st` decoded `block` channels
    at a time (`pixels`: output pixels, whose windows are expanded again for every extra block);
    `wide`: decoded to 16-bit lanes for te_conv2d_s8_wide, whose inner loop is cheaper than dense."""
    dense = macs * DENSE_PER_MAC[opcode]
    if st.storage == "dense":
        return dense, 0.0
    per = DECODE_WIDE_PER_WEIGHT if wide else DECODE_PER_WEIGHT
    extra = st.coded_rows * st.row_len * per[st.storage] + (st.rows - st.coded_rows) * st.row_len * (1 + wide)
    if wide:
        extra -= macs * WIDE_SAVES_PER_MAC
    if opcode == "CONV_2D" and block < st.rows:
        extra += (math.ceil(st.rows / block) - 1) * pixels * (st.row_len * 1.25 + 20)
    return dense, extra


def fused_fc_cost(macs: int, st: Stored) -> float:
    """Estimated instructions of te_fully_connected_s8_pal (each weight decoded where the dot
    product uses it), measured on ad01 (benchmarks/bench_storage.py): about 4.6 per weight with
    4-bit indices, 5.6 with 2-bit, 2.3 on plain rows (one row at a time), per row about 30, and
    50 more for an int4 row's own table."""
    batches = max(1, macs // max(st.rows * st.row_len, 1))
    per = 5.6 if st.storage == "palette2" else 4.6
    coded = st.coded_rows * st.row_len
    tables = 50 * st.coded_rows if st.storage == "int4" and not st.shared_table else 0
    return batches * (coded * per + (st.rows * st.row_len - coded) * 2.3 + st.rows * 30 + tables)


def skip_cost(opcode: str, macs: int, nnz: np.ndarray, row_len: int, pixels: int, taps: int = 1,
              pointwise: bool = False, block: int | None = None, codes: np.ndarray | None = None) -> float:
    """Estimated instructions of the zero-skipping kernels (te_sparse.c) on a sparse tensor with
    `nnz` non-zeros per output channel: CONV_2D two output pixels per pass (about 4.5 instructions
    per non-zero and pixel; 1x1 convs four pixels per pass, about 3.75), the window gathered per
    pixel and channel block; FULLY_CONNECTED reads list rows (`codes`) at about 4.5 instructions
    per non-zero, walks mask rows 32 bits at a time (about 8 per non-zero)."""
    rows = nnz.size
    total = int(nnz.sum())
    if opcode == "FULLY_CONNECTED":
        batches = max(1, macs // max(rows * row_len, 1))
        listed = int(nnz[codes == SPARSE_LIST].sum()) if codes is not None else 0
        plain = int((codes == SPARSE_PLAIN).sum()) * row_len * 1.4 if codes is not None else 0
        return batches * (listed * 4.5 + (total - listed) * 8.0 + plain + rows * (row_len / 32 * 6 + 30))
    blocks = math.ceil(rows / max(block or rows, 1))
    gather = 0 if pointwise else blocks * taps * 30
    per_nnz = 3.75 if pointwise else 4.5     # 1x1: four output pixels per pass
    return pixels * (total * per_nnz + rows * 8 + gather) + rows * row_len * 6


def decide(policy: str, survey: dict, native_int4: frozenset = frozenset(), arm_dsp: bool = True) -> dict:
    """Per op, the plan (Stored, extra instructions, kernel, block, scratch bytes) to emit.

    Forced policies take each tensor's smallest storage.  `auto` spends a budget of AUTO_BOUND
    times the model's estimated dense conv / depthwise / FC instructions: candidate storages are
    taken cheapest extra instructions per saved byte first (those that cost nothing at once), a
    larger saving replacing a smaller one on the same tensor while the total stays in budget.
    Tensors the model itself carries as INT4 (`native_int4`) stay int4 under `auto` (storing them
    as int8 would double them).

    `arm_dsp` False (a core whose kernels take the portable C paths: RISC-V, Xtensa, Cortex-M0/M3;
    or the Helium paths, Cortex-M55, whose dense kernels beat every compact storage's):
    the estimates above are the Cortex-M4 DSP paths' and do not hold there (VWW on qemu-riscv32
    ran 1.115x the dense instructions with the storages they chose), so `auto` keeps every tensor
    dense but the model's own INT4 ones; a forced policy still stores what it names."""
    if policy != "auto":
        return {op: min(plans, key=lambda p: p[0].stored_bytes) for op, (_, _, plans) in survey.items() if plans}
    native = {op: p for op in native_int4 for p in survey[op][2] if p[0].storage == "int4"}
    if not arm_dsp:
        return native
    budget = AUTO_BOUND * sum(dense for dense, _, _ in survey.values())
    moves = []
    for op, (_, dense_bytes, plans) in survey.items():
        for p in plans:
            saved = dense_bytes - p[0].stored_bytes
            if saved > 0:
                moves.append((max(p[1], 0.0) / saved, -saved, op, p))
    moves.sort(key=lambda m: (m[0], m[1], m[2]))
    chosen: dict = {}
    used = 0.0
    for _, _, op, p in moves:
        cur = chosen.get(op)
        if cur is not None and cur[0].stored_bytes <= p[0].stored_bytes:
            continue
        delta = max(p[1], 0.0) - (max(cur[1], 0.0) if cur is not None else 0.0)
        if used + delta <= budget:
            chosen[op] = p
            used += delta
    saved = sum(survey[op][1] - p[0].stored_bytes for op, p in chosen.items())
    code = sum(CODE_BYTES[k] for k in {p[2] for p in chosen.values()})
    chosen = chosen if saved > code else {}
    chosen.update(native)
    return chosen


def candidates(policy: str) -> tuple[str, ...]:
    if policy not in POLICIES:
        raise UsageError(f"unknown weight storage {policy!r}", hint=f"use one of {', '.join(POLICIES)}")
    return {"auto": ("palette2", "int4", "palette4", "sparse"), "dense": (), "palette": ("palette2", "palette4"),
            "sparse": ("sparse",), "int4": ("int4",)}[policy]


# ---- TFLite Micro's compressed models (its `compress` tool: TFLM_DECODE ops with LUTs) ----------

DECODE_OP = "CUSTOM:TFLM_DECODE"


def lut_decode(encoded: np.ndarray, ancillary: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The int8 tensor a TFLM_DECODE LUT pair stands for (tflite-micro's compression/lut.py
    format): a 16-byte header (byte 0 decode type 0 = LUT, byte 5 = axis << 4 | index bits, axis
    15 = one table, byte 6 = values per table), then the tables; the indices one big-endian bit
    string, element by element in row-major order.  Raises ModelError for anything else."""
    from ..errors import ModelError

    anc = np.asarray(ancillary, np.uint8).reshape(-1)
    if anc.size < 16 or anc[0] != 0:
        raise ModelError("a TFLM_DECODE op that is not a LUT decode", hint="only LUT-compressed tensors are read")
    axis, bits, stride = int(anc[5]) >> 4, int(anc[5]) & 7, int(anc[6])
    n = int(np.prod(shape)) if shape else 1
    raw = np.unpackbits(np.asarray(encoded, np.uint8).reshape(-1), bitorder="big")
    if bits == 0 or raw.size < n * bits:
        raise ModelError("a TFLM_DECODE LUT with too few index bits")
    idx = raw[:n * bits].reshape(n, bits).astype(np.int64) @ (1 << np.arange(bits - 1, -1, -1))
    tables = anc[16:].view(np.int8)
    if axis == 15:
        chan = np.zeros(n, np.int64)
    else:
        if axis >= len(shape):
            raise ModelError("a TFLM_DECODE LUT whose channel axis is outside the tensor")
        chan = np.indices(shape)[axis].reshape(-1)
    pos = chan * stride + idx
    if stride == 0 or idx.max(initial=0) >= stride or pos.max(initial=0) >= tables.size:
        raise ModelError("a TFLM_DECODE LUT index outside its value table")
    return tables[pos].reshape(shape).astype(np.int8)


def decoded_const(graph, t: int) -> np.ndarray | None:
    """The constant int8 data of tensor `t` when a TFLM_DECODE op with constant inputs makes it."""
    for op in graph.ops:
        if op.opcode == DECODE_OP and t in op.outputs:
            k = op.outputs.index(t)
            enc, anc = (graph.tensors[i] for i in op.inputs[2 * k:2 * k + 2])
            out = graph.tensors[t]
            if enc.data is None or anc.data is None or out.dtype != "int8":
                return None
            return lut_decode(enc.data, anc.data, out.shape)
    return None


def fold_tflm_decode(graph):
    """`graph` with every TFLM_DECODE op of constant LUT inputs evaluated at generation time: its
    outputs become constant int8 tensors (whose storage the aot generator then picks, typically
    the palette the LUT was) and the op is gone.  The same graph when there is none."""
    import dataclasses

    if not any(op.opcode == DECODE_OP for op in graph.ops):
        return graph
    tensors = list(graph.tensors)
    ops = []
    for op in graph.ops:
        if op.opcode != DECODE_OP:
            ops.append(dataclasses.replace(op, index=len(ops)))
            continue
        for t in op.outputs:
            data = decoded_const(graph, t)
            if data is None:
                from ..errors import ModelError
                raise ModelError(f"TFLM_DECODE output '{graph.tensors[t].name}' is not a constant int8 LUT")
            tensors[t] = dataclasses.replace(tensors[t], data=data)
    return dataclasses.replace(graph, tensors=tensors, ops=ops)
