"""Host-emulated boards: the Python TFLM device server, `tinyedge emulate`, `tinyedge monitor`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import tty

import numpy as np
import pytest
from conftest import tinyedge_exe

from tinyedge.emulation import ProtocolServer, TflmBackend, TflmBoard
from tinyedge.graph import load_tflite
from tinyedge.link import Device
from tinyedge.link import protocol as p
from tinyedge.validation import Reference


@pytest.fixture(scope="module")
def fc_model():
    from aot_zoo import zoo_tflite

    return zoo_tflite("fc")


@pytest.fixture(scope="module")
def conv_model():
    from aot_zoo import zoo_tflite

    return zoo_tflite("conv")


def reference(model):
    """The tflite-micro interpreter on the host, as validate uses it: x -> int8 outputs."""
    return Reference(model.read_bytes()).run


def test_tflm_board_serves_the_protocol_with_chunking(conv_model):
    ref = reference(conv_model)
    with TflmBoard(conv_model, max_frame=300) as b:          # 287-byte chunks: 765 bytes in 3
        assert b.announcement.startswith("tinyedge ready board=host runtime=tflm model=")
        with Device(b.port, timeout=5) as d:
            info = d.expect_model(load_tflite(conv_model).sha256)
            assert (info.runtime, info.unit, info.max_frame) == ("tflm", "ns", 300)
            assert info.inputs[0].shape == (1, 17, 15, 3) and info.inputs[0].dtype == "int8"
            rng = np.random.default_rng(0)
            for _ in range(5):
                x = rng.integers(-128, 128, (1, 17, 15, 3)).astype(np.int8)
                y, ns = d.infer(x)
                np.testing.assert_array_equal(y, ref(x))
                assert ns > 0
    assert not b.alive()


def test_protocol_server_follows_the_device_rules(fc_model):
    s = ProtocolServer(TflmBackend(fc_model), max_frame=30)     # 17 data bytes per chunk
    x = np.arange(37, dtype=np.int8)
    data = x.tobytes()
    plan = p.chunk_plan(37, 30, 1 << 20)
    assert [n for _, n, _ in plan] == [17, 17, 3]

    def send(seq, off, n, flags):
        return s.feed(p.encode_frame(p.INPUT, seq, p.encode_input(flags, off, data[off:off + n]), lead=True))

    assert send(1, 0, 17, 0) == b""
    # chunk 2 lost: the last chunk leaves a gap, and the ACK says where to resume
    (f,) = [e for e in p.FrameDecoder().feed(send(1, 34, 3, p.FLAG_LAST)) if isinstance(e, p.Frame)]
    assert f.type == p.ACK and p.decode_ack(f.body) == (p.TE_OK, 17)
    send(1, 17, 17, 0)
    (f,) = [e for e in p.FrameDecoder().feed(send(1, 34, 3, p.FLAG_LAST)) if isinstance(e, p.Frame)]
    assert f.type == p.RESULT and f.seq == 1
    assert p.decode_result(f.body, 20)[2] == reference(fc_model)(x.reshape(1, 37)).tobytes()
    # the input is consumed: resending only the last chunk is a gap at 0
    (f,) = [e for e in p.FrameDecoder().feed(send(1, 34, 3, p.FLAG_LAST)) if isinstance(e, p.Frame)]
    assert f.type == p.ACK and p.decode_ack(f.body) == (p.TE_OK, 0)
    over = s.feed(p.encode_frame(p.INPUT, 2, p.encode_input(p.FLAG_LAST, 30, b"x" * 17), lead=True))
    (f,) = [e for e in p.FrameDecoder().feed(over) if isinstance(e, p.Frame)]
    assert f.type == p.ERROR and f.body[0] == p.TE_ERR_OVERFLOW


def _start(args):
    return subprocess.Popen([*tinyedge_exe(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["tflm", "aot"])
def test_emulate_cli_serves_until_ctrl_c(fc_model, tmp_path, runtime):
    proc = _start(["emulate", str(fc_model), "--runtime", runtime, "-o", str(tmp_path / "proj"), "--json"])
    try:
        lines = []
        while True:
            line = proc.stdout.readline()
            assert line, f"emulate exited: {proc.stderr.read()}"
            lines.append(line)
            if line.startswith("}"):
                break
        meta = json.loads("".join(lines))
        assert meta["runtime"] == runtime
        with Device(meta["port"], timeout=5) as d:
            x = np.arange(-18, 19, dtype=np.int8).reshape(1, 37)
            y, _ = d.infer(x)
            np.testing.assert_array_equal(y, reference(fc_model)(x))
            assert d.info().runtime == runtime
        proc.send_signal(signal.SIGINT if runtime == "aot" else signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert "Traceback" not in proc.stderr.read()
        if meta["pid"]:
            assert not _alive(meta["pid"]), "the host board outlived tinyedge emulate"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _wait_for(stream, text, timeout=30):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return
    raise AssertionError(f"{text!r} not seen in {seen}")


@pytest.mark.parametrize("raw", [False, True])
def test_monitor_shows_text_and_decoded_frames(raw):
    master, slave = os.openpty()
    tty.setraw(slave)
    proc = _start(["monitor", "--port", os.ttyname(slave), "--exit-after", "2", *(["--raw"] if raw else [])])
    try:
        _wait_for(proc.stderr, "monitoring")
        stream = (b"tinyedge ready board=x runtime=aot model=0011223344556677 proto=1 unit=cycles\n"
                  + p.encode_frame(p.RESULT, 42, p.encode_result(0, 1234, b"\x01\x02\x03"))
                  + b"\xa1\x99garbage" + p.encode_frame(p.ACK, 43, p.encode_ack(0, 4096)) + b"bye\r\n")
        os.write(master, stream)
        out, err = proc.communicate(timeout=20)
    finally:
        os.close(master)
        os.close(slave)
    assert proc.returncode == 0, err
    if raw:
        assert bytes.fromhex("".join(out.split())) == stream
    else:
        lines = out.splitlines()
        assert lines[0].startswith("tinyedge ready board=x")
        assert "[frame v1 RESULT seq=42 TE_OK count=1234 outputs=3 bytes]" in lines
        assert "[frame v1 ACK seq=43 TE_OK next=4096]" in lines
        assert lines[-1] == "bye"


def test_monitor_reconnects_and_stops_on_ctrl_c():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    def serve():
        for text in (b"first boot\n", b"second boot\n"):
            c, _ = srv.accept()
            time.sleep(0.3)
            c.sendall(text)
            time.sleep(0.3)
            c.close()                      # the USB port goes away
        srv.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    proc = _start(["monitor", "--port", f"socket://127.0.0.1:{port}"])
    try:
        _wait_for(proc.stdout, "first boot")
        _wait_for(proc.stdout, "second boot")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        err = proc.stderr.read()
        assert "waiting for it to come back" in err and "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_host_flasher_hands_back_a_session_and_stops_on_close(fc_model):
    from build_cache import cached_build

    from tinyedge.boards import get_board
    from tinyedge.flashers import get_flasher

    proj, _ = cached_build(fc_model, "host")
    res = get_flasher("host").flash(proj, get_board("host"))
    pid = res.details["pid"]
    assert res.details["announcement"].startswith("tinyedge ready board=host runtime=aot")
    assert res.details["announcement"].endswith("unit=ns")
    with Device.from_flash(res, timeout=5) as d:
        x = np.full((1, 37), 5, np.int8)
        y, ns = d.infer(x)
        np.testing.assert_array_equal(y, reference(fc_model)(x))
        assert _alive(pid)
    assert not _alive(pid)
