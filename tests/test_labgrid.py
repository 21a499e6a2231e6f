"""labgrid for real on 127.0.0.1: a coordinator, an exporter publishing emulated boards' UARTs
(QEMU's TCP serial port as a NetworkSerialPort, and a pty bridged to QEMU served by the
exporter's ser2net), places with a `board` tag; a user's test run with --tinyedge-labgrid-place
acquires the place, deploys through the URL labgrid gives, and releases it."""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy  # noqa: F401  (imported before pytester snapshots sys.modules: numpy loads once per process)
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


class PtyBridge:
    """A pty whose other side is QEMU's UART socket: what a USB serial adapter is to a lab PC
    (labgrid's exporter publishes such a local port through ser2net)."""

    def __init__(self, port: int):
        import tty

        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.sock = socket.create_connection(("127.0.0.1", port))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self):
        while not self._stop.is_set():
            r, _, _ = select.select([self.master, self.sock], [], [], 0.1)
            if self.master in r:
                try:
                    data = os.read(self.master, 4096)
                except OSError:        # no one has the pty open right now
                    time.sleep(0.05)
                    continue
                self.sock.sendall(data)
            if self.sock in r:
                data = self.sock.recv(4096)
                if not data:
                    return
                os.write(self.master, data)

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()
        os.close(self.master)
        os.close(self.slave)


def _ser2net() -> str:
    exe = shutil.which("ser2net") or ("/usr/sbin/ser2net" if os.path.exists("/usr/sbin/ser2net") else None)
    if exe is None:
        pytest.fail("ser2net is not installed; `make test` installs it (Makefile: APT_PACKAGES)")
    return exe


PLACES = {"m4-net": "network", "m4-pty": "ser2net"}


def _resources(addr: str) -> set[str]:
    """exporter/group/class of every resource the coordinator knows (labgrid's client API)."""
    from labgrid.remote.client import start_session

    s = start_session(addr)
    try:
        return {f"{e}/{g}/{r.cls}" for e, groups in s.resources.items() for g, rs in groups.items()
                for r in rs.values()}
    finally:
        s.loop.run_until_complete(s.stop())


def _acquired_by(addr: str, place: str):
    from labgrid.remote.client import start_session

    s = start_session(addr)
    try:
        return s.get_place(place).acquired
    finally:
        s.loop.run_until_complete(s.stop())


@pytest.fixture(scope="module")
def lab(mlperf_tflite, tmp_path_factory):
    """(coordinator address, {place: QEMU}): two QEMUs running ad01's firmware, exported by one
    exporter.  Place m4-net: QEMU's TCP port as a NetworkSerialPort (raw, socket://).  Place
    m4-pty: a pty bridged to the other QEMU's port, a RawSerialPort that the exporter serves
    with ser2net (rfc2217://), as a lab PC serves a USB serial adapter."""
    _ser2net()
    board = get_board("qemu-cortex-m4")
    fw = FirmwareCache(CACHE).prepare(mlperf_tflite["ad01"], board)
    tmp = tmp_path_factory.mktemp("lab")
    procs, bridge, qemus, exp = [], None, {}, None
    try:
        qemus = {name: start_qemu(fw.artifacts["elf"], board) for name in PLACES}
        port = _free_port()
        addr = f"127.0.0.1:{port}"
        coord = subprocess.Popen([str(BIN / "labgrid-coordinator"), "-l", addr], cwd=tmp,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(coord)
        _wait_listen(port, coord, "labgrid-coordinator")
        bridge = PtyBridge(qemus["m4-pty"].port)
        (tmp / "exporter.yaml").write_text(
            f"m4-net:\n  NetworkSerialPort:\n    host: 127.0.0.1\n    port: {qemus['m4-net'].port}\n"
            f"    protocol: raw\n"
            f"m4-pty:\n  RawSerialPort:\n    port: {bridge.path}\n    speed: 115200\n")
        exp = subprocess.Popen([str(BIN / "labgrid-exporter"), "-c", addr, "-n", "bench", "--hostname",
                                "127.0.0.1", "exporter.yaml"], cwd=tmp, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
        procs.append(exp)
        # the exporter publishes a RawSerialPort as a NetworkSerialPort (its ser2net's port)
        want = {"bench/m4-net/NetworkSerialPort", "bench/m4-pty/NetworkSerialPort"}
        deadline = time.monotonic() + 30
        while not want <= _resources(addr):
            assert exp.poll() is None, exp.stdout.read()
            assert time.monotonic() < deadline, "the exporter's ports never showed up"
            time.sleep(0.2)
        for name in PLACES:
            for args in (("create",), ("add-match", f"bench/{name}/NetworkSerialPort"),
                         ("set-tags", "board=qemu-cortex-m4")):
                r = _client(addr, "-p", name, *args)
                assert r.returncode == 0, r.stderr
        yield addr, qemus
    finally:
        for p in reversed(procs):      # the exporter stops its ser2net when it is terminated
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if exp is not None:
            try:
                os.killpg(exp.pid, signal.SIGKILL)   # a ser2net the exporter left (its own session)
            except ProcessLookupError:
                pass
        if bridge is not None:
            bridge.close()
        for q in qemus.values():
            q.close()


USER = '''
import os

from labgrid.remote.client import start_session

def test_through_labgrid(tinyedge_deploy, tinyedge_target):
    d = tinyedge_deploy(os.environ["AD01"], samples=5)
    assert tinyedge_target.kind == "labgrid"
    assert d.url.startswith(os.environ["WANT_URL"])
    assert d.report["agreement"]["bit_exact_rate"] == 1.0 and d.report["samples"] == 5
    s = start_session(os.environ["LG_ADDR"])
    try:
        assert s.get_place(os.environ["PLACE"]).acquired      # held while the test runs
    finally:
        s.loop.run_until_complete(s.stop())
'''


def _setenv(monkeypatch, mlperf_tflite, addr, place, want_url):
    monkeypatch.setenv("AD01", str(mlperf_tflite["ad01"]))
    monkeypatch.setenv("LG_ADDR", addr)
    monkeypatch.setenv("PLACE", place)
    monkeypatch.setenv("WANT_URL", want_url)


@pytest.mark.parametrize("place", list(PLACES))
def test_user_test_through_labgrid_place(place, lab, pytester, monkeypatch, mlperf_tflite):
    """The place's serial port: QEMU's socket published as is (socket://), or a pty served by the
    exporter's ser2net (rfc2217://); the place is held during the test and released after."""
    addr, qemus = lab
    _setenv(monkeypatch, mlperf_tflite, addr, place,
            qemus[place].url if PLACES[place] == "network" else "rfc2217://127.0.0.1:")
    pytester.makepyfile(test_user=USER)
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--tinyedge-cache={CACHE}",
                                        f"--tinyedge-labgrid-place={place}",
                                        f"--tinyedge-labgrid-coordinator={addr}", "-v", timeout=300)
    res.assert_outcomes(passed=1)
    res.stdout.fnmatch_lines(["*test_through_labgrid?qemu-cortex-m4? PASSED*",
                              "tinyedge: 1 deploys (*), 0 flashes, 0 restarts"])
    assert _acquired_by(addr, place) is None       # released at the end of the run


def test_place_held_elsewhere_skips_with_labgrid_reason(lab, pytester, monkeypatch, mlperf_tflite):
    addr, qemus = lab
    _setenv(monkeypatch, mlperf_tflite, addr, "m4-net", qemus["m4-net"].url)
    assert _client(addr, "-p", "m4-net", "acquire").returncode == 0
    try:
        pytester.makepyfile(test_user=USER)
        res = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--tinyedge-cache={CACHE}", "-rs",
                                            "--tinyedge-labgrid-place=m4-net",
                                            f"--tinyedge-labgrid-coordinator={addr}", timeout=300)
        res.assert_outcomes(skipped=1)
        res.stdout.fnmatch_lines(["*labgrid place 'm4-net' could not be acquired: *already acquired*"])
    finally:
        assert _client(addr, "-p", "m4-net", "release").returncode == 0
