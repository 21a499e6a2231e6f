"""The `host` flasher: run the firmware built for board `host` behind a pty.

The executable's stdin/stdout are the pty's master side; `FlashResult.port`
is the slave path (a pyserial URL).  Closing the result stops the process.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import FlashError
from . import Flasher, FlashResult, Progress

log = logging.getLogger(__name__)


class HostFlasher(Flasher):
    name = "host"
    description = "run the host build of the firmware behind a pty (emulated board)"
    needs = "a host C compiler for the build (gcc or cc)"
    needs_port = False

    def check(self) -> None:
        return None

    def flash(self, project_dir: Path, board, *, port: str | None = None,
              progress: Progress | None = None) -> FlashResult:
        from ..builder import read_build
        from ..emulation import HostBoard

        exe = read_build(project_dir)["artifacts"].get("exe")
        if not exe:
            raise FlashError(f"{project_dir} has no host executable in its build record",
                             hint="run 'tinyedge build' again")
        if port:
            log.warning("--port %s ignored: an emulated board gets a pty of its own", port)
        hb = HostBoard(exe)
        if progress is not None:
            progress(1, 1)
        return FlashResult(port=hb.port, process=hb,
                           details={"method": "host", "target": board.id, "exe": str(exe), "pid": hb.pid,
                                    "announcement": hb.announcement})
