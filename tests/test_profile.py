"""Per-layer profiling and divergence on the board (tinyedge.profile, `tinyedge profile`).

Real parts throughout: the firmware built with the profiler by arm-none-eabi-gcc (aot) or against
TFLite Micro (tflm), run under QEMU (-icount: counts are instructions, so sums are exact) or as the
host board behind a pty, the serial protocol, and the tflite-micro interpreter with every tensor
preserved as the reference.  The fault builds (TE_FAULT_OP=N: op N's output is off by one int8
step in one value) are the "deliberately broken kernel" that the divergence search must find.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from build_cache import build_key, cache_root
from conftest import require_tool

from tinyedge.graph import load_tflite
from tinyedge.link import protocol as p

SCHEMA = {"index": int, "op": str, "output": str, "layer": (str, type(None)), "shape": list, "macs": int,
          "count": int, "share": float, "per_mac": (float, type(None)), "bit_exact": (bool, type(None)),
          "max_diff_steps": (int, type(None)), "cosine": (float, type(None)), "rmse": (float, type(None))}


def _profile_build(model: Path, board: str, runtime: str, fault_op: int | None = None) -> Path:
    """A built profile project, cached by content (build_cache's key, which covers templates/ where
    the profile header's template lives, + the fault)."""
    from tinyedge.builder import build_project, read_build
    from tinyedge.profile import generate_profile_project

    h = hashlib.sha256((build_key(model, board, runtime) + f"\0fault={fault_op}").encode())
    folder = cache_root() / f"{model.stem}-{board}-{runtime}-profile-{h.hexdigest()[:20]}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(str(folder) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)    # two xdist workers never build one folder at once
        record = folder / "build" / "tinyedge-build.json"
        if record.is_file() and all(Path(a).exists() for a in read_build(folder)["artifacts"].values()):
            return folder
        if folder.exists():
            shutil.rmtree(folder)
        generate_profile_project(model, board, runtime, folder, fault_op=fault_op)
        build_project(folder, jobs=2)
    return folder


def _input(model: Path) -> np.ndarray:
    g = load_tflite(model)
    return np.random.default_rng(7).integers(-128, 128, size=g.input_tensors[0].shape).astype(np.int8)


def _profile(model: Path, board: str, runtime: str, fault_op: int | None = None, runs: int = 3) -> dict:
    from tinyedge.flashers.dispatch import flash_project
    from tinyedge.link import Device
    from tinyedge.profile import profile_device

    folder = _profile_build(model, board, runtime, fault_op)
    with Device.from_flash(flash_project(folder, board=board), timeout=60) as dev:
        return profile_device(dev, model, _input(model), runs=runs)


def _check_adds_up(rep: dict, model: Path) -> None:
    g = load_tflite(model)
    rows = rep["per_layer"]
    assert [r["index"] for r in rows] == list(range(len(g.ops)))
    assert [r["op"] for r in rows] == [op.opcode for op in g.ops]
    for r in rows:
        assert set(r) == set(SCHEMA)
        for k, t in SCHEMA.items():
            assert isinstance(r[k], t), (k, r[k])
    prof = rep["profile"]
    assert prof["unit"] == "instructions"
    whole = rep["latency"]["median"]
    total = sum(r["count"] for r in rows)
    assert total == prof["sum_of_ops"]
    assert abs(total - whole) <= 0.02 * whole, f"{model.name}: ops sum to {total}, the whole is {whole}"
    assert sum(r["share"] for r in rows) == pytest.approx(1.0)
    # the calibrated empty begin/end pair was taken out of every op
    assert prof["overhead_per_op"] > 0
    assert prof["whole_with_hooks"] > whole
    # the heavy ops carry the time: the op with the most MACs costs more than any op without MACs
    heavy = max(rows, key=lambda r: r["macs"])
    assert heavy["count"] > max(r["count"] for r in rows if r["macs"] == 0) if any(r["macs"] == 0 for r in rows) \
        else heavy["count"] > 0
    assert all(r["bit_exact"] is True and r["max_diff_steps"] == 0 for r in rows), rows
    assert prof["first_divergent"] is None


# ------------------------------------------------------------------ no board

def test_profile_result_round_trip():
    ops = (p.OpRecord(1234, 0xDEADBEEF, 640), p.OpRecord(0, 0, 0))
    r = p.ProfileResult(p.TE_OK, 99999, 920, 32, False, ops, b"\x01\x02")
    back = p.decode_profile_result(p.encode_profile_result(r), 2)
    assert back == r and back.overhead == 28.75
    with pytest.raises(p.ProtocolError):
        p.decode_profile_result(p.encode_profile_result(r)[:-12], 2)
    assert p.decode_tensor_dump(p.encode_tensor_dump(5, b"\xff\x00\x07")) == (5, b"\xff\x00\x07")
    assert p.encode_profile(True, 5, crc=False) == bytes([p.PROFILE_ON, 5, 0])
    assert p.encode_profile(False) == bytes([0, 0xFF, 0xFF])


def test_compare_tensor_known_answers():
    from tinyedge.profile import compare_tensor

    ref = np.array([10, -20, 30, 0], np.int8)
    dev = ref.copy()
    dev[2] += 3
    got = compare_tensor(dev, ref, 0.5, 0)
    assert got["max_diff_steps"] == 3
    assert got["rmse"] == pytest.approx(np.sqrt((1.5 ** 2) / 4))
    d, r = dev.astype(float) * 0.5, ref.astype(float) * 0.5
    assert got["cosine"] == pytest.approx(d @ r / np.linalg.norm(d) / np.linalg.norm(r))
    same = compare_tensor(ref, ref, 0.5, 0)
    assert same == {"max_diff_steps": 0, "cosine": 1.0, "rmse": 0.0}
    # the zero point is the zero of the dequantized values
    assert compare_tensor(np.array([5, 5], np.int8), np.array([5, 5], np.int8), 1.0, 5)["cosine"] == 1.0


def test_layer_names_from_keras_scopes(shared_models):
    from tinyedge.profile import _layer_names, keras_layers

    g = load_tflite(shared_models / "pretrainedResnet_quant.tflite")
    names = _layer_names(g, keras_layers(shared_models / "pretrainedResnet.h5"))
    ops = [op.opcode for op in g.ops]
    assert names[:4] == ["conv2d", "conv2d_1", "conv2d_2", "add"]
    assert names[ops.index("AVERAGE_POOL_2D")] == "average_pooling2d"
    assert names[ops.index("FULLY_CONNECTED")] == "dense"
    assert keras_layers(shared_models / "pretrainedResnet_quant.tflite") == {}


# ---------------------------------------------------------------- on QEMU

@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.parametrize("name", ["ad01", "kws", "resnet", "vww"])
def test_per_layer_counts_add_up_aot(mlperf_tflite, name):
    require_tool("qemu-system-arm")
    require_tool("arm-none-eabi-gcc")
    model = mlperf_tflite[name]
    # QEMU counts instructions: every run gives the same counts, so one run of the big models says
    # all (16-20 M instructions a run); the small ones take the median of three
    runs = 1 if name in ("resnet", "vww") else 3
    _check_adds_up(_profile(model, "qemu-cortex-m4", "aot", runs=runs), model)


@pytest.mark.slow
@pytest.mark.qemu
def test_per_layer_counts_add_up_tflm(mlperf_tflite, shared_sources):
    require_tool("qemu-system-arm")
    require_tool("arm-none-eabi-gcc")
    require_tool("cmake")
    model = mlperf_tflite["ad01"]
    _check_adds_up(_profile(model, "qemu-cortex-m4", "tflm"), model)


def _check_fault_found(rep: dict, fault: int) -> None:
    rows = rep["per_layer"]
    assert all(r["bit_exact"] for r in rows[:fault]), rows[:fault]
    bad = rows[fault]
    assert bad["bit_exact"] is False
    assert bad["max_diff_steps"] == 1
    assert 0.999 < bad["cosine"] < 1.0
    assert bad["rmse"] > 0
    d = rep["profile"]["first_divergent"]
    assert d["index"] == fault and d["elements_differing"] == 1


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.parametrize("runtime", ["aot", "tflm"])
def test_broken_kernel_found_at_its_op(mlperf_tflite, runtime, request):
    require_tool("qemu-system-arm")
    require_tool("arm-none-eabi-gcc")
    if runtime == "tflm":
        request.getfixturevalue("shared_sources")
        require_tool("cmake")
    model = mlperf_tflite["ad01"]
    _check_fault_found(_profile(model, "qemu-cortex-m4", runtime, fault_op=5), 5)


@pytest.mark.slow
@pytest.mark.qemu
def test_firmware_without_profiler_says_how_to_get_it(mlperf_tflite):
    """Old / plain firmware answers PROFILE with UNSUPPORTED; plain inferences still work."""
    require_tool("qemu-system-arm")
    require_tool("arm-none-eabi-gcc")
    from build_cache import cached_build

    from tinyedge.errors import LinkError
    from tinyedge.flashers.dispatch import flash_project
    from tinyedge.link import Device

    model = mlperf_tflite["ad01"]
    folder, _ = cached_build(model, "qemu-cortex-m4", "aot")
    with Device.from_flash(flash_project(folder, board="qemu-cortex-m4"), timeout=30) as dev:
        with pytest.raises(LinkError, match="without the per-op profiler") as e:
            dev.set_profile(True)
        assert "--per-layer" in e.value.hint
        y, count = dev.infer(_input(model))
        assert count > 0


# ------------------------------------------------------------ host board, CLI

@pytest.mark.slow
def test_cli_profile_host_finds_the_broken_op(mlperf_tflite, run_cli, tmp_path):
    require_tool("cc")
    model = mlperf_tflite["ad01"]
    out = tmp_path / "prof"
    r = run_cli("profile", str(model), "-b", "host", "--runs", "3", "--fault-op", "3", "--json", "-o", str(out))
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep == json.loads((out / "report.json").read_text())
    import importlib.util

    if importlib.util.find_spec("matplotlib") is not None:   # a dependency (pyproject); its page is drawn with it
        assert (out / "report.html").is_file()
    from tinyedge.report_html import LAYER_KEYS

    assert set(LAYER_KEYS) == set(SCHEMA)   # the entries the page draws are the ones written
    assert rep["latency"]["unit"] == "ns" and rep["profile"]["unit"] == "ns"
    for row in rep["per_layer"]:
        assert set(row) == set(SCHEMA)
    assert all(row["count"] >= 0 for row in rep["per_layer"])
    assert sum(row["count"] for row in rep["per_layer"]) > 0
    _check_fault_found(rep, 3)
    # a folder tinyedge did not make is never overwritten
    other = tmp_path / "mine"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    r2 = run_cli("profile", str(model), "-b", "host", "-o", str(other))
    assert r2.returncode == 2 and "error:" in r2.stderr and "Traceback" not in r2.stderr
    assert (other / "keep.txt").read_text() == "x"


@pytest.mark.slow
def test_deploy_per_layer_on_host(mlperf_tflite, run_cli, tmp_path):
    """`deploy --per-layer`: the validation as usual, and per_layer / profile in report.json."""
    require_tool("cc")
    model = mlperf_tflite["ad01"]
    out = tmp_path / "dep"
    r = run_cli("deploy", str(model), "-b", "host", "--per-layer", "-n", "2", "--json", "-o", str(out))
    assert r.returncode == 0, r.stderr
    rep = json.loads((out / "report.json").read_text())
    assert rep["agreement"]["bit_exact_rate"] == 1.0
    assert (out / "project" / "src" / "te_profile_config.h").is_file()
    rows = rep["per_layer"]
    assert len(rows) == len(load_tflite(model).ops)
    for row in rows:
        assert set(row) == set(SCHEMA)
        assert row["bit_exact"] is True and row["max_diff_steps"] == 0
    assert rep["profile"]["first_divergent"] is None
    assert "per-layer" in [s["name"] for s in rep["steps"]]


# ------------------------------------------------- several inputs, several outputs

@pytest.fixture(scope="session")
def two_io_tflite(tmp_path_factory) -> Path:
    """A tf_keras functional model with two inputs and two outputs, and a SPLIT (one op, two outputs)
    in the middle: int8-converted here (tinyedge convert takes one-input models only)."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    import tf_keras as k2

    L = k2.layers
    k2.utils.set_random_seed(3)
    a, b = L.Input((64,), name="a"), L.Input((32,), name="b")
    h = L.Dense(64, activation="relu", name="mix")(L.Concatenate(name="cat")([a, b]))
    s1, s2 = L.Lambda(lambda t: tf.split(t, 2, axis=-1), name="halves")(h)
    m = k2.Model([a, b], [L.Dense(8, name="head1")(s1), L.Dense(5, activation="softmax", name="head2")(s2)])
    fn = tf.function(lambda x1, x2: m([x1, x2]), input_signature=[tf.TensorSpec((1, 64), tf.float32),
                                                                   tf.TensorSpec((1, 32), tf.float32)])
    rng = np.random.default_rng(0)

    def rep():
        for _ in range(20):
            yield [rng.normal(size=(1, 64)).astype(np.float32), rng.normal(size=(1, 32)).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], m)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    out = tmp_path_factory.mktemp("two-io") / "two_io.tflite"
    out.write_bytes(conv.convert())
    g = load_tflite(out)
    assert len(g.inputs) == 2 and len(g.outputs) == 2
    assert [len(op.outputs) for op in g.ops if op.opcode == "SPLIT"] == [2]
    return out


def _inputs(model: Path) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.integers(-128, 128, size=t.shape).astype(np.int8) for t in load_tflite(model).input_tensors]


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.parametrize("fault_op", [None, 2])
def test_two_inputs_two_outputs_and_a_split_on_qemu(two_io_tflite, fault_op):
    """Both inputs reach the board and the reference; the SPLIT's CRC covers both its outputs; both
    model outputs are compared; a broken SPLIT (its first output off by one) is found at that op."""
    require_tool("qemu-system-arm")
    require_tool("arm-none-eabi-gcc")
    import zlib

    from tinyedge import isolate
    from tinyedge.flashers.dispatch import flash_project
    from tinyedge.link import Device
    from tinyedge.profile import profile_device

    model = two_io_tflite
    g = load_tflite(model)
    xs = _inputs(model)
    folder = _profile_build(model, "qemu-cortex-m4", "aot", fault_op)
    with Device.from_flash(flash_project(folder, board="qemu-cortex-m4"), timeout=60) as dev:
        rep = profile_device(dev, model, xs, runs=2)
        dev.set_profile(True, crc=True)
        rec, _ = dev.infer_profiled(xs)
        dev.set_profile(False)
    ref = isolate.call("evaluate", "tinyedge.profile:reference_tensors", model.read_bytes(), xs)
    split = next(op.index for op in g.ops if op.opcode == "SPLIT")
    parts = ref["ops"][split]
    assert len(parts) == 2 and rec.ops[split].nbytes == sum(a.nbytes for a in parts)
    whole_crc = zlib.crc32(b"".join(np.ascontiguousarray(a).tobytes() for a in parts))
    prof = rep["profile"]
    assert prof["inputs"] == 2 and [o["index"] for o in prof["outputs"]] == [0, 1]
    if fault_op is None:
        assert rec.ops[split].crc == whole_crc
        _check_adds_up(rep, model)
        assert prof["outputs_bit_exact"] and prof["profiled_outputs_bit_exact"]
        assert all(o["bit_exact"] and o["max_diff_steps"] == 0 for o in prof["outputs"])
    else:
        assert rec.ops[split].crc != whole_crc
        _check_fault_found(rep, fault_op)
        # the SPLIT's two outputs came back as two dumps, joined; the first is the broken one
        assert prof["first_divergent"]["output"] == 0
        assert prof["first_divergent"]["tensor"] == g.tensors[g.ops[split].outputs[0]].name
        # (one step in a hidden value need not reach the model's outputs: they are compared, not asserted)
        assert len(prof["outputs"]) == 2


def test_every_model_output_is_compared(two_io_tflite):
    from tinyedge.profile import _output_rows

    g = load_tflite(two_io_tflite)
    refs = [np.arange(int(np.prod(t.shape)), dtype=np.int8).reshape(t.shape) for t in g.output_tensors]
    ys = [r.copy() for r in refs]
    ys[1].reshape(-1)[2] += 3
    rows = _output_rows(g, tuple(ys), refs)
    assert [r["bit_exact"] for r in rows] == [True, False]
    assert rows[1]["max_diff_steps"] == 3 and rows[0]["max_diff_steps"] == 0
    assert [r["name"] for r in rows] == [t.name for t in g.output_tensors]


@pytest.mark.slow
def test_cli_profile_two_input_model_on_host(two_io_tflite, run_cli, tmp_path):
    require_tool("cc")
    out = tmp_path / "prof"
    r = run_cli("profile", two_io_tflite, "-b", "host", "--runs", "2", "--json", "-o", out)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["profile"]["inputs"] == 2 and len(rep["profile"]["outputs"]) == 2
    assert rep["profile"]["outputs_bit_exact"] and all(row["bit_exact"] for row in rep["per_layer"])
    assert any("2 inputs" in n for n in rep["notes"])
    data = tmp_path / "x.npy"
    np.save(data, np.zeros((1, 64), np.float32))
    r = run_cli("profile", two_io_tflite, "-b", "host", "--data", data, "-o", tmp_path / "p2")
    assert r.returncode == 2 and "error:" in r.stderr and "2 inputs" in r.stderr
    assert "Traceback" not in r.stderr
