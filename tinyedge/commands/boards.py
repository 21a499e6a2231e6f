"""`tinyedge boards`: list the known boards."""

from __future__ import annotations

import click

from ..boards import DEFAULT_BOARD, FAMILIES, all_boards
from ..console import emit_json, out
from ._common import json_option


def _kb(n: int) -> str:
    return f"{n // 1024:,} KB" if n < 1 << 20 else f"{n / (1 << 20):g} MB"


@click.command("boards")
@json_option
@click.option("--family", type=click.Choice(list(FAMILIES)), help="Only this family.")
def command(as_json: bool, family: str | None):
    """List the boards tinyedge knows, with their memory, clock and how they are flashed."""
    boards = [b for b in all_boards().values() if family is None or b.family == family]
    boards.sort(key=lambda b: (b.family, b.id))
    if as_json:
        emit_json({"default": DEFAULT_BOARD, "boards": [b.to_dict() for b in boards]})
        return
    from ..console import table

    t = table(title="Boards", caption="* the default board; mpy: runtime micropython", caption_justify="left")
    for col in ("id", "cpu", "clock", "flash", "RAM", "runs", "flashed by", "latency unit"):
        # names and units never wrap; numbers wrap only before their unit
        t.add_column(col)
    family = None
    for b in boards:
        if b.family != family:
            family = b.family
            t.add_row(f"[bold]{family}[/]", end_section=False)
        name = f"{b.id} *" if b.id == DEFAULT_BOARD else b.id
        t.add_row(f"  {name}", b.cpu, f"{b.clock_hz / 1e6:g} MHz", _kb(b.flash_bytes), _kb(b.ram_bytes),
                  " ".join("mpy" if r == "micropython" else r for r in b.runtimes), b.flash.method, b.cycle_unit)
    out.print(t)
