"""The aot firmware boots under QEMU: announcement line over the emulated UART, and on the
Cortex-M4 a real inference through the serial protocol, checked against TFLite Micro."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from build_cache import cached_build
from conftest import require_tool

from tinyedge.boards import get_board
from tinyedge.errors import InputFileError, ToolMissingError
from tinyedge.qemu import qemu_command, start_qemu

pytestmark = [pytest.mark.slow, pytest.mark.qemu]


QEMU_BOARDS = ["qemu-cortex-m4", "qemu-cortex-m3", "qemu-cortex-m7", "qemu-cortex-m55"]


@pytest.mark.parametrize("board", QEMU_BOARDS)
def test_aot_firmware_announces_itself(mlperf_tflite, board):
    require_tool("arm-none-eabi-gcc")
    require_tool("qemu-system-arm")
    _, record = cached_build(mlperf_tflite["kws"], board, "aot")
    from tinyedge.graph import load_tflite

    sha = load_tflite(mlperf_tflite["kws"]).sha256
    from tinyedge.link import Device

    with start_qemu(record["artifacts"]["elf"], get_board(board)) as q, Device(q.url) as dev:
        assert q.url.startswith("socket://127.0.0.1:") and q.alive()
        # The wait counts QEMU's CPU seconds (work done), so a loaded machine does not fail it.
        q.wait_for_announcement(dev, 20)
        assert 0 < q.cpu_seconds() < 20
        line = next(x for x in dev.log_lines if x.startswith("tinyedge ready "))
    assert not q.alive()
    fields = dict(kv.split("=", 1) for kv in line.split()[2:])
    assert line.startswith("tinyedge ready ")
    assert fields["board"] == board and fields["runtime"] == "aot" and fields["model"] == sha[:16]
    assert fields["unit"] == "instructions" and int(fields["proto"]) >= 1


@pytest.mark.parametrize("board", QEMU_BOARDS)
def test_inference_over_the_emulated_uart_matches_tflm(mlperf_tflite, board):
    """Device session: outputs bit-exact with the tflite-micro interpreter, latency counted in
    instructions (SysTick ticks x 1e9/clock_hz under -icount shift=0: x40 at 25 MHz, x31.25 at 32 MHz)."""
    require_tool("qemu-system-arm")
    from tflite_micro.python.tflite_micro import runtime

    from tinyedge.link import Device

    model = mlperf_tflite["kws"]
    b = get_board(board)
    _, record = cached_build(model, board, "aot")
    interp = runtime.Interpreter.from_bytes(model.read_bytes())
    rng = np.random.default_rng(5)
    with start_qemu(record["artifacts"]["elf"], b) as q, Device(q.url, timeout=60) as dev:
        ann = q.wait_for_announcement(dev, 20)   # QEMU CPU seconds, not wall seconds (a loaded machine)
        info = dev.info()
        assert ann["unit"] == info.unit == "instructions" and info.board == board
        assert info.clock_hz == b.clock_hz
        counts = []
        for _ in range(2):
            x = rng.integers(-128, 128, size=info.inputs[0].shape).astype(np.int8)
            y, count = dev.infer(x)
            interp.set_input(x, 0)
            interp.invoke()
            want = interp.get_output(0)
            np.testing.assert_array_equal(np.asarray(y).reshape(want.shape), want)
            counts.append(count)
    # a real count (kws is ~2.7 M MACs: millions of instructions on the M3/M4/M7, 1.2 M on the M55,
    # whose 16-lane MVE dot products count one each), a whole number of SysTick ticks, and stable
    # across inputs (the kernels have no data-dependent loops to speak of)
    from math import gcd

    g = gcd(1_000_000_000, b.clock_hz)
    mul, div = 1_000_000_000 // g, b.clock_hz // g
    assert all(1_000_000 < c < 100_000_000 for c in counts), counts
    for c in counts:
        # each reading is ticks * mul // div, so a difference is within 1 of a whole number of ticks x mul/div
        ticks = round(c * div / mul)
        assert abs(ticks * mul - c * div) < div, (c, mul, div)
    assert abs(counts[0] - counts[1]) < 0.05 * counts[0]


def test_qemu_command_and_errors(tmp_path, monkeypatch):
    b = get_board("qemu-cortex-m4")
    cmd = qemu_command("fw.elf", b, 4321)
    assert cmd[:3] == ["qemu-system-arm", "-M", "mps2-an386"]
    assert ["-icount", "shift=0"] == cmd[cmd.index("-icount"):cmd.index("-icount") + 2]
    # nodelay=on: QEMU sends each UART byte as it comes; without it replies stall ~40 ms (Nagle).
    assert "tcp:127.0.0.1:4321,server=on,wait=on,nodelay=on" in cmd and cmd[cmd.index("-monitor") + 1] == "none"
    with pytest.raises(InputFileError):
        start_qemu(tmp_path / "missing.elf", b)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissingError) as e:
        start_qemu(tmp_path / "missing.elf", b)
    assert "sudo apt-get install qemu-system-arm" in str(e.value)


def test_close_kills_qemu_and_frees_the_port(mlperf_tflite):
    require_tool("qemu-system-arm")
    _, record = cached_build(mlperf_tflite["kws"], "qemu-cortex-m4", "aot")
    q = start_qemu(record["artifacts"]["elf"], get_board("qemu-cortex-m4"))
    port = q.port
    q.close()
    assert q.proc.returncode is not None
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # nobody listens there any more


def test_systick_wraps_are_counted(mlperf_tflite, tmp_path):
    """The same firmware with a 1024-tick SysTick period (a kws inference then spans over a
    hundred wraps, however fast the kernels get) reports the same instruction count as with the
    2^24-tick period (no wrap), give or take the wrap interrupts' own instructions."""
    import shutil
    import subprocess

    from tinyedge.link import Device

    model = mlperf_tflite["kws"]
    b = get_board("qemu-cortex-m4")
    folder, record = cached_build(model, b.id, "aot")
    small = tmp_path / "small-reload"
    shutil.copytree(folder, small, ignore=shutil.ignore_patterns("build"))
    subprocess.run(["make", "-C", str(small), "-j2", "EXTRA_CFLAGS=-DTE_SYSTICK_RELOAD=0x3FFu"], check=True,
                   capture_output=True)
    x = np.random.default_rng(9).integers(-128, 128, size=(1, 49, 10, 1)).astype(np.int8)
    results = []
    for elf in (record["artifacts"]["elf"], small / "build" / "firmware.elf"):
        with start_qemu(elf, b) as q, Device(q.url, timeout=60) as dev:
            results.append(dev.infer(x))
    (y0, c0), (y1, c1) = results
    np.testing.assert_array_equal(y0, y1)
    assert c0 // (40 * 1024) > 50  # the small period wrapped many times during the inference
    assert c0 <= c1 < c0 * 1.01, (c0, c1)
    print(f"instructions: {c0} with no wrap, {c1} over {c0 // (40 * 1024)} wraps")


def test_a_program_that_connects_first_is_detected_and_the_flasher_starts_again(monkeypatch, caplog):
    """QEMU serves its first client only: a program still retrying an older board's port that a
    new QEMU was given gets the guest's output.  The wait names it (PortTaken) and `flash` starts
    the emulator again on another port."""
    require_tool("arm-none-eabi-gcc")
    require_tool("qemu-system-arm")
    from aot_zoo import zoo_tflite

    import tinyedge.qemu as tq
    from tinyedge.flashers import get_flasher
    from tinyedge.link import Device

    board = get_board("qemu-cortex-m4")
    proj, record = cached_build(zoo_tflite("fc"), board.id)
    with start_qemu(record["artifacts"]["elf"], board) as q:
        thief = socket.create_connection(("127.0.0.1", q.port))
        try:
            with Device(q.url) as dev, pytest.raises(tq.PortTaken) as e:
                q.wait_for_announcement(dev, 5)
            assert f"from 127.0.0.1:{thief.getsockname()[1]}" in str(e.value)
            assert b"tinyedge ready" in thief.recv(4096)        # the guest's output went to the thief
        finally:
            thief.close()

    thieves, real = [], tq.start_qemu

    def start_with_a_thief(elf, b, **kw):
        started = real(elf, b, **kw)
        if not thieves:
            thieves.append((socket.create_connection(("127.0.0.1", started.port)), started.port))
        return started

    monkeypatch.setattr(tq, "start_qemu", start_with_a_thief)
    try:
        res = get_flasher("qemu").flash(proj, board)
        try:
            assert res.details["announcement"]["board"] == board.id
            assert res.port != f"socket://127.0.0.1:{thieves[0][1]}"
        finally:
            res.process.close()
    finally:
        thieves[0][0].close()
    assert "another program connected to the emulator's UART first" in caplog.text


def test_a_boot_line_the_session_received_but_lost_is_taken_from_qemus_log(mlperf_tflite, caplog):
    """Fault injection: a decoder that drops every text line (standing in for an unknown slip on the
    host side).  The bytes reached the session, QEMU's log of the UART has the line, so the wait
    returns its fields with a warning; a firmware that never prints still times out (other tests)."""
    require_tool("arm-none-eabi-gcc")
    require_tool("qemu-system-arm")
    from tinyedge.link import Device
    from tinyedge.link import protocol as p

    class LineDroppingDecoder(p.FrameDecoder):
        def feed(self, data):
            return [ev for ev in super().feed(data) if not isinstance(ev, p.TextLine)]

    _, record = cached_build(mlperf_tflite["kws"], "qemu-cortex-m4", "aot")
    with start_qemu(record["artifacts"]["elf"], get_board("qemu-cortex-m4")) as q, Device(q.url) as dev:
        dev._decoder = LineDroppingDecoder()
        with caplog.at_level("WARNING", logger="tinyedge.qemu"):
            ann = q.wait_for_announcement(dev, 20)
        assert ann["board"] == "qemu-cortex-m4" and ann["unit"] == "instructions"
        assert dev.log_lines == [] and dev.announcement == ann
        assert "did not decode it" in caplog.text and "tinyedge ready board=qemu-cortex-m4" in caplog.text
        assert dev.info().board == "qemu-cortex-m4"   # the session goes on
