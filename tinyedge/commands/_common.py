"""Options and helpers shared by several verbs."""

from __future__ import annotations

import click

json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
board_option = click.option("--board", "-b", "board_id", default=None, metavar="BOARD",
                            help="Board id (see 'tinyedge boards'); default: qemu-cortex-m4.")
force_option = click.option("--force", is_flag=True,
                            help="Write into a non-empty output folder that tinyedge did not make.")


def existing_path(**kw):
    """A click Path for an input that must exist (a missing one exits 2 with one line)."""
    return click.Path(exists=True, dir_okay=kw.pop("dir_okay", True), file_okay=kw.pop("file_okay", True),
                      resolve_path=True, **kw)


def runtime_option(emulated: bool = False):
    """--runtime, its choices and help from the runtime registry (tinyedge/runtimes.py).

    With `emulated`, only the runtimes that have a host-emulated board."""
    from ..runtimes import RUNTIMES

    names = [r.name for r in RUNTIMES.values() if r.host_board or not emulated]
    helps = "; ".join(f"{r.name}: {r.help}" for r in RUNTIMES.values() if r.name in names)
    if emulated:
        return click.option("--runtime", "-r", type=click.Choice(names), default="aot", show_default=True,
                            help=helps + ".")
    return click.option("--runtime", "-r", type=click.Choice(names), default=None,
                        help=helps + ". Default: aot, or the board's first runtime when it has no aot.")


def default_runtime(board) -> str:
    """aot when the board runs it, else the board's first runtime (a MicroPython board's micropython)."""
    return "aot" if board is None or "aot" in board.runtimes else board.runtimes[0]


backend_option = click.option("--backend", type=click.Choice(["auto", "natmod", "viper"]), default="auto",
                              show_default=True,
                              help="Runtime micropython: the engine inside the package (natmod: the aot C "
                                   "as a native module; viper: @micropython.viper code, runs on every port; "
                                   "auto: both, the board picks natmod when it loads it).")
name_option = click.option("--name", default=None, metavar="NAME",
                           help="Runtime micropython: the package's module name (default: the model file's stem).")
mpy_dir_option = click.option("--micropython-dir", "micropython_dir", type=click.Path(file_okay=False), default=None,
                              envvar="MPY_DIR", help="Runtime micropython: a MicroPython source tree to build "
                                                     "mpy-cross and the emulated boards from (default: the pinned "
                                                     "release, fetched once into tinyedge's cache).")
