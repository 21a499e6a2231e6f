"""Finding the serial port of an attached board.

`list_ports()` gives every serial port with its USB vendor and product id and
a guess of what sits behind it (an ESP32's USB-UART bridge, an ST-Link's
virtual COM port, a Pico ...), from a table of well-known USB ids and from
the `flash.usb_ids` of the board files.  `pick_port(board)` returns the port
when exactly one likely board is attached, and otherwise raises an error that
lists the candidates or says to plug the board in.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import UsageError

log = logging.getLogger("tinyedge.ports")

# (vid, pid or None for any pid) -> (what it is, board family it usually means).
# Sorted by (vid, pid); a test checks this.
KNOWN_USB: dict[tuple[int, int | None], tuple[str, str]] = {
    (0x0403, 0x6001): ("FTDI FT232R USB-UART", "usb-uart"),
    (0x0403, 0x6010): ("FTDI FT2232 USB-UART/JTAG", "usb-uart"),
    (0x0403, 0x6014): ("FTDI FT232H USB-UART", "usb-uart"),
    (0x0403, 0x6015): ("FTDI FT231X USB-UART", "usb-uart"),
    (0x0483, 0x374B): ("ST-Link/V2-1 virtual COM port", "cortex-m"),
    (0x0483, 0x374E): ("ST-Link/V3 virtual COM port", "cortex-m"),
    (0x0483, 0x374F): ("ST-Link/V3 virtual COM port", "cortex-m"),
    (0x0483, 0x3752): ("ST-Link/V2-1 virtual COM port", "cortex-m"),
    (0x0483, 0x3753): ("ST-Link/V3 virtual COM port", "cortex-m"),
    (0x0D28, 0x0204): ("Arm DAPLink CMSIS-DAP", "cortex-m"),
    (0x10C4, 0xEA60): ("Silicon Labs CP210x USB-UART", "esp32"),
    (0x1366, None): ("SEGGER J-Link", "cortex-m"),
    (0x1A86, 0x55D4): ("WCH CH9102 USB-UART", "esp32"),
    (0x1A86, 0x7523): ("WCH CH340 USB-UART", "esp32"),
    (0x2E8A, 0x0003): ("Raspberry Pi RP2040 BOOTSEL", "cortex-m"),
    (0x2E8A, 0x000A): ("Raspberry Pi Pico (USB CDC)", "cortex-m"),
    (0x2E8A, 0x000C): ("Raspberry Pi Debug Probe (CMSIS-DAP)", "cortex-m"),
    (0x303A, 0x1001): ("Espressif USB-JTAG/serial", "esp32"),
    (0x303A, None): ("Espressif USB", "esp32"),
}


class NoPortFound(UsageError):
    """No attached serial port looks like the board (a deploy then builds and stops)."""


@dataclass
class PortInfo:
    device: str
    vid: int | None = None
    pid: int | None = None
    description: str = ""
    serial_number: str | None = None
    kind: str | None = None          # what the USB id says it is, e.g. "Silicon Labs CP210x USB-UART"
    family: str | None = None        # board family guess: esp32, cortex-m, usb-uart
    boards: list[str] = field(default_factory=list)  # board ids whose usb_ids list this id

    @property
    def usb_id(self) -> str | None:
        if self.vid is None or self.pid is None:
            return None
        return f"{self.vid:04x}:{self.pid:04x}"

    @property
    def likely_board(self) -> bool:
        """A port that looks like a development board (not a modem or a plain tty)."""
        return self.kind is not None or bool(self.boards)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["usb_id"] = self.usb_id
        return d

    def label(self) -> str:
        what = self.kind or self.description or "serial port"
        return f"{self.device} ({self.usb_id + ' ' if self.usb_id else ''}{what})"


def parse_usb_id(text: str) -> tuple[int, int]:
    """'10c4:ea60' -> (0x10c4, 0xea60)."""
    vid, _, pid = text.partition(":")
    return int(vid, 16), int(pid, 16)


def _board_ids_by_usb(boards: Iterable | None) -> dict[tuple[int, int], list[str]]:
    if boards is None:
        from .boards import all_boards

        boards = all_boards().values()
    table: dict[tuple[int, int], list[str]] = {}
    for b in boards:
        for uid in b.flash.usb_ids:
            try:
                table.setdefault(parse_usb_id(uid), []).append(b.id)
            except ValueError:
                log.warning("board %s: bad usb id %r (want VID:PID in hex)", b.id, uid)
    return table


def _clean(text) -> str:
    return "" if text in (None, "n/a") else str(text)


def describe(record, boards: Iterable | None = None, *, _table=None) -> PortInfo:
    """A PortInfo from one pyserial ListPortInfo record (or anything with its fields)."""
    vid = getattr(record, "vid", None)
    pid = getattr(record, "pid", None)
    info = PortInfo(device=record.device, vid=vid, pid=pid,
                    description=_clean(getattr(record, "description", "")),
                    serial_number=getattr(record, "serial_number", None))
    if vid is not None and pid is not None:
        known = KNOWN_USB.get((vid, pid)) or KNOWN_USB.get((vid, None))
        if known:
            info.kind, info.family = known
        table = _table if _table is not None else _board_ids_by_usb(boards)
        info.boards = sorted(table.get((vid, pid), []))
    return info


def list_ports(records: Iterable | None = None, boards: Iterable | None = None) -> list[PortInfo]:
    """Every serial port (from pyserial unless `records` is given), with its guess."""
    if records is None:
        from serial.tools import list_ports as lp

        records = lp.comports()
    table = _board_ids_by_usb(boards)
    ports = [describe(r, _table=table) for r in records]
    ports.sort(key=lambda p: (not p.likely_board, p.device))
    return ports


def pick_port(board=None, records: Iterable | None = None, boards: Iterable | None = None) -> str:
    """The one attached board's port, for `--port` left out.

    With a board given, ports whose USB id is in its `flash.usb_ids` come
    first; failing those, any port that looks like a development board.
    Exactly one candidate -> its device; several -> UsageError listing them;
    none -> UsageError saying to plug the board in or pass --port.
    """
    ports = list_ports(records, boards)
    candidates: list[PortInfo] = []
    if board is not None:
        ids = set()
        for u in board.flash.usb_ids:
            try:
                ids.add(parse_usb_id(u))
            except ValueError:
                continue
        candidates = [p for p in ports if (p.vid, p.pid) in ids]
        if not candidates:
            candidates = [p for p in ports if p.kind is not None
                          and (p.family in (board.family, "usb-uart"))]
    else:
        candidates = [p for p in ports if p.likely_board]
    if len(candidates) == 1:
        log.info("using serial port %s", candidates[0].label())
        return candidates[0].device
    what = f"board {board.id}" if board is not None else "a board"
    if not candidates:
        seen = f" (serial ports seen: {', '.join(p.device for p in ports)})" if ports else ""
        raise NoPortFound(f"no serial port found for {what}{seen}",
                         hint="plug the board in (and check the USB cable carries data), or pass --port")
    raise UsageError(f"several serial ports could be {what}: "
                     + "; ".join(p.label() for p in candidates),
                     hint="pass --port with the one to use")
