"""Memory planner: tensor lifetimes over the op order and arena offsets.

Shared by `inspect` (which reports the peak-live bound) and the `aot`
generator (which lays out its static arena with these offsets).

- Every non-constant tensor that an op reads or writes, plus the graph's
  inputs and outputs, gets a buffer in the arena.
- A RESHAPE (SQUEEZE, EXPAND_DIMS) output aliases its input: both share one
  buffer, whose lifetime is the union of theirs.  An output that is a
  contiguous run of its input (SPLIT / SPLIT_V / UNPACK along the outermost
  non-trivial axis, a SLICE / STRIDED_SLICE that selects one run) is a view:
  it lives inside its input's buffer at a byte offset, and no bytes move.
- Graph inputs are live from before the first op; graph outputs stay live
  after the last op (so the caller can read them).
- Variable tensors (the state of a recurrent layer, kept from one invoke to the next) are
  live over every op, so no other buffer ever shares their bytes.
- Ops that need working memory of their own (TFLite Micro's scratch buffers, e.g. the LSTM
  gate vectors) get a scratch buffer live during that op only (`Plan.scratch`).
- Offsets are placed greedily, largest buffer first, at the lowest
  16-byte-aligned offset that does not overlap any already placed buffer
  whose lifetime overlaps.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

ALIGN = 16
ALIAS_OPS = frozenset({"RESHAPE", "SQUEEZE", "EXPAND_DIMS"})
VIEW_OPS = frozenset({"SPLIT", "SPLIT_V", "UNPACK", "SLICE", "STRIDED_SLICE"})


def _align(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


@dataclass
class Buffer:
    root: int                 # tensor index that owns the buffer
    tensors: list[int]        # all tensors sharing it (root first)
    nbytes: int
    first: int                # first op index where it is live
    last: int                 # last op index where it is live (inclusive)
    offset: int = 0
    anchor: int | None = None  # placed at `rel` bytes after the buffer of this root (a stage's input)
    rel: int = 0


@dataclass
class Plan:
    offsets: dict[int, int]                  # tensor index -> byte offset in the arena
    arena_bytes: int
    peak_live_bytes: int                     # max over ops of the bytes live at that op
    peak_op: int                             # op index where that peak occurs
    lifetimes: dict[int, tuple[int, int]] = field(default_factory=dict)  # tensor -> (first, last)
    alias_of: dict[int, int] = field(default_factory=dict)               # tensor -> root tensor
    buffers: list[Buffer] = field(default_factory=list)
    scratch: dict[int, int] = field(default_factory=dict)               # op index -> scratch offset
    stages: list = field(default_factory=list)          # row-streamed stages (tinyedge.stream.Stage)
    inplace: list = field(default_factory=list)         # (op, input tensor): output written over that input
    layer_arena_bytes: int = 0                          # the arena op by op (= arena_bytes without stages)
    layer_peak_bytes: int = 0                           # the layer-by-layer bound (peak live, no stages)
    credits: list = field(default_factory=list)         # (first, last, bytes) a stage's output shares with its input

    def live_bytes_at(self, op_index: int) -> int:
        return _live(None, self.buffers, self.credits, op_index)


def scratch_bytes(graph, op) -> int:
    """Arena bytes `op` needs as working memory during its run (beyond its tensors)."""
    if op.opcode == "UNIDIRECTIONAL_SEQUENCE_LSTM" and len(op.inputs) > 1 and op.inputs[1] >= 0:
        # four int16 gate vectors of `units` (TFLite Micro requests four scratch buffers too)
        return 4 * 2 * int(graph.tensors[op.inputs[1]].shape[0])
    if op.opcode == "BATCH_MATMUL" and len(op.inputs) == 2:
        from .aot import ops_matmul  # column sums, transposed operands
        from .errors import ModelError

        try:
            return ops_matmul.scratch_bytes(graph, op)
        except ModelError:
            return 0
    return 0


def _is_activation(graph, t: int) -> bool:
    if t < 0:
        return False
    ten = graph.tensors[t]
    return not ten.is_const


def lifetimes(graph) -> tuple[dict[int, tuple[int, int]], dict[int, int]]:
    """Per-tensor (first, last) op indices, and the alias map (tensor -> root tensor)."""
    n_ops = len(graph.ops)
    last_op = max(n_ops - 1, 0)
    life: dict[int, list[int]] = {}

    def touch(t: int, i: int) -> None:
        if t in life:
            life[t][0] = min(life[t][0], i)
            life[t][1] = max(life[t][1], i)
        else:
            life[t] = [i, i]

    for t in graph.inputs:
        if _is_activation(graph, t):
            touch(t, 0)
    for op in graph.ops:
        for t in list(op.inputs) + list(op.outputs):
            if _is_activation(graph, t):
                touch(t, op.index)
    for t in graph.outputs:
        if _is_activation(graph, t):
            touch(t, last_op)
    for t in list(life):
        if graph.tensors[t].is_variable:
            touch(t, 0)
            touch(t, last_op)

    parent: dict[int, int] = {}

    def root(t: int) -> int:
        while t in parent:
            t = parent[t]
        return t

    for op in graph.ops:
        if op.opcode in ALIAS_OPS and op.inputs and op.outputs:
            src, dst = op.inputs[0], op.outputs[0]
            if _is_activation(graph, src) and _is_activation(graph, dst) and root(src) != root(dst):
                parent[root(dst)] = root(src)
    for op in graph.ops:   # views: outputs that are a contiguous run of their input
        for dst, src, _ in _views(graph, op):
            if _is_activation(graph, src) and _is_activation(graph, dst) and root(src) != root(dst) \
                    and dst not in parent and dst not in graph.inputs:
                parent[dst] = src
    alias_of = {t: root(t) for t in life if root(t) != t}
    return {t: (a, b) for t, (a, b) in life.items()}, alias_of


def _views(graph, op) -> list[tuple[int, int, int]]:
    """(output, input, byte offset) of each output of `op` that is a contiguous run of its input."""
    if op.opcode not in VIEW_OPS:
        return []
    from .aot.ops_shape import view_offsets

    return view_offsets(graph, op)


def view_offset_map(graph, alias_of: dict[int, int]) -> dict[int, int]:
    """tensor -> byte offset inside its root's buffer (0 for roots and plain aliases)."""
    own: dict[int, tuple[int, int]] = {}   # tensor -> (the tensor it is placed in, offset there)
    for op in graph.ops:
        if op.opcode in ALIAS_OPS and op.inputs and op.outputs and op.outputs[0] in alias_of:
            own[op.outputs[0]] = (op.inputs[0], 0)
        for dst, src, off in _views(graph, op):
            if dst in alias_of:
                own[dst] = (src, off)
    memo: dict[int, int] = {}

    def offset(t: int) -> int:
        if t not in memo:
            memo[t] = offset(own[t][0]) + own[t][1] if t in own else 0
        return memo[t]

    return {t: offset(t) for t in alias_of}


def _first_fit(order: list[Buffer]) -> dict[int, int]:
    """Place buffers in `order`, each at the lowest aligned offset free during its lifetime; a
    buffer anchored to another is placed with it, at its fixed distance."""
    placed: list[tuple[int, int, int, int]] = []   # (offset, end, first, last)
    offs: dict[int, int] = {}
    linked: dict[int, list[Buffer]] = {}
    for b in order:
        if b.anchor is not None:
            linked.setdefault(b.anchor, []).append(b)
    for b in order:
        if b.anchor is not None:
            continue
        group = [b] + linked.get(b.root, [])
        if len(group) == 1:
            clashes = sorted(p for p in placed if p[2] <= b.last and b.first <= p[3])
            off = 0
            for p_off, p_end, _, _ in clashes:
                if off + b.nbytes <= p_off:
                    break
                off = max(off, _align(p_end))
        else:
            tries = {0}
            for m in group:
                for p in placed:
                    if p[2] <= m.last and m.first <= p[3] and _align(p[1]) >= m.rel:
                        tries.add(_align(p[1]) - m.rel)
            for off in sorted(tries):
                if all(not (p[2] <= m.last and m.first <= p[3] and off + m.rel < p[1] and p[0] < off + m.rel + m.nbytes)
                       for m in group for p in placed):
                    break
        for m in group:
            offs[m.root] = off + m.rel
            placed.append((off + m.rel, off + m.rel + m.nbytes, m.first, m.last))
    return offs


def _orders(buffers: list[Buffer], tries: int = 300):
    """Candidate placement orders: classic heuristics first, then seeded shuffles of them."""
    by_size = sorted(buffers, key=lambda b: (-b.nbytes, b.first, b.root))
    yield by_size
    yield sorted(buffers, key=lambda b: (b.first, -b.nbytes, b.root))
    yield sorted(buffers, key=lambda b: (-(b.nbytes * (b.last - b.first + 1)), b.root))
    rng = random.Random(0)
    for _ in range(tries):
        order = list(by_size)
        # perturb: swap a few neighbours so nearly-equal sizes get other chances
        for _ in range(max(1, len(order) // 4)):
            i = rng.randrange(len(order))
            j = min(len(order) - 1, i + rng.randrange(1, 4))
            order[i], order[j] = order[j], order[i]
        yield order


INPLACE_OPS = frozenset({"ADD", "MUL"})   # te_binary / te_mve_add_s8: out[i] from in1[i], in2[i] only


def inplace_candidates(graph) -> list[tuple[int, int]]:
    """(op index, input tensor) of every elementwise op that may write its output over that
    input: same shape and type, no broadcast, the input's buffer dead after the op and no graph
    output, nor a variable, nor a view inside another buffer."""
    life, alias_of = lifetimes(graph)
    outs = set(graph.outputs)
    out = []
    for op in graph.ops:
        if op.opcode not in INPLACE_OPS or len(op.inputs) != 2 or len(op.outputs) != 1:
            continue
        y = graph.tensors[op.outputs[0]]
        ins = [graph.tensors[t] for t in op.inputs]
        if any(t.is_const or tuple(t.shape) != tuple(y.shape) or t.dtype != y.dtype for t in ins):
            continue
        if op.inputs[0] == op.inputs[1] or op.outputs[0] in alias_of:
            continue
        for t in op.inputs:
            r = alias_of.get(t, t)
            group = [m for m in life if alias_of.get(m, m) == r]
            if all(life[m][1] <= op.index for m in group) and not outs.intersection(group) and t == r \
                    and not any(graph.tensors[m].is_variable for m in group):
                out.append((op.index, t))
                break
    return out


def _buffers(graph, stages=(), inplace=()) -> tuple[list[Buffer], dict[int, int], dict, dict, list]:
    """The arena's buffers (with `inplace` applied: (op, input) pairs whose op writes its output
    over that input; and `stages`: row buffers for their intermediates, the stage output
    sharing a dead input's bytes), the view offsets, lifetimes and aliases."""
    life, alias_of = lifetimes(graph)
    if inplace:
        alias_of = dict(alias_of)
        for i, t in inplace:
            y = graph.ops[i].outputs[0]
            for m in [m for m in life if alias_of.get(m, m) == y]:
                alias_of[m] = t
    view_off = view_offset_map(graph, alias_of)
    groups: dict[int, list[int]] = {}
    for t in sorted(life):
        groups.setdefault(alias_of.get(t, t), []).append(t)
    buffers: list[Buffer] = []
    for r, members in groups.items():
        members = [r] + [m for m in members if m != r]
        first = min(life[m][0] for m in members)
        last = max(life[m][1] for m in members)
        nbytes = max(view_off.get(m, 0) + graph.tensors[m].nbytes for m in members)
        buffers.append(Buffer(r, members, nbytes, first, last))
    for op in graph.ops:   # scratch: a buffer of no tensor (root -1 - op index), live during the op
        n = scratch_bytes(graph, op)
        if n:
            buffers.append(Buffer(-1 - op.index, [], n, op.index, op.index))
    credits: list[tuple[int, int, int]] = []   # (first, last, bytes): two linked buffers' shared bytes
    if stages:
        by_root = {b.root: b for b in buffers}
        outs = set(graph.outputs)
        for st in stages:
            for t, g, cap in zip(st.tensors[1:-1], st.geom[1:], st.caps, strict=True):   # row buffers
                b = by_root[alias_of.get(t, t)]
                b.nbytes, b.first, b.last = cap * g.row_in, st.first, st.last
            src = by_root[alias_of.get(st.tensors[0], st.tensors[0])]
            dst = by_root[alias_of.get(st.tensors[-1], st.tensors[-1])]
            legal = (st.overlap is not None and src.last <= st.first and view_off.get(st.tensors[0], 0) == 0
                     and view_off.get(st.tensors[-1], 0) == 0 and src.anchor is None
                     and not outs.intersection(src.tensors) and src is not dst
                     and not any(graph.tensors[m].is_variable for m in src.tensors))
            src.last, dst.first = max(src.last, st.last), min(dst.first, st.first)
            if legal and st.overlap < dst.nbytes:
                # the output starts `overlap` bytes before the input: rows land on dead input rows
                src.anchor, src.rel = dst.root, st.overlap
                credits.append((st.first, st.last, dst.nbytes - st.overlap if st.overlap + src.nbytes >= dst.nbytes
                                else src.nbytes))
    # anchors form trees (a stage's output is the next stage's input): point every one at its top
    by_root = {b.root: b for b in buffers}
    for b in buffers:
        while b.anchor is not None and by_root[b.anchor].anchor is not None:
            up = by_root[b.anchor]
            b.anchor, b.rel = up.anchor, b.rel + up.rel
    return buffers, view_off, life, alias_of, credits


def _live(graph, buffers, credits, i: int) -> int:
    return (sum(b.nbytes for b in buffers if b.first <= i <= b.last)
            - sum(n for f, la, n in credits if f <= i <= la))


def _peak(graph, buffers: list[Buffer], credits=()) -> tuple[int, int]:
    peak, peak_op = 0, 0
    for i in range(max(len(graph.ops), 1)):
        live = _live(graph, buffers, credits, i)
        if live > peak:
            peak, peak_op = live, i
    return peak, peak_op


def live_profile(graph, stages=(), inplace=()) -> list[int]:
    """Bytes live at each op with `stages` and `inplace` applied."""
    buffers, _, _, _, credits = _buffers(graph, stages, inplace)
    return [_live(graph, buffers, credits, i) for i in range(max(len(graph.ops), 1))]


def plan(graph, schedule: str = "layer", fixed=frozenset()) -> Plan:
    """Lay out every activation tensor of `graph` in one arena.  `schedule`: `layer` runs the ops
    one after the other; `auto` also streams stages of spatial ops row by row and writes ADD / MUL
    outputs over dead inputs where that lowers the arena (tinyedge.stream); `stages:I-J[/ROWS],...`
    streams exactly those op ranges (tests and experiments).  `fixed`: ops `auto` never streams
    (the aot generator's compactly stored weights)."""
    from . import stream

    base = _plan(graph, [])
    if schedule.startswith("stages:"):   # explicit stages (tests, experiments): "stages:0-3/2,5-6"
        stages = stream.parse_stages(graph, schedule[len("stages:"):])
        pl = _plan(graph, stages)
        pl.layer_arena_bytes, pl.layer_peak_bytes = base.arena_bytes, base.peak_live_bytes
        return pl
    if schedule not in stream.SCHEDULES:
        from .errors import UsageError

        raise UsageError(f"unknown schedule {schedule!r}", hint=f"use one of: {', '.join(stream.SCHEDULES)}")
    if schedule == "layer":
        return base
    best = base
    for inplace in ([], inplace_candidates(graph)):
        if inplace is not None and (inplace or best is base):
            stages = stream.choose(graph, lambda g, s, ip=inplace: _plan(g, s, ip),
                                   lambda g, s, ip=inplace: live_profile(g, s, ip), fixed)
            pl = _plan(graph, stages, inplace) if stages or inplace else base
            for pair in list(inplace):   # keep an in-place op only where it lowers the arena
                rest = [p for p in inplace if p != pair]
                trial = _plan(graph, stages, rest)
                if trial.arena_bytes <= pl.arena_bytes:
                    inplace, pl = rest, trial
            if pl.arena_bytes < best.arena_bytes:
                best = pl
    best.layer_arena_bytes, best.layer_peak_bytes = base.arena_bytes, base.peak_live_bytes
    return best


def _plan(graph, stages, inplace=()) -> Plan:
    buffers, view_off, life, alias_of, credits = _buffers(graph, stages, inplace)
    peak, peak_op = _peak(graph, buffers, credits)

    best: dict[int, int] | None = None
    best_end = -1
    for order in _orders(buffers):
        offs = _first_fit(order)
        end = max((offs[b.root] + b.nbytes for b in buffers), default=0)
        if best is None or end < best_end:
            best, best_end = offs, end
        if best_end <= _align(peak):
            break
    for b in buffers:
        b.offset = best[b.root] if best else 0

    offsets = {m: b.offset + view_off.get(m, 0) for b in buffers for m in b.tensors}
    arena = _align(max((b.offset + b.nbytes for b in buffers), default=0))
    scratch = {-1 - b.root: b.offset for b in buffers if b.root < 0}
    return Plan(offsets=offsets, arena_bytes=arena, peak_live_bytes=peak, peak_op=peak_op,
                lifetimes=life, alias_of=alias_of, buffers=buffers, scratch=scratch, stages=list(stages),
                inplace=list(inplace), credits=credits, layer_arena_bytes=arena, layer_peak_bytes=peak)
