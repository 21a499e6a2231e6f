"""ESP32 flashing: the real esptool code against a FAKE ESP ROM bootloader on a pty.

No ESP32 is attached here.  tests/fake_esp_rom.py speaks the ROM's serial
protocol (without the stub flasher, hence `use_stub=False` / `--no-stub`),
records every byte esptool writes, and answers the MD5 check from them.
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

import pytest
import serial

sys.path.insert(0, str(Path(__file__).parent))
from fake_esp_rom import FLASH_DEFL_DATA, SPI_FLASH_MD5, FakeEspRom  # noqa: E402

from tinyedge.boards import get_board  # noqa: E402
from tinyedge.errors import FlashError, InputFileError, UsageError  # noqa: E402
from tinyedge.flashers import get_flasher  # noqa: E402
from tinyedge.flashers.dispatch import flash_project  # noqa: E402
from tinyedge.flashers.esptool_flasher import (  # noqa: E402
    EsptoolFlasher,
    find_flasher_args,
    load_images,
    read_flasher_args,
)

OFFSETS = {"esp32": 0x1000, "esp32s3": 0x0, "esp32c3": 0x0}
NAMES = {"esp32": "ESP32", "esp32s3": "ESP32-S3", "esp32c3": "ESP32-C3"}


def make_idf_build(root: Path, chip: str, *, app_bytes: int = 40_000, seed: int = 1) -> dict[int, bytes]:
    """An ESP-IDF-like project: tinyedge-project.json and build/flasher_args.json + images."""
    rng = random.Random(seed)
    build = root / "build"
    (build / "bootloader").mkdir(parents=True)
    (build / "partition_table").mkdir()
    # Not ESP images (no 0xE9 magic), so esptool leaves their headers as they are.
    # Real images compress; esptool stops compressing after an image that does not.
    boot = bytes([0x00]) + rng.randbytes(3000) + bytes(3000)
    table = (b"\xaa\x50" + rng.randbytes(30)) * 32 + b"\xff" * 2048
    # Part random, part zeros: compresses, like a real app.
    app = rng.randbytes(app_bytes // 4) + bytes(app_bytes - app_bytes // 4)
    images = {OFFSETS[chip]: boot, 0x8000: table, 0x10000: app}
    (build / "bootloader" / "bootloader.bin").write_bytes(boot)
    (build / "partition_table" / "partition-table.bin").write_bytes(table)
    (build / "tinyedge_app.bin").write_bytes(app)
    args = {
        "write_flash_args": ["--flash_mode", "dio", "--flash_size", "4MB", "--flash_freq", "40m"],
        "flash_settings": {"flash_mode": "dio", "flash_size": "4MB", "flash_freq": "40m"},
        "flash_files": {
            hex(OFFSETS[chip]): "bootloader/bootloader.bin",
            "0x10000": "tinyedge_app.bin",
            "0x8000": "partition_table/partition-table.bin",
        },
        "extra_esptool_args": {"after": "hard_reset", "before": "default_reset", "stub": True, "chip": chip},
    }
    (build / "flasher_args.json").write_text(json.dumps(args, indent=2))
    (root / "tinyedge-project.json").write_text(json.dumps({"board": chip, "runtime": "aot"}))
    return images


def test_read_flasher_args(tmp_path):
    images = make_idf_build(tmp_path, "esp32")
    ea = read_flasher_args(find_flasher_args(tmp_path))
    assert ea.chip == "esp32"
    assert [o for o, _ in ea.files] == sorted(images)
    assert [p.read_bytes() for _, p in ea.files] == [images[o] for o in sorted(images)]
    assert (ea.flash_mode, ea.flash_freq, ea.flash_size) == ("dio", "40m", "4MB")


def test_build_record_fallback_uses_board_offsets(tmp_path):
    images = make_idf_build(tmp_path, "esp32")
    (tmp_path / "build" / "flasher_args.json").unlink()
    (tmp_path / "build" / "tinyedge-build.json").write_text(json.dumps({"artifacts": {
        "bootloader": "build/bootloader/bootloader.bin", "bin": "build/tinyedge_app.bin",
        "partition_table": "build/partition_table/partition-table.bin", "elf": "build/x.elf"}}))
    ea = load_images(tmp_path, get_board("esp32"))
    assert [o for o, _ in ea.files] == [0x1000, 0x8000, 0x10000]
    assert [p.read_bytes() for _, p in ea.files] == [images[o] for o in sorted(images)]
    assert ea.chip == "esp32" and ea.flash_size == "4MB"


def test_missing_build_is_a_clear_error(tmp_path):
    with pytest.raises(InputFileError, match="tinyedge build"):
        find_flasher_args(tmp_path)


def test_build_for_another_chip_is_refused_before_connecting(tmp_path):
    make_idf_build(tmp_path, "esp32s3")
    with pytest.raises(UsageError, match="esp32s3.*esp32"):
        EsptoolFlasher(use_stub=False).flash(tmp_path, get_board("esp32"), port="/dev/null/none")


@pytest.mark.parametrize("chip", ["esp32", "esp32s3", "esp32c3"])
def test_flash_writes_each_image_at_its_offset(tmp_path, chip):
    images = make_idf_build(tmp_path, chip)
    calls = []
    with FakeEspRom(chip) as rom:
        flasher = get_flasher("esptool")
        flasher.use_stub = False
        flasher.connect_attempts = 2
        flasher.check()
        result = flasher.flash(tmp_path, get_board(chip), port=rom.port,
                               progress=lambda d, t: calls.append((d, t)))
    assert rom.errors == []
    assert sorted(rom.writes) == sorted(images)
    for off, data in images.items():
        got = rom.writes[off]
        # the ROM pads to 4 bytes with 0xFF; the bytes themselves must be the file's
        assert got[: len(data)] == data, f"{chip}: image at {off:#x} differs"
        assert set(got[len(data):]) <= {0xFF}
        assert bytes(rom.flash[off: off + len(data)]) == data
    assert FLASH_DEFL_DATA in rom.commands          # compressed blocks
    assert rom.commands.count(SPI_FLASH_MD5) == len(images)  # each region verified
    assert rom.baud_requests == [921600]            # board.flash.flash_baud
    assert result.port == rom.port and result.process is None
    assert result.details["chip"] == NAMES[chip]
    assert result.details["verified"] == "md5"
    total = sum(len(d) for d in images.values())
    assert calls and calls[-1] == (total, total)
    assert all(a[0] <= b[0] for a, b in zip(calls, calls[1:], strict=False))


@pytest.mark.parametrize("chip", ["esp32", "esp32s3", "esp32c3"])
def test_flash_with_the_stub_flasher_uploaded(tmp_path, chip):
    """The default path for real boards: esptool uploads its stub, then writes through it."""
    from esptool.loader import StubFlasher
    from esptool.targets import CHIP_DEFS

    images = make_idf_build(tmp_path, chip, seed=3)
    with FakeEspRom(chip) as rom:
        res = EsptoolFlasher(connect_attempts=2).flash(tmp_path, get_board(chip), port=rom.port)
    stub = StubFlasher(CHIP_DEFS[chip])
    assert rom.ram[stub.text_start] == stub.text          # esptool's own stub image, intact
    if stub.data is not None:
        assert rom.ram[stub.data_start] == stub.data
    assert rom.stub_entry == stub.entry and res.details["stub"] is True
    assert rom.errors == []
    for off, data in images.items():
        assert bytes(rom.flash[off: off + len(data)]) == data
    assert rom.commands.count(SPI_FLASH_MD5) == len(images)


def test_merged_image_lands_at_the_same_offsets(tmp_path):
    images = make_idf_build(tmp_path, "esp32", seed=7)
    with FakeEspRom("esp32") as rom:
        flasher = EsptoolFlasher(use_stub=False, connect_attempts=2, merged=True)
        flasher.flash(tmp_path, get_board("esp32"), port=rom.port)
    assert list(rom.writes) == [0x1000]  # one image, starting at the lowest offset
    for off, data in images.items():
        assert bytes(rom.flash[off: off + len(data)]) == data
    assert set(rom.flash[0x1000 + len(images[0x1000]): 0x8000]) == {0xFF}


def test_flash_project_library_entry(tmp_path):
    images = make_idf_build(tmp_path, "esp32s3", app_bytes=8000)
    with FakeEspRom("esp32s3") as rom:
        res = flash_project(tmp_path, port=rom.port, options={"use_stub": False, "connect_attempts": 2})
    assert rom.writes[0x10000][:8000] == images[0x10000]
    assert res.details["method"] == "esptool"


def test_wrong_chip_names_both(tmp_path):
    make_idf_build(tmp_path, "esp32")
    with FakeEspRom("esp32s3") as rom:
        with pytest.raises(FlashError) as e:
            EsptoolFlasher(use_stub=False, connect_attempts=2).flash(tmp_path, get_board("esp32"),
                                                                      port=rom.port)
    assert "ESP32-S3" in str(e.value) and "'esp32'" in str(e.value)
    assert rom.writes == {}  # nothing was written


# -- through the CLI: one `error:` line, exit status 2, no traceback ----------------

def _assert_one_line_error(r, *words):
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def test_cli_wrong_chip(tmp_path, run_cli):
    make_idf_build(tmp_path, "esp32")
    with FakeEspRom("esp32s3") as rom:
        r = run_cli("flash", tmp_path, "--port", rom.port, "--no-stub", "--connect-attempts", "2", timeout=60)
    _assert_one_line_error(r, "ESP32-S3", "esp32")


def test_cli_port_that_does_not_exist(tmp_path, run_cli):
    make_idf_build(tmp_path, "esp32")
    r = run_cli("flash", tmp_path, "--port", "/dev/ttyUSB-tinyedge-none", "--no-stub", timeout=60)
    _assert_one_line_error(r, "does not exist", "/dev/ttyUSB-tinyedge-none")


def test_cli_busy_port(tmp_path, run_cli):
    make_idf_build(tmp_path, "esp32")
    with FakeEspRom("esp32") as rom:
        holder = serial.Serial(rom.port, exclusive=True)  # e.g. a serial monitor left open
        try:
            r = run_cli("flash", tmp_path, "--port", rom.port, "--no-stub", "--connect-attempts", "1",
                        timeout=60)
        finally:
            holder.close()
    _assert_one_line_error(r, "busy", rom.port)
    assert rom.writes == {}


def test_cli_board_that_never_enters_the_bootloader(tmp_path, run_cli):
    make_idf_build(tmp_path, "esp32")
    with FakeEspRom("esp32", silent=True) as rom:
        r = run_cli("flash", tmp_path, "--port", rom.port, "--no-stub", "--connect-attempts", "1",
                    timeout=60)
    _assert_one_line_error(r, "no answer", rom.port)


def test_cli_flash_success_json(tmp_path, run_cli):
    images = make_idf_build(tmp_path, "esp32", app_bytes=12000)
    with FakeEspRom("esp32") as rom:
        r = run_cli("flash", tmp_path, "--port", rom.port, "--no-stub", "--connect-attempts", "2", "--json",
                    timeout=60)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["chip"] == "ESP32" and doc["verified"] == "md5" and doc["port"] == rom.port
    assert rom.writes[0x10000][:12000] == images[0x10000]
    assert os.path.exists(tmp_path / "build" / "flasher_args.json")


def test_cli_port_left_out_with_no_board_attached(tmp_path, run_cli):
    from tinyedge.ports import list_ports

    if any(p.likely_board for p in list_ports()):
        pytest.skip("a board-like serial port is attached to this machine")
    make_idf_build(tmp_path, "esp32")
    r = run_cli("flash", tmp_path, timeout=60)
    _assert_one_line_error(r, "no serial port found for board esp32", "--port")
