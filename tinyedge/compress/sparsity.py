"""Magnitude pruning (unstructured, or N:M such as 2:4) with tfmot's `prune_low_magnitude`.

Conv2D, SeparableConv2D and Dense kernels are pruned (DepthwiseConv2D too for
unstructured sparsity) along a PolynomialDecay schedule from 0 to the target
over the first part of fine-tuning, then held; the wrappers are stripped, so
the result is a plain model whose zeros are real zeros.  Zeros survive int8
conversion: BatchNormalization folding scales each output channel, and
quantization maps 0 to 0 (symmetric int8 weights).
"""

from __future__ import annotations

import re

from ..errors import UsageError

PRUNED = ("Conv2D", "Dense", "SeparableConv2D", "DepthwiseConv2D")


def parse_pattern(pattern: str | None) -> tuple[int, int] | None:
    if pattern is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", str(pattern))
    if not m or not 0 < int(m.group(1)) < int(m.group(2)):
        raise UsageError(f"--sparsity-pattern must be N:M with 0 < N < M (e.g. 2:4), got {pattern!r}")
    return int(m.group(1)), int(m.group(2))


def check_sparsity(sparsity: float) -> None:
    if not 0.0 < sparsity < 1.0:
        raise UsageError(f"--prune must be between 0 and 1 (exclusive), got {sparsity}",
                         hint="give the fraction of weights to set to zero, e.g. 0.8")


def wrap(model, sparsity: float | None, pattern: tuple[int, int] | None, steps: int):
    """(the model with pruning wrappers, its callbacks)."""
    import tensorflow_model_optimization as tfmot
    import tf_keras

    sp = tfmot.sparsity.keras
    end = max(1, int(steps * 0.7))
    if pattern is not None:
        kw = {"sparsity_m_by_n": pattern, "pruning_schedule": sp.ConstantSparsity(0.5, begin_step=0, frequency=1)}
    else:
        kw = {"pruning_schedule": sp.PolynomialDecay(initial_sparsity=0.0, final_sparsity=float(sparsity),
                                                     begin_step=0, end_step=end, frequency=max(1, end // 20))}

    def clone(layer):
        if type(layer).__name__ == "InputLayer":
            return layer.__class__.from_config(layer.get_config())
        cls = type(layer).__name__
        if cls in PRUNED and not (pattern is not None and cls == "DepthwiseConv2D"):
            return sp.prune_low_magnitude(layer, **kw)  # wraps this layer: its weights are kept
        return layer

    return tf_keras.models.clone_model(model, clone_function=clone), [sp.UpdatePruningStep()]


def strip(model):
    import tensorflow_model_optimization as tfmot

    return tfmot.sparsity.keras.strip_pruning(model)
