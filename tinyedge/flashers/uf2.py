"""UF2: flash a board that shows up as a USB drive (the Raspberry Pi Pico's RPI-RP2).

The UF2 format (Microsoft's, as the RP2040 boot ROM reads it) is a file of
512-byte blocks, each carrying up to 476 bytes of payload (256 for the
RP2040) for one target address, framed by magic numbers and tagged with a
family id (board.flash.uf2_family).  When the build gives no .uf2, one is
made here from the ELF's loadable segments or from a raw .bin placed at the
board's flash origin.  The drive is found by its INFO_UF2.TXT.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from ..errors import FlashError, InputFileError, UsageError
from . import Flasher, FlashResult, Progress

log = logging.getLogger("tinyedge.flashers.uf2")

MAGIC_START0 = 0x0A324655  # "UF2\n"
MAGIC_START1 = 0x9E5D5157
MAGIC_END = 0x0AB16F30
FLAG_NOT_MAIN_FLASH = 0x00000001
FLAG_FAMILY_ID = 0x00002000
BLOCK_SIZE = 512
PAYLOAD_MAX = 476
PAYLOAD = 256  # what the RP2040 boot ROM accepts (and most UF2 bootloaders use)
INFO_FILE = "INFO_UF2.TXT"

_HEADER = struct.Struct("<8I")  # magic0, magic1, flags, addr, size, block_no, num_blocks, family


def pages_from_segments(segments: Iterable[tuple[int, bytes]], page: int = PAYLOAD,
                        fill: int = 0x00) -> list[tuple[int, bytes]]:
    """Cut (address, bytes) segments into `page`-aligned pages of `page` bytes.

    Gaps inside a page are filled with `fill`; pages are sorted by address.
    Overlapping segments are an error.
    """
    pages: dict[int, bytearray] = {}
    written: dict[int, bytearray] = {}
    for addr, data in sorted(segments):
        for i, b in enumerate(data):
            a = addr + i
            base = a - a % page
            buf = pages.setdefault(base, bytearray([fill]) * page)
            mask = written.setdefault(base, bytearray(page))
            if mask[a - base]:
                raise InputFileError(f"two segments both write address {a:#x}")
            buf[a - base] = b
            mask[a - base] = 1
    return [(a, bytes(pages[a])) for a in sorted(pages)]


def to_uf2(segments: Iterable[tuple[int, bytes]], family: int, *, page: int = PAYLOAD) -> bytes:
    """UF2 file bytes for the given (address, bytes) segments."""
    if not 0 < page <= PAYLOAD_MAX:
        raise UsageError(f"UF2 payload size {page} must be 1..{PAYLOAD_MAX}")
    pages = pages_from_segments(segments, page)
    if not pages:
        raise InputFileError("nothing to put in the UF2 file (no loadable data)")
    out = bytearray()
    n = len(pages)
    for i, (addr, data) in enumerate(pages):
        head = _HEADER.pack(MAGIC_START0, MAGIC_START1, FLAG_FAMILY_ID, addr, len(data), i, n, family)
        block = head + data + bytes(PAYLOAD_MAX - len(data)) + struct.pack("<I", MAGIC_END)
        assert len(block) == BLOCK_SIZE
        out += block
    return bytes(out)


def bin_to_uf2(data: bytes, base: int, family: int) -> bytes:
    return to_uf2([(base, data)], family)


def elf_segments(path: os.PathLike | str) -> list[tuple[int, bytes]]:
    """The loadable bytes of an ELF at their load (physical) addresses."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    path = Path(path)
    segs = []
    try:
        with path.open("rb") as f:
            elf = ELFFile(f)
            for seg in elf.iter_segments():
                if seg["p_type"] != "PT_LOAD" or seg["p_filesz"] == 0:
                    continue
                segs.append((seg["p_paddr"], seg.data()[: seg["p_filesz"]]))
    except (ELFError, OSError) as e:
        raise InputFileError(f"{path} is not a readable ELF file ({e})", path=path) from None
    return segs


def elf_to_uf2(path: os.PathLike | str, family: int) -> bytes:
    return to_uf2(elf_segments(path), family)


def parse_uf2(data: bytes) -> tuple[int | None, dict[int, bytes]]:
    """(family id, {address: payload}) of a UF2 file; checks magic numbers and block numbering."""
    if len(data) % BLOCK_SIZE or not data:
        raise InputFileError(f"UF2 data of {len(data)} bytes is not a whole number of 512-byte blocks")
    family = None
    blocks: dict[int, bytes] = {}
    n_total = None
    for i in range(0, len(data), BLOCK_SIZE):
        blk = data[i:i + BLOCK_SIZE]
        m0, m1, flags, addr, size, no, num, fam = _HEADER.unpack_from(blk)
        (m_end,) = struct.unpack_from("<I", blk, BLOCK_SIZE - 4)
        if (m0, m1, m_end) != (MAGIC_START0, MAGIC_START1, MAGIC_END):
            raise InputFileError(f"UF2 block {i // BLOCK_SIZE} has bad magic numbers")
        if size > PAYLOAD_MAX or no >= num or (n_total is not None and num != n_total):
            raise InputFileError(f"UF2 block {i // BLOCK_SIZE} has an inconsistent header")
        n_total = num
        if flags & FLAG_NOT_MAIN_FLASH:
            continue
        if flags & FLAG_FAMILY_ID:
            family = fam
        blocks[addr] = blk[32:32 + size]
    return family, blocks


def find_volume(label: str = "RPI-RP2", roots: Iterable[os.PathLike | str] | None = None) -> Path:
    """The mounted UF2 drive: a folder holding INFO_UF2.TXT whose name or Board-ID matches `label`.

    `roots` are folders to look in (their children and themselves); by default
    the mount points in /proc/mounts and the usual automount folders.
    """
    cands: list[Path] = []
    for r in (roots if roots is not None else _default_roots()):
        r = Path(r)
        if (r / INFO_FILE).is_file():
            cands.append(r)
        try:
            cands += [c for c in r.iterdir() if (c / INFO_FILE).is_file()]
        except OSError:
            continue
    seen = set()
    found = []
    for c in cands:
        rc = c.resolve()
        if rc in seen:
            continue
        seen.add(rc)
        try:
            info = (c / INFO_FILE).read_text(errors="replace")
        except OSError:
            continue
        if c.name == label or f"Board-ID: {label}" in info or label in info:
            found.append(c)
    if len(found) == 1:
        return found[0]
    if not found:
        raise FlashError(f"no {label} drive found",
                         hint="hold BOOTSEL while plugging the board in so that it shows up as a drive "
                              "(and is mounted), or pass --volume")
    raise FlashError(f"several {label} drives found: {', '.join(map(str, found))}",
                     hint="unplug all but one, or pass --volume")


def _default_roots() -> list[Path]:
    roots: list[Path] = []
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) > 2 and parts[2] in ("vfat", "msdos", "fuseblk", "exfat"):
                roots.append(Path(parts[1].replace("\\040", " ")))
    except OSError:
        pass
    user = os.environ.get("USER", "")
    for base in (Path("/media") / user, Path("/run/media") / user, Path("/media"), Path("/Volumes")):
        if base.is_dir():
            roots.append(base)
    return roots


def copy_to_volume(uf2: bytes, volume: os.PathLike | str, name: str = "firmware.uf2",
                   progress: Progress | None = None) -> Path:
    """Write the UF2 file onto the drive, block by block, and flush it to the device.

    Not through a temporary name: the board's bootloader takes blocks as they
    land and reboots when the last one is written.
    """
    vol = Path(volume)
    if not (vol / INFO_FILE).is_file():
        raise FlashError(f"{vol} is not a UF2 drive (no {INFO_FILE})",
                         hint="pass the mounted board drive with --volume")
    target = vol / name
    total = len(uf2)
    try:
        with open(target, "wb") as f:
            step = BLOCK_SIZE * 64
            for i in range(0, total, step):
                f.write(uf2[i:i + step])
                if progress:
                    progress(min(i + step, total), total)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise FlashError(f"copying to {vol} failed ({e.strerror})",
                         hint="keep the board plugged in and try again") from None
    return target


RP2040_FAMILY = 0xE48BFF56
RP2040_FLASH = 0x10000000


def crc32_mpeg2(data: bytes) -> int:
    """CRC-32/MPEG-2 (poly 0x04C11DB7, init 0xFFFFFFFF, not reflected): the RP2040 boot2 checksum,
    computed by the `crc` library."""
    return _mpeg2().checksum(bytes(data))


@cache
def _mpeg2():
    import crc

    return crc.Calculator(crc.Configuration(width=32, polynomial=0x04C11DB7, init_value=0xFFFFFFFF,
                                            final_xor_value=0, reverse_input=False, reverse_output=False),
                          optimized=True)


def check_rp2040_boot2(blocks: dict[int, bytes]) -> None:
    """The RP2040 boot ROM runs flash code only behind a 256-byte second stage (boot2)
    whose last word is the CRC-32/MPEG-2 of the first 252 bytes.  Refuse an image without it:
    copied to the drive, it would never start."""
    first = blocks.get(RP2040_FLASH, b"")
    if len(first) < 256 or crc32_mpeg2(first[:252]) != int.from_bytes(first[252:256], "little"):
        raise FlashError("the image has no valid RP2040 second-stage bootloader (boot2) in its first "
                         "256 bytes at 0x10000000, so the Pico would not start it",
                         hint="the firmware build for rpi-pico must place boot2 (with its CRC) first")


def family_of(board) -> int:
    fam = board.flash.uf2_family
    if fam is None:
        raise UsageError(f"board {board.id} has no flash.uf2_family", hint="add it to its board file")
    return int(str(fam), 0)


def find_firmware(project_dir: Path) -> Path:
    """The built .uf2, .elf or .bin of a project (from build/tinyedge-build.json, else by name)."""
    from ..builder import recorded_artifacts

    build = project_dir / "build"
    arts = recorded_artifacts(project_dir)
    for key in ("uf2", "elf", "bin"):
        if key in arts and arts[key].is_file():
            return arts[key].resolve()
    for pattern in ("*.uf2", "*.elf", "*.bin"):
        found = sorted(build.glob(pattern)) if build.is_dir() else []
        if found:
            return found[0].resolve()
    raise InputFileError(f"no built firmware in {project_dir} (no .uf2, .elf or .bin under build/)",
                         path=project_dir, hint=f"run 'tinyedge build {project_dir}' first")


def firmware_uf2(path: Path, board) -> bytes:
    """UF2 bytes for a built .uf2 (checked), .elf or .bin."""
    fam = family_of(board)
    suffix = path.suffix.lower()
    if suffix == ".uf2":
        data = path.read_bytes()
        got, _ = parse_uf2(data)
        if got is not None and got != fam:
            raise UsageError(f"{path} is for UF2 family {got:#x}, but board {board.id} needs {fam:#x}",
                             hint=f"rebuild it for --board {board.id}")
        return data
    if suffix == ".elf":
        return elf_to_uf2(path, fam)
    if board.memory is None:
        raise UsageError(f"board {board.id} has no memory.flash_origin to place {path.name} at")
    return bin_to_uf2(path.read_bytes(), board.memory.flash_origin, fam)


class Uf2Flasher(Flasher):
    name = "uf2"
    description = "copy a UF2 file to the board's USB drive (Raspberry Pi Pico's RPI-RP2)"
    needs = "nothing to install: the board must be mounted as a drive (hold BOOTSEL while plugging in)"
    needs_port = False

    def __init__(self, *, volume: str | None = None, roots: list[str] | None = None):
        self.volume = volume
        self.roots = roots

    def check(self) -> None:
        return None  # pure Python; the drive is looked for when flashing

    def flash(self, project_dir: Path, board, *, port: str | None = None,
              progress: Progress | None = None) -> FlashResult:
        fw = find_firmware(Path(project_dir))
        data = firmware_uf2(fw, board)
        if family_of(board) == RP2040_FAMILY:
            check_rp2040_boot2(parse_uf2(data)[1])
        vol = Path(self.volume) if self.volume else find_volume(board.flash.uf2_volume or "RPI-RP2",
                                                                self.roots)
        target = copy_to_volume(data, vol, progress=progress)
        _, blocks = parse_uf2(data)
        return FlashResult(port=port, details={
            "method": "uf2", "volume": str(vol), "file": str(target), "source": str(fw),
            "blocks": len(data) // BLOCK_SIZE, "bytes": sum(len(b) for b in blocks.values()),
            "family": hex(family_of(board)),
        })
