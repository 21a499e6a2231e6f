"""The aot engine's layout ops: TRANSPOSE, SLICE, STRIDED_SLICE, TILE, SPLIT, SPLIT_V, UNPACK, PACK,
GATHER (and SQUEEZE / EXPAND_DIMS, which the planner aliases like RESHAPE).

Each op is pure data movement on int8 values with equal input and output quantization, so the
generator works out, from the constant shape operands, which input element every output element
is: an affine map (`te_strided_copy_s8`: start + sum of per-dimension strides; TILE adds one
stride-0 dimension per repeat), a split into per-output runs (`te_split_s8`, the mirror of
CONCATENATION), a concatenation (PACK), or a gather (indices constant, or computed at run time:
`te_gather_dyn_s8`).  `EMIT` and `CHECKS`
are registered into the engine's tables by codegen.py and support.py.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError

MAX_DIMS = 8   # TE_STRIDED_MAX_DIMS

MAX_VERSION = {
    "TRANSPOSE": 6,
    "SLICE": 6,
    "STRIDED_SLICE": 8,
    "TILE": 3,
    "SPLIT": 4,
    "SPLIT_V": 2,
    "UNPACK": 4,
    "PACK": 3,
    "GATHER": 7,
    "SQUEEZE": 2,
    "EXPAND_DIMS": 1,
}


def _support():
    from . import support  # at call time: support.py imports this module to register it

    return support


# ---- emitting ------------------------------------------------------------------------------

def _src(ctx, op, k: int) -> str:
    """C expression of input `k`: its arena address, or a constant array when the input is constant."""
    t = op.inputs[k]
    ten = ctx.tensor(t)
    if ten.is_const:
        return ctx.const(f"op{op.index}_in{t}", "int8_t", ten.data, "constant operand")
    return ctx.t(t)


def _const_ints(ctx, idx: int) -> list[int]:
    return [int(v) for v in np.asarray(ctx.tensor(idx).data).reshape(-1)]


def _simplify(dims: list[int], strides: list[int]) -> tuple[list[int], list[int]]:
    """Drop size-1 dims and merge neighbours that walk the input as one run."""
    pairs = [(d, s) for d, s in zip(dims, strides, strict=True) if d != 1]
    out: list[list[int]] = []
    for d, s in pairs:
        if out and out[-1][1] == s * d:
            out[-1][0] *= d
            out[-1][1] = s
        else:
            out.append([d, s])
    if not out:
        out = [[1, 1]]
    return [d for d, _ in out], [s for _, s in out]


def _strided(ctx, op, dims: list[int], strides: list[int], start: int) -> dict:
    dims, strides = _simplify(dims, strides)
    if len(dims) > MAX_DIMS:
        raise ModelError(f"{op.opcode} op {op.index}: the copy needs {len(dims)} dimensions (at most {MAX_DIMS})")
    pad = MAX_DIMS - len(dims)
    fields = {"rank": len(dims), "dims": dims + [1] * pad, "strides": strides + [0] * pad, "start": start}
    return {"struct": "te_strided_params_t", "fields": fields, "fn": "te_strided_copy_s8",
            "args": [f"&{ctx.prefix}_op{op.index}", _src(ctx, op, 0), ctx.t(op.outputs[0])]}


def _affine(ctx, op, index: np.ndarray) -> dict:
    """A strided copy from the input element indices of every output element (an affine map)."""
    y = ctx.tensor(op.outputs[0])
    if index.size != y.num_elements:
        raise ModelError(f"{op.opcode} op {op.index}: computed {index.size} output values, the model says "
                         f"{y.num_elements}")
    index = index.reshape(-1) if index.ndim == 0 else index
    start = int(index.reshape(-1)[0]) if index.size else 0
    dims = [int(d) for d in index.shape]
    strides = []
    for d in range(index.ndim):
        if dims[d] > 1:
            unit = [0] * index.ndim
            unit[d] = 1
            strides.append(int(index[tuple(unit)]) - start)
        else:
            strides.append(0)
    grid = np.full(index.shape, start, np.int64)
    for d in range(index.ndim):
        shape = [1] * index.ndim
        shape[d] = dims[d]
        grid = grid + np.arange(dims[d]).reshape(shape) * strides[d]
    if not np.array_equal(grid, index):   # pragma: no cover - every op here is affine
        raise ModelError(f"{op.opcode} op {op.index}: not an affine copy")
    return _strided(ctx, op, dims, strides, start)


def _in_index(ctx, op) -> np.ndarray:
    x = ctx.tensor(op.inputs[0])
    return np.arange(x.num_elements, dtype=np.int64).reshape(x.shape)


def emit_transpose(ctx, op) -> dict:
    perm = _const_ints(ctx, op.inputs[1])
    return _affine(ctx, op, np.transpose(_in_index(ctx, op), perm))


def emit_slice(ctx, op) -> dict:
    idx = _in_index(ctx, op)
    begin, size = _const_ints(ctx, op.inputs[1]), _const_ints(ctx, op.inputs[2])
    sl = tuple(slice(b, None if s < 0 else b + s) for b, s in zip(begin, size, strict=False))
    return _affine(ctx, op, idx[sl])


def strided_slice_index(shape, begin, end, strides, o: dict) -> np.ndarray:
    """TFLite STRIDED_SLICE on an index array (begin / end / shrink-axis masks, `offset`; no
    ellipsis or new-axis masks, which the check refuses)."""
    idx = np.arange(int(np.prod(shape)) if shape else 1, dtype=np.int64).reshape(shape)
    bm, em, sm = int(o.get("begin_mask", 0)), int(o.get("end_mask", 0)), int(o.get("shrink_axis_mask", 0))
    sl: list = []
    for d in range(len(shape)):
        b, e, s = begin[d], end[d], strides[d]
        if o.get("offset"):
            e = b + e
        if sm >> d & 1:
            sl.append(b + shape[d] if b < 0 else b)
            continue
        sl.append(slice(None if bm >> d & 1 else b, None if em >> d & 1 else e, s))
    return idx[tuple(sl)]


def emit_strided_slice(ctx, op) -> dict:
    x = ctx.tensor(op.inputs[0])
    begin, end = _const_ints(ctx, op.inputs[1]), _const_ints(ctx, op.inputs[2])
    strides = _const_ints(ctx, op.inputs[3]) if len(op.inputs) > 3 else [1] * len(begin)
    return _affine(ctx, op, strided_slice_index(list(x.shape), begin, end, strides, op.options))


def emit_tile(ctx, op) -> dict:
    x = ctx.tensor(op.inputs[0])
    mult = _const_ints(ctx, op.inputs[1])
    shape = [int(d) for d in x.shape]
    in_strides = [int(np.prod(shape[d + 1:])) for d in range(len(shape))]
    dims, strides = [], []
    for m, d, s in zip(mult, shape, in_strides, strict=True):
        dims += [m, d]
        strides += [0, s]
    return _strided(ctx, op, dims, strides, 0)


def _axis(op, rank: int, key: str = "axis", value: int | None = None) -> int:
    a = int(op.options.get(key, 0)) if value is None else int(value)
    return a + rank if a < 0 else a


def _split(ctx, op, axis: int) -> dict:
    x = ctx.tensor(op.inputs[0] if op.opcode != "SPLIT" else op.inputs[1])
    outer = int(np.prod(x.shape[:axis])) if axis > 0 else 1
    copies = [ctx.tensor(t).num_elements // max(outer, 1) for t in op.outputs]
    i = op.index
    src_k = 1 if op.opcode == "SPLIT" else 0
    copy_name = ctx.const(f"op{i}_copy", "int32_t", copies)
    return {"struct": None, "fields": {}, "fn": "te_split_s8",
            "ptr_table": {"name": f"{ctx.prefix}_op{i}_outs", "items": [ctx.t(t) for t in op.outputs]},
            "args": [str(len(op.outputs)), f"{ctx.prefix}_op{i}_outs", copy_name, str(outer),
                     _src(ctx, op, src_k)]}


def emit_split(ctx, op) -> dict:
    rank = len(ctx.tensor(op.inputs[1]).shape)
    return _split(ctx, op, _axis(op, rank, value=_const_ints(ctx, op.inputs[0])[0]))


def emit_split_v(ctx, op) -> dict:
    rank = len(ctx.tensor(op.inputs[0]).shape)
    return _split(ctx, op, _axis(op, rank, value=_const_ints(ctx, op.inputs[2])[0]))


def emit_unpack(ctx, op) -> dict:
    return _split(ctx, op, _axis(op, len(ctx.tensor(op.inputs[0]).shape)))


def emit_pack(ctx, op) -> dict:
    y = ctx.tensor(op.outputs[0])
    axis = _axis(op, len(y.shape))
    outer = int(np.prod(y.shape[:axis])) if axis > 0 else 1
    copies = [ctx.tensor(t).num_elements // max(outer, 1) for t in op.inputs]
    i = op.index
    ins = [_src(ctx, op, k) for k in range(len(op.inputs))]
    copy_name = ctx.const(f"op{i}_copy", "int32_t", copies)
    return {"struct": None, "fields": {}, "fn": "te_concat_s8",
            "ptr_table": {"name": f"{ctx.prefix}_op{i}_ins", "items": ins},
            "args": [str(len(ins)), f"{ctx.prefix}_op{i}_ins", copy_name, str(outer), ctx.t(op.outputs[0])]}


def emit_gather(ctx, op) -> dict:
    x, ind = ctx.tensor(op.inputs[0]), ctx.tensor(op.inputs[1])
    axis = _axis(op, len(x.shape))
    i = op.index
    fields = {"outer": int(np.prod(x.shape[:axis])) if axis > 0 else 1, "axis_size": int(x.shape[axis]),
              "inner": int(np.prod(x.shape[axis + 1:])), "n_idx": ind.num_elements, "idx": "NULL"}
    if not ind.is_const:   # indices computed in the graph (ARG_MAX, ...) or a model input
        return {"struct": "te_gather_params_t", "fields": fields, "fn": "te_gather_dyn_s8",
                "args": [f"&{ctx.prefix}_op{i}", _src(ctx, op, 0), ctx.t(op.inputs[1]),
                         str(8 if ind.dtype == "int64" else 4), ctx.t(op.outputs[0])]}
    fields["idx"] = ctx.const(f"op{i}_idx", "int32_t", _const_ints(ctx, op.inputs[1]), f"gather indices of op {i}")
    return {"struct": "te_gather_params_t", "fields": fields, "fn": "te_gather_s8",
            "args": [f"&{ctx.prefix}_op{i}", _src(ctx, op, 0), ctx.t(op.outputs[0])]}


# ---- views (the planner places these outputs inside their input's buffer) -----------------------

def _run_start(index: np.ndarray) -> int | None:
    """The first input element when `index` (input element per output element) is one contiguous run."""
    flat = index.reshape(-1)
    if flat.size and np.array_equal(flat, np.arange(flat[0], flat[0] + flat.size)):
        return int(flat[0])
    return None


def view_offsets(graph, op) -> list[tuple[int, int, int]]:
    """(output, input, byte offset) for each output of `op` that is a contiguous run of its input."""
    src_k = 1 if op.opcode == "SPLIT" else 0
    if len(op.inputs) <= src_k or op.inputs[src_k] < 0:
        return []
    src = op.inputs[src_k]
    x = graph.tensors[src]
    if x.is_const or _support().check_op(graph, op) is not None:
        return []
    if op.opcode in ("SPLIT", "SPLIT_V", "UNPACK"):
        axis = {"SPLIT": lambda: _axis(op, len(x.shape), value=int(np.asarray(graph.tensors[op.inputs[0]].data)
                                                                       .reshape(-1)[0])),
                "SPLIT_V": lambda: _axis(op, len(x.shape), value=int(np.asarray(graph.tensors[op.inputs[2]].data)
                                                                         .reshape(-1)[0])),
                "UNPACK": lambda: _axis(op, len(x.shape))}[op.opcode]()
        if int(np.prod(x.shape[:axis])) != 1:
            return []
        out, off = [], 0
        for t in op.outputs:
            out.append((t, src, off))
            off += graph.tensors[t].nbytes
        return out
    idx = np.arange(x.num_elements, dtype=np.int64).reshape(x.shape)
    ints = [[int(v) for v in np.asarray(graph.tensors[op.inputs[k]].data).reshape(-1)] for k in range(1, len(op.inputs))]
    if op.opcode == "SLICE":
        sel = idx[tuple(slice(b, None if s < 0 else b + s) for b, s in zip(ints[0], ints[1], strict=False))]
    else:
        strides = ints[2] if len(ints) > 2 else [1] * len(ints[0])
        sel = strided_slice_index(list(x.shape), ints[0], ints[1], strides, op.options)
    start = _run_start(sel)
    return [] if start is None else [(op.outputs[0], src, start)]


def _view_or(emit):
    """`emit`, unless the planner placed every output as a view of the input (then nothing runs)."""
    def run(ctx, op):
        views = view_offsets(ctx.g, op)
        if views and len(views) == len(op.outputs) and all(
                ctx.plan.offsets.get(d) == ctx.plan.offsets.get(s) + off for d, s, off in views):
            return {"struct": None, "fields": {}, "fn": None, "args": [], "alias": True}
        return emit(ctx, op)
    return run


EMIT = {
    "TRANSPOSE": emit_transpose,
    "SLICE": _view_or(emit_slice),
    "STRIDED_SLICE": _view_or(emit_strided_slice),
    "TILE": emit_tile,
    "SPLIT": _view_or(emit_split),
    "SPLIT_V": _view_or(emit_split_v),
    "UNPACK": _view_or(emit_unpack),
    "PACK": emit_pack,
    "GATHER": emit_gather,
}

# ---- checking ------------------------------------------------------------------------------


def _same_quant(graph, a: int, b: int) -> str | None:
    x, y = graph.tensors[a], graph.tensors[b]
    if float(x.scale[0]) != float(y.scale[0]) or int(x.zero_point[0]) != int(y.zero_point[0]):
        return f"input '{x.name}' and output '{y.name}' are quantized differently"
    return None


def _const_operands(graph, op, ks) -> str | None:
    for k in ks:
        if k >= len(op.inputs) or op.inputs[k] < 0 or not graph.tensors[op.inputs[k]].is_const:
            return f"operand {k} of {op.opcode} must be a constant tensor"
    return None


def _layout_check(data_k: int, const_ks: tuple[int, ...], n_data: int | None = 1):
    def check(graph, op) -> str | None:
        s = _support()
        ins = op.inputs[data_k:data_k + 1] if n_data == 1 else op.inputs
        for k, t in enumerate(ins):
            if graph.tensors[t].is_const and graph.tensors[t].dtype == "int8":
                continue
            r = s._need_int8_act(graph, t, f"input {k}")
            if r:
                return r
        for k, t in enumerate(op.outputs):
            r = s._need_int8_act(graph, t, f"output {k}")
            if r:
                return r
        r = _const_operands(graph, op, const_ks)
        if r:
            return r
        for t in ins:
            for o in op.outputs:
                r = _same_quant(graph, t, o)
                if r:
                    return r
        return None
    return check


def _check_strided_slice(graph, op) -> str | None:
    r = _layout_check(0, (1, 2, 3))(graph, op)
    if r:
        return r
    if int(op.options.get("ellipsis_mask", 0)) or int(op.options.get("new_axis_mask", 0)):
        return "STRIDED_SLICE with an ellipsis or new-axis mask is not supported"
    return None


def _check_gather(graph, op) -> str | None:
    ind = graph.tensors[op.inputs[1]] if len(op.inputs) > 1 and op.inputs[1] >= 0 else None
    if ind is None:
        return "GATHER has no indices"
    if ind.dtype not in ("int32", "int64"):
        return f"GATHER indices '{ind.name}' are {ind.dtype} (int32 or int64 only)"
    r = _layout_check(0, (1,) if ind.is_const else ())(graph, op)
    if r:
        return r
    if int(op.options.get("batch_dims", 0)):
        return "GATHER with batch_dims is not supported"
    if not ind.is_const:   # run-time indices: the kernel keeps them in range (clamps)
        return None
    x = graph.tensors[op.inputs[0]]
    axis = _axis(op, len(x.shape))
    idx = np.asarray(ind.data).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= x.shape[axis]):
        return "GATHER indices are out of range"
    return None


CHECKS = {
    "TRANSPOSE": _layout_check(0, (1,)),
    "SLICE": _layout_check(0, (1, 2)),
    "STRIDED_SLICE": _check_strided_slice,
    "TILE": _layout_check(0, (1,)),
    "SPLIT": _layout_check(1, (0,)),
    "SPLIT_V": _layout_check(0, (1, 2)),
    "UNPACK": _layout_check(0, ()),
    "PACK": _layout_check(0, (), None),
    "GATHER": _check_gather,
}
