"""A Keras model as a plain layer graph, and its rebuild as a tf_keras model.

Every structural method (channel pruning, low-rank) edits this graph: a list
of nodes in topological order, each a layer class name, its config, the names
of the nodes it reads and its weights as numpy arrays.  `build()` turns it
back into a tf_keras functional model, so the result is an ordinary Keras 2
model that tfmot can wrap and `tinyedge.conversion.convert` can convert,
whichever Keras wrote the source (Keras 3 models are rebuilt from their
config and weights; a layer whose class tf_keras does not have is an error
that names it).
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelError

# Config keys that are not needed to rebuild a layer whose weights are set afterwards, or that
# differ between Keras 2 and 3 (initializers, constraints, dtype policies, build configs).
_DROP_SUFFIXES = ("_initializer", "_constraint")
_DROP_KEYS = {"build_config", "compile_config", "module", "registered_name", "quantization_config",
              "lora_rank", "lora_alpha", "synchronized", "optional"}


@dataclass
class Node:
    name: str
    cls: str
    config: dict
    inputs: list[str]
    weights: list[np.ndarray] = field(default_factory=list)


@dataclass
class LayerGraph:
    nodes: list[Node]
    inputs: list[str]      # names of the InputLayer nodes
    outputs: list[str]     # names of the nodes whose outputs are the model's outputs
    name: str = "model"
    source_keras: str = "tf_keras"

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def consumers(self) -> dict[str, list[str]]:
        c: dict[str, list[str]] = {n.name: [] for n in self.nodes}
        for n in self.nodes:
            for i in n.inputs:
                c[i].append(n.name)
        return c

    def copy(self) -> LayerGraph:
        return LayerGraph([Node(n.name, n.cls, copy.deepcopy(n.config), list(n.inputs),
                                [np.array(w, copy=True) for w in n.weights]) for n in self.nodes],
                          list(self.inputs), list(self.outputs), self.name, self.source_keras)


def keras_of(model) -> str:
    return "tf_keras" if type(model).__module__.startswith("tf_keras") else "keras3"


def _history_names(obj) -> list[str]:
    """Names of the layers a Keras 3 node's arguments come from (their keras_history)."""
    found: list[str] = []
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            found.append(obj["config"]["keras_history"][0])
        else:
            for v in obj.values():
                found.extend(_history_names(v))
    elif isinstance(obj, list | tuple):
        for v in obj:
            found.extend(_history_names(v))
    return found


def _inbound(layer_cfg: dict) -> list[str]:
    nodes = layer_cfg.get("inbound_nodes") or []
    if not nodes:
        return []
    if len(nodes) > 1:
        raise ModelError(f"layer '{layer_cfg.get('name')}' is used {len(nodes)} times (shared weights); "
                         "compression needs each layer used once", layer=layer_cfg.get("name"),
                         hint="give each use its own layer")
    node = nodes[0]
    if isinstance(node, dict):  # Keras 3
        return _history_names(node.get("args", []))
    return [entry[0] for entry in node]  # Keras 2: [[name, node_index, tensor_index, kwargs], ...]


def _out_names(entries) -> list[str]:
    if entries and isinstance(entries[0], str):  # a single [name, 0, 0]
        return [entries[0]]
    return [e[0] for e in entries]


def from_keras(model) -> LayerGraph:
    """The layer graph of a tf_keras or Keras 3 Sequential or functional model."""
    cfg = model.get_config()
    kind = keras_of(model)
    layers = {layer.name: layer for layer in model.layers}
    nodes: list[Node] = []
    if "layers" not in cfg:
        raise ModelError(f"model '{model.name}' is not a Sequential or functional model",
                         hint="build it with keras.Sequential or the functional API")
    sequential = type(model).__name__ == "Sequential"
    if sequential:
        prev = None
        lcfgs = cfg["layers"]
        if not lcfgs or lcfgs[0]["class_name"] != "InputLayer":
            shape = tuple(model.inputs[0].shape)
            lcfgs = [{"class_name": "InputLayer", "config": {"name": "input", "batch_shape": list(shape)}}, *lcfgs]
        for lc in lcfgs:
            name = lc["config"]["name"]
            nodes.append(Node(name, lc["class_name"], lc["config"], [prev] if prev else []))
            prev = name
        inputs, outputs = [nodes[0].name], [prev]
    else:
        for lc in cfg["layers"]:
            name = lc.get("name") or lc["config"]["name"]
            nodes.append(Node(name, lc["class_name"], lc["config"], _inbound(lc)))
        inputs = _out_names(cfg["input_layers"])
        outputs = _out_names(cfg["output_layers"])
    for n in nodes:
        if n.cls in ("Functional", "Sequential", "Model"):
            raise ModelError(f"layer '{n.name}' is a nested model; compression works on flat models",
                             layer=n.name, hint="flatten the model (build it from its layers directly)")
        if n.cls != "InputLayer" and n.name in layers:
            n.weights = [np.asarray(w) for w in layers[n.name].get_weights()]
    return LayerGraph(nodes, inputs, outputs, name=model.name, source_keras=kind)


def _clean_config(cls, cfg: dict) -> dict:
    out = {}
    for k, v in cfg.items():
        if k in _DROP_KEYS or k.endswith(_DROP_SUFFIXES):
            continue
        if k == "dtype" and isinstance(v, dict):  # Keras 3 DTypePolicy
            v = v.get("config", {}).get("name", "float32")
        if k.endswith("_regularizer") and isinstance(v, dict):
            v = {"class_name": v.get("class_name"), "config": v.get("config", {})}
        out[k] = v
    if "batch_shape" in out and cls.__name__ == "InputLayer":
        out["batch_input_shape"] = out.pop("batch_shape")
    try:
        params = set(inspect.signature(cls.__init__).parameters)
    except (TypeError, ValueError):
        return out
    allowed = params | {"name", "trainable", "dtype", "input_shape", "batch_input_shape", "input_dim"}
    if "kwargs" not in params:
        out = {k: v for k, v in out.items() if k in allowed}
    else:
        out = {k: v for k, v in out.items() if k in allowed or k in ("activity_regularizer",)}
    return out


def make_layer(n: Node):
    """A tf_keras layer for node `n` (not yet called or weighted)."""
    import tf_keras

    cls = getattr(tf_keras.layers, n.cls, None)
    if cls is None or not isinstance(cls, type):
        raise ModelError(f"layer '{n.name}' is of class '{n.cls}', which tf_keras (Keras 2, what tfmot and "
                         "the compression methods work on) does not have", layer=n.name,
                         hint="rebuild the model from standard Keras layers")
    try:
        return cls(**_clean_config(cls, n.config))
    except (TypeError, ValueError) as e:
        raise ModelError(f"layer '{n.name}' ({n.cls}) cannot be rebuilt as a tf_keras layer ({e})",
                         layer=n.name, hint="rebuild the model from standard Keras layers") from None


def build(g: LayerGraph, *, set_weights: bool = True):
    """The tf_keras functional model of `g`, with its weights."""
    import tf_keras

    tensors: dict = {}
    made: dict = {}
    for n in g.nodes:
        if n.cls == "InputLayer":
            c = n.config
            shape = c.get("batch_shape") or c.get("batch_input_shape")
            tensors[n.name] = tf_keras.Input(batch_shape=tuple(shape), name=n.name,
                                             dtype=c.get("dtype") if isinstance(c.get("dtype"), str) else None)
            continue
        layer = make_layer(n)
        args = [tensors[i] for i in n.inputs]
        tensors[n.name] = layer(args if len(args) > 1 or _takes_list(n.cls) else args[0])
        made[n.name] = layer
    model = tf_keras.Model([tensors[i] for i in g.inputs],
                           [tensors[o] for o in g.outputs] if len(g.outputs) > 1 else tensors[g.outputs[0]],
                           name=g.name)
    if set_weights:
        for n in g.nodes:
            if n.name in made and n.weights:
                try:
                    made[n.name].set_weights(n.weights)
                except ValueError as e:
                    raise ModelError(f"layer '{n.name}' ({n.cls}): its weights do not fit the rebuilt layer ({e})",
                                     layer=n.name) from None
    return model


def _takes_list(cls: str) -> bool:
    return cls in ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate")


def to_tf_keras(model):
    """`model` itself when it is a tf_keras model, else its tf_keras rebuild (config + weights)."""
    if keras_of(model) == "tf_keras":
        return model
    rebuilt = build(from_keras(model))
    return rebuilt
