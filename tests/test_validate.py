"""`validate` against the host-emulated board: the real generated C and te_app behind a pty."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tinyedge.emulation import emulate
from tinyedge.errors import ValidationError
from tinyedge.validation import generated_inputs, validate


@pytest.fixture(scope="module")
def kws_host_board(mlperf_tflite, tmp_path_factory):
    board = emulate(mlperf_tflite["kws"], work_dir=tmp_path_factory.mktemp("kws-host"))
    yield board
    board.close()


def test_generated_inputs_fixed_and_extreme():
    a = generated_inputs((1, 4, 4, 1), 20)
    b = generated_inputs((1, 4, 4, 1), 20)
    assert a.shape == (20, 1, 4, 4, 1) and a.dtype == np.int8
    assert np.array_equal(a, b)
    assert (a[0] == -128).all() and (a[1] == 127).all()


def test_validate_host_board_bit_exact(kws_host_board, mlperf_tflite, tmp_path):
    report_file = tmp_path / "r.json"
    r = validate(kws_host_board.port, mlperf_tflite["kws"], samples=12, report_file=report_file)
    assert r["samples"] == 12 and not r["interrupted"]
    assert r["agreement"]["bit_exact_rate"] == 1.0
    assert r["agreement"]["max_abs_diff"] == 0
    assert r["accuracy"] == {"float": None, "int8_host": None, "device": None, "labels": False}
    assert r["latency"]["unit"] == "ns" and r["latency"]["min"] > 0
    assert r["latency"]["min"] <= r["latency"]["median"] <= r["latency"]["max"]
    assert r["board"] == "host" and r["runtime"] == "aot"
    assert any("accuracy was not measured" in n for n in r["notes"])
    assert json.loads(report_file.read_text())["agreement"]["bit_exact_rate"] == 1.0


def test_validate_labelled_data(kws_host_board, mlperf_tflite, tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(0, 20, size=(8, 49, 10, 1)).astype(np.float32)
    y = rng.integers(0, 12, size=8)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    r = validate(kws_host_board.port, mlperf_tflite["kws"], data=tmp_path / "d.npz")
    assert r["samples"] == 8
    assert r["accuracy"]["labels"] is True
    # the board is bit-exact, so its accuracy equals the host int8 model's
    assert r["accuracy"]["device"] == r["accuracy"]["int8_host"] is not None


def test_validate_refuses_board_with_other_model(kws_host_board, mlperf_tflite):
    with pytest.raises(ValidationError) as e:
        validate(kws_host_board.port, mlperf_tflite["ad01"], samples=2)
    assert "another model" in str(e.value)


def test_validate_cli_other_model_one_line(kws_host_board, mlperf_tflite, run_cli):
    r = run_cli("validate", "--port", kws_host_board.port, mlperf_tflite["ad01"], "-n", "2")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "another model" in lines[-1]
    assert "Traceback" not in r.stderr


def test_validate_cli_json(kws_host_board, mlperf_tflite, run_cli):
    r = run_cli("validate", "--port", kws_host_board.port, mlperf_tflite["kws"], "-n", "3", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["agreement"]["bit_exact_rate"] == 1.0 and rep["samples"] == 3


def test_ctrl_c_while_streaming_reports_what_was_measured(kws_host_board, mlperf_tflite):
    """Ctrl-C (KeyboardInterrupt) on the third inference: the report covers the two measured ones."""
    from tinyedge.link import Device
    from tinyedge.validation import validate_device

    with Device(kws_host_board.port) as dev:
        real_infer = dev.infer
        calls = {"n": 0}

        def infer(x):
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt
            return real_infer(x)

        dev.infer = infer
        r = validate_device(dev, mlperf_tflite["kws"], samples=10)
    assert r["interrupted"] is True
    assert r["samples"] == 2 and r["samples_requested"] == 10
    assert r["agreement"]["bit_exact_rate"] == 1.0
    assert r["latency"]["count"] == 2
