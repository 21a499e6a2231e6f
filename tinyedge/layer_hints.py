"""Errors about TFLite ops, told in the user's terms: the Keras layer that made the op, the cause, what to use.

A conversion error used to name a TFLite op and a tensor ("tensor 'Cast' did
not become integer-only: op #1 CAST is a float op").  The user wrote an
Embedding.  `explain_op` finds the layer an op came from (the converter's
tensor names carry the layer's name scope; Keras 3 adds a `_N` suffix to it),
looking at the op's neighbours when its own tensors carry no scope, and
says what the op does to the data and, for the layers known to fail, what
to use instead.
"""

from __future__ import annotations

import re
from typing import Any

_SUFFIX = re.compile(r"^(.*)_\d+$")


class Layers(dict):
    """Layer name -> Keras class name, with the Keras that wrote the model ('keras3', 'tf_keras', ...)."""

    def __init__(self, classes: dict[str, str], kind: str = ""):
        super().__init__(classes)
        self.kind = kind


def layers_of(loaded) -> Layers:
    """The layers of a loaded model (tinyedge.conversion.LoadedModel) with their classes."""
    classes: dict[str, str] = {}
    model = getattr(loaded, "obj", None)
    for layer in getattr(model, "layers", None) or []:
        classes[layer.name] = type(layer).__name__
    for name in getattr(loaded, "layer_names", []) or []:
        classes.setdefault(name, "")
    return Layers(classes, getattr(loaded, "kind", ""))


def scope_layer(tensor_name: str, layers) -> str | None:
    """The layer whose name scope appears in `tensor_name` ('functional_1/tokens_1/Cast' -> 'tokens')."""
    if not tensor_name:
        return None
    parts = [p for chunk in re.split(r"[;,\s]", tensor_name) for p in chunk.split("/") if p]
    names = set(layers)
    keras3 = getattr(layers, "kind", "") == "keras3"
    for part in parts:
        m = _SUFFIX.match(part)
        # Keras 3 scopes a layer's ops as '<name>_<n>'; Keras 2 uses the bare name.
        candidates = ([m.group(1)] if m else []) + [part] if keras3 else [part] + ([m.group(1)] if m else [])
        for c in candidates:
            if c in names:
                return c
    return None


def op_layer(graph, op, layers, depth: int = 3) -> str | None:
    """The layer that produced `op`: from its own tensors' names, else from its nearest neighbours'."""
    def own(o) -> str | None:
        for t in list(o.outputs) + [t for t in o.inputs if t >= 0 and not graph.tensors[t].is_const]:
            if t >= 0:
                layer = scope_layer(graph.tensors[t].name, layers)
                if layer:
                    return layer
        return None

    found = own(op)
    if found or not layers:
        return found
    producers, consumers = graph.producers(), graph.consumers()
    seen, frontier = {op.index}, [op.index]
    for _ in range(depth):
        nxt = []
        for i in frontier:
            o = graph.ops[i]
            # Downstream first: an op the converter put before a layer (a CAST of its input) belongs to it.
            near = [c for t in o.outputs for c in consumers.get(t, [])]
            near += [producers[t] for t in o.inputs if t in producers]
            for j in near:
                if j not in seen:
                    seen.add(j)
                    nxt.append(j)
        for j in nxt:
            found = own(graph.ops[j])
            if found:
                return found
        frontier = nxt
    return None


# What the layers that are known not to become int8 TFLite Micro ops do, and what to use instead.
ADVICE: dict[str, tuple[str, str]] = {
    "Embedding": (
        "an Embedding looks up integer token ids, so the converter casts the model's float input to int32 "
        "for it, and that cast and lookup have no int8 kernels",
        "feed one-hot vectors to a Dense layer (use_bias=False), which is the same lookup in int8, or do the "
        "lookup on the host and give the model the embedded vectors"),
    "UpSampling1D": (
        "UpSampling1D repeats values with TILE, which TensorFlow Lite Micro does not have",
        "use Conv1DTranspose with strides 2, or reshape and use Resizing(interpolation='nearest')"),
    "UpSampling2D": (
        "UpSampling2D becomes a chain of TILE ops (Repeat), which TensorFlow Lite Micro does not have",
        "use Resizing(height, width, interpolation='nearest') (RESIZE_NEAREST_NEIGHBOR, which TFLite Micro "
        "runs) or Conv2DTranspose(filters, 2, strides=2)"),
    "UpSampling3D": (
        "UpSampling3D repeats values with TILE, which TensorFlow Lite Micro does not have",
        "upsample the 2-D slices with Resizing(interpolation='nearest') instead"),
}


def _dtypes(graph, idx) -> str:
    ds = [graph.tensors[t].dtype for t in idx if t >= 0 and not graph.tensors[t].is_const]
    return "/".join(dict.fromkeys(ds)) or "nothing"


def explain_op(graph, op, layers, what: str, lead: str = "") -> dict[str, Any]:
    """The message parts of an error about `op`: {"message", "layer", "hint"}.

    `what` says what is wrong with the op ("is a float op", "does not run in TensorFlow Lite Micro: ..."),
    `lead` what that means for the layer ("did not become integer-only")."""
    layer = op_layer(graph, op, layers) if layers else None
    cls = layers.get(layer, "") if layer and isinstance(layers, dict) else ""
    flow = f"it takes {_dtypes(graph, op.inputs)} and gives {_dtypes(graph, op.outputs)}"
    if layer:
        who = f"layer '{layer}'" + (f" ({cls})" if cls else "")
    else:
        tname = graph.tensors[op.outputs[0]].name if op.outputs else ""
        who = f"tensor '{tname}'"
    message = f"{who} {lead}: op #{op.index} {op.opcode} {what}" if lead else f"{who}: op #{op.index} {op.opcode} {what}"
    cause, instead = ADVICE.get(cls, (None, None))
    message += f" ({cause})" if cause else f" ({flow})"
    hint = f"instead, {instead}" if instead else (
        f"replace {'that ' + (cls or 'layer') if layer else 'the layer that makes it'} with layers TFLite Micro "
        "runs on int8 kernels (see 'tinyedge inspect' for the ops each runtime runs)")
    return {"message": message, "layer": layer, "hint": hint}
