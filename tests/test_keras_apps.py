"""Keras 3 models from several keras.applications families convert to full int8 and deploy bit-exact.

Each model is built here with `weights=None` at 32x32, then given
deterministic weights that keep its activations alive (He-normal kernels on
each layer's real fan-in, batch-norm statistics from one batch of inputs):
with Keras' default initialisers a deep depthwise stack's activations vanish
(MobileNet's logits are ~1e-16), which is a degenerate model, not a trained
one.  That degenerate case has its own test: TFLite Micro's int8 softmax
aborts its interpreter on such a scale, so convert refuses it with one error
line.

Conversion is tinyedge's own route (`tinyedge.conversion.convert`: Keras 3 ->
TFLiteConverter.from_keras_model in a worker process, full-int8 check, the
tflite-micro interpreter).  Its result is cached by content (the family and
its arguments, the code below that builds the model, the TensorFlow, Keras
and tflite-micro versions, and tinyedge's conversion code) in
~/.cache/tinyedge/keras-apps, so a rerun converts nothing until one of those
changes; the firmware builds are cached by tests/build_cache.py.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from build_cache import cache_root, cached_build
from conftest import REPO, require_tool

pytestmark = pytest.mark.slow

SIZE = 32
SEED = 0
# family id -> (keras.applications constructor, its arguments besides input_shape/weights/classes)
FAMILIES = {
    "mobilenet": ("MobileNet", {"alpha": 0.25}),
    "mobilenet_v2": ("MobileNetV2", {"alpha": 0.35}),
    "mobilenet_v3_small": ("MobileNetV3Small", {"alpha": 0.75, "include_preprocessing": False}),
    "efficientnet_b0": ("EfficientNetB0", {}),
}
# What decides the converted bytes (the route) and whether convert accepts them (the TFLM op check).
_CONVERSION_CODE = ("conversion.py", "tflm_support.py")


def _build(family: str):
    import keras

    ctor, kwargs = FAMILIES[family]
    model = getattr(keras.applications, ctor)(input_shape=(SIZE, SIZE, 3), weights=None, classes=10, **kwargs)
    rng = np.random.default_rng(SEED)
    for layer in model.layers:
        cls = type(layer).__name__
        ws = layer.get_weights()
        if cls == "DepthwiseConv2D":       # kernel (kh, kw, C, 1): each output sees kh*kw inputs
            fan = ws[0].shape[0] * ws[0].shape[1]
        elif cls in ("Conv2D", "Dense"):   # kernel (..., C_in, C_out)
            fan = int(np.prod(ws[0].shape[:-1]))
        else:
            continue
        ws[0] = rng.normal(0.0, np.sqrt(2.0 / fan), ws[0].shape).astype(np.float32)
        if len(ws) > 1:
            ws[1] = rng.normal(0.0, 0.1, ws[1].shape).astype(np.float32)
        layer.set_weights(ws)
    # Batch-norm statistics of one batch (momentum 0: the moving statistics become that batch's).
    bns = [layer for layer in model.layers if type(layer).__name__ == "BatchNormalization"]
    for layer in bns:
        layer.momentum = 0.0
    model(rng.standard_normal((16, SIZE, SIZE, 3)).astype(np.float32), training=True)
    for layer in bns:
        layer.momentum = 0.99
    return model


def _key(family: str) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([family, FAMILIES[family], SIZE, SEED]).encode())
    h.update(inspect.getsource(_build).encode())
    for dist in ("tensorflow", "keras", "tflite-micro"):
        h.update(f"\0{dist}={metadata.version(dist)}".encode())
    for name in _CONVERSION_CODE:
        h.update((REPO / "tinyedge" / name).read_bytes())
    return h.hexdigest()[:24]


class _Converted:
    """family -> (its int8 .tflite, convert's report), each converted on first use (so one test's
    setup holds one conversion) and then from the content-keyed cache."""

    def __init__(self, scratch):
        self.scratch = scratch
        self.done: dict[str, tuple[Path, dict]] = {}

    def __getitem__(self, family: str) -> tuple[Path, dict]:
        if family not in self.done:
            self.done[family] = self._convert(family)
        return self.done[family]

    def _convert(self, family: str) -> tuple[Path, dict]:
        from tinyedge.conversion import convert

        root = cache_root().parent / "keras-apps"
        root.mkdir(parents=True, exist_ok=True)
        tflite = root / f"{family}-{_key(family)}.tflite"
        meta = tflite.with_suffix(".json")
        if not (tflite.is_file() and meta.is_file()):
            for stale in root.glob(f"{family}-*"):   # conversions of this family by older code
                stale.unlink(missing_ok=True)
            src = self.scratch.mktemp(family) / f"{family}.keras"
            _build(family).save(src)
            res = convert(src, out=tflite, samples=16)   # written atomically by convert
            tmp = meta.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(res.report))
            os.replace(tmp, meta)
        return tflite, json.loads(meta.read_text())


@pytest.fixture(scope="session")
def keras_apps(tmp_path_factory) -> _Converted:
    return _Converted(tmp_path_factory)


@pytest.mark.parametrize("family", FAMILIES)
def test_converts_to_full_int8_that_tflm_runs(keras_apps, family):
    from tinyedge import isolate
    from tinyedge.conversion import check_full_int8
    from tinyedge.graph import load_tflite
    from tinyedge.tflm_support import check_op

    tflite, report = keras_apps[family]
    assert report["full_int8"] is True and report["source"]["kind"] == "keras3"
    graph = load_tflite(tflite)
    check_full_int8(graph)
    assert [t.dtype for t in graph.input_tensors + graph.output_tensors] == ["int8", "int8"]
    assert tuple(graph.input_tensors[0].shape) == (1, SIZE, SIZE, 3)
    assert [(op.index, check_op(graph, op)) for op in graph.ops if check_op(graph, op)] == []
    # The tflite-micro interpreter (in a worker: it aborted on these before) gives 10 class scores.
    x = np.random.default_rng(1).integers(-128, 128, (2, 1, SIZE, SIZE, 3), dtype=np.int8)
    out = isolate.call("evaluate", "tinyedge.conversion:tflm_run", tflite.read_bytes(), x)
    assert out.shape == (2, 10) and out.dtype == np.int8
    assert len(set(out.reshape(-1).tolist())) > 1, "the int8 scores are all one value"


def _validate(folder: Path, board: str, tflite: Path, samples: int) -> dict:
    from tinyedge.boards import get_board
    from tinyedge.flashers import get_flasher
    from tinyedge.link import Device
    from tinyedge.validation import validate_device

    res = get_flasher("host" if board == "host" else "qemu").flash(folder, get_board(board))
    with Device.from_flash(res, timeout=60) as dev:
        return validate_device(dev, tflite, samples=samples)


@pytest.mark.parametrize("family", FAMILIES)
def test_bit_exact_on_host_aot(keras_apps, family):
    require_tool("cc")
    tflite, _ = keras_apps[family]
    folder, _ = cached_build(tflite, "host", "aot")
    rep = _validate(folder, "host", tflite, samples=4)
    agree = rep["agreement"]
    assert rep["samples"] == 4
    assert agree["bit_exact_rate"] == 1.0 and agree["max_abs_diff"] == 0, f"{family}: {agree}"


@pytest.mark.qemu
@pytest.mark.parametrize("runtime", ["aot", "tflm"])
def test_mobilenet_v3_small_bit_exact_on_qemu_m4(keras_apps, runtime, request):
    """HARD_SWISH, squeeze-excite (MEAN, MUL) and residual ADDs on the emulated Cortex-M4, with
    tinyedge's aot engine and with TFLite Micro + CMSIS-NN."""
    require_tool("qemu-system-arm")
    require_tool("arm-none-eabi-gcc")
    if runtime == "tflm":
        request.getfixturevalue("shared_sources")
        require_tool("cmake")
    tflite, _ = keras_apps["mobilenet_v3_small"]
    folder, _ = cached_build(tflite, "qemu-cortex-m4", runtime)
    rep = _validate(folder, "qemu-cortex-m4", tflite, samples=3)
    agree = rep["agreement"]
    assert agree["bit_exact_rate"] == 1.0 and agree["max_abs_diff"] == 0, f"{runtime}: {agree}"
    assert rep["latency"]["unit"] == "instructions" and rep["latency"]["min"] > 0


def test_softmax_of_vanished_logits_is_one_error_line(run_cli, tmp_path):
    """A Keras 3 model whose logits are constant (as a weights=None MobileNet's nearly are): TFLite
    Micro's int8 softmax would abort its interpreter (its input scale is below 2^-26), so convert
    says which op and why, exit 2, and writes nothing."""
    import keras

    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, kernel_initializer="zeros"),
                              keras.layers.Softmax(name="probs")])
    src = tmp_path / "flat.keras"
    model.save(src)
    out = tmp_path / "flat.tflite"
    r = run_cli("convert", src, "-o", out, "--calib-samples", "8")
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith("warning")]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1, r.stderr
    assert "SOFTMAX does not run in TensorFlow Lite Micro" in errors[0] and "calibrated range" in errors[0]
    assert "Traceback" not in r.stderr and "crashed" not in r.stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flat.keras"]
