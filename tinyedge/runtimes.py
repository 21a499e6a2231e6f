"""Runtime registry: one entry per runtime, carrying everything the other stages ask of it.

- its op check (`check_graph(graph, runtime)`: the verdict per op that
  `inspect` shows and that code generation enforces; both call this one table,
  so they never disagree);
- the CLI's help text (the `--runtime` choices of every command come from
  this table);
- for firmware runtimes, the engine that writes the model's C, the extra
  firmware files and the template facts a project needs;
- how a host-emulated board serves it (`tinyedge emulate`);
- for runtimes installed onto a running interpreter (`micropython`), the
  deploy hook that replaces build + flash + protocol session.

Implementations live beside their code and are imported lazily by dotted
name ("module:function"), so importing the registry costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

from .errors import UnsupportedOpError, UsageError


def _resolve(dotted: str):
    mod, fn = dotted.split(":")
    return getattr(import_module(mod), fn)


@dataclass(frozen=True)
class Runtime:
    name: str
    description: str
    check_op: str  # "module:function" taking (graph, op) -> None | reason string
    help: str = ""                      # one line for the CLI's --runtime help
    kind: str = "firmware"              # "firmware": a C project built and flashed; "package": installed
    engine: str | None = None           # module writing the model's C: generate_model_sources,
    #                                     kernel_sources(), include_dirs()
    firmware: tuple[str, ...] = ()      # extra files of firmware/ its projects compile
    project_facts: str | None = None    # "module:function" (graph, tflite bytes) -> template facts
    extra_stack_bytes: int = 0          # added to a project's main stack (ESP-IDF)
    host_board: str | None = None       # "module:function" (model, work_dir, force) -> emulated board
    deploy: str | None = None           # "module:function": the pipeline's steps for kind "package"

    def op_checker(self):
        return _resolve(self.check_op)

    def resolve(self, attr: str):
        """The function named by one of this entry's dotted fields (None when unset)."""
        dotted = getattr(self, attr)
        return _resolve(dotted) if dotted else None

    def engine_module(self):
        return import_module(self.engine) if self.engine else None


RUNTIMES: dict[str, Runtime] = {
    "aot": Runtime(
        "aot",
        "tinyedge's ahead-of-time C engine: the graph compiled to plain C calls into int8 kernels",
        "tinyedge.aot.support:check_op",
        help="tinyedge's ahead-of-time C engine",
        engine="tinyedge.aot",
        firmware=("runtime/te_runtime_aot.c",),
        host_board="tinyedge.emulation:aot_host_board",
    ),
    "tflm": Runtime(
        "tflm",
        "TensorFlow Lite Micro: the flatbuffer interpreted on the device",
        "tinyedge.tflm_support:check_op",
        help="TensorFlow Lite Micro interprets the flatbuffer",
        project_facts="tinyedge.project:tflm_facts",
        extra_stack_bytes=8192,
        host_board="tinyedge.emulation:tflm_host_board",
    ),
    "micropython": Runtime(
        "micropython",
        "a MicroPython package: the aot engine's graph as @micropython.viper code (or a native module)",
        "tinyedge.micropython.viper:check_op",
        help="a MicroPython package installed with mpremote on a board that runs MicroPython",
        kind="package",
        deploy="tinyedge.micropython.deploy:deploy",
    ),
}


def runtime_names() -> list[str]:
    """The runtimes in registry order (the CLI's --runtime choices)."""
    return list(RUNTIMES)


def runtime_help() -> str:
    return "; ".join(f"{r.name}: {r.help}" for r in RUNTIMES.values()) + "."


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
