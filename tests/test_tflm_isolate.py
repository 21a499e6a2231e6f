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


# ---------------------------------------------------------------------------
# The native crashes seen on ordinary models (issue 12), reproduced with small ones
# ---------------------------------------------------------------------------

STEPS, FEATURES = 6, 3


def _one_outcome(r, folder: Path, written: Path, step: str) -> str:
    """Either success, or exactly one `error:` line naming the step, exit 2, nothing written or left."""
    if r.returncode == 0:
        assert written.exists(), r.stdout + r.stderr
        return "ok"
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith(("warning", "  "))]
    assert len(lines) == 1 and lines[0].startswith("error: ") and step in lines[0], r.stderr
    assert "Traceback" not in r.stderr and not written.exists() and _leftovers(folder) == []
    return "error"


@pytest.fixture(scope="module")
def keras3_gru(tmp_path_factory) -> Path:
    import keras

    model = keras.Sequential([keras.Input((STEPS, FEATURES)), keras.layers.GRU(4, name="gru"),
                              keras.layers.Dense(3, activation="softmax", name="probs")])
    path = tmp_path_factory.mktemp("gru") / "gru.keras"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def tf_keras_lstm(tmp_path_factory) -> tuple[Path, Path]:
    """A tf_keras LSTM as .h5 and its int8 .tflite (UNIDIRECTIONAL_SEQUENCE_LSTM)."""
    import tf_keras

    from tinyedge.conversion import convert

    model = tf_keras.Sequential([tf_keras.Input((STEPS, FEATURES)), tf_keras.layers.LSTM(4, name="lstm"),
                                 tf_keras.layers.Dense(3, activation="softmax", name="probs")])
    folder = tmp_path_factory.mktemp("lstm")
    model.save(folder / "lstm.h5")
    convert(folder / "lstm.h5", out=folder / "lstm.tflite", samples=8)
    return folder / "lstm.h5", folder / "lstm.tflite"


@pytest.mark.slow
def test_keras3_gru_converts_instead_of_crashing_the_calibrator(run_cli, tmp_path, keras3_gru):
    """The calibrator segfaulted on the GRU's loop; convert unrolls it, and the result is int8 ops
    that the tflite-micro interpreter ran (convert's own check)."""
    from tinyedge.conversion import check_full_int8
    from tinyedge.graph import load_tflite

    out = tmp_path / "gru.tflite"
    r = run_cli("convert", keras3_gru, "-o", out, "--calib-samples", "8")
    assert _one_outcome(r, tmp_path, out, "convert") == "ok", r.stderr
    graph = load_tflite(out)
    check_full_int8(graph)
    ops = graph.op_counts()
    assert "WHILE" not in ops and ops["TANH"] == STEPS and ops["FULLY_CONNECTED"] >= 2 * STEPS


def test_a_crash_in_convert_names_the_recurrent_layer(run_cli, tmp_path, keras3_gru):
    """Should the converter still crash on a recurrent layer, the error line names that layer."""
    out = tmp_path / "gru.tflite"
    r = run_cli("convert", keras3_gru, "-o", out, "--calib-samples", "8", env={"TINYEDGE_WORKER_FAULT": "convert"})
    assert _one_outcome(r, tmp_path, out, "during step 'convert'") == "error"
    assert "most likely at layer 'gru': a GRU;" in r.stderr


@pytest.mark.slow
def test_tf_keras_lstm_inspect_and_generate_tflm(run_cli, tmp_path, tf_keras_lstm):
    """inspect and generate -r tflm segfaulted in the arena search; now they measure the arena."""
    import json

    _, tflite = tf_keras_lstm   # the arena search is the same for the .h5 (converted in memory first)
    r = run_cli("inspect", tflite, "--json")
    assert r.returncode == 0, r.stderr
    mem = json.loads(r.stdout)["memory"]
    assert isinstance(mem["tflm_arena_bytes"], int) and mem["tflm_arena_bytes"] > 0, mem
    proj = tmp_path / "proj"
    r = run_cli("generate", tflite, "--board", "qemu-cortex-m4", "-r", "tflm", "-o", proj)
    assert _one_outcome(r, tmp_path, proj, "arena") == "ok"


def test_lstm_arena_search_survives_the_interpreter_crashing(tf_keras_lstm):
    """The interpreter really segfaults with some too-small arenas on this model; each try is a
    forked child, so the search ends with the smallest arena that loads."""
    from tinyedge.analyze import _probe, tflm_arena_bytes

    data = tf_keras_lstm[1].read_bytes()
    arena = tflm_arena_bytes(data)
    assert _probe(data, arena)[0] and not _probe(data, arena - 16)[0]
    crashes = {s for a in range(arena // 2, arena, 64) if (s := _probe(data, a)[2]) is not None}
    assert crashes, "no too-small arena crashed the interpreter: this test no longer shows the hazard"
    assert crashes <= {"SIGSEGV", "SIGABRT", "SIGBUS"}
