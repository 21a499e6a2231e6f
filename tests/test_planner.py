"""Memory planner: lifetimes, RESHAPE aliasing, alignment, no overlap, arena vs peak-live bound."""

from __future__ import annotations

import numpy as np
import pytest

from tinyedge.graph import Graph, Op, Tensor, load_tflite
from tinyedge.planner import ALIGN, plan


def _t(i, shape, const=False):
    data = np.zeros(shape, np.int8) if const else None
    return Tensor(index=i, name=f"t{i}", shape=shape, dtype="int8", data=data)


def _check_plan(g, p):
    for t, off in p.offsets.items():
        assert off % ALIGN == 0, (t, off)
        assert off + g.tensors[t].nbytes <= p.arena_bytes
    bufs = p.buffers
    for a in bufs:
        for b in bufs:
            if a is b or a.last < b.first or b.last < a.first:
                continue
            assert a.offset + a.nbytes <= b.offset or b.offset + b.nbytes <= a.offset, (a, b)
    assert p.arena_bytes >= p.peak_live_bytes


def test_chain_with_reshape_alias():
    ts = [_t(0, (1, 8, 8, 4)), _t(1, (1, 8, 8, 8)), _t(2, (1, 512)), _t(3, (1, 16)), _t(4, (2,), const=True)]
    ops = [Op(0, "CONV_2D", 1, [0], [1]), Op(1, "RESHAPE", 1, [1, 4], [2]), Op(2, "FULLY_CONNECTED", 1, [2], [3])]
    g = Graph(ts, ops, [0], [3], "", "0" * 64, 0)
    p = plan(g)
    _check_plan(g, p)
    assert p.offsets[2] == p.offsets[1]          # alias, not a copy
    assert p.alias_of == {2: 1}
    assert p.lifetimes[1] == (0, 1) and p.lifetimes[2] == (1, 2)
    assert 4 not in p.offsets                     # constants are not in the arena
    assert p.peak_live_bytes == 256 + 512         # op 0: input + output
    assert p.peak_op == 0
    assert p.arena_bytes == 768


def test_residual_keeps_tensor_alive():
    # 0 -> op0 -> 1 -> op1 -> 2 -> op2(ADD 1,2) -> 3 : tensor 1 is live over ops 0..2
    ts = [_t(0, (100,)), _t(1, (100,)), _t(2, (100,)), _t(3, (100,))]
    ops = [Op(0, "RELU", 1, [0], [1]), Op(1, "RELU", 1, [1], [2]), Op(2, "ADD", 1, [1, 2], [3])]
    g = Graph(ts, ops, [0], [3], "", "0" * 64, 0)
    p = plan(g)
    _check_plan(g, p)
    assert p.lifetimes[1] == (0, 2)
    assert p.peak_live_bytes == 300
    assert p.offsets[1] not in (p.offsets[2], p.offsets[3])


@pytest.mark.parametrize("name", ["ad01", "kws", "resnet", "vww"])
def test_mlperf_arena_near_peak(mlperf_tflite, name):
    g = load_tflite(mlperf_tflite[name])
    p = plan(g)
    _check_plan(g, p)
    assert p.arena_bytes <= p.peak_live_bytes * 1.05 + ALIGN
