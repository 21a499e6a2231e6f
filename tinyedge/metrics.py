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
    return arr.reshape(arr.shape[0], int(np.prod(arr.shape[1:]))).astype(np.int32)


def agreement(device_outputs, reference_outputs) -> Agreement:
    """Compare int8 outputs sample by sample: exact equality, top-1 class, largest step difference."""
    dev = _flat(device_outputs)
    ref = _flat(reference_outputs)
    if dev.shape != ref.shape:
        raise ValueError(f"device outputs {dev.shape} and reference outputs {ref.shape} differ in shape")
    n = dev.shape[0]
    if n == 0:
        return Agreement(0, float("nan"), float("nan"), 0, None)
    exact = np.all(dev == ref, axis=1)
    mism = np.flatnonzero(~exact)
    return Agreement(
        samples=n,
        bit_exact_rate=float(exact.mean()),
        top1_agreement=float(np.mean(np.argmax(dev, axis=1) == np.argmax(ref, axis=1))),
        max_abs_diff=int(np.max(np.abs(dev - ref))),
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
    "instructions" (no time: ms is None).
    """
    c = np.asarray(list(counts), dtype=np.float64)
    if c.size == 0:
        return {"unit": unit, "min": None, "median": None, "p95": None, "max": None, "ms_median": None,
                "count": 0}
    med = float(np.median(c))
    if unit == "cycles" and clock_hz:
        ms = med / clock_hz * 1e3
    elif unit == "ns":
        ms = med / 1e6
    elif unit == "us":
        ms = med / 1e3
    else:
        ms = None
    return {
        "unit": unit,
        "min": int(c.min()),
        "median": med,
        "p95": float(np.percentile(c, 95)),
        "max": int(c.max()),
        "ms_median": ms,
        "count": int(c.size),
    }
