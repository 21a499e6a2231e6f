"""tinyedge.data.load_data: the calibration/test data contract (.npz with x and optional y, or .npy)."""

from __future__ import annotations

import numpy as np
import pytest

from tinyedge.data import load_data
from tinyedge.errors import InputFileError


def test_npz_with_labels(tmp_path):
    x = np.arange(5 * 8 * 8, dtype=np.float64).reshape(5, 8, 8, 1)
    y = np.array([3, 1, 4, 1, 5], dtype=np.int32)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    gx, gy = load_data(tmp_path / "d.npz", input_shape=(1, 8, 8, 1))
    assert gx.dtype == np.float32 and gx.shape == (5, 8, 8, 1)
    np.testing.assert_array_equal(gx, x.astype(np.float32))
    assert gy.dtype == np.int64 and gy.tolist() == [3, 1, 4, 1, 5]


def test_npy_and_shapes_with_or_without_batch(tmp_path):
    x = np.zeros((3, 640), dtype=np.float32)
    np.save(tmp_path / "d.npy", x)
    for shape in [(1, 640), (None, 640), (640,), (-1, 640)]:
        gx, gy = load_data(tmp_path / "d.npy", input_shape=shape)
        assert gx.shape == (3, 640) and gy is None


def test_single_sample_gets_a_sample_axis(tmp_path):
    np.save(tmp_path / "one.npy", np.ones((8, 8, 1), dtype=np.float32))
    gx, _ = load_data(tmp_path / "one.npy", input_shape=(1, 8, 8, 1))
    assert gx.shape == (1, 8, 8, 1)


def test_samples_caps_x_and_y(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((10, 4), np.float32), y=np.arange(10))
    gx, gy = load_data(tmp_path / "d.npz", samples=3)
    assert gx.shape == (3, 4) and gy.tolist() == [0, 1, 2]


def test_one_hot_labels_become_class_numbers(tmp_path):
    y = np.eye(4)[[2, 0, 3]]
    np.savez(tmp_path / "d.npz", x=np.zeros((3, 4), np.float32), y=y)
    _, gy = load_data(tmp_path / "d.npz")
    assert gy.tolist() == [2, 0, 3]


@pytest.mark.parametrize("make, needle", [
    (lambda p: np.savez(p / "d.npz", x=np.zeros((4, 10, 49, 1), np.float32)), "shape 4x10x49x1"),
    (lambda p: np.savez(p / "d.npz", inputs=np.zeros((4, 49, 10, 1))), "no array 'x'"),
    (lambda p: np.savez(p / "d.npz", x=np.zeros((4, 49, 10, 1)), y=np.zeros(3)), "x holds 4 samples"),
    (lambda p: np.savez(p / "d.npz", x=np.full((2, 49, 10, 1), np.nan)), "NaN"),
    (lambda p: (p / "d.npz").write_bytes(b"PK\x03\x04 broken zip"), "cannot read"),
])
def test_bad_data_is_one_clear_error(tmp_path, make, needle):
    make(tmp_path)
    with pytest.raises(InputFileError) as e:
        load_data(tmp_path / "d.npz", input_shape=(1, 49, 10, 1))
    assert needle in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_and_wrong_kind(tmp_path):
    with pytest.raises(InputFileError, match="does not exist"):
        load_data(tmp_path / "nope.npz")
    (tmp_path / "d.csv").write_text("1,2,3\n")
    with pytest.raises(InputFileError, match="not a .npz or .npy"):
        load_data(tmp_path / "d.csv")
