"""Small recurrent test models (Keras LSTM / GRU / SimpleRNN), in tf_keras and Keras 3.

Each builder makes a model with the Keras it names; `recurrent_tflite(name)` saves it (.h5 for
tf_keras, .keras for Keras 3), converts it to full int8 through tinyedge's own conversion path
(tf_keras: `tinyedge.conversion.load_model` + `convert_loaded`, what `tinyedge convert`
runs; Keras 3: the aot zoo's `from_keras_model`, see `_convert`) with seeded calibration data, and caches the .tflite bytes on disk keyed by a hash of the builder's source,
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


def build_k2_gru_unrolled(k):
    """tf_keras: GRU unrolled over 4 steps (3 features, 5 units), returning sequences."""
    L = k.layers
    x = inp = L.Input((4, 3))
    x = L.GRU(5, return_sequences=True, unroll=True)(x)
    return k.Model(inp, x)


def build_k2_rnn_lstm_unrolled(k):
    """tf_keras: SimpleRNN then LSTM, both unrolled (5 steps, 4 features, 6 / 3 units), last output."""
    L = k.layers
    x = inp = L.Input((5, 4))
    x = L.SimpleRNN(6, return_sequences=True, unroll=True)(x)
    x = L.LSTM(3, unroll=True)(x)
    return k.Model(inp, x)


def build_k3_lstm_stacked(k):
    """Keras 3: an unrolled SimpleRNN under an unrolled LSTM (5 steps, 4 features, 6 / 3 units).

    (Keras 3's LSTM / GRU / SimpleRNN with unroll=False convert to a WHILE loop, whose int8
    quantization crashes TF 2.21's converter (SIGSEGV), return_sequences or not: in Keras 3 a
    recurrent layer must be unrolled.  Two stacked unrolled LSTMs of 7 and 16 units kept the
    second layer's first gate split in float, see build_k3_gru_unrolled.)"""
    L = k.layers
    x = inp = L.Input((5, 4), batch_size=1)
    x = L.SimpleRNN(6, return_sequences=True, unroll=True)(x)
    x = L.LSTM(3, unroll=True)(x)
    return k.Model(inp, x)


def build_k3_gru_unrolled(k):
    """Keras 3: GRU unrolled over 4 steps (5 features, 6 units), returning sequences.

    (Some unrolled GRUs keep the first step's gate split in float, between a DEQUANTIZE and a
    QUANTIZE: with return_sequences=False always here, in Keras 3 and tf_keras, and a GRU of 4
    units over 5 steps of 3 features with these weights.  tinyedge's conversion refuses such a
    model, naming the float op.)"""
    L = k.layers
    x = inp = L.Input((4, 5), batch_size=1)
    x = L.GRU(6, return_sequences=True, unroll=True)(x)
    return k.Model(inp, x)


# name -> (keras, builder)
BUILDERS = {
    "k2_lstm_stacked": ("tf_keras", build_k2_lstm_stacked),
    "k2_lstm_last": ("tf_keras", build_k2_lstm_last),
    "k2_gru_unrolled": ("tf_keras", build_k2_gru_unrolled),
    "k2_rnn_lstm_unrolled": ("tf_keras", build_k2_rnn_lstm_unrolled),
    "k3_lstm_stacked": ("keras3", build_k3_lstm_stacked),
    "k3_gru_unrolled": ("keras3", build_k3_gru_unrolled),
}


def _convert(name: str) -> bytes:
    """tf_keras: tinyedge's conversion (save .h5, load_model, convert_loaded: a concrete
    function).  Keras 3: TFLiteConverter.from_keras_model on the batch-1 model, as the aot zoo
    does."""
    import numpy as np

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    kind, build = BUILDERS[name]
    k = _k2() if kind == "tf_keras" else _k3()
    k.utils.set_random_seed(1234)
    model = build(k)
    if kind == "keras3":
        import tensorflow as tf
        from aot_zoo import _convert as zoo_convert

        # an unrolled layer: the older quantizer, as tinyedge's conversion picks (TF 2.21's MLIR
        # quantizer leaves an unrolled GRU's gate split in float on some calls, not others)
        unrolled = any(getattr(layer, "unroll", False) for layer in model.layers)
        return zoo_convert(tf, np, model, new_quantizer=not unrolled)
    from tinyedge.conversion import convert_loaded, load_model

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"{name}.h5"
        model.save(path)
        loaded = load_model(path)
        shape = tuple(int(v) for v in model.inputs[0].shape[1:])
        calib = np.random.default_rng(0).normal(0.0, 1.0, size=(32, *shape)).astype(np.float32)
        return convert_loaded(loaded, calib)


def recurrent_key(name: str) -> str:
    from tinyedge import conversion  # its quantizer choice shapes the converted model

    src = (inspect.getsource(BUILDERS[name][1]) + inspect.getsource(_convert) + BUILDERS[name][0]
           + inspect.getsource(conversion.convert_loaded))
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
