"""A FAKE ESP32 ROM bootloader on a pseudo-terminal, for tests only.

No ESP32 is attached here, so tests run the real esptool code against this
fake.  It speaks the SLIP-framed serial protocol of the chip's ROM download
mode well enough for esptool to sync, detect the chip (the magic value at
0x40001000 for the ESP32, GET_SECURITY_INFO with chip id 9 for the ESP32-S3
and 5 for the ESP32-C3), change baud, attach the SPI flash, set its
parameters, write compressed (FLASH_DEFL_*) and plain (FLASH_*) blocks, and
answer SPI_FLASH_MD5 from what it stored.

Every write is recorded: `writes` maps each begin offset to the bytes that
arrived after it, and `flash` is the whole emulated flash, so a test can check
that what esptool sent equals the image files.  `silent=True` makes a board
that never enters the bootloader (reads everything, never answers).

The stub flasher cannot run here, but its upload can: MEM_BEGIN/DATA/END
land in `ram`, and on MEM_END with an entry point the fake greets with
"OHAI" and from then on answers as esptool's stub does (2 status bytes, the
raw 16-byte MD5, FLASH_DEFL_BEGIN sized in uncompressed bytes).  A test can
compare `ram` with esptool's own stub image.
"""

from __future__ import annotations

import hashlib
import os
import select
import struct
import threading
import tty
import zlib
from dataclasses import dataclass, field

# ROM command opcodes (the ROM's, as documented in esptool's serial protocol page).
FLASH_BEGIN = 0x02
FLASH_DATA = 0x03
FLASH_END = 0x04
MEM_BEGIN = 0x05
MEM_END = 0x06
MEM_DATA = 0x07
SYNC = 0x08
WRITE_REG = 0x09
READ_REG = 0x0A
SPI_SET_PARAMS = 0x0B
SPI_ATTACH = 0x0D
CHANGE_BAUDRATE = 0x0F
FLASH_DEFL_BEGIN = 0x10
FLASH_DEFL_DATA = 0x11
FLASH_DEFL_END = 0x12
SPI_FLASH_MD5 = 0x13
GET_SECURITY_INFO = 0x14

ROM_INVALID_COMMAND = 0x05
ROM_BAD_DATA_CHECKSUM = 0x07

CHIP_DETECT_MAGIC_REG = 0x40001000


@dataclass(frozen=True)
class ChipFacts:
    name: str
    magic: int | None            # value at 0x40001000 (chips detected by magic)
    chip_id: int | None          # chip id in GET_SECURITY_INFO (ESP32-S3 and later)
    # SPI0/1 data register W0: the flash ID reads from here after a RDID command.
    spi_w0: int
    extended_defl_begin: bool    # 5-word FLASH_DEFL_BEGIN (all ROMs but ESP32/ESP8266)
    # Other registers esptool reads, as a chip with a 40 MHz crystal answers them.
    regs: dict[int, int] = field(default_factory=dict)


CHIPS = {
    # ESP32: RTC calibration value (RTCCALICFG1 bits 7..31) and efuse word 4
    # (CK8M frequency) from which esptool recomputes the ROM's crystal guess
    # before CHANGE_BAUDRATE: 1280 * 15625 * 80 / 40 = 40 MHz.
    "esp32": ChipFacts("ESP32", 0x00F01D83, None, 0x3FF42000 + 0x80, False,
                       {0x3FF5F06C: 1280 << 7, 0x3FF5A010: 80}),
    "esp32s3": ChipFacts("ESP32-S3", 0x00000009, 9, 0x60002000 + 0x58, True),
    "esp32c3": ChipFacts("ESP32-C3", None, 5, 0x60002000 + 0x58, True),
}

# A Winbond W25Q32 (vendor 0xEF, device 0x4016 = 4 MB) as the RDID answer.
FLASH_ID = 0x1640EF


def slip_encode(payload: bytes) -> bytes:
    return b"\xc0" + payload.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + b"\xc0"


def _checksum(data: bytes) -> int:
    c = 0xEF
    for b in data:
        c ^= b
    return c


@dataclass
class _Write:
    offset: int
    size: int               # uncompressed size announced by BEGIN (rounded up by ROM)
    compressed: bool
    received: bytearray = field(default_factory=bytearray)
    decomp: object = None
    next_seq: int = 0


class FakeEspRom:
    """A fake ESP ROM bootloader serving on a pty.  Use as a context manager.

    `port` is the path of the pty the flasher opens.  After the run, `writes`
    holds {offset: bytes received}, `commands` the opcodes seen in order,
    `baud_requests` the CHANGE_BAUDRATE arguments.
    """

    def __init__(self, chip: str = "esp32", *, flash_size: int = 4 << 20, silent: bool = False):
        self.facts = CHIPS[chip]
        self.silent = silent
        self.flash = bytearray(b"\xff" * flash_size)
        self.writes: dict[int, bytes] = {}
        self.commands: list[int] = []
        self.baud_requests: list[int] = []
        self.spi_params: list[tuple] = []
        self.errors: list[str] = []
        self.ram: dict[int, bytes] = {}
        self.stub_entry: int | None = None
        self.stub = False
        self._mem: list | None = None
        self._cur: _Write | None = None
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fake-esp-rom", daemon=True)

    # -- lifecycle -------------------------------------------------------
    def __enter__(self) -> FakeEspRom:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass
        self._master = self._slave = -1

    # -- transport -------------------------------------------------------
    def _serve(self) -> None:
        buf = bytearray()
        in_frame = False
        escape = False
        while not self._stop.is_set():
            try:
                r, _, _ = select.select([self._master], [], [], 0.05)
            except (OSError, ValueError):
                return
            if not r:
                continue
            try:
                chunk = os.read(self._master, 65536)
            except OSError:
                continue  # no reader on the other side yet
            if self.silent:
                continue
            for b in chunk:
                if b == 0xC0:
                    if in_frame and buf:
                        self._handle(bytes(buf))
                    buf.clear()
                    in_frame = True
                    escape = False
                    continue
                if not in_frame:
                    continue
                if escape:
                    buf.append({0xDC: 0xC0, 0xDD: 0xDB}.get(b, b))
                    escape = False
                elif b == 0xDB:
                    escape = True
                else:
                    buf.append(b)

    def _reply(self, op: int, value: int = 0, data: bytes = b"", status: int = 0, error: int = 0) -> None:
        # The ROM sends 4 status bytes (2 reserved), the stub 2.
        body = data + (bytes([status, error]) if self.stub else bytes([status, error, 0, 0]))
        pkt = struct.pack("<BBHI", 1, op, len(body), value) + body
        os.write(self._master, slip_encode(pkt))

    # -- protocol --------------------------------------------------------
    def _handle(self, pkt: bytes) -> None:
        if len(pkt) < 8 or pkt[0] != 0:
            return
        _, op, size, chk = struct.unpack("<BBHI", pkt[:8])
        data = pkt[8:8 + size]
        self.commands.append(op)
        handler = {
            SYNC: self._sync,
            READ_REG: self._read_reg,
            WRITE_REG: lambda op, d, c: self._reply(op),
            GET_SECURITY_INFO: self._security_info,
            SPI_ATTACH: lambda op, d, c: self._reply(op),
            SPI_SET_PARAMS: self._set_params,
            CHANGE_BAUDRATE: self._change_baud,
            FLASH_BEGIN: self._begin,
            FLASH_DEFL_BEGIN: self._begin,
            FLASH_DATA: self._data,
            FLASH_DEFL_DATA: self._data,
            FLASH_END: self._end,
            FLASH_DEFL_END: self._end,
            SPI_FLASH_MD5: self._md5,
            MEM_BEGIN: self._mem_begin,
            MEM_DATA: self._mem_data,
            MEM_END: self._mem_end,
        }.get(op)
        if handler is None:
            self._reply(op, status=1, error=ROM_INVALID_COMMAND)
            return
        handler(op, data, chk)

    def _sync(self, op, data, chk) -> None:
        if data != b"\x07\x07\x12\x20" + b"\x55" * 32:
            return
        for _ in range(8):  # the ROM answers a SYNC eight times, with a non-zero value (the stub: 0)
            self._reply(op, value=0 if self.stub else 0x20120707)

    def _read_reg(self, op, data, chk) -> None:
        (addr,) = struct.unpack("<I", data[:4])
        value = 0
        if addr == CHIP_DETECT_MAGIC_REG and self.facts.magic is not None:
            value = self.facts.magic
        elif addr == self.facts.spi_w0:
            value = FLASH_ID
        else:
            value = self.facts.regs.get(addr, 0)
        self._reply(op, value=value)

    def _security_info(self, op, data, chk) -> None:
        if self.facts.chip_id is None:  # the ESP32 ROM has no such command
            self._reply(op, status=1, error=ROM_INVALID_COMMAND)
            return
        info = struct.pack("<IBBBBBBBBII", 0, 0, 0, 0, 0, 0, 0, 0, 0, self.facts.chip_id, 0)
        self._reply(op, data=info)

    def _set_params(self, op, data, chk) -> None:
        self.spi_params.append(struct.unpack("<6I", data[:24]))
        self._reply(op)

    def _change_baud(self, op, data, chk) -> None:
        self.baud_requests.append(struct.unpack("<II", data[:8])[0])
        self._reply(op)

    def _begin(self, op, data, chk) -> None:
        words = 5 if (self.stub or self.facts.extended_defl_begin) else 4
        size, _blocks, _block_size, offset = struct.unpack("<4I", data[:16])
        if len(data) != 4 * words:
            self.errors.append(f"begin with {len(data)} bytes of parameters, expected {4 * words}")
        # the ROM erases the region up front
        self.flash[offset:offset + size] = b"\xff" * min(size, len(self.flash) - offset)
        compressed = op == FLASH_DEFL_BEGIN
        self._cur = _Write(offset, size, compressed,
                           decomp=zlib.decompressobj() if compressed else None)
        self.writes[offset] = b""
        self._reply(op)

    def _data(self, op, data, chk) -> None:
        cur = self._cur
        size, seq, _, _ = struct.unpack("<4I", data[:16])
        block = data[16:16 + size]
        if cur is None or seq != cur.next_seq or _checksum(block) != (chk & 0xFF):
            self.errors.append(f"bad block seq={seq}")
            self._reply(op, status=1, error=ROM_BAD_DATA_CHECKSUM)
            return
        cur.next_seq += 1
        out = cur.decomp.decompress(block) if cur.compressed else block
        at = cur.offset + len(cur.received)
        cur.received += out
        self.flash[at:at + len(out)] = out
        self.writes[cur.offset] = bytes(cur.received)
        self._reply(op)

    def _end(self, op, data, chk) -> None:
        self._cur = None
        self._reply(op)

    def _md5(self, op, data, chk) -> None:
        addr, size, _, _ = struct.unpack("<4I", data[:16])
        md5 = hashlib.md5(bytes(self.flash[addr:addr + size]))
        # the ROM answers with 32 hex characters, the stub with the 16 raw bytes
        self._reply(op, data=md5.digest() if self.stub else md5.hexdigest().encode())

    def _mem_begin(self, op, data, chk) -> None:
        size, _blocks, _block_size, offset = struct.unpack("<4I", data[:16])
        self._mem = [offset, size, bytearray(), 0]
        self._reply(op)

    def _mem_data(self, op, data, chk) -> None:
        size, seq, _, _ = struct.unpack("<4I", data[:16])
        block = data[16:16 + size]
        if self._mem is None or seq != self._mem[3] or _checksum(block) != (chk & 0xFF):
            self.errors.append(f"bad RAM block seq={seq}")
            self._reply(op, status=1, error=ROM_BAD_DATA_CHECKSUM)
            return
        self._mem[2] += block
        self._mem[3] += 1
        if len(self._mem[2]) >= self._mem[1]:
            self.ram[self._mem[0]] = bytes(self._mem[2])
        self._reply(op)

    def _mem_end(self, op, data, chk) -> None:
        no_entry, entry = struct.unpack("<II", data[:8])
        self._reply(op)
        if not no_entry:
            # "jump" to the uploaded code: the stub flasher greets and takes over
            self.stub_entry = entry
            self.stub = True
            os.write(self._master, slip_encode(b"OHAI"))


def main() -> None:  # pragma: no cover - a manual aid: `python tests/fake_esp_rom.py esp32s3`
    import sys
    import time

    with FakeEspRom(sys.argv[1] if len(sys.argv) > 1 else "esp32") as rom:
        print(f"fake {rom.facts.name} ROM bootloader on {rom.port} (Ctrl-C to stop)", flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
