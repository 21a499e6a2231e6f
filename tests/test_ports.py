"""Port discovery on lists of pyserial ListPortInfo records with real boards' USB ids."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from serial.tools.list_ports_common import ListPortInfo

from tinyedge.boards import get_board
from tinyedge.errors import UsageError
from tinyedge.ports import KNOWN_USB, describe, list_ports, parse_usb_id, pick_port


def port(device: str, vid: int | None = None, pid: int | None = None, desc: str = "") -> ListPortInfo:
    """A pyserial port record as list_ports.comports() gives it on Linux."""
    p = ListPortInfo(device, skip_link_detection=True)
    p.vid, p.pid = vid, pid
    if desc:
        p.description = desc
    return p


# Real boards as they enumerate.
ESP32_DEVKITC = port("/dev/ttyUSB0", 0x10C4, 0xEA60, "CP2102 USB to UART Bridge Controller")
ESP32_CH340 = port("/dev/ttyUSB1", 0x1A86, 0x7523, "USB Serial")
ESP32S3_USB = port("/dev/ttyACM0", 0x303A, 0x1001, "USB JTAG/serial debug unit")
NUCLEO = port("/dev/ttyACM1", 0x0483, 0x374B, "STM32 STLink")
NRF52_DK = port("/dev/ttyACM2", 0x1366, 0x1015, "J-Link")
PICO = port("/dev/ttyACM3", 0x2E8A, 0x000A, "Board CDC")
MICROBIT = port("/dev/ttyACM4", 0x0D28, 0x0204, "BBC micro:bit CMSIS-DAP")
PLAIN_TTY = port("/dev/ttyS0")
MODEM = port("/dev/ttyACM9", 0x1BC7, 0x1201, "LTE modem")


def test_known_usb_table_is_sorted_and_unique():
    keys = list(KNOWN_USB)
    # by vendor, then product; a vendor's catch-all (pid None) comes last
    assert keys == sorted(keys, key=lambda k: (k[0], 1 << 16 if k[1] is None else k[1]))
    assert len(set(keys)) == len(keys)


def test_every_board_usb_id_parses():
    from tinyedge.boards import all_boards

    for b in all_boards().values():
        for uid in b.flash.usb_ids:
            vid, pid = parse_usb_id(uid)
            assert 0 < vid < 1 << 16 and 0 <= pid < 1 << 16, (b.id, uid)


@pytest.mark.parametrize("rec, kind_word, family, board", [
    (ESP32_DEVKITC, "CP210x", "esp32", "esp32"),
    (ESP32_CH340, "CH340", "esp32", "esp32"),
    (ESP32S3_USB, "USB-JTAG", "esp32", "esp32s3"),
    (NUCLEO, "ST-Link", "cortex-m", "nucleo-l4r5zi"),
    (NRF52_DK, "J-Link", "cortex-m", "nrf52840dk"),
    (PICO, "Pico", "cortex-m", "rpi-pico"),
    (MICROBIT, "CMSIS-DAP", "cortex-m", "nrf52840dk"),
])
def test_guess(rec, kind_word, family, board):
    info = describe(rec)
    assert kind_word in info.kind
    assert info.family == family
    assert board in info.boards
    assert info.likely_board
    assert info.usb_id == f"{rec.vid:04x}:{rec.pid:04x}"


def test_unknown_ports_are_not_boards():
    assert not describe(PLAIN_TTY).likely_board
    assert not describe(MODEM).likely_board
    assert describe(PLAIN_TTY).description == ""  # pyserial's 'n/a' is dropped


def test_list_ports_puts_boards_first_and_serialises():
    ports = list_ports([PLAIN_TTY, NUCLEO, MODEM, ESP32_DEVKITC])
    assert [p.device for p in ports[:2]] == ["/dev/ttyACM1", "/dev/ttyUSB0"]
    doc = json.loads(json.dumps([p.to_dict() for p in ports]))
    assert doc[1]["usb_id"] == "10c4:ea60" and "esp32" in doc[1]["boards"]


def test_pick_port_one_board():
    assert pick_port(get_board("esp32"), [PLAIN_TTY, MODEM, ESP32_DEVKITC]) == "/dev/ttyUSB0"
    # the board's own usb_ids win over other board-like ports
    assert pick_port(get_board("nucleo-l4r5zi"), [ESP32_DEVKITC, NUCLEO, PLAIN_TTY]) == "/dev/ttyACM1"
    assert pick_port(get_board("rpi-pico"), [PICO, NRF52_DK]) == "/dev/ttyACM3"
    # without a board: the single board-like port
    assert pick_port(None, [PLAIN_TTY, ESP32S3_USB]) == "/dev/ttyACM0"


def test_pick_port_several_lists_them_on_one_line():
    with pytest.raises(UsageError) as e:
        pick_port(get_board("esp32"), [ESP32_DEVKITC, ESP32_CH340, NUCLEO])
    msg = str(e.value)
    assert "\n" not in msg
    assert "/dev/ttyUSB0" in msg and "/dev/ttyUSB1" in msg and "/dev/ttyACM1" not in msg
    assert "--port" in msg


def test_pick_port_none_says_plug_it_in():
    with pytest.raises(UsageError, match="plug the board in.*--port"):
        pick_port(get_board("esp32"), [PLAIN_TTY, MODEM])
    with pytest.raises(UsageError, match="plug the board in"):
        pick_port(get_board("nrf52840dk"), [])


def test_pick_port_falls_back_to_a_usb_uart_of_the_family():
    # An ESP32 board on an FTDI cable the board file does not list: still the one candidate.
    ftdi = port("/dev/ttyUSB3", 0x0403, 0x6015, "FT231X")
    assert pick_port(get_board("esp32s3"), [ftdi, NUCLEO]) == "/dev/ttyUSB3"


def test_cli_ports_json(run_cli):
    r = run_cli("ports", "--json", "--all")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert isinstance(doc["ports"], list)
    for p in doc["ports"]:
        assert {"device", "usb_id", "kind", "family", "boards"} <= set(p)


def test_a_board_reached_only_by_its_usb_serial_jtag_is_said_not_waited_on():
    # The ESP32-C3/S3's native USB-Serial/JTAG flashes the chip, but tinyedge's firmware talks on UART0.
    import pytest

    from tinyedge.errors import UsageError
    from tinyedge.pipeline import _find_port

    for board in ("esp32c3", "esp32s3"):
        b = get_board(board)
        assert "303a:1001" in b.flash.usb_ids and b.flash.flash_only_usb_ids == ("303a:1001",)
        with pytest.raises(UsageError, match=r"only by its USB-Serial/JTAG port /dev/ttyACM0 .*UART0"):
            _find_port(b, [ESP32S3_USB])
        assert _find_port(b, [ESP32_DEVKITC]) == "/dev/ttyUSB0"       # its USB-UART bridge: fine


# ------------------------------------------------------------ one session per port (issue 17, item 15)


@pytest.fixture
def runtime(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYEDGE_RUNTIME_DIR", str(tmp_path / "run"))
    return tmp_path / "run"


def test_a_port_has_one_name_however_it_is_spelled(tmp_path):
    from tinyedge.ports import port_key

    link = tmp_path / "by-id-link"
    link.symlink_to("/dev/null")
    assert port_key(str(link)) == "/dev/null"
    assert port_key("socket://localhost:4321") == port_key("socket://127.0.0.1:4321?logging=debug")
    assert port_key("socket://127.0.0.1:4321") != port_key("socket://127.0.0.1:4322")
    assert port_key("loop://") is None


def test_the_lock_names_its_holder_and_dies_with_it(runtime):
    import subprocess
    import sys

    from tinyedge.ports import PortBusy, PortLock

    url = "socket://127.0.0.1:9"
    mine = PortLock.take(url)
    with pytest.raises(PortBusy) as e:
        PortLock.take("socket://localhost:9")
    assert f"pid {os.getpid()} (" in e.value.message
    mine.release()
    assert not list((runtime / "locks").iterdir())       # released: nothing left behind
    PortLock.take(url).release()                          # and free again

    # a holder killed with SIGKILL (no cleanup at all) leaves the port free: the kernel drops its flock
    child = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom tinyedge.ports import PortLock\n"
                              f"lk = PortLock.take({url!r})\nprint('held', flush=True)\ntime.sleep(60)"],
                             stdout=subprocess.PIPE, text=True, env={**os.environ})
    try:
        assert child.stdout.readline() == "held\n"
        with pytest.raises(PortBusy, match=f"in use by pid {child.pid} "):
            PortLock.take(url)
    finally:
        child.kill()
        child.wait()
    PortLock.take(url).release()


def test_an_emulated_boards_record_goes_with_it(runtime, tmp_path):
    import subprocess
    import sys

    from tinyedge.ports import (
        emulated_log_path,
        find_emulated,
        register_emulated,
        unregister_emulated,
    )

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        log = emulated_log_path("socket://127.0.0.1:5555")
        log.write_bytes(b"tinyedge ready board=x\n")
        register_emulated("socket://127.0.0.1:5555", pid=sleeper.pid, log=log, live=True, board="x")
        rec = find_emulated("socket://localhost:5555")
        assert rec is not None and rec.pid == sleeper.pid and rec.live and rec.board == "x"
        unregister_emulated("socket://127.0.0.1:5555", pid=sleeper.pid + 1)   # not its record: kept
        assert find_emulated("socket://127.0.0.1:5555") is not None
    finally:
        sleeper.kill()
        sleeper.wait()
    assert find_emulated("socket://127.0.0.1:5555") is None                # its process is gone: stale
    assert not log.exists() and not list((runtime / "boards").iterdir())


def test_qemu_logs_the_uart_with_commas_in_the_path_escaped():
    from tinyedge.qemu import qemu_command

    cmd = qemu_command("fw.elf", get_board("qemu-cortex-m4"), 4321, "/run/a,b/x.log")
    chardev = cmd[cmd.index("-chardev") + 1]
    assert chardev.startswith("socket,id=te_uart,host=127.0.0.1,port=4321,server=on,wait=on,nodelay=on,")
    assert chardev.endswith(",logfile=/run/a,,b/x.log,logappend=off")
    assert cmd[cmd.index("-serial") + 1] == "chardev:te_uart"


def test_in_process_boards_log_their_output_from_the_start(runtime):
    from aot_zoo import zoo_tflite

    from tinyedge.emulation import TflmBoard
    from tinyedge.link import Device
    from tinyedge.ports import find_emulated

    with TflmBoard(zoo_tflite("fc")) as b:
        rec = find_emulated(b.port)
        assert rec is not None and rec.live
        with Device(b.port, timeout=5) as d:
            d.info()
        text = Path(rec.log).read_bytes()
        assert text.startswith(b"tinyedge ready board=host runtime=tflm ")
        assert len(text) > len(b.announcement) + 1                    # the hello's reply is in it too
    assert find_emulated(b.port) is None and not Path(rec.log).exists()


@pytest.mark.slow
def test_the_host_boards_output_goes_through_its_relay(runtime):
    from aot_zoo import zoo_tflite
    from build_cache import cached_build

    from tinyedge.builder import read_build
    from tinyedge.emulation import HostBoard
    from tinyedge.ports import find_emulated

    proj, _ = cached_build(zoo_tflite("fc"), "host")
    with HostBoard(read_build(proj)["artifacts"]["exe"]) as b:
        rec = find_emulated(b.port)
        assert rec is not None and rec.pid == b.pid
        assert Path(rec.log).read_text().startswith(b.announcement)
    assert find_emulated(b.port) is None


def test_without_a_runtime_folder_ports_still_open(tmp_path, monkeypatch, caplog):
    import tinyedge.ports as ports
    from tinyedge.link.transport import Transport

    blocker = tmp_path / "file"
    blocker.write_text("a file where the folder would be")
    monkeypatch.setenv("TINYEDGE_RUNTIME_DIR", str(blocker / "run"))
    monkeypatch.setattr(ports, "_WARNED", False)
    master, slave = os.openpty()
    try:
        t = Transport(os.ttyname(slave))          # the device's own flock still guards it
        t.close()
    finally:
        os.close(master)
        os.close(slave)
    assert ports.register_emulated("socket://127.0.0.1:1", pid=os.getpid(), log=tmp_path / "x", live=True) is None
    assert ports.find_emulated("socket://127.0.0.1:1") is None
    assert ports.emulated_log_path("socket://127.0.0.1:1").parent.is_dir()
    assert sum("no folder for port locks" in r.getMessage() for r in caplog.records) == 1
