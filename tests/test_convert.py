"""tinyedge.conversion and `tinyedge convert`: Keras / SavedModel -> full-int8 TFLite, and the bad inputs.

Models that need TensorFlow are built once per module (tf_keras and Keras 3),
and each MLPerf Tiny model is converted once per session with a few random
calibration samples: enough to check structure, int8 I/O and that the result
runs in the tflite-micro interpreter.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tinyedge.cli import main
from tinyedge.conversion import dequantize_output, quantize_input

tf = None  # TensorFlow, imported by the `made` fixture (a global, so saved lambdas hold no module)
REPO = Path(__file__).resolve().parent.parent
DIGITS = REPO / "examples" / "digits"


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def cli_error(capsys, *args) -> str:
    """Run the CLI in-process; it must exit 2 with exactly one `error:` line and no traceback."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    _, err = capsys.readouterr()
    assert e.value.code == 2, err
    assert "Traceback" not in err
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, err
    return errors[0]


def assert_empty(folder: Path):
    assert sorted(p.name for p in folder.iterdir()) == [], "a failed conversion left files behind"


# ---------------------------------------------------------------------------
# int8 edge helpers (hand-worked values)
# ---------------------------------------------------------------------------

def test_quantize_rounds_half_away_from_zero_and_clamps():
    x = np.array([0.25, -0.25, 0.75, -0.75, 0.2, -0.2, 100.0, -100.0], dtype=np.float32)
    q = quantize_input(x, (0.5, 0))
    # x / 0.5 = 0.5, -0.5, 1.5, -1.5, 0.4, -0.4, 200, -200
    assert q.dtype == np.int8
    assert q.tolist() == [1, -1, 2, -2, 0, 0, 127, -128]


def test_quantize_with_zero_point_and_dequantize():
    # scale 0.25 is exact in float32, so the ties below are real ties
    t = {"scale": np.array([0.25], np.float32), "zero_point": np.array([-128])}
    q = quantize_input(np.array([0.0, 0.125, 0.375, -0.125, 63.75, 64.0]), t)
    # x / 0.25 = 0, 0.5, 1.5, -0.5, 255, 256 -> 0, 1, 2, -1, 255, 256 -> + zp -> clamp
    assert q.tolist() == [-128, -127, -126, -128, 127, 127]
    f = dequantize_output(np.array([-128, -127, 127], np.int8), t)
    np.testing.assert_array_equal(f, np.array([0.0, 0.25, 63.75], np.float32))


# ---------------------------------------------------------------------------
# bad inputs that need no TensorFlow: the real CLI as a subprocess, one line, exit 2
# ---------------------------------------------------------------------------

def test_missing_model_file(run_cli, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    r = run_cli("convert", tmp_path / "nope.h5", "-o", out / "m.tflite")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"error: {tmp_path / 'nope.h5'} does not exist; check the path of "
                                             "the model"]
    assert_empty(out)


def test_file_that_is_not_a_model(run_cli, tmp_path):
    junk = tmp_path / "model.h5"
    junk.write_text("hello, this is not a model\n")
    out = tmp_path / "out"
    out.mkdir()
    r = run_cli("convert", junk, "-o", out / "m.tflite")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "is not a model tinyedge can read" in lines[0]
    assert_empty(out)


# ---------------------------------------------------------------------------
# models built here with tf_keras / Keras 3
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def made(tmp_path_factory):
    global tf
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras as k3
    import tensorflow
    import tf_keras as k2

    tf = tensorflow

    d = tmp_path_factory.mktemp("models")
    L = k2.layers
    k2.utils.set_random_seed(0)
    k2.Sequential([L.Input((8,)), L.Dense(4, name="d1"), L.Lambda(lambda x: tf.math.sin(x), name="my_sin"),
                   L.Dense(2, name="d2")]).save(d / "lambda.h5")

    class Weird(L.Layer):
        def call(self, x):
            return tf.math.sin(x)

    k2.Sequential([L.Input((8,)), L.Dense(4, name="d1"), Weird(name="weird_layer"), L.Dense(2)]).save(
        d / "custom.h5")
    k2.Sequential([L.Input((8,)), L.Dense(4, name="d1"), L.Activation("exponential", name="expo"),
                   L.Dense(2, name="d2")]).save(d / "expo.h5")
    a, b = L.Input((4,), name="a"), L.Input((4,), name="b")
    k2.Model([a, b], L.Dense(2)(L.Concatenate()([a, b]))).save(d / "two_inputs.h5")
    whole = (d / "lambda.h5").read_bytes()
    (d / "truncated.h5").write_bytes(whole[: len(whole) // 2])

    k3.utils.set_random_seed(0)
    m3 = k3.Sequential([k3.Input((8, 8, 1)), k3.layers.Conv2D(4, 3, activation="relu", name="c"),
                        k3.layers.DepthwiseConv2D(3, name="dw"), k3.layers.Flatten(name="flat"),
                        k3.layers.Dense(3, name="d")])
    m3.save(d / "k3.keras")
    m3.save(d / "k3.h5")  # a Keras 3 .h5 (keras_version 3.x): loaded with Keras 3, not tf_keras
    fm = k2.Sequential([L.Input((4,)), L.Dense(3, name="fc")])
    fn = tf.function(lambda x: fm(x), input_signature=[tf.TensorSpec([1, 4], tf.float32)]).get_concrete_function()
    (d / "float.tflite").write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([fn], fm).convert())
    rng = np.random.default_rng(1)
    np.savez(d / "k3_calib.npz", x=rng.uniform(0, 1, (32, 8, 8, 1)).astype(np.float32))
    K = k3.layers
    i = k3.Input((8,), batch_size=1)
    k3.Model(i, K.Dense(3)(K.Flatten()(K.Embedding(50, 4, name="tokens")(i)))).save(d / "embedding.keras")
    i = k3.Input((4, 4, 2), batch_size=1)
    k3.Model(i, K.Conv2D(2, 1)(K.UpSampling2D(name="up")(K.Conv2D(4, 3, padding="same")(i)))).save(d / "up.keras")
    np.savez(d / "tokens.npz", x=rng.integers(0, 50, (8, 8)).astype(np.float32))
    return d


@pytest.mark.slow
def test_truncated_h5(made, capsys, tmp_path):
    line = cli_error(capsys, "convert", made / "truncated.h5", "-o", tmp_path / "m.tflite")
    assert "truncated" in line and "truncated.h5" in line
    assert_empty(tmp_path)


@pytest.mark.slow
def test_model_with_two_inputs(made, capsys, tmp_path):
    line = cli_error(capsys, "convert", made / "two_inputs.h5", "-o", tmp_path / "m.tflite")
    assert "has 2 inputs" in line
    assert_empty(tmp_path)


@pytest.mark.slow
def test_custom_layer_is_named(made, capsys, tmp_path):
    line = cli_error(capsys, "convert", made / "custom.h5", "-o", tmp_path / "m.tflite")
    assert "layer 'weird_layer'" in line and "'Weird'" in line
    assert_empty(tmp_path)


@pytest.mark.slow
def test_lambda_bytecode_is_refused_by_default(made, capsys, tmp_path):
    line = cli_error(capsys, "convert", made / "lambda.h5", "-o", tmp_path / "m.tflite")
    assert "layer 'my_sin' is a Lambda layer" in line and "--trust-code" in line
    assert_empty(tmp_path)


@pytest.mark.slow
def test_lambda_float_math_is_named_when_trusted(made, capsys, tmp_path):
    line = cli_error(capsys, "convert", made / "lambda.h5", "--trust-code", "--calib-samples", "4",
                     "-o", tmp_path / "m.tflite")
    assert "layer 'my_sin'" in line and "SIN" in line and "integer-only" in line
    assert_empty(tmp_path)


@pytest.mark.slow
def test_errors_name_the_keras_layer_the_cause_and_what_to_use(made, capsys, tmp_path):
    # An Embedding: the converter's CAST of the float input (tensor 'functional/tokens_1/Cast') is
    # told as the Embedding layer, with the cause and the int8 way to do the same.
    line = cli_error(capsys, "convert", made / "embedding.keras", "--calib", made / "tokens.npz",
                     "-o", tmp_path / "m.tflite")
    assert line.startswith("error: layer 'tokens' (Embedding) did not become integer-only: op #1 CAST")
    assert "casts the model's float input to int32" in line and "one-hot vectors to a Dense layer" in line
    line = cli_error(capsys, "convert", made / "up.keras", "--calib-samples", "4", "-o", tmp_path / "m.tflite")
    assert line.startswith("error: layer 'up' (UpSampling2D): op #2 TILE does not run in TensorFlow Lite Micro")
    assert "Resizing(height, width, interpolation='nearest')" in line
    assert_empty(tmp_path)


@pytest.mark.slow
def test_every_verb_takes_the_keras_loading_options(made, capsys, tmp_path):
    # --trust-code on inspect (it said "No such option" before): the Lambda is loaded, and its float
    # math is then named as the layer that does not become integer-only.
    line = cli_error(capsys, "inspect", made / "lambda.h5", "--trust-code", "--calib-samples", "4")
    assert "layer 'my_sin'" in line and "integer-only" in line and "--trust-code" not in line
    line = cli_error(capsys, "generate", made / "lambda.h5", "-o", tmp_path / "g")
    assert "Lambda layer" in line and "--trust-code" in line
    assert not (tmp_path / "g").exists()


@pytest.mark.slow
def test_layer_without_tflm_int8_kernel_is_named(made, capsys, tmp_path):
    line = cli_error(capsys, "convert", made / "expo.h5", "--calib-samples", "4", "-o", tmp_path / "m.tflite")
    assert "layer 'expo'" in line and "EXP" in line and "TensorFlow Lite Micro" in line
    assert_empty(tmp_path)


@pytest.mark.slow
def test_calibration_shape_mismatch(capsys, tmp_path):
    bad = tmp_path / "calib.npz"
    np.savez(bad, x=np.zeros((5, 10, 10, 1), np.float32))
    out = tmp_path / "out"
    out.mkdir()
    line = cli_error(capsys, "convert", DIGITS / "model.h5", "--calib", bad, "-o", out / "m.tflite")
    assert "x has shape 5x10x10x1" in line and "8x8x1" in line
    assert_empty(out)


@pytest.mark.slow
def test_keras3_keras_file_converts_and_tracks_float(made, tmp_path):
    from tinyedge.conversion import convert, float_predict, tflm_run

    res = convert(made / "k3.keras", out=tmp_path / "k3.tflite", calib=made / "k3_calib.npz")
    assert res.report["source"]["kind"] == "keras3"
    g = res.graph
    assert [t.dtype for t in g.input_tensors + g.output_tensors] == ["int8", "int8"]
    assert g.input_tensors[0].shape == (1, 8, 8, 1)
    assert "READ_VARIABLE" not in res.report["ops"] and "SHAPE" not in res.report["ops"]
    assert (tmp_path / "k3.tflite").read_bytes() == res.tflite_bytes
    # the int8 model follows the float model on the calibration inputs
    x = np.load(made / "k3_calib.npz")["x"]
    fy = float_predict(made / "k3.keras", x)
    qy = dequantize_output(tflm_run(res.tflite_bytes, quantize_input(x, g.input_tensors[0])),
                           g.output_tensors[0])
    span = float(fy.max() - fy.min())
    assert np.max(np.abs(qy - fy)) < 0.05 * span
    # samples that carry the batch-1 dimension (as validate passes them) give the same outputs
    np.testing.assert_array_equal(float_predict(made / "k3.keras", x[:, None]), fy)


@pytest.mark.slow
def test_keras3_h5_converts(made, tmp_path):
    from tinyedge.conversion import convert

    res = convert(made / "k3.h5", out=tmp_path / "k3h5.tflite", calib=made / "k3_calib.npz", samples=8)
    assert res.report["source"]["kind"] == "keras3"
    assert res.report["ops"] == {"CONV_2D": 1, "DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 1, "RESHAPE": 1}


@pytest.mark.slow
def test_float_tflite_is_refused(made, capsys, tmp_path):
    line = cli_error(capsys, "convert", made / "float.tflite", "-o", tmp_path / "m.tflite")
    assert "not full-int8" in line and "FULLY_CONNECTED" in line and "float op" in line
    assert_empty(tmp_path)


@pytest.mark.slow
def test_no_calib_warns_and_report_says_so(tmp_path):
    from tinyedge.conversion import convert

    res = convert(DIGITS / "model.h5", out=tmp_path / "d.tflite", samples=8)
    assert any("random" in w for w in res.warnings)
    assert res.report["calibration"]["random"] is True and res.report["accuracy"] is None


@pytest.mark.slow
def test_digits_example_accuracy_survives_int8(tmp_path, capsys):
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["convert", str(DIGITS / "model.h5"), "--calib", str(DIGITS / "test.npz"), "--calib-samples", "300",
              "-o", str(tmp_path / "digits.tflite"), "--json"])
    out, _ = capsys.readouterr()
    assert e.value.code == 0
    import json

    r = json.loads(out)
    acc = r["accuracy"]
    assert acc["samples"] == 300
    assert acc["float"] >= 0.9
    assert acc["int8"] >= acc["float"] - 0.02
    assert acc["top1_agreement"] >= 0.95
    assert r["inputs"][0]["dtype"] == "int8" and r["outputs"][0]["dtype"] == "int8"
    assert r["size"]["after"] < r["size"]["before"]
    assert set(r["steps"]) >= {"load", "convert", "check", "tflm_check", "evaluate", "write"}


def test_existing_tflite_is_checked_not_converted(mlperf_tflite, tmp_path):
    from tinyedge.conversion import convert

    res = convert(mlperf_tflite["kws"])
    assert res.tflite_path is None and res.report["full_int8"] is True
    assert res.report["source"]["kind"] == "tflite"
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------------------
# the four MLPerf Tiny models from their Keras forms
# ---------------------------------------------------------------------------

KERAS_FORMS = {"ad01": "ad01.h5", "kws": "kws_ref_model", "resnet": "pretrainedResnet.h5", "vww": "vww_96.h5"}


@pytest.fixture(scope="session")
def mlperf_converted(shared_models, tmp_path_factory):
    from tinyedge.conversion import convert

    d = tmp_path_factory.mktemp("mlperf")
    return {k: convert(shared_models / v, out=d / f"{k}.tflite", samples=4) for k, v in KERAS_FORMS.items()}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(KERAS_FORMS))
def test_mlperf_keras_forms_convert_and_run_in_tflm(name, mlperf_converted, mlperf_tflite):
    from tinyedge.analyze import macs
    from tinyedge.conversion import tflm_run
    from tinyedge.graph import load_tflite

    res = mlperf_converted[name]
    g = res.graph
    ref = load_tflite(mlperf_tflite[name])
    assert [t.dtype for t in g.input_tensors + g.output_tensors] == ["int8", "int8"]
    assert g.input_tensors[0].shape == ref.input_tensors[0].shape
    assert g.output_tensors[0].shape == ref.output_tensors[0].shape
    # same architecture as MLCommons' own int8 file: the same compute ops and the same MACs
    compute = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD")
    assert {k: v for k, v in res.report["ops"].items() if k in compute} == \
        {k: v for k, v in ref.op_counts().items() if k in compute}
    assert sum(macs(g, op) for op in g.ops) == sum(macs(ref, op) for op in ref.ops)
    # weights are per-channel int8
    for op in g.ops:
        if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            w = g.tensors[op.inputs[1]]
            assert w.dtype == "int8" and w.per_channel
    # it runs in TFLite Micro's interpreter and gives int8 outputs that depend on the input
    rng = np.random.default_rng(0)
    xq = rng.integers(-128, 128, size=(2, *g.input_tensors[0].shape), dtype=np.int8)
    y = tflm_run(res.tflite_bytes, xq)
    assert y.dtype == np.int8 and y.shape == (2, int(np.prod(g.output_tensors[0].shape)))
