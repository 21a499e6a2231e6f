"""labgrid for real on 127.0.0.1: a coordinator, an exporter publishing an emulated board's UART
(QEMU's TCP serial port as a NetworkSerialPort), a place with a `board` tag; a user's test run
with --tinyedge-labgrid-place acquires the place, deploys through the URL labgrid gives, and
releases it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tinyedge.boards import get_board
from tinyedge.hil.firmware import FirmwareCache, default_cache_dir
from tinyedge.qemu import start_qemu

pytest_plugins = ["pytester"]
pytestmark = [pytest.mark.slow, pytest.mark.qemu]

BIN = Path(sys.executable).parent
CACHE = str(default_cache_dir())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listen(port: int, proc: subprocess.Popen, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited: {proc.stdout.read() if proc.stdout else ''}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"{what} did not listen on {port} within {timeout} s")


def _client(addr: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "labgrid-client"), "-x", addr, *args], capture_output=True, text=True,
                          timeout=60)


@pytest.fixture(scope="module")
def lab(mlperf_tflite, tmp_path_factory):
    """(coordinator address, place name, the QEMU) with ad01's firmware running under QEMU."""
    board = get_board("qemu-cortex-m4")
    fw = FirmwareCache(CACHE).prepare(mlperf_tflite["ad01"], board)
    tmp = tmp_path_factory.mktemp("lab")
    procs = []
    q = start_qemu(fw.artifacts["elf"], board)
    try:
        port = _free_port()
        addr = f"127.0.0.1:{port}"
        coord = subprocess.Popen([str(BIN / "labgrid-coordinator"), "-l", addr], cwd=tmp,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(coord)
        _wait_listen(port, coord, "labgrid-coordinator")
        (tmp / "exporter.yaml").write_text(
            f"emulated-m4:\n  NetworkSerialPort:\n    host: 127.0.0.1\n    port: {q.port}\n    protocol: raw\n")
        exp = subprocess.Popen([str(BIN / "labgrid-exporter"), "-c", addr, "-n", "bench", "exporter.yaml"],
                               cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(exp)
        deadline = time.monotonic() + 30
        while "bench/emulated-m4/NetworkSerialPort" not in _client(addr, "resources").stdout:
            assert exp.poll() is None, exp.stdout.read()
            assert time.monotonic() < deadline, "the exporter's port never showed up"
            time.sleep(0.2)
        for args in (("create",), ("add-match", "bench/emulated-m4/NetworkSerialPort"),
                     ("set-tags", "board=qemu-cortex-m4")):
            r = _client(addr, "-p", "m4-place", *args)
            assert r.returncode == 0, r.stderr
        yield addr, "m4-place", q
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        q.close()


USER = '''
import os
import subprocess
import sys
from pathlib import Path

def test_through_labgrid(tinyedge_deploy, tinyedge_target):
    d = tinyedge_deploy(os.environ["AD01"])
    assert tinyedge_target.kind == "labgrid"
    assert d.url == os.environ["WANT_URL"]
    assert d.report["agreement"]["bit_exact_rate"] == 1.0 and d.report["samples"] == 20
    show = subprocess.run([str(Path(sys.executable).parent / "labgrid-client"), "-x", os.environ["LG_ADDR"],
                           "-p", "m4-place", "show"], capture_output=True, text=True).stdout
    assert "acquired: None" not in show and "acquired:" in show
'''


def test_user_test_through_labgrid_place(lab, pytester, monkeypatch, mlperf_tflite):
    addr, place, q = lab
    monkeypatch.setenv("AD01", str(mlperf_tflite["ad01"]))
    monkeypatch.setenv("WANT_URL", q.url)
    monkeypatch.setenv("LG_ADDR", addr)
    pytester.makepyfile(test_user=USER)
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--tinyedge-cache={CACHE}",
                                        f"--tinyedge-labgrid-place={place}",
                                        f"--tinyedge-labgrid-coordinator={addr}", "-v", timeout=300)
    res.assert_outcomes(passed=1)
    res.stdout.fnmatch_lines(["*test_through_labgrid?qemu-cortex-m4? PASSED*",
                              "tinyedge: 1 deploys (*), 0 flashes, 0 restarts"])
    show = _client(addr, "-p", place, "show").stdout
    assert "acquired: None" in show, show          # released at the end of the run


def test_place_held_elsewhere_skips_with_labgrid_reason(lab, pytester, monkeypatch, mlperf_tflite):
    addr, place, q = lab
    monkeypatch.setenv("AD01", str(mlperf_tflite["ad01"]))
    monkeypatch.setenv("WANT_URL", q.url)
    monkeypatch.setenv("LG_ADDR", addr)
    assert _client(addr, "-p", place, "acquire").returncode == 0
    try:
        pytester.makepyfile(test_user=USER)
        res = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--tinyedge-cache={CACHE}", "-rs",
                                            f"--tinyedge-labgrid-place={place}",
                                            f"--tinyedge-labgrid-coordinator={addr}", timeout=300)
        res.assert_outcomes(skipped=1)
        res.stdout.fnmatch_lines(["*labgrid place 'm4-place' could not be acquired: *already acquired*"])
    finally:
        assert _client(addr, "-p", place, "release").returncode == 0
