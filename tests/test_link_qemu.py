"""The link against the real firmware under QEMU (qemu-cortex-m4, aot runtime).

The firmware of a small model (tests/aot_zoo.py "fc") is built once (cached
by tests/build_cache.py), started by the `qemu` flasher, and driven through
Device sessions: plain, and through tests/fault_proxy.py (random bytes, text
lines and bit flips in both directions) with a QEMU restart in the middle.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading

import numpy as np
import pytest

from tinyedge.boards import get_board
from tinyedge.flashers import get_flasher
from tinyedge.link import Device
from tinyedge.validation import Reference

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

BOARD = "qemu-cortex-m4"


@pytest.fixture(scope="module")
def fc_build():
    if shutil.which("qemu-system-arm") is None:
        pytest.fail("qemu-system-arm is not installed; `make test` installs it")
    from aot_zoo import zoo_tflite
    from build_cache import cached_build

    model = zoo_tflite("fc")
    proj, record = cached_build(model, BOARD)
    return model, proj, record


def tflm_reference(model):
    """The tflite-micro interpreter on the host, as validate uses it: x -> int8 outputs."""
    return Reference(model.read_bytes()).run


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purposes only once reaped; Popen.wait reaps it
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


def test_qemu_flasher_session_info_and_infer(fc_build):
    model, proj, _ = fc_build
    from tinyedge.graph import load_tflite

    res = get_flasher("qemu").flash(proj, get_board(BOARD))
    pid = res.details["pid"]
    assert res.port.startswith("socket://127.0.0.1:")
    assert res.details["announcement"]["unit"] == "instructions"
    ref = tflm_reference(model)
    with Device.from_flash(res, timeout=10) as d:
        info = d.expect_model(load_tflite(model).sha256)
        assert (info.board, info.runtime, info.unit) == (BOARD, "aot", "instructions")
        rng = np.random.default_rng(0)
        for _ in range(10):
            x = rng.integers(-128, 128, info.inputs[0].shape).astype(np.int8)
            y, count = d.infer(x)
            np.testing.assert_array_equal(y, ref(x))
            assert count > 1000
    assert not _pid_alive(pid), "closing the session must stop QEMU"


def test_1000_round_trips_through_fault_proxy_with_qemu_restart(fc_build):
    from fault_proxy import FaultProxy

    from tinyedge.qemu import start_qemu

    model, proj, record = fc_build
    ref = tflm_reference(model)
    board = get_board(BOARD)
    res = get_flasher("qemu").flash(proj, board)
    boards = [res.process]
    port = boards[0].port
    proxy = FaultProxy(res.port, seed=11, garbage_rate=0.05, text_rate=0.05, flip_rate=0.01)

    def restart():
        # the board dies while inferences are in flight; QEMU is started again on the same port
        os.kill(boards[0].pid, signal.SIGKILL)
        boards[0].close()
        boards.append(start_qemu(record["artifacts"]["elf"], board, port=port))

    killer = threading.Timer(0.004, restart)
    try:
        with Device(proxy.url, timeout=0.5, retries=8) as d:
            rng = np.random.default_rng(11)
            shape = d.info().inputs[0].shape
            for i in range(1000):
                if i == 500:
                    killer.start()
                x = rng.integers(-128, 128, shape).astype(np.int8)
                y, _ = d.infer(x)
                np.testing.assert_array_equal(y, ref(x), err_msg=f"round trip {i}")
            stats = dict(proxy.stats)
            assert stats.get("up_flips", 0) + stats.get("down_flips", 0) > 0
            assert stats.get("down_garbage", 0) > 0 and stats.get("up_garbage", 0) > 0
            assert stats.get("upstream_opens", 0) >= 2             # it reconnected to the restarted QEMU
            # each corrupted frame costs a timeout or a resend (two flips may share one)
            assert d.stats.retries >= (stats.get("up_flips", 0) + stats.get("down_flips", 0)) // 2
            assert any("injected log line" in ln for ln in d.log_lines)
            assert len(boards) == 2
    finally:
        killer.cancel()
        if killer.ident is not None:  # a Timer that never started cannot be joined
            killer.join()
        proxy.close()
        for q in boards:
            q.close()
    assert not any(_pid_alive(q.pid) for q in boards), "a QEMU process was left behind"
