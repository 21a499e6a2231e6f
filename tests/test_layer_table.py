"""README's Keras layer table is true: every row of tests/keras_layers.py is built in Keras 3 and
tf_keras, converted by TensorFlow's full-int8 converter, and checked: the TFLite ops, the aot and
TFLite Micro verdicts (the per-op verdicts `inspect` prints), the generated C bit for bit against
the tflite-micro interpreter (TensorFlow Lite's interpreter for the rows whose ops TFLite Micro lacks)
on random, all -128 and all 127 inputs, and the README text itself."""

from __future__ import annotations

import keras_layers as kl
import numpy as np
import pytest
from test_aot_engine import tflite_outputs, tflm_outputs

from tinyedge.aot.host import HostModelSet
from tinyedge.graph import load_tflite
from tinyedge.runtimes import check_graph

pytestmark = pytest.mark.slow


def _inputs(shape, seed):
    rng = np.random.default_rng(seed)
    xs = [rng.integers(-128, 128, size=shape, dtype=np.int8) for _ in range(6)]
    return xs + [np.full(shape, -128, np.int8), np.full(shape, 127, np.int8)]


def _ops(graph) -> tuple[str, ...]:
    seen: list[str] = []
    for op in graph.ops:
        if op.opcode not in seen:
            seen.append(op.opcode)
    return tuple(seen)


@pytest.fixture(scope="session")
def layer_models():
    return kl.converted()


@pytest.fixture(scope="session")
def layer_graphs(layer_models):
    return {key: load_tflite(p) for key, p in layer_models.items() if p != kl.CRASH}


def test_readme_table_is_the_registry():
    text = kl.readme_path().read_text()
    assert kl.render_table() in text, "README's layer table is stale: run python tests/keras_layers.py --readme"


def test_rows_are_unique_and_cover_the_issue_layers():
    names = [r.layer for r in kl.RECIPES]
    assert len(names) == len(set(names))
    covered = {part.split(" (")[0].strip() for n in names for part in n.split(", ")}
    for layer in ("Conv1D", "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose", "Dense", "LSTM", "GRU", "SimpleRNN",
                  "BatchNormalization", "LayerNormalization", "UpSampling2D", "ZeroPadding2D", "Cropping2D",
                  "Reshape", "Flatten", "Permute", "Concatenate", "Add", "Subtract", "Multiply", "Maximum",
                  "Minimum", "Average", "Dropout", "Rescaling", "PReLU", "gelu", "elu", "swish", "hard_swish"):
        assert layer in covered, layer


@pytest.mark.parametrize("kind", kl.KINDS)
def test_ops_and_verdicts(layer_models, layer_graphs, kind):
    wrong = []
    for i, r in enumerate(kl.RECIPES):
        if kind not in r.kinds:
            continue
        if layer_models[(i, kind)] == kl.CRASH:
            if r.ops[kind] != kl.CRASH:
                wrong.append(f"{r.layer}: the converter crashed, the table says {r.ops[kind]}")
            continue
        g = layer_graphs[(i, kind)]
        ops = _ops(g)
        if r.ops[kind] == kl.CRASH or set(ops) != set(r.ops[kind]):
            wrong.append(f"{r.layer}: converted to {ops}, the table says {r.ops[kind]}")
        for runtime, claim in (("aot", r.aot[kind]), ("tflm", r.tflm[kind])):
            verdicts = check_graph(g, runtime)
            runs = all(v.supported for v in verdicts)
            if runs != claim:
                why = [f"{v.opcode}: {v.reason}" for v in verdicts if not v.supported]
                wrong.append(f"{r.layer}: {runtime} {'runs' if runs else 'does not run'} it, the table says "
                             f"{'yes' if claim else 'no'} {why}")
    assert not wrong, "\n".join(wrong)


def _reference(path, xs, use_tflm: bool):
    return tflm_outputs(path, xs) if use_tflm else tflite_outputs(path, xs)


@pytest.mark.parametrize("kind", kl.KINDS)
def test_aot_rows_bit_exact(layer_models, layer_graphs, kind, tmp_path_factory):
    """Every row the table says aot runs: the generated C (all rows in one host library) equals the
    reference interpreter byte for byte; rows TFLite Micro runs are also run by it there."""
    rows = [(i, r) for i, r in enumerate(kl.RECIPES) if kind in r.kinds and layer_models[(i, kind)] != kl.CRASH]
    aot_rows = [(i, r) for i, r in rows if r.aot[kind]]
    lib = HostModelSet([layer_graphs[(i, kind)] for i, _ in aot_rows], cache_dir=tmp_path_factory.mktemp("lt"),
                       opt="-O1")
    bad = []
    for (i, r), m in zip(aot_rows, lib.models, strict=True):
        g = m.graph
        xs = _inputs(g.tensors[g.inputs[0]].shape, seed=i)
        # TFLite Micro's interpreter wherever it runs the model (also where only float ops, those of a
        # float island, keep tinyedge's tflm runtime from deploying it); TensorFlow Lite's for TILE
        float_only = all(v.supported or v.reason.startswith("float op") for v in check_graph(g, "tflm"))
        refs = _reference(layer_models[(i, kind)], xs, r.tflm[kind] or float_only)
        for k, (x, ref) in enumerate(zip(xs, refs, strict=True)):
            got = m.invoke(x)
            if not np.array_equal(ref.reshape(-1), got.reshape(-1)):
                n = int((ref.reshape(-1) != got.reshape(-1)).sum())
                bad.append(f"{r.layer} ({kind}) input #{k}: {n} of {ref.size} bytes differ")
                break
    for i, r in rows:   # TFLite Micro runs the rows only it runs
        if r.tflm[kind] and not r.aot[kind]:
            g = layer_graphs[(i, kind)]
            _reference(layer_models[(i, kind)], _inputs(g.tensors[g.inputs[0]].shape, seed=i)[:1], True)
    assert not bad, "\n".join(bad)
