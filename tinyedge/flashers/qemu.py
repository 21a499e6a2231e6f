"""The `qemu` flasher: start a built qemu-* project under QEMU (qemu-system-arm or -riscv32).

`flash()` starts QEMU (tinyedge.qemu: `-icount shift=0`, the UART on a free
127.0.0.1 TCP port), connects once to wait for the firmware's announcement
line, and hands back `FlashResult(port="socket://127.0.0.1:PORT",
process=<QemuProcess>)`.  Closing the result (or the Device it is given to)
stops QEMU; an atexit hook stops any QEMU left when Python exits.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from ..errors import FlashError, ToolMissingError, UsageError
from . import Flasher, FlashResult, Progress

log = logging.getLogger(__name__)


class QemuFlasher(Flasher):
    name = "qemu"
    description = "start the firmware under QEMU (emulated board)"
    needs = "qemu-system-arm (sudo apt-get install qemu-system-arm); qemu-riscv32: qemu-system-riscv32 (qemu-system-misc)"
    needs_port = False

    def __init__(self):
        self.announce_timeout = 20.0

    def check(self, board=None) -> None:
        """The board's QEMU is installed (without a board: any QEMU tinyedge drives; flash() checks the board's)."""
        from ..qemu import QEMU_SYSTEMS, qemu_binary

        wanted = [qemu_binary(board)] if board is not None else list(QEMU_SYSTEMS.values())
        if not any(shutil.which(name) for name, _how in wanted):
            raise ToolMissingError(*wanted[0])

    def flash(self, project_dir: Path, board, *, port: str | None = None,
              progress: Progress | None = None) -> FlashResult:
        from ..builder import read_build
        from ..link.device import Device
        from ..qemu import PortTaken, start_qemu

        self.check(board)
        if not board.is_qemu:
            raise UsageError(f"board {board.id} is not emulated by QEMU", hint="pick a qemu-* board")
        if port:
            log.warning("--port %s ignored: an emulated board gets a free local port of its own", port)
        elf = read_build(project_dir)["artifacts"].get("elf")
        if not elf:
            raise FlashError(f"{project_dir} has no ELF in its build record", hint="run 'tinyedge build' again")
        from ..project import read_project

        protocol = read_project(project_dir).get("protocol", "tinyedge")
        for attempt in range(3):
            q = start_qemu(elf, board)
            try:
                # The first client starts the guest (wait=on); read its announcement, then let go.
                if protocol == "mlperf":
                    from ..mlperf import wait_boot

                    ann = {"protocol": "mlperf", "boot": wait_boot(q.url, self.announce_timeout, process=q)}
                else:
                    with Device(q.url, timeout=5) as d:
                        ann = q.wait_for_announcement(d, self.announce_timeout)
                break
            except PortTaken as e:
                q.close()
                if attempt == 2:
                    raise
                log.warning("%s; starting the emulator again on another port", e)
            except BaseException:
                err = q.stderr_text().strip()
                q.close()
                if err:
                    log.error("qemu: %s", err)
                raise
        if progress is not None:
            progress(1, 1)
        return FlashResult(port=q.url, process=q,
                           details={"method": "qemu", "target": board.id, "elf": str(elf), "pid": q.pid,
                                    "announcement": ann})
