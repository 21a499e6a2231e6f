"""Agreement, accuracy and latency statistics for validation reports.

Pure numpy, no I/O: `validate` feeds it the board's and the reference's int8
outputs, the labels and the counter values, and puts what it returns into
report.json.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Agreement:
    samples: int
    bit_exact_rate: float
    top1_agreement: float
    max_abs_diff: int
    first_mismatch: int | None  # index of the first sample whose outputs differ

    def to_dict(self) -> dict:
        return {
            "bit_exact_rate": self.bit_exact_rate,
            "top1_agreement": self.top1_agreement,
            "max_abs_diff": self.max_abs_diff,
            "first_mismatch": self.first_mismatch,
        }


def _flat(outputs) -> np.ndarray:
    arr = np.asarray(outputs)
    arr = arr.reshape(arr.shape[0], int(np.prod(arr.shape[1:])))
    return arr.astype(np.float32) if arr.dtype.kind == "f" else arr.astype(np.int32)


def agreement(device_outputs, reference_outputs) -> Agreement:
    """Compare outputs sample by sample: exact equality, top-1 class, largest difference (int8 steps;
    float32 outputs, of a model with float output: bit for bit, and the difference in value)."""
    dev = _flat(device_outputs)
    ref = _flat(reference_outputs)
    if dev.shape != ref.shape:
        raise ValueError(f"device outputs {dev.shape} and reference outputs {ref.shape} differ in shape")
    n = dev.shape[0]
    if n == 0:
        return Agreement(0, float("nan"), float("nan"), 0, None)
    floating = np.asarray(device_outputs).dtype.kind == "f" or np.asarray(reference_outputs).dtype.kind == "f"
    if floating:
        d32 = np.asarray(dev, np.float32)
        r32 = np.asarray(ref, np.float32)
        exact = np.all(d32.view(np.uint32) == r32.view(np.uint32), axis=1)
        diff = float(np.max(np.abs(d32.astype(np.float64) - r32.astype(np.float64))))
    else:
        exact = np.all(dev == ref, axis=1)
        diff = int(np.max(np.abs(dev - ref)))
    mism = np.flatnonzero(~exact)
    return Agreement(
        samples=n,
        bit_exact_rate=float(exact.mean()),
        top1_agreement=float(np.mean(np.argmax(dev, axis=1) == np.argmax(ref, axis=1))),
        max_abs_diff=diff,
        first_mismatch=int(mism[0]) if mism.size else None,
    )


def accuracy(outputs, labels) -> float | None:
    """Top-1 accuracy of `outputs` (one row per sample) against integer labels; None without labels.

    Arg-max on int8 outputs equals arg-max on their dequantized values, since
    dequantization is monotonic (positive scale).
    """
    if labels is None:
        return None
    out = np.asarray(outputs)
    labels = np.asarray(labels).reshape(-1)
    n = min(len(labels), out.shape[0])
    if n == 0:
        return None
    pred = np.argmax(out[:n].reshape(n, -1), axis=1)
    return float(np.mean(pred == labels[:n]))


def latency(counts, unit: str, clock_hz: int | None) -> dict:
    """min / median / p95 / max of the board's counter, in its unit, and the median in ms where it is a time.

    `unit` is "cycles" (converted at `clock_hz`), "ns" / "us" (converted directly) or
    "instructions" (no measured time: ms_median is None; with `clock_hz`, `estimate_ms` gives the
    time at one instruction per cycle, labelled by `estimate`).  `values` keeps every count.
    """
    c = np.asarray(list(counts), dtype=np.float64)
    if c.size == 0:
        return {"unit": unit, "min": None, "median": None, "p95": None, "max": None, "ms_median": None,
                "count": 0, "values": []}
    med = float(np.median(c))
    if unit == "cycles" and clock_hz:
        ms = med / clock_hz * 1e3
    elif unit == "ns":
        ms = med / 1e6
    elif unit == "us":
        ms = med / 1e3
    else:
        ms = None
    r = {
        "unit": unit,
        "min": int(c.min()),
        "median": med,
        "p95": float(np.percentile(c, 95)),
        "max": int(c.max()),
        "ms_median": ms,
        "count": int(c.size),
    }
    if unit == "instructions" and clock_hz:
        # QEMU -icount counts instructions, not time: a time only under an assumption, said as such.
        per_ms = clock_hz / 1e3
        r["estimate_ms"] = {k: r[k] / per_ms for k in ("min", "median", "p95", "max")}
        r["estimate"] = f"estimate: 1 instruction per cycle at {clock_hz / 1e6:g} MHz"
    r["values"] = [int(v) for v in c]
    return r


# --- task-aware metrics: classifiers, autoencoders, regressors -------------------------------

TASKS = ("classify", "anomaly", "regress")
TOP_K = (1, 3, 5)


def detect_task(input_shape, output_shape, *, last_op: str | None = None, labels=None,
                override: str | None = None) -> tuple[str, str]:
    """What kind of model this is, and why: ("classify" | "anomaly" | "regress", reason).

    An output of the input's shape is a reconstruction (an autoencoder: anomaly detection by its
    reconstruction error); a vector output after a softmax, or with integer labels given, is a
    classifier; anything else is a regressor.  `override` (the user's --task) wins.
    """
    if override is not None:
        if override not in TASKS:
            raise ValueError(f"task {override!r} is not one of {', '.join(TASKS)}")
        return override, "given (--task)"
    ins = [int(d) for d in input_shape][1:] if len(input_shape) > 1 else [int(d) for d in input_shape]
    outs = [int(d) for d in output_shape][1:] if len(output_shape) > 1 else [int(d) for d in output_shape]
    if ins == outs and int(np.prod(outs)) > 1:
        return "anomaly", "the output has the input's shape (a reconstruction)"
    width = int(np.prod(outs)) if outs else 1
    vector = width > 1 and sum(1 for d in outs if d > 1) == 1
    if vector and last_op == "SOFTMAX":
        return "classify", "a vector output after SOFTMAX"
    if vector and labels is not None:
        return "classify", "a vector output and integer labels"
    return "regress", "neither a reconstruction nor a classifier's output"


def dequantize(q, scale, zero_point) -> np.ndarray:
    """Float values of int8 outputs (per-tensor quantization: one scale and zero point)."""
    s = float(np.asarray(scale).reshape(-1)[0])
    z = float(np.asarray(zero_point).reshape(-1)[0])
    return (np.asarray(q, dtype=np.float64) - z) * s


def error_metrics(measured, reference) -> dict:
    """RMSE, MAE, cosine similarity and relative L2 error of `measured` against `reference`.

    Both are flattened over all samples and elements.  cosine is None when either side is all
    zeros; rel_l2 = ||measured - reference|| / ||reference|| is None when the reference is zero.
    """
    a = np.asarray(measured, dtype=np.float64).reshape(-1)
    b = np.asarray(reference, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"outputs of {a.size} and {b.size} values cannot be compared")
    if a.size == 0:
        return {"rmse": None, "mae": None, "cosine": None, "rel_l2": None, "values": 0}
    d = a - b
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return {
        "rmse": float(np.sqrt(np.mean(d * d))),
        "mae": float(np.mean(np.abs(d))),
        "cosine": float(np.dot(a, b) / (na * nb)) if na > 0 and nb > 0 else None,
        "rel_l2": float(np.linalg.norm(d) / nb) if nb > 0 else None,
        "values": int(a.size),
    }


def top_k_accuracy(outputs, labels, k: int) -> float | None:
    """Share of samples whose label is among the k largest outputs (ties: the lower index first)."""
    if labels is None:
        return None
    out = np.asarray(outputs)
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    n = min(len(labels), out.shape[0])
    if n == 0:
        return None
    scores = out[:n].reshape(n, -1).astype(np.float64)
    # a stable sort of the negated scores puts equal scores in index order, as argmax does
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == labels[:n, None], axis=1)))


def confusion_matrix(outputs, labels, classes: int) -> np.ndarray:
    """classes x classes counts: row = true label, column = predicted (arg-max) class."""
    out = np.asarray(outputs)
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    n = min(len(labels), out.shape[0])
    pred = np.argmax(out[:n].reshape(n, -1), axis=1)
    cm = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(cm, (labels[:n], pred), 1)
    return cm


def per_class_recall(cm) -> list[float | None]:
    """Recall of each class (diagonal / row sum); None for a class with no samples."""
    cm = np.asarray(cm)
    rows = cm.sum(axis=1)
    return [float(cm[i, i] / rows[i]) if rows[i] else None for i in range(cm.shape[0])]


def _auc_ranks(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic on average ranks (ties count one half)."""
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    ranks = np.empty(len(s), dtype=np.float64)
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[i:j + 1] = (i + j) / 2 + 1
        i = j + 1
    r = np.empty_like(ranks)
    r[order] = ranks
    pos = labels == 1
    n1, n0 = int(pos.sum()), int((~pos).sum())
    return float((r[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def roc_auc(scores, labels) -> float | None:
    """ROC AUC of anomaly `scores` (higher = more anomalous) against binary labels (1 = anomaly).

    scikit-learn's `roc_auc_score` when it is installed, else the same statistic in numpy;
    None when the labels are not both classes.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels).reshape(-1)
    n = min(len(s), len(y))
    s, y = s[:n], (y[:n] != 0).astype(np.int64)
    if n == 0 or y.min() == y.max():
        return None
    try:
        from sklearn.metrics import roc_auc_score
    except ImportError:
        return _auc_ranks(s, y)
    return float(roc_auc_score(y, s))


def _rows(a) -> np.ndarray:
    """One row per sample (float64), also for zero samples."""
    a = np.asarray(a, dtype=np.float64)
    return a.reshape(a.shape[0], int(np.prod(a.shape[1:])))


def reconstruction_scores(inputs, outputs) -> np.ndarray:
    """Anomaly score of each sample: the mean squared error of its reconstruction (MLPerf ad01)."""
    return np.mean((_rows(inputs) - _rows(outputs)) ** 2, axis=1)


def task_metrics(task: str, device, host, *, labels=None, float_outputs=None, inputs=None,
                 top_k: tuple[int, ...] | None = None, classes: int = 0, reason: str = "",
                 float_note: str | None = None) -> dict:
    """The `metrics` section of a report, on dequantized outputs (one row per sample).

    `device` and `host` are the board's and the int8 host reference's dequantized outputs,
    `float_outputs` the float model's (None when there is no float model: `float_note` says why),
    `inputs` the float inputs (the reconstruction target of an autoencoder).
    """
    dev = _rows(device)
    n = dev.shape[0]
    hst = _rows(host)
    flt = None
    if float_outputs is not None:
        flt = _rows(np.asarray(float_outputs)[:n])
        if flt.shape != dev.shape:
            float_note = (f"the float model's outputs ({flt.shape[1]} values a sample) do not match the "
                          f"int8 model's ({dev.shape[1]}): not compared")
            flt = None
    m: dict = {"task": task, "task_reason": reason, "samples": n}
    m["error"] = {
        "board_vs_int8_host": error_metrics(dev, hst),
        "board_vs_float": error_metrics(dev, flt) if flt is not None else None,
        "int8_host_vs_float": error_metrics(hst, flt) if flt is not None else None,
    }
    if flt is None:
        m["error"]["float_note"] = float_note or "no float model"
    has_labels = labels is not None and n > 0
    lab = np.asarray(labels).reshape(-1)[:n] if has_labels else None
    if task == "classify":
        classes = classes or dev.shape[1]
        m["classes"] = classes
        ks = [k for k in (top_k or TOP_K) if 1 <= k <= classes]
        m["top_k"] = {str(k): {"device": top_k_accuracy(dev, lab, k), "int8_host": top_k_accuracy(hst, lab, k),
                               "float": top_k_accuracy(flt, lab, k) if flt is not None else None}
                      for k in ks} if has_labels else None
        if has_labels:
            cm = confusion_matrix(dev, lab, classes)
            m["confusion_matrix"] = {"rows": "true label", "columns": "board's arg-max", "device": cm.tolist()}
            m["per_class_recall"] = {"device": per_class_recall(cm),
                                     "int8_host": per_class_recall(confusion_matrix(hst, lab, classes))}
        else:
            m["confusion_matrix"] = None
            m["per_class_recall"] = None
    elif task == "anomaly":
        m["anomaly_score"] = "mean squared reconstruction error"
        auc = None
        if has_labels and inputs is not None:
            x = _rows(np.asarray(inputs)[:n])
            auc = {"device": roc_auc(reconstruction_scores(x, dev), lab),
                   "int8_host": roc_auc(reconstruction_scores(x, hst), lab),
                   "float": roc_auc(reconstruction_scores(x, flt), lab) if flt is not None else None}
        m["auc"] = auc
        if auc is None:
            m["auc_note"] = "no labels: AUC not measured" if not has_labels else "no inputs to score against"
    return m
