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
    return click.option("--runtime", "-r", type=click.Choice(names), default="aot", show_default=True,
                        help=helps + ".")
