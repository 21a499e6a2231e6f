"""The MLPerf Tiny / EEMBC protocol firmware on the emulated Cortex-M4 (real QEMU): the exact
strings of the runner's protocol, the th_ API input semantics checked against the host
reference, the robustness cases (half a command left over, dropped hex digits, slow m-ready),
and `tinyedge mlperf` / `deploy --protocol mlperf`."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest

from tinyedge.boards import get_board
from tinyedge.errors import UsageError
from tinyedge.graph import load_tflite
from tinyedge.hil.firmware import FirmwareCache
from tinyedge.link.transport import Transport
from tinyedge.mlperf import FW_VERSION, MlperfDut, Payload, auc, model_for, wait_boot
from tinyedge.qemu import start_qemu
from tinyedge.validation import Reference, generated_inputs

pytestmark = [pytest.mark.slow, pytest.mark.qemu]

M4 = get_board("qemu-cortex-m4")


@pytest.fixture(scope="module", params=["ad01", "kws"])
def board(request, mlperf_tflite):
    """(model name, .tflite, QEMU url, boot lines): the MLPerf firmware of the model under QEMU."""
    path = mlperf_tflite[request.param]
    fw = FirmwareCache().prepare(path, M4, protocol="mlperf")
    q = start_qemu(fw.artifacts["elf"], M4)
    try:
        boot = wait_boot(q.url, 20, process=q)
        yield request.param, path, q.url, boot
    finally:
        q.close()
    assert not q.alive()


@pytest.fixture
def dut(board):
    with MlperfDut(board[2], timeout=10) as d:
        d.sync()
        yield d
    assert all(ln.isascii() for ln in d.log)


def _inputs(path, n):
    g = load_tflite(path)
    shape = tuple(int(v) for v in g.input_tensors[0].shape)
    return g, Payload(model_for(g), g), generated_inputs(shape, n)


def test_boot_name_profile(board, dut):
    name, path, _, boot = board
    assert boot == ["m-timestamp-mode-performance", "m-init-done", "m-ready"]
    assert dut.command("name") == ["m-name-dut-[tinyedge]"]
    want = {"ad01": "ad01", "kws": "kws01"}[name]
    assert dut.command("profile") == [f"m-profile-[{FW_VERSION}]", f"m-model-[{want}]"]
    assert model_for(load_tflite(path)).name == want


def test_db_and_error_strings(board, dut):
    name, path, _, _ = board
    n = {"ad01": 2560, "kws": 490}[name]         # ad01: 640 float32; kws01: its 490 int8 features
    assert dut.command("db load 0") == ["e-[Command 'db load' must be >0 bytes]"]
    assert dut.command("db load") == ["e-[Command 'db load' requires the # of bytes]"]
    assert dut.command(f"db load {n + 1}") == [f"e-[Supplied buffer size {n + 1} exceeds maximum of {n}]"]
    assert dut.command("db") == ["e-[Command 'db' requires a subcommand]"]
    assert dut.command(f"db load {n}") == [f"m-[Expecting {n} bytes]"]
    assert dut.command("db 0a1") == ["e-[Insufficent number of hex digits]"]
    assert dut.command("db 0g") == ["e-[Invalid hex digit '0g']"]
    assert dut.command("db 0a1B") == []
    assert dut.command("db print") == ["m-buffer-0a-1b"]
    assert dut.command("infer 1 0") == [f"e-[Input not loaded: 2 of {n} bytes]"]
    assert dut.command("infer 0") == ["e-[Inference iterations must be >0]"]
    assert dut.command("frobnicate now") == ["e-[Unknown command: frobnicate]"]
    assert dut.command("x" * 300) == ["e-[Command too long]"]
    assert dut.command("") == []


def test_infer_sequence_and_results_match_reference(board, dut):
    name, path, _, _ = board
    g, payload, xs = _inputs(path, 3)
    ref = Reference(path.read_bytes())
    db, q = payload.from_int8(xs[2])
    dut.load(db)
    lines = dut.command("infer 3 2")
    assert lines[:3] == ["m-warmup-start-2", "m-warmup-done", "m-infer-start-3"]
    assert lines[3].startswith("m-lap-us-") and lines[4].startswith("m-lap-us-")
    t0, t1 = int(lines[3][9:]), int(lines[4][9:])
    assert t1 > t0
    assert lines[5] == "m-infer-done" and lines[6].startswith("m-results-[") and len(lines) == 7
    values = [float(v) for v in lines[6][11:-1].split(",")]
    assert values == payload.expected(db, ref.run(q))
    assert len(values) == (1 if name == "ad01" else 12)       # ad01: its anomaly score (the MSE)
    assert all(len(v.split(".")[1]) == 3 for v in lines[6][11:-1].split(","))
    assert dut.command("results") == [lines[6]]


def test_leftover_half_command_is_flushed(board):
    """#60: half a command from an earlier run sits in the board's buffer; sync() ends it."""
    url = board[2]
    t = Transport(url)
    t.write(b"db 0102030")          # an interrupted run: no '%'
    t.close()
    with MlperfDut(url) as d:
        d.sync()
        assert d.command("name") == ["m-name-dut-[tinyedge]"]


class DroppingTransport(Transport):
    """A fault injector on the real socket: drops one hex digit from the first `n` db lines
    (what a UART that loses a byte does to a long line, mlcommons/tiny#79)."""

    def __init__(self, url, n):
        super().__init__(url)
        self.left = n
        self.dropped = 0

    def write(self, data: bytes) -> None:
        if self.left and data.startswith(b"db ") and not data.startswith(b"db load"):
            self.left -= 1
            self.dropped += 1
            data = data[:7] + data[8:]
        super().write(data)


def test_dropped_digits_are_resent(board):
    name, path, url, _ = board
    g, payload, xs = _inputs(path, 3)
    t = DroppingTransport(url, 3)
    with MlperfDut(url, transport=t) as d:
        d.sync()
        db, q = payload.from_int8(xs[2])
        d.load(db)
        assert t.dropped == 3 and d.resends == 3
        r = d.infer(1, 0)
        assert r["results"] == payload.expected(db, Reference(path.read_bytes()).run(q))


def test_slow_ready_after_name_is_waited_for(board):
    """A board slow to say m-ready after name%: the runner waits longer (not resending, which would
    put the replies out of step), and the next command still gets its own reply."""
    url = board[2]

    class SlowFirst(Transport):
        reads = 0

        def read(self, max_wait):
            SlowFirst.reads += 1
            if SlowFirst.reads <= 3:       # the first reply is held back past the first deadline
                import time

                time.sleep(max_wait)
                return b""
            return super().read(max_wait)

    with MlperfDut(url, timeout=0.3, transport=SlowFirst(url)) as d:
        assert d.name() == "tinyedge" and d.slow_replies >= 1
        assert d.command("profile")[0] == f"m-profile-[{FW_VERSION}]"


def test_cli_runner_accuracy_and_performance(board, run_cli, tmp_path):
    """`tinyedge mlperf --port URL MODEL`: top-1 (kws) or AUC (ad01) equal to the host reference's,
    every result line equal to the host reference's, throughput from windows of board time."""
    name, path, url, _ = board
    g, payload, xs = _inputs(path, 4)
    ref = Reference(path.read_bytes())
    t = g.input_tensors[0]
    x = ((xs.astype(np.float32) - float(t.zero_point[0])) * float(t.scale[0])).reshape(len(xs), *xs.shape[2:])
    host_scores = [payload.expected(*(lambda db_q: (db_q[0], ref.run(db_q[1])))(payload.from_float(xi))) for xi in x]
    if name == "ad01":
        y = np.array([0, 1, 0, 1])
        want = {"auc": auc([s[0] for s in host_scores], y)}
    else:
        y = np.array([int(np.argmax(s)) for s in host_scores])
        y[0] = (y[0] + 1) % 12                   # one wrong label: top-1 is 0.75, not a constant 1
        want = {"top1": 0.75}
    np.savez(tmp_path / "data.npz", x=x, y=y)
    r = run_cli("mlperf", "--port", url, path, "--data", tmp_path / "data.npz", "--min-seconds", "0.05",
                "--windows", "3", "--json", timeout=300)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    acc = rep["accuracy"]
    assert acc["samples"] == 4 and acc["reference_mismatches"] == 0
    for k, v in want.items():
        assert acc[k] == pytest.approx(v, abs=1e-12)
    perf = rep["performance"]
    assert len(perf["windows"]) == 3
    for w in perf["windows"]:
        assert w["us"] >= 0.05e6 and w["per_second"] == pytest.approx(w["inferences"] / (w["us"] / 1e6))
    assert perf["median_per_second"] == sorted(w["per_second"] for w in perf["windows"])[1]


def test_deploy_protocol_mlperf(run_cli, mlperf_tflite, tmp_path):
    r = run_cli("deploy", mlperf_tflite["kws"], "--protocol", "mlperf", "-o", tmp_path / "out", "--samples", "3",
                "--json", timeout=600)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["protocol"] == "mlperf" and rep["mlperf"]["model"] == "kws01"
    assert rep["mlperf"]["accuracy"]["reference_mismatches"] == 0
    assert json.loads((tmp_path / "out" / "report.json").read_text())["mlperf"]["name"] == "tinyedge"


def test_generate_protocol_errors(run_cli, mlperf_tflite, tmp_path):
    r = run_cli("generate", mlperf_tflite["kws"], "--board", "host", "--protocol", "mlperf", "-o", tmp_path / "p")
    assert r.returncode == 2 and "error: the host board serves the tinyedge protocol only" in r.stderr
    assert not (tmp_path / "p").exists()
    fake = types.SimpleNamespace(input_tensors=[types.SimpleNamespace(shape=(1, 5))], output_tensors=[None])
    with pytest.raises(UsageError, match=r"no MLPerf Tiny benchmark model takes an input of shape \[1, 5\]"):
        model_for(fake)


def test_auc_counts_ties_half():
    assert auc([0.1, 0.9, 0.5, 0.5], [0, 1, 0, 1]) == pytest.approx(0.875)
    with pytest.raises(UsageError):
        auc([1, 2], [1, 1])
