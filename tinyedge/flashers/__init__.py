"""Flasher registry: each way of getting firmware onto a board behind one small interface.

As Zephyr's west runners do: a flasher has a name, says what it needs, checks
up front that its tool or library is present, and runs.  The board file's
`flash.method` picks one.  Emulated boards have flashers too: `qemu` starts
the firmware under qemu-system-arm, `host` starts the host build behind a pty;
both hand back a running device, like a real board after reset.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

from ..errors import UsageError

# method -> "module:Class".  One table; adding a flasher never means an if/elif elsewhere.
REGISTRY: dict[str, str] = {
    "qemu": "tinyedge.flashers.qemu:QemuFlasher",
    "host": "tinyedge.flashers.host:HostFlasher",
    "esptool": "tinyedge.flashers.esptool_flasher:EsptoolFlasher",
    "pyocd": "tinyedge.flashers.pyocd_flasher:PyocdFlasher",
    "stm32-serial": "tinyedge.flashers.stm32_serial:Stm32SerialFlasher",
    "uf2": "tinyedge.flashers.uf2:Uf2Flasher",
}

Progress = Callable[[int, int], None]  # (done, total) in bytes


@dataclass
class FlashResult:
    """What a flasher hands back.

    `port` is the pyserial URL on which the board now talks (for emulated
    boards, the socket or pty they serve); `process` is a handle with
    `close()` for emulated boards (None for real ones); `details` holds what
    was written where, for the report.
    """

    port: str | None
    process: Any = None
    details: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        if self.process is not None:
            self.process.close()
            self.process = None


class Flasher(ABC):
    name: str = ""
    description: str = ""
    needs: str = ""            # human words: what it needs and how to get it
    needs_port: bool = True    # False for emulated boards and drive copies

    @abstractmethod
    def check(self) -> None:
        """Raise ToolMissingError when the tool or library is missing."""

    @abstractmethod
    def flash(self, project_dir: Path, board, *, port: str | None = None,
              progress: Progress | None = None) -> FlashResult:
        """Write (or start) the built firmware of `project_dir` on `board`."""


def get_flasher(method: str) -> Flasher:
    if method not in REGISTRY:
        raise UsageError(f"unknown flash method {method!r}", hint=f"known: {', '.join(REGISTRY)}")
    mod, cls = REGISTRY[method].split(":")
    return getattr(import_module(mod), cls)()
