"""ESP32-family flashing through esptool's Python API (esptool 5.x, imported, not run).

The images and their offsets come from what the ESP-IDF build records in
`build/flasher_args.json` (`flash_files`, `flash_settings`,
`extra_esptool_args.chip`).  esptool does everything chip-side: the reset into
the ROM bootloader and back (DTR/RTS), chip detection, the baud change, SPI
attach, compressed writes and the MD5 check of every written region.  This
module checks the detected chip against the board and the build, maps
esptool's errors to one-line tinyedge errors, routes esptool's output to
`logging`, and turns its progress into `progress(done, total)` calls.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import FlashError, InputFileError, ToolMissingError, UsageError
from . import Flasher, FlashResult, Progress

log = logging.getLogger("tinyedge.flashers.esptool")

ROM_BAUD = 115200
DEFAULT_CONNECT_ATTEMPTS = 7  # esptool's own default
INSTALL = "pip install 'esptool>=5,<6' (it is a dependency of tinyedge: reinstall tinyedge)"


@dataclass(frozen=True)
class EspImages:
    """What an ESP-IDF build says to write: (offset, file) pairs and flash settings."""

    files: tuple[tuple[int, Path], ...]
    chip: str | None = None
    flash_mode: str = "keep"
    flash_freq: str = "keep"
    flash_size: str = "keep"
    source: Path | None = None

    @property
    def total_bytes(self) -> int:
        return sum(p.stat().st_size for _, p in self.files)


def chip_id(name: str) -> str:
    """'ESP32-S3' or 'esp32s3' -> 'esp32s3' (esptool's CHIP_NAME vs its chip argument)."""
    return name.lower().replace("-", "").replace("_", "")


def read_flasher_args(path: os.PathLike | str) -> EspImages:
    """Read ESP-IDF's `flasher_args.json`; file paths are relative to its folder."""
    path = Path(path).resolve()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputFileError(f"cannot read {path} ({e.strerror})", path=path) from None
    except json.JSONDecodeError as e:
        raise InputFileError(f"{path} is not valid JSON ({e})", path=path,
                             hint="rebuild the project with 'tinyedge build'") from None
    files_doc = doc.get("flash_files")
    if not isinstance(files_doc, dict) or not files_doc:
        raise InputFileError(f"{path} lists no 'flash_files'", path=path,
                             hint="rebuild the project with 'tinyedge build'")
    files = []
    for off, rel in files_doc.items():
        try:
            offset = int(str(off), 0)
        except ValueError:
            raise InputFileError(f"{path}: flash offset {off!r} is not a number", path=path) from None
        f = (path.parent / str(rel)).resolve()
        if not f.is_file():
            raise InputFileError(f"{path} names {rel}, which does not exist", path=f,
                                 hint="rebuild the project with 'tinyedge build'")
        files.append((offset, f))
    files.sort()
    for (a, fa), (b, _) in zip(files, files[1:], strict=False):
        if a + fa.stat().st_size > b:
            raise InputFileError(f"{path}: {fa.name} at {a:#x} overlaps the image at {b:#x}", path=path)
    settings = doc.get("flash_settings") or {}
    chip = (doc.get("extra_esptool_args") or {}).get("chip")
    return EspImages(
        files=tuple(files), chip=chip_id(chip) if chip else None,
        flash_mode=str(settings.get("flash_mode", "keep")),
        flash_freq=str(settings.get("flash_freq", "keep")),
        flash_size=str(settings.get("flash_size", "keep")),
        source=path,
    )


def find_flasher_args(project_dir: os.PathLike | str) -> Path:
    """The `flasher_args.json` of a built ESP-IDF project (or of an idf.py build folder)."""
    from ..builder import recorded_artifacts

    d = Path(project_dir).resolve()
    recorded = recorded_artifacts(d).get("flasher_args")
    candidates: list[Path] = [recorded] if recorded else []
    candidates += [d / "flasher_args.json", d / "build" / "flasher_args.json"]
    candidates += sorted(d.glob("build/*/flasher_args.json"))
    for c in candidates:
        if c.is_file():
            return c.resolve()
    raise InputFileError(f"no ESP-IDF build in {d} (no build/flasher_args.json)", path=d,
                         hint=f"run 'tinyedge build {d}' first")


def images_from_build_record(project_dir: os.PathLike | str, board) -> EspImages | None:
    """The images named in `build/tinyedge-build.json` at the board's `flash.offsets`.

    The fallback when a build has no flasher_args.json: artifacts `bootloader`,
    `partition_table` and `bin` (the app) go to offsets `bootloader`,
    `partition_table` and `app`.  None when the record names none of them.
    """
    from ..builder import BUILD_FILE, recorded_artifacts

    d = Path(project_dir).resolve()
    record = d / "build" / BUILD_FILE
    arts = recorded_artifacts(d)
    offsets = board.flash.offsets
    files = []
    for art, off_key in (("bootloader", "bootloader"), ("partition_table", "partition_table"), ("bin", "app")):
        p = arts.get(art)
        if p is None or off_key not in offsets:
            continue
        if not p.is_file():
            raise InputFileError(f"{record} names {p}, which does not exist", path=p,
                                 hint=f"run 'tinyedge build {d}' again")
        files.append((offsets[off_key], p.resolve()))
    if not files:
        return None
    size = board.flash.flash_size or "keep"
    return EspImages(files=tuple(sorted(files)), chip=chip_id(board.flash.esptool_chip or board.id),
                     flash_size=size, source=record)


def load_images(project_dir: os.PathLike | str, board) -> EspImages:
    """What to write for a built ESP-IDF project: flasher_args.json, else the build record."""
    try:
        return read_flasher_args(find_flasher_args(project_dir))
    except InputFileError as e:
        fallback = images_from_build_record(project_dir, board)
        if fallback is None:
            raise e from None
        log.info("no flasher_args.json; using %s with the board's offsets", fallback.source)
        return fallback


def merge_images(images: EspImages, out: os.PathLike | str, chip: str) -> Path:
    """One image from all of them, with esptool's own merge (starting at the lowest offset)."""
    from esptool import cmds

    out = Path(out)
    with _esptool_logging(None, []):
        cmds.merge_bin([(o, str(p)) for o, p in images.files], chip, output=str(out),
                       flash_mode=images.flash_mode, flash_freq=images.flash_freq,
                       flash_size=images.flash_size, target_offset=images.files[0][0])
    return out


# -- esptool's output -> logging and a progress callback ---------------------

def _make_logger(progress: Progress | None, sizes: list[int]):
    from esp_pylib.logger import EspLogBase

    class _ToLogging(EspLogBase):
        """esptool's logger interface, sending text to `logging` and bars to `progress`."""

        def __init__(self):
            self.file_index = -1
            self.done_before = 0
            self.total = sum(sizes)

        def print(self, *args, **kwargs):
            text = " ".join(str(a) for a in args).strip()
            if text.strip("."):  # not the dots of "Connecting...."
                log.info("%s", text)

        def err(self, *args, suggestion=None):
            log.error("%s", " ".join(str(a) for a in args))

        def warn(self, *args, suggestion=None):
            log.warning("%s", " ".join(str(a) for a in args))

        def note(self, *args):
            log.info("%s", " ".join(str(a) for a in args))

        def hint(self, *args):
            log.info("%s", " ".join(str(a) for a in args))

        def debug(self, *args):
            log.debug("%s", "".join(str(a) for a in args))

        warning = warn
        error = err

        def set_verbosity(self, mode):
            pass

        @contextlib.contextmanager
        def progress(self, total, description="", bar_length=30, *, file=None, disable=False, unit=None):
            # One bar per written file, in the order given to write_flash.
            if self.file_index >= 0 and self.file_index < len(sizes):
                self.done_before = sum(sizes[: self.file_index + 1])
            self.file_index += 1
            with super().progress(total, description, bar_length, file=file, disable=False,
                                  unit=unit) as task:
                yield task

        def progress_bar(self, cur_iter, total_iters, prefix="", suffix="", bar_length=30):
            if progress is None or total_iters <= 0:
                return
            i = min(max(self.file_index, 0), len(sizes) - 1) if sizes else 0
            this = sizes[i] if sizes else 0
            done = min(self.done_before + this * min(cur_iter, total_iters) // total_iters, self.total)
            progress(done, self.total)

    return _ToLogging()


@contextlib.contextmanager
def _esptool_logging(progress: Progress | None, sizes: list[int]) -> Iterator[None]:
    from esp_pylib.logger import EspLog
    from esptool.logger import log as esp_log
    from esptool.reset import ResetStrategy
    from esptool.util import PrintOnce

    old = EspLog.instance
    mine = _make_logger(progress, sizes)
    esp_log.set_logger(mine)
    # The reset strategies bind their one-shot warning to the logger of import
    # time; point it at ours for this run so nothing reaches the terminal.
    old_once = ResetStrategy.__dict__.get("print_once")
    ResetStrategy.print_once = PrintOnce(mine.warn)
    try:
        yield
    finally:
        EspLog.instance = old
        if old_once is not None:
            ResetStrategy.print_once = old_once


# -- errors ------------------------------------------------------------------

def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _is_device_path(port: str) -> bool:
    return "://" not in port


def check_port(port: str) -> None:
    """A plain device path that does not exist is a one-line error before esptool runs."""
    if _is_device_path(port) and not Path(port).exists():
        raise FlashError(f"serial port {port} does not exist",
                         hint="plug the board in, or run 'tinyedge ports' to see the ports and pass --port")


def _open_error(port: str, e: BaseException) -> FlashError:
    text = str(e)
    low = text.lower()
    if "exclusively lock" in low or "resource temporarily unavailable" in low or "access is denied" in low \
            or "device or resource busy" in low:
        return FlashError(f"serial port {port} is busy: another program has it open",
                          hint="close the serial monitor (or other flasher) using it and try again")
    if "permission denied" in low:
        return FlashError(f"no permission to open serial port {port}",
                          hint="add yourself to the 'dialout' group (sudo usermod -aG dialout $USER) "
                               "and log in again")
    if "errno 2" in low or "no such file" in low or "filenotfounderror" in low:
        return FlashError(f"serial port {port} does not exist",
                          hint="plug the board in, or run 'tinyedge ports' to see the ports")
    return FlashError(f"cannot open serial port {port}: {_first_line(e)}")


# -- the flasher -----------------------------------------------------------------

def write_images(images: EspImages, board, port: str, *, progress: Progress | None = None,
                 use_stub: bool = True, connect_attempts: int = DEFAULT_CONNECT_ATTEMPTS,
                 merged: bool = False, before: str = "default-reset",
                 after: str = "hard-reset") -> dict[str, Any]:
    """Write `images` to the ESP board on `port`; returns what was written where.

    Raises FlashError for a missing/busy port, a board that does not answer, a
    chip that is not the board's, or a failed write or MD5 check.
    """
    import serial
    from esptool import cmds
    from esptool.util import FatalError, flash_size_bytes

    want = chip_id(board.flash.esptool_chip or board.id)
    if images.chip and images.chip != want:
        raise UsageError(f"the build in {images.source.parent if images.source else '?'} is for "
                         f"{images.chip} but the board {board.id!r} is a {want}",
                         hint=f"rebuild for --board {board.id}, or flash with the board it was built for")
    check_port(port)

    tmp = None
    files = list(images.files)
    if merged:
        tmp = tempfile.TemporaryDirectory(prefix="tinyedge-esp-")
        out = merge_images(images, Path(tmp.name) / "merged.bin", want)
        files = [(images.files[0][0], out)]
    sizes = [p.stat().st_size for _, p in files]
    details: dict[str, Any] = {"method": "esptool", "port": port, "stub": use_stub, "merged": merged,
                               "files": [{"offset": o, "path": str(p), "bytes": s}
                                         for (o, p), s in zip(files, sizes, strict=True)]}
    esp = None
    try:
        with _esptool_logging(progress, sizes):
            try:
                esp = cmds.detect_chip(port, ROM_BAUD, connect_mode=before,
                                       connect_attempts=connect_attempts)
            except FatalError as e:
                msg = str(e)
                if msg.startswith("Could not open"):
                    raise _open_error(port, e) from None
                raise FlashError(
                    f"no answer from an ESP bootloader on {port} ({_first_line(e)})",
                    hint="check the port; if the board has no auto-reset, hold BOOT, press RESET, "
                         "release BOOT and try again") from None
            except (serial.SerialException, OSError) as e:
                raise _open_error(port, e) from None
            got = chip_id(esp.CHIP_NAME)
            details["chip"] = esp.CHIP_NAME
            if got != want:
                raise FlashError(
                    f"the board on {port} is an {esp.CHIP_NAME}, but board {board.id!r} is an "
                    f"{_pretty(want)}",
                    hint=f"pass the board that is attached (--board {got}) and rebuild, "
                         "or attach the right board")
            try:
                if use_stub:
                    esp = cmds.run_stub(esp)
                details["stub"] = bool(esp.IS_STUB)
                baud = board.flash.flash_baud or board.uart.baud or ROM_BAUD
                if baud != ROM_BAUD and not esp.uses_usb_jtag_serial() and esp.CHIP_NAME != "ESP8266":
                    esp.change_baud(baud)
                    details["baud"] = baud
                else:
                    details["baud"] = ROM_BAUD
                cmds.attach_flash(esp)
                size = images.flash_size if images.flash_size not in ("keep", "detect") \
                    else (board.flash.flash_size or "4MB")
                esp.flash_set_parameters(flash_size_bytes(size))
                cmds.write_flash(esp, [(o, str(p)) for o, p in files], flash_freq=images.flash_freq,
                                 flash_mode=images.flash_mode, flash_size=images.flash_size,
                                 compress=True)
                details["verified"] = "md5"  # write_flash compares the flash's MD5 with each image
                cmds.reset_chip(esp, after)
            except FatalError as e:
                raise FlashError(f"flashing the {esp.CHIP_NAME} on {port} failed: {_first_line(e)}",
                                 hint="check the cable and power, and try again (a lower "
                                      "flash_baud in the board file helps with long cables)") from None
            except (serial.SerialException, OSError) as e:
                raise FlashError(f"lost the serial port {port} while flashing: {_first_line(e)}",
                                 hint="check the cable and try again") from None
    finally:
        if esp is not None:
            with contextlib.suppress(Exception):
                esp._port.close()
        if tmp is not None:
            tmp.cleanup()
    return details


def _pretty(chip: str) -> str:
    try:
        from esptool.targets import CHIP_DEFS

        return CHIP_DEFS[chip].CHIP_NAME
    except (ImportError, KeyError):
        return chip.upper()


class EsptoolFlasher(Flasher):
    name = "esptool"
    description = "ESP32 family over the ROM serial bootloader (esptool's Python API)"
    needs = INSTALL
    needs_port = True

    def __init__(self, *, use_stub: bool = True, connect_attempts: int = DEFAULT_CONNECT_ATTEMPTS,
                 merged: bool = False):
        self.use_stub = use_stub
        self.connect_attempts = connect_attempts
        self.merged = merged

    def check(self) -> None:
        try:
            import esptool
            from esptool import cmds  # noqa: F401
        except ImportError:
            raise ToolMissingError("esptool", INSTALL) from None
        major = int(str(getattr(esptool, "__version__", "0")).split(".")[0] or 0)
        if major < 5:
            raise ToolMissingError(f"esptool 5 (found {esptool.__version__})", INSTALL)

    def flash(self, project_dir: Path, board, *, port: str | None = None,
              progress: Progress | None = None) -> FlashResult:
        if port is None:
            raise UsageError("flashing an ESP32 board needs its serial port", hint="pass --port")
        images = load_images(project_dir, board)
        details = write_images(images, board, port, progress=progress, use_stub=self.use_stub,
                               connect_attempts=self.connect_attempts, merged=self.merged)
        return FlashResult(port=port, details=details)
