"""Small recurrent test models (Keras LSTM / GRU / SimpleRNN), in tf_keras and Keras 3.

Each builder makes a model with the Keras it names; `recurrent_tflite(name)` saves it (.h5 for
tf_keras, .keras for Keras 3), converts it to full int8 through tinyedge's own conversion path
(`tinyedge.conversion.load_model` + `convert_loaded`, what `tinyedge convert` runs) with seeded
calibration data, and caches the .tflite bytes on disk keyed by a hash of the builder's source,
so reruns skip TensorFlow entirely.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from aot_zoo import _cache_dir  # noqa: E402


def _k2():
    import tf_keras

    return tf_keras


def _k3():
    import keras

    return keras


def build_k2_lstm_stacked(k):
    """tf_keras: two stacked LSTMs, both returning sequences (7 steps, 5 features, 6 then 3 units)."""
    L = k.layers
    x = inp = L.Input((7, 5))
    x = L.LSTM(6, return_sequences=True)(x)
    x = L.LSTM(3, return_sequences=True)(x)
    return k.Model(inp, x)


def build_k2_lstm_last(k):
    """tf_keras: one LSTM returning its last output only (4 steps, 9 features, 12 units)."""
    L = k.layers
    x = inp = L.Input((4, 9))
    x = L.LSTM(12)(x)
    return k.Model(inp, x)


def build_k3_lstm_stacked(k):
    """Keras 3: two stacked LSTMs returning sequences (3 steps, 2 features, 16 then 5 units)."""
    L = k.layers
    x = inp = L.Input((3, 2))
    x = L.LSTM(16, return_sequences=True)(x)
    x = L.LSTM(5, return_sequences=True)(x)
    return k.Model(inp, x)


def build_k3_lstm_last(k):
    """Keras 3: a sequence LSTM, then one returning its last output (10 steps, 4 features, 8 / 4 units)."""
    L = k.layers
    x = inp = L.Input((10, 4))
    x = L.LSTM(8, return_sequences=True)(x)
    x = L.LSTM(4)(x)
    return k.Model(inp, x)


# name -> (keras, builder)
BUILDERS = {
    "k2_lstm_stacked": ("tf_keras", build_k2_lstm_stacked),
    "k2_lstm_last": ("tf_keras", build_k2_lstm_last),
    "k3_lstm_stacked": ("keras3", build_k3_lstm_stacked),
    "k3_lstm_last": ("keras3", build_k3_lstm_last),
}


def _convert(name: str) -> bytes:
    import numpy as np

    from tinyedge.conversion import convert_loaded, load_model

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    kind, build = BUILDERS[name]
    k = _k2() if kind == "tf_keras" else _k3()
    k.utils.set_random_seed(1234)
    model = build(k)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / (f"{name}.h5" if kind == "tf_keras" else f"{name}.keras")
        model.save(path)
        loaded = load_model(path)
        shape = tuple(int(v) for v in model.inputs[0].shape[1:])
        calib = np.random.default_rng(0).normal(0.0, 1.0, size=(32, *shape)).astype(np.float32)
        return convert_loaded(loaded, calib)


def recurrent_key(name: str) -> str:
    src = inspect.getsource(BUILDERS[name][1]) + inspect.getsource(_convert) + BUILDERS[name][0]
    return hashlib.sha256(src.encode()).hexdigest()[:16]


def recurrent_tflite(name: str) -> Path:
    """Path of the cached .tflite for recurrent builder `name`, converting it on a cache miss.

    The conversion runs in a process of its own: TF 2.21's converter segfaults on some
    recurrent graphs (see EXPECTED in test_aot_recurrent), which must fail one test, not kill
    the test session."""
    path = _cache_dir() / f"rnn-{name}-{recurrent_key(name)}.tflite"
    if path.exists():
        return path
    r = subprocess.run([sys.executable, str(Path(__file__).resolve()), name, str(path)], capture_output=True,
                       text=True, timeout=600)
    if r.returncode != 0 or not path.exists():
        raise RuntimeError(f"converting {name} failed (exit {r.returncode}): {r.stderr.strip()[-1500:]}")
    return path


def _write(name: str, path: Path) -> None:
    data = _convert(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


if __name__ == "__main__":
    _write(sys.argv[1], Path(sys.argv[2]))
