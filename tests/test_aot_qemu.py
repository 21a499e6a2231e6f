"""The aot kernels' Cortex-M4 DSP paths (SMLAD/SMLABB inline assembly) and Cortex-M55 Helium paths (MVE
intrinsics, firmware/kernels/te_mve_*.c) bit-exact on the emulated boards.

The host tests cannot reach the `__ARM_FEATURE_DSP` / `__ARM_FEATURE_MVE` code; here every zoo
model (all ops and options) is deployed to qemu-cortex-m4 and qemu-cortex-m55 (QEMU mps3-an547,
whose Cortex-M55 executes MVE) through the real pipeline (generate, arm-none-eabi-gcc, QEMU,
serial protocol) and its outputs are compared with the tflite-micro interpreter on 22 inputs
(20 random, all -128, all 127); the four MLPerf Tiny models run on qemu-cortex-m55 too (one
firmware run each, 3 inputs).
"""

from __future__ import annotations

import numpy as np
import pytest
from aot_zoo import BUILDERS, clamped_variant, left_shift_variant, zoo_tflite
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
@pytest.mark.parametrize("board", ["qemu-cortex-m4", "qemu-cortex-m55"])
@pytest.mark.parametrize("name", [*sorted(BUILDERS), "paired-clamped", "stream_a"])   # stream_a: row-streamed stages (test_stream.py)
def test_zoo_bit_exact_on_qemu(tmp_path, name, board):
    require_tool("qemu-system-arm")
    require_tool("arm-none-eabi-gcc")
    from tinyedge.pipeline import deploy

    if name == "paired-clamped":   # the non-_fast DSP kernels: ReLUs clamping above -128
        from tinyedge.aot.codegen import build_context, has_arm_dsp
        from tinyedge.boards import get_board

        path = tmp_path / "paired-clamped.tflite"
        path.write_bytes(clamped_variant(zoo_tflite("paired")))
        fns = {op.get("fn") for op in build_context(load_tflite(path), arm_dsp=has_arm_dsp(get_board(board)))["ops"]}
        if board == "qemu-cortex-m4":
            assert {"te_conv2d_s8_paired", "te_depthwise_conv2d_s8_g4", "te_fully_connected_s8_paired"} <= fns, fns
    else:
        path = zoo_tflite(name)
    x = _float_inputs(path)
    data = tmp_path / "x.npz"
    np.savez(data, x=x)
    report = deploy(path, board=board, runtime="aot", data=data, samples=len(x), out=tmp_path / "out",
                    timeout=60)
    agree = report["agreement"]
    assert agree["bit_exact_rate"] == 1.0, f"{name} on {board}: {agree}"
    assert agree["max_abs_diff"] == 0
    if name == "stream_a":   # it ran streamed: its arena is below the layer-by-layer plan's
        from tinyedge.planner import plan

        assert report["memory"]["arena_bytes"] < plan(load_tflite(path)).arena_bytes


@pytest.mark.slow
@pytest.mark.qemu
def test_left_shifts_bit_exact_on_qemu_cortex_m55(tmp_path):
    """The `depthwise` zoo model with its filters' scales raised per channel (aot_zoo.left_shift_variant):
    some channels requantize with a left shift, next to right shifts, on the Helium depthwise row
    bands, the small-window and the 16-byte dot-product CONV_2D paths."""
    require_tool("qemu-system-arm")
    require_tool("arm-none-eabi-gcc")
    from tinyedge.pipeline import deploy

    path = tmp_path / "left.tflite"
    path.write_bytes(left_shift_variant(zoo_tflite("depthwise")))
    g = load_tflite(path)
    lefts = 0
    for op in g.ops:
        if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            x, w, y = (g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]])
            lefts += int(np.sum(x.scale[0] * np.asarray(w.scale) / y.scale[0] >= 1.0))
    assert lefts > 0, "no channel requantizes with a left shift"
    x = _float_inputs(path)
    data = tmp_path / "x.npz"
    np.savez(data, x=x)
    report = deploy(path, board="qemu-cortex-m55", runtime="aot", data=data, samples=len(x), out=tmp_path / "out",
                    timeout=60)
    agree = report["agreement"]
    assert agree["bit_exact_rate"] == 1.0, agree
    assert agree["max_abs_diff"] == 0


def _mve_symbols(elf) -> dict[str, str]:
    """kernel function -> its disassembly (MVE decoded) for the te_mve_* functions of `elf`."""
    import re
    import subprocess

    out = subprocess.run([require_tool("arm-none-eabi-objdump"), "-d", "-m", "armv8.1-m.main", str(elf)],
                         capture_output=True, text=True, check=True).stdout
    parts = re.split(r"^[0-9a-f]+ <([A-Za-z_0-9.]+)>:$", out, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2) if parts[i].startswith("te_mve_")}


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.parametrize("name", ["ad01", "kws", "resnet", "vww"])
def test_mlperf_bit_exact_on_qemu_cortex_m55(mlperf_tflite, name):
    """The MLPerf Tiny models on the Helium paths: the firmware links te_mve_* (VMLADAVA in the
    conv / FC ones), and 3 inputs (random, all -128, all 127) agree with the tflite-micro interpreter."""
    require_tool("qemu-system-arm")
    require_tool("arm-none-eabi-gcc")
    from build_cache import cached_build

    from tinyedge.boards import get_board
    from tinyedge.flashers import get_flasher
    from tinyedge.link import Device
    from tinyedge.validation import Reference

    tflite = mlperf_tflite[name]
    folder, record = cached_build(tflite, "qemu-cortex-m55", "aot")
    mve = _mve_symbols(record["artifacts"]["elf"])
    assert mve, "no te_mve_* kernel in the Cortex-M55 firmware"
    assert any("vmlava.s8" in body for body in mve.values()), sorted(mve)
    ref = Reference(tflite.read_bytes())
    res = get_flasher("qemu").flash(folder, get_board("qemu-cortex-m55"))
    with Device.from_flash(res, timeout=120) as dev:
        shape = dev.info().inputs[0].shape
        rng = np.random.default_rng(11)
        for x in (rng.integers(-128, 128, size=shape), np.full(shape, -128), np.full(shape, 127)):
            x = x.astype(np.int8)
            y, count = dev.infer(x)
            want = ref.run(x).reshape(-1)
            got = np.asarray(y, dtype=np.int8).reshape(-1)
            assert np.array_equal(got, want), f"{name} on qemu-cortex-m55: {np.flatnonzero(got != want)[:10]}"
            assert count > 0
