"""Flash a built project: read its records, pick the board's flasher, find the port, run it.

`flash_project(dir)` is what `tinyedge flash` and `deploy` call.  The board
comes from the project's `tinyedge-project.json` (or `board=`), the flasher
from the board's `flash.method` through the registry, and the serial port,
when it is left out for a real board, from `tinyedge.ports.pick_port`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from ..boards import Board, get_board
from ..errors import InputFileError, UsageError
from . import FlashResult, Progress, get_flasher

log = logging.getLogger("tinyedge.flashers")

PROJECT_FILE = "tinyedge-project.json"


def read_project(project_dir: os.PathLike | str) -> dict[str, Any]:
    """The project's `tinyedge-project.json` ({} when it has none)."""
    f = Path(project_dir) / PROJECT_FILE
    if not f.is_file():
        return {}
    try:
        doc = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise InputFileError(f"cannot read {f} ({e})", path=f,
                             hint="generate the project again with 'tinyedge generate MODEL --board B -o DIR'") from None
    return doc if isinstance(doc, dict) else {}


def project_board(project_dir: os.PathLike | str, board: str | Board | None = None) -> Board:
    """The board to flash: `board` if given (must match the project's), else the project's."""
    doc = read_project(project_dir)
    recorded = doc.get("board") or doc.get("board_id")
    if isinstance(recorded, dict):
        recorded = recorded.get("id")
    if isinstance(board, Board):
        chosen = board
    elif board is not None:
        chosen = get_board(board)
    elif recorded:
        return get_board(str(recorded))
    else:
        raise UsageError(f"{Path(project_dir)} does not say which board it is for (no {PROJECT_FILE})",
                         hint="pass --board")
    if recorded and str(recorded) != chosen.id:
        raise UsageError(f"{Path(project_dir)} was built for board {recorded!r}, not {chosen.id!r}",
                         hint=f"flash it with --board {recorded}, or rebuild it for {chosen.id}")
    return chosen


def flash_project(project_dir: os.PathLike | str, *, port: str | None = None,
                  progress: Progress | None = None, board: str | Board | None = None,
                  method: str | None = None, options: dict[str, Any] | None = None) -> FlashResult:
    """Flash (or, for emulated boards, start) the built firmware in `project_dir`.

    `method` overrides the board's `flash.method` (one of its `alt_methods`);
    `options` are set on the flasher when it has such an attribute (e.g.
    `use_stub=False`, `connect_attempts=2` for esptool).  Returns the
    FlashResult; its `port` is where the board now talks.
    """
    d = Path(project_dir).expanduser().resolve()
    if not d.is_dir():
        raise InputFileError(f"project folder {d} does not exist", path=d,
                             hint="generate one with 'tinyedge generate MODEL --board B -o DIR', then 'tinyedge build DIR'")
    b = project_board(d, board)
    m = method or b.flash.method
    if m != b.flash.method and m not in b.flash.alt_methods:
        known = ", ".join((b.flash.method, *b.flash.alt_methods))
        raise UsageError(f"board {b.id} is not flashed with {m!r}", hint=f"its methods are: {known}")
    flasher = get_flasher(m)
    for k, v in (options or {}).items():
        if v is not None and hasattr(flasher, k):
            setattr(flasher, k, v)
    flasher.check()
    if port is None and flasher.needs_port and not b.emulated:
        from ..ports import pick_port

        port = pick_port(b)
    log.info("flashing %s with %s%s", d, m, f" on {port}" if port else "")
    return flasher.flash(d, b, port=port, progress=progress)
