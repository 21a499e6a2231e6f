"""The aot kernels' Cortex-M4 DSP paths (SMLAD/SMLABB inline assembly) bit-exact on the emulated board.

The host tests cannot reach the `__ARM_FEATURE_DSP` code; here every zoo
model (all ops and options) is deployed to qemu-cortex-m4 through the real
pipeline (generate, arm-none-eabi-gcc, QEMU, serial protocol) and its outputs
are compared with the tflite-micro interpreter on 22 inputs (20 random, all
-128, all 127).
"""

from __future__ import annotations

import numpy as np
import pytest
from aot_zoo import BUILDERS, zoo_tflite
from conftest import require_tool

from tinyedge.graph import load_tflite


def _float_inputs(path, n_random=20, seed=5):
    g = load_tflite(path)
    t = g.tensors[g.inputs[0]]
    shape = t.shape[1:] if t.shape and t.shape[0] == 1 else t.shape
    rng = np.random.default_rng(seed)
    q = [rng.integers(-128, 128, size=shape) for _ in range(n_random)]
    q += [np.full(shape, -128), np.full(shape, 127)]
    scale, zp = float(t.scale[0]), int(t.zero_point[0])
    # dequantized exactly at the int8 grid points, so the pipeline quantizes back to the same bytes
    return np.stack([(np.asarray(v, np.float64) - zp) * scale for v in q]).astype(np.float32)


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_zoo_bit_exact_on_qemu_cortex_m4(tmp_path, name):
    require_tool("qemu-system-arm")
    require_tool("arm-none-eabi-gcc")
    from tinyedge.pipeline import deploy

    path = zoo_tflite(name)
    x = _float_inputs(path)
    data = tmp_path / "x.npz"
    np.savez(data, x=x)
    report = deploy(path, board="qemu-cortex-m4", runtime="aot", data=data, samples=len(x), out=tmp_path / "out",
                    timeout=60)
    agree = report["agreement"]
    assert agree["bit_exact_rate"] == 1.0, f"{name} on qemu-cortex-m4: {agree}"
    assert agree["max_abs_diff"] == 0
