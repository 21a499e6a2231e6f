"""Calibration and test data: `.npz` with `x` (float inputs) and optional `y` (labels), or `.npy` of `x`.

`load_data` checks the layout against the model's input shape (given with or
without the batch dimension) so that a wrong file fails with one clear line
instead of a TensorFlow shape error deep inside a conversion.
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import InputFileError

log = logging.getLogger(__name__)


def _fmt(shape) -> str:
    return "x".join(str(d) for d in shape) if shape else "scalar"


def _kind(a: np.ndarray) -> str:
    return {"U": "strings", "S": "byte strings", "O": "Python objects", "b": "booleans"}.get(a.dtype.kind,
                                                                                          f"{a.dtype} values")


def _examples(a: np.ndarray, n: int = 3) -> str:
    vals = list(dict.fromkeys(a.reshape(-1).tolist()))
    shown = ", ".join(repr(v.decode() if isinstance(v, bytes) else v) for v in vals[:n])
    return shown + (f" and {len(vals) - n} more" if len(vals) > n else "")


def check_labels(y: np.ndarray | None, n_classes: int, path=None) -> None:
    """Raise InputFileError when a label is outside the model's classes 0..n_classes-1 (naming the values)."""
    if y is None or n_classes < 1:
        return
    y = np.asarray(y)
    bad = y[(y < 0) | (y >= n_classes)]
    if bad.size:
        where = f"{path}: " if path is not None else ""
        raise InputFileError(
            f"{where}{bad.size} label(s) of y are outside the model's {n_classes} classes 0..{n_classes - 1} "
            f"({_examples(np.unique(bad))})", path=path,
            hint="labels must be class numbers of the model's output (0-based)")


def _read(path: Path):
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".npy"):
        raise InputFileError(f"{path} is not a .npz or .npy file", path=path,
                             hint="save the inputs with numpy: np.savez(path, x=x, y=y)")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise InputFileError(f"cannot read {path} as numpy data ({e})", path=path,
                             hint="save the inputs with numpy: np.savez(path, x=x, y=y)") from None
    if isinstance(loaded, np.ndarray):
        return loaded, None
    with loaded:
        if "x" not in loaded.files:
            raise InputFileError(f"{path} has no array 'x' (it holds: {', '.join(loaded.files) or 'nothing'})",
                                 path=path, hint="save the inputs as x: np.savez(path, x=x, y=y)")
        x = loaded["x"]
        y = loaded["y"] if "y" in loaded.files else None
    return x, y


def load_data(path: os.PathLike | str, input_shape: Sequence[int] | None = None,
              samples: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Load inputs `x` (float32, with a leading sample axis) and labels `y` (int64 or None).

    `input_shape` is the model's input shape with or without the batch
    dimension (a leading 1 or None/-1 is taken as the batch).  A single
    sample without the sample axis is accepted and gets one.  `samples` caps
    the number of samples returned (the first N).
    """
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise InputFileError(f"{path} does not exist", path=path, hint="check the path of the data file")
    if path.is_dir():
        raise InputFileError(f"{path} is a folder, not a .npz or .npy file", path=path)
    x, y = _read(path)
    if x.dtype.kind not in "fiub":
        raise InputFileError(f"{path}: x has dtype {x.dtype}, expected float numbers", path=path)
    x = np.asarray(x, dtype=np.float32)
    if input_shape is not None:
        want = [int(d) if d is not None and int(d) > 0 else -1 for d in input_shape]
        if len(want) >= 1 and want[0] in (1, -1):
            want = want[1:]
        if tuple(x.shape) == tuple(want) and -1 not in want:
            x = x[None]
        if x.ndim != len(want) + 1 or any(w != -1 and w != d for w, d in zip(want, x.shape[1:], strict=True)):
            raise InputFileError(
                f"{path}: x has shape {_fmt(x.shape)} but the model takes samples of shape "
                f"{_fmt(['?' if w == -1 else w for w in want])} (expected N x {_fmt(want)})",
                path=path, hint="save x in the model's input layout, one sample per row")
    if x.ndim == 0 or x.shape[0] == 0:
        raise InputFileError(f"{path}: x holds no samples", path=path)
    if not np.all(np.isfinite(x)):
        raise InputFileError(f"{path}: x contains NaN or infinite values", path=path)
    if y is not None:
        y = np.asarray(y)
        if y.dtype.kind not in "iubf":
            raise InputFileError(
                f"{path}: y holds {_kind(y)} ({_examples(y)}); labels must be integer class numbers",
                path=path, hint="map the class names to 0..N-1 and save y as integers")
        if y.ndim == 2 and y.shape[1] > 1:  # one-hot labels
            y = np.argmax(y, axis=1)
        y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
        if y.ndim != 1 or y.shape[0] != x.shape[0]:
            raise InputFileError(
                f"{path}: y has shape {_fmt(y.shape)} but x holds {x.shape[0]} samples",
                path=path, hint="y must hold one integer label per sample of x")
        if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
            raise InputFileError(f"{path}: y holds NaN or infinite values; labels must be class numbers",
                                 path=path)
        if y.dtype.kind == "f" and not np.all(np.mod(y, 1) == 0):
            bad = y[np.mod(y, 1) != 0]
            raise InputFileError(f"{path}: y holds non-integer values ({_examples(bad)}); labels must be "
                                 "class numbers", path=path)
        y = y.astype(np.int64)
    if samples is not None:
        if samples < 1:
            raise InputFileError(f"samples must be at least 1 (got {samples})")
        x = x[:samples]
        y = y[:samples] if y is not None else None
    log.debug("loaded %s: x %s, y %s", path, x.shape, None if y is None else y.shape)
    return x, y
