import math

import numpy as np
import pytest

from tinyedge.metrics import accuracy, agreement, latency


def test_agreement_exact_and_off_by_one():
    ref = np.array([[1, 2, 3], [10, -5, 0], [-128, 127, 0]], dtype=np.int8)
    dev = ref.copy()
    a = agreement(dev, ref)
    assert (a.bit_exact_rate, a.top1_agreement, a.max_abs_diff, a.first_mismatch) == (1.0, 1.0, 0, None)
    dev[1, 1] = -4          # one step off, same arg-max
    dev[2, 0] = 127         # arg-max changes (ties go to the first index), 255 steps off
    a = agreement(dev, ref)
    assert a.bit_exact_rate == pytest.approx(1 / 3)
    assert a.top1_agreement == pytest.approx(2 / 3)
    assert a.max_abs_diff == 255
    assert a.first_mismatch == 1


def test_agreement_shape_mismatch():
    with pytest.raises(ValueError):
        agreement(np.zeros((2, 3), np.int8), np.zeros((2, 4), np.int8))


def test_accuracy():
    out = np.array([[0, 9, 1], [5, 1, 1], [0, 0, 7], [3, 2, 1]], dtype=np.int8)
    assert accuracy(out, np.array([1, 0, 2, 2])) == 0.75
    assert accuracy(out, None) is None


def test_latency_units():
    lat = latency([100, 200, 300, 400], "cycles", 100_000_000)
    assert lat["min"] == 100 and lat["max"] == 400 and lat["median"] == 250
    assert lat["ms_median"] == pytest.approx(250 / 1e8 * 1e3)
    assert lat["p95"] == pytest.approx(385.0)
    assert latency([5_000_000], "ns", None)["ms_median"] == pytest.approx(5.0)
    assert latency([123], "instructions", 25_000_000)["ms_median"] is None
    assert latency([], "cycles", 1)["median"] is None


def test_empty_agreement_is_nan():
    a = agreement(np.zeros((0, 3), np.int8), np.zeros((0, 3), np.int8))
    assert a.samples == 0 and math.isnan(a.bit_exact_rate)
