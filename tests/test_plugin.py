"""The tinyedge pytest plugin, run the way a user runs it: pytester in a subprocess, a user's
test file, emulated boards (real QEMU), the plugin loaded through its pytest11 entry point."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tinyedge.hil.firmware import default_cache_dir
from tinyedge.hil.targets import BoardPool, BoardUnavailable, InventoryEntry, load_inventory

pytest_plugins = ["pytester"]

pytestmark = [pytest.mark.slow, pytest.mark.qemu]

CACHE = str(default_cache_dir())        # pytester moves HOME; keep the shared firmware cache


def _ours(marker: str) -> list[int]:
    """pids of processes (QEMU included) started under the pytester run tagged `marker`."""
    pids = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == os.getpid():
            continue
        try:
            env = (p / "environ").read_bytes()
        except OSError:
            continue
        if f"TINYEDGE_HIL_TEST_RUN={marker}".encode() in env.split(b"\0"):
            pids.append(int(p.name))
    return pids


@pytest.fixture
def run_user(pytester, monkeypatch, mlperf_tflite):
    """Run pytest on the user's files in a subprocess; check afterwards that no process of it
    (QEMU above all) is left."""
    monkeypatch.setenv("AD01", str(mlperf_tflite["ad01"]))

    def run(*args):
        marker = uuid.uuid4().hex
        monkeypatch.setenv("TINYEDGE_HIL_TEST_RUN", marker)
        res = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--tinyedge-cache={CACHE}",
                                            *args, timeout=400)
        left = _ours(marker)
        assert not left, f"processes left behind by the run: {left}"
        return res

    return run


USER_PASSING = '''
import os
import numpy as np
import pytest

AD01 = os.environ["AD01"]
seen = []

def test_report(tinyedge_deploy, tinyedge_board):
    d = tinyedge_deploy(AD01, samples=4)
    seen.append(d)
    assert tinyedge_board == "qemu-cortex-m4"
    assert d.report["agreement"]["bit_exact_rate"] == 1.0
    assert d.report["latency"]["unit"] == "instructions"

def test_infer_matches_reference(tinyedge_deploy, tinyedge_reference):
    d = tinyedge_deploy(AD01, samples=4)
    seen.append(d)
    x = np.random.default_rng(1).integers(-128, 128, (1, 640)).astype(np.int8)
    y, count = d.device.infer(x)
    np.testing.assert_array_equal(y.reshape(-1), tinyedge_reference(AD01).run(x).reshape(-1))
    assert count > 0

def test_same_deployment(tinyedge_deploy):
    d = tinyedge_deploy(AD01, samples=4)
    assert all(s is d for s in seen) and d.flashed == 1
    assert d.device.info().model_sha256 == d.firmware.model_sha256
'''

USER_SECOND_MODULE = '''
import os

def test_other_module(tinyedge_deploy):
    d = tinyedge_deploy(os.environ["AD01"], samples=4)
    assert d.report["samples"] == 4
'''


def test_passing_file_deploys_once_per_module(pytester, run_user):
    """A user's passing file: exit 0, one deploy and one flash per module (scope module),
    JUnit properties name board, firmware and URL."""
    pytester.makepyfile(test_user_a=USER_PASSING, test_user_b=USER_SECOND_MODULE)
    res = run_user("--junitxml=junit.xml", "-v")
    res.assert_outcomes(passed=4)
    assert res.ret == 0
    res.stdout.fnmatch_lines(["tinyedge: 2 deploys (* built, * from cache), 2 flashes, 0 restarts"])
    props = {}
    for case in ET.parse(pytester.path / "junit.xml").getroot().iter("testcase"):
        props[case.get("name")] = {p.get("name"): p.get("value") for p in case.iter("property")}
    p = props["test_report[qemu-cortex-m4]"]
    assert p["tinyedge_board"] == "qemu-cortex-m4"
    assert len(p["tinyedge_firmware_sha256"]) == 64
    assert p["tinyedge_url"].startswith("socket://127.0.0.1:")
    # same firmware in both modules, but each module had its own emulator
    q = props["test_other_module[qemu-cortex-m4]"]
    assert q["tinyedge_firmware_sha256"] == p["tinyedge_firmware_sha256"]


USER_FAILING = '''
import os
import time
import numpy as np
import pytest

AD01 = os.environ["AD01"]

def test_wrong_expectation(tinyedge_deploy):
    d = tinyedge_deploy(AD01, samples=4)
    y, _ = d.device.infer(np.zeros((1, 640), np.int8))
    assert int(y.reshape(-1)[0]) == 1000, "the board's answer is not what the test wants"

@pytest.mark.tinyedge_timeout(2)
def test_hangs(tinyedge_deploy):
    tinyedge_deploy(AD01, samples=4)
    time.sleep(60)

def test_still_fine(tinyedge_deploy):
    assert tinyedge_deploy(AD01, samples=4).device.info().init_status == 0

@pytest.mark.tinyedge_hardware
def test_bench_only(tinyedge_board):
    pass

@pytest.mark.tinyedge_boards("nucleo-l4r5zi")
def test_needs_nucleo(tinyedge_deploy):
    tinyedge_deploy(AD01, samples=4)
'''


def test_failing_file_attaches_board_log(pytester, run_user):
    """A failing test: exit 1, the board's log (its boot line) shown with the failure, written to
    the log folder; a test past its timeout fails without hanging; hardware-only and unavailable
    boards skip with the reason."""
    pytester.makepyfile(test_user=USER_FAILING)
    res = run_user("-rs", "--tinyedge-log-dir", "logs")
    res.assert_outcomes(failed=2, passed=1, skipped=2)
    assert res.ret == 1
    out = res.stdout.str()
    assert "tinyedge board log: qemu-cortex-m4 (emulated main)" in out
    assert "tinyedge ready board=qemu-cortex-m4 runtime=aot" in out
    assert "the board's answer is not what the test wants" in out
    assert "ran past its tinyedge timeout of 2 s" in out
    assert "needs a real board; qemu-cortex-m4 is emulated" in out
    assert "no nucleo-l4r5zi board: it is a real board and none was given" in out
    logs = sorted((pytester.path / "logs").glob("*.log"))
    names = [p.name for p in logs]
    assert any("test_wrong_expectation" in n for n in names)
    assert "tinyedge ready board=qemu-cortex-m4" in (pytester.path / "logs" / next(
        n for n in names if "test_wrong_expectation" in n)).read_text()


USER_KILLED = '''
import os
import signal
import numpy as np

AD01 = os.environ["AD01"]
X = np.zeros((1, 640), np.int8)

def kill_board(d):
    os.kill(d.device.process.pid, signal.SIGKILL)
    d.device.process.proc.wait()

def test_1_dies(tinyedge_deploy):
    d = tinyedge_deploy(AD01, samples=4)
    kill_board(d)
    d.device.infer(X)

def test_2_restarted(tinyedge_deploy):
    d = tinyedge_deploy(AD01, samples=4)
    assert d.device.process.alive()
    d.device.infer(X)

def test_3_dies_again(tinyedge_deploy):
    d = tinyedge_deploy(AD01, samples=4)
    kill_board(d)
    d.device.infer(X)

def test_4_skipped(tinyedge_deploy):
    tinyedge_deploy(AD01, samples=4)
'''


def test_killed_board_restarted_then_broken(pytester, run_user):
    pytester.makepyfile(test_user=USER_KILLED)
    res = run_user("-rs")
    res.assert_outcomes(failed=2, passed=1, skipped=1)
    out = res.stdout.str()
    assert "stopped answering in test_user.py::test_1_dies[qemu-cortex-m4]: restarted it" in out
    assert "stopped answering again in test_user.py::test_3_dies_again[qemu-cortex-m4] after a restart" in out
    res.stdout.fnmatch_lines(["SKIPPED*board qemu-cortex-m4 (emulated main) is broken: stopped answering again*"])
    res.stdout.fnmatch_lines(["tinyedge: 1 deploys (*), 2 flashes, 1 restarts"])


USER_XDIST = '''
import os
import pytest

AD01 = os.environ["AD01"]
OUT = os.environ["XDIST_OUT"]

@pytest.mark.parametrize("i", range(2))
def test_each_worker_own_board(tinyedge_deploy, tinyedge_board, worker_id, i):
    d = tinyedge_deploy(AD01, samples=4)
    assert d.report["agreement"]["bit_exact_rate"] == 1.0
    with open(OUT, "a") as f:
        f.write(f"{worker_id} {tinyedge_board} {d.device.process.pid} {d.url}\\n")
'''


def test_xdist_two_boards_two_workers(pytester, run_user, monkeypatch, tmp_path):
    """Two boards x 2 tests under -n 2 with --tinyedge-scope session: each worker runs its own
    emulators, deployed once per board per worker; no emulator process or UART is shared by two
    workers."""
    out = tmp_path / "seen.txt"
    monkeypatch.setenv("XDIST_OUT", str(out))
    pytester.makepyfile(test_user=USER_XDIST)
    res = run_user("-n", "2", "--tinyedge-board", "qemu-cortex-m4", "--tinyedge-board", "qemu-cortex-m3",
                   "--tinyedge-scope", "session")
    res.assert_outcomes(passed=4)
    rows = [ln.split() for ln in out.read_text().splitlines()]
    assert {r[1] for r in rows} == {"qemu-cortex-m4", "qemu-cortex-m3"}
    workers = {r[0] for r in rows}
    assert workers == {"gw0", "gw1"}
    for w in workers:                  # nothing a worker used belongs to the other worker
        mine = {(r[2], r[3]) for r in rows if r[0] == w}
        theirs = {(r[2], r[3]) for r in rows if r[0] != w}
        assert not ({p for p, _ in mine} & {p for p, _ in theirs})
        for b in ("qemu-cortex-m4", "qemu-cortex-m3"):     # session scope: one emulator per board
            assert len({r[2] for r in rows if r[0] == w and r[1] == b}) <= 1


# ---------------------------------------------------------------- in-process parts

def test_inventory_board_locked_across_processes(tmp_path, monkeypatch):
    """A real board held by another process (its file lock) is not handed out; once that
    process lets go, it is."""
    monkeypatch.setenv("TINYEDGE_LOCK_DIR", str(tmp_path / "locks"))
    inv = tmp_path / "boards.toml"
    inv.write_text('[[board]]\nname = "bench-1"\nboard = "nucleo-l4r5zi"\nurl = "socket://127.0.0.1:1"\n'
                   'tags = ["bench"]\n')
    entries = load_inventory(inv)
    assert entries == [InventoryEntry("bench-1", "nucleo-l4r5zi", "socket://127.0.0.1:1", ("bench",))]
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom tinyedge.hil.targets import BoardPool, load_inventory\n"
         f"p = BoardPool(inventory=load_inventory({str(inv)!r}), worker='other')\n"
         "p.get('nucleo-l4r5zi'); print('held', flush=True); sys.stdin.readline(); p.close()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        pool = BoardPool(inventory=entries, lock_wait=0.5, worker="me")
        with pytest.raises(BoardUnavailable, match="stayed in use by other processes"):
            pool.get("nucleo-l4r5zi")
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=20)
        pool.lock_wait = 20
        t = pool.get("nucleo-l4r5zi")
        assert t.name == "bench-1" and t.kind == "inventory"
        pool.close()
    finally:
        holder.kill()
        holder.wait()


def test_inventory_errors_say_what_to_fix(tmp_path):
    from tinyedge.errors import InputFileError

    bad = tmp_path / "inv.toml"
    bad.write_text('[[board]]\nname = "x"\nboard = "nucleo-l4r5zi"\n')
    with pytest.raises(InputFileError, match="lacks url"):
        load_inventory(bad)
    bad.write_text("[[board]\n")
    with pytest.raises(InputFileError, match="not valid TOML"):
        load_inventory(bad)


def test_firmware_cache_keeps_the_newest_builds(tmp_path):
    from tinyedge.hil.firmware import KEEP_BUILDS, FirmwareCache

    cache = FirmwareCache(tmp_path)
    old = [tmp_path / f"m-b-aot-tinyedge-{i:024d}" for i in range(KEEP_BUILDS + 5)]
    for i, d in enumerate(old):
        d.mkdir()
        os.utime(d, (1_000_000 + i, 1_000_000 + i))     # long ago, oldest first
    fresh = tmp_path / "m-b-aot-tinyedge-fresh"
    fresh.mkdir()                                        # used just now: never dropped
    (tmp_path / "models").mkdir()
    cache._prune()
    left = {p.name for p in tmp_path.iterdir()}
    # the 40 newest builds (the fresh one and the 39 newest old ones) and the converted models
    assert left == {fresh.name, "models", *(d.name for d in old[-(KEEP_BUILDS - 1):])}
