"""`deploy` for runtime micropython: generate the package, install it, validate through the REPL.

Called by `tinyedge.pipeline.deploy` (through the runtime registry) after the
model is converted and the inputs prepared; it fills the same report as the
C firmware path: steps, memory, and the validation section.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import UsageError

log = logging.getLogger(__name__)


def deploy(*, board, tflite: Path, graph, inputs, outdir: Path, port: str | None, timeout: float, steps,
           notes: list[str], report: dict, float_accuracy=None, progress=None, backend: str = "auto",
           name: str | None = None, micropython_dir=None, baud: int | None = None,
           per_layer_runs: int | None = None) -> dict:
    """The generate / install / validate steps of a MicroPython deploy; returns the report.
    `per_layer_runs` (deploy --per-layer): a profile package, and after the validation the first
    input profiled op by op that many runs (report: `per_layer`, `profile`)."""
    from ..validation import validate_device
    from .boards import start_board
    from .package import generate_package, module_name
    from .session import MicroPythonDevice

    spec = board.micropython
    if spec is None:
        raise UsageError(f"board {board.id} says nothing about MicroPython", hint="add a [micropython] table")
    name = name or module_name(report["model"]["path"])
    pkg_dir = outdir / "package"
    with steps.step("generate") as st:
        res = generate_package(tflite, pkg_dir, arch=spec.arch, name=name, backend=backend, board=board.id,
                               mpy_dir=micropython_dir, force=True, profile=per_layer_runs is not None)
        st["note"] = f"{name} ({res.backend}, {spec.arch}): {res.package_bytes:,} bytes"
    notes.extend(res.notes)
    handle = None
    if port is None:
        if not spec.emulator:
            notes.append(f"{board.id} is a real board and no --port was given: the package is in {pkg_dir}; "
                         f"install it with 'mpremote cp -r {pkg_dir / name} :' or run deploy again with --port.")
            report.update({"samples": 0, "interrupted": False, "agreement": None, "latency": None,
                           "accuracy": {"float": None, "int8_host": None, "device": None},
                           "memory": {"flash_bytes": res.package_bytes, "ram_bytes": None,
                                      "arena_bytes": res.arena_bytes}})
            return report
        with steps.step("start") as st:
            handle = start_board(board, micropython_dir)
            port = handle.port
            st["note"] = port
    dev = None
    try:
        dev = MicroPythonDevice(port, board=board, name=name, timeout=timeout, baud=baud or board.uart.baud,
                                boot_script=getattr(handle, "boot_script", None), process=handle)
        handle = None
        with steps.step("install") as st:
            dev._pkg_bytes = res.package_bytes
            installed = dev.install(pkg_dir, name)
            st["note"] = f"{installed:,} bytes to {name}/"
        with steps.step("validate"):
            info = dev.open_model()
            v = validate_device(dev, tflite, inputs=inputs, float_accuracy=float_accuracy, progress=progress)
        if per_layer_runs is not None and v.get("interrupted"):
            notes.append("interrupted: the per-layer profile was not run")
        elif per_layer_runs is not None:
            from ..profile import keras_layers, profile_device

            with steps.step("per-layer"):
                prof = profile_device(dev, tflite, inputs.xq[0], runs=per_layer_runs,
                                      layers=keras_layers(report["model"]["path"]))
            report["per_layer"] = prof["per_layer"]
            report["profile"] = prof["profile"]
        report["device"] = info.to_dict()
        report["link"] = dict(vars(dev.stats))
    finally:
        if dev is not None:
            dev.close()
        if handle is not None:
            handle.close()
    report["memory"] = {
        "flash_bytes": installed,
        "ram_bytes": info.heap_bytes,
        "arena_bytes": res.arena_bytes,
        "const_bytes": res.const_bytes,
        "heap_free_bytes": info.heap_free,
        "board_flash_bytes": board.flash_bytes,
        "board_ram_bytes": board.ram_bytes,
        "weights": ("in the board's heap: the .mpy loader copies the constants of _model.mpy into RAM once "
                    "when the package is imported (ram_bytes includes them and the arena)"),
    }
    report.update({k: v[k] for k in ("samples", "samples_requested", "interrupted", "inputs", "agreement",
                                     "accuracy", "metrics", "latency")})
    report["backend"] = info.backend
    notes.extend(v.get("notes", []))
    return report


def profile(*, board, tflite: Path, graph, x, model_path: Path, outdir: Path, port: str | None, timeout: float,
            runs: int, layers=None, fault_op: int | None = None, backend: str = "auto", name: str | None = None,
            micropython_dir=None, baud: int | None = None, progress=None, step=lambda name: None) -> dict:
    """`tinyedge profile` on a MicroPython board: a profile package (its native module with the per-op
    profiler; the viper code profiled from Python on the board), installed and profiled op by op
    (tinyedge.profile.profile_device over the raw REPL).  Returns the report's board-side part."""
    from ..profile import profile_device
    from .boards import start_board
    from .package import generate_package, module_name
    from .session import MicroPythonDevice

    spec = board.micropython
    if spec is None:
        raise UsageError(f"board {board.id} says nothing about MicroPython", hint="add a [micropython] table")
    name = name or module_name(model_path)
    pkg_dir = outdir / "package"
    step("generate")
    res = generate_package(tflite, pkg_dir, arch=spec.arch, name=name, backend=backend, board=board.id,
                           mpy_dir=micropython_dir, force=True, profile=True, fault_op=fault_op)
    handle = None
    if port is None:
        if not spec.emulator:
            raise UsageError(f"{board.id} is a real board and no --port was given",
                             hint=f"attach it and pass --port (its MicroPython's REPL); the package is in {pkg_dir}")
        step("start")
        handle = start_board(board, micropython_dir)
        port = handle.port
    dev = None
    try:
        dev = MicroPythonDevice(port, board=board, name=name, timeout=timeout, baud=baud or board.uart.baud,
                                boot_script=getattr(handle, "boot_script", None), process=handle)
        handle = None
        step("install")
        dev._pkg_bytes = res.package_bytes
        installed = dev.install(pkg_dir, name)
        info = dev.open_model()
        step("profile")
        prof = profile_device(dev, tflite, x, runs=runs, layers=layers, progress=progress)
        unit, per = dev._unit()
    finally:
        if dev is not None:
            dev.close()
        if handle is not None:
            handle.close()
    notes = list(res.notes) + list(info.notes)
    notes.append(f"per-op counts from time.{spec.ticks}() (resolution {per:,} {unit}); backend {info.backend}: "
                 + ("the native module's hooks time each op in C" if info.backend == "natmod"
                    else "each op's viper kernel timed from Python on the board"))
    loop = prof["profile"].get("whole_session_loop")
    if loop and abs(loop / prof["profile"]["whole"] - 1.0) > 0.02:
        notes.append(f"the session's streaming loop timed the same inference at {loop:,.0f} {unit} "
                     f"({(loop / prof['profile']['whole'] - 1) * 100:+.1f}% against the plain runs timed beside the "
                     "ops, the anchor of the sum); seen on the QEMU port after a profiled run, cause not known")
    cov = prof["profile"]["coverage"]
    if cov is not None and abs(cov - 1.0) > 0.02:
        notes.append(f"the ops add up to {cov * 100:.1f}% of the whole inference: the rest is the package's "
                     "input/output copies and the call glue between ops, and the counter's resolution")
    return {"backend": info.backend, "device": info.to_dict(), "profile_part": prof, "notes": notes,
            "package": str(pkg_dir / name),
            "memory": {"flash_bytes": installed, "ram_bytes": info.heap_bytes, "arena_bytes": res.arena_bytes,
                       "const_bytes": res.const_bytes, "heap_free_bytes": info.heap_free,
                       "board_flash_bytes": board.flash_bytes, "board_ram_bytes": board.ram_bytes}}
