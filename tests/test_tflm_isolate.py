"""Native crashes (TensorFlow's converter, the tflite-micro interpreter) become one error line.

The fault is real: with TINYEDGE_WORKER_FAULT=<step> the worker process of
that step (tinyedge.isolate) kills itself with SIGSEGV, as the converter or
the interpreter do on some models.  The CLI must print one `error:` line
naming the step, exit 2, and leave no output nor temporary folder behind.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from conftest import REPO

DIGITS = REPO / "examples" / "digits"


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp"))


def test_converter_crash_is_one_error_line(run_cli, tmp_path):
    out = tmp_path / "digits.tflite"
    r = run_cli("convert", DIGITS / "model.h5", "--calib", DIGITS / "calib.npz", "-o", out,
                env={"TINYEDGE_WORKER_FAULT": "convert"})
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "crashed (SIGSEGV) during step 'convert'" in lines[0]
    assert "Traceback" not in r.stderr
    assert not out.exists() and _leftovers(tmp_path) == []


def test_crash_report_reaches_verbose(run_cli, tmp_path):
    r = run_cli("-v", "convert", DIGITS / "model.h5", "--calib", DIGITS / "calib.npz", "-o", tmp_path / "d.tflite",
                env={"TINYEDGE_WORKER_FAULT": "convert"})
    assert r.returncode == 2
    assert "Fatal Python error: Segmentation fault" in r.stderr  # the worker's own crash report
    assert "convert_loaded" in r.stderr or "_convert_worker" in r.stderr
    assert r.stderr.rstrip().splitlines()[-1].startswith("error: ")


def test_interpreter_crash_in_arena_search_leaves_no_project(run_cli, tmp_path, mlperf_tflite):
    out = tmp_path / "proj"
    r = run_cli("generate", mlperf_tflite["kws"], "--board", "qemu-cortex-m4", "-r", "tflm", "-o", out,
                env={"TINYEDGE_WORKER_FAULT": "arena"})
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: the tflite-micro interpreter crashed (SIGSEGV) during step 'arena'")
    assert len(r.stderr.strip().splitlines()) == 1
    assert not out.exists() and _leftovers(tmp_path) == []


def test_isolate_call_api():
    from tinyedge import isolate
    from tinyedge.errors import ModelError

    assert isolate.call("arena", "tinyedge.isolate:_signal_name", -signal.SIGABRT) == "SIGABRT"
    with pytest.raises(ModelError, match="x"):  # a TinyedgeError in the worker is raised here as is
        isolate.call("arena", "tinyedge.project:tflm_resolver_method", "CUSTOM:x")
    with pytest.raises(RuntimeError, match="TypeError"):  # a bug stays a bug (exit 1)
        isolate.call("arena", "tinyedge.isolate:_signal_name", "not-an-int")
    with pytest.raises(isolate.NativeCrashError) as e:
        import os
        os.environ[isolate.FAULT_ENV] = "arena"
        try:
            isolate.call("arena", "tinyedge.isolate:_signal_name", -6)
        finally:
            del os.environ[isolate.FAULT_ENV]
    assert e.value.signal_name == "SIGSEGV" and e.value.step == "arena"
