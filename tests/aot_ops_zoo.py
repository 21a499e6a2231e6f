"""Small full-int8 test models for the aot engine's layout, resize, math and transposed-conv ops.

Each builder is a TensorFlow function on one float input (TensorFlow ops, so every option of an op
is reachable: strided-slice masks, resize align_corners / half_pixel_centers, split sizes, ...);
the many branches of a model are flattened and concatenated into its one output, so one build and
one boot check many ops.  `ops_zoo_tflite(name)` converts a builder once (all missing ones in one
TensorFlow session) and caches the .tflite bytes keyed by a hash of this file.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

SHAPES = {"tile": (1, 3, 4, 2), "layout": (1, 5, 6, 4), "math": (1, 5, 6, 4), "resize": (1, 5, 6, 4),
          "convs": (1, 5, 6, 4), "matmul": (1, 5, 6, 4), "index64": (1, 5, 6, 4), "float_io": (1, 5, 6, 4),
          "islands": (1, 5, 6, 4), "embedding": (1, 12), "all": (1, 5, 6, 4)}


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("TINYEDGE_TEST_CACHE", Path(base) / "tinyedge" / "aot-zoo"))


def _flat_concat(tf, parts):
    """One flat output; concatenations of at most 8 inputs (TFLite Micro's CONCATENATION takes 10)."""
    flat = [tf.reshape(p, (1, -1)) for p in parts]
    while len(flat) > 8:
        flat = [tf.concat(flat[i:i + 8], axis=1) if len(flat[i:i + 8]) > 1 else flat[i]
                for i in range(0, len(flat), 8)]
    return tf.concat(flat, axis=1)


def _w(tf, np, seed, shape):
    return tf.constant(np.random.default_rng(seed).normal(0, 0.4, size=shape).astype(np.float32))


def build_layout(tf, np):
    """TRANSPOSE, STRIDED_SLICE (masks, negative stride, shrink axis), SLICE, SPLIT, SPLIT_V, UNPACK,
    PACK, GATHER (SQUEEZE / EXPAND_DIMS: the converter makes them RESHAPE)."""
    def f(x):
        parts = [tf.transpose(x, [0, 2, 1, 3]),
                 x[:, 1:5:2, ::-1, 1:3],
                 x[:, -2:, 3, :],                            # shrink axis 2
                 tf.slice(x, [0, 1, 2, 0], [1, 3, 4, 4])]
        a, b = tf.split(x, 2, axis=3)
        c, d, e = tf.split(x, [2, 1, 3], axis=2)
        u = tf.unstack(x, axis=1)
        parts += [b, a, e, c, d, *u[::-1], tf.stack([u[1], u[3]], axis=2),
                  tf.gather(x, [3, 0, 5, 5], axis=2), tf.expand_dims(tf.squeeze(x[:, 2:3], axis=1), 2)]
        return _flat_concat(tf, parts)
    return f


def build_math(tf, np):
    """SUB (same shape, broadcast, relu), SQUARED_DIFFERENCE, MAXIMUM, MINIMUM, REDUCE_MAX, SUM, RSQRT,
    L2_NORMALIZATION (PRELU: the layer table's Keras PReLU rows); ELU, which the converter keeps float
    between a DEQUANTIZE and a QUANTIZE (tinyedge/aot/islands.py)."""
    w1, w2 = _w(tf, np, 1, (1, 1, 4, 4)), _w(tf, np, 2, (1, 1, 4, 4))

    def f(x):
        y1 = tf.nn.conv2d(x, w1, 1, "SAME")
        y2 = tf.nn.conv2d(x, w2, 1, "SAME")
        m = tf.reduce_mean(y2, axis=[1, 2], keepdims=True)
        parts = [y1 - y2, tf.nn.relu(y1 - m), tf.math.squared_difference(y1, y2), tf.maximum(y1, y2),
                 tf.minimum(y1, x),
                 tf.reduce_max(y1, axis=[1, 2]), tf.reduce_max(y2, axis=3, keepdims=True),
                 tf.reduce_sum(y1, axis=[2]), tf.reduce_sum(y2, axis=[1, 3]), tf.math.rsqrt(tf.nn.relu(y1) + 0.25),
                 tf.math.l2_normalize(y2, axis=-1), tf.nn.elu(y1)]   # ELU: a float island
        return _flat_concat(tf, parts)
    return f


def build_resize(tf, np):
    """RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR: up and down, align_corners, half_pixel_centers."""
    v1 = tf.compat.v1.image

    def f(x):
        parts = [v1.resize_bilinear(x, (7, 9)), v1.resize_bilinear(x, (9, 7), align_corners=True),
                 v1.resize_bilinear(x, (8, 10), half_pixel_centers=True), v1.resize_bilinear(x, (3, 2)),
                 v1.resize_nearest_neighbor(x, (7, 9)), v1.resize_nearest_neighbor(x, (9, 7), align_corners=True),
                 v1.resize_nearest_neighbor(x, (8, 11), half_pixel_centers=True),
                 v1.resize_nearest_neighbor(x, (3, 2), half_pixel_centers=True)]
        return _flat_concat(tf, parts)
    return f


def build_convs(tf, np):
    """TRANSPOSE_CONV (stride 2 SAME, stride 1 VALID, non-square, bias + relu) and grouped CONV_2D."""
    k1, k2, k3 = _w(tf, np, 3, (3, 3, 6, 4)), _w(tf, np, 4, (2, 3, 5, 4)), _w(tf, np, 5, (3, 3, 2, 6))
    b1 = _w(tf, np, 6, (6,))

    def f(x):
        t1 = tf.nn.relu(tf.nn.conv2d_transpose(x, k1, (1, 10, 12, 6), 2, "SAME") + b1)
        t2 = tf.nn.conv2d_transpose(x, k2, (1, 6, 8, 5), 1, "VALID")
        t3 = tf.nn.conv2d_transpose(x, k2, (1, 9, 11, 5), 2, "VALID")
        g = tf.nn.conv2d(x, k3, 1, "SAME")                       # 2 groups of 2 input channels
        g2 = tf.nn.conv2d(x, k3, 2, "VALID", dilations=1)
        return _flat_concat(tf, [t1, t2, t3, g, g2])
    return f


def build_matmul(tf, np):
    """BATCH_MATMUL of two activations (plain, adj_x, adj_y, both, batch broadcast, attention-like
    softmax(q k^T) v) and with a constant right-hand side; ARG_MAX (int32) feeding GATHER's indices
    on several axes (GATHER of run-time indices)."""
    w1, w2 = _w(tf, np, 7, (1, 1, 4, 4)), _w(tf, np, 8, (1, 1, 4, 4))
    c3 = _w(tf, np, 9, (5, 4, 3))

    def f(x):
        y = tf.nn.conv2d(x, w1, 1, "SAME")
        z = tf.nn.conv2d(x, w2, 1, "SAME")
        a, b = tf.reshape(x, (5, 6, 4)), tf.reshape(y, (5, 6, 4))
        parts = [tf.matmul(tf.reshape(x, (1, 5, 24)), tf.reshape(y, (1, 5, 24)), transpose_b=True),
                 tf.matmul(a, b, transpose_a=True),
                 tf.matmul(a, tf.reshape(z, (5, 4, 6))),
                 tf.matmul(tf.reshape(z, (5, 4, 6)), b, transpose_a=True, transpose_b=True),
                 tf.matmul(a, tf.reduce_mean(tf.reshape(z, (5, 4, 6)), axis=0, keepdims=True)),   # broadcast
                 tf.matmul(a, c3)]
        q, k, v = tf.reshape(x, (1, 30, 4)), tf.reshape(y, (1, 30, 4)), tf.reshape(z, (1, 30, 4))
        parts.append(tf.matmul(tf.nn.softmax(tf.matmul(q, k, transpose_b=True) * 0.5), v))
        parts += [tf.gather(tf.reshape(x, (30, 4)), tf.argmax(tf.reshape(y, (30, 4)), axis=-1,
                                                            output_type=tf.int32), axis=1),
                  tf.gather(tf.reshape(z, (5, 24)), tf.argmax(tf.reshape(y, (5, 24)), axis=0,
                                                            output_type=tf.int32), axis=0),
                  tf.gather(x, tf.argmax(tf.reshape(z, (20, 6)), axis=1, output_type=tf.int32), axis=2)]
        return _flat_concat(tf, parts)
    return f


def build_index64(tf, np):
    """ARG_MAX with int64 output (tf.argmax's default) into GATHER's int64 indices: TFLite Micro's
    ARG_MAX and GATHER take int32 only, so this model's reference is TensorFlow Lite's interpreter
    (and moves bytes only: TensorFlow Lite's int8 arithmetic kernels are not TFLite Micro's)."""
    def f(x):
        return _flat_concat(tf, [tf.gather(tf.reshape(x, (30, 4)), tf.argmax(tf.reshape(x, (4, 30)), axis=0),
                                           axis=1),
                                 tf.gather(tf.reshape(x, (24, 5)), tf.argmax(tf.reshape(x, (5, 24)), axis=0))])
    return f


def build_float_io(tf, np):
    """Converted with float32 input and output: QUANTIZE (float32 -> int8) at the input, DEQUANTIZE
    (int8 -> float32) at the output, int8 ops between."""
    w1 = _w(tf, np, 11, (3, 3, 4, 6))

    def f(x):
        y = tf.nn.relu(tf.nn.conv2d(x, w1, 1, "SAME"))
        return _flat_concat(tf, [y, tf.reduce_mean(y, axis=[1, 2])])
    return f


def build_islands(tf, np):
    """Float islands of every kind tinyedge/aot/islands.py folds: converted with SPLIT, NEG, TRANSPOSE
    and STRIDED_SLICE denylisted from quantization (DENYLIST), so they stay float between DEQUANTIZE and
    QUANTIZE as the converter leaves an unrolled GRU's gate SPLIT on some runs: a float SPLIT, NEG
    after it, ELU into TRANSPOSE and into NEG into STRIDED_SLICE (one DEQUANTIZE, three QUANTIZEs)."""
    w1 = _w(tf, np, 12, (1, 1, 4, 4))

    def f(x):
        y = tf.nn.conv2d(x, w1, 1, "SAME")
        a, b = tf.split(y, 2, axis=3)
        e = tf.nn.elu(y)
        return _flat_concat(tf, [a, -b, tf.nn.elu(x), tf.transpose(e, [0, 2, 1, 3]), tf.negative(e)[:, 1:3]])
    return f


def build_embedding(tf, np):
    """GATHER of a constant int8 table by the model's own int32 input (what Keras' Embedding becomes):
    the model input is int32 indices in [0, ID_INPUT["embedding"])."""
    table = _w(tf, np, 13, (20, 4))

    def f(ids):
        return tf.reshape(tf.gather(table * 2.0, ids), (1, -1))
    return f


def build_tile(tf, np):
    """TILE (what Keras 3's UpSampling2D and RepeatVector become).  TFLite Micro has no TILE kernel:
    the reference for this model is TensorFlow Lite's interpreter (TILE moves bytes only)."""
    def f(x):
        return _flat_concat(tf, [tf.tile(x, [1, 2, 1, 3]), tf.tile(x[:, :, :2], [1, 1, 3, 1])])
    return f


def build_all(tf, np):
    """layout + math + resize + convs + matmul in one model, float32 in and out: one firmware build and
    boot on the emulated board."""
    fs = [build_layout(tf, np), build_math(tf, np), build_resize(tf, np), build_convs(tf, np), build_matmul(tf, np)]

    def f(x):
        return tf.concat([g(x) for g in fs], axis=1)
    return f


BUILDERS = {"tile": build_tile, "layout": build_layout, "math": build_math, "resize": build_resize,
            "convs": build_convs, "matmul": build_matmul, "index64": build_index64, "float_io": build_float_io,
            "islands": build_islands, "embedding": build_embedding, "all": build_all}
ID_INPUT = {"embedding": 20}   # int32 index input: the model's ids are in [0, n)
DENYLIST = {"islands": ["SPLIT", "NEG", "TRANSPOSE", "STRIDED_SLICE"]}   # ops the quantizer leaves float
# converted with float32 input and output (QUANTIZE / DEQUANTIZE at the edges): `all` too, so the
# one emulated-board firmware runs the float edges with every other op
FLOAT_IO = {"float_io", "all"}


def _key() -> str:
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def _path(name: str) -> Path:
    return _cache_dir() / f"ops-{name}-{_key()}.tflite"


def convert_fn(tf, np, fn, shape, seed: int = 0, io=None, denylist=None, ids: int = 0) -> bytes:
    rng = np.random.default_rng(seed)

    def rep():
        for _ in range(30):
            yield [rng.integers(0, ids, size=shape).astype(np.int32) if ids else
                   rng.normal(0.0, 1.0, size=shape).astype(np.float32)]

    spec = tf.TensorSpec(shape, tf.int32 if ids else tf.float32)
    cf = tf.function(fn, input_signature=[spec], autograph=False).get_concrete_function()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([cf])
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if not ids:   # an int32 input stays int32
        conv.inference_input_type = io or tf.int8
    conv.inference_output_type = io or tf.int8
    if not denylist:
        return conv.convert()
    from tensorflow.lite.python import convert  # the converter's own quantize step, with a denylist

    conv._experimental_calibrate_only = True
    return convert.mlir_quantize(conv.convert(), False, input_data_type=io or tf.int8,
                                 output_data_type=io or tf.int8, denylisted_ops=denylist)


def ops_zoo_tflite(name: str) -> Path:
    path = _path(name)
    if path.exists():
        return path
    import numpy as np
    import tensorflow as tf

    for other in BUILDERS:   # one TensorFlow session converts every missing model
        p = _path(other)
        if p.exists():
            continue
        data = convert_fn(tf, np, BUILDERS[other](tf, np), SHAPES[other],
                          io=tf.float32 if other in FLOAT_IO else None, denylist=DENYLIST.get(other),
                          ids=ID_INPUT.get(other, 0))
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, p)
    return path
