"""Fine-tuning for the compression methods: labels, distillation from a teacher, or both.

One loss for every phase.  For a classifier (its output a softmax, or logits
with integer labels) the loss is

    alpha * CE(labels, student)  +  (1 - alpha) * T^2 * KL(softmax(t / T) || softmax(s / T))

with `t` and `s` the teacher's and the student's logits (recovered as the log
of a softmax output: softmax(log p / T) is the tempered softmax of the
logits).  Without labels alpha is 0: label-free distillation from the
teacher's outputs on the training inputs.  A model that is not a classifier
is distilled with the mean squared error to the teacher's outputs.

L1 regularisation adds `l1 * sum |w|` over the chosen weights (conv and dense
kernels, or BatchNormalization scales for network slimming).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Progress = Callable[[int, int], None]


@dataclass
class Targets:
    """What a phase trains towards: integer labels and/or the teacher's outputs on the same inputs."""

    labels: np.ndarray | None
    teacher: np.ndarray | None        # teacher outputs (probabilities or logits, as the model gives)
    probs: bool                       # the model's output is a softmax
    classifier: bool


def is_probs_output(model) -> bool:
    last = model.layers[-1]
    cls = type(last).__name__
    if cls == "Softmax":
        return True
    act = getattr(last, "activation", None)
    return getattr(act, "__name__", "") == "softmax"


def _log_probs(tf, p):
    return tf.math.log(tf.clip_by_value(p, 1e-7, 1.0))


def make_loss(targets: Targets, *, temperature: float, alpha: float):
    """A Keras loss over y_true = [label, teacher outputs...] packed in one float row."""
    import tensorflow as tf

    use_labels = targets.labels is not None
    use_teacher = targets.teacher is not None
    a = float(alpha) if (use_labels and use_teacher) else (1.0 if use_labels else 0.0)
    T = float(temperature)
    probs, classifier = targets.probs, targets.classifier

    def loss(y_true, y_pred):
        y_pred = tf.reshape(y_pred, [tf.shape(y_pred)[0], -1])
        total = 0.0
        if not classifier:
            return tf.reduce_mean(tf.square(y_true[:, 1:] - y_pred), axis=-1)
        s_logits = _log_probs(tf, y_pred) if probs else y_pred
        if a > 0:
            labels = tf.cast(y_true[:, 0], tf.int32)
            total += a * tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=s_logits)
        if a < 1:
            t_out = y_true[:, 1:]
            t_logits = _log_probs(tf, t_out) if probs else t_out
            t_soft = tf.nn.softmax(t_logits / T)
            s_log_soft = tf.nn.log_softmax(s_logits / T)
            kd = tf.reduce_sum(t_soft * (tf.math.log(tf.clip_by_value(t_soft, 1e-12, 1.0)) - s_log_soft), axis=-1)
            total += (1.0 - a) * (T * T) * kd
        return total

    return loss


def pack(targets: Targets, n: int) -> np.ndarray:
    lab = targets.labels.astype(np.float32).reshape(n, 1) if targets.labels is not None else np.zeros((n, 1), np.float32)
    if targets.teacher is not None:
        return np.concatenate([lab, targets.teacher.reshape(n, -1).astype(np.float32)], axis=1)
    return lab


def l1_penalty(model, l1: float, target: str = "kernels"):
    """A callable loss: l1 * sum |w| over conv/dense kernels, or over BatchNormalization scales."""
    import tensorflow as tf

    ws = []
    for layer in model.layers:
        cls = type(layer).__name__
        if target == "bn" and cls == "BatchNormalization" and getattr(layer, "gamma", None) is not None:
            ws.append(layer.gamma)
        elif target == "kernels" and cls in ("Conv2D", "Dense", "DepthwiseConv2D", "SeparableConv2D"):
            ws.extend(w for w in layer.trainable_weights if "kernel" in w.name)
    if not ws:
        return None
    return lambda: l1 * tf.add_n([tf.reduce_sum(tf.abs(w)) for w in ws])


class _EpochProgress:
    def __init__(self, progress: Progress | None, offset: int, total: int):
        self.progress, self.offset, self.total = progress, offset, total

    def callback(self):
        import tf_keras

        def on_epoch_end(epoch, logs=None):
            if self.progress is not None:
                self.progress(self.offset + epoch + 1, self.total)

        return tf_keras.callbacks.LambdaCallback(on_epoch_end=on_epoch_end)


def fit(model, x: np.ndarray, targets: Targets, *, epochs: int, batch_size: int = 32, lr: float = 1e-3,
        temperature: float = 4.0, alpha: float = 0.5, l1: float = 0.0, l1_target: str = "kernels",
        callbacks=(), progress: Progress | None = None, progress_offset: int = 0, progress_total: int = 0,
        seed: int = 0) -> list[float]:
    """Train `model` (tf_keras) in place; returns the loss per epoch.  Ctrl-C propagates (nothing is
    written here), so the caller's output stays untouched."""
    import tensorflow as tf
    import tf_keras

    tf.random.set_seed(seed)
    if l1:
        pen = l1_penalty(model, l1, l1_target)
        if pen is not None:
            model.add_loss(pen)
    model.compile(optimizer=tf_keras.optimizers.Adam(lr), loss=make_loss(targets, temperature=temperature,
                                                                         alpha=alpha))
    cbs = [*callbacks, _EpochProgress(progress, progress_offset, progress_total or epochs).callback()]
    hist = model.fit(x, pack(targets, len(x)), epochs=epochs, batch_size=batch_size, verbose=0,
                     shuffle=True, callbacks=cbs)
    return [float(v) for v in hist.history.get("loss", [])]
