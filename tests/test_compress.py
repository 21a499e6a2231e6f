"""`tinyedge compress`: every method on real models, checked on the int8 flatbuffer and on the board.

Data: scikit-learn's digits (the split examples/digits/train.py trained on) and inputs made here.
Models are compressed once per session and shared; every compressed int8 model is deployed to the
emulated Cortex-M4 (real firmware under qemu-system-arm) and must match tflite-micro bit for bit.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinyedge.errors import InputFileError, ModelError, UsageError

REPO = Path(__file__).resolve().parent.parent
DIGITS = REPO / "examples" / "digits"

pytestmark = pytest.mark.slow


def _digits_split():
    spec = importlib.util.spec_from_file_location("digits_train", DIGITS / "train.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.data()


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("compress-data")
    xtr, ytr, xte, yte = _digits_split()
    np.savez(d / "train.npz", x=xtr, y=ytr)
    np.savez(d / "val.npz", x=xte, y=yte)
    np.savez(d / "unlabelled.npz", x=xtr)
    np.savez(d / "wrong_shape.npz", x=xtr[:, :7, :7, :], y=ytr)
    return d


def _compress(tmp_path_factory, name, model=DIGITS / "model.h5", train="train.npz", val="val.npz", data=None,
              **kw):
    from tinyedge.compress import compress

    out = tmp_path_factory.mktemp(name) / f"{name}.h5"
    rep = compress(model, data / train, val=data / val if val else None, out=out, **kw)
    return out, rep


@pytest.fixture(scope="session")
def pruned_digits(tmp_path_factory, data):
    return _compress(tmp_path_factory, "pruned", data=data, prune_channels=0.5, distill=True, epochs=30)


@pytest.fixture(scope="session")
def lowrank_digits(tmp_path_factory, data):
    return _compress(tmp_path_factory, "lowrank", data=data, rank=0.7, layers=["conv3", "logits"], distill=True,
                     epochs=12)


@pytest.fixture(scope="session")
def sparse_clustered_digits(tmp_path_factory, data):
    return _compress(tmp_path_factory, "sparse", data=data, cluster=16, prune=0.8, distill=True, epochs=5)


@pytest.fixture(scope="session")
def qat_digits(tmp_path_factory, data):
    return _compress(tmp_path_factory, "qat", data=data, qat=True, epochs=5)


def _residual_model(path: Path) -> Path:
    """Residual Adds, a SeparableConv2D, a depthwise conv, a Concatenate and BatchNorms; random weights."""
    import tf_keras

    tf_keras.utils.set_random_seed(7)
    L = tf_keras.layers
    x = L.Input((12, 12, 3), name="img")
    a = L.Conv2D(16, 3, padding="same", name="stem")(x)
    a = L.BatchNormalization(name="bn0")(a)
    a = L.ReLU(name="r0")(a)
    b = L.Conv2D(16, 3, padding="same", name="c1")(a)
    b = L.BatchNormalization(name="bn1")(b)
    a = L.Add(name="add1")([a, b])
    s = L.SeparableConv2D(24, 3, padding="same", activation="relu", name="sep")(a)
    d = L.DepthwiseConv2D(3, padding="same", name="dw")(a)
    c = L.Concatenate(name="cat")([s, d])
    e = L.Conv2D(24, 1, activation="relu", name="pw")(c)
    f = L.Conv2D(24, 3, padding="same", name="pw2")(e)
    e = L.Add(name="add2")([e, f])
    p = L.MaxPooling2D(2, name="pool")(e)
    p = L.GlobalAveragePooling2D(name="gap")(p)
    o = L.Dense(6, activation="softmax", name="out")(p)
    model = tf_keras.Model(x, o, name="residual")
    rng = np.random.default_rng(3)
    for layer in model.layers:  # BatchNorm statistics that are not the identity, so folding matters
        if isinstance(layer, L.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 2, gamma.shape), rng.normal(0, 0.1, beta.shape),
                               rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 2, var.shape)])
    model.save(path)
    return path


@pytest.fixture(scope="session")
def residual(tmp_path_factory):
    d = tmp_path_factory.mktemp("residual")
    x = np.random.default_rng(5).uniform(0, 1, (256, 12, 12, 3)).astype(np.float32)
    np.savez(d / "x.npz", x=x)  # no labels: label-free distillation
    return _residual_model(d / "residual.h5"), d / "x.npz"


@pytest.fixture(scope="session")
def pruned_residual(tmp_path_factory, residual):
    from tinyedge.compress import compress

    model, x = residual
    out = tmp_path_factory.mktemp("pruned-residual") / "small.h5"
    return out, compress(model, x, out=out, prune_channels=0.5, distill=True, epochs=3)


def _bn_model(path: Path) -> Path:
    """Conv -> BatchNorm -> ReLU blocks on the digits' 8x8 input, random weights and BN statistics far from
    the identity: the int8 conversion folds each BatchNorm into its conv's kernel."""
    import tf_keras

    tf_keras.utils.set_random_seed(11)
    L = tf_keras.layers
    x = L.Input((8, 8, 1), name="image")
    h = x
    for i, f in enumerate((16, 16, 32)):
        h = L.Conv2D(f, 3, padding="same", use_bias=False, name=f"conv{i}")(h)
        h = L.BatchNormalization(name=f"bn{i}")(h)
        h = L.ReLU(name=f"relu{i}")(h)
    h = L.GlobalAveragePooling2D(name="gap")(h)
    o = L.Dense(10, activation="softmax", name="out")(h)
    model = tf_keras.Model(x, o, name="bn_cnn")
    rng = np.random.default_rng(4)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            g, b, m, v = layer.get_weights()
            layer.set_weights([rng.uniform(0.3, 3, g.shape), rng.normal(0, 0.2, b.shape),
                               rng.normal(0, 0.2, m.shape), rng.uniform(0.3, 3, v.shape)])
    model.save(path)
    return path


@pytest.fixture(scope="session")
def clustered_bn(tmp_path_factory, data):
    from tinyedge.compress import compress

    d = tmp_path_factory.mktemp("clustered-bn")
    out = d / "clustered.h5"
    return out, compress(_bn_model(d / "bn.h5"), data / "unlabelled.npz", out=out, cluster=16, prune=0.8,
                         distill=True, epochs=3)


@pytest.fixture(scope="session")
def nm_qat_digits(tmp_path_factory, data):
    return _compress(tmp_path_factory, "nm-qat", data=data, sparsity_pattern="2:4", qat=True, distill=True,
                     epochs=4)


# ---------------------------------------------------------------------------
# the flatbuffer checks
# ---------------------------------------------------------------------------

def _weights(tflite: Path):
    """(layer output name, op, int8 weights with the output channel first) of every conv / dense op."""
    from tinyedge.graph import load_tflite

    g = load_tflite(tflite)
    out = []
    for op in g.ops:
        if op.opcode in ("CONV_2D", "FULLY_CONNECTED", "DEPTHWISE_CONV_2D"):
            w = g.tensors[op.inputs[1]]
            assert w.dtype == "int8"
            axis = 3 if op.opcode == "DEPTHWISE_CONV_2D" else 0
            out.append((g.tensors[op.outputs[0]].name, op.opcode, np.moveaxis(w.data, axis, 0)))
    return out


def _check_sparse_clustered(tflite: Path, k: int = 16, sparsity: float = 0.75):
    ws = _weights(tflite)
    zeros = sum(int(np.sum(w == 0)) for _, op, w in ws if op != "DEPTHWISE_CONV_2D")
    total = sum(w.size for _, op, w in ws if op != "DEPTHWISE_CONV_2D")
    assert zeros / total >= sparsity, f"only {zeros / total:.1%} zeros in the conv and dense weights"
    for name, op, w in ws:
        if op == "DEPTHWISE_CONV_2D":
            continue
        distinct = max(len(np.unique(row[row != 0])) for row in w.reshape(len(w), -1))
        assert distinct <= k, f"{name} ({op}): {distinct} distinct non-zero int8 values in one output channel"


def test_prune_channels_digits_cuts_macs(pruned_digits):
    out, rep = pruned_digits
    b, a = rep["totals"]["before"], rep["totals"]["after"]
    assert a["macs"] <= 0.6 * b["macs"], (b["macs"], a["macs"])
    assert a["params"] < b["params"] and a["aot"]["flash_bytes"] < b["aot"]["flash_bytes"]
    assert a["aot"]["arena_bytes"] <= b["aot"]["arena_bytes"]
    layers = rep["methods"]["prune_channels"]["layers"]
    assert layers["conv2"] == {"channels_before": 16, "channels_after": 8}
    assert layers["logits"]["channels_after"] == 10  # the output is never pruned
    assert rep["methods"]["order"] == ["prune_channels", "finetune", "int8"]
    assert rep["methods"]["distill"]["labels"] is True
    # an ordinary, smaller Keras model: tf_keras loads it without any custom objects
    import tf_keras

    m = tf_keras.models.load_model(out, compile=False)
    assert m.get_layer("conv2").filters == 8 and m.count_params() == a["params"]


def test_lowrank_digits_conv_and_dense(lowrank_digits):
    out, rep = lowrank_digits
    conv, dense = rep["methods"]["low_rank"]["layers"]
    assert (conv["layer"], conv["rank"], conv["params_before"], conv["params_after"]) == ("conv3", 23, 4608, 4048)
    assert (dense["layer"], dense["rank"], dense["params_before"], dense["params_after"]) == ("logits", 7, 320, 294)
    import tf_keras

    m = tf_keras.models.load_model(out, compile=False)
    assert m.get_layer("conv3_lowrank").filters == 23 and m.get_layer("conv3_lowrank").kernel_size == (3, 3)
    assert m.get_layer("conv3").kernel_size == (1, 1) and m.get_layer("conv3").filters == 32
    assert m.get_layer("logits_lowrank").units == 7 and m.get_layer("logits").units == 10
    assert rep["totals"]["after"]["macs"] < rep["totals"]["before"]["macs"]
    assert rep["quality"]["int8_after"]["accuracy"] >= rep["quality"]["int8_before"]["accuracy"] - 0.02


def test_lowrank_refuses_past_break_even(data):
    import tf_keras

    from tinyedge.compress.ir import from_keras
    from tinyedge.compress.lowrank import factorize

    g = from_keras(tf_keras.models.load_model(DIGITS / "model.h5", compile=False))
    with pytest.raises(ModelError, match=r"layer 'logits': rank 10 is past the break-even point \(420 weights"):
        factorize(g, rank=1.0, layers=["logits"])
    # without --layers, a layer past break-even is left as it is and reported; others are factorised
    g2, summary = factorize(g, rank=0.7)
    (refused,) = summary["refused"]  # conv1: 9x16 at rank 7 is 7*(9+16) = 175 >= 144 weights
    assert refused == {"layer": "conv1", "class": "Conv2D", "rank": 7, "full_rank": 9, "params_before": 144,
                       "params_after": 175, "break_even_rank": 5, "energy_kept": refused["energy_kept"]}
    assert [r["layer"] for r in summary["layers"]] == ["conv2", "conv3", "logits"]
    assert [n.name for n in g2.nodes if n.name.endswith("_lowrank")] == ["conv2_lowrank", "conv3_lowrank",
                                                                         "logits_lowrank"]


def test_cluster_and_prune_survive_int8(sparse_clustered_digits):
    from tinyedge.compress import int8_path

    out, rep = sparse_clustered_digits
    _check_sparse_clustered(int8_path(out))
    assert rep["totals"]["after"]["kernel_sparsity"] >= 0.75
    assert rep["totals"]["after"]["distinct_per_channel_max"] <= 16
    assert any("compact weight storage" in n for n in rep["notes"])  # the flash gain needs issue 15


def test_cluster_and_prune_survive_batchnorm_folding(clustered_bn):
    from tinyedge.compress import int8_path
    from tinyedge.graph import load_tflite

    out, rep = clustered_bn
    ops = load_tflite(int8_path(out)).op_counts()
    assert "MUL" not in ops and "ADD" not in ops, ops  # every BatchNorm was folded into its conv
    _check_sparse_clustered(int8_path(out))
    assert rep["methods"]["distill"]["labels"] is False


def test_2_4_sparsity_survives_pqat_and_int8(nm_qat_digits):
    from tinyedge.compress import int8_path

    out, rep = nm_qat_digits
    assert rep["methods"]["qat"]["scheme"] == "PQAT"
    checked = 0
    for name, _op, w in _weights(int8_path(out)):
        if w.shape[-1] % 4:  # conv1 has one input channel: no groups of 4 to prune
            continue
        groups = (w.reshape(-1, 4) == 0).sum(axis=1)
        assert groups.min() >= 2, f"{name}: a group of 4 input weights with fewer than 2 zeros"
        checked += 1
    assert checked == 3


def test_qat_not_worse_than_ptq(qat_digits):
    out, rep = qat_digits
    q = rep["quality"]
    assert rep["methods"]["qat"]["scheme"] == "QAT"
    assert q["int8_after"]["accuracy"] >= q["int8_before"]["accuracy"]


def test_label_free_pruning_of_residual_model(pruned_residual):
    out, rep = pruned_residual
    b, a = rep["totals"]["before"], rep["totals"]["after"]
    assert a["macs"] < 0.5 * b["macs"]
    layers = rep["methods"]["prune_channels"]["layers"]
    # tied by the residual Add: the stem and c1 keep the same number of channels
    assert layers["stem"]["channels_after"] == layers["c1"]["channels_after"] == 8
    assert layers["pw"]["channels_after"] == layers["pw2"]["channels_after"] == 12
    assert layers["sep"]["channels_after"] == 12
    assert rep["quality"]["labelled"] is False and rep["methods"]["distill"]["labels"] is False


def test_keras3_model_is_rebuilt_and_pruned(tmp_path, data):
    import keras

    from tinyedge.compress import compress

    keras.utils.set_random_seed(1)
    m = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(8, 3, activation="relu", name="c"),
                          keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax", name="d")])
    m.save(tmp_path / "k3.keras")
    rep = compress(tmp_path / "k3.keras", data / "train.npz", out=tmp_path / "small.h5", prune_channels=0.5,
                   distill=True, epochs=1)
    assert rep["source_keras"] == "keras3"
    assert rep["methods"]["prune_channels"]["layers"]["c"]["channels_after"] == 4
    assert rep["totals"]["after"]["macs"] < rep["totals"]["before"]["macs"]


# ---------------------------------------------------------------------------
# on the board: every compressed model, bit-exact on qemu-cortex-m4
# ---------------------------------------------------------------------------

@pytest.mark.qemu
@pytest.mark.parametrize("which", ["pruned_digits", "lowrank_digits", "sparse_clustered_digits", "qat_digits",
                                   "pruned_residual", "clustered_bn", "nm_qat_digits"])
def test_compressed_models_deploy_bit_exact(which, request, tmp_path, data, residual):
    from tinyedge.compress import int8_path
    from tinyedge.pipeline import deploy

    out, rep = request.getfixturevalue(which)
    test_data = residual[1] if "residual" in which else data / "val.npz"
    full = which == "pruned_digits"  # the accuracy check: all 300 held-out samples
    r = deploy(int8_path(out), board="qemu-cortex-m4", data=test_data, out=tmp_path / "dep",
               samples=None if full else 100)
    assert r["agreement"]["bit_exact_rate"] == 1.0
    assert r["latency"]["unit"] == "instructions" and r["latency"]["min"] > 0
    if full:
        # int8 accuracy on the board within 2 points of the uncompressed int8 model's (in tflite-micro, which
        # the board matches bit for bit: test_deploy), on the same 300 held-out samples
        before = rep["quality"]["int8_before"]["accuracy"]
        assert r["samples"] == rep["quality"]["samples"] == 300
        assert r["accuracy"]["device"] >= before - 0.02, (r["accuracy"]["device"], before)


def test_deploy_with_compression_options(tmp_path, residual):
    from tinyedge.compress import Options
    from tinyedge.pipeline import deploy

    model, x = residual
    r = deploy(model, board="qemu-cortex-m4", data=x, calib=x, train=x, out=tmp_path / "dep", samples=40,
               compress=Options(prune_channels=0.5, distill=True, epochs=1))
    assert [s["name"] for s in r["steps"]][:2] == ["compress", "convert"]
    c = r["compression"]
    assert c["totals"]["after"]["macs"] < c["totals"]["before"]["macs"]
    assert c["on_device"]["bit_exact_rate"] == 1.0 and c["on_device"]["latency"]["unit"] == "instructions"
    assert r["agreement"]["bit_exact_rate"] == 1.0
    assert r["model"]["tflite_bytes"] < (tmp_path / "dep" / "compressed.h5").stat().st_size * 10


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------

def test_wrong_train_shape(tmp_path, data):
    from tinyedge.compress import compress

    with pytest.raises(InputFileError, match=r"x has shape 1497x7x7x1 but the model takes samples of shape 8x8x1"):
        compress(DIGITS / "model.h5", data / "wrong_shape.npz", out=tmp_path / "o.h5", prune_channels=0.5)
    assert list(tmp_path.iterdir()) == []


def test_labelled_method_without_labels(tmp_path, data):
    from tinyedge.compress import compress

    with pytest.raises(UsageError, match=r"trains on labels, and unlabelled.npz has no labels.*--distill"):
        compress(DIGITS / "model.h5", data / "unlabelled.npz", out=tmp_path / "o.h5", prune=0.5)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kw, msg", [
    ({"prune_channels": 1.0}, "--prune-channels must be between 0 and 1"),
    ({"prune": -0.1}, "--prune must be between 0 and 1"),
    ({"rank": 1.5}, r"--rank must be in \(0, 1\]"),
    ({"cluster": 1}, "--cluster must be between 2 and 256"),
    ({"sparsity_pattern": "4:2"}, "--sparsity-pattern must be N:M with 0 < N < M"),
])
def test_ratio_out_of_range(tmp_path, data, kw, msg):
    from tinyedge.compress import compress

    with pytest.raises(UsageError, match=msg):
        compress(DIGITS / "model.h5", data / "train.npz", out=tmp_path / "o.h5", **kw)


def test_layer_a_method_cannot_handle_is_named(tmp_path, data):
    from tinyedge.compress import compress

    with pytest.raises(ModelError, match=r"layer 'pool' cannot be low-rank factorised: it is a MaxPooling2D"):
        compress(DIGITS / "model.h5", data / "train.npz", out=tmp_path / "o.h5", rank=0.5, layers=["pool"])
    with pytest.raises(ModelError, match=r"layer 'logits' \(Dense\) cannot be channel-pruned: they enter "
                                         r"layer 'probs' \(Softmax\), which channel pruning does not see through"):
        compress(DIGITS / "model.h5", data / "train.npz", out=tmp_path / "o.h5", prune_channels=0.5,
                 layers=["logits"])
    assert list(tmp_path.iterdir()) == []


def test_cli_bad_input_one_line(run_cli, tmp_path, data):
    r = run_cli("compress", DIGITS / "model.h5", "--train", data / "train.npz", "-o", tmp_path / "o.h5",
                "--prune-channels", "1.5")
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        "error: --prune-channels must be between 0 and 1 (exclusive), got 1.5; give the fraction of channels "
        "to remove, e.g. 0.5"]
    assert "Traceback" not in r.stderr and not (tmp_path / "o.h5").exists()


def test_ctrl_c_during_training_writes_nothing(tmp_path, data):
    from tinyedge.compress import compress, int8_path

    out = tmp_path / "o.h5"
    out.write_bytes(b"the user's earlier file")
    seen = []

    def progress(done, total):
        seen.append(done)
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        compress(DIGITS / "model.h5", data / "train.npz", out=out, prune_channels=0.5, epochs=50,
                 progress=progress, force=True)
    assert seen == [1, 2]
    assert out.read_bytes() == b"the user's earlier file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.h5"] and not int8_path(out).exists()


def test_cli_sigint_during_training(tmp_path, data):
    from conftest import tinyedge_exe

    out = tmp_path / "o.h5"
    p = subprocess.Popen([*tinyedge_exe(), "compress", str(DIGITS / "model.h5"), "--train", str(data / "train.npz"),
                          "-o", str(out), "--prune-channels", "0.5", "--epochs", "500"],
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                         env={**os.environ, "COLUMNS": "200"})
    try:
        lines = []
        for line in p.stderr:  # wait for training to start
            lines.append(line)
            if "train: finetune" in line:
                break
        assert any("train: finetune" in x for x in lines), lines
        p.send_signal(signal.SIGINT)
        rest = p.stderr.read()
        assert p.wait(timeout=120) == 130, rest
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert "error: interrupted" in rest
    assert list(tmp_path.iterdir()) == []


def test_l1_slimming_then_bn_ranked_channel_pruning(tmp_path, data):
    import tf_keras

    from tinyedge.compress import compress
    from tinyedge.compress.train import l1_penalty

    model = _bn_model(tmp_path / "bn.h5")
    m = tf_keras.models.load_model(model, compile=False)
    gammas = sum(float(np.abs(m.get_layer(f"bn{i}").gamma.numpy()).sum()) for i in range(3))
    assert float(l1_penalty(m, 0.01, "bn")()) == pytest.approx(0.01 * gammas, rel=1e-5)
    rep = compress(model, data / "unlabelled.npz", out=tmp_path / "slim.h5", prune_channels=0.5,
                   channel_criterion="bn", l1=1e-3, distill=True, epochs=1)
    assert rep["methods"]["order"] == ["l1", "prune_channels", "finetune", "int8"]
    assert set(rep["methods"]["training"]) == {"l1", "finetune"}
    assert rep["methods"]["prune_channels"]["criterion"] == "bn"
    assert rep["totals"]["after"]["macs"] < 0.5 * rep["totals"]["before"]["macs"]


def test_report_table_and_json(pruned_digits):
    import json

    from rich.console import Console

    import tinyedge.commands.compress as cmd
    import tinyedge.console as tc

    _, rep = pruned_digits
    # the result goes to stdout (tinyedge.console.out), notes to stderr; at 80 columns no token is cut
    stdout, stderr = Console(record=True, width=80), Console(record=True, width=80)
    saved = tc.out, tc.err, cmd.out
    tc.out, tc.err, cmd.out = stdout, stderr, stdout
    try:
        cmd.print_report(rep)
    finally:
        tc.out, tc.err, cmd.out = saved
    text = stdout.export_text()
    b, a = rep["totals"]["before"], rep["totals"]["after"]
    assert f"{b['macs']:,}" in text and f"{a['macs']:,}" in text and "MACs" in text
    assert "aot flash (model constants)" in text and "int8 accuracy" in text
    assert "order: prune_channels -> finetune -> int8" in text
    assert all(len(line) <= 80 for line in text.splitlines())
    for row in rep["layers"]["after"]:         # each layer's row whole on one line
        assert any(row["layer"] in line and f"{row['macs']:,}" in line for line in text.splitlines()), text
    assert "order:" not in stderr.export_text()
    assert json.loads(json.dumps(rep)) == rep  # --json prints this object as is


def test_library_verb_is_callable_like_the_others(tmp_path, data):
    import tinyedge
    import tinyedge.compress.core  # noqa: F401  (the package is now the attribute tinyedge.compress)

    with pytest.raises(UsageError, match="no compression method given"):
        tinyedge.compress(DIGITS / "model.h5", data / "train.npz", out=tmp_path / "o.h5")
    assert tinyedge.compress.Options is tinyedge.compress.core.Options


def test_keras3_layer_without_tf_keras_twin_is_named(tmp_path, data):
    import keras

    from tinyedge.compress import compress

    m = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, name="c"),
                          keras.layers.RMSNormalization(name="rms"), keras.layers.Flatten(),
                          keras.layers.Dense(10, name="d")])
    m.save(tmp_path / "k3.keras")
    with pytest.raises(ModelError, match=r"^finetune, prune_channels: this keras3 model cannot be rebuilt as the "
                                         r"tf_keras model .* layer 'rms' is of class 'RMSNormalization'"):
        compress(tmp_path / "k3.keras", data / "train.npz", out=tmp_path / "o.h5", prune_channels=0.5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k3.keras"]
