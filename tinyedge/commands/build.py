"""`tinyedge build`: build a generated project with its board's toolchain; show the memory report."""

from __future__ import annotations

import click

from ..console import emit_json, result, warn
from ._common import json_option


@click.command("build")
@click.argument("project", type=click.Path(path_type=str))
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=None, help="Parallel compile jobs.")
@json_option
def command(project, jobs, as_json):
    """Build PROJECT (made by 'tinyedge generate'); output goes to PROJECT/build/.

    A firmware that does not fit the board is an error with the numbers. A
    missing toolchain is an error that says how to install it; the project is
    left in place.
    """
    from pathlib import Path

    from ..builder import build_project
    from ..console import Steps

    with Steps(enabled=not as_json, off_terminal=False) as steps:
        steps.start("build", Path(project).name)
        r = build_project(project, jobs=jobs)
    if as_json:
        emit_json(r.to_dict())
        return
    for w in r.warnings:
        warn(w)
    main = r.artifacts.get("elf") or r.artifacts.get("exe") or next(iter(r.artifacts.values()), None)
    result(f"built {r.project} for {r.board} (runtime {r.runtime}) in {r.seconds:.1f} s: {main}")
    if r.memory is not None:
        m = r.memory
        result(f"memory: {m.summary()}")
        result(f"  text {m.text:,}  rodata {m.rodata:,}  data {m.data:,}  bss {m.bss:,}  stack {m.stack:,}"
             + (f"  ({m.arena_symbol} {m.arena_bytes:,})" if m.arena_symbol else ""))
