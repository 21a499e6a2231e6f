"""`deploy`: the whole pipeline, model file to validated board, in one call.

    convert -> generate -> build -> flash (or start the emulated board) -> validate -> report.json

Every step's artifact lands in one folder (`build/<model>-<board>/` by
default) and each step's wall time is reported.  A second run reuses what is
still valid: the conversion (keyed by the source model, calibration data and
options) and the incremental firmware build.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import time
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from pathlib import Path

from . import __version__
from .boards import get_board
from .errors import InputFileError, ToolMissingError, UsageError
from .fsutil import atomic_write_json, check_output_dir, made_dir
from .graph import is_tflite_bytes, load_tflite

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
StepHook = Callable[[str], None]

CACHE_FILE = "deploy-cache.json"


def _sha256_path(p: Path) -> str:
    h = hashlib.sha256()
    if p.is_dir():
        for f in sorted(x for x in p.rglob("*") if x.is_file()):
            h.update(str(f.relative_to(p)).encode())
            h.update(f.read_bytes())
    else:
        h.update(p.read_bytes())
    return h.hexdigest()


def default_output_dir(model: Path, board_id: str, runtime: str = "aot") -> Path:
    """build/<model>-<board>-<runtime>/: one deploy, one folder (an aot and a tflm deploy never share one)."""
    stem = model.name if model.is_dir() else model.stem
    return Path("build") / f"{stem}-{board_id}-{runtime}"


class _Steps:
    def __init__(self, hook: StepHook | None):
        self.items: list[dict] = []
        self.hook = hook

    @contextmanager
    def step(self, name: str):
        if self.hook:
            self.hook(name)
        rec = {"name": name, "seconds": 0.0}
        t0 = time.perf_counter()
        try:
            yield rec
        finally:
            rec["seconds"] = round(time.perf_counter() - t0, 3)
            self.items.append(rec)


def _is_tflite(model: Path) -> bool:
    if model.is_dir():
        return False
    with model.open("rb") as f:
        return is_tflite_bytes(f.read(8))


def deploy(
    model: str | Path,
    *,
    board: str | None = None,
    runtime: str | None = None,
    port: str | None = None,
    data: str | Path | None = None,
    calib: str | Path | None = None,
    samples: int | None = None,
    out: str | Path | None = None,
    force: bool = False,
    timeout: float = 10.0,
    progress: Progress | None = None,
    on_step: StepHook | None = None,
    convert_options: dict | None = None,
    baud: int | None = None,
    on_status: StepHook | None = None,
    compress=None,
    train: str | Path | None = None,
    val: str | Path | None = None,
    train_progress: Progress | None = None,
    backend: str = "auto",
    name: str | None = None,
    micropython_dir: str | Path | None = None,
    weights: str = "auto",
    schedule: str = "auto",
    per_layer: bool = False,
    per_layer_runs: int = 5,
    task: str | None = None,
    top_k: tuple[int, ...] | None = None,
) -> dict:
    """Convert, generate, build, flash and validate; return the report (also written to report.json).

    With `compress` (a `tinyedge.compress.Options`) and `train` data, the model is compressed first
    (`tinyedge.compress`, into the artifacts folder) and the compression report goes into
    report.json under "compression", with the board's latency and accuracy.

    `convert_options` are keyword arguments of `tinyedge.conversion.convert` (samples, trust_code);
    `calib` is given on its own.  A folder this call made is removed again when it fails before
    anything but the marker was written into it.  `weights`: the aot runtime's weight storage policy
    (auto, dense, palette, sparse, int4).  `task` (classify, anomaly, regress) overrides the detected
    kind of model for the report's metrics, `top_k` the k of its top-k accuracies.  `schedule`
    (aot): `auto` or `layer` (tinyedge.stream; a `per_layer` build is always op by op).  report.html is
    written beside report.json.  `per_layer`: build the firmware with the per-op profiler and add
    `per_layer` and `profile` (tinyedge.profile.profile_device, `per_layer_runs` runs of the first
    input) to the report.
    """
    model = Path(model).expanduser().resolve()
    if not model.exists():
        raise InputFileError(f"{model} does not exist", path=model, hint="check the path")
    b = get_board(board)
    runtime = runtime or ("aot" if "aot" in b.runtimes else b.runtimes[0])
    if runtime not in b.runtimes:
        raise UsageError(f"board {b.id} does not support runtime {runtime!r}",
                         hint=f"use one of: {', '.join(b.runtimes)}")
    if per_layer:
        from .runtimes import get_runtime

        if runtime != "micropython" and (get_runtime(runtime).kind != "firmware" or b.micropython):
            raise UsageError(f"--per-layer runs on tinyedge firmware and MicroPython packages, not on {b.id} "
                             f"({runtime})",
                             hint="drop --per-layer, or deploy to a firmware board (qemu-cortex-m4, host, ...)")
    outdir = check_output_dir(Path(out) if out else default_output_dir(model, b.id, runtime), force=force)
    with made_dir(outdir, f"tinyedge deploy of {model.name} to {b.id} ({runtime})"):
        return _deploy(model, b, runtime=runtime, port=port, data=data, calib=calib, samples=samples,
                       outdir=outdir, timeout=timeout, progress=progress, on_step=on_step,
                       convert_options=dict(convert_options or {}), baud=baud, on_status=on_status,
                       compress=compress, train=train, val=val, train_progress=train_progress,
                       backend=backend, name=name, micropython_dir=micropython_dir, weights=weights,
                       schedule=schedule, task=task, top_k=top_k, per_layer=per_layer, per_layer_runs=per_layer_runs)


def _deploy(model: Path, b, *, runtime, port, data, calib, samples, outdir: Path, timeout, progress, on_step,
            convert_options: dict, baud, on_status, compress=None, train=None, val=None,
            train_progress=None, backend: str = "auto", name: str | None = None,
            micropython_dir=None, weights: str = "auto", task=None, top_k=None, per_layer: bool = False,
            per_layer_runs: int = 5, schedule: str = "auto") -> dict:
    if data is not None:
        # Check the test data now, not after minutes of converting and building.
        from .data import load_data

        load_data(data, samples=samples)
    # A report describes one finished deploy: an earlier one must not outlive a new run that fails.
    (outdir / "report.json").unlink(missing_ok=True)
    steps = _Steps(on_step)
    notes: list[str] = []
    report: dict = {"board": b.id, "runtime": runtime}
    if b.emulated and port is not None:
        notes.append(f"--port {port} was ignored: {b.id} is an emulated board, started here with a port of its own")
        port = None
    if compress is not None:
        if train is None:
            raise UsageError("compression options need training data", hint="pass --train train.npz")
        if _is_tflite(model):
            raise UsageError(f"{model.name} is a .tflite; compression needs the Keras model",
                             hint="pass the .h5 or .keras file")
        with steps.step("compress") as st:
            from .compress import compress as run_compress

            # the deploy folder is tinyedge's own: a second run replaces its compressed model
            crep = run_compress(model, train, val=val if val is not None else data, out=outdir / "compressed.h5",
                                options=compress, progress=train_progress, force=True,
                                trust_code=bool(convert_options.get("trust_code")))
            st["note"] = " -> ".join(crep["methods"]["order"])
        report["compression"] = crep
        model = outdir / "compressed.h5"

    # 1. convert (or check) the model, reusing an earlier conversion when nothing changed.
    tflite = outdir / "model.tflite"
    float_model = None
    with steps.step("convert") as st:
        if _is_tflite(model):
            load_tflite(model)  # checks it parses
            if not tflite.exists() or _sha256_path(tflite) != _sha256_path(model):
                shutil.copyfile(model, tflite.with_suffix(".tmp"))
                tflite.with_suffix(".tmp").replace(tflite)
            st["note"] = "given a .tflite: checked, not converted"
            ignored = [n for n, v in (("--calib", calib), ("--calib-samples", convert_options.get("samples")),
                                      ("--trust-code", convert_options.get("trust_code"))) if v]
            if ignored:
                notes.append(f"{', '.join(ignored)} ignored: {model.name} is already a .tflite, not converted")
        else:
            float_model = model
            calib_src = Path(calib) if calib else (Path(data) if data else None)
            if calib is None and data is not None:
                notes.append("no --calib: calibrated on the --data inputs; pass --calib for held-out "
                             "calibration data")
            key = {
                "model": _sha256_path(model),
                "calib": _sha256_path(calib_src) if calib_src else None,
                "options": {k: v for k, v in sorted(convert_options.items()) if k != "calib"},
                "tinyedge": __version__,
            }
            cache = outdir / CACHE_FILE
            cached = json.loads(cache.read_text()) if cache.exists() else None
            if cached == key and tflite.exists():
                st["note"] = "reused the earlier conversion"
            else:
                from .conversion import convert

                res = convert(model, out=tflite, calib=calib_src,
                              **{k: v for k, v in convert_options.items() if k != "calib"})
                notes.extend(getattr(res, "warnings", []) or [])
                atomic_write_json(cache, key)
    graph = load_tflite(tflite)
    report["model"] = {"path": str(model), "sha256": graph.sha256, "tflite_bytes": graph.size_bytes,
                       "tflite": str(tflite)}
    from .report_html import write_report
    from .validation import add_float_outputs, prepare_inputs, validate_device

    inputs = prepare_inputs(graph, data, samples)  # the data must fit the model before we build
    inputs.task, inputs.top_k = task, top_k

    from .runtimes import get_runtime

    rt = get_runtime(runtime)
    if rt.kind == "package":
        # a runtime installed onto a running interpreter: its own generate / install / validate steps
        add_float_outputs(inputs, graph, float_model, trust_code=convert_options.get("trust_code", False),
                          note="no float model: the input was a .tflite")
        float_acc = None
        try:
            rt.resolve("deploy")(board=b, tflite=tflite, graph=graph, inputs=inputs, outdir=outdir, port=port,
                                 timeout=timeout, steps=steps, notes=notes, report=report,
                                 float_accuracy=float_acc, progress=progress, backend=backend, name=name,
                                 micropython_dir=micropython_dir, baud=baud,
                                 **({"per_layer_runs": per_layer_runs} if per_layer else {}))
        finally:
            report["steps"] = steps.items
        report["notes"] = notes
        from .validation import tool_versions

        report["versions"] = tool_versions(_toolchain_versions(b))
        report["artifacts"] = {"dir": str(outdir), "package": str(outdir / "package"),
                               "report": str(outdir / "report.json")}
        write_report(outdir / "report.json", report)
        return report

    # 2. generate the firmware project.
    project = outdir / "project"
    with steps.step("generate"):
        from .project import generate_project

        generate_project(tflite, b, runtime=runtime, out_dir=project, force=True, weights=weights,
                         schedule="layer" if per_layer else schedule)
        if per_layer:
            from .profile import enable_profile

            enable_profile(project, graph)

    # 3. build it, and check it fits.
    with steps.step("build"):
        from .builder import build_project

        try:
            built = build_project(project)
        except ToolMissingError as e:
            # Say where the project was left, so it can be built once the tool is there.
            raise ToolMissingError(e.tool, f"{e.how}; the generated project is in {project}: build it there "
                                           f"once that is done ('tinyedge build {project}')") from None
    report["memory"] = _memory_section(built, b)

    report["artifacts"] = {"dir": str(outdir), "project": str(project), "report": str(outdir / "report.json")}
    # 4. flash it, or start the emulated board.
    if not b.emulated and port is None:
        port = _find_port(b)
        if port is None:
            report.update(_not_validated(steps, notes, b, project))
            write_report(outdir / "report.json", report)
            return report
    with ExitStack() as stack:
        with steps.step("flash") as st:
            from .flashers.dispatch import flash_project

            result = flash_project(project, port=port, board=b)
            stack.callback(result.close)
            st["note"] = result.port
        # 5. validate on the board.
        with steps.step("validate"):
            from .link import Device

            float_acc = None
            dev = stack.enter_context(Device(result.port, timeout=timeout, on_status=on_status,
                                                **({"baud": baud} if baud else {})))
            add_float_outputs(inputs, graph, float_model, trust_code=convert_options.get("trust_code", False),
                              note="no float model: the input was a .tflite")
            v = validate_device(dev, tflite, inputs=inputs, float_accuracy=float_acc,
                                progress=progress)
        if per_layer and v.get("interrupted"):
            notes.append("interrupted: the per-layer profile was not run")
        elif per_layer:
            with steps.step("per-layer"):
                from .profile import keras_layers, profile_device

                prof = profile_device(dev, tflite, inputs.xq[0], runs=per_layer_runs,
                                      layers=keras_layers(float_model) if float_model is not None else None)
                report["per_layer"] = prof["per_layer"]
                report["profile"] = prof["profile"]
    report.update({k: v[k] for k in ("samples", "samples_requested", "interrupted", "inputs", "agreement", "accuracy", "metrics", "latency")})
    if "compression" in report:
        report["compression"]["on_device"] = {"board": b.id, "latency": v["latency"],
                                              "accuracy_device": (v["accuracy"] or {}).get("device"),
                                              "bit_exact_rate": (v["agreement"] or {}).get("bit_exact_rate")}
    notes.extend(v.get("notes", []))
    report["steps"] = steps.items
    report["notes"] = notes
    from .validation import tool_versions

    report["versions"] = tool_versions(_toolchain_versions(b))
    write_report(outdir / "report.json", report)
    return report


def _first_line(cmd: list[str]) -> str | None:
    exe = shutil.which(cmd[0])
    if exe is None:
        return None
    try:
        r = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = (r.stdout or r.stderr).strip().splitlines()
    return lines[0].strip() if lines else None


def _toolchain_versions(b) -> dict:
    """Versions of the compiler (and emulator) this deploy used, for the report."""
    v: dict[str, str | None] = {}
    if b.toolchain is not None:
        cc = b.toolchain.cross + "gcc"
        v[cc] = _first_line([cc, "-dumpversion"])
    elif b.family == "micropython":
        try:
            from importlib import metadata

            v["mpremote"] = metadata.version("mpremote")
        except Exception:  # noqa: BLE001 - a version is informative only
            v["mpremote"] = None
    elif b.family == "host":
        v["cc"] = _first_line(["cc", "--version"])
    if b.is_qemu or (b.micropython and b.micropython.emulator == "qemu"):
        from .qemu import qemu_binary

        exe = qemu_binary(b)[0] if b.is_qemu else "qemu-system-arm"
        v[exe] = _first_line([exe, "--version"])
    return v


def _memory_section(built, b) -> dict:
    mem = getattr(built, "memory", None) or {}
    if not isinstance(mem, dict):
        mem = mem.to_dict() if hasattr(mem, "to_dict") else dict(vars(mem))
    return {
        "flash_bytes": mem.get("flash_bytes"),
        "ram_bytes": mem.get("ram_bytes"),
        "arena_bytes": mem.get("arena_bytes"),
        "board_flash_bytes": b.flash_bytes,
        "board_ram_bytes": b.ram_bytes,
    }


def _find_port(b, records=None) -> str | None:
    """The one attached board's port; None when no board is attached; an error when several are."""
    from .ports import NoPortFound, list_ports, pick_port

    try:
        port = pick_port(b, records)
    except NoPortFound:
        return None
    only = set(getattr(b.flash, "flash_only_usb_ids", ()) or ())
    info = next((p for p in list_ports(records) if p.device == port), None)
    if info is not None and info.usb_id in only:
        raise UsageError(
            f"{b.id} is attached only by its USB-Serial/JTAG port {port} ({info.usb_id}), and tinyedge's "
            "firmware talks on UART0, not on that port: it could be flashed there but never validated",
            hint=f"connect the board's UART port (its USB-UART bridge, or an adapter on UART0) and pass it with "
                 f"--port; to flash only, run 'tinyedge flash PROJECT --port {port}'")
    return port


def _not_validated(steps, notes, b, project) -> dict:
    """The report of a deploy that built the firmware but found no board to flash."""
    import shlex

    flash_cmd = f"tinyedge flash {shlex.quote(str(project))} --port PORT"
    notes.append(f"{b.id} is a real board and no --port was given (and none was found): built, not flashed")
    return {"status": "built, not flashed", "flashed": False, "samples": 0, "interrupted": False,
            "agreement": None, "accuracy": {"float": None, "int8_host": None, "device": None},
            "latency": None, "steps": steps.items, "notes": notes,
            "next": {"flash": flash_cmd, "validate": f"tinyedge validate {shlex.quote(str(project.parent / 'model.tflite'))} --port PORT"}}
