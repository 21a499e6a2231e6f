"""The one registry of Keras layer recipes behind README's layer table (tests/test_layer_table.py).

Each recipe is a one-layer model (two-input layers take the input and a 1x1 convolution of it;
activations follow a Dense layer) with, for Keras 3 (`keras`) and Keras 2 (`tf_keras`), the TFLite
ops TensorFlow 2.21's full-int8 converter makes of it and whether the aot engine and TFLite Micro
run them.  The test converts every recipe in both Keras, checks those facts against the converted
models, `inspect`'s per-op verdicts and (where aot runs it) the generated C, bit for bit, and checks
README's table is `render_table()`.

    python tests/keras_layers.py --readme     # rewrite README's table from this registry

Conversion runs in a child process (the converter segfaults on some recurrent layers, a fact the
table records as "converter crashes"), many recipes per process, cached on disk by this file's hash.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

KINDS = ("keras3", "tf_keras")
CRASH = "converter crashes"


@dataclass(frozen=True)
class Recipe:
    layer: str                       # README's first column
    shape: tuple                     # input shape without the batch
    build: Callable                  # (Keras layers module, input) -> output
    ops: dict                        # kind -> TFLite ops (in first-use order), or CRASH
    aot: dict                        # kind -> the aot engine runs every op
    tflm: dict                       # kind -> TFLite Micro runs every op
    kinds: tuple = KINDS             # the Keras that can build it
    note: str = ""
    extra: dict = field(default_factory=dict)


def _same(v):
    return {k: v for k in KINDS}


def R(layer, shape, build, ops, aot=True, tflm=True, kinds=KINDS, note="", legacy=False):
    """`legacy`: quantized by the older quantizer, as tinyedge's conversion does for unrolled recurrent
    layers (the MLIR one is not deterministic on them; docs/recurrent.md)."""
    ops = ops if isinstance(ops, dict) else _same(tuple(ops))
    aot = aot if isinstance(aot, dict) else _same(aot)
    tflm = tflm if isinstance(tflm, dict) else _same(tflm)
    return Recipe(layer, shape, build, {k: ops[k] for k in kinds}, {k: aot[k] for k in kinds},
                  {k: tflm[k] for k in kinds}, kinds, note, {"legacy": True} if legacy else {})


def _c1(L, x):
    """The second operand of a two-input layer: a 1x1 convolution of the input."""
    return L.Conv2D(x.shape[-1], 1)(x)
SEQ = (8, 4)
DOT_OPS = ("FULLY_CONNECTED", "BATCH_MATMUL")
ATTENTION_OPS = ("FULLY_CONNECTED", "BATCH_MATMUL", "SOFTMAX")
GRU_UNROLL_OPS = {"keras3": ("RESHAPE", "UNPACK", "FULLY_CONNECTED", "SPLIT", "LOGISTIC", "SUB", "TANH", "MUL",
                             "STRIDED_SLICE", "ADD"),
                  "tf_keras": ("RESHAPE", "UNPACK", "FULLY_CONNECTED", "SPLIT", "LOGISTIC", "SUB", "TANH", "MUL",
                               "SPLIT_V", "ADD")}

RECIPES = [
    R("Conv1D (plain, dilated, grouped)", (16, 4),
      lambda L, x: L.Conv1D(4, 3, groups=2)(L.Conv1D(4, 3, dilation_rate=2)(L.Conv1D(4, 3, activation='relu')(x))),
      ["RESHAPE", "CONV_2D"]),
    R("Conv2D (strided, dilated, grouped)", (9, 8, 4),
      lambda L, x: L.Conv2D(6, 3, groups=2, padding='same')(
          L.Conv2D(4, 3, dilation_rate=2, padding='same')(L.Conv2D(4, 3, strides=2, padding='same',
                                                                  activation='relu6')(x))),
      ["CONV_2D"]),
    R("DepthwiseConv2D", (8, 8, 3), lambda L, x: L.DepthwiseConv2D(3, depth_multiplier=2)(x), ["DEPTHWISE_CONV_2D"]),
    R("SeparableConv2D", (8, 8, 3), lambda L, x: L.SeparableConv2D(4, 3)(x), ["DEPTHWISE_CONV_2D", "CONV_2D"]),
    R("Conv2DTranspose (same, valid)", (5, 4, 3),
      lambda L, x: L.Conv2DTranspose(4, (3, 2), strides=2, use_bias=False)(
          L.Conv2DTranspose(4, 3, strides=2, padding='same', activation='relu')(x)),
      ["TRANSPOSE_CONV", "RELU"], note="the relu stays a RELU op"),
    R("Dense, Dropout, ReLU(6)", (8, 6),
      lambda L, x: L.ReLU(max_value=6.0)(L.Dense(5)(L.Dropout(0.5)(L.Dense(6, activation='relu')(x)))),
      ["FULLY_CONNECTED"]),
    R("LSTM", SEQ, lambda L, x: L.LSTM(5)(x),
      {"keras3": CRASH, "tf_keras": ("UNIDIRECTIONAL_SEQUENCE_LSTM", "STRIDED_SLICE")},
      aot={"keras3": False, "tf_keras": True}, tflm={"keras3": False, "tf_keras": True}),
    R("GRU", SEQ, lambda L, x: L.GRU(5)(x), {"keras3": CRASH, "tf_keras": CRASH}, aot=False, tflm=False,
      note="unroll=True converts (next row)"),
    R("GRU unroll", SEQ, lambda L, x: L.GRU(5, unroll=True)(x), GRU_UNROLL_OPS, legacy=True,
      note="tinyedge's conversion: the older quantizer (see below)"),
    R("SimpleRNN", SEQ, lambda L, x: L.SimpleRNN(5)(x), {"keras3": CRASH, "tf_keras": CRASH}, aot=False,
      tflm=False, note="unroll=True converts (next row)"),
    R("SimpleRNN unroll", SEQ, lambda L, x: L.SimpleRNN(5, unroll=True)(x),
      ["RESHAPE", "UNPACK", "FULLY_CONNECTED", "ADD", "TANH"]),
    R("BatchNormalization", (6, 6, 3), lambda L, x: L.BatchNormalization()(x), ["MUL", "ADD"]),
    R("LayerNormalization", (8, 6), lambda L, x: L.LayerNormalization()(x),
      {"keras3": ("MEAN", "DEQUANTIZE", "NEG", "QUANTIZE", "SQUARED_DIFFERENCE", "ADD", "RSQRT", "MUL"),
       "tf_keras": ("RESHAPE", "TRANSPOSE", "MEAN", "SQUARED_DIFFERENCE", "ADD", "RSQRT", "MUL", "SUB")},
      tflm={"keras3": False, "tf_keras": True},
      note="Keras 3's graph keeps a float NEG: aot runs it as an int8 table (DEQUANTIZE, NEG, QUANTIZE)"),
    R("sigmoid", (8, 6), lambda L, x: L.Activation('sigmoid')(L.Dense(6)(x)), ["FULLY_CONNECTED", "LOGISTIC"]),
    R("tanh", (8, 6), lambda L, x: L.Activation('tanh')(L.Dense(6)(x)), ["FULLY_CONNECTED", "TANH"]),
    R("swish", (8, 6), lambda L, x: L.Activation('swish')(L.Dense(6)(x)), ["FULLY_CONNECTED", "LOGISTIC", "MUL"]),
    R("hard_swish", (8, 6), lambda L, x: L.Activation('hard_swish')(L.Dense(6)(x)),
      ["FULLY_CONNECTED", "HARD_SWISH"], kinds=("keras3",), note="tf_keras has no hard_swish"),
    R("gelu", (8, 6), lambda L, x: L.Activation('gelu')(L.Dense(6)(x)), ["FULLY_CONNECTED", "GELU"], aot=False,
      tflm=False, note="TFLite Micro registers no GELU kernel (int8 or float) to be exact against"),
    R("elu", (8, 6), lambda L, x: L.Activation('elu')(L.Dense(6)(x)),
      ["FULLY_CONNECTED", "DEQUANTIZE", "ELU", "QUANTIZE"], tflm=False,
      note="no quantizer makes ELU int8 (TFLite Micro's int8 ELU is never emitted): aot runs the float island "
           "as an int8 table"),
    R("LeakyReLU", (8, 6), lambda L, x: L.LeakyReLU()(L.Dense(6)(x)), ["FULLY_CONNECTED", "LEAKY_RELU"]),
    R("PReLU", (8, 6), lambda L, x: L.PReLU()(L.Dense(6)(x)), ["FULLY_CONNECTED", "PRELU"]),
    R("Softmax", (8, 6), lambda L, x: L.Softmax()(x), ["SOFTMAX"]),
    R("MaxPooling2D, AveragePooling2D", (8, 8, 3),
      lambda L, x: L.AveragePooling2D(3, strides=2, padding='same')(L.MaxPooling2D(2)(x)),
      ["MAX_POOL_2D", "AVERAGE_POOL_2D"]),
    R("MaxPooling1D, AveragePooling1D", (16, 3), lambda L, x: L.AveragePooling1D(2)(L.MaxPooling1D(2)(x)),
      ["RESHAPE", "MAX_POOL_2D", "AVERAGE_POOL_2D"]),
    R("GlobalMaxPooling2D", (6, 6, 3), lambda L, x: L.GlobalMaxPooling2D()(x), ["REDUCE_MAX"]),
    R("GlobalAveragePooling2D", (6, 6, 3), lambda L, x: L.GlobalAveragePooling2D()(x), ["MEAN"]),
    R("UpSampling2D", (4, 4, 3), lambda L, x: L.UpSampling2D(2)(x),
      {"keras3": ("RESHAPE", "TILE"), "tf_keras": ("RESIZE_NEAREST_NEIGHBOR",)},
      tflm={"keras3": False, "tf_keras": True}, note="TFLite Micro has no TILE"),
    R("UpSampling2D bilinear", (4, 4, 3), lambda L, x: L.UpSampling2D(2, interpolation='bilinear')(x),
      ["RESIZE_BILINEAR"]),
    R("UpSampling1D", (6, 3), lambda L, x: L.UpSampling1D(2)(x),
      {"keras3": ("RESHAPE", "TILE"), "tf_keras": ("SPLIT", "CONCATENATION")}, tflm=False,
      note="tf_keras: a CONCATENATION of 12 inputs (TFLite Micro takes 10)"),
    R("ZeroPadding2D", (5, 5, 3), lambda L, x: L.ZeroPadding2D(((1, 2), (0, 1)))(x), ["PAD"]),
    R("Cropping2D", (8, 8, 3), lambda L, x: L.Cropping2D(((1, 2), (2, 1)))(x), ["STRIDED_SLICE"]),
    R("Reshape, Flatten", (4, 6), lambda L, x: L.Flatten()(L.Reshape((3, 8))(x)), ["RESHAPE"]),
    R("Permute", (4, 6, 3), lambda L, x: L.Permute((2, 1, 3))(x), ["TRANSPOSE"]),
    R("RepeatVector", (6,), lambda L, x: L.RepeatVector(3)(x), ["RESHAPE", "TILE"], tflm=False,
      note="TFLite Micro has no TILE"),
    R("Concatenate", (4, 4, 3), lambda L, x: L.Concatenate()([x, _c1(L, x)]), ["CONV_2D", "CONCATENATION"]),
    R("Add", (4, 4, 3), lambda L, x: L.Add()([x, _c1(L, x)]), ["CONV_2D", "ADD"]),
    R("Subtract", (4, 4, 3), lambda L, x: L.Subtract()([x, _c1(L, x)]), ["CONV_2D", "SUB"]),
    R("Multiply", (4, 4, 3), lambda L, x: L.Multiply()([x, _c1(L, x)]), ["CONV_2D", "MUL"]),
    R("Maximum", (4, 4, 3), lambda L, x: L.Maximum()([x, _c1(L, x)]), ["CONV_2D", "MAXIMUM"]),
    R("Minimum", (4, 4, 3), lambda L, x: L.Minimum()([x, _c1(L, x)]), ["CONV_2D", "MINIMUM"]),
    R("Average", (4, 4, 3), lambda L, x: L.Average()([x, _c1(L, x)]), ["CONV_2D", "ADD", "MUL"]),
    R("Rescaling", (4, 4, 3), lambda L, x: L.Rescaling(1 / 127.5, offset=-1)(x), ["MUL", "ADD"]),
    R("Dot", (5, 6), lambda L, x: L.Dot(axes=2)([x, L.Dense(6)(x)]), DOT_OPS),
    R("Attention", (5, 6), lambda L, x: L.Attention()([x, L.Dense(6)(x)]), ATTENTION_OPS),
]


def recipe_key(r: Recipe, kind: str) -> str:
    code = r.build.__code__   # what the recipe builds, not the table text around it
    blob = json.dumps([r.layer, list(r.shape), code.co_code.hex(), repr(code.co_consts), code.co_names, kind,
                       inspect.getsource(_convert_one), sorted(r.extra.items())])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("TINYEDGE_TEST_CACHE", Path(base) / "tinyedge" / "aot-zoo")) / "layers"


def _path(r: Recipe, kind: str, suffix: str = ".tflite") -> Path:
    return cache_dir() / f"{kind}-{r.layer.replace(' ', '_')}-{recipe_key(r, kind)}{suffix}"


# ---- conversion (child process) --------------------------------------------------------------

def _convert_one(r: Recipe, kind: str) -> bytes:
    import numpy as np
    import tensorflow as tf

    if kind == "keras3":
        import keras as K
    else:
        import tf_keras as K
    # fresh Keras name counters: the converter's output depends on layer names (GRU unroll's one float
    # SPLIT came and went with the recipes converted before it in the same process)
    K.backend.clear_session()
    K.utils.set_random_seed(1234)
    L = K.layers
    x = inp = L.Input(r.shape, batch_size=1)
    model = K.Model(inp, r.build(L, x))
    for w in model.weights:   # non-trivial BatchNormalization statistics, PReLU slopes, ...
        if "moving_variance" in w.name or "alpha" in w.name or "gamma" in w.name:
            w.assign(np.random.default_rng(5).uniform(0.2, 1.5, size=w.shape).astype(np.float32))
        elif "moving_mean" in w.name or "beta" in w.name:
            w.assign(np.random.default_rng(6).normal(0, 0.3, size=w.shape).astype(np.float32))
    rng = np.random.default_rng(0)

    def rep():
        for _ in range(20):
            yield [rng.normal(0.0, 1.0, size=(1, *r.shape)).astype(np.float32)]

    if kind == "keras3":
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
    else:
        spec = tf.TensorSpec((1, *r.shape), tf.float32)
        fn = tf.function(lambda t: model(t, training=False), input_signature=[spec], autograph=False)
        conv = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    if r.extra.get("legacy"):
        conv.experimental_new_quantizer = False
    return conv.convert()


def _child(todo: list[tuple[int, str]]) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for i, kind in todo:
        r = RECIPES[i]
        marker = _path(r, kind, ".started")
        marker.write_text("")
        data = _convert_one(r, kind)
        tmp = _path(r, kind, f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, _path(r, kind))
        marker.unlink()


def converted() -> dict[tuple[int, str], Path | str]:
    """(recipe index, kind) -> the converted .tflite, or CRASH; converting what is not cached
    (one child process for all of it, restarted past a recipe that crashes the converter)."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    while True:
        todo = [(i, k) for i, r in enumerate(RECIPES) for k in r.kinds
                if not _path(r, k).exists() and not _path(r, k, ".crash").exists()]
        if not todo:
            break
        proc = subprocess.run([sys.executable, __file__, "--convert", json.dumps(todo)], capture_output=True,
                              text=True, timeout=1800)
        started = [(i, k) for i, k in todo if _path(RECIPES[i], k, ".started").exists()]
        if proc.returncode == 0:
            continue
        if not started:
            raise RuntimeError(f"layer conversion failed:\n{proc.stderr[-3000:]}")
        i, k = started[0]
        if proc.returncode > 0:   # a Python error, not a crash: a broken recipe
            raise RuntimeError(f"converting {RECIPES[i].layer} ({k}) failed:\n{proc.stderr[-3000:]}")
        _path(RECIPES[i], k, ".started").unlink()
        _path(RECIPES[i], k, ".crash").write_text(f"signal {-proc.returncode}\n")
    out: dict[tuple[int, str], Path | str] = {}
    for i, r in enumerate(RECIPES):
        for k in r.kinds:
            out[(i, k)] = _path(r, k) if _path(r, k).exists() else CRASH
    return out


# ---- the README table ------------------------------------------------------------------------

README_BEGIN = "<!-- layer table: generated by tests/keras_layers.py, checked by tests/test_layer_table.py -->"
README_END = "<!-- end of layer table -->"


def _verdict(r: Recipe, which: dict) -> str:
    yes = [k for k in r.kinds if which[k]]
    if len(yes) == len(r.kinds):
        return "yes"
    if not yes:
        return "no"
    return {"keras3": "Keras 3 only", "tf_keras": "tf_keras only"}[yes[0]]


def _ops_cell(r: Recipe, kind: str) -> str:
    if kind not in r.kinds:
        return "(cannot build)"
    ops = r.ops[kind]
    return ops if isinstance(ops, str) else ", ".join(ops)


def render_table() -> str:
    lines = [README_BEGIN, "",
             "| Keras layer | TFLite ops (Keras 3) | TFLite ops (tf_keras) | aot | tflm | note |",
             "|---|---|---|---|---|---|"]
    for r in RECIPES:
        lines.append(f"| {r.layer} | {_ops_cell(r, 'keras3')} | {_ops_cell(r, 'tf_keras')} | "
                     f"{_verdict(r, r.aot)} | {_verdict(r, r.tflm)} | {r.note} |")
    lines += ["", README_END]
    return "\n".join(lines)


def readme_path() -> Path:
    return Path(__file__).resolve().parents[1] / "README.md"


def write_readme() -> None:
    text = readme_path().read_text()
    a, b = text.find(README_BEGIN), text.find(README_END)
    if a < 0 or b < 0:
        raise SystemExit("README.md has no layer table markers")
    readme_path().write_text(text[:a] + render_table() + text[b + len(README_END):])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--convert"]:
        _child([tuple(t) for t in json.loads(sys.argv[2])])
    elif sys.argv[1:2] == ["--readme"]:
        write_readme()
    else:
        print(render_table())
