"""The aot engine's recurrent layers against the tflite-micro interpreter, byte for byte.

tf_keras LSTM layers become UNIDIRECTIONAL_SEQUENCE_LSTM, which te_lstm_s8 runs with TFLite
Micro's integer semantics; unrolled LSTM, GRU and SimpleRNN layers (tf_keras and Keras 3)
become graphs of ordinary ops.  Several sequence lengths and unit counts, return_sequences on
and off, stacked layers (tests/recurrent_zoo.py; docs/recurrent.md says what the converter
emits for each layer, and what it crashes on).  Each model runs through the generated C on the
host (the LSTM kernel also under ASan + UBSan and on qemu-cortex-m4, its SMLAD gate matmuls) on 22
int8 inputs (20 random, all -128, all 127).  Every inference starts from the zero state (Keras'
stateful=False; TFLite Micro's CMSIS-NN LSTM resets it too), and the reference interpreter is
reset before each invoke to match.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require_tool
from recurrent_zoo import BUILDERS, recurrent_tflite
from test_aot_engine import assert_bit_exact, inputs_for

from tinyedge.analyze import macs
from tinyedge.aot.host import HostModel
from tinyedge.aot.support import SUPPORTED_OPS, check_op
from tinyedge.graph import Graph, Op, Tensor, load_tflite
from tinyedge.planner import plan

LSTM = "UNIDIRECTIONAL_SEQUENCE_LSTM"

# what the converter emits for each model (TF 2.21, tinyedge's conversion path)
_UNROLLED = {"RESHAPE", "UNPACK", "FULLY_CONNECTED", "LOGISTIC", "TANH", "MUL", "ADD"}
EXPECTED_OPS = {
    "k2_lstm_stacked": {LSTM},
    "k2_lstm_last": {LSTM, "STRIDED_SLICE"},
    "k2_gru_unrolled": _UNROLLED | {"SPLIT", "SPLIT_V", "SUB", "PACK", "QUANTIZE"},   # the older quantizer's
    "k2_rnn_lstm_unrolled": _UNROLLED | {"SPLIT", "PACK", "QUANTIZE"},
    "k3_lstm_stacked": _UNROLLED | {"SPLIT", "PACK", "QUANTIZE"},
    # the older quantizer's int8 -> int8 requantizes (the MLIR one left a float gate split on some calls)
    "k3_gru_unrolled": _UNROLLED | {"SPLIT", "SUB", "STRIDED_SLICE", "PACK", "QUANTIZE"},
}


def _params(names):
    """Models whose ops are not all in the engine yet (the layout ops SPLIT, UNPACK, PACK,
    STRIDED_SLICE and SUB come from the other half of issue 18) must fail until they land, and
    pass from then on (strict xfail)."""
    out = []
    for n in names:
        missing = sorted(EXPECTED_OPS[n] - set(SUPPORTED_OPS))
        marks = [pytest.mark.xfail(strict=True, reason=f"not aot ops yet: {', '.join(missing)}")] if missing else []
        out.append(pytest.param(n, marks=marks))
    return out


class _Paths(dict):
    """name -> converted .tflite, converted (or read from the disk cache) on first use."""

    def __missing__(self, name):
        self[name] = recurrent_tflite(name)
        return self[name]


@pytest.fixture(scope="session")
def rnn_paths():
    return _Paths()


@pytest.fixture(scope="session")
def rnn_cache(tmp_path_factory, shared_sources):
    """Build cache of the generated C (the LSTM's sigmoid table comes from the TFLite Micro tree)."""
    return tmp_path_factory.mktemp("aot-rnn-cache")


@pytest.mark.slow
def test_converter_emits_fused_lstm(rnn_paths):
    for name in BUILDERS:
        g = load_tflite(rnn_paths[name])
        assert {op.opcode for op in g.ops} == EXPECTED_OPS[name], name
        for op in g.ops:
            if op.opcode == LSTM:
                assert check_op(g, op) is None, (name, check_op(g, op))
                h, c = g.tensors[op.inputs[18]], g.tensors[op.inputs[19]]
                assert (h.dtype, c.dtype, h.is_variable, c.is_variable) == ("int8", "int16", True, True)
                b, steps, n_in = g.tensors[op.inputs[0]].shape
                units = g.tensors[op.inputs[1]].shape[0]
                assert macs(g, op) == b * steps * 4 * units * (n_in + units)   # what inspect counts


@pytest.mark.slow
@pytest.mark.parametrize("name", _params(sorted(BUILDERS)))
def test_recurrent_bit_exact_host(rnn_paths, rnn_cache, name):
    path = rnn_paths[name]
    model = HostModel(path, cache_dir=rnn_cache)
    g = model.graph
    assert_bit_exact(name, path, model, inputs_for(g.tensors[g.inputs[0]].shape, seed=11))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["k2_lstm_stacked"])
def test_recurrent_sanitizers(rnn_paths, rnn_cache, name):
    """te_lstm_s8 under ASan + UBSan (the unrolled forms' ops are sanitized by their own tests)."""
    path = rnn_paths[name]
    model = HostModel(path, cache_dir=rnn_cache, sanitize=True, opt="-O1")
    g = model.graph
    assert_bit_exact(f"{name} (asan+ubsan)", path, model, inputs_for(g.tensors[g.inputs[0]].shape, seed=12))


@pytest.mark.slow
def test_every_invoke_starts_from_the_zero_state(rnn_paths, rnn_cache):
    """The same input twice gives the same output (the state does not leak from one inference
    into the next, as with a Keras layer built stateful=False), equal to the interpreter's
    output after reset(); the interpreter without reset() would have moved on."""
    from tflite_micro.python.tflite_micro import runtime

    path = rnn_paths["k2_lstm_stacked"]
    model = HostModel(path, cache_dir=rnn_cache)
    x = inputs_for(model.graph.tensors[model.graph.inputs[0]].shape, seed=13)[0]
    interp = runtime.Interpreter.from_bytes(path.read_bytes())
    carried = []
    for _ in range(2):
        interp.set_input(x, 0)
        interp.invoke()
        carried.append(np.array(interp.get_output(0)).reshape(-1))
    assert not np.array_equal(carried[0], carried[1])   # the model really has state
    interp.reset()
    interp.set_input(x, 0)
    interp.invoke()
    fresh = np.array(interp.get_output(0)).reshape(-1)
    np.testing.assert_array_equal(fresh, carried[0])
    got = [model.invoke(x).reshape(-1) for _ in range(3)]
    for k in range(3):
        np.testing.assert_array_equal(got[k], fresh, err_msg=f"invoke {k}")


@pytest.mark.slow
def test_plan_keeps_state_apart(rnn_paths):
    """The state tensors are live over every op (no buffer ever shares their bytes), and each
    LSTM's gate scratch is live during its op and overlaps nothing live then."""
    g = load_tflite(rnn_paths["k2_lstm_stacked"])
    pl = plan(g)
    last = len(g.ops) - 1
    states = [t for op in g.ops if op.opcode == LSTM for t in op.inputs[18:20]]
    for t in states:
        assert pl.lifetimes[t] == (0, last)
    spans = [(b.offset, b.offset + b.nbytes, b.first, b.last, b.root) for b in pl.buffers]
    for op in g.ops:
        units = g.tensors[op.inputs[1]].shape[0]
        b = next(b for b in pl.buffers if b.root == -1 - op.index)
        assert (b.nbytes, b.first, b.last, pl.scratch[op.index]) == (8 * units, op.index, op.index, b.offset)
    for i, (lo, hi, f, la, r) in enumerate(spans):
        for lo2, hi2, f2, la2, r2 in spans[i + 1:]:
            if f <= la2 and f2 <= la:
                assert hi <= lo2 or hi2 <= lo, f"buffers {r} and {r2} overlap"


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.parametrize("name", ["k2_lstm_stacked"])   # te_lstm_s8's SMLAD gate matmuls
def test_recurrent_bit_exact_on_qemu_cortex_m4(rnn_paths, shared_sources, tmp_path, name):
    require_tool("qemu-system-arm")
    require_tool("arm-none-eabi-gcc")
    from test_aot_qemu import _float_inputs

    from tinyedge.pipeline import deploy

    path = rnn_paths[name]
    x = _float_inputs(path, seed=14)
    data = tmp_path / "x.npz"
    np.savez(data, x=x)
    report = deploy(path, board="qemu-cortex-m4", runtime="aot", data=data, samples=len(x), out=tmp_path / "out",
                    timeout=60)
    agree = report["agreement"]
    assert agree["bit_exact_rate"] == 1.0, f"{name} on qemu-cortex-m4: {agree}"
    assert agree["max_abs_diff"] == 0


def _tiny_graph(opcode: str) -> tuple[Graph, Op]:
    t = Tensor(index=0, name="sequential/gru/while", shape=(1, 4), dtype="int8",
               scale=np.array([0.1], np.float32), zero_point=np.array([0]))
    op = Op(index=0, opcode=opcode, version=1, inputs=[0], outputs=[0])
    return Graph(tensors=[t], ops=[op], inputs=[0], outputs=[0], description="", sha256="0" * 64, size_bytes=0), op


def test_while_is_refused_with_the_fix():
    g, op = _tiny_graph("WHILE")
    reason = check_op(g, op)
    assert "WHILE" in reason and "unroll=True" in reason


@pytest.mark.slow
def test_lstm_variants_outside_the_kernel_are_refused(rnn_paths):
    """What te_lstm_s8 does not compute as TFLite Micro would is refused with the reason."""
    import copy
    import dataclasses

    base = load_tflite(rnn_paths["k2_lstm_stacked"])

    def reason(edit):
        g = copy.deepcopy(base)
        op = g.ops[0]
        edit(g, op)
        return check_op(g, op)

    assert reason(lambda g, op: None) is None

    def cifg(g, op):
        op.inputs[1] = -1

    def peephole(g, op):
        op.inputs[9] = op.inputs[12]

    def per_channel(g, op):
        w = g.tensors[op.inputs[2]]
        g.tensors[op.inputs[2]] = dataclasses.replace(w, scale=np.repeat(w.scale, w.shape[0]),
                                                      zero_point=np.zeros(w.shape[0], np.int64))

    def time_major_batch2(g, op):
        op.options["time_major"] = True
        g.tensors[op.inputs[0]] = dataclasses.replace(g.tensors[op.inputs[0]], shape=(7, 2, 5))

    def not_variable(g, op):
        g.tensors[op.inputs[19]] = dataclasses.replace(g.tensors[op.inputs[19]], is_variable=False)

    def hybrid(g, op):
        op.options["asymmetric_quantize_inputs"] = True

    for edit, words in ((cifg, "CIFG"), (peephole, "peephole"), (per_channel, "per channel"),
                        (time_major_batch2, "time-major"), (not_variable, "variable"), (hybrid, "hybrid")):
        r = reason(edit)
        assert r is not None and words in r, (edit.__name__, r)


def test_every_tflm_builtin_has_its_resolver_method(shared_sources):
    """The tflm project registers each op with MicroMutableOpResolver's Add<Op>(); the LSTM's is
    AddUnidirectionalSequenceLSTM, not the camel case of its name (a build error before)."""
    import re

    from tinyedge.project import tflm_resolver_method
    from tinyedge.sources import source_tree
    from tinyedge.tflm_support import TFLM_BUILTINS

    hdr = (source_tree("tflite-micro") / "tensorflow/lite/micro/micro_mutable_op_resolver.h").read_text()
    methods = set(re.findall(r"TfLiteStatus (Add\w+)\(", hdr))
    missing = sorted(op for op in TFLM_BUILTINS if tflm_resolver_method(op) not in methods)
    assert not missing, f"no resolver method for {missing}"


@pytest.mark.slow
def test_unrolled_gru_converts_the_same_all_int8_every_time(tmp_path):
    """TF 2.21's MLIR quantizer, given the same calibrated unrolled GRU byte for byte, leaves its gate
    SPLIT in float on some calls (docs/recurrent.md); tinyedge's conversion quantizes models with an
    unrolled recurrent layer with the older quantizer, which gives the same all-int8 bytes each time.
    A GRU without return_sequences, unroll=True by the user (the case that went float most often)."""
    import tf_keras as k

    from tinyedge.conversion import convert_loaded, float_ops, load_model, unrolled_recurrent

    k.utils.set_random_seed(7)
    inp = k.layers.Input((6, 3))
    k.Model(inp, k.layers.GRU(4, unroll=True, name="gru")(inp)).save(tmp_path / "gru.h5")
    loaded = load_model(tmp_path / "gru.h5")
    assert unrolled_recurrent(loaded) == ["gru"]
    calib = np.random.default_rng(0).normal(0.0, 1.0, size=(16, 6, 3)).astype(np.float32)
    runs = [convert_loaded(loaded, calib) for _ in range(2)]
    assert runs[0] == runs[1]
    path = tmp_path / "gru.tflite"
    path.write_bytes(runs[0])
    g = load_tflite(path)
    assert float_ops(g) == [], [op.opcode for op, _ in float_ops(g)]
    assert "SPLIT" in {op.opcode for op in g.ops} or "SPLIT_V" in {op.opcode for op in g.ops}
