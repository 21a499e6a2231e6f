"""Weight clustering (weight sharing) with tfmot's `cluster_weights`.

Each Conv2D kernel is clustered per output channel (K centroids per channel,
k-means++ initialisation) where tfmot can and the model was not pruned
(tfmot's per-channel clustering does not keep zeros), other kernels (Dense, separable
and depthwise convs, and convs whose channels have too few non-zero weights
for tfmot's initialisers) per tensor: K values per tensor are at most K per
output channel too.  After pruning, the zeros are kept as their own centroid
(`preserve_sparsity`).  The wrappers are stripped.  Per output channel the
count of distinct values survives int8 conversion: BatchNormalization folding
multiplies a channel by one number, and per-channel quantization maps equal
values to equal integers, so the count can only fall.
"""

from __future__ import annotations

from ..errors import UsageError

CLUSTERED = ("Conv2D", "Dense", "SeparableConv2D", "DepthwiseConv2D")


def check_clusters(k: int) -> None:
    if not 2 <= int(k) <= 256:
        raise UsageError(f"--cluster must be between 2 and 256 (int8 has 256 values), got {k}")


def wrap(model, k: int, *, preserve_sparsity: bool):
    """(the model with clustering wrappers, {layer: centroid initialisation used})."""
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf_keras

    cl = tfmot.clustering.keras
    used: dict[str, str] = {}
    init = cl.CentroidInitialization.KMEANS_PLUS_PLUS

    def clone(layer):
        if type(layer).__name__ == "InputLayer":
            return layer.__class__.from_config(layer.get_config())
        cls = type(layer).__name__
        if cls in CLUSTERED:
            kern = layer.trainable_weights[0]
            n = min(int(w.shape.num_elements()) for w in layer.trainable_weights if "bias" not in w.name)
            per = n // int(kern.shape[-1])
            # per output channel where tfmot can (Conv2D with more than k weights per channel), else per
            # tensor: k values in the tensor are at most k in each channel too.  tfmot's initialisers fail on
            # channels with too few non-zero weights (after pruning); then the next way is tried.
            # tfmot 0.8.1's per-channel clustering with preserve_sparsity loses the zeros (measured: an 80%
            # sparse conv came out 0% sparse), so after pruning every kernel is clustered per tensor.
            tries = [(True, init)] if cls == "Conv2D" and per > k and not preserve_sparsity else []
            tries += [(False, init), (False, cl.CentroidInitialization.LINEAR)] if n > k else []
            for per_channel, how in tries:
                w = cl.cluster_weights(layer, number_of_clusters=int(k), cluster_centroids_init=how,
                                       preserve_sparsity=preserve_sparsity, cluster_per_channel=per_channel)
                try:
                    w.build(layer.input_shape)  # wraps this layer: centroids start from its weights
                except tf.errors.InvalidArgumentError:
                    continue
                used[layer.name] = ("per channel" if per_channel else "per tensor") + \
                    (", k-means++" if how == init else ", linear")
                return w
            if per <= k and cls == "Conv2D" and not tries:
                used[layer.name] = f"not clustered: {per} weights per channel, at most {k} values already"
            else:
                used[layer.name] = "not clustered: tfmot could not initialise its centroids"
            if preserve_sparsity:
                layer.trainable = False  # training it unwrapped would fill its zeros back in
                used[layer.name] += "; frozen to keep its zeros"
        return layer

    return tf_keras.models.clone_model(model, clone_function=clone), used


def strip(model):
    import tensorflow_model_optimization as tfmot

    return tfmot.clustering.keras.strip_clustering(model)
