"""The aot engine against the tflite-micro interpreter, byte for byte.

Every MLPerf Tiny model and every small zoo model (tests/aot_zoo.py, one per
family of ops and options) runs through the generated C built for the host
and through TFLite Micro's Python interpreter on the same 22 int8 inputs
(20 random with a fixed seed, all -128, all 127); outputs must be equal.
The zoo models also run under AddressSanitizer + UndefinedBehaviorSanitizer.
"""

from __future__ import annotations

import numpy as np
import pytest
from aot_zoo import BUILDERS, UNARY_ACTS, mean_same_quant_variant, unary_tflite, zoo_tflite

from tinyedge.aot.host import HostModel
from tinyedge.graph import load_tflite, parse_tflite

N_RANDOM = 20


def inputs_for(shape, seed=0):
    rng = np.random.default_rng(seed)
    xs = [rng.integers(-128, 128, size=shape, dtype=np.int8) for _ in range(N_RANDOM)]
    xs.append(np.full(shape, -128, np.int8))
    xs.append(np.full(shape, 127, np.int8))
    return xs


def tflm_outputs(path, xs):
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(path.read_bytes())
    outs = []
    for x in xs:
        interp.reset()   # every inference from the zero state, as tinyedge's runtimes do
        interp.set_input(x, 0)
        interp.invoke()
        outs.append(np.array(interp.get_output(0)))
    return outs


def tflite_outputs(path, xs):
    """TensorFlow Lite's interpreter on `xs`: the reference for ops TFLite Micro has no kernel for (TILE)."""
    import tensorflow as tf

    interp = tf.lite.Interpreter(model_path=str(path))
    interp.allocate_tensors()
    i, o = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    outs = []
    for x in xs:
        interp.set_tensor(i, x)
        interp.invoke()
        outs.append(np.array(interp.get_tensor(o)))
    return outs


def diff_report(label, k, ref, got) -> str:
    r, g = ref.reshape(-1), got.reshape(-1)
    if r.shape != g.shape:
        return f"{label} input #{k}: output sizes differ: tflm {r.shape} aot {g.shape}"
    bad = np.nonzero(r != g)[0]
    i = int(bad[0])
    return (f"{label} input #{k}: {bad.size} of {r.size} bytes differ; first at flat index {i}: "
            f"tflm={int(r[i])} aot={int(g[i])}; first indices {bad[:8].tolist()}, "
            f"tflm {r[bad[:8]].tolist()} aot {g[bad[:8]].tolist()}")


def assert_bit_exact(label, path, model, xs):
    refs = tflm_outputs(path, xs)
    outs = model.invoke_many(xs)
    for k, (ref, got) in enumerate(zip(refs, outs, strict=True)):
        if not np.array_equal(ref.reshape(-1), got.reshape(-1)):
            pytest.fail(diff_report(label, k, ref, got))


@pytest.fixture(scope="session")
def aot_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("aot-build-cache")


@pytest.fixture(scope="session")
def zoo_paths():
    return {name: zoo_tflite(name) for name in BUILDERS}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ad01", "kws", "resnet", "vww"])
def test_mlperf_bit_exact(mlperf_tflite, aot_cache, name):
    path = mlperf_tflite[name]
    model = HostModel(path, cache_dir=aot_cache)
    g = model.graph
    assert_bit_exact(name, path, model, inputs_for(g.tensors[g.inputs[0]].shape))
    assert model.info["runtime"] == "aot"
    assert model.info["model_sha256"] == g.sha256
    assert model.info["arena_bytes"] == model.arena_bytes
    if name in ("vww", "kws", "resnet"):   # the auto schedule streams (or works in place) and it pays
        assert model.arena_bytes < model.layer_arena_bytes
    if name == "vww":
        assert model.stages and model.arena_bytes <= 33_178   # 0.6x its layer-by-layer bound, 55,296 B


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_zoo_bit_exact(zoo_paths, aot_cache, name):
    path = zoo_paths[name]
    model = HostModel(path, cache_dir=aot_cache)
    g = model.graph
    assert_bit_exact(name, path, model, inputs_for(g.tensors[g.inputs[0]].shape, seed=1))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_zoo_sanitizers(zoo_paths, aot_cache, name):
    """Every op under ASan + UBSan (-fno-sanitize-recover=all), and still bit-exact."""
    path = zoo_paths[name]
    model = HostModel(path, cache_dir=aot_cache, sanitize=True, opt="-O1")
    g = model.graph
    assert_bit_exact(f"{name} (asan+ubsan)", path, model, inputs_for(g.tensors[g.inputs[0]].shape, seed=2))


@pytest.mark.slow
def test_mlperf_kws_sanitizers(mlperf_tflite, aot_cache):
    path = mlperf_tflite["kws"]
    model = HostModel(path, cache_dir=aot_cache, sanitize=True, opt="-O1")
    g = model.graph
    assert_bit_exact("kws (asan+ubsan)", path, model, inputs_for(g.tensors[g.inputs[0]].shape, seed=3)[-6:])


@pytest.mark.slow
def test_zoo_covers_every_op_and_option(zoo_paths):
    from tinyedge.aot.support import SUPPORTED_OPS

    seen_ops: set[str] = set()
    from recurrent_zoo import recurrent_tflite

    # UNIDIRECTIONAL_SEQUENCE_LSTM: a model of tests/recurrent_zoo.py (tests/test_aot_recurrent.py)
    seen_ops |= {op.opcode for op in load_tflite(recurrent_tflite("k2_lstm_stacked")).ops}
    opts: set[str] = set()
    for path in zoo_paths.values():
        g = load_tflite(path)
        for op in g.ops:
            seen_ops.add(op.opcode)
            o = op.options
            act = o.get("fused_activation_function")
            if act:
                opts.add(f"{op.opcode}:{act}")
            if o.get("stride_h", 1) == 2 or o.get("stride_w", 1) == 2:
                opts.add(f"{op.opcode}:stride2")
            if o.get("dilation_h_factor", 1) > 1:
                opts.add(f"{op.opcode}:dilation")
            if o.get("depth_multiplier", 1) == 2:
                opts.add("depth_multiplier2")
            if o.get("padding") == "SAME":
                x = g.tensors[op.inputs[0]]
                if any(d % 2 for d in x.shape[1:3]):
                    opts.add(f"{op.opcode}:same_odd")
            if op.opcode == "CONV_2D" and g.tensors[op.inputs[1]].per_channel:
                opts.add("per_channel")
            if op.opcode in ("ADD", "MUL"):
                a, b = (g.tensors[t].shape for t in op.inputs[:2])
                if a != b:
                    opts.add(f"{op.opcode}:broadcast")
    from aot_ops_zoo import BUILDERS as OPS_BUILDERS
    from aot_ops_zoo import ops_zoo_tflite

    for name in OPS_BUILDERS:   # the layout, resize, math and transposed-conv ops (tests/test_aot_ops.py)
        seen_ops |= {op.opcode for op in load_tflite(ops_zoo_tflite(name)).ops}
    # the converter writes SQUEEZE / EXPAND_DIMS as RESHAPE (test_aot_ops aliases them by hand); PRELU
    # comes from Keras's PReLU layer (tests/test_layer_table.py)
    missing_ops = set(SUPPORTED_OPS) - seen_ops - {"SQUEEZE", "EXPAND_DIMS", "PRELU"}
    assert not missing_ops, f"no zoo model exercises {sorted(missing_ops)}"
    want = {"CONV_2D:RELU", "CONV_2D:RELU6", "CONV_2D:NONE", "DEPTHWISE_CONV_2D:RELU", "DEPTHWISE_CONV_2D:RELU6",
            "FULLY_CONNECTED:RELU", "FULLY_CONNECTED:RELU6", "FULLY_CONNECTED:NONE",
            "CONV_2D:stride2", "DEPTHWISE_CONV_2D:stride2", "CONV_2D:dilation", "DEPTHWISE_CONV_2D:dilation",
            "depth_multiplier2", "CONV_2D:same_odd", "DEPTHWISE_CONV_2D:same_odd", "per_channel",
            "ADD:broadcast", "MUL:broadcast"}
    assert want <= opts, f"zoo misses options {sorted(want - opts)}"


@pytest.mark.slow
def test_mean_with_equal_quantization_bit_exact(zoo_paths, aot_cache, tmp_path):
    path = tmp_path / "mean_same.tflite"
    path.write_bytes(mean_same_quant_variant(zoo_paths["activations"]))
    g = parse_tflite(path.read_bytes(), path=path)
    means = [op for op in g.ops if op.opcode == "MEAN"]
    assert means and all(
        g.tensors[op.inputs[0]].scale[0] == g.tensors[op.outputs[0]].scale[0]
        and g.tensors[op.inputs[0]].zero_point[0] == g.tensors[op.outputs[0]].zero_point[0] for op in means)
    model = HostModel(g, cache_dir=aot_cache)
    assert_bit_exact("mean_same", path, model, inputs_for(g.tensors[g.inputs[0]].shape, seed=4))


@pytest.mark.slow
@pytest.mark.parametrize("act", UNARY_ACTS)
def test_lookup_table_ops_exhaustive(aot_cache, act):
    """Each elementwise op on the model input: every one of the 256 int8 values in one inference."""
    path = unary_tflite(act)
    model = HostModel(path, cache_dir=aot_cache)
    every = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    rng = np.random.default_rng(6)
    assert_bit_exact(f"unary {act}", path, model, [every, rng.permutation(every.reshape(-1)).reshape(1, 256)])
