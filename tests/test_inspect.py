"""tinyedge.analyze and `tinyedge inspect`: MACs, weights, memory plan, TFLM arena, op support, board fit."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from tinyedge.analyze import board_fit, inspect_model, macs, tflm_arena_bytes, weight_bytes
from tinyedge.graph import load_tflite

# MLPerf Tiny MAC counts as BENCHMARKS.md lists them (millions, two decimals).
MLPERF_MMACS = {"ad01": 0.26, "kws": 2.66, "resnet": 12.50, "vww": 7.49}


# ---------------------------------------------------------------------------
# a small model whose numbers are worked out by hand
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hand_model(tmp_path_factory):
    """Input 6x6x2 -> Conv2D(4, 3x3, valid) -> DepthwiseConv2D(3x3, same) -> Flatten -> Dense(5)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tf_keras as k2

    from tinyedge.conversion import convert

    d = tmp_path_factory.mktemp("hand")
    k2.utils.set_random_seed(0)
    L = k2.layers
    b = {"bias_initializer": "ones"}  # an all-zero bias would be dropped by the converter
    k2.Sequential([L.Input((6, 6, 2)), L.Conv2D(4, 3, name="conv", **b),
                   L.DepthwiseConv2D(3, padding="same", name="dw", **b),
                   L.Flatten(name="flat"), L.Dense(5, name="fc", **b)]).save(d / "hand.h5")
    np.savez(d / "calib.npz", x=np.random.default_rng(0).uniform(-1, 1, (16, 6, 6, 2)).astype(np.float32))
    convert(d / "hand.h5", out=d / "hand.tflite", calib=d / "calib.npz")
    return d / "hand.tflite"


@pytest.mark.slow
def test_macs_and_weights_by_hand(hand_model):
    g = load_tflite(hand_model)
    by_op = {op.opcode: op for op in g.ops}
    assert set(by_op) == {"CONV_2D", "DEPTHWISE_CONV_2D", "RESHAPE", "FULLY_CONNECTED"}
    # conv: output 4x4x4 = 64 values, each 3*3*2 = 18 MACs
    assert macs(g, by_op["CONV_2D"]) == 64 * 18 == 1152
    # depthwise: output 4x4x4 = 64 values, each 3*3 = 9 MACs
    assert macs(g, by_op["DEPTHWISE_CONV_2D"]) == 64 * 9 == 576
    # dense: 5 outputs, each 64 MACs
    assert macs(g, by_op["FULLY_CONNECTED"]) == 5 * 64 == 320
    assert macs(g, by_op["RESHAPE"]) == 0
    # weights: int8 kernel + int32 bias
    assert weight_bytes(g, by_op["CONV_2D"]) == 4 * 3 * 3 * 2 + 4 * 4 == 88
    assert weight_bytes(g, by_op["DEPTHWISE_CONV_2D"]) == 3 * 3 * 4 + 4 * 4 == 52
    assert weight_bytes(g, by_op["FULLY_CONNECTED"]) == 5 * 64 + 5 * 4 == 340


@pytest.mark.slow
def test_inspect_report_by_hand(hand_model):
    r = inspect_model(hand_model, board="qemu-cortex-m4")
    assert r["totals"]["macs"] == 1152 + 576 + 320
    assert [o["opcode"] for o in r["ops"]] == ["CONV_2D", "DEPTHWISE_CONV_2D", "RESHAPE", "FULLY_CONNECTED"]
    assert r["ops"][0]["inputs"][0]["shape"] == [1, 6, 6, 2] and r["ops"][0]["outputs"][0]["shape"] == [1, 4, 4, 4]
    # live activations: at op 0 the input (72 B) and the conv output (64 B) -> the peak, 136 B
    mem = r["memory"]
    assert mem["peak_live_bytes"] == 72 + 64 and mem["peak_op"] == 0
    assert mem["arena_bytes"] >= mem["peak_live_bytes"]
    assert mem["tflm_arena_bytes"] > 0
    assert r["support"]["tflm"]["status"] == "supported"
    assert r["fit"]["fits"] is True and r["fit"]["runtime"] == "aot"
    # aot: its own planned arena (not TFLM's) and the board's stack
    assert r["fit"]["ram_needed"] == mem["arena_bytes"] + r["fit"]["stack_bytes"]
    t = inspect_model(hand_model, board="qemu-cortex-m4", runtime="tflm")
    assert t["fit"]["flash_margin"] == t["fit"]["flash_bytes"] - hand_model.stat().st_size
    assert t["fit"]["ram_needed"] >= mem["tflm_arena_bytes"] + t["fit"]["stack_bytes"]
    json.dumps(r)  # JSON-able


# ---------------------------------------------------------------------------
# the four MLPerf Tiny .tflite files
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(MLPERF_MMACS))
def test_inspect_json_on_mlperf(name, mlperf_tflite, run_cli):
    r = run_cli("inspect", mlperf_tflite[name], "--json", "--board", "qemu-cortex-m4")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert round(rep["totals"]["macs"] / 1e6, 2) == MLPERF_MMACS[name]
    g = load_tflite(mlperf_tflite[name])
    # peak live bytes is at least what any one op reads and writes, and at most all activations together
    acts = {t for op in g.ops for t in op.inputs + op.outputs if t >= 0 and not g.tensors[t].is_const}
    one_op = max(sum(g.tensors[t].nbytes for t in set(op.inputs + op.outputs) if t in acts) for op in g.ops)
    mem = rep["memory"]
    assert one_op <= mem["peak_live_bytes"] <= sum(g.tensors[t].nbytes for t in acts)
    assert mem["tflm_arena_bytes"] >= mem["peak_live_bytes"]
    assert rep["support"]["tflm"]["status"] == "supported"
    assert rep["fit"]["board"] == "qemu-cortex-m4"
    # the aot arena (schedule auto) beside the layer-by-layer one, and the fit uses the former
    assert (mem["arena_bytes"] < mem["layer_arena_bytes"]) == bool(mem["stages"] or mem["inplace"])
    assert rep["fit"]["ram_needed"] == mem["arena_bytes"] + rep["fit"]["stack_bytes"]
    if name == "vww":
        assert mem["stages"] and mem["arena_bytes"] <= 0.6 * mem["layer_arena_bytes"]


def test_tflm_arena_is_the_smallest_that_loads(mlperf_tflite):
    from tflite_micro.python.tflite_micro import runtime

    from tinyedge.analyze import capture_fd2

    data = mlperf_tflite["kws"].read_bytes()
    a = tflm_arena_bytes(data)
    runtime.Interpreter.from_bytes(data, arena_size=a)  # loads
    with capture_fd2(), pytest.raises(RuntimeError):
        runtime.Interpreter.from_bytes(data, arena_size=a - 16)


def test_board_fit_numbers():
    f = board_fit("qemu-cortex-m4", flash_needed=1000, ram_needed=2000)
    assert f["flash_margin"] == f["flash_bytes"] - 1000 and f["ram_margin"] == f["ram_bytes"] - 2000
    assert f["fits"] is True
    big = board_fit("qemu-cortex-m4", flash_needed=f["flash_bytes"] + 1, ram_needed=0)
    assert big["fits"] is False and big["flash_margin"] == -1


def test_unknown_board_is_a_user_error(mlperf_tflite, run_cli):
    r = run_cli("inspect", mlperf_tflite["ad01"], "--board", "no-such-board")
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("error:")


def test_runtime_without_checker_shows_unknown(mlperf_tflite, monkeypatch):
    from tinyedge import runtimes

    fake = runtimes.Runtime("fake", "a runtime whose checker module does not exist", "tinyedge.no_such:check_op")
    monkeypatch.setitem(runtimes.RUNTIMES, "fake", fake)
    r = inspect_model(mlperf_tflite["ad01"], tflm_arena=False)
    assert r["support"]["fake"]["status"] == "unknown"
    assert r["support"]["tflm"]["status"] == "supported"


def test_tflm_tables_name_real_builtins():
    from tinyedge.graph import _enum_names
    from tinyedge.tflm_support import TFLM_BUILTINS, TFLM_FLOAT_ONLY

    names = set(_enum_names("BuiltinOperator").values())
    assert TFLM_BUILTINS <= names, sorted(TFLM_BUILTINS - names)
    assert TFLM_FLOAT_ONLY <= TFLM_BUILTINS


def test_tflm_check_rejects_float_ops(mlperf_tflite):
    from tinyedge.tflm_support import check_op

    g = load_tflite(mlperf_tflite["ad01"])
    op = g.ops[0]
    assert check_op(g, op) is None
    g.tensors[op.outputs[0]].dtype = "float32"          # float activations, int8 weights
    assert check_op(g, op).startswith("hybrid op")
    for t in op.inputs:
        g.tensors[t].dtype = "float32"                  # everything float
    assert check_op(g, op).startswith("float op")
