"""UF2, STM32 serial bootloader and pyocd flashers: what can run here without a board.

UF2: conversion round trips (ELF built by the real arm-none-eabi-gcc, raw
.bin) and the copy onto a folder that stands in for the mounted RPI-RP2
drive (it holds INFO_UF2.TXT as the real drive does).  stm32flash and pyocd:
tool detection, missing-tool errors, the stm32flash argument list.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tinyedge.boards import get_board
from tinyedge.errors import FlashError, InputFileError, ToolMissingError, UsageError
from tinyedge.flashers import REGISTRY, Flasher, get_flasher
from tinyedge.flashers.dispatch import flash_project
from tinyedge.flashers.stm32_serial import elf_to_bin, stm32flash_args
from tinyedge.flashers.uf2 import (
    BLOCK_SIZE,
    MAGIC_END,
    MAGIC_START0,
    MAGIC_START1,
    bin_to_uf2,
    check_rp2040_boot2,
    crc32_mpeg2,
    elf_segments,
    elf_to_uf2,
    find_volume,
    parse_uf2,
    to_uf2,
)

RP2040 = 0xE48BFF56
INFO_UF2 = "UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: RPI-RP2\n"


def fake_rp2_drive(root: Path, name: str = "RPI-RP2") -> Path:
    """A folder standing in for the mounted RPI-RP2 drive (the files the RP2040 ROM shows)."""
    vol = root / name
    vol.mkdir(parents=True)
    (vol / "INFO_UF2.TXT").write_text(INFO_UF2)
    (vol / "INDEX.HTM").write_text("<html><head><meta http-equiv='refresh' content='0;URL=...'></head></html>")
    return vol


@pytest.fixture(scope="module")
def pico_elf(tmp_path_factory) -> Path:
    """A small Cortex-M0+ ELF linked at the RP2040's flash (0x10000000) with data copied from flash."""
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        pytest.fail("arm-none-eabi-gcc is not installed; `make test` installs it (Makefile: system-deps)")
    d = tmp_path_factory.mktemp("pico")
    boot2 = bytes(range(252))
    crc = crc32_mpeg2(boot2)
    init = ", ".join(str(b) for b in boot2 + crc.to_bytes(4, "little"))
    (d / "main.c").write_text(
        "__attribute__((section(\".boot2\"), used)) const unsigned char te_boot2[256] = {" + init + "};\n"
        "const unsigned char te_table[300] = {1, 2, 3, [299] = 9};\n"
        "unsigned int te_counter = 0x12345678u;\n"
        "void _start(void) { for (;;) { te_counter += te_table[te_counter % 300]; } }\n")
    (d / "link.ld").write_text(
        "MEMORY { FLASH (rx) : ORIGIN = 0x10000000, LENGTH = 2M\n"
        "         RAM (rwx) : ORIGIN = 0x20000000, LENGTH = 256K }\n"
        "ENTRY(_start)\n"
        "SECTIONS { .boot2 : { KEEP(*(.boot2)) } > FLASH\n"
        "           .text : { *(.text*) *(.rodata*) } > FLASH\n"
        "           .data : { *(.data*) } > RAM AT > FLASH\n"
        "           .bss : { *(.bss*) } > RAM }\n")
    elf = d / "fw.elf"
    subprocess.run([gcc, "-mcpu=cortex-m0plus", "-mthumb", "-O1", "-nostdlib", "-T", str(d / "link.ld"),
                    str(d / "main.c"), "-o", str(elf)], check=True, capture_output=True)
    return elf


def test_registry_classes_follow_the_interface():
    for method in ("esptool", "pyocd", "stm32-serial", "uf2"):
        f = get_flasher(method)
        assert isinstance(f, Flasher) and f.name == method and f.needs
    assert {"esptool", "pyocd", "stm32-serial", "uf2"} <= set(REGISTRY)


# -- UF2 --------------------------------------------------------------------------

def test_uf2_block_layout():
    data = bytes(range(256)) * 3 + b"\x01\x02"
    uf2 = bin_to_uf2(data, 0x10000000, RP2040)
    assert len(uf2) == 4 * BLOCK_SIZE
    for i in range(4):
        blk = uf2[i * BLOCK_SIZE:(i + 1) * BLOCK_SIZE]
        m0, m1, flags, addr, size, no, num, fam = struct.unpack_from("<8I", blk)
        assert (m0, m1) == (MAGIC_START0, MAGIC_START1)
        assert struct.unpack_from("<I", blk, 508)[0] == MAGIC_END
        assert flags == 0x2000 and fam == RP2040
        assert (addr, size, no, num) == (0x10000000 + 256 * i, 256, i, 4)
    assert uf2[3 * BLOCK_SIZE + 32: 3 * BLOCK_SIZE + 34] == b"\x01\x02"


def test_uf2_round_trip_bin():
    rng = random.Random(3)
    data = rng.randbytes(10_000)
    family, blocks = parse_uf2(bin_to_uf2(data, 0x10000000, RP2040))
    assert family == RP2040
    flat = b"".join(blocks[a] for a in sorted(blocks))
    assert flat[: len(data)] == data and set(flat[len(data):]) <= {0}
    assert sorted(blocks) == list(range(0x10000000, 0x10000000 + len(flat), 256))


def test_uf2_unaligned_segments_and_overlap():
    fam, blocks = parse_uf2(to_uf2([(0x10000010, b"ab"), (0x10000300, b"cd")], RP2040))
    assert blocks[0x10000000][0x10:0x12] == b"ab" and blocks[0x10000300][:2] == b"cd"
    with pytest.raises(InputFileError, match="both write"):
        to_uf2([(0x100, b"abcd"), (0x102, b"xy")], RP2040)


def test_uf2_rejects_corrupt_file():
    uf2 = bytearray(bin_to_uf2(b"x" * 600, 0x10000000, RP2040))
    uf2[BLOCK_SIZE + 508] ^= 1
    with pytest.raises(InputFileError, match="magic"):
        parse_uf2(bytes(uf2))
    with pytest.raises(InputFileError):
        parse_uf2(bytes(uf2[:700]))


def test_uf2_from_real_elf_round_trip(pico_elf):
    segs = elf_segments(pico_elf)
    assert segs and all(a >= 0x10000000 for a, _ in segs)  # .data's load address is in flash
    family, blocks = parse_uf2(elf_to_uf2(pico_elf, RP2040))
    assert family == RP2040
    for addr, data in segs:
        for i in range(0, len(data)):
            a = addr + i
            page = a - a % 256
            assert blocks[page][a - page] == data[i]
    # the initial value of te_counter travels in flash
    assert any(struct.pack("<I", 0x12345678) in d for _, d in segs)


def test_find_volume(tmp_path):
    with pytest.raises(FlashError, match="BOOTSEL"):
        find_volume("RPI-RP2", [tmp_path])
    vol = fake_rp2_drive(tmp_path / "media")
    (tmp_path / "media" / "USBSTICK").mkdir()  # a drive without INFO_UF2.TXT is not it
    assert find_volume("RPI-RP2", [tmp_path / "media"]) == vol
    # the label is also found in INFO_UF2.TXT when the mount point has another name
    other = tmp_path / "m2" / "sdb1"
    other.mkdir(parents=True)
    (other / "INFO_UF2.TXT").write_text(INFO_UF2)
    with pytest.raises(FlashError, match="several"):
        find_volume("RPI-RP2", [tmp_path / "media", tmp_path / "m2"])


def _pico_project(root: Path, elf: Path | None = None, bin_data: bytes | None = None) -> Path:
    proj = root / "proj"
    (proj / "build").mkdir(parents=True)
    (proj / "tinyedge-project.json").write_text(json.dumps({"board": "rpi-pico", "runtime": "aot"}))
    if elf is not None:
        shutil.copy(elf, proj / "build" / "firmware.elf")
        (proj / "build" / "tinyedge-build.json").write_text(json.dumps({"artifacts": {"elf": "build/firmware.elf"}}))
    if bin_data is not None:
        (proj / "build" / "firmware.bin").write_bytes(bin_data)
    return proj


def test_uf2_flash_project_copies_to_the_drive(tmp_path, pico_elf):
    proj = _pico_project(tmp_path, elf=pico_elf)
    vol = fake_rp2_drive(tmp_path / "media")
    calls = []
    res = flash_project(proj, options={"roots": [str(tmp_path / "media")]},
                        progress=lambda d, t: calls.append((d, t)))
    written = Path(res.details["file"])
    assert written.parent == vol
    assert written.read_bytes() == elf_to_uf2(pico_elf, RP2040)
    assert res.port is None and res.process is None
    assert calls[-1][0] == calls[-1][1] == written.stat().st_size


def test_crc32_mpeg2_and_boot2_check():
    assert crc32_mpeg2(b"123456789") == 0x0376E6E7  # the catalogue check value
    boot2 = random.Random(9).randbytes(252)
    good = boot2 + crc32_mpeg2(boot2).to_bytes(4, "little")
    check_rp2040_boot2({0x10000000: good})
    with pytest.raises(FlashError, match="boot2"):
        check_rp2040_boot2({0x10000000: good[:-1] + bytes([good[-1] ^ 1])})
    with pytest.raises(FlashError, match="boot2"):
        check_rp2040_boot2({0x10000100: good})


def test_uf2_image_without_boot2_is_refused(tmp_path):
    proj = _pico_project(tmp_path, bin_data=b"\x00" * 1024)
    vol = fake_rp2_drive(tmp_path / "media")
    with pytest.raises(FlashError, match="boot2"):
        flash_project(proj, options={"volume": str(vol)})
    assert sorted(p.name for p in vol.iterdir()) == ["INDEX.HTM", "INFO_UF2.TXT"]  # nothing copied


def test_uf2_flash_bin_at_flash_origin(tmp_path):
    boot2 = random.Random(4).randbytes(252)
    data = boot2 + crc32_mpeg2(boot2).to_bytes(4, "little") + random.Random(5).randbytes(744)
    proj = _pico_project(tmp_path, bin_data=data)
    vol = fake_rp2_drive(tmp_path / "media")
    res = get_flasher("uf2")
    res.volume = str(vol)
    out = res.flash(proj, get_board("rpi-pico"))
    fam, blocks = parse_uf2(Path(out.details["file"]).read_bytes())
    assert fam == RP2040 and min(blocks) == 0x10000000
    assert b"".join(blocks[a] for a in sorted(blocks))[:1000] == data


def test_uf2_wrong_family_is_refused(tmp_path):
    proj = _pico_project(tmp_path)
    (proj / "build" / "fw.uf2").write_bytes(bin_to_uf2(b"x" * 10, 0x10000000, 0x57755A57))  # STM32F4
    fake_rp2_drive(tmp_path / "media")
    with pytest.raises(UsageError, match="family"):
        flash_project(proj, options={"roots": [str(tmp_path / "media")]})


def test_cli_uf2_without_drive_is_one_line(tmp_path, run_cli, pico_elf):
    proj = _pico_project(tmp_path, elf=pico_elf)
    r = run_cli("flash", proj, "--volume", tmp_path / "nothing-here", timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("error:") == 1 and "INFO_UF2.TXT" in r.stderr


# -- STM32 serial bootloader (stm32flash) --------------------------------------------

def test_stm32flash_argument_list(tmp_path):
    args = stm32flash_args(tmp_path / "fw.bin", "/dev/ttyACM0", baud=921600, start=0x08000000)
    assert args == ["stm32flash", "-b", "115200", "-m", "8e1", "-w", str(tmp_path / "fw.bin"), "-v",
                    "-S", "0x08000000", "-g", "0x08000000", "/dev/ttyACM0"]
    hexargs = stm32flash_args("fw.hex", "/dev/ttyUSB0", is_bin=False)
    assert "-S" not in hexargs and hexargs[-1] == "/dev/ttyUSB0"
    with pytest.raises(UsageError):
        stm32flash_args("fw.bin", "-R")  # a port that would be read as an option
    with pytest.raises(UsageError):
        stm32flash_args("fw.bin", "/dev/ttyS0", mode="8e1 -R")


def test_elf_to_bin_for_stm32flash(tmp_path, pico_elf):
    out = elf_to_bin(pico_elf, tmp_path / "fw.bin", 0x10000000)
    data = out.read_bytes()
    for addr, seg in elf_segments(pico_elf):
        assert data[addr - 0x10000000: addr - 0x10000000 + len(seg)] == seg


def _empty_path_env(tmp_path) -> dict[str, str]:
    empty = tmp_path / "empty-bin"
    empty.mkdir(exist_ok=True)
    return {"PATH": str(empty)}


def test_stm32flash_missing_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", _empty_path_env(tmp_path)["PATH"])
    with pytest.raises(ToolMissingError, match="apt-get install stm32flash"):
        get_flasher("stm32-serial").check()


def test_cli_stm32flash_missing(tmp_path, run_cli, pico_elf):
    proj = tmp_path / "stm"
    (proj / "build").mkdir(parents=True)
    shutil.copy(pico_elf, proj / "build" / "fw.elf")
    (proj / "tinyedge-project.json").write_text(json.dumps({"board": "nucleo-l4r5zi"}))
    env = _empty_path_env(tmp_path)
    r = subprocess.run([sys.executable, "-m", "tinyedge", "flash", str(proj), "--method", "stm32-serial",
                        "--port", "/dev/null"], capture_output=True, text=True, env={**os.environ, **env},
                       timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("error:") == 1 and "stm32flash is not installed" in r.stderr


def test_method_must_be_one_of_the_boards(tmp_path):
    proj = _pico_project(tmp_path)
    with pytest.raises(UsageError, match="methods are: uf2, pyocd"):
        flash_project(proj, method="esptool")


# -- pyocd (optional extra) -----------------------------------------------------------

def test_pyocd_missing_says_how_to_install(monkeypatch):
    # An import of pyocd that fails, as on an install without the [probe] extra.
    monkeypatch.setitem(sys.modules, "pyocd", None)
    with pytest.raises(ToolMissingError) as e:
        get_flasher("pyocd").check()
    assert "tinyedge[probe]" in str(e.value)


def test_cli_pyocd_missing_one_line(tmp_path, run_cli, pico_elf):
    try:
        import pyocd  # noqa: F401
        pytest.skip("pyocd is installed here")
    except ImportError:
        pass
    proj = tmp_path / "nrf"
    (proj / "build").mkdir(parents=True)
    shutil.copy(pico_elf, proj / "build" / "fw.elf")
    (proj / "tinyedge-project.json").write_text(json.dumps({"board": "nrf52840dk"}))
    r = run_cli("flash", proj, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("error:") == 1 and "pyocd is not installed" in r.stderr and "[probe]" in r.stderr


def test_pyocd_no_probe_is_one_line(tmp_path, pico_elf):
    pytest.importorskip("pyocd", reason="pyocd is the optional [probe] extra")
    proj = tmp_path / "nrf"
    (proj / "build").mkdir(parents=True)
    shutil.copy(pico_elf, proj / "build" / "fw.elf")
    (proj / "tinyedge-project.json").write_text(json.dumps({"board": "nrf52840dk"}))
    with pytest.raises(FlashError, match="no debug probe"):
        flash_project(proj)


# -- the real stm32flash against a FAKE STM32 ROM bootloader on a pty --------------------

class FakeStm32Rom:
    """A FAKE STM32 system-memory bootloader (AN3155, USART) on a pty, for tests only.

    Answers the init byte, GET, GET_VERSION, GET_ID (with `pid`), READ,
    WRITE, EXTENDED ERASE and GO; stores writes in a sparse memory so a test
    can compare them with the image.  No STM32 is attached here.
    """

    ACK, NACK = 0x79, 0x1F
    COMMANDS = bytes([0x00, 0x01, 0x02, 0x11, 0x21, 0x31, 0x44, 0x63, 0x73, 0x82, 0x92])

    def __init__(self, pid: int):
        import threading
        import tty

        self.pid = pid
        self.memory: dict[int, int] = {}
        self.erased: list = []
        self.go: list[int] = []
        self.errors: list[str] = []
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)
        os.close(self._master)
        os.close(self._slave)

    def _read(self, n: int) -> bytes:
        import select

        out = b""
        while len(out) < n:
            if self._stop.is_set():
                raise EOFError
            r, _, _ = select.select([self._master], [], [], 0.05)
            if r:
                try:
                    out += os.read(self._master, n - len(out))
                except OSError:
                    continue
        return out

    def _send(self, *parts) -> None:
        os.write(self._master, b"".join(bytes(p) if not isinstance(p, int) else bytes([p]) for p in parts))

    def _addr(self) -> int | None:
        raw = self._read(5)
        cks = 0
        for b in raw[:4]:
            cks ^= b
        if cks != raw[4]:
            self.errors.append("address checksum")
            self._send(self.NACK)
            return None
        self._send(self.ACK)
        return int.from_bytes(raw[:4], "big")

    def _serve(self) -> None:
        try:
            while True:
                c = self._read(1)[0]
                if c == 0x7F:
                    self._send(self.ACK)
                    continue
                if self._read(1)[0] != c ^ 0xFF:
                    self._send(self.NACK)
                    continue
                self._send(self.ACK)
                if c == 0x00:      # GET
                    self._send(len(self.COMMANDS), 0x31, self.COMMANDS, self.ACK)
                elif c == 0x01:    # GET_VERSION
                    self._send(0x31, 0, 0, self.ACK)
                elif c == 0x02:    # GET_ID
                    self._send(1, self.pid >> 8, self.pid & 0xFF, self.ACK)
                elif c == 0x11:    # READ
                    a = self._addr()
                    if a is None:
                        continue
                    n, ncheck = self._read(2)
                    if n ^ 0xFF != ncheck:
                        self._send(self.NACK)
                        continue
                    self._send(self.ACK, bytes(self.memory.get(a + i, 0xFF) for i in range(n + 1)))
                elif c == 0x31:    # WRITE
                    a = self._addr()
                    if a is None:
                        continue
                    n = self._read(1)[0]
                    data = self._read(n + 1)
                    cks = n
                    for b in data:
                        cks ^= b
                    if cks != self._read(1)[0]:
                        self.errors.append("write checksum")
                        self._send(self.NACK)
                        continue
                    for i, b in enumerate(data):
                        self.memory[a + i] = b
                    self._send(self.ACK)
                elif c == 0x44:    # EXTENDED ERASE
                    head = self._read(2)
                    n = int.from_bytes(head, "big")
                    if n >= 0xFFF0:  # special (mass/bank) erase
                        self._read(1)
                        self.erased.append(("special", n))
                        self.memory.clear()
                    else:
                        pages = self._read(2 * (n + 1))
                        self._read(1)
                        self.erased.append(tuple(int.from_bytes(pages[i:i + 2], "big")
                                                 for i in range(0, len(pages), 2)))
                    self._send(self.ACK)
                elif c == 0x21:    # GO
                    a = self._addr()
                    if a is not None:
                        self.go.append(a)
                        self._send(self.ACK)
                else:
                    self._send(self.NACK)
        except (EOFError, OSError):
            return


def _stm32_project(root: Path, board: str, data: bytes) -> Path:
    proj = root / "stm"
    (proj / "build").mkdir(parents=True)
    (proj / "build" / "firmware.bin").write_bytes(data)
    (proj / "tinyedge-project.json").write_text(json.dumps({"board": board}))
    (proj / "build" / "tinyedge-build.json").write_text(json.dumps({"artifacts": {"bin": "build/firmware.bin"}}))
    return proj


@pytest.mark.parametrize("board, pid", [("nucleo-l4r5zi", 0x470), ("stm32f746g-disco", 0x449)])
def test_stm32flash_writes_through_the_rom_protocol(tmp_path, board, pid):
    if shutil.which("stm32flash") is None:
        pytest.skip("stm32flash is not installed (apt-get install stm32flash)")
    data = random.Random(11).randbytes(3000) + bytes(1000)
    proj = _stm32_project(tmp_path, board, data)
    calls = []
    with FakeStm32Rom(pid) as rom:
        # A pty has no parity bit, so 8N1 here; a real UART uses the bootloader's 8E1.
        res = flash_project(proj, port=rom.port, method="stm32-serial", options={"mode": "8n1"},
                            progress=lambda d, t: calls.append((d, t)))
    assert rom.errors == []
    got = bytes(rom.memory.get(0x08000000 + i, 0xFF) for i in range(len(data)))
    assert got == data
    assert rom.erased, "stm32flash erases before writing"
    assert rom.go == [0x08000000]
    assert res.details["args"][-1] == rom.port and "-v" in res.details["args"]
    assert calls and calls[-1] == (len(data), len(data))


def test_stm32flash_silent_bootloader_is_one_line(tmp_path, run_cli):
    if shutil.which("stm32flash") is None:
        pytest.skip("stm32flash is not installed (apt-get install stm32flash)")
    proj = _stm32_project(tmp_path, "nucleo-l4r5zi", b"\x00" * 64)
    master, slave = os.openpty()  # nobody answers on it: BOOT0 was not set
    try:
        with pytest.raises(FlashError, match="did not answer.*BOOT0"):
            flash_project(proj, port=os.ttyname(slave), method="stm32-serial", options={"mode": "8n1"})
        # through the CLI (8E1, which a pty refuses): still one line, exit 2
        r = run_cli("flash", proj, "--method", "stm32-serial", "--port", os.ttyname(slave), timeout=120)
    finally:
        os.close(master)
        os.close(slave)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("error:") == 1 and "stm32flash" in r.stderr


@pytest.fixture(scope="module")
def built_nucleo(mlperf_tflite, tmp_path_factory) -> Path:
    """A real generated and built project: MLPerf ad01, runtime aot, NUCLEO-L4R5ZI."""
    from tinyedge.builder import build_project
    from tinyedge.project import generate_project

    out = tmp_path_factory.mktemp("nucleo") / "project"
    generate_project(mlperf_tflite["ad01"], get_board("nucleo-l4r5zi"), runtime="aot", out_dir=out)
    build_project(out)
    return out


@pytest.mark.slow
def test_stm32flash_writes_a_real_build(built_nucleo):
    """The built ELF, through tinyedge's ELF->bin and the real stm32flash, equals objcopy's .bin."""
    if shutil.which("stm32flash") is None:
        pytest.skip("stm32flash is not installed (apt-get install stm32flash)")
    record = json.loads((built_nucleo / "build" / "tinyedge-build.json").read_text())
    objcopy_bin = (built_nucleo / record["artifacts"]["bin"]).read_bytes()
    with FakeStm32Rom(0x470) as rom:
        res = flash_project(built_nucleo, method="stm32-serial", port=rom.port, options={"mode": "8n1"})
    assert rom.errors == []
    assert res.details["source"].endswith(".elf")
    got = bytes(rom.memory.get(0x08000000 + i, 0xFF) for i in range(len(objcopy_bin)))
    assert got == objcopy_bin
    assert rom.go == [0x08000000]
