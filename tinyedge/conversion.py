"""Keras (or SavedModel) to full-int8 TFLite, the only kind of model tinyedge deploys.

The stock path breaks in well-known ways; this module absorbs them:

- a `.h5` is loaded with the Keras that wrote it (its `keras_version`
  attribute: 2.x -> `tf_keras`, 3.x -> Keras 3); `.keras` files with Keras 3;
  SavedModel folders with `tf.saved_model.load`;
- conversion goes through a concrete function with a fixed batch-1 input
  (`from_keras_model` fails on `tf_keras` models in TF 2.21, and a dynamic
  batch leaves ops microcontroller runtimes do not run);
- full int8 is asked for explicitly (representative data, int8-only builtins,
  int8 input and output), and the result is checked: any op left with float
  or hybrid kernels is an error naming the op and the Keras layer it came from.

Lambda layers stored as Python bytecode in a `.h5` run that code when loaded;
they are refused unless the caller passes `trust_code=True`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputFileError, ModelError, UsageError
from .fsutil import atomic_write_bytes
from .graph import Graph, is_tflite_bytes, parse_tflite

log = logging.getLogger(__name__)

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
DEFAULT_SAMPLES = 200
# Ops whose int8 tensors legitimately hold int32 / int16 data (biases, shape operands, ...).
_SHAPE_OPS = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS", "TRANSPOSE", "PAD", "PADV2", "STRIDED_SLICE",
              "SLICE", "GATHER", "CONCATENATION", "MEAN", "SUM", "REDUCE_MAX", "SPLIT", "SPLIT_V",
              "PACK", "UNPACK", "SHAPE", "RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR", "TILE"}


# ---------------------------------------------------------------------------
# int8 <-> float at the model's edges (validate and deploy reuse these)
# ---------------------------------------------------------------------------

def _scale_zp(tensor) -> tuple[float, int]:
    if isinstance(tensor, tuple | list):
        scale, zp = tensor
    elif isinstance(tensor, dict):
        scale, zp = tensor["scale"], tensor["zero_point"]
    else:
        scale, zp = tensor.scale, tensor.zero_point
    scale = float(np.asarray(scale, dtype=np.float32).reshape(-1)[0])
    zp = int(np.asarray(zp).reshape(-1)[0]) if zp is not None else 0
    if not scale > 0:
        raise ModelError(f"tensor has no quantization scale (got {scale})",
                         hint="convert the model with 'tinyedge convert' first")
    return scale, zp


def quantize_input(x_float, tensor) -> np.ndarray:
    """Float inputs -> int8 as TFLite's QUANTIZE does: round(x / scale) half away from zero, + zp, clamp.

    `tensor` is a `tinyedge.graph.Tensor`, a dict with `scale` and
    `zero_point`, or a `(scale, zero_point)` pair.  The division is done in
    float32, like the reference kernel.
    """
    scale, zp = _scale_zp(tensor)
    x = np.asarray(x_float, dtype=np.float32)
    r = x / np.float32(scale)
    q = np.sign(r) * np.floor(np.abs(r) + np.float32(0.5))  # std::round: half away from zero
    q = q.astype(np.int64) + zp
    return np.clip(q, -128, 127).astype(np.int8)


def dequantize_output(q, tensor) -> np.ndarray:
    """int8 outputs -> float32: (q - zero_point) * scale."""
    scale, zp = _scale_zp(tensor)
    return ((np.asarray(q).astype(np.int32) - zp).astype(np.float32) * np.float32(scale)).astype(np.float32)


# ---------------------------------------------------------------------------
# loading whatever Keras produced
# ---------------------------------------------------------------------------

_TF_READY = False


@contextmanager
def _quiet_tf():
    """Import TensorFlow once with its native start-up chatter (absl, oneDNN, CUDA probes) kept off
    the terminal; the text goes to the debug log instead."""
    global _TF_READY
    if not _TF_READY:
        from .analyze import capture_fd2

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        with capture_fd2() as text:
            import tensorflow as tf

            tf.config.list_physical_devices()  # the CUDA probe logs here, once
        _TF_READY = True
        if text and text[0].strip():
            log.debug("tensorflow start-up:\n%s", text[0].strip())
    yield


def _tf():
    with _quiet_tf():
        import tensorflow as tf
    return tf


@dataclass
class LoadedModel:
    """A loaded source model: what it is, how to run it, and how to trace it for conversion."""

    path: Path
    kind: str                      # "tf_keras", "keras3" or "savedmodel"
    input_shape: tuple             # with the batch dimension (None where dynamic)
    output_shapes: list[tuple]
    layer_names: list[str]
    param_count: int
    obj: Any = field(repr=False)   # the Keras model, or the loaded SavedModel
    _fn: Any = field(default=None, repr=False)
    input_name: str | None = None  # SavedModel signature input keyword

    def _call(self, x):
        if self.kind == "savedmodel":
            out = self._fn(**{self.input_name: x})
            return out[sorted(out)[0]] if isinstance(out, dict) else out
        return self.obj(x, training=False)

    def concrete_function(self):
        tf = _tf()
        shape = [1, *[d for d in self.input_shape[1:]]]
        spec = tf.TensorSpec(shape, tf.float32, name="input")
        fn = tf.function(lambda x: self._call(x), input_signature=[spec], autograph=False)
        return fn.get_concrete_function()

    def predict(self, x: np.ndarray, batch: int = 64) -> np.ndarray:
        """Float outputs for float inputs `x`: N samples, each of the input shape with or without
        a batch dimension of 1 (N x 8x8x1 and N x 1x8x8x1 both work)."""
        sample = tuple(self.input_shape[1:])
        x = np.asarray(x, dtype=np.float32)
        n = int(np.prod(sample))
        if x.shape[1:] != sample:
            if x.size % n or (x.ndim >= 2 and int(np.prod(x.shape[1:])) != n):
                raise InputFileError(f"inputs of shape {x.shape} do not fit the model's input {self.input_shape}")
            x = x.reshape((-1, *sample))
        outs = []
        for i in range(0, len(x), batch):
            y = self._call(_tf().constant(np.asarray(x[i:i + batch], dtype=np.float32)))
            outs.append(np.asarray(y))
        return np.concatenate(outs, axis=0)


def _dir_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _h5_config(path: Path) -> tuple[str | None, dict | None]:
    import h5py

    try:
        with h5py.File(path, "r") as h:
            attrs = dict(h.attrs)
    except OSError as e:
        raise InputFileError(
            f"{path} is not a readable HDF5 file, perhaps truncated or corrupt ({str(e).split(';')[0]})",
            path=path, hint="save the model again with model.save(...)") from None
    version = attrs.get("keras_version")
    version = version.decode() if isinstance(version, bytes) else version
    cfg = attrs.get("model_config")
    if cfg is None:
        raise InputFileError(f"{path} holds no Keras model (no 'model_config'; weights only?)", path=path,
                             hint="save the whole model with model.save('model.h5'), not save_weights")
    cfg = json.loads(cfg.decode() if isinstance(cfg, bytes) else cfg)
    return version, cfg


def _walk_layers(cfg) -> list[dict]:
    """Every layer config in a (possibly nested) Keras model config."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if "class_name" in node and isinstance(node.get("config"), dict):
                found.append(node)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(cfg)
    return found


def _refuse_lambda_bytecode(path: Path, cfg: dict) -> None:
    for layer in _walk_layers(cfg):
        if layer.get("class_name") == "Lambda":
            c = layer["config"]
            if c.get("function_type") == "lambda":
                name = c.get("name", "?")
                raise ModelError(
                    f"layer '{name}' is a Lambda layer stored as Python bytecode; loading it would run code "
                    f"from {path.name}",
                    layer=name,
                    hint="replace the Lambda with built-in layers, or pass --trust-code if you trust the file")


def _custom_layer_error(path: Path, cfg: dict | None, e: Exception) -> ModelError | None:
    msg = str(e)
    m = re.search(r"Unknown (?:layer|object|class)[^'\"]*['\"]([\w.>]+)['\"]", msg) or \
        re.search(r"Could not (?:locate|deserialize) class '([\w.]+)'", msg)
    if not m:
        return None
    cls = m.group(1)
    names = [lc["config"].get("name", "?") for lc in _walk_layers(cfg or {}) if lc.get("class_name") == cls]
    where = f"layer '{names[0]}' " if names else ""
    return ModelError(
        f"{where}is of custom class '{cls}', which cannot be loaded without its Python code and has no "
        f"integer-only TFLite ops",
        layer=names[0] if names else None,
        hint="rebuild the model from built-in Keras layers")


def _keras_of(model) -> str:
    mod = type(model).__module__
    return "tf_keras" if mod.startswith("tf_keras") else "keras3"


def _from_keras(path: Path, model, kind: str) -> LoadedModel:
    inputs = model.inputs
    if inputs is None or len(inputs) == 0:
        raise ModelError(f"{path.name}: the model has no defined input (a subclassed model?)",
                         hint="build the model with the functional or Sequential API and save it again")
    if len(inputs) != 1:
        raise ModelError(f"{path.name}: the model has {len(inputs)} inputs; tinyedge deploys models with one "
                         "input", hint="merge the inputs into one tensor before the model")
    outputs = model.outputs
    if len(outputs) != 1:
        raise ModelError(f"{path.name}: the model has {len(outputs)} outputs; tinyedge deploys models with one "
                         "output", hint="concatenate the outputs into one tensor")
    in_shape = tuple(None if d is None else int(d) for d in inputs[0].shape)
    if any(d is None for d in in_shape[1:]):
        raise ModelError(f"{path.name}: the input shape {in_shape} has unknown dimensions besides the batch",
                         hint="give the Input layer a fixed shape")
    out_shapes = [tuple(None if d is None else int(d) for d in o.shape) for o in outputs]
    return LoadedModel(path=path, kind=kind, input_shape=in_shape, output_shapes=out_shapes,
                       layer_names=[layer.name for layer in model.layers], param_count=int(model.count_params()),
                       obj=model)


def _from_savedmodel(path: Path) -> LoadedModel:
    tf = _tf()
    try:
        sm = tf.saved_model.load(str(path))
    except Exception as e:
        raise InputFileError(f"{path} is not a loadable SavedModel ({type(e).__name__}: {str(e)[:200]})",
                             path=path) from None
    sigs = getattr(sm, "signatures", {}) or {}
    if "serving_default" not in sigs:
        raise ModelError(f"{path}: the SavedModel has no 'serving_default' signature",
                         hint="export it with model.export(...) or tf.saved_model.save(model, path)")
    fn = sigs["serving_default"]
    _, kwargs = fn.structured_input_signature
    if len(kwargs) != 1:
        raise ModelError(f"{path}: the SavedModel takes {len(kwargs)} inputs; tinyedge deploys models with one "
                         "input", hint="merge the inputs into one tensor before the model")
    (name, spec), = kwargs.items()
    outs = fn.structured_outputs
    if isinstance(outs, dict) and len(outs) != 1:
        raise ModelError(f"{path}: the SavedModel has {len(outs)} outputs; tinyedge deploys models with one "
                         "output", hint="concatenate the outputs into one tensor")
    out_spec = next(iter(outs.values())) if isinstance(outs, dict) else outs
    in_shape = tuple(None if d is None else int(d) for d in spec.shape)
    if any(d is None for d in in_shape[1:]):
        raise ModelError(f"{path}: the input shape {in_shape} has unknown dimensions besides the batch")
    variables = list(getattr(sm, "variables", []) or [])
    params = int(sum(int(np.prod(v.shape)) for v in variables))
    layers = sorted({v.name.split("/")[0] for v in variables})
    return LoadedModel(path=path, kind="savedmodel", input_shape=in_shape,
                       output_shapes=[tuple(None if d is None else int(d) for d in out_spec.shape)],
                       layer_names=layers, param_count=params, obj=sm, _fn=fn, input_name=name)


def sniff(path: Path) -> str:
    """What kind of model file `path` is: 'tflite', 'h5', 'keras', 'savedmodel'.  Raises InputFileError."""
    if not path.exists():
        raise InputFileError(f"{path} does not exist", path=path, hint="check the path of the model")
    if path.is_dir():
        if (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
            return "savedmodel"
        raise InputFileError(f"{path} is a folder but not a SavedModel (no saved_model.pb)", path=path,
                             hint="pass a .h5, .keras or .tflite file, or a SavedModel folder")
    try:
        with path.open("rb") as f:
            head = f.read(16)
    except OSError as e:
        raise InputFileError(f"cannot read {path} ({e.strerror})", path=path) from None
    if is_tflite_bytes(head):
        return "tflite"
    if head.startswith(HDF5_MAGIC):
        return "h5"
    if head.startswith(b"PK\x03\x04") and path.suffix.lower() == ".keras":
        return "keras"
    raise InputFileError(
        f"{path} is not a model tinyedge can read (expected a Keras .h5 or .keras file, a SavedModel folder "
        f"or a .tflite file)", path=path, hint="pass the file that model.save(...) wrote")


def _tfmot_scope(cfg: dict | None):
    """tfmot's quantize scope when the config holds its QAT layers (a model `tinyedge compress --qat`
    wrote: the fake-quant ranges it learned are what the converter uses), else nothing."""
    from contextlib import nullcontext

    if not any(str(lc.get("class_name", "")).startswith(("QuantizeLayer", "QuantizeWrapper"))
               for lc in _walk_layers(cfg or {})):
        return nullcontext()
    import tensorflow_model_optimization as tfmot

    return tfmot.quantization.keras.quantize_scope()


def load_model(model_path: os.PathLike | str, *, trust_code: bool = False) -> LoadedModel:
    """Load a Keras `.h5` / `.keras` file or a SavedModel folder with the library that wrote it."""
    path = Path(model_path).expanduser().resolve()
    kind = sniff(path)
    if kind == "tflite":
        raise UsageError(f"{path} is already a .tflite model", hint="it needs no loading; use load_tflite")
    if kind == "savedmodel":
        return _from_savedmodel(path)
    cfg = None
    with _quiet_tf():
        if kind == "h5":
            version, cfg = _h5_config(path)
            if not trust_code:
                _refuse_lambda_bytecode(path, cfg)
            use_k3 = bool(version) and str(version).startswith("3.")
        else:
            try:
                with zipfile.ZipFile(path) as z:
                    cfg = json.loads(z.read("config.json"))
            except (zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
                raise InputFileError(f"{path} is not a readable .keras file, perhaps truncated ({e})",
                                     path=path) from None
            use_k3 = True
        try:
            if use_k3:
                import keras

                model = keras.saving.load_model(str(path), compile=False, safe_mode=not trust_code)
            else:
                import tf_keras

                with _tfmot_scope(cfg):
                    model = tf_keras.models.load_model(str(path), compile=False)
        except (ValueError, TypeError, KeyError, OSError, AttributeError) as e:
            custom = _custom_layer_error(path, cfg, e)
            if custom is not None:
                raise custom from None
            if "Lambda" in str(e) and "safe_mode" in str(e):
                names = [lc["config"].get("name", "?") for lc in _walk_layers(cfg or {})
                         if lc.get("class_name") == "Lambda"]
                raise ModelError(
                    f"layer '{names[0] if names else '?'}' is a Lambda layer stored as Python bytecode; "
                    f"loading it would run code from {path.name}", layer=names[0] if names else None,
                    hint="replace the Lambda with built-in layers, or pass --trust-code if you trust the file",
                ) from None
            first = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
            raise InputFileError(f"cannot load {path.name} as a Keras model ({first})", path=path,
                                 hint="check that the file is complete and was written by Keras") from None
    return _from_keras(path, model, _keras_of(model))


# ---------------------------------------------------------------------------
# conversion
# ---------------------------------------------------------------------------

@dataclass
class ConvertResult:
    tflite_path: Path | None
    report: dict
    warnings: list[str]
    graph: Graph | None = field(default=None, repr=False)
    tflite_bytes: bytes | None = field(default=None, repr=False)


def _tensor_info(t) -> dict:
    return {
        "name": t.name, "shape": list(t.shape), "dtype": t.dtype,
        "scale": float(t.scale[0]) if t.is_quantized else None,
        "zero_point": int(t.zero_point[0]) if t.is_quantized else None,
    }


def _layer_of(name: str, layers: list[str]) -> str | None:
    """The Keras layer a TFLite tensor name comes from (names look like 'model/conv2d/Conv2D;...')."""
    parts = set()
    for chunk in re.split(r"[;,\s]", name):
        parts.update(p for p in chunk.split("/") if p)
    for layer in sorted(layers, key=len, reverse=True):
        if layer in parts:
            return layer
    return None


def _layer_in_text(text: str, layers: list[str]) -> str | None:
    for layer in sorted(layers, key=len, reverse=True):
        if re.search(rf"(^|[/\"'@ (]){re.escape(layer)}(/|[\"' )]|$)", text):
            return layer
    return None


def float_ops(graph: Graph) -> list[tuple[Any, str]]:
    """Ops that would not run on integer kernels: (op, why).  Empty for a full-int8 graph."""
    bad = []
    for op in graph.ops:
        if op.is_custom:
            bad.append((op, "custom op"))
            continue
        ins = [graph.tensors[i] for i in op.inputs if i >= 0]
        outs = [graph.tensors[i] for i in op.outputs if i >= 0]
        act_in = [t for t in ins if not t.is_const]
        floaty = [t for t in act_in + outs if t.dtype in ("float32", "float16", "float64")]
        if floaty:
            const_int = [t for t in ins if t.is_const and t.dtype in ("int8", "int4")]
            why = "hybrid op (float activations, int8 weights)" if const_int else "float op"
            bad.append((op, why))
    return bad


def check_full_int8(graph: Graph, layers: list[str] | None = None) -> None:
    """Raise ModelError naming the first float/hybrid op (and its layer) or a non-int8 model edge."""
    layers = layers or []
    bad = float_ops(graph)
    if bad:
        # Blame the op doing float math, not the (DE)QUANTIZE the converter put around it.
        real = [b for b in bad if b[0].opcode not in ("QUANTIZE", "DEQUANTIZE")]
        op, why = (real or bad)[0]
        tname = graph.tensors[op.outputs[0]].name if op.outputs else ""
        if not layers:  # a .tflite given as is
            raise ModelError(
                f"the model is not full-int8: op #{op.index} {op.opcode} (output '{tname}') is a {why}",
                op=op.opcode, hint="convert the Keras model with 'tinyedge convert MODEL.h5 --calib DATA'")
        from .layer_hints import explain_op

        e = explain_op(graph, op, layers, f"is a {why}", lead="did not become integer-only")
        raise ModelError(e["message"], layer=e["layer"], op=op.opcode, hint=e["hint"])
    for t in graph.input_tensors + graph.output_tensors:
        if t.dtype != "int8":
            raise ModelError(f"model tensor '{t.name}' at the edge is {t.dtype}, not int8",
                             hint="convert the Keras model with 'tinyedge convert' to get int8 I/O")


def _op_error(graph: Graph, op, layers, what: str) -> ModelError:
    from .layer_hints import explain_op

    e = explain_op(graph, op, layers, what)
    return ModelError(e["message"], layer=e["layer"], op=op.opcode, hint=e["hint"])


def _converter_error(e: Exception, layers: list[str], native: str = "") -> ModelError:
    text = str(e)
    layer = _layer_in_text(text, layers) or _layer_in_text(native, layers)
    m = re.search(r"'(tf\.[A-Za-z0-9_]+|tfl\.[A-Za-z0-9_]+)'", text) or \
        re.search(r"op(?:eration)?[: ]+'?([A-Z][A-Z0-9_]{2,})'?", text)
    op = m.group(1) if m else None
    lines = [ln.strip() for ln in text.splitlines() if "error" in ln.lower()]
    detail = (lines[0] if lines else text.strip().splitlines()[0] if text.strip() else type(e).__name__)[:240]
    what = f"layer '{layer}'" if layer else "the model"
    opt = f" (op {op})" if op else ""
    return ModelError(f"{what} cannot become integer-only TFLite ops{opt}: {detail}",
                      layer=layer, op=op,
                      hint="replace that layer with built-in layers TFLite runs on int8 kernels")


def _representative(x: np.ndarray):
    def gen():
        for i in range(len(x)):
            yield [x[i:i + 1].astype(np.float32)]
    return gen


# Recurrent layers TensorFlow's int8 calibrator segfaults on when they are left as a loop (a WHILE
# with the cell inside; seen with TF 2.21: Keras 3 GRU, LSTM and SimpleRNN, tf_keras GRU and
# SimpleRNN).  tf_keras' LSTM becomes the fused UNIDIRECTIONAL_SEQUENCE_LSTM op instead, which
# TFLite Micro runs, so it is left alone.
_LOOPED_RNN = {"keras3": {"GRU", "LSTM", "SimpleRNN"}, "tf_keras": {"GRU", "SimpleRNN"}}
# Beyond this many time steps an unrolled cell makes a graph too big to be worth it.
MAX_UNROLL_STEPS = 256


def _rnn_configs(cfg: dict) -> list[dict]:
    """The recurrent layer configs inside one layer's config (itself, or a Bidirectional's two)."""
    found = [cfg] if "unroll" in cfg else []
    for key in ("layer", "backward_layer"):
        sub = cfg.get(key)
        if isinstance(sub, dict) and isinstance(sub.get("config"), dict):
            found += _rnn_configs(sub["config"])
    return found


def _recurrent_layers(model: LoadedModel) -> list[tuple[str, str]]:
    """(name, class) of the model's recurrent layers (any RNN, or a wrapper of one)."""
    found = []
    for layer in getattr(model.obj, "layers", None) or []:
        cls = type(layer).__name__
        inner = getattr(layer, "forward_layer", None) or getattr(layer, "layer", None)
        if "unroll" in layer.get_config() or (inner is not None and hasattr(inner, "unroll")):
            found.append((layer.name, cls))
    return found


def recurrent_to_unroll(model: LoadedModel) -> list[str]:
    """The model's recurrent layers that convert_loaded unrolls (see _LOOPED_RNN), by name."""
    classes = _LOOPED_RNN.get(model.kind, set())
    steps = model.input_shape[1] if len(model.input_shape) >= 3 else None
    if not classes or not steps or steps > MAX_UNROLL_STEPS:
        return []
    names = []
    for layer in getattr(model.obj, "layers", []):
        inner = [layer] + [getattr(layer, k) for k in ("forward_layer", "backward_layer") if hasattr(layer, k)]
        if any(type(x).__name__ in classes and not getattr(x, "unroll", True) for x in inner):
            names.append(layer.name)
    return names


def unrolled_recurrent(model: LoadedModel) -> list[str]:
    """The model's recurrent layers (or wrappers of one) built with unroll=True, by name."""
    names = []
    for layer in getattr(model.obj, "layers", None) or []:
        inner = [layer] + [getattr(layer, k) for k in ("forward_layer", "backward_layer", "layer")
                           if getattr(layer, k, None) is not None]
        if any(getattr(x, "unroll", False) is True for x in inner):
            names.append(layer.name)
    return names


def _unrolled(model: LoadedModel, names: list[str]):
    """A copy of the Keras model with the recurrent layers `names` unrolled (same weights, same math:
    the cell applied once per time step instead of in a loop)."""
    if model.kind == "keras3":
        import keras as lib
    else:
        import tf_keras as lib

    def clone(layer):
        cfg = layer.get_config()
        if layer.name in names:
            for c in _rnn_configs(cfg):
                c["unroll"] = True
        return layer.__class__.from_config(cfg)

    copy = lib.models.clone_model(model.obj, clone_function=clone)
    copy.set_weights(model.obj.get_weights())
    return copy


def convert_loaded(model: LoadedModel, calib_x: np.ndarray) -> bytes:
    """Full-int8 flatbuffer bytes from a loaded model and float calibration inputs.

    Recurrent layers that would stay loops (see _LOOPED_RNN) are unrolled first:
    TensorFlow's calibrator segfaults on those loops, and the unrolled cell is
    plain int8 ops (FULLY_CONNECTED, LOGISTIC, TANH, MUL, ADD, ...)."""
    tf = _tf()
    loops = recurrent_to_unroll(model) if model.kind in _LOOPED_RNN else []
    if loops:
        log.info("unrolling recurrent layers %s for conversion", ", ".join(loops))
        from dataclasses import replace

        model = replace(model, obj=_unrolled(model, loops))
    if model.kind == "keras3":
        # TensorFlow's own Keras route (it freezes Keras 3's variables itself; a hand-made
        # concrete function aborts the converter on keras.applications models), on the model
        # called with a batch-1 input so no dynamic-batch ops are left.
        import keras

        inp = keras.Input(batch_shape=(1, *model.input_shape[1:]), dtype="float32")
        fixed = keras.Model(inp, model.obj(inp, training=False))
        conv = tf.lite.TFLiteConverter.from_keras_model(fixed)
    else:
        conv = tf.lite.TFLiteConverter.from_concrete_functions([model.concrete_function()], model.obj)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = _representative(calib_x)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    if loops or unrolled_recurrent(model):
        # TF 2.21's MLIR quantizer is not deterministic on unrolled recurrent cells: given the very
        # same calibrated model (byte for byte) it leaves an unrolled GRU's gate SPLIT in float
        # (DEQUANTIZE -> SPLIT -> QUANTIZE) on some calls and not on others, in one process and
        # across processes, with ASLR off and a fixed PYTHONHASHSEED (5 of 16 calls of
        # tensorflow.lite.python.convert.mlir_quantize here).  The older quantizer gave the same
        # all-int8 bytes every time (10 of 10), so a model with an unrolled recurrent layer, the
        # user's or ours, is quantized by it (tests/test_convert.py keeps this true).
        conv.experimental_new_quantizer = False
    from .analyze import capture_fd2

    native: list[str] = []
    try:
        with capture_fd2() as native:
            return bytes(conv.convert())
    except Exception as e:  # the converter raises ConverterError, RuntimeError, ValueError...
        raise _converter_error(e, model.layer_names, "".join(native)) from None
    finally:
        if native and native[0].strip():
            log.debug("converter output:\n%s", native[0].strip())


def tflm_run(tflite: bytes, xq: np.ndarray) -> np.ndarray:
    """Run int8 inputs (N x input shape, batch 1 each) through the tflite-micro interpreter."""
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(tflite)
    in_shape = tuple(interp.get_input_details(0)["shape"])
    outs = []
    for i in range(len(xq)):
        interp.reset()   # each sample from the zero state (recurrent models: Keras' stateful=False)
        interp.set_input(np.asarray(xq[i], dtype=np.int8).reshape(in_shape), 0)
        interp.invoke()
        outs.append(np.array(interp.get_output(0), copy=True).reshape(-1))
    return np.stack(outs)


def float_predict(model_path: os.PathLike | str | LoadedModel, x: np.ndarray, *, trust_code: bool = False):
    """Float outputs of the source Keras model (or SavedModel) on float inputs `x`."""
    model = model_path if isinstance(model_path, LoadedModel) else load_model(model_path, trust_code=trust_code)
    return model.predict(np.asarray(x, dtype=np.float32))


def _accuracy(scores: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(scores.reshape(len(y), -1), axis=1) == y))


def _classes_of(loaded: LoadedModel) -> int:
    """A classifier's class count (its first output's last dimension), or 0 when that is not known."""
    shape = loaded.output_shapes[0] if loaded.output_shapes else ()
    last = shape[-1] if shape else None
    return int(last) if last is not None and int(last) > 1 else 0


def default_output(model_path: Path) -> Path:
    stem = model_path.name if model_path.is_dir() else model_path.stem
    return Path.cwd() / f"{stem}_int8.tflite"


def _layers_hint(path: Path, kind: str) -> list[str]:
    """Layer names from a Keras file's config, without loading it (to name a layer in a crash report)."""
    try:
        if kind == "h5":
            return [lc["config"].get("name") for lc in _walk_layers(_h5_config(path)[1]) if lc["config"].get("name")]
        if kind == "keras":
            with zipfile.ZipFile(path) as z:
                cfg = json.loads(z.read("config.json"))
            return [lc["config"].get("name") for lc in _walk_layers(cfg) if lc["config"].get("name")]
    except (InputFileError, OSError, KeyError, ValueError, zipfile.BadZipFile):
        pass
    return []


def _convert_worker(path: Path, kind: str, calib, samples: int, trust_code: bool, seed: int):
    """The native part of convert() (load, convert + calibrate, the tflite-micro check, evaluation),
    run in a worker process by tinyedge.isolate: (tflite bytes, source kind, layer names,
    parameter count, report parts, warnings, step times)."""
    from . import isolate
    from .data import check_labels, load_data
    from .layer_hints import layers_of

    steps: dict[str, float] = {}
    warnings: list[str] = []
    extra: dict[str, Any] = {}
    t0 = time.perf_counter()
    if kind == "tflite":
        data = path.read_bytes()
        graph = parse_tflite(data, path=path)
        steps["load"] = time.perf_counter() - t0
        t = time.perf_counter()
        check_full_int8(graph)
        steps["check"] = time.perf_counter() - t
        loaded = None
        x = y = None
        extra["calibration"] = None
    else:
        isolate.mark("load")
        loaded = load_model(path, trust_code=trust_code)
        steps["load"] = time.perf_counter() - t0
        t = time.perf_counter()
        if calib is not None:
            x, y = load_data(calib, input_shape=loaded.input_shape, samples=samples)
            check_labels(y, _classes_of(loaded), calib)
            extra["calibration"] = {"source": str(Path(calib).expanduser().resolve()), "samples": int(len(x)),
                                    "random": False}
        else:
            rng = np.random.default_rng(seed)
            x = rng.standard_normal((min(samples, 100), *loaded.input_shape[1:])).astype(np.float32)
            y = None
            warnings.append("no --calib data given: calibrated on random inputs, so the int8 model's "
                            "accuracy will suffer; pass --calib with real inputs")
            extra["calibration"] = {"source": "random (standard normal)", "samples": int(len(x)),
                                    "random": True}
        steps["calibration_data"] = time.perf_counter() - t
        t = time.perf_counter()
        isolate.mark("convert", [(name, f"a {cls}; TensorFlow's calibrator crashes on some recurrent layers")
                                 for name, cls in _recurrent_layers(loaded)])
        data = convert_loaded(loaded, x)
        steps["convert"] = time.perf_counter() - t
        t = time.perf_counter()
        graph = parse_tflite(data)
        check_full_int8(graph, layers_of(loaded))
        steps["check"] = time.perf_counter() - t

    # The result must load and run in TFLite Micro's own interpreter.
    t = time.perf_counter()
    tin = graph.input_tensors[0]
    from .analyze import capture_fd2
    from .tflm_support import check_op as tflm_check_op

    layers = layers_of(loaded) if loaded is not None else []
    for op in graph.ops:
        reason = tflm_check_op(graph, op)
        if reason is not None:
            err = _op_error(graph, op, layers, f"does not run in TensorFlow Lite Micro: {reason}")
            if "calibrated range" in reason:  # the layer is fine; its calibrated values are not
                err.hint = "convert a trained model, with real inputs as calibration data (--calib DATA.npz)"
            raise err
    isolate.mark("tflm_check")
    native: list[str] = []
    try:
        with capture_fd2() as native:
            tflm_run(data, np.zeros((1, *tin.shape), dtype=np.int8))
    except Exception as e:
        text = " ".join("".join(native).split())
        m = re.search(r"Node (\w+) \(number (\d+)\)", text)
        if m and int(m.group(2)) < len(graph.ops):
            raise _op_error(graph, graph.ops[int(m.group(2))], layers,
                            f"does not run in the tflite-micro interpreter ({text[:200]})") from None
        raise ModelError(f"the converted model does not run in the tflite-micro interpreter "
                         f"({type(e).__name__}: {e}; {text[:200]})") from None
    steps["tflm_check"] = time.perf_counter() - t

    if y is not None and loaded is not None:
        t = time.perf_counter()
        isolate.mark("evaluate")
        fy = loaded.predict(x)
        xq = quantize_input(x, tin)
        qy = tflm_run(data, xq)
        iy = dequantize_output(qy, graph.output_tensors[0])
        ftop = np.argmax(fy.reshape(len(x), -1), axis=1)
        itop = np.argmax(iy.reshape(len(x), -1), axis=1)
        extra["accuracy"] = {
            "samples": int(len(x)),
            "float": _accuracy(fy, y),
            "int8": _accuracy(iy, y),
            "top1_agreement": float(np.mean(ftop == itop)),
        }
        steps["evaluate"] = time.perf_counter() - t
    else:
        extra["accuracy"] = None
    params = loaded.param_count if loaded is not None else None
    return data, (loaded.kind if loaded is not None else kind), layers, params, extra, warnings, steps


def convert(model_path: os.PathLike | str, out: os.PathLike | str | None = None,
            calib: os.PathLike | str | None = None, samples: int = DEFAULT_SAMPLES, *,
            trust_code: bool = False, seed: int = 0) -> ConvertResult:
    """Convert a Keras `.h5` / `.keras` / SavedModel to a full-int8 `.tflite`, or check a `.tflite`.

    Writes `out` (default `./<model>_int8.tflite`) atomically, only after the
    result passed the full-int8 check and loaded in the tflite-micro
    interpreter.  For a `.tflite` input nothing is converted; it is checked,
    and copied to `out` only when `out` is given.

    TensorFlow's converter and calibrator and the tflite-micro interpreter
    run in a worker process (tinyedge.isolate): a native crash there is a
    NativeCrashError naming the step, and nothing is written.
    """
    path = Path(model_path).expanduser().resolve()
    if samples is None or samples < 1:
        raise UsageError(f"--samples must be at least 1 (got {samples})")
    steps: dict[str, float] = {}
    kind = sniff(path)
    source_bytes = _dir_bytes(path)
    report: dict[str, Any] = {"source": {"path": str(path), "kind": kind, "bytes": source_bytes}}

    from . import isolate

    layers = _layers_hint(path, kind)
    data, kind_seen, layers, params, extra, warnings, wsteps = isolate.call(
        "load", "tinyedge.conversion:_convert_worker", path, kind, calib, samples, trust_code, seed, layers=layers)
    steps.update(wsteps)
    report["source"]["kind"] = kind_seen
    report.update(extra)
    graph = parse_tflite(data, path=path if kind == "tflite" else None)

    out_path: Path | None = None
    if out is not None or kind != "tflite":
        out_path = Path(out).expanduser().resolve() if out is not None else default_output(path)
        if out_path.is_dir():
            raise UsageError(f"{out_path} is a folder", hint="give -o the path of a .tflite file")
        if out_path == path:
            raise UsageError(f"the output {out_path} is the input model", hint="choose another path with -o")
        t = time.perf_counter()
        try:
            atomic_write_bytes(out_path, data)
        except OSError as e:
            raise InputFileError(f"cannot write {out_path} ({e.strerror})", path=out_path,
                                 hint="choose a writable path with -o") from None
        steps["write"] = time.perf_counter() - t

    counts = graph.op_counts()
    if params is None:
        params = int(sum(t.num_elements for t in graph.tensors
                         if t.is_const and t.dtype in ("int8", "int32", "int4", "int16")))
    report.update({
        "tflite": {"path": str(out_path) if out_path else None, "bytes": len(data), "sha256": graph.sha256},
        "inputs": [_tensor_info(t) for t in graph.input_tensors],
        "outputs": [_tensor_info(t) for t in graph.output_tensors],
        "ops": dict(sorted(counts.items())),
        "op_count": len(graph.ops),
        "param_count": params,
        "size": {"before": source_bytes, "after": len(data)},
        "full_int8": True,
        "steps": {k: round(v, 4) for k, v in steps.items()},
        "warnings": list(warnings),
    })
    for w in warnings:
        log.info(w)
    return ConvertResult(tflite_path=out_path, report=report, warnings=warnings, graph=graph, tflite_bytes=data)
