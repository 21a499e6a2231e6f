"""Quantization-aware training with tfmot, preserving sparsity and clusters when they were made.

Plain QAT is `quantize_model`; after pruning it uses tfmot's
`Default8BitPrunePreserveQuantizeScheme` (PQAT), after clustering
`Default8BitClusterPreserveQuantizeScheme` (CQAT, with `preserve_sparsity`
when the model was pruned too: PCQAT), so the fake-quantized fine-tuning
keeps the zeros and the cluster counts.  The QAT model is saved with its
quantize wrappers; `tinyedge.conversion` loads it in tfmot's quantize scope
and the converter takes its learned ranges.
"""

from __future__ import annotations


def wrap(model, *, pruned: bool, clustered: bool):
    import tensorflow_model_optimization as tfmot

    q = tfmot.quantization.keras
    if not (pruned or clustered):
        return q.quantize_model(model)
    combine = tfmot.experimental.combine
    annotated = q.quantize_annotate_model(model)
    if clustered:
        scheme = combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=pruned)
    else:
        scheme = combine.Default8BitPrunePreserveQuantizeScheme()
    return q.quantize_apply(annotated, scheme)


def scope():
    import tensorflow_model_optimization as tfmot

    return tfmot.quantization.keras.quantize_scope()
