"""Runtime tflm for real: TFLite Micro 90b983c2 + CMSIS-NN built here from the pinned sources, on QEMU.

Each project is generated, built (the firmware with arm-none-eabi-gcc against
the per-core TFLM library of tinyedge.tflm_library, cached by content in
~/.cache/tinyedge/tflm; the built project cached by tests/build_cache.py),
started on the emulated board, and validated over the serial protocol
against the tflite-micro interpreter: bit-exact on every output byte, on the
four MLPerf Tiny models and the digits example, on all four emulated cores
(Cortex-M3: CMSIS-NN's plain C; M4/M7: its DSP paths; M55: its MVE paths).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from build_cache import cached_build
from conftest import REPO, require_tool

pytestmark = [pytest.mark.slow, pytest.mark.qemu]

BOARDS = ["qemu-cortex-m3", "qemu-cortex-m4", "qemu-cortex-m7", "qemu-cortex-m55"]
MODELS = ["ad01", "kws", "resnet", "vww", "digits"]
DIGITS = REPO / "examples" / "digits"


@pytest.fixture(scope="session")
def digits_tflite(tmp_path_factory) -> Path:
    from tinyedge.conversion import convert

    if not (DIGITS / "model.h5").is_file():
        pytest.skip("examples/digits/model.h5 is not in this checkout")
    out = tmp_path_factory.mktemp("digits") / "digits_int8.tflite"
    convert(DIGITS / "model.h5", out=out, calib=DIGITS / "calib.npz")
    return out


@pytest.fixture(scope="session")
def tflm_models(mlperf_tflite, digits_tflite) -> dict[str, Path]:
    return {**mlperf_tflite, "digits": digits_tflite}


def _validate_on_qemu(folder: Path, board_id: str, tflite: Path, data: Path | None, samples: int) -> dict:
    from tinyedge.boards import get_board
    from tinyedge.flashers import get_flasher
    from tinyedge.link import Device
    from tinyedge.validation import validate_device

    res = get_flasher("qemu").flash(folder, get_board(board_id))
    with Device.from_flash(res, timeout=60) as dev:
        assert dev.info().runtime == "tflm"
        return validate_device(dev, tflite, data=data, samples=samples)


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("name", MODELS)
def test_tflm_cmsis_nn_bit_exact_on_qemu(shared_sources, tflm_models, board, name):
    require_tool("qemu-system-arm")
    require_tool("arm-none-eabi-g++")
    require_tool("cmake")
    tflite = tflm_models[name]
    folder, record = cached_build(tflite, board, "tflm")
    data = DIGITS / "test.npz" if name == "digits" else None
    rep = _validate_on_qemu(folder, board, tflite, data, samples=12 if name == "digits" else 4)
    agree = rep["agreement"]
    assert rep["samples"] == rep["samples_requested"]
    assert agree["bit_exact_rate"] == 1.0 and agree["max_abs_diff"] == 0, f"{name} on {board}: {agree}"
    assert rep["latency"]["unit"] == "instructions" and rep["latency"]["min"] > 0
    if name == "digits":
        assert rep["accuracy"]["device"] == rep["accuracy"]["int8_host"]


def test_tflm_firmware_holds_the_cmsis_nn_kernels(shared_sources, mlperf_tflite):
    """The M4 firmware runs CMSIS-NN's DSP kernels (not TFLM's reference ones), linked from the cached library,
    and the project was configured with the local trees (FETCHCONTENT_SOURCE_DIR_*), nothing fetched."""
    require_tool("arm-none-eabi-g++")
    folder, record = cached_build(mlperf_tflite["kws"], "qemu-cortex-m4", "tflm")
    nm = subprocess.run(["arm-none-eabi-nm", "-C", record["artifacts"]["elf"]], capture_output=True, text=True,
                        check=True).stdout
    assert re.search(r" T arm_convolve_s8\b", nm) or re.search(r" T arm_depthwise_conv", nm), "no CMSIS-NN kernel"
    assert " T arm_fully_connected_s8" in nm
    assert "__dso_handle" not in nm and "__cxa_atexit" not in nm
    cache = (folder / "build" / "CMakeCache.txt").read_text()
    assert re.search(r"^TE_TFLM_LIBRARY:\w+=.*/tinyedge/tflm/[0-9a-f]{24}/libtflm\.a$", cache, re.M)
    for name in ("TFLITE_MICRO", "FLATBUFFERS", "GEMMLOWP", "RUY", "CMSIS_NN", "CMSIS_6"):
        m = re.search(rf"^FETCHCONTENT_SOURCE_DIR_{name}:\w+=(.+)$", cache, re.M)
        assert m and Path(m.group(1)).is_dir(), name
    assert "FETCHCONTENT_FULLY_DISCONNECTED:BOOL=ON" in cache


def test_tflm_m55_firmware_runs_cmsis_nn_mve_paths(shared_sources, mlperf_tflite):
    """On qemu-cortex-m55 (-mcpu=cortex-m55: __ARM_FEATURE_MVE, so CMSIS-NN's ARM_MATH_MVEI) the linked
    CMSIS-NN matrix kernels are the Helium ones: VLDRB + VMLADAVA (objdump's `vmlava`) in their code."""
    require_tool("arm-none-eabi-g++")
    folder, record = cached_build(mlperf_tflite["kws"], "qemu-cortex-m55", "tflm")
    out = subprocess.run([require_tool("arm-none-eabi-objdump"), "-d", "-m", "armv8.1-m.main",
                          record["artifacts"]["elf"]], capture_output=True, text=True, check=True).stdout
    parts = re.split(r"^[0-9a-f]+ <([A-Za-z_0-9.]+)>:$", out, flags=re.M)
    funcs = {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}
    mve = sorted(f for f, body in funcs.items() if f.startswith("arm_") and "vmlava.s8" in body and "vldrb" in body)
    assert "arm_nn_mat_mult_nt_t_s8" in mve or "arm_nn_vec_mat_mult_t_s8" in mve, mve
    assert any(f.startswith("arm_nn_depthwise_conv") or f.startswith("arm_depthwise_conv") for f in funcs
               if "vmul.i32" in funcs[f]), "no MVE depthwise kernel"


def test_tflm_library_is_one_per_core(shared_sources, mlperf_tflite, digits_tflite):
    """Models whose ops the default kernel set covers share one cached TFLM library per core."""
    from tinyedge.tflm_library import library_key

    def key(model, board):
        folder, _ = cached_build(model, board, "tflm")
        return library_key(folder / "cmake" / "tflm.cmake", folder / "cmake" / "arm-none-eabi.cmake")

    keys = {key(m, "qemu-cortex-m4") for m in (mlperf_tflite["kws"], mlperf_tflite["vww"], digits_tflite)}
    assert len(keys) == 1
    assert key(mlperf_tflite["kws"], "qemu-cortex-m55") not in keys


def test_tflm_accuracy_matches_the_host_on_digits(shared_sources, digits_tflite):
    """The digits example on M55 (MVE kernels): same predictions as the host int8 model, over 100 test inputs."""
    folder, _ = cached_build(digits_tflite, "qemu-cortex-m55", "tflm")
    rep = _validate_on_qemu(folder, "qemu-cortex-m55", digits_tflite, DIGITS / "test.npz", samples=100)
    assert rep["agreement"]["bit_exact_rate"] == 1.0
    assert rep["accuracy"]["device"] == rep["accuracy"]["int8_host"] and rep["accuracy"]["device"] > 0.8
    assert np.isfinite(rep["latency"]["median"])
