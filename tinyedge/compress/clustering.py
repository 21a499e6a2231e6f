"""Weight clustering (weight sharing) with tfmot's `cluster_weights`.

Each Conv2D kernel is clustered per output channel (K centroids per channel,
k-means++ initialisation), Dense kernels per tensor (so at most K per output
channel too); after pruning, the zeros are kept as their own centroid
(`preserve_sparsity`).  The wrappers are stripped.  Per output channel the
count of distinct values survives int8 conversion: BatchNormalization folding
multiplies a channel by one number, and per-channel quantization maps equal
values to equal integers, so the count can only fall.
"""

from __future__ import annotations

from ..errors import UsageError

CLUSTERED = ("Conv2D", "Dense")


def check_clusters(k: int) -> None:
    if not 2 <= int(k) <= 256:
        raise UsageError(f"--cluster must be between 2 and 256 (int8 has 256 values), got {k}")


def wrap(model, k: int, *, preserve_sparsity: bool):
    import tensorflow_model_optimization as tfmot
    import tf_keras

    cl = tfmot.clustering.keras
    init = cl.CentroidInitialization.KMEANS_PLUS_PLUS

    def clone(layer):
        if type(layer).__name__ == "InputLayer":
            return layer.__class__.from_config(layer.get_config())
        if type(layer).__name__ in CLUSTERED:
            per_channel = type(layer).__name__ == "Conv2D"
            n = int(layer.kernel.shape.num_elements())
            per = n // int(layer.kernel.shape[-1]) if per_channel else n
            if per > k:  # else it has at most k values already
                # wraps this layer (centroids start from its weights)
                return cl.cluster_weights(layer, number_of_clusters=int(k), cluster_centroids_init=init,
                                          preserve_sparsity=preserve_sparsity, cluster_per_channel=per_channel)
        return layer

    return tf_keras.models.clone_model(model, clone_function=clone)


def strip(model):
    import tensorflow_model_optimization as tfmot

    return tfmot.clustering.keras.strip_clustering(model)
