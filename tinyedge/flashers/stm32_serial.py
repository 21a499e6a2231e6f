"""STM32 ROM serial bootloader (AN3155) through Debian's `stm32flash`, run with an argument list.

The STM32's system-memory bootloader listens on a UART when BOOT0 is high at
reset.  `stm32flash` speaks it, writes, verifies (-v) and starts the program
(-g).  It is a small, long-maintained C tool packaged by Debian; it takes
.bin and Intel .hex, so an ELF from the build is turned into a .bin of its
loadable bytes first.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import FlashError, InputFileError, ToolMissingError, UsageError
from . import Flasher, FlashResult, Progress

log = logging.getLogger("tinyedge.flashers.stm32_serial")

TOOL = "stm32flash"
INSTALL = "install it with 'sudo apt-get install stm32flash' (Debian/Ubuntu) or your system's package manager"
BOOTLOADER_MAX_BAUD = 115200  # the ROM bootloader's autobaud is specified up to 115200 on every part


def tool_path() -> str:
    path = shutil.which(TOOL)
    if path is None:
        raise ToolMissingError(TOOL, INSTALL)
    return path


def stm32flash_args(image: os.PathLike | str, port: str, *, baud: int = BOOTLOADER_MAX_BAUD,
                    start: int = 0x08000000, tool: str = TOOL, is_bin: bool = True,
                    mode: str = "8e1") -> list[str]:
    """The stm32flash command line: write `image`, verify it, then run from `start`.

    A .bin is placed at `start` (-S); a .hex carries its own addresses.  The
    ROM bootloader's UART framing is 8 data bits, even parity, 1 stop bit.
    """
    if not port or port.startswith("-"):
        raise UsageError(f"bad serial port {port!r}")
    if not re.fullmatch(r"[5-8][neo][12]", mode):
        raise UsageError(f"bad serial mode {mode!r}", hint="use e.g. 8e1")
    args = [tool, "-b", str(min(int(baud), BOOTLOADER_MAX_BAUD)), "-m", mode, "-w", str(image), "-v"]
    if is_bin:
        args += ["-S", f"{start:#010x}"]
    args += ["-g", f"{start:#010x}", port]
    return args


def elf_to_bin(elf: os.PathLike | str, out: os.PathLike | str, base: int) -> Path:
    """The loadable bytes of an ELF from `base` up, gaps filled with 0xFF (erased flash)."""
    from .uf2 import elf_segments

    segs = [(a, d) for a, d in elf_segments(elf) if a >= base]
    if not segs:
        raise InputFileError(f"{elf} has nothing to load at or above {base:#x}")
    end = max(a + len(d) for a, d in segs)
    buf = bytearray(b"\xff" * (end - base))
    for a, d in segs:
        buf[a - base:a - base + len(d)] = d
    out = Path(out)
    out.write_bytes(bytes(buf))
    return out


def _firmware(project_dir: Path) -> Path:
    from .uf2 import find_firmware

    fw = find_firmware(project_dir)
    if fw.suffix.lower() == ".uf2":
        hexes = sorted((project_dir / "build").glob("*.hex")) + sorted((project_dir / "build").glob("*.elf"))
        if not hexes:
            raise InputFileError(f"the build in {project_dir} has only a UF2 file; stm32flash needs .bin/.hex/.elf")
        fw = hexes[0]
    return fw


_PCT = re.compile(r"\((\d+(?:\.\d+)?)%\)")


class Stm32SerialFlasher(Flasher):
    name = "stm32-serial"
    description = "STM32 ROM bootloader over a UART (stm32flash)"
    needs = f"{TOOL}: {INSTALL}"
    needs_port = True

    def __init__(self, *, timeout: float = 300.0, mode: str = "8e1"):
        self.timeout = timeout
        self.mode = mode  # "8e1" on a real UART; a pty cannot do parity, so tests use "8n1"

    def check(self) -> None:
        tool_path()

    def flash(self, project_dir: Path, board, *, port: str | None = None,
              progress: Progress | None = None) -> FlashResult:
        if port is None:
            raise UsageError("the STM32 serial bootloader needs the serial port", hint="pass --port")
        if "://" not in port and not Path(port).exists():
            raise FlashError(f"serial port {port} does not exist",
                             hint="plug the board in, or run 'tinyedge ports' and pass --port")
        tool = tool_path()
        start = board.memory.flash_origin if board.memory else 0x08000000
        fw = _firmware(Path(project_dir))
        with tempfile.TemporaryDirectory(prefix="tinyedge-stm32-") as tmp:
            image = fw
            if fw.suffix.lower() == ".elf":
                image = elf_to_bin(fw, Path(tmp) / "firmware.bin", start)
            args = stm32flash_args(image, port, baud=board.uart.baud, start=start, tool=tool,
                                   is_bin=image.suffix.lower() != ".hex", mode=self.mode)
            log.info("running %s", " ".join(args))
            size = image.stat().st_size
            out = self._run(args, size, progress)
        return FlashResult(port=port, details={"method": "stm32-serial", "tool": tool, "args": args,
                                               "source": str(fw), "bytes": size, "verified": "stm32flash -v",
                                               "output_tail": out[-5:]})

    def _run(self, args: list[str], size: int, progress: Progress | None) -> list[str]:
        import threading

        try:
            proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        except OSError as e:
            raise ToolMissingError(TOOL, f"{INSTALL} ({e.strerror})") from None
        errors: list[str] = []

        def drain_stderr() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                if line.strip():
                    errors.append(line.strip())

        t = threading.Thread(target=drain_stderr, daemon=True)
        t.start()
        lines: list[str] = []
        assert proc.stdout is not None
        buf = ""
        try:
            while True:
                ch = proc.stdout.read(1)
                if not ch:
                    break
                if ch in "\r\n":
                    if buf.strip():
                        lines.append(buf.strip())
                        m = _PCT.search(buf)
                        if m and progress:
                            progress(int(size * float(m.group(1)) / 100), size)
                    buf = ""
                else:
                    buf += ch
            if buf.strip():
                lines.append(buf.strip())
            rc = proc.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise FlashError(f"stm32flash did not finish in {self.timeout:g} s") from None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            t.join(timeout=5)
        for ln in lines[-20:]:
            log.debug("stm32flash: %s", ln)
        if rc != 0:
            port = args[-1]
            text = " ".join(errors).lower()
            last = errors[-1] if errors else (lines[-1] if lines else f"exit status {rc}")
            if "failed to init device" in text:
                raise FlashError(f"the STM32 serial bootloader did not answer on {port}",
                                 hint="set BOOT0 high (jumper or button), press RESET, and try again")
            if "busy" in text or "lock" in text:
                raise FlashError(f"serial port {port} is busy: another program has it open",
                                 hint="close it and try again")
            if "failed to open port" in text or "cannot handle device" in text:
                raise FlashError(f"stm32flash could not open {port} as a UART ({errors[0]})",
                                 hint="check that it is the board's USB-UART and not in use")
            raise FlashError(f"stm32flash failed: {last}")
        if progress:
            progress(size, size)
        return lines
