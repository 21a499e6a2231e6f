"""`tinyedge generate`: a firmware project (or, without --board, just the aot model sources)."""

from __future__ import annotations

import click

from ..console import emit_json, info
from ._common import force_option, json_option


@click.command("generate")
@click.argument("model", type=click.Path(path_type=str))
@click.option("--board", "-b", "board_id", default=None, metavar="BOARD",
              help="Board id (see 'tinyedge boards'). Without it, --runtime aot writes only the model's C.")
@click.option("--runtime", "-r", type=click.Choice(["aot", "tflm"]), default="aot", show_default=True,
              help="aot: the graph compiled to C; tflm: TensorFlow Lite Micro interprets the flatbuffer.")
@click.option("--output", "-o", "out_dir", required=True, type=click.Path(path_type=str),
              help="Output folder (made by tinyedge, or empty; see --force).")
@click.option("--prefix", default="te_model", show_default=True, help="Prefix of the generated model's C symbols.")
@click.option("--weights", "-w", type=click.Choice(["auto", "dense", "palette", "sparse", "int4"]), default="auto",
              show_default=True,
              help="aot: storage of the conv/FC weights: auto picks per tensor the smallest storage within 5% "
                   "of dense's instructions; palette (16/4 values per channel), sparse (bit mask), int4, dense.")
@force_option
@json_option
def command(model, board_id, runtime, out_dir, prefix, weights, force, as_json):
    """Write a firmware project for MODEL (.tflite, or a Keras model converted first) into -o DIR.

    Build it with 'tinyedge build DIR', or with the board's own tools (make,
    cmake, idf.py) as the project's README says.
    """
    from pathlib import Path

    if board_id is None:
        if runtime != "aot":
            from ..errors import UsageError

            raise UsageError("--runtime tflm needs a board", hint="add --board B (see 'tinyedge boards')")
        from ..aot import generate_model_sources
        from ..fsutil import staged_dir
        from ..project import PREFIX_RE

        if not PREFIX_RE.match(prefix):
            from ..errors import UsageError

            raise UsageError(f"prefix {prefix!r} is not a valid C identifier prefix",
                             hint="use lower-case letters, digits and '_', starting with a letter")
        src = Path(model).expanduser().resolve()
        with staged_dir(out_dir, force=force, what="tinyedge aot model sources") as stage:
            res = generate_model_sources(src, stage, prefix=prefix, weights=weights)
        final = Path(out_dir).expanduser().resolve()
        files = sorted(str(final / Path(f).name) for f in res.files)
        if as_json:
            emit_json({"output": str(final), "files": files, "arena_bytes": res.arena_bytes,
                       "const_bytes": res.const_bytes, "ops": res.op_count, "sha256": res.sha256,
                       "weights": res.storage})
        else:
            info(f"wrote {', '.join(Path(f).name for f in files)} to {final} "
                 f"(arena {res.arena_bytes:,} B, constants {res.const_bytes:,} B, {res.op_count} ops)")
        return

    from ..boards import get_board
    from ..project import generate_project, read_project

    board = get_board(board_id)
    path = generate_project(model, board, runtime, out_dir, force=force, prefix=prefix, weights=weights)
    meta = read_project(path)
    if as_json:
        emit_json({"output": str(path), **meta})
    else:
        info(f"wrote the {runtime} project for {board.id} to {path}; build it with: tinyedge build {path}")
