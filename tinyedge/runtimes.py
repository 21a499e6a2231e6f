"""Runtime registry: one entry per runtime (`aot`, `tflm`), each saying which ops it runs.

`check_graph(graph, runtime)` gives the verdict per op that `inspect` shows and
that code generation enforces; both call this one table, so they never
disagree.  A runtime's op check lives beside its implementation and is
imported lazily by dotted name.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

from .errors import UnsupportedOpError, UsageError


@dataclass(frozen=True)
class Runtime:
    name: str
    description: str
    check_op: str  # "module:function" taking (graph, op) -> None | reason string

    def op_checker(self):
        mod, fn = self.check_op.split(":")
        return getattr(import_module(mod), fn)


RUNTIMES: dict[str, Runtime] = {
    "aot": Runtime(
        "aot",
        "tinyedge's ahead-of-time C engine: the graph compiled to plain C calls into int8 kernels",
        "tinyedge.aot.support:check_op",
    ),
    "tflm": Runtime(
        "tflm",
        "TensorFlow Lite Micro: the flatbuffer interpreted on the device",
        "tinyedge.tflm_support:check_op",
    ),
}


def get_runtime(name: str) -> Runtime:
    if name not in RUNTIMES:
        raise UsageError(f"unknown runtime {name!r}", hint=f"use one of: {', '.join(RUNTIMES)}")
    return RUNTIMES[name]


@dataclass(frozen=True)
class OpVerdict:
    op_index: int
    opcode: str
    version: int
    supported: bool
    reason: str | None


def check_graph(graph, runtime: str) -> list[OpVerdict]:
    """Per-op verdicts of `runtime` for every op of `graph`, in execution order."""
    check = get_runtime(runtime).op_checker()
    verdicts = []
    for op in graph.ops:
        reason = check(graph, op)
        verdicts.append(OpVerdict(op.index, op.opcode, op.version, reason is None, reason))
    return verdicts


def require_supported(graph, runtime: str) -> None:
    """Raise UnsupportedOpError naming the first op `runtime` cannot run."""
    for v in check_graph(graph, runtime):
        if not v.supported:
            out = graph.tensors[graph.ops[v.op_index].outputs[0]].name if graph.ops[v.op_index].outputs else "?"
            raise UnsupportedOpError(
                f"runtime '{runtime}' cannot run op #{v.op_index} {v.opcode} (v{v.version}, output '{out}'): "
                f"{v.reason}",
                op=v.opcode,
                hint="run 'tinyedge inspect' for the full support table, or pick another runtime",
            )
