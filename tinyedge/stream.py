"""Row-streamed stages: an arena below the layer-by-layer bound.

A *stage* is a run of consecutive spatial ops (CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL_2D,
MAX_POOL_2D; int8 NHWC, batch 1) in which every intermediate tensor has exactly one reader, the
next op.  Its intermediates never exist in full: each gets a row buffer holding only the rows its
reader still needs (the line-buffer form of MCUNetV2's patch-based inference: overlap rows are
kept, nothing is recomputed).  The stage's last op writes its full output row by row, and when
the stage input has no reader after the stage, that output shares the input's bytes: output rows
land on input rows no later step reads (`Stage.overlap`: the output starts that many bytes before
the input).  A one-op stage is an in-place conv (a stride-1 3x3 conv overwrites its input with a
two-row lag).

The schedule is demand driven and the same in Python (`simulate`, which sizes the row buffers
and the overlap) and in the generated C (templates/aot/model.c.j2, `<prefix>_pull`): to make
rows [.., b) of tensor j, its producer (op j-1) first drops the rows of its input buffer that it
no longer needs (a memmove to the buffer's start: the band stays contiguous, so the kernels see
a plain NHWC tensor), pulls the input rows it needs, then runs once over the new output rows with
in_h / out_h / pad_h of the band, at most `Stage.rows` output rows per call.

`choose(graph)` keeps a set of stages only when it lowers the whole model's peak.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALIGN = 16
STAGE_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D"})
MAX_STAGE_OPS = 8            # the C state's fixed arrays (model.c.j2: produced / lo, stream_max = this + 1)
SCHEDULES = ("auto", "layer")


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass(frozen=True)
class RowGeom:
    """One stage op's row geometry: output row r reads input rows [r*stride - pad, .. + keff)."""
    index: int
    in_h: int
    out_h: int
    stride: int
    pad: int
    keff: int          # (k_h - 1) * dil_h + 1
    row_in: int        # bytes of one input row
    row_out: int       # bytes of one output row


@dataclass
class Stage:
    ops: list[int]                       # op indices, consecutive
    tensors: list[int]                   # T_0 (stage input) .. T_m (stage output)
    geom: list[RowGeom]
    rows: int = 1                        # output rows an op makes per kernel call (at most)
    caps: list[int] = field(default_factory=list)   # row-buffer rows of T_1 .. T_{m-1}
    overlap: int | None = None           # output placed this many bytes before the input (None: apart)
    calls: int = 0                       # kernel calls
    moved_bytes: int = 0                 # bytes memmoved to keep the bands contiguous

    @property
    def first(self) -> int:
        return self.ops[0]

    @property
    def last(self) -> int:
        return self.ops[-1]

    def buffer_bytes(self) -> list[int]:
        return [c * g.row_in for c, g in zip(self.caps, self.geom[1:], strict=True)]

    def describe(self) -> dict:
        return {"ops": list(self.ops), "rows": self.rows, "row_buffers": self.buffer_bytes(),
                "overlap": self.overlap, "kernel_calls": self.calls, "moved_bytes": self.moved_bytes}


def _pad_top(padding: str, in_size: int, keff: int, stride: int, out_size: int) -> int:
    total = (out_size - 1) * stride + keff - in_size
    return max(total, 0) // 2 if padding == "SAME" else 0


def geometry(graph, op) -> RowGeom | None:
    """`op`'s row geometry, or None when it cannot be streamed."""
    if op.opcode not in STAGE_OPS or not op.inputs or not op.outputs or len(op.outputs) != 1:
        return None
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if x.is_const or x.dtype != "int8" or y.dtype != "int8" or len(x.shape) != 4 or len(y.shape) != 4:
        return None
    if x.shape[0] != 1 or y.shape[0] != 1 or x.is_variable or y.is_variable:
        return None
    o = op.options
    if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        w = graph.tensors[op.inputs[1]]
        if not w.is_const or w.dtype != "int8" or len(w.shape) != 4:
            return None
        if op.opcode == "CONV_2D" and w.shape[3] != x.shape[3]:   # grouped: its own emitter
            return None
        k = int(w.shape[1])
        dil = int(o.get("dilation_h_factor", 1) or 1)
    else:
        k, dil = int(o["filter_height"]), 1
    stride = int(o.get("stride_h", 1))
    keff = (k - 1) * dil + 1
    in_h, out_h = int(x.shape[1]), int(y.shape[1])
    return RowGeom(op.index, in_h, out_h, stride, _pad_top(o.get("padding", "VALID"), in_h, keff, stride, out_h),
                   keff, int(x.nbytes // in_h), int(y.nbytes // out_h))


def simulate(stage: Stage, trace: list | None = None) -> None:
    """Run the schedule the generated C runs; set caps, overlap (when `stage.overlap` is not None
    on entry: the least one, 16-byte aligned), calls and moved_bytes.  `trace` gets the stage
    input's reads and the stage output's writes, ("r" | "w", first byte, end byte), in order."""
    geo, m = stage.geom, len(stage.geom)
    produced = [geo[0].in_h] + [0] * m
    lo = [0] * (m + 1)
    caps = [0] * (m + 1)
    events: list[tuple[str, int, int]] = []   # stage-input reads, stage-output writes, in order
    calls = moved = 0

    def pull(j: int, want: int) -> None:
        while produced[j] < want:
            step(j, min(want, produced[j] + stage.rows))

    def step(j: int, b: int) -> None:
        nonlocal calls, moved
        g = geo[j - 1]
        o0 = produced[j]
        a = max(0, o0 * g.stride - g.pad)
        bb = min(g.in_h, (b - 1) * g.stride - g.pad + g.keff)
        if j > 1:
            keep = min(a, produced[j - 1])
            if keep > lo[j - 1]:
                moved += (produced[j - 1] - keep) * g.row_in
                lo[j - 1] = keep
            pull(j - 1, bb)
            caps[j - 1] = max(caps[j - 1], bb - lo[j - 1])
        if j == m:
            events.append(("w", o0 * g.row_out, b * g.row_out))
        else:
            caps[j] = max(caps[j], b - lo[j])
        if j == 1:
            events.append(("r", a * g.row_in, bb * g.row_in))
        calls += 1
        produced[j] = b

    h = geo[-1].out_h
    for r in range(stage.rows, h + stage.rows, stage.rows):
        pull(m, min(r, h))
    if trace is not None:
        trace.extend(events)
    stage.caps = caps[1:m]
    stage.calls, stage.moved_bytes = calls, moved
    if stage.overlap is not None:
        # writes at event t must miss every input byte read at t or later (a one-op stage reads
        # and writes in one call: its read is listed after its write, so it counts)
        need, future = 0, None
        for kind, lo_b, hi_b in reversed(events):
            if kind == "r":
                future = lo_b if future is None else min(future, lo_b)
            elif future is not None:
                need = max(need, hi_b - future)
        stage.overlap = _align(need)


def chains(graph, fixed=frozenset()) -> list[list[int]]:
    """Maximal runs of consecutive streamable ops (none of `fixed`), each intermediate read by the
    next op only."""
    readers: dict[int, list[int]] = {}
    for op in graph.ops:
        for t in op.inputs:
            if t >= 0:
                readers.setdefault(t, []).append(op.index)
    outs = set(graph.outputs)
    runs: list[list[int]] = []
    cur: list[int] = []
    for op in graph.ops:
        ok = op.index not in fixed and geometry(graph, op) is not None
        if ok and cur:
            prev = graph.ops[cur[-1]]
            t = prev.outputs[0]
            if not (op.inputs[0] == t and readers.get(t) == [op.index] and t not in outs):
                runs.append(cur)
                cur = []
        if ok:
            cur.append(op.index)
        elif cur:
            runs.append(cur)
            cur = []
    if cur:
        runs.append(cur)
    return runs


def make_stage(graph, ops: list[int], rows: int = 1, overlap_ok: bool = True) -> Stage:
    geo = [geometry(graph, graph.ops[i]) for i in ops]
    tensors = [graph.ops[ops[0]].inputs[0]] + [graph.ops[i].outputs[0] for i in ops]
    st = Stage(list(ops), tensors, geo, rows=max(1, min(rows, geo[-1].out_h)), overlap=0 if overlap_ok else None)
    simulate(st)
    return st


def parse_stages(graph, text: str) -> list[Stage]:
    """`I-J[/ROWS],...`: stages over ops I..J (ROWS output rows per call, default 1); a range
    that is not a chain of streamable ops is a usage error."""
    from .errors import UsageError

    runs = chains(graph)
    out = []
    for part in filter(None, text.split(",")):
        rng, _, rows = part.partition("/")
        lo, _, hi = rng.partition("-")
        try:
            i, j, g = int(lo), int(hi or lo), int(rows or 1)
        except ValueError:
            raise UsageError(f"bad stage {part!r}", hint="write stages as I-J or I-J/ROWS, e.g. stages:0-3/2") from None
        ops = list(range(i, j + 1))
        if len(ops) > MAX_STAGE_OPS:
            raise UsageError(f"stage {part!r} has {len(ops)} ops; a stage takes at most {MAX_STAGE_OPS}",
                             hint="split it into consecutive stages")
        if not any(set(ops) <= set(r) for r in runs) or g < 1:
            raise UsageError(f"ops {i}..{j} are not a chain of streamable ops",
                             hint=f"chains of this model: {', '.join(f'{r[0]}-{r[-1]}' for r in runs) or 'none'}")
        out.append(make_stage(graph, ops, g))
    return sorted(out, key=lambda s: s.first)


def _cost(st: Stage) -> int:
    """A rough price of streaming, in instructions: each kernel call's set-up, and the memmoves."""
    return 150 * st.calls + st.moved_bytes // 4


def _partition(segs: dict, n: int, limit: int | None):
    """Cover ops 0..n-1 of a chain with segments (s, e) -> [(peak, cost, stage or None)].  With
    `limit` None: the least peak (ties: the least cost); else the least cost with every peak
    <= limit.  Returns (peak, cost, [stages]) or None."""
    def key(c):
        return (c[0], c[1]) if limit is None else (c[1], c[0])

    best: list = [None] * (n + 1)
    best[0] = (0, 0, [])
    for e in range(1, n + 1):
        for s in range(e):
            if best[s] is None:
                continue
            for pk, cost, st in segs.get((s, e), ()):
                if limit is not None and pk > limit:
                    continue
                cand = (max(best[s][0], pk), best[s][1] + cost, best[s][2] + ([st] if st else []))
                if best[e] is None or key(cand) < key(best[e]):
                    best[e] = cand
    return best[n]


def choose(graph, plan_fn, live_fn, fixed=frozenset()) -> list[Stage]:
    """Stages that lower the model's arena (`plan_fn(graph, stages)` -> Plan, `live_fn(graph,
    stages)` -> live bytes per op); the ops of `fixed` are never streamed.

    The live bytes at an op depend only on the stage holding it, so each chain is partitioned
    exactly (dynamic programming over its ops): first the least peak any partition reaches, then
    the model's peak (the largest of those and the live bytes at every op no chain holds), then
    per chain the cheapest partition (`_cost`) that stays within that peak (a chain
    already within it streams nothing).  The stages are kept only when the planned arena is
    smaller than the layer-by-layer one; then each stage makes as many rows per kernel call as
    it can without raising the arena."""
    runs = chains(graph, fixed)
    if not runs:
        return []
    base_live = live_fn(graph, [])
    in_chain = {i for r in runs for i in r}
    fixed = max([v for i, v in enumerate(base_live) if i not in in_chain], default=0)
    table = []
    for run in runs:
        segs: dict = {}
        for s in range(len(run)):
            segs[(s, s + 1)] = [(base_live[run[s]], 0, None)]
            for e in range(s + 1, min(len(run), s + MAX_STAGE_OPS) + 1):
                st = make_stage(graph, run[s:e])
                live = live_fn(graph, [st])
                segs.setdefault((s, e), []).append((max(live[i] for i in st.ops), _cost(st), st))
        table.append((run, segs))
    target = max([fixed] + [_partition(segs, len(run), None)[0] for run, segs in table])
    chosen: list[Stage] = []
    for run, segs in table:
        chosen += _partition(segs, len(run), target)[2]
    if not chosen:
        return []
    base = plan_fn(graph, []).arena_bytes
    arena = plan_fn(graph, chosen).arena_bytes
    if arena >= base:
        return []
    for k, st in enumerate(chosen):   # taller bands while the arena holds
        while st.rows < st.geom[-1].out_h:
            trial = make_stage(graph, st.ops, st.rows * 2, st.overlap is not None)
            if plan_fn(graph, chosen[:k] + [trial] + chosen[k + 1:]).arena_bytes > arena:
                break
            chosen[k] = st = trial
    return sorted(chosen, key=lambda s: s.first)
