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

    def live_bytes_at(self, op_index: int) -> int:
        return sum(b.nbytes for b in self.buffers if b.first <= op_index <= b.last)


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
    """Place buffers in `order`, each at the lowest aligned offset free during its lifetime."""
    placed: list[tuple[int, int, int, int]] = []   # (offset, end, first, last)
    offs: dict[int, int] = {}
    for b in order:
        clashes = sorted(p for p in placed if p[2] <= b.last and b.first <= p[3])
        off = 0
        for p_off, p_end, _, _ in clashes:
            if off + b.nbytes <= p_off:
                break
            off = max(off, _align(p_end))
        offs[b.root] = off
        placed.append((off, off + b.nbytes, b.first, b.last))
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


def plan(graph) -> Plan:
    """Lay out every activation tensor of `graph` in one arena."""
    life, alias_of = lifetimes(graph)
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

    peak, peak_op = 0, 0
    for i in range(max(len(graph.ops), 1)):
        live = sum(b.nbytes for b in buffers if b.first <= i <= b.last)
        if live > peak:
            peak, peak_op = live, i

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
                lifetimes=life, alias_of=alias_of, buffers=buffers, scratch=scratch)
