"""Train the digits example: a small CNN on scikit-learn's bundled 8x8 digits (no download).

Writes, beside this script:
  model.h5    the float Keras model (tf_keras, i.e. Keras 2 format; tfmot can compress it)
  calib.npz   x: 200 inputs from the training split, for int8 calibration
  test.npz    x, y: 300 held-out inputs and their labels

Run:  .venv/bin/python examples/digits/train.py
The seed is fixed, so a re-run on the same machine gives the same split and
(up to TensorFlow's thread scheduling) the same weights.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

SEED = 1234
HERE = Path(__file__).resolve().parent
N_TEST = 300
N_CALIB = 200


def data():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[..., None]  # 1797 x 8 x 8 x 1, values in [0, 1]
    y = d.target.astype(np.int64)
    order = np.random.default_rng(SEED).permutation(len(x))
    test, train = order[:N_TEST], order[N_TEST:]
    return x[train], y[train], x[test], y[test]


def build():
    import tf_keras as keras

    layers = keras.layers
    return keras.Sequential([
        layers.Input((8, 8, 1), name="image"),
        layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
        layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2"),
        layers.MaxPooling2D(2, name="pool"),
        layers.Conv2D(32, 3, padding="same", activation="relu", name="conv3"),
        # average pool + flatten over the 4x4 map: AVERAGE_POOL_2D + RESHAPE, as in MLPerf Tiny's
        # models (GlobalAveragePooling2D would become MEAN).
        layers.AveragePooling2D(4, name="avgpool"),
        layers.Flatten(name="flatten"),
        layers.Dense(10, name="logits"),
        layers.Softmax(name="probs"),
    ], name="digits_cnn")


def main(out: Path = HERE) -> int:
    import tensorflow as tf

    random.seed(SEED)
    np.random.seed(SEED)
    tf.random.set_seed(SEED)
    xtr, ytr, xte, yte = data()
    model = build()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(xtr, ytr, epochs=40, batch_size=32, verbose=0, shuffle=True)
    _, acc = model.evaluate(xte, yte, verbose=0)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model.h5", include_optimizer=False)
    np.savez_compressed(out / "calib.npz", x=xtr[:N_CALIB])
    np.savez_compressed(out / "test.npz", x=xte, y=yte)
    print(f"float test accuracy {acc:.4f} on {len(xte)} samples; wrote {out}/model.h5, calib.npz, test.npz")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE))
