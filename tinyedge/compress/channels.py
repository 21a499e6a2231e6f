"""Structured channel pruning that physically removes filters, dependency-aware.

Every tensor's last axis is a row of channel ids.  A layer that makes new
channels (Conv2D, Dense, SeparableConv2D, Conv2DTranspose) gets fresh ids;
per-channel layers (BatchNormalization, activations, pooling, DepthwiseConv2D
with depth multiplier 1, padding, dropout) pass their input's ids on; Flatten
repeats them over the spatial positions; Concatenate joins its inputs' rows;
an elementwise merge (Add, Multiply, ...) ties its inputs' ids together one
to one (union-find).  Tied channels are kept or removed together.  Channels
that reach a model output, a model input, or a layer this module does not
know (Reshape, a softmax over channels, ...) are fixed, with the reason.

Channels are ranked by the L1 (or L2) norm of their producer's weights,
normalised per layer, or by the scale of the BatchNormalization that follows
("network slimming", best trained with L1 on those scales).  Within each set
of channels shared by the same producers, the lowest-ranked `ratio` are
removed, never the last one.  The result is an ordinary, smaller model.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError, UsageError
from .ir import LayerGraph, build

PRODUCERS = {"Conv2D", "Dense", "SeparableConv2D", "Conv2DTranspose", "Conv1D"}
PASS = {"Activation", "ReLU", "LeakyReLU", "ELU", "Dropout", "SpatialDropout2D", "GaussianNoise",
        "GaussianDropout", "MaxPooling2D", "AveragePooling2D", "MaxPooling1D", "AveragePooling1D",
        "GlobalAveragePooling2D", "GlobalMaxPooling2D", "GlobalAveragePooling1D", "GlobalMaxPooling1D",
        "ZeroPadding2D", "UpSampling2D", "Cropping2D", "BatchNormalization", "Identity",
        "ActivityRegularization"}
MERGES = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"}
CRITERIA = ("l1", "l2", "bn")


class _UF:
    def __init__(self):
        self.parent: list[int] = []

    def new(self, n: int) -> np.ndarray:
        start = len(self.parent)
        self.parent.extend(range(start, start + n))
        return np.arange(start, start + n)

    def find(self, a: int) -> int:
        p = self.parent
        while p[a] != a:
            p[a] = p[p[a]]
            a = p[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _last_axis(cfg: dict, ndim: int) -> bool:
    axis = cfg.get("axis", -1)
    if isinstance(axis, list | tuple):
        axis = axis[0] if len(axis) == 1 else None
    return axis in (-1, ndim - 1)


def _trace(g: LayerGraph, shapes: dict[str, tuple]):
    """Channel ids per node output, the union-find of ties, fixed ids with reasons, producers."""
    uf = _UF()
    refs: dict[str, np.ndarray] = {}
    why: dict[int, str] = {}
    producers: dict[str, np.ndarray] = {}

    def fix(ids, reason):
        for i in np.asarray(ids).reshape(-1):
            why.setdefault(int(i), reason)

    for n in g.nodes:
        shape = shapes[n.name]
        c = int(shape[-1]) if shape else 1
        ins = [refs[i] for i in n.inputs]
        cfg = n.config
        cls = n.cls
        if cls == "InputLayer":
            r = uf.new(c)
            fix(r, f"they are the model input '{n.name}'")
        elif cls in PRODUCERS and int(cfg.get("groups", 1) or 1) == 1 and cfg.get("data_format", "channels_last") \
                in (None, "channels_last"):
            r = uf.new(c)
            producers[n.name] = r
        elif cls == "DepthwiseConv2D" and int(cfg.get("depth_multiplier", 1)) == 1 and len(ins[0]) == c:
            r = ins[0]
        elif cls in PASS and len(ins) == 1 and len(ins[0]) == c and \
                (cls != "BatchNormalization" or _last_axis(cfg, len(shape))):
            r = ins[0]
        elif cls in MERGES and all(len(x) == c for x in ins):
            for x in ins[1:]:
                for a, b in zip(ins[0], x, strict=True):
                    uf.union(int(a), int(b))
            r = ins[0]
        elif cls == "Concatenate" and _last_axis(cfg, len(shape)) and sum(len(x) for x in ins) == c:
            r = np.concatenate(ins)
        elif cls == "Flatten" and len(ins) == 1 and c % max(len(ins[0]), 1) == 0:
            r = np.tile(ins[0], c // len(ins[0]))
        else:
            reason = f"they enter layer '{n.name}' ({cls}), which channel pruning does not see through"
            for x in ins:
                fix(x, reason)
            r = uf.new(c)
            fix(r, f"they come out of layer '{n.name}' ({cls}), which channel pruning does not see through")
            if cls in PRODUCERS:
                producers[n.name] = r
        refs[n.name] = r
    for o in g.outputs:
        fix(refs[o], f"they are the model output '{o}'")
    return uf, refs, why, producers


def _scores(g: LayerGraph, name: str, criterion: str, consumers: dict[str, list[str]]) -> np.ndarray:
    n = g.node(name)
    if criterion == "bn":
        nxt = consumers.get(name, [])
        if len(nxt) == 1 and g.node(nxt[0]).cls == "BatchNormalization":
            bn = g.node(nxt[0])
            if bn.config.get("scale", True):
                s = np.abs(bn.weights[0])
                return s / (s.mean() + 1e-12)
    w = n.weights[0]
    if n.cls == "SeparableConv2D":
        w = n.weights[1]
    if n.cls == "Conv2DTranspose":
        w = np.moveaxis(w, 2, -1)
    flat = w.reshape(-1, w.shape[-1])
    s = np.sqrt((flat ** 2).sum(0)) if criterion == "l2" else np.abs(flat).sum(0)
    return s / (s.mean() + 1e-12)


def plan(g: LayerGraph, ratio: float, *, criterion: str = "l1", layers: list[str] | None = None):
    """Which channel ids to remove; returns (refs, removed ids, per-producer before/after counts)."""
    if not 0.0 < ratio < 1.0:
        raise UsageError(f"--prune-channels must be between 0 and 1 (exclusive), got {ratio}",
                         hint="give the fraction of channels to remove, e.g. 0.5")
    if criterion not in CRITERIA:
        raise UsageError(f"unknown channel criterion {criterion!r}", hint=f"use one of: {', '.join(CRITERIA)}")
    model = build(g, set_weights=False)
    shapes = {n.name: tuple(model.get_layer(n.name).output.shape) for n in g.nodes}
    uf, refs, why, producers = _trace(g, shapes)
    consumers = g.consumers()
    names = set(producers) if layers is None else set(layers)
    for name in names - set(producers):
        try:
            n = g.node(name)
        except KeyError:
            raise UsageError(f"there is no layer '{name}' in the model") from None
        raise ModelError(f"layer '{name}' ({n.cls}) cannot be channel-pruned: it makes no channels of its own "
                         "(only Conv2D, SeparableConv2D, Conv2DTranspose and Dense layers do)", layer=name)
    fixed_roots: dict[int, str] = {}
    for i, reason in why.items():
        fixed_roots.setdefault(uf.find(i), reason)
    # score each class (set of tied channels) and group the classes by the producers they span
    score: dict[int, float] = {}
    span: dict[int, set[str]] = {}
    for name, ids in producers.items():
        s = _scores(g, name, criterion, consumers)
        for i, v in zip(ids, s, strict=True):
            root = uf.find(int(i))
            score[root] = score.get(root, 0.0) + float(v)
            span.setdefault(root, set()).add(name)
    groups: dict[frozenset, list[int]] = {}
    for root, members in span.items():
        if root in fixed_roots or not members <= names:
            continue
        groups.setdefault(frozenset(members), []).append(root)
    if layers is not None:
        for name in layers:
            if not any(name in sig for sig in groups):
                roots = {uf.find(int(i)) for i in producers[name]}
                reason = next((fixed_roots[r] for r in roots if r in fixed_roots),
                              "its channels are tied to layers not named in --layers")
                raise ModelError(f"layer '{name}' ({g.node(name).cls}) cannot be channel-pruned: {reason}",
                                 layer=name)
    if not groups:
        reasons = sorted({fixed_roots[uf.find(int(i))] for ids in producers.values() for i in ids
                          if uf.find(int(i)) in fixed_roots})
        raise ModelError("no channel of the model can be pruned" + (f": {reasons[0]}" if reasons else
                         " (it has no Conv2D, SeparableConv2D or Dense layer)"),
                         hint="channel pruning needs convolution or dense layers whose outputs do not go "
                              "straight to the model output")
    removed_roots: set[int] = set()
    for roots in groups.values():
        k = min(int(np.floor(ratio * len(roots) + 1e-9)), len(roots) - 1)
        if k <= 0:
            continue
        order = sorted(roots, key=lambda r: (score[r] / len(span[r]), r))
        removed_roots.update(order[:k])
    removed = {i for i in range(len(uf.parent)) if uf.find(i) in removed_roots}
    counts = {name: (len(ids), int(sum(int(i) not in removed for i in ids))) for name, ids in producers.items()}
    return refs, removed, counts


def prune_channels(g: LayerGraph, ratio: float, *, criterion: str = "l1",
                   layers: list[str] | None = None) -> tuple[LayerGraph, dict]:
    """A copy of `g` with the lowest-ranked `ratio` of its prunable channels removed, and a summary."""
    refs, removed, counts = plan(g, ratio, criterion=criterion, layers=layers)
    out = g.copy()
    keep = {name: np.array([int(i) not in removed for i in r], dtype=bool) for name, r in refs.items()}
    for n in out.nodes:
        if n.cls == "InputLayer":
            continue
        om = keep[n.name]
        im = keep[n.inputs[0]] if n.inputs else None
        w = n.weights
        cfg = n.config
        if n.cls in ("Conv2D", "Conv1D") and w:
            w[0] = w[0][..., im, :][..., om]
            cfg["filters"] = int(om.sum())
        elif n.cls == "Dense" and w:
            w[0] = w[0][im][:, om]
            cfg["units"] = int(om.sum())
        elif n.cls == "Conv2DTranspose" and w:
            w[0] = w[0][:, :, om, :][:, :, :, im]
            cfg["filters"] = int(om.sum())
        elif n.cls == "SeparableConv2D" and w:
            dm = int(cfg.get("depth_multiplier", 1))
            w[0] = w[0][:, :, im, :]
            w[1] = w[1][:, :, np.repeat(im, dm), :][..., om]
            cfg["filters"] = int(om.sum())
        elif n.cls in ("DepthwiseConv2D",) and w:
            w[0] = w[0][:, :, om, :]
        elif n.cls == "BatchNormalization":
            n.weights = [x[om] for x in w]
            continue
        elif n.cls in PASS or n.cls in MERGES or n.cls in ("Concatenate", "Flatten"):
            continue
        else:
            for name in n.inputs:
                if not keep[name].all():
                    raise AssertionError(f"channel pruning left layer {n.name} ({n.cls}) with pruned inputs")
            if not om.all():
                raise AssertionError(f"channel pruning pruned the outputs of {n.name} ({n.cls})")
            continue
        if cfg.get("use_bias", True) and len(w) >= 2:
            w[-1] = w[-1][om]
    summary = {"ratio": ratio, "criterion": criterion,
               "layers": {name: {"channels_before": b, "channels_after": a} for name, (b, a) in counts.items()},
               "channels_removed": int(sum(b - a for b, a in counts.values()))}
    return out, summary
