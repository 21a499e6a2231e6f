"""Model inspection: ops, MACs, weights, tensor lifetimes, TFLM's own arena, op support, board fit.

`inspect_model(path_or_graph, board=None) -> dict` returns a JSON-able report;
the CLI (`tinyedge inspect`) formats it.

MAC counts (`macs(graph, op)`), one multiply-accumulate per weight use:

- CONV_2D:            out_elements x kernel_h x kernel_w x in_channels_per_group
                      (filter shape [C_out, kh, kw, C_in / groups])
- DEPTHWISE_CONV_2D:  out_elements x kernel_h x kernel_w (filter [1, kh, kw, C_out])
- FULLY_CONNECTED:    out_elements x in_features (weights [units, in_features])
- TRANSPOSE_CONV:     in_elements x kernel_h x kernel_w x C_out (each input
                      pixel scatters a kh x kw x C_out patch)
- BATCH_MATMUL:       out_elements x K (the contracted dimension)
- UNIDIRECTIONAL_SEQUENCE_LSTM: steps x batch x 4 gates x units x (in_features
                      + units) (the input and the recurrent FC of every gate)
- every other op (pooling, ADD, SOFTMAX, RESHAPE, ...): 0.  This is the
  convention of MLPerf Tiny's published MAC counts.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import InputFileError, ModelError, TinyedgeError
from .graph import Graph, load_tflite, parse_tflite

log = logging.getLogger(__name__)


@contextmanager
def capture_fd2():
    """Capture what native code writes to file descriptor 2; yields a list that receives the text.

    In a tinyedge.isolate worker the text goes to the end of the worker's own
    stderr file (and is read back from there), so a crash report written while
    capturing is not lost with the process: the parent logs that file, which
    --verbose shows.  Elsewhere, with debug logging on (--verbose), the text is
    also copied to the real stderr as it comes.
    """
    import sys

    from .isolate import STDERR_ENV

    sink: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    worker_log = os.environ.get(STDERR_ENV)
    tee = not worker_log and logging.getLogger("tinyedge").isEnabledFor(logging.DEBUG)
    with (open(worker_log, "ab+") if worker_log else tempfile.TemporaryFile()) as tmp:
        start = tmp.seek(0, os.SEEK_END)
        os.dup2(tmp.fileno(), 2)
        try:
            yield sink
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(start)
            text = tmp.read().decode("utf-8", "replace")
            sink.append(text)
            if tee and text:
                sys.stderr.write(text)
                sys.stderr.flush()


# ---------------------------------------------------------------------------
# MACs and weights
# ---------------------------------------------------------------------------

def _t(graph: Graph, op, k: int):
    if k >= len(op.inputs) or op.inputs[k] < 0:
        return None
    return graph.tensors[op.inputs[k]]


def _out(graph: Graph, op):
    return graph.tensors[op.outputs[0]] if op.outputs and op.outputs[0] >= 0 else None


def macs(graph: Graph, op) -> int:
    """Multiply-accumulates of one op (formulas in the module docstring)."""
    out = _out(graph, op)
    if out is None:
        return 0
    n_out = out.num_elements
    if op.opcode == "CONV_2D":
        w = _t(graph, op, 1)
        return n_out * int(np.prod(w.shape[1:])) if w is not None and len(w.shape) == 4 else 0
    if op.opcode == "DEPTHWISE_CONV_2D":
        w = _t(graph, op, 1)
        return n_out * int(w.shape[1] * w.shape[2]) if w is not None and len(w.shape) == 4 else 0
    if op.opcode == "FULLY_CONNECTED":
        w = _t(graph, op, 1)
        return n_out * int(w.shape[-1]) if w is not None and w.shape else 0
    if op.opcode == "TRANSPOSE_CONV":
        w, x = _t(graph, op, 1), _t(graph, op, 2)
        if w is None or x is None or len(w.shape) != 4:
            return 0
        return x.num_elements * int(w.shape[0] * w.shape[1] * w.shape[2])
    if op.opcode == "BATCH_MATMUL":
        a = _t(graph, op, 0)
        if a is None or not a.shape:
            return 0
        adj_x = bool(op.options.get("adj_x", False))
        k = a.shape[-2] if adj_x and len(a.shape) >= 2 else a.shape[-1]
        return n_out * int(k)
    if op.opcode == "UNIDIRECTIONAL_SEQUENCE_LSTM":
        x, w = _t(graph, op, 0), _t(graph, op, 1)
        if x is None or w is None or len(x.shape) != 3 or len(w.shape) != 2:
            return 0
        # per step and batch: 4 gates x units x (input features + units)
        return x.shape[0] * x.shape[1] * 4 * int(w.shape[0]) * (int(x.shape[2]) + int(w.shape[0]))
    return 0


def weight_bytes(graph: Graph, op) -> int:
    """Bytes of the constant inputs of `op` (weights, biases, and constant operands)."""
    return sum(graph.tensors[i].nbytes for i in op.inputs if i >= 0 and graph.tensors[i].is_const)


# ---------------------------------------------------------------------------
# memory
# ---------------------------------------------------------------------------

def _own_plan(graph: Graph) -> dict:
    """Peak of live activation bytes over the op order (fallback when tinyedge.planner is absent)."""
    last_use: dict[int, int] = {}
    first_def: dict[int, int] = {t: 0 for t in graph.inputs}
    for op in graph.ops:
        for t in op.inputs:
            if t >= 0 and not graph.tensors[t].is_const:
                last_use[t] = op.index
        for t in op.outputs:
            first_def.setdefault(t, op.index)
    for t in graph.outputs:
        last_use[t] = len(graph.ops) - 1
    peak, peak_op = 0, 0
    for i in range(len(graph.ops)):
        live = sum(graph.tensors[t].nbytes for t, f in first_def.items() if f <= i <= last_use.get(t, f))
        if live > peak:
            peak, peak_op = live, i
    return {"peak_live_bytes": peak, "peak_op": peak_op, "arena_bytes": None, "planner": "lifetimes only"}


def memory_plan(graph: Graph, board=None) -> dict:
    """Peak live activation bytes op by op (the layer-by-layer bound), the op at the peak, and the
    planned arenas (tinyedge.planner): `arena_bytes` the aot engine's (as it generates it, schedule
    auto: row-streamed stages and in-place ops where they lower it), `layer_arena_bytes` op by op;
    `stages` and `inplace` say what auto chose (for `board`'s kernels, a Board or None)."""
    try:
        from .planner import plan
    except ImportError:
        return _own_plan(graph)
    p = plan(graph)
    s, arena = p, p.arena_bytes
    try:
        from .aot.codegen import build_context, has_arm_dsp

        ctx = build_context(graph, arm_dsp=has_arm_dsp(board), mve=bool(board is not None and board.mve))
        s, arena = ctx["plan"], ctx["arena_bytes"]
    except TinyedgeError as e:   # a graph the aot engine cannot compile: op by op only
        log.debug("no aot plan for this model: %s", e)
    return {"peak_live_bytes": int(p.peak_live_bytes), "peak_op": int(p.peak_op),
            "arena_bytes": int(arena), "layer_arena_bytes": int(p.arena_bytes),
            "streamed_peak_live_bytes": int(s.peak_live_bytes),
            "stages": [st.describe() for st in s.stages], "inplace": [int(i) for i, _ in s.inplace],
            "planner": "tinyedge.planner"}


_ARENA_RE = re.compile(r"Arena allocation total (\d+) bytes")


def _probe(data: bytes, arena: int, *, record: bool = False) -> tuple[bool, str, str | None]:
    """Does the tflite-micro interpreter load `data` with an `arena`-byte arena?  (fits, its text, signal).

    Each try runs in a forked child: the interpreter writes past or dereferences
    what it failed to allocate on some models (an LSTM's kernel, handed an
    arena too small for its scratch buffers, segfaults in Prepare), so a crash
    there must end the child, not the search.  A crash counts as "does not fit".
    With `record`, the child prints the interpreter's allocation record, which
    comes back in the text.
    """
    import signal as _signal
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile() as out:
        pid = os.fork()
        if pid == 0:  # the child: load, report, and leave without running the parent's clean-up
            code = 1
            try:
                import faulthandler

                # a crash here is an expected answer ("too small"), not a report for the parent's
                # stderr: faulthandler (pytest's, or -X faulthandler) writes to its own saved fd
                faulthandler.disable()
                os.dup2(out.fileno(), 1)
                os.dup2(out.fileno(), 2)
                from tflite_micro.python.tflite_micro import runtime

                try:
                    interp = runtime.Interpreter.from_bytes(data, arena_size=int(arena))
                    if record:
                        interp.print_allocations()
                    code = 0
                except RuntimeError as e:
                    os.write(2, f"\nRuntimeError: {e}\n".encode())
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    if os.WIFSIGNALED(status):
        try:
            sig = _signal.Signals(os.WTERMSIG(status)).name
        except ValueError:
            sig = f"signal {os.WTERMSIG(status)}"
        log.debug("tflite-micro interpreter with a %d B arena crashed (%s)", arena, sig)
        return False, text, sig
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, text, None


def tflm_arena_bytes(tflite: os.PathLike | str | bytes, *, granularity: int = 16) -> int:
    """The smallest arena (bytes) with which TFLite Micro's interpreter (tflite-micro package) loads the model.

    Starts from the interpreter's own allocation record ("Arena allocation
    total" with a roomy arena): no smaller arena can hold what it allocated.  It
    can fall short of what allocation needs (scratch buffers taken while ops
    prepare), so the size grows until the model loads, then a binary search
    finds the smallest to `granularity` bytes.  Every try is a forked child
    (`_probe`): the interpreter crashes on some models (an LSTM) when handed an
    arena too small for them, and such a crash only says "too small".  Measured
    on the host (64-bit pointers): a 32-bit device needs somewhat less for
    TFLM's own structs.  The search runs in a worker process
    (tinyedge.isolate): a crash outside a try is a NativeCrashError, never the
    end of tinyedge.
    """
    from . import isolate

    data = bytes(tflite) if isinstance(tflite, bytes | bytearray) else Path(tflite).read_bytes()
    return isolate.call("arena", "tinyedge.analyze:_arena_search", data, granularity)


_ROOMY_MIN = 4 << 20      # the first try's arena: 10x the model (the interpreter's own default), at least this
_ARENA_MAX = 1 << 30


def _arena_search(data: bytes, granularity: int) -> int:
    roomy = max(len(data) * 10, _ROOMY_MIN)
    while True:
        ok, text, sig = _probe(data, roomy, record=True)
        if ok or roomy >= _ARENA_MAX:
            break
        roomy *= 4
    if not ok:
        detail = " ".join(text.split())[-200:]
        how = f"crashed ({sig})" if sig else "failed"
        raise ModelError(f"the tflite-micro interpreter {how} loading this model even with a "
                         f"{roomy >> 20} MiB arena: {detail}",
                         hint="TFLite Micro cannot run this model as converted; use runtime aot")
    m = _ARENA_RE.search(text)
    if not m:
        raise ModelError("the tflite-micro interpreter did not report its arena size")
    recorded = int(m.group(1))
    hi = max(recorded, granularity)
    while not _probe(data, hi)[0]:
        hi = hi * 5 // 4 + granularity
        if hi >= roomy:
            hi = roomy
            break
    lo = max(0, recorded // granularity * granularity - granularity)  # below the record nothing fits
    while hi - lo > granularity:
        mid = (lo + hi) // 2 // granularity * granularity
        if mid <= lo:
            break
        if _probe(data, mid)[0]:
            hi = mid
        else:
            lo = mid
    return hi


# ---------------------------------------------------------------------------
# support and fit
# ---------------------------------------------------------------------------

def support_table(graph: Graph) -> dict:
    """runtime -> {"status": "supported"|"unsupported"|"unknown", "unsupported": [...], "reason"?}."""
    from .runtimes import RUNTIMES, check_graph

    table = {}
    for name in RUNTIMES:
        try:
            verdicts = check_graph(graph, name)
        except (ImportError, AttributeError) as e:
            table[name] = {"status": "unknown", "reason": f"checker not available ({e})", "unsupported": []}
            continue
        bad = [{"op_index": v.op_index, "opcode": v.opcode, "version": v.version, "reason": v.reason}
               for v in verdicts if not v.supported]
        table[name] = {"status": "supported" if not bad else "unsupported", "unsupported": bad,
                       "per_op": [v.supported for v in verdicts]}
        if name == "aot":   # the aot kernels' slower paths on Cortex-M4
            from .aot.support import dsp_notes

            table[name]["notes"] = dsp_notes(graph)
    return table


def board_fit(board_id: str, *, flash_needed: int, ram_needed: int) -> dict:
    from .boards import get_board

    b = get_board(board_id)
    return {
        "board": b.id,
        "flash_bytes": b.flash_bytes, "flash_needed": flash_needed, "flash_margin": b.flash_bytes - flash_needed,
        "ram_bytes": b.ram_bytes, "ram_needed": ram_needed, "ram_margin": b.ram_bytes - ram_needed,
        "fits": flash_needed <= b.flash_bytes and ram_needed <= b.ram_bytes,
        "note": "model and arena only; firmware code and stack come on top",
    }


# ---------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------

def _tinfo(t) -> dict:
    return {"index": t.index, "name": t.name, "shape": list(t.shape), "dtype": t.dtype}


def _load_graph(path_or_graph, convert_options: dict | None = None) -> Graph:
    if isinstance(path_or_graph, Graph):
        return path_or_graph
    if isinstance(path_or_graph, bytes | bytearray):
        return parse_tflite(bytes(path_or_graph))
    path = Path(path_or_graph).expanduser().resolve()
    from .conversion import convert, sniff

    if sniff(path) == "tflite":
        return load_tflite(path)
    # A Keras model: convert it in memory first (random calibration is fine for shapes and sizes).
    with tempfile.TemporaryDirectory(prefix="tinyedge-inspect-") as d:
        opts = {"samples": 16, **(convert_options or {})}
        res = convert(path, out=Path(d) / "model.tflite", **opts)
        return remember_bytes(res.tflite_bytes)


def weight_storage(graph: Graph, weights: str = "auto", board=None) -> list[dict] | None:
    """Per conv / depthwise / FC weight tensor, the aot engine's storage under policy `weights` (on
    `board`, a Board or None) and its bytes, dense against stored (None when the aot engine cannot
    compile the graph)."""
    from .aot.codegen import build_context, has_arm_dsp

    try:
        return build_context(graph, weights=weights, arm_dsp=has_arm_dsp(board))["storage"]
    except TinyedgeError as e:
        log.debug("no aot weight storage for this model: %s", e)
        return None


def runtime_needs(graph: Graph, runtime: str, mem: dict, board=None) -> dict:
    """What a firmware of `runtime` will hold for this model: flash for the model, RAM for its arena,
    each with the basis it was computed on (the same numbers the project generator uses)."""
    from .runtimes import get_runtime

    engine = get_runtime(runtime).engine_module()
    if engine is not None and hasattr(engine, "render"):
        # A C engine (aot): its generated model's constants and arena, as the build will have them.
        from .aot.codegen import has_arm_dsp

        _, ctx = engine.render(graph, "te_model", arm_dsp=has_arm_dsp(board),
                               mve=bool(board is not None and board.mve))
        return {"flash_needed": int(ctx["const_bytes"]), "flash_basis": f"{runtime} constants in flash",
                "ram_needed": int(ctx["arena_bytes"]), "ram_basis": f"{runtime} arena"}
    if runtime == "tflm":
        from .project import tflm_arena_bytes as build_arena

        return {"flash_needed": graph.size_bytes, "flash_basis": "the .tflite in flash",
                "ram_needed": int(build_arena(_graph_bytes(graph))),
                "ram_basis": "tflm arena as the build sizes it (host measurement plus margin)"}
    ram = mem.get("tflm_arena_bytes") or mem.get("arena_bytes") or mem["peak_live_bytes"]
    return {"flash_needed": graph.size_bytes, "flash_basis": "the .tflite (an estimate for this runtime)",
            "ram_needed": int(ram), "ram_basis": "an estimate for this runtime"}


def inspect_model(path_or_graph, board: str | None = None, *, tflm_arena: bool = True,
                  convert_options: dict | None = None, runtime: str = "aot",
                  weights: str = "auto") -> dict:
    """A JSON-able report of a `.tflite` (a Keras model is converted first, with `convert_options`:
    the keyword arguments of `tinyedge.conversion.convert`, such as trust_code; see module docstring); `weights`: the aot weight storage policy whose
    per-tensor choice the report shows."""
    from .aot.storage import candidates

    candidates(weights)   # a bad policy fails before any work
    graph = _load_graph(path_or_graph, convert_options)
    ops = []
    for op in graph.ops:
        ops.append({
            "index": op.index, "opcode": op.opcode, "version": op.version,
            "inputs": [_tinfo(graph.tensors[i]) | {"const": graph.tensors[i].is_const}
                       for i in op.inputs if i >= 0],
            "outputs": [_tinfo(graph.tensors[i]) for i in op.outputs if i >= 0],
            "macs": macs(graph, op), "weight_bytes": weight_bytes(graph, op),
        })
    const_ids = {i for op in graph.ops for i in op.inputs if i >= 0 and graph.tensors[i].is_const}
    param_bytes = sum(graph.tensors[i].nbytes for i in const_ids)
    board_obj = None
    if board is not None:
        from .boards import get_board

        board_obj = get_board(board)
    mem = memory_plan(graph, board_obj)
    peak_op = graph.ops[mem["peak_op"]] if graph.ops else None
    mem["peak_op_name"] = peak_op.opcode if peak_op else None
    if tflm_arena:
        try:
            mem["tflm_arena_bytes"] = tflm_arena_bytes(_graph_bytes(graph))
        except TinyedgeError as e:
            mem["tflm_arena_bytes"] = None
            mem["tflm_error"] = str(e)
    report = {
        "model": {"path": str(graph.path) if graph.path else None, "sha256": graph.sha256,
                  "bytes": graph.size_bytes, "subgraphs": graph.subgraph_count},
        "inputs": [_tinfo(t) for t in graph.input_tensors],
        "outputs": [_tinfo(t) for t in graph.output_tensors],
        "ops": ops,
        "totals": {"ops": len(ops), "macs": sum(o["macs"] for o in ops), "param_bytes": param_bytes,
                   "model_bytes": graph.size_bytes, "op_counts": dict(sorted(graph.op_counts().items()))},
        "memory": mem,
        "support": support_table(graph),
    }
    stored = weight_storage(graph, weights, board_obj)
    if stored is not None:
        by_op = {e["op"]: e for e in stored}
        for o in ops:
            e = by_op.get(o["index"])
            if e is not None:
                o["storage"], o["stored_bytes"] = e["storage"], e["stored_bytes"]
        report["weights"] = {"policy": weights, "tensors": stored,
                             "dense_bytes": sum(e["dense_bytes"] for e in stored),
                             "stored_bytes": sum(e["stored_bytes"] for e in stored)}
    if board is not None:
        # Fit as the build of `runtime` will have it (issue 17: aot does not need TFLM's arena).
        from .boards import get_board

        need = runtime_needs(graph, runtime, mem, board_obj)
        b = get_board(board)
        stack = b.memory.stack_bytes if getattr(b, "memory", None) else 16384   # as the project reserves it
        report["fit"] = board_fit(board, flash_needed=need["flash_needed"], ram_needed=need["ram_needed"] + stack)
        report["fit"].update(runtime=runtime, flash_basis=need["flash_basis"], stack_bytes=stack,
                             ram_basis=f"{need['ram_basis']} + {stack:,} B stack",
                             note="firmware code and its static data come on top")
    return report


_BYTES_CACHE: dict[str, bytes] = {}


def _graph_bytes(graph: Graph) -> bytes:
    if graph.path is not None:
        return Path(graph.path).read_bytes()
    if graph.sha256 in _BYTES_CACHE:
        return _BYTES_CACHE[graph.sha256]
    raise InputFileError("the graph has no file behind it; pass the .tflite bytes or path instead")


def remember_bytes(data: bytes) -> Graph:
    """Parse `data` and keep the bytes so that `inspect_model(graph)` can measure TFLM's arena."""
    g = parse_tflite(data)
    _BYTES_CACHE[g.sha256] = bytes(data)
    return g
