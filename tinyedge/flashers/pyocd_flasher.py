"""Cortex-M boards with a CMSIS-DAP, ST-Link or J-Link probe, through pyOCD's Python API.

pyOCD is large (USB back-ends, CMSIS-Pack support), so it is an optional
extra: `pip install 'tinyedge[probe]'`.  The target comes from the board's
`flash.pyocd_target`; parts that pyOCD does not know built in need their
CMSIS pack (`pyocd pack install <target>`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import FlashError, ToolMissingError, UsageError
from . import Flasher, FlashResult, Progress

log = logging.getLogger("tinyedge.flashers.pyocd")

INSTALL = "pip install 'tinyedge[probe]' (or: pip install pyocd)"


def _import_pyocd():
    try:
        from pyocd.core.helpers import ConnectHelper
        from pyocd.flash.file_programmer import FileProgrammer
    except ImportError:
        raise ToolMissingError("pyocd", INSTALL) from None
    return ConnectHelper, FileProgrammer


def open_session(target: str, probe_id: str | None = None, options: dict | None = None):
    """A pyOCD Session (not yet opened) on the one attached probe, or on `probe_id`.

    Chooses the probe here rather than with pyOCD's interactive chooser, which
    prints and prompts on the terminal.
    """
    ConnectHelper, _ = _import_pyocd()
    from pyocd.core.session import Session

    try:
        probes = ConnectHelper.get_all_connected_probes(blocking=False, unique_id=probe_id,
                                                        print_wait_message=False)
    except Exception as e:  # USB back-end errors (no libusb, permissions) are pyocd's own classes
        raise FlashError(f"pyocd could not list debug probes: {_first_line(e)}",
                         hint="on Linux install the probe's udev rules, or run with access to USB") from None
    if not probes:
        which = f" matching {probe_id!r}" if probe_id else ""
        raise FlashError(f"no debug probe{which} found (CMSIS-DAP, ST-Link or J-Link)",
                         hint="plug the board's debug USB port in; on Linux install the probe's udev rules")
    if len(probes) > 1:
        listed = "; ".join(f"{p.unique_id} ({p.description})" for p in probes)
        raise UsageError(f"several debug probes are attached: {listed}",
                         hint="choose one with --probe ID")
    try:
        return Session(probes[0], target_override=target, options=options or {})
    except Exception as e:
        raise FlashError(f"pyocd could not start a session for {target}: {_first_line(e)}",
                         hint=f"if the target is unknown, run 'pyocd pack install {target}'") from None


class PyocdFlasher(Flasher):
    name = "pyocd"
    description = "Cortex-M over a debug probe (CMSIS-DAP, ST-Link, J-Link) with pyOCD"
    needs = INSTALL
    needs_port = False  # the probe is found over USB; the serial port is only for talking afterwards

    def __init__(self, *, probe: str | None = None, frequency: int | None = None):
        self.probe = probe          # probe unique id, when several are attached
        self.frequency = frequency  # SWD clock in Hz

    def check(self) -> None:
        _import_pyocd()

    def flash(self, project_dir: Path, board, *, port: str | None = None,
              progress: Progress | None = None) -> FlashResult:
        from .uf2 import find_firmware

        target = board.flash.pyocd_target
        if not target:
            raise UsageError(f"board {board.id} has no flash.pyocd_target", hint="add it to its board file")
        _, FileProgrammer = _import_pyocd()
        fw = find_firmware(Path(project_dir))
        if fw.suffix.lower() == ".uf2":
            raise UsageError(f"{fw} is a UF2 file; pyocd needs the .elf, .hex or .bin of the build")
        options = {"frequency": self.frequency} if self.frequency else {}
        session = open_session(target, self.probe, options)
        size = fw.stat().st_size

        def on_progress(fraction: float) -> None:
            if progress:
                progress(int(size * fraction), size)

        try:
            with session:
                kw = {}
                if fw.suffix.lower() == ".bin":
                    kw["base_address"] = board.memory.flash_origin if board.memory else 0
                FileProgrammer(session, progress=on_progress).program(str(fw), **kw)
                session.target.reset()
                probe_id = session.probe.unique_id
        except Exception as e:
            raise FlashError(f"pyocd failed to flash {target}: {_first_line(e)}",
                             hint="check the probe's cable and the board's power, then try again") from None
        return FlashResult(port=port, details={"method": "pyocd", "target": target, "probe": probe_id,
                                               "source": str(fw), "bytes": size})


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
