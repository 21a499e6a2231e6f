"""Device sessions against a real device loop: firmware/app/te_app.c + firmware/proto
built for the host (with ASan/UBSan) around a FAKE model (tests/c/fake_board.c),
served on a pty by tinyedge.emulation.HostBoard.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tinyedge.emulation import HostBoard
from tinyedge.errors import DeviceTimeout, LinkError, ProtocolError, UsageError
from tinyedge.link import Device
from tinyedge.link import protocol as p

REPO = Path(__file__).resolve().parent.parent
FW = REPO / "firmware"
SHA = bytes(range(32)).hex()


def build_fake_board(out: Path, sanitize: bool = True) -> Path:
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.fail("no host C compiler (gcc); install build-essential")
    san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"] if sanitize else []
    subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-g", *san,
                    f"-I{FW / 'include'}", f"-I{FW / 'proto'}", f"-I{FW / 'app'}",
                    str(REPO / "tests" / "c" / "fake_board.c"), str(FW / "app" / "te_app.c"),
                    str(FW / "proto" / "te_proto.c"), "-o", str(out)], check=True, capture_output=True, text=True)
    return out


def fake_model(x0: np.ndarray, x1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What the fake model in tests/c/fake_board.c computes."""
    a0 = x0.reshape(-1).astype(np.int64)
    a1 = x1.reshape(-1).astype(np.int64)
    acc = np.zeros(16, np.int64)
    np.add.at(acc, np.arange(3000) % 16, a0 * (np.arange(3000) % 16 + 1))
    np.add.at(acc, np.arange(2000) % 16, a1)
    acc1 = np.zeros(4, np.int64)
    np.add.at(acc1, np.arange(2000) % 4, a1)
    y0 = (acc & 0xFF).astype(np.uint8).view(np.int8).reshape(1, 16)
    y1 = ((acc1 // 4) & 0xFF).astype(np.uint8).view(np.int8).reshape(1, 4)
    return y0, y1


def random_inputs(rng):
    return (rng.integers(-128, 128, (1, 30, 100)).astype(np.int8), rng.integers(-128, 128, (1, 2000)).astype(np.int8))


@pytest.fixture(scope="module")
def fake_exe(tmp_path_factory):
    return build_fake_board(tmp_path_factory.mktemp("fake_board") / "fake_board")


@pytest.fixture
def board(fake_exe):
    with HostBoard(fake_exe) as b:
        yield b
    assert not b.alive()


def test_announcement_and_info(board):
    assert board.announcement == "tinyedge ready board=fake-host runtime=aot model=0001020304050607 proto=1 unit=ns"
    with Device(board.port, timeout=3) as d:
        info = d.info()
        assert (info.board, info.runtime, info.unit, info.model_sha256) == ("fake-host", "aot", "ns", SHA)
        assert info.max_frame == 2064 and info.arena_bytes == 5020 and info.proto_version == p.VERSION
        assert [t.shape for t in info.inputs] == [(1, 30, 100), (1, 2000)]
        assert [(t.scale, t.zero_point) for t in info.outputs] == [(0.125, 0), (1.0, -128)]
        assert d.expect_model(SHA) is info
        with pytest.raises(LinkError, match=f"runs model {SHA}, expected {'ab' * 32}"):
            d.expect_model("ab" * 32)


def test_infer_matches_reference_and_chunks(board):
    rng = np.random.default_rng(1)
    with Device(board.port, timeout=3) as d:
        for _ in range(20):
            x0, x1 = random_inputs(rng)
            (y0, y1), count = d.infer([x0, x1])
            r0, r1 = fake_model(x0, x1)
            np.testing.assert_array_equal(y0, r0)
            np.testing.assert_array_equal(y1, r1)
            assert count > 0
        assert d.stats.retries == 0 and d.stats.timeouts == 0
        # 5000 input bytes in 2051-byte chunks: 3 INPUT frames; one ACK + one RESULT per inference
        per = d.transport.bytes_out / 20
        assert 5000 < per < 5000 * 1.02


def test_wrong_inputs_are_usage_errors(board):
    with Device(board.port, timeout=3) as d:
        with pytest.raises(UsageError, match="2 inputs"):
            d.infer(np.zeros(5000, np.int8))
        with pytest.raises(UsageError, match="int8"):
            d.infer([np.zeros((1, 30, 100), np.float32), np.zeros((1, 2000), np.int8)])
        with pytest.raises(UsageError, match="shape"):
            d.infer([np.zeros(10, np.int8), np.zeros((1, 2000), np.int8)])


def test_reply_to_an_old_request_is_never_taken(board):
    rng = np.random.default_rng(2)
    old0, old1 = random_inputs(rng)
    new0, new1 = random_inputs(rng)
    with Device(board.port, timeout=3) as d:
        info = d.info()
        old_seq = d._seq                     # a request the host gave up on: same seq as the hello
        data = old0.tobytes() + old1.tobytes()
        for off, n, flags in p.chunk_plan(len(data), info.max_frame, 1 << 20):
            d.transport.write(p.encode_frame(p.INPUT, old_seq, p.encode_input(flags, off, data[off:off + n]),
                                             lead=True))
        time.sleep(0.2)                      # its RESULT is now waiting on the line
        (y0, y1), _ = d.infer([new0, new1])
        assert d.stats.stale_replies >= 1
        np.testing.assert_array_equal(y0, fake_model(new0, new1)[0])
        np.testing.assert_array_equal(y1, fake_model(new0, new1)[1])


def test_retry_after_lost_chunk_resumes_from_device_next(board):
    """A lost middle chunk: the device drops the chunks after the gap and its ACK says where to resume."""
    rng = np.random.default_rng(3)
    x0, x1 = random_inputs(rng)
    data = x0.tobytes() + x1.tobytes()
    with Device(board.port, timeout=3) as d:
        info = d.info()
        seq = 4242
        plan = p.chunk_plan(len(data), info.max_frame, 1 << 20)
        assert len(plan) == 3
        for i, (off, n, flags) in enumerate(plan):
            if i == 1:
                continue                       # lost on the line
            d.transport.write(p.encode_frame(p.INPUT, seq, p.encode_input(flags, off, data[off:off + n]), lead=True))
        f = d._wait_reply(seq, 3)
        assert f.type == p.ACK and p.decode_ack(f.body) == (p.TE_OK, plan[1][0])
        for off, n, flags in plan[1:]:
            d.transport.write(p.encode_frame(p.INPUT, seq, p.encode_input(flags, off, data[off:off + n]), lead=True))
        f = d._wait_reply(seq, 3)
        assert f.type == p.RESULT
        status, count, out = p.decode_result(f.body, 20)
        assert status == p.TE_OK
        assert out == b"".join(y.tobytes() for y in fake_model(x0, x1))


def test_device_errors_for_bad_frames(board):
    with Device(board.port, timeout=3) as d:
        d.transport.write(p.encode_frame(p.HELLO, 7, version=2, lead=True))
        f = d._wait_reply(7, 3)
        assert f.type == p.ERROR and p.decode_error(f.body) == (p.TE_ERR_PROTOCOL, p.VERSION)
        d.transport.write(p.encode_frame(p.INPUT, 8, p.encode_input(p.FLAG_LAST, 4999, b"ab"), lead=True))
        f = d._wait_reply(8, 3)
        assert f.type == p.ERROR and f.body[0] == p.TE_ERR_OVERFLOW
        d.transport.write(p.encode_frame(0x33, 9, lead=True))
        f = d._wait_reply(9, 3)
        assert f.type == p.ERROR and f.body[0] == p.TE_ERR_UNSUPPORTED
        assert d.info().board == "fake-host"      # still serving


def test_silent_line_times_out_with_a_clear_error():
    master, slave = os.openpty()
    try:
        import tty

        tty.setraw(slave)
        path = os.ttyname(slave)
        with Device(path, timeout=0.2, retries=1) as d:
            t0 = time.monotonic()
            with pytest.raises(DeviceTimeout, match=r"no answer to hello within 0.4 s \(2 tries\); the port sent nothing"):
                d.info()
            assert time.monotonic() - t0 < 2
            os.write(master, b"booting\r\n" + p.encode_frame(p.HELLO_REPLY, 1, b"x" * 50)[:30])
            with pytest.raises(DeviceTimeout, match="middle of a frame"):
                d.info()
            assert "booting" in d.log_lines
    finally:
        os.close(master)
        os.close(slave)


def test_board_that_goes_away_is_a_link_error(fake_exe):
    b = HostBoard(fake_exe)
    d = Device(b.port, timeout=0.5, retries=1)
    try:
        d.info()
        b.close()
        with pytest.raises(LinkError):
            d.infer(list(random_inputs(np.random.default_rng(0))))
    finally:
        d.close()
        b.close()


def test_newer_protocol_reply_is_a_protocol_error():
    master, slave = os.openpty()
    try:
        import tty

        tty.setraw(slave)
        with Device(os.ttyname(slave), timeout=1, retries=0) as d:
            seq = (d._seq + 1) & 0xFFFF
            os.write(master, p.encode_frame(p.ERROR, seq, p.encode_error(p.TE_ERR_PROTOCOL, 2)))
            with pytest.raises(ProtocolError, match="speaks protocol 2"):
                d.info()
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.slow
def test_1000_round_trips_through_fault_proxy_with_restart(fake_exe, tmp_path):
    """The robustness run against the host board (the QEMU variant is in test_link_qemu.py)."""
    from fault_proxy import FaultProxy

    exe = build_fake_board(tmp_path / "fast_board", sanitize=False)
    rng = np.random.default_rng(7)
    board = HostBoard(exe)
    proxy = FaultProxy(board.port, seed=7, garbage_rate=0.05, text_rate=0.05, flip_rate=0.01)
    try:
        with Device(proxy.url, timeout=0.3, retries=8) as d:
            for i in range(1000):
                if i == 500:                       # the board restarts in the middle
                    board.close()
                    board = HostBoard(exe)
                    proxy.set_upstream(board.port)
                x0, x1 = random_inputs(rng)
                (y0, y1), _ = d.infer([x0, x1])
                r0, r1 = fake_model(x0, x1)
                np.testing.assert_array_equal(y0, r0, err_msg=f"round trip {i}")
                np.testing.assert_array_equal(y1, r1, err_msg=f"round trip {i}")
            stats = dict(proxy.stats)
            flips = stats.get("up_flips", 0) + stats.get("down_flips", 0)
            assert flips > 0 and stats.get("down_garbage", 0) > 0 and stats.get("up_text", 0) > 0
            # every corrupted frame cost a timeout or a resend (two flips may share one), and
            # none slipped through: the outputs all matched
            assert d.stats.retries >= flips // 2
            assert any("injected log line" in ln for ln in d.log_lines)
    finally:
        proxy.close()
        board.close()
    assert not board.alive()


@pytest.mark.hardware
def test_real_board_link(tinyedge_target):
    """With --tinyedge-port URL --tinyedge-board ID (the plugin's options): a real board running
    tinyedge firmware answers hello and infers deterministically."""
    with Device(tinyedge_target.url, timeout=30) as d:
        info = d.info()
        assert info.proto_version == p.VERSION and info.init_status == p.TE_OK
        assert info.board == tinyedge_target.board.id
        rng = np.random.default_rng(0)
        xs = [rng.integers(-128, 128, t.shape).astype(np.dtype(t.dtype)) for t in info.inputs]
        x = xs if len(xs) > 1 else xs[0]
        y1, c1 = d.infer(x)
        y2, c2 = d.infer(x)
        for a, b in zip(y1 if isinstance(y1, tuple) else (y1,), y2 if isinstance(y2, tuple) else (y2,), strict=True):
            np.testing.assert_array_equal(a, b)
        assert c1 > 0 and c2 > 0
