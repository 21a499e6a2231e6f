"""Low-rank factorisation: a Dense or Conv2D layer as two thinner layers, by truncated SVD.

A Dense `in -> out` becomes Dense `in -> r` (no bias, linear) then Dense
`r -> out` (the bias and activation).  A Conv2D k x k `cin -> cout` becomes
a k x k conv `cin -> r` (same strides, padding, dilation) then a 1 x 1 conv
`r -> cout`: its kernel reshaped to (k*k*cin) x cout is factorised the same
way.  Both halves hold sqrt(S) so neither is badly scaled for int8.

The rank is a fraction of the full rank (`rank`) or the smallest that keeps
`energy` of the sum of squared singular values.  A factorisation pays off
only while r * (k*k*cin + cout) < k*k*cin*cout (params and MACs alike); a
layer past that break-even point is refused, with the numbers.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ModelError, UsageError
from .ir import LayerGraph, Node


def _matrix(n: Node) -> tuple[np.ndarray, tuple]:
    w = n.weights[0]
    if n.cls == "Dense":
        return w, w.shape
    return w.reshape(-1, w.shape[-1]), w.shape


def _eligible(n: Node) -> str | None:
    if n.cls not in ("Dense", "Conv2D"):
        return f"it is a {n.cls}; low-rank factorises Dense and Conv2D layers"
    if n.cls == "Conv2D" and int(n.config.get("groups", 1) or 1) != 1:
        return "it is a grouped convolution"
    if n.cls == "Conv2D" and n.config.get("data_format", "channels_last") not in (None, "channels_last"):
        return "it is channels_first"
    if not n.weights:
        return "it has no weights"
    return None


def choose_rank(s: np.ndarray, *, rank: float | None, energy: float | None) -> int:
    full = len(s)
    if rank is not None:
        return max(1, min(full, math.ceil(rank * full - 1e-9)))
    e = np.cumsum(s.astype(np.float64) ** 2)
    e = e / e[-1] if e[-1] > 0 else np.ones_like(e)
    return int(min(full, np.searchsorted(e, energy - 1e-12) + 1))


def factorize(g: LayerGraph, *, rank: float | None = None, energy: float | None = None,
              layers: list[str] | None = None) -> tuple[LayerGraph, dict]:
    """A copy of `g` with every eligible (or every named) layer factorised where it pays off."""
    if (rank is None) == (energy is None):
        raise UsageError("give low-rank either a rank ratio (--rank) or an energy threshold (--rank-energy)")
    if rank is not None and not 0.0 < rank <= 1.0:
        raise UsageError(f"--rank must be in (0, 1], got {rank}", hint="the fraction of the full rank to keep")
    if energy is not None and not 0.0 < energy < 1.0:
        raise UsageError(f"--rank-energy must be in (0, 1), got {energy}",
                         hint="the fraction of the singular values' energy to keep, e.g. 0.9")
    names = [n.name for n in g.nodes]
    if layers is not None:
        for name in layers:
            if name not in names:
                raise UsageError(f"there is no layer '{name}' in the model")
            reason = _eligible(g.node(name))
            if reason:
                raise ModelError(f"layer '{name}' cannot be low-rank factorised: {reason}", layer=name)
    out = g.copy()
    new_nodes: list[Node] = []
    done, refused = [], []
    for n in out.nodes:
        if (layers is not None and n.name not in layers) or (layers is None and _eligible(n)):
            new_nodes.append(n)
            continue
        m, shape = _matrix(n)
        u, s, vt = np.linalg.svd(m.astype(np.float64), full_matrices=False)
        r = choose_rank(s, rank=rank, energy=energy)
        rows, cols = m.shape
        before, after = rows * cols, r * (rows + cols)
        kept = float((s[:r] ** 2).sum() / max((s ** 2).sum(), 1e-30))
        info = {"layer": n.name, "class": n.cls, "rank": r, "full_rank": len(s), "params_before": before,
                "params_after": after, "break_even_rank": (before - 1) // (rows + cols), "energy_kept": round(kept, 6)}
        if after >= before:
            refused.append(info)
            if layers is not None:
                raise ModelError(
                    f"layer '{n.name}': rank {r} is past the break-even point ({after:,} weights factorised vs "
                    f"{before:,} as is; it pays off only up to rank {info['break_even_rank']})", layer=n.name,
                    hint="ask for a lower --rank or --rank-energy")
            new_nodes.append(n)
            continue
        sq = np.sqrt(s[:r])
        a = (u[:, :r] * sq).astype(np.float32)
        b = (sq[:, None] * vt[:r]).astype(np.float32)
        cfg = n.config
        first_cfg = dict(cfg, name=f"{n.name}_lowrank", use_bias=False, activation="linear")
        first_cfg.pop("kernel_regularizer", None)
        second_cfg = dict(cfg)
        if n.cls == "Dense":
            first_cfg["units"] = r
            first = Node(first_cfg["name"], "Dense", first_cfg, list(n.inputs), [a])
            second_w = [b]
        else:
            first_cfg["filters"] = r
            first = Node(first_cfg["name"], "Conv2D", first_cfg, list(n.inputs), [a.reshape(*shape[:3], r)])
            second_cfg.update(kernel_size=[1, 1], strides=[1, 1], padding="valid", dilation_rate=[1, 1])
            second_w = [b.reshape(1, 1, r, shape[-1])]
        if cfg.get("use_bias", True) and len(n.weights) > 1:
            second_w.append(n.weights[1])
        second = Node(n.name, n.cls, second_cfg, [first.name], second_w)
        new_nodes.extend([first, second])
        done.append(info)
    out.nodes = new_nodes
    if not done:
        detail = "; ".join(f"'{i['layer']}' rank {i['rank']}: {i['params_after']:,} >= {i['params_before']:,} weights"
                           for i in refused[:4])
        raise ModelError("low-rank factorisation pays off for no layer" + (f" ({detail})" if detail else
                         " (the model has no Dense or Conv2D layer)"), hint="ask for a lower --rank or --rank-energy")
    return out, {"rank": rank, "energy": energy, "layers": done, "refused": refused}
