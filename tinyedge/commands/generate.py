"""`tinyedge generate`: a firmware project (or, without --board, just the aot model sources)."""

from __future__ import annotations

import click

from ..console import emit_json, info
from ._common import (
    backend_option,
    default_runtime,
    force_option,
    json_option,
    mpy_dir_option,
    name_option,
    runtime_option,
)


@click.command("generate")
@click.argument("model", type=click.Path(path_type=str))
@click.option("--board", "-b", "board_id", default=None, metavar="BOARD",
              help="Board id (see 'tinyedge boards'). Without it, --runtime aot writes only the model's C.")
@runtime_option()
@click.option("--output", "-o", "out_dir", required=True, type=click.Path(path_type=str),
              help="Output folder (made by tinyedge, or empty; see --force).")
@click.option("--prefix", default="te_model", show_default=True, help="Prefix of the generated model's C symbols.")
@backend_option
@name_option
@mpy_dir_option
@force_option
@json_option
def command(model, board_id, runtime, out_dir, prefix, backend, name, micropython_dir, force, as_json):
    """Write a firmware project for MODEL (.tflite, or a Keras model converted first) into -o DIR.

    Build it with 'tinyedge build DIR', or with the board's own tools (make,
    cmake, idf.py) as the project's README says.
    """
    from pathlib import Path

    from ..boards import get_board
    from ..runtimes import get_runtime

    board = get_board(board_id) if board_id else None
    runtime = runtime or default_runtime(board)
    rt = get_runtime(runtime)
    if rt.kind == "package":
        _package(model, board, runtime, out_dir, backend, name, micropython_dir, force, as_json)
        return
    if board_id is None:
        if rt.engine is None:
            from ..errors import UsageError

            raise UsageError(f"--runtime {runtime} needs a board", hint="add --board B (see 'tinyedge boards')")
        generate_model_sources = rt.engine_module().generate_model_sources
        from ..fsutil import staged_dir
        from ..project import PREFIX_RE

        if not PREFIX_RE.match(prefix):
            from ..errors import UsageError

            raise UsageError(f"prefix {prefix!r} is not a valid C identifier prefix",
                             hint="use lower-case letters, digits and '_', starting with a letter")
        src = Path(model).expanduser().resolve()
        with staged_dir(out_dir, force=force, what=f"tinyedge {runtime} model sources") as stage:
            res = generate_model_sources(src, stage, prefix=prefix)
        final = Path(out_dir).expanduser().resolve()
        files = sorted(str(final / Path(f).name) for f in res.files)
        if as_json:
            emit_json({"output": str(final), "files": files, "arena_bytes": res.arena_bytes,
                       "const_bytes": res.const_bytes, "ops": res.op_count, "sha256": res.sha256})
        else:
            info(f"wrote {', '.join(Path(f).name for f in files)} to {final} "
                 f"(arena {res.arena_bytes:,} B, constants {res.const_bytes:,} B, {res.op_count} ops)")
        return

    from ..project import generate_project, read_project

    path = generate_project(model, board, runtime, out_dir, force=force, prefix=prefix)
    meta = read_project(path)
    if as_json:
        emit_json({"output": str(path), **meta})
    else:
        info(f"wrote the {runtime} project for {board.id} to {path}; build it with: tinyedge build {path}")


def _package(model, board, runtime, out_dir, backend, name, micropython_dir, force, as_json):
    """Runtime micropython: the package folder (and package.json) for the board's MicroPython arch."""
    import tempfile
    from pathlib import Path

    from ..errors import UsageError
    from ..micropython.package import generate_package, module_name

    if board is None or board.micropython is None:
        raise UsageError(f"--runtime {runtime} needs a board that says its MicroPython arch",
                         hint="add --board B (e.g. esp32, rpi-pico, micropython-unix; see 'tinyedge boards')")
    if runtime not in board.runtimes:
        raise UsageError(f"board {board.id} does not support runtime {runtime!r}",
                         hint=f"use one of: {', '.join(board.runtimes)}")
    src = Path(model).expanduser().resolve()
    name = name or module_name(src)
    with tempfile.TemporaryDirectory(prefix="tinyedge-model-") as tmp:
        from ..project import _load_model

        model_path, tflite = _load_model(src, Path(tmp))
        tfl = Path(tmp) / (module_name(model_path) + ".tflite")
        tfl.write_bytes(tflite)
        res = generate_package(tfl, out_dir, arch=board.micropython.arch, name=name, backend=backend,
                               board=board.id, mpy_dir=micropython_dir, force=force)
    if as_json:
        emit_json(res.to_dict())
    else:
        info(f"wrote the MicroPython package {res.name} ({res.backend}, {res.arch}, {res.package_bytes:,} bytes) "
             f"to {res.out_dir}; install it with: mpremote mip install {res.out_dir / 'package.json'}")
        for n in res.notes:
            info(n)
