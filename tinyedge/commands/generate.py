"""`tinyedge generate`: a firmware project (or, without --board, the aot model sources that compile alone)."""

from __future__ import annotations

import click

from ..console import emit_json, result
from ._common import (
    backend_option,
    convert_options,
    default_runtime,
    force_option,
    json_option,
    keras_options,
    mpy_dir_option,
    name_option,
    output_option,
    runtime_option,
    schedule_option,
    warn_ignored_calib,
)


def default_output(model: str, board_id: str | None, runtime: str) -> str:
    from pathlib import Path

    p = Path(model)
    stem = p.name if p.is_dir() else p.stem
    return str(Path("build") / (f"{stem}-{board_id}-{runtime}-project" if board_id else f"{stem}-aot-sources"))


@click.command("generate")
@click.argument("model", type=click.Path(path_type=str))
@click.option("--board", "-b", "board_id", default=None, metavar="BOARD",
              help="Board id (see 'tinyedge boards'). Without it, --runtime aot writes the model's C with the "
                   "kernels it needs, to build into your own firmware.")
@runtime_option()
@output_option("out_dir", help="Output folder (made by tinyedge, or empty; see --force); default: "
               "build/<model>-<board>-<runtime>-project, or build/<model>-aot-sources without --board.")
@click.option("--prefix", default="te_model", show_default=True, help="Prefix of the generated model's C symbols.")
@click.option("--protocol", type=click.Choice(["tinyedge", "mlperf"]), default="tinyedge", show_default=True,
              help="What the firmware speaks on the UART: tinyedge's framed protocol, or the MLPerf Tiny runner's.")
@click.option("--weights", "-w", type=click.Choice(["auto", "dense", "palette", "sparse", "int4"]), default="auto",
              show_default=True,
              help="aot: storage of the conv/FC weights: palette (16/4 values per channel), sparse (bit mask, zeros "
                   "skipped), int4, dense; auto picks per tensor within 5% of dense's instructions.")
@schedule_option
@click.option("--per-layer", is_flag=True, default=False,
              help="A profile build: the per-op profiler compiled in (what 'tinyedge profile' and 'deploy "
                   "--per-layer' build and talk to); for runtime micropython, a profile package.")
@keras_options
@backend_option
@name_option
@mpy_dir_option
@force_option
@json_option
def command(model, board_id, runtime, out_dir, prefix, protocol, weights, schedule, per_layer, calib, calib_samples,
            trust_code, backend, name, micropython_dir, force, as_json):
    """Write a firmware project for MODEL (.tflite, or a Keras model converted first) into -o DIR.

    Build it with 'tinyedge build DIR', or with the board's own tools (make,
    cmake, idf.py) as the project's README says.
    """
    from pathlib import Path

    from ..boards import get_board
    from ..runtimes import get_runtime

    opts = convert_options(calib, calib_samples, trust_code)
    warn_ignored_calib(model, opts)
    board = get_board(board_id) if board_id else None
    runtime = runtime or default_runtime(board)
    if out_dir is None:
        out_dir = default_output(model, board_id, runtime)
    rt = get_runtime(runtime)
    if rt.kind == "package":
        _package(model, board, runtime, out_dir, backend, name, micropython_dir, force, as_json, opts,
                 profile=per_layer)
        return
    if per_layer and (board_id is None or protocol != "tinyedge"):
        from ..errors import UsageError

        raise UsageError("--per-layer needs a board and the tinyedge protocol (the profiler answers its PROFILE "
                         "requests)", hint="add --board B, and drop --protocol mlperf")
    if board_id is None:
        if protocol != "tinyedge":
            from ..errors import UsageError

            raise UsageError("--protocol needs a board", hint="add --board B (see 'tinyedge boards')")
        if rt.engine is None:
            from ..errors import UsageError

            raise UsageError(f"--runtime {runtime} needs a board", hint="add --board B (see 'tinyedge boards')")
        from ..aot.sources import write_model_sources

        res = write_model_sources(model, out_dir, prefix=prefix, force=force, convert_options=opts,
                                  engine=rt.engine_module(), weights=weights, schedule=schedule)
        if as_json:
            emit_json(res)
        else:
            names = ", ".join(Path(f).name for f in res["files"])
            result(f"wrote {names} to {res['output']} (arena {res['arena_bytes']:,} B, constants "
                   f"{res['const_bytes']:,} B, {res['ops']} ops); they compile on their own: "
                   f"cd {res['output']} && {res['build']}")
        return

    from ..project import generate_project, read_project

    if per_layer:
        from ..profile import generate_profile_project

        path = generate_profile_project(model, board, runtime, out_dir, force=force, weights=weights, prefix=prefix,
                                        convert_options=opts)
    else:
        path = generate_project(model, board, runtime, out_dir, force=force, prefix=prefix, convert_options=opts,
                                protocol=protocol, weights=weights, schedule=schedule)
    meta = read_project(path)
    if as_json:
        emit_json({"output": str(path), **meta, "per_layer": per_layer})
    else:
        what = "profile project" if per_layer else "project"
        result(f"wrote the {runtime} {what} for {board.id} to {path}; build it with: tinyedge build {path}")


def _package(model, board, runtime, out_dir, backend, name, micropython_dir, force, as_json, opts, profile=False):
    """Runtime micropython: the package folder (and package.json) for the board's MicroPython arch."""
    import tempfile
    from pathlib import Path

    from ..errors import UsageError
    from ..micropython.package import generate_package, module_name
    from ..project import _load_model

    if board is None or board.micropython is None:
        raise UsageError(f"--runtime {runtime} needs a board that says its MicroPython arch",
                         hint="add --board B (e.g. esp32, rpi-pico, micropython-unix; see 'tinyedge boards')")
    if runtime not in board.runtimes:
        raise UsageError(f"board {board.id} does not support runtime {runtime!r}",
                         hint=f"use one of: {', '.join(board.runtimes)}")
    src = Path(model).expanduser().resolve()
    name = name or module_name(src)
    with tempfile.TemporaryDirectory(prefix="tinyedge-model-") as tmp:
        model_path, tflite = _load_model(src, Path(tmp), opts)
        tfl = Path(tmp) / (module_name(model_path) + ".tflite")
        tfl.write_bytes(tflite)
        res = generate_package(tfl, out_dir, arch=board.micropython.arch, name=name, backend=backend,
                               board=board.id, mpy_dir=micropython_dir, force=force, profile=profile)
    if as_json:
        emit_json(res.to_dict())
    else:
        result(f"wrote the MicroPython package {res.name} ({res.backend}, {res.arch}, {res.package_bytes:,} bytes) "
               f"to {res.out_dir}; install it with: mpremote mip install {res.out_dir / 'package.json'}")
        for n in res.notes:
            result(n)
