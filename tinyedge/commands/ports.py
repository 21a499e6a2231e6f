"""`tinyedge ports`: the serial ports, their USB ids and a guess of the board behind each."""

from __future__ import annotations

import click

from ..console import emit_json, out, result
from ._common import json_option


@click.command("ports")
@json_option
@click.option("--all", "show_all", is_flag=True, help="Also list ports that do not look like a board.")
def command(as_json: bool, show_all: bool):
    """List serial ports with USB VID:PID and the board family they look like.

    `--port` can be left out of `flash` and `deploy` when exactly one likely
    board is attached.
    """
    from ..ports import list_ports

    ports = [p for p in list_ports() if show_all or p.likely_board]
    if as_json:
        emit_json({"ports": [p.to_dict() for p in ports]})
        return
    if not ports:
        result("no board-like serial ports found (plug a board in; --all lists every port)")
        return
    from ..console import table

    t = table(title="Serial ports")
    for col in ("port", "USB id", "looks like", "family", "boards", "description"):
        t.add_column(col)
    for p in ports:
        t.add_row(p.device, p.usb_id or "-", p.kind or "-", p.family or "-", ", ".join(p.boards) or "-",
                  p.description if p.description not in ("", "n/a") else "-")
    out.print(t)
