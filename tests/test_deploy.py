"""`deploy` end to end: model file -> int8 -> firmware -> emulated board -> report.json.

The host-emulated board runs the generated C built for this computer behind
a pty; qemu-cortex-m4 (the default board) runs the real Cortex-M firmware
under qemu-system-arm.  No fakes anywhere on this path.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

import tinyedge.pipeline as deploy_mod
from tinyedge.pipeline import deploy

REPO = Path(__file__).resolve().parent.parent
DIGITS = REPO / "examples" / "digits"

REQUIRED = {
    "board", "runtime", "model", "memory", "samples", "agreement", "accuracy", "latency", "steps", "versions",
}


def _qemu_pids(pattern: str) -> set[int]:
    """PIDs of qemu-system-arm processes whose command line contains `pattern` (e.g. this test's folder)."""
    r = subprocess.run(["pgrep", "-f", f"qemu-system-arm.*{pattern}"], capture_output=True, text=True)
    return {int(x) for x in r.stdout.split()}


def _check_shape(r: dict) -> None:
    assert REQUIRED <= set(r), REQUIRED - set(r)
    assert set(r["model"]) >= {"path", "sha256", "tflite_bytes"}
    assert set(r["memory"]) >= {"flash_bytes", "ram_bytes", "arena_bytes", "board_flash_bytes", "board_ram_bytes"}
    assert set(r["agreement"]) >= {"bit_exact_rate", "top1_agreement", "max_abs_diff"}
    assert set(r["accuracy"]) >= {"float", "int8_host", "device"}
    assert set(r["latency"]) >= {"unit", "min", "median", "p95", "max", "ms_median"}
    assert [s["name"] for s in r["steps"]] == ["convert", "generate", "build", "flash", "validate"]
    assert all(s["seconds"] >= 0 for s in r["steps"])
    assert r["versions"]["tinyedge"] and r["versions"]["tflite-micro"]


@pytest.fixture(scope="module")
def host_deploy(tmp_path_factory):
    out = tmp_path_factory.mktemp("deploy") / "digits-host"
    r = deploy(DIGITS / "model.h5", board="host", data=DIGITS / "test.npz", calib=DIGITS / "calib.npz", out=out)
    return out, r


@pytest.mark.slow
def test_deploy_host_board_report(host_deploy):
    out, r = host_deploy
    _check_shape(r)
    assert r["board"] == "host" and r["runtime"] == "aot"
    assert r["samples"] == 300
    assert r["agreement"]["bit_exact_rate"] == 1.0 and r["agreement"]["max_abs_diff"] == 0
    acc = r["accuracy"]
    assert acc["device"] == acc["int8_host"]
    assert acc["float"] > 0.9 and acc["int8_host"] > 0.9
    assert r["latency"]["unit"] == "ns" and r["latency"]["ms_median"] > 0
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["agreement"] == r["agreement"] and on_disk["model"]["sha256"] == r["model"]["sha256"]
    assert (out / "model.tflite").is_file() and (out / "project" / "tinyedge-project.json").is_file()
    assert (out / "project" / "build").is_dir()
    m = r["metrics"]                                   # a Keras model: the float model is compared too
    assert m["task"] == "classify" and m["top_k"]["1"]["device"] == acc["device"]
    assert m["top_k"]["1"]["float"] == acc["float"] and set(m["top_k"]) == {"1", "3", "5"}
    assert m["error"]["board_vs_int8_host"]["rmse"] == 0.0
    f = m["error"]["board_vs_float"]
    assert 0 < f["rmse"] < 0.1 and f["cosine"] > 0.99 and f["rel_l2"] < 0.2
    y = np.load(DIGITS / "test.npz")["y"][:300]
    cm = np.array(m["confusion_matrix"]["device"])
    assert cm.sum(axis=1).tolist() == np.bincount(y, minlength=10).tolist()
    assert np.trace(cm) / 300 == pytest.approx(acc["device"])
    page = (out / "report.html").read_text()
    assert 'id="chart-confusion"><svg' in page and 'id="chart-latency"><svg' in page


@pytest.mark.slow
def test_second_deploy_reuses_conversion(host_deploy):
    out, first = host_deploy
    r = deploy(DIGITS / "model.h5", board="host", data=DIGITS / "test.npz", calib=DIGITS / "calib.npz",
               out=out, samples=10)
    convert_step = r["steps"][0]
    assert convert_step["name"] == "convert" and "reused" in convert_step.get("note", "")
    assert r["model"]["sha256"] == first["model"]["sha256"]
    assert r["samples"] == 10 and r["agreement"]["bit_exact_rate"] == 1.0


@pytest.mark.slow
@pytest.mark.qemu
def test_deploy_default_qemu_board(tmp_path):
    r = deploy(DIGITS / "model.h5", data=DIGITS / "test.npz", calib=DIGITS / "calib.npz",
               out=tmp_path / "digits-m4", samples=60)
    _check_shape(r)
    assert r["board"] == "qemu-cortex-m4"
    assert r["agreement"]["bit_exact_rate"] == 1.0
    assert r["accuracy"]["device"] == r["accuracy"]["int8_host"] is not None
    lat = r["latency"]
    assert lat["unit"] == "instructions" and lat["ms_median"] is None and lat["min"] > 0
    mem = r["memory"]
    assert 0 < mem["flash_bytes"] <= mem["board_flash_bytes"]
    assert 0 < mem["ram_bytes"] <= mem["board_ram_bytes"]
    assert 0 < mem["arena_bytes"] <= mem["ram_bytes"]
    assert r["versions"]["arm-none-eabi-gcc"] and r["versions"]["qemu-system-arm"]
    assert not _qemu_pids(str(tmp_path)), "deploy left its QEMU process running"


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.parametrize("name", ["ad01", "kws", "resnet", "vww"])
def test_deploy_mlperf_qemu_bit_exact(name, mlperf_tflite, tmp_path):
    r = deploy(mlperf_tflite[name], board="qemu-cortex-m4", out=tmp_path / name, samples=20)
    assert r["samples"] == 20
    assert r["agreement"]["bit_exact_rate"] == 1.0, r["agreement"]
    assert r["accuracy"] == {"float": None, "int8_host": None, "device": None, "labels": False}
    assert r["latency"]["unit"] == "instructions"
    assert r["memory"]["flash_bytes"] <= r["memory"]["board_flash_bytes"]
    assert any("accuracy was not measured" in n for n in r["notes"])
    assert r["metrics"]["task"] == ("anomaly" if name == "ad01" else "classify")
    assert r["metrics"]["error"]["board_vs_int8_host"]["rmse"] == 0.0
    assert r["metrics"]["error"]["float_note"] == "no float model: the input was a .tflite"
    assert r["latency"]["estimate"] == "estimate: 1 instruction per cycle at 25 MHz"
    assert r["latency"]["estimate_ms"]["median"] == pytest.approx(r["latency"]["median"] / 25e3)
    assert (tmp_path / name / "report.html").read_text().count("<svg") == 2   # latency, flash and RAM
    if name == "vww":   # the row-streamed plan ran (bit-exact above): 0.6x the layer-by-layer 55,296 B at most
        assert r["memory"]["arena_bytes"] <= 33_178


@pytest.mark.slow
def test_real_board_without_port_builds_and_stops(tmp_path, monkeypatch, capsys):
    # No board is attached here: deploy must build, then stop and say how to flash.
    monkeypatch.setattr(deploy_mod, "_find_port", lambda b: None)
    r = deploy(DIGITS / "model.h5", board="nucleo-l4r5zi", calib=DIGITS / "calib.npz", out=tmp_path / "nucleo")
    assert r["status"] == "built, not flashed" and r["flashed"] is False
    assert r["samples"] == 0 and r["agreement"] is None
    project = tmp_path / "nucleo" / "project"
    assert r["next"]["flash"] == f"tinyedge flash {project} --port PORT"
    assert r["memory"]["flash_bytes"] <= r["memory"]["board_flash_bytes"]
    assert r["artifacts"]["report"] == str(tmp_path / "nucleo" / "report.json")
    assert (tmp_path / "nucleo" / "report.json").is_file()
    assert [s["name"] for s in r["steps"]] == ["convert", "generate", "build"]   # nothing was flashed
    from tinyedge.commands._report import print_report

    print_report(r)   # the summary of a built-not-flashed deploy: no samples, no "not measured" rows
    text = capsys.readouterr().out
    assert "Built, not flashed: nucleo-l4r5zi" in text and "tinyedge flash" in text
    assert "samples" not in text and "not measured" not in text and str(project) in text


def test_deploy_refuses_foreign_folder(run_cli, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    r = run_cli("deploy", DIGITS / "model.h5", "--board", "host", "-o", out)
    assert r.returncode == 2 and r.stderr.strip().startswith("error:") and "--force" in r.stderr
    assert "Traceback" not in r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "my notes"


def test_deploy_bad_inputs_one_line(run_cli, tmp_path):
    cases = [
        ("deploy", tmp_path / "missing.h5"),
        ("deploy", DIGITS / "model.h5", "--board", "no-such-board"),
        ("deploy", DIGITS / "model.h5", "--board", "host", "--runtime", "tvm"),
    ]
    for args in cases:
        r = run_cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr


def test_deploy_checks_data_before_building(run_cli, tmp_path, mlperf_tflite):
    import numpy as np

    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((3, 5, 5, 1), np.float32))
    out = tmp_path / "out"
    r = run_cli("deploy", mlperf_tflite["kws"], "--board", "host", "--data", bad, "-o", out)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error:") and "49x10x1" in r.stderr
    assert not (out / "project").exists(), "deploy built firmware before checking the data"
    r = run_cli("deploy", mlperf_tflite["kws"], "--board", "host", "--data", REPO / "README.md", "-o", out)
    assert r.returncode == 2 and "not a .npz or .npy" in r.stderr
