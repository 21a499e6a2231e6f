import math

import numpy as np
import pytest

from tinyedge.metrics import (
    _auc_ranks,
    accuracy,
    agreement,
    confusion_matrix,
    dequantize,
    detect_task,
    error_metrics,
    latency,
    per_class_recall,
    reconstruction_scores,
    roc_auc,
    task_metrics,
    top_k_accuracy,
)


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


# --- task-aware metrics on constructed outputs with known answers ------------------------------

def test_detect_task():
    assert detect_task((1, 640), (1, 640))[0] == "anomaly"                     # ad01: a reconstruction
    assert detect_task((1, 49, 10, 1), (1, 12), last_op="SOFTMAX")[0] == "classify"
    assert detect_task((1, 49, 10, 1), (1, 12), labels=np.array([1]))[0] == "classify"
    assert detect_task((1, 49, 10, 1), (1, 12))[0] == "regress"                # logits, no labels: no claim
    assert detect_task((1, 8), (1, 1), last_op="LOGISTIC")[0] == "regress"
    assert detect_task((1, 640), (1, 640), override="regress") == ("regress", "given (--task)")
    with pytest.raises(ValueError):
        detect_task((1, 4), (1, 4), override="segment")


def test_error_metrics_known_values():
    e = error_metrics([[1.0, 2.0, 3.0]], [[1.0, 2.0, 4.0]])
    assert e["rmse"] == pytest.approx(math.sqrt(1 / 3))
    assert e["mae"] == pytest.approx(1 / 3)
    assert e["cosine"] == pytest.approx(17 / math.sqrt(14 * 21))
    assert e["rel_l2"] == pytest.approx(1 / math.sqrt(21))
    same = error_metrics(np.ones((2, 3)), np.ones((2, 3)))
    assert (same["rmse"], same["mae"], same["rel_l2"]) == (0.0, 0.0, 0.0) and same["cosine"] == pytest.approx(1.0)
    z = error_metrics(np.zeros(3), np.zeros(3))
    assert z["cosine"] is None and z["rel_l2"] is None and z["rmse"] == 0.0
    assert error_metrics([-1.0, 0.0], [1.0, 0.0])["cosine"] == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        error_metrics(np.zeros(3), np.zeros(4))


def test_dequantize():
    assert dequantize(np.array([-128, 0, 127], np.int8), [0.5], [-128]).tolist() == [0.0, 64.0, 127.5]


def test_top_k_known_answers():
    out = np.array([[9, 8, 7, 1, 0],     # label 2: 3rd   -> top-3 and top-5 hit
                    [0, 1, 2, 3, 4],     # label 4: 1st
                    [5, 5, 5, 5, 5],     # label 0: a tie, lowest index first -> top-1 hit, as argmax
                    [1, 2, 3, 4, 5]])    # label 0: last  -> only top-5
    y = np.array([2, 4, 0, 0])
    assert top_k_accuracy(out, y, 1) == 0.5
    assert top_k_accuracy(out, y, 3) == 0.75
    assert top_k_accuracy(out, y, 5) == 1.0
    assert top_k_accuracy(out, y, 1) == accuracy(out, y)
    assert top_k_accuracy(out, None, 3) is None


def test_confusion_matrix_and_recall():
    out = np.eye(3)[[0, 0, 1, 2, 1, 1]]           # predictions 0 0 1 2 1 1
    y = np.array([0, 1, 1, 2, 2, 1])
    cm = confusion_matrix(out, y, 4)
    assert cm.tolist() == [[1, 0, 0, 0], [1, 2, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    assert per_class_recall(cm) == [1.0, 2 / 3, 0.5, None]   # class 3 has no samples


def test_roc_auc_known_and_ties():
    # the classic four-sample example: 3 of 4 (positive, negative) pairs ranked right
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    # a tie between a positive and a negative counts one half: (1 + 0.5 + 1 + 1) / 4
    assert roc_auc([0, 1, 1, 2], [0, 0, 1, 1]) == pytest.approx(0.875)
    assert _auc_ranks(np.array([0, 1, 1, 2.0]), np.array([0, 0, 1, 1])) == pytest.approx(0.875)
    assert roc_auc([3, 2, 1], [0, 0, 1]) == 0.0 and roc_auc([1, 2, 3], [0, 0, 1]) == 1.0
    assert roc_auc([1, 2, 3], [1, 1, 1]) is None      # one class only: no AUC
    rng = np.random.default_rng(3)
    s, y = rng.integers(0, 6, 200).astype(float), rng.integers(0, 2, 200)
    assert _auc_ranks(s, y) == pytest.approx(roc_auc(s, y))   # the numpy fallback = scikit-learn


def test_task_metrics_anomaly_auc_from_reconstruction_error():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(10, 16))
    y = np.array([0, 1] * 5)
    recon = x + np.where(y[:, None] == 1, 1.0, 0.1) * rng.normal(size=(10, 16))   # anomalies reconstruct badly
    np.testing.assert_allclose(reconstruction_scores(x, x + 1), np.ones(10))
    m = task_metrics("anomaly", recon, recon, labels=y, inputs=x, reason="test")
    assert m["auc"] == {"device": 1.0, "int8_host": 1.0, "float": None}
    assert m["anomaly_score"] == "mean squared reconstruction error"
    assert m["error"]["board_vs_float"] is None and m["error"]["float_note"] == "no float model"
    swapped = task_metrics("anomaly", recon, recon, labels=1 - y, inputs=x)
    assert swapped["auc"]["device"] == 0.0
    assert task_metrics("anomaly", recon, recon, inputs=x)["auc"] is None


def test_task_metrics_classifier():
    dev = np.eye(4)[[0, 1, 2, 3, 3, 0]] * 0.9
    host = np.eye(4)[[0, 1, 2, 3, 2, 0]] * 0.9
    flt = host * 0.5 + 0.1
    y = np.array([0, 1, 2, 3, 2, 1])
    m = task_metrics("classify", dev, host, labels=y, float_outputs=flt, top_k=(1, 3, 9), classes=4)
    assert list(m["top_k"]) == ["1", "3"]              # k above the class count is left out
    assert m["top_k"]["1"] == {"device": 4 / 6, "int8_host": 5 / 6, "float": 5 / 6}
    assert m["confusion_matrix"]["device"][2] == [0, 0, 1, 1]
    assert m["per_class_recall"]["device"] == [1.0, 0.5, 0.5, 1.0]
    e = m["error"]["board_vs_int8_host"]
    assert e["rmse"] == pytest.approx(math.sqrt(2 * 0.81 / 24)) and e["values"] == 24
    assert m["error"]["int8_host_vs_float"]["mae"] == pytest.approx(np.mean(np.abs(host - flt)))
    assert "float_note" not in m["error"]
    nolab = task_metrics("classify", dev, host)
    assert nolab["top_k"] is None and nolab["confusion_matrix"] is None
    other = task_metrics("classify", dev, host, labels=y, float_outputs=np.zeros((6, 5)))
    assert other["error"]["board_vs_float"] is None and "do not match" in other["error"]["float_note"]


def test_task_metrics_zero_samples():
    """Ctrl-C before the first answer: a report with no sample, not a crash."""
    for task in ("classify", "anomaly", "regress"):
        m = task_metrics(task, np.zeros((0, 12)), np.zeros((0, 12)), labels=np.zeros(0, int),
                         inputs=np.zeros((0, 12)), float_outputs=np.zeros((0, 12)))
        assert m["samples"] == 0 and m["error"]["board_vs_int8_host"]["rmse"] is None


def test_latency_estimate_in_ms_for_instructions():
    lat = latency([25_000, 50_000, 75_000], "instructions", 25_000_000)
    assert lat["ms_median"] is None                      # not a measured time ...
    assert lat["estimate_ms"]["median"] == pytest.approx(2.0)  # ... an estimate, said as such
    assert lat["estimate_ms"]["max"] == pytest.approx(3.0)
    assert lat["estimate"] == "estimate: 1 instruction per cycle at 25 MHz"
    assert lat["values"] == [25_000, 50_000, 75_000]
    assert "estimate_ms" not in latency([100], "cycles", 25_000_000)
    assert "estimate_ms" not in latency([100], "instructions", None)


def test_report_metrics_on_the_mlperf_graphs(mlperf_tflite):
    """The task detected from the real models, and the metrics of constructed int8 outputs."""
    from tinyedge.graph import load_tflite
    from tinyedge.validation import ValidationInputs, report_metrics

    want = {"ad01": "anomaly", "kws": "classify", "vww": "classify", "resnet": "classify"}
    for name, task in want.items():
        g = load_tflite(mlperf_tflite[name])
        shape = tuple(g.input_tensors[0].shape)
        width = int(np.prod(g.output_tensors[0].shape))
        xq = np.zeros((2, *shape), np.int8)
        ref = np.zeros((2, width), np.int8)
        ref[:, 0] = 100
        dev = ref.copy()
        dev[1, 1] = 1                                    # one step off in one value
        m = report_metrics(g, ValidationInputs(xq, float_note="no float model"), dev, ref, None)
        assert m["task"] == task, name
        s = float(g.output_tensors[0].scale[0])
        assert m["error"]["board_vs_int8_host"]["mae"] == pytest.approx(s / (2 * width), rel=1e-5), name
        assert m["error"]["board_vs_int8_host"]["rmse"] == pytest.approx(s / math.sqrt(2 * width), rel=1e-5)
