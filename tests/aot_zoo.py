"""Small test models for the aot engine: every op and option, full-int8 with int8 I/O.

Each builder makes a Keras 3 (`tf.keras`) model; `zoo_tflite(name)` converts
it with TFLiteConverter.from_keras_model and a seeded representative data
set, and caches the .tflite bytes on disk keyed by a hash of the builder's
source, so reruns skip TensorFlow entirely.
"""

from __future__ import annotations

import hashlib
import inspect
import os
from pathlib import Path


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("TINYEDGE_TEST_CACHE", Path(base) / "tinyedge" / "aot-zoo"))


def build_conv(tf):
    """CONV_2D variants: stride 2 + SAME on odd sizes, dilation, non-square kernel, 1x1; all fused activations."""
    L = tf.keras.layers
    x = inp = L.Input((17, 15, 3), batch_size=1)
    x = L.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)            # 9x8
    x = L.Conv2D(24, 1, activation="relu")(x)                                       # Helium: 8-byte windows, 16 + 8 lanes
    x = L.Conv2D(8, 2, padding="same")(x)                                          # Helium: 48-byte rows, bottom/right borders
    x = L.Conv2D(8, (3, 2), padding="valid", dilation_rate=2, activation="relu6")(x)  # 5x6
    x = L.Conv2D(12, 1, padding="valid")(x)                                         # 1x1 GEMM, no activation
    x = L.Conv2D(10, (2, 3), strides=(1, 2), padding="same", activation="relu")(x)  # 5x3
    x = L.Conv2D(6, 3, padding="same")(x)
    x = L.Flatten()(x)
    x = L.Dense(16, activation="relu")(x)
    x = L.Dense(10)(x)
    x = L.Softmax()(x)
    return tf.keras.Model(inp, x)


def build_depthwise(tf):
    """DEPTHWISE_CONV_2D: depth multiplier 2, stride 2, dilation, SAME/VALID, relu/relu6; pools; and the
    shapes of the Helium row-band paths."""
    L = tf.keras.layers
    x = inp = L.Input((19, 16, 4), batch_size=1)
    x = L.DepthwiseConv2D(3, depth_multiplier=2, strides=2, padding="same", activation="relu")(x)  # 10x8x8
    x = L.DepthwiseConv2D(3, dilation_rate=2, padding="same", activation="relu6")(x)
    x = L.DepthwiseConv2D((3, 2), padding="valid")(x)                                              # 8x7x8
    x = L.DepthwiseConv2D(3, depth_multiplier=1, padding="same", activation="relu")(x)
    x = L.MaxPooling2D(2, padding="same")(x)                                                        # 4x4
    x = L.Conv2D(40, 1, activation="relu")(x)                                                       # wide dw next
    x = L.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = L.AveragePooling2D(3, strides=1, padding="same")(x)
    x = L.AveragePooling2D(2, padding="valid")(x)
    x = L.MaxPooling2D(2, strides=1, padding="valid")(x)
    # the Helium row-band paths (te_mve_depthwise.c): per output row, per output column (images
    # narrower than tall), strides 1 and 2, a last group of channels / pixels, the per-pixel path
    y = L.Conv2D(6, 1)(inp)
    y = L.DepthwiseConv2D(3, padding="same", activation="relu")(y)       # 19x16x6: rows, 4 + 2 channels
    y = L.Conv2D(8, 1)(y)
    a = L.DepthwiseConv2D(3, strides=2, padding="same")(y)                # 10x8x8: rows, stride 2
    v = L.Conv2D(8, (1, 2), strides=(1, 3))(y)                            # 19x5x8 (16-byte windows)
    v = L.DepthwiseConv2D(3, padding="same", activation="relu6")(v)      # columns, a shifted last group
    v = L.DepthwiseConv2D(3, strides=2, padding="same")(v)                # 10x3x8: columns, stride 2
    v = L.DepthwiseConv2D(2, padding="valid")(v)                          # 9x2x8: per pixel
    return tf.keras.Model(inp, L.Concatenate()([L.Flatten()(x), L.Flatten()(a), L.Flatten()(v)]))


def build_elementwise(tf):
    """ADD (same shape + broadcast), MUL (same shape + broadcast), RELU, RELU6, LEAKY_RELU, PAD, CONCATENATION."""
    L = tf.keras.layers
    x = inp = L.Input((9, 7, 6), batch_size=1)
    a = L.Conv2D(6, 3, padding="same")(x)
    b = L.Conv2D(6, 1)(x)
    s = L.Add()([a, b])
    s = L.ReLU()(s)
    m = L.Multiply()([s, L.Conv2D(6, 1)(x)])
    m = L.ReLU(max_value=6.0)(m)
    g = L.AveragePooling2D((9, 7))(m)                 # 1x1x6, broadcast below
    m2 = L.Multiply()([m, g])
    a2 = L.Add()([m2, g])
    lr = L.LeakyReLU(negative_slope=0.2)(a2)
    p = L.ZeroPadding2D(((1, 2), (0, 1)))(lr)         # 12x8
    c = L.Concatenate(axis=-1)([p, L.Conv2D(3, 1)(p)])
    out = L.Conv2D(4, 3, strides=2, padding="valid", activation="relu")(c)
    return tf.keras.Model(inp, out)


def build_fc(tf):
    """FULLY_CONNECTED stack with all activations, softmax over a 2-D batch of rows."""
    L = tf.keras.layers
    x = inp = L.Input((37,), batch_size=1)
    x = L.Dense(33, activation="relu")(x)
    x = L.Dense(17, activation="relu6")(x)
    x = L.Dense(20)(x)
    x = L.Reshape((4, 5))(x)
    x = L.Softmax(axis=-1)(x)
    return tf.keras.Model(inp, x)


def build_activations(tf):
    """Standalone RELU, RELU6, LOGISTIC, TANH, HARD_SWISH, MEAN (keepdims and not), QUANTIZE (requantizing concat)."""
    L = tf.keras.layers
    x = inp = L.Input((6, 5, 4), batch_size=1)
    a = L.Conv2D(8, 1)(x)
    r = L.ReLU()(L.Reshape((30, 8))(a))                       # RELU after RESHAPE cannot be fused
    r6 = L.ReLU(max_value=6.0)(L.ZeroPadding2D(1)(L.Reshape((6, 5, 8))(L.Dense(8)(r))))  # after PAD
    x0 = L.ReLU()(x)                                          # RELU on the model input
    sig = L.Activation("sigmoid")(L.Conv2D(6, 1)(r6))
    th = L.Activation("tanh")(L.Conv2D(6, 1)(r6))
    hs = L.Activation("hard_swish")(L.Conv2D(6, 1)(r6))
    m1 = L.GlobalAveragePooling2D(keepdims=True)(hs)        # MEAN over H, W
    m2 = L.GlobalAveragePooling1D()(r)                      # MEAN over axis 1, no keepdims
    parts = [L.Flatten()(sig), L.Flatten()(th), L.Flatten()(m1), m2, L.Flatten()(x0)]
    return tf.keras.Model(inp, L.Concatenate()(parts))


def build_paired(tf):
    """The Cortex-M DSP layouts the generator re-orders weights into: paired CONV_2D with an odd
    channel count and a gathered window, 4-channel-group DEPTHWISE_CONV_2D, paired FULLY_CONNECTED
    (large enough not to take the small-FC kernel) and a plain one (9 rows)."""
    L = tf.keras.layers
    x = inp = L.Input((9, 7, 6), batch_size=1)
    x = L.Conv2D(5, 3, padding="same", activation="relu")(x)          # window 54: gathered, 5 channels
    x = L.Conv2D(8, 1)(x)                                              # 1x1, in_c 5
    x = L.DepthwiseConv2D(3, padding="same", activation="relu")(x)     # 4-channel groups, zero-point borders
    x = L.Conv2D(7, (2, 3), strides=2, padding="valid")(x)             # odd out_c, window 48
    x = L.Flatten()(x)                                                 # 4 x 3 x 7 = 84
    x = L.Dense(132, activation="relu")(x)                             # 84 -> 132: paired
    x = L.Dense(9)(x)
    return tf.keras.Model(inp, x)


BUILDERS = {
    "activations": build_activations,
    "conv": build_conv,
    "depthwise": build_depthwise,
    "elementwise": build_elementwise,
    "fc": build_fc,
    "paired": build_paired,
}


def build_stream_a(tf):
    """A chain for row streaming (tests/test_stream.py): odd sizes, stride 2 SAME (pad 0 top / 1
    bottom on even sizes, 1 / 1 on odd ones), depth multiplier 2, 1x1, a 5x5 stride-2 depthwise,
    a max pool."""
    L = tf.keras.layers
    x = inp = L.Input((23, 13, 3), batch_size=1)
    x = L.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)                   # 12x7x8
    x = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu6")(x)   # 12x7x16
    x = L.Conv2D(12, 1, activation="relu")(x)                                              # 12x7x12
    x = L.DepthwiseConv2D(5, strides=2, padding="same")(x)                                 # 6x4x12
    x = L.MaxPooling2D(2, strides=1, padding="valid")(x)                                   # 5x3x12
    return tf.keras.Model(inp, x)


def build_stream_b(tf):
    """VALID with dilation, an average pool, a 5x5 conv, a stride-2 VALID depthwise."""
    L = tf.keras.layers
    x = inp = L.Input((20, 9, 4), batch_size=1)
    x = L.Conv2D(8, (3, 2), dilation_rate=2, padding="valid", activation="relu")(x)  # 16x7x8
    x = L.AveragePooling2D(3, strides=1, padding="same")(x)                           # 16x7x8
    x = L.Conv2D(8, 5, padding="same", activation="relu")(x)                          # 16x7x8
    x = L.DepthwiseConv2D(3, strides=2, padding="valid")(x)                           # 7x3x8
    return tf.keras.Model(inp, x)


def build_stream_residual(tf):
    """A chain whose input is read again after it (by an ADD): its output must not overlap it."""
    L = tf.keras.layers
    x = inp = L.Input((14, 10, 4), batch_size=1)
    a = L.Conv2D(12, 1, activation="relu")(x)                             # 14x10x12
    b = L.Conv2D(12, 3, padding="same", activation="relu")(a)
    b = L.DepthwiseConv2D(3, padding="same")(b)
    x = L.Add()([a, b])
    return tf.keras.Model(inp, x)


def build_stream_none(tf):
    """A conv chain beside a peak no streaming lowers (a dense layer as wide as the convs' input
    plus output): `auto` must keep the layer-by-layer plan."""
    L = tf.keras.layers
    x = inp = L.Input((8, 8, 8), batch_size=1)
    x = L.Conv2D(8, 1, activation="relu")(x)
    x = L.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = L.Flatten()(x)                                                     # 512
    x = L.Dense(600, activation="relu")(x)
    x = L.Dense(10)(x)
    return tf.keras.Model(inp, x)


STREAM_BUILDERS = {
    "stream_a": build_stream_a,
    "stream_b": build_stream_b,
    "stream_residual": build_stream_residual,
    "stream_none": build_stream_none,
}


def _convert(tf, np, model, seed: int = 0, new_quantizer: bool = True) -> bytes:
    rng = np.random.default_rng(seed)
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])

    def rep():
        for _ in range(40):
            yield [rng.normal(0.0, 1.0, size=(1, *shape)).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    if not new_quantizer:   # as tinyedge.conversion does for unrolled recurrent layers
        conv.experimental_new_quantizer = False
    return conv.convert()


def zoo_key(name: str) -> str:
    src = inspect.getsource({**BUILDERS, **STREAM_BUILDERS}[name]) + inspect.getsource(_convert)
    return hashlib.sha256(src.encode()).hexdigest()[:16]


def zoo_tflite(name: str) -> Path:
    """Path of the cached .tflite for builder `name`, converting it on a cache miss."""
    path = _cache_dir() / f"{name}-{zoo_key(name)}.tflite"
    if path.exists():
        return path
    import numpy as np
    import tensorflow as tf

    tf.keras.utils.set_random_seed(1234)
    data = _convert(tf, np, {**BUILDERS, **STREAM_BUILDERS}[name](tf))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def _rewrite_quantization(path: Path, change) -> bytes:
    """The model at `path` with `change(subgraph, op, opcode_name)` applied to every operator's
    tensors' quantization, packed again."""
    import flatbuffers

    from tinyedge.graph import _schema, builtin_op_name

    s = _schema()
    m = s.ModelT.InitFromPackedBuf(bytearray(Path(path).read_bytes()), 0)
    sg = m.subgraphs[0]
    for op in sg.operators:
        oc = m.operatorCodes[op.opcodeIndex]
        change(sg, op, builtin_op_name(max(oc.builtinCode, oc.deprecatedBuiltinCode)))
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def mean_same_quant_variant(path: Path) -> bytes:
    """The `activations` model rewritten so each MEAN's input has its output's quantization.

    The converter never emits that case on its own; TFLite Micro still
    requantizes there (the engine must match it bit for bit).  The MEAN
    inputs come from lookup-table ops, so the rewritten model stays valid.
    """
    def change(sg, op, name):
        if name == "MEAN":
            src, dst = sg.tensors[op.inputs[0]].quantization, sg.tensors[op.outputs[0]].quantization
            src.scale, src.zeroPoint = list(dst.scale), list(dst.zeroPoint)

    return _rewrite_quantization(path, change)


def clamped_variant(path: Path) -> bytes:
    """The `paired` model with every conv / FC output's zero point raised by 40 and its scale
    divided by 4, so each fused ReLU clamps at a zero point above -128: the requantization
    the _fast kernel variants cannot take (te_conv2d_s8_paired, te_depthwise_conv2d_s8_g4 and a
    clamped paired FC).  A consumer reads the same tensor's parameters, so the model stays valid."""
    def change(sg, op, name):
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            q = sg.tensors[op.outputs[0]].quantization
            q.scale, q.zeroPoint = [v / 4 for v in q.scale], [z + 40 for z in q.zeroPoint]

    return _rewrite_quantization(path, change)


def left_shift_variant(path: Path) -> bytes:
    """The model rewritten with every CONV_2D / DEPTHWISE_CONV_2D filter's scale of channel c times
    4 ** (c % 6): the requantization multipliers grow past one on some channels (left shifts,
    next to right shifts in the same vector), which the converter's models here never have; the
    kernels' left-shift paths (te_mve_requant's) need them.  No other tensor changes, so the model
    stays consistent for both runtimes."""
    def change(sg, op, name):
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            q = sg.tensors[op.inputs[1]].quantization
            q.scale = [float(v) * 4.0 ** (c % 6) for c, v in enumerate(q.scale)]

    return _rewrite_quantization(path, change)


UNARY_ACTS = ("sigmoid", "tanh", "hard_swish", "relu", "relu6", "leaky_relu")


def build_unary(tf, act: str):
    """One elementwise op right on the int8 model input, 256 values wide: one inference covers
    every int8 input value of its lookup table."""
    L = tf.keras.layers
    x = inp = L.Input((256,), batch_size=1)
    if act == "relu6":
        y = L.ReLU(max_value=6.0)(x)
    elif act == "leaky_relu":
        y = L.LeakyReLU(negative_slope=0.3)(x)
    else:
        y = L.Activation(act)(x)
    return tf.keras.Model(inp, y)


def unary_tflite(act: str) -> Path:
    src = inspect.getsource(build_unary) + inspect.getsource(_convert) + act
    path = _cache_dir() / f"unary-{act}-{hashlib.sha256(src.encode()).hexdigest()[:16]}.tflite"
    if path.exists():
        return path
    import numpy as np
    import tensorflow as tf

    tf.keras.utils.set_random_seed(1234)
    data = _convert(tf, np, build_unary(tf, act), seed=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path
