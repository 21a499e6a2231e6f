"""No emulator outlives tinyedge: SIGTERM or SIGINT to `flash` and `deploy` on a QEMU board stop its QEMU.

Real processes throughout: the CLI as a subprocess, the real QEMU child it
starts; the test finds that child in /proc, signals the CLI, and checks that
the child is gone.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest
from build_cache import cached_build
from conftest import require_tool, tinyedge_exe

pytestmark = [pytest.mark.slow, pytest.mark.qemu]


def _qemu_children(pid: int) -> list[int]:
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and b"qemu-system-arm" in cmd:
            found.append(int(d.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _gone(pid: int, timeout: float = 120.0) -> bool:
    """Wait for process `pid` (not our child) to end: its pidfd turns readable when it exits, so
    this waits for that event, not for a guessed time.  A zombie counts as gone (it runs no more)."""
    try:
        fd = os.pidfd_open(pid)
        if b"qemu-system-arm" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.close(fd)
            return True  # reaped, and the pid already given to another process
    except (ProcessLookupError, FileNotFoundError):
        return True
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
    finally:
        os.close(fd)
    return bool(ready) or not _alive(pid)


def _signal_once_qemu_runs(argv, sig, timeout=900) -> tuple[int, list[int], str]:
    """Start `tinyedge ARGV`, send `sig` the moment its QEMU child exists (exec'd: its cmdline
    names qemu-system-arm), and return (exit status, the QEMU pids, stderr).  `timeout` bounds
    the wait for QEMU (the build before it is slow under load); nothing is decided by time."""
    p = subprocess.Popen([*tinyedge_exe(), *map(str, argv)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        kids: list[int] = []
        while time.monotonic() < deadline and p.poll() is None:
            kids = _qemu_children(p.pid)
            if kids:
                break
            time.sleep(0.05)
        if not kids:
            out, err = p.communicate(timeout=60) if p.poll() is not None else ("", "")
            pytest.fail(f"no QEMU started by {argv} (exit {p.poll()}): {err[-2000:]}")
        p.send_signal(sig)
        _, err = p.communicate(timeout=300)
        return p.returncode, kids, err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_to_flash_stops_qemu(mlperf_tflite, sig):
    require_tool("qemu-system-arm")
    folder, _ = cached_build(mlperf_tflite["kws"], "qemu-cortex-m4", "aot")
    code, kids, err = _signal_once_qemu_runs(["flash", folder], sig)
    assert code != 0 or sig == signal.SIGINT, err  # Ctrl-C ends a served flash normally
    for k in kids:
        assert _gone(k), f"QEMU {k} outlived tinyedge flash after {sig.name}"
    assert "Traceback" not in err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_to_deploy_stops_qemu(tmp_path, mlperf_tflite, sig):
    require_tool("qemu-system-arm")
    code, kids, err = _signal_once_qemu_runs(
        ["deploy", mlperf_tflite["vww"], "--board", "qemu-cortex-m4", "--samples", "200", "-o", tmp_path / "d"], sig)
    assert code != 0, err
    for k in kids:
        assert _gone(k), f"QEMU {k} outlived tinyedge deploy after {sig.name}"
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("error: "), err
