"""The aot firmware's flash (issue 19: at most the int8 weights + int32 biases + 12 KB): the kernels
a model does not use are not linked, the per-op constants stay compact, and SOFTMAX's exp table
holds only the entries that can change an output (and dropping the rest changes no output).

Exact sizes of specific things, from a build the QEMU tests make anyway (kws on the Cortex-M4) and
from the generator's C text (ResNet-8); no wall time."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest
from conftest import require_tool

from tinyedge.aot import quant as q
from tinyedge.aot.codegen import render
from tinyedge.graph import load_tflite

INT32_MAX = (1 << 31) - 1


def _clz32(x: int) -> int:
    return 32 - x.bit_length() if x > 0 else (0 if x < 0 else 32)


def _softmax_row(x: list[int], table: list[int], reach: int) -> list[int]:
    """te_softmax_s8 on one row (te_activation.c), reading 0 at and past `reach`."""
    mx = max(x)

    def e(v: int) -> int:
        k = mx - v
        return table[k] if k < reach else 0

    s = q._wrap32(sum(q.rdbpot(e(v), 12) for v in x))
    headroom = _clz32(s)
    scale = q.one_over_one_plus_x_for_x_in_0_1(q._wrap32(((s << headroom) & 0xFFFFFFFF) - (1 << 31)))
    return [max(-128, min(127, q.rdbpot(q.srdhm(scale, e(v)), 12 - headroom + 23) - 128)) for v in x]


def test_softmax_exp_table_keeps_only_what_changes_an_output():
    """Over input scales from 1/256 to 2 and rows whose differences reach every table index, the
    trimmed table gives every output the full one gives; the kept prefix is short where the scale
    is coarse (kws's softmax input scale: 96 of 256 entries)."""
    rng = np.random.default_rng(19)
    for scale in np.geomspace(1 / 256, 2.0, 24):
        table = q.softmax_exp_table(1.0, float(np.float32(scale)))
        reach = q.softmax_exp_reach(table)
        assert 1 <= reach <= 256 and all(v < 2048 for v in table[reach:])
        for depth in (2, 10, 64):
            for _ in range(6):
                x = [int(v) for v in rng.integers(-128, 128, size=depth)]
                x[0], x[-1] = 127, int(rng.integers(-128, 128))
                if rng.random() < 0.5:
                    x[1 % depth] = -128   # the largest difference, 255
                assert _softmax_row(x, table, reach) == _softmax_row(x, table, 256), (scale, depth, x)
        # rows piled up at the boundary: many elements at the last kept index and the first dropped one
        for k in (reach - 1, reach, reach + 1):
            if k <= 255:
                x = [127] + [127 - k] * 40 + [127 - min(k + 1, 255)] * 40
                assert _softmax_row(x, table, reach) == _softmax_row(x, table, 256), (scale, k)
    assert q.softmax_exp_reach(q.softmax_exp_table(1.0, float(np.float32(0.14469251)))) == 96
    assert q.softmax_exp_reach(q.softmax_exp_table(1.0, float(np.float32(0.01463622)))) == 256


def test_resnet8_links_only_the_kernel_variants_it_uses(mlperf_tflite):
    """ResNet-8's ADDs take te_add_s8_flat (te_binary's general code unlinked), its global average
    pool te_avg_pool_s8_global, its convs the 16-byte per-pair constants."""
    files, _ = render(load_tflite(mlperf_tflite["resnet"]), "te_model", "auto", arm_dsp=True, schedule="layer")
    c = files["model.c"]
    calls = re.findall(r"\b(te_[a-z0-9_]+)\(&te_model_op\d+", c)
    assert calls.count("te_add_s8_flat") == 3 and "te_add_s8" not in calls
    assert calls.count("te_avg_pool_s8_global") == 1 and "te_avg_pool_s8" not in calls
    assert calls.count("te_conv2d_s8_paired_fast_packed") == 9, sorted(set(calls))
    exp = re.search(r"const int32_t te_model_op\d+_exp\[(\d+)\]", c)
    assert exp and int(exp.group(1)) == 81


def _symbols(elf: str) -> dict[str, int]:
    out = subprocess.run(["arm-none-eabi-nm", "-S", "-t", "d", elf], capture_output=True, text=True,
                         check=True).stdout
    syms = {}
    for line in out.splitlines():
        p = line.split()
        if len(p) == 4:
            syms[p[3]] = int(p[1])
    return syms


# the row-streamed stages' code and tables (model.c.j2's runner, pull, per-op row geometry)
STREAM_FLASH_BUDGET = 1024


@pytest.mark.slow
def test_kws_cortex_m4_flash_is_within_weights_biases_and_12_kb(mlperf_tflite):
    """kws on the Cortex-M4 op by op (--schedule layer): flash at most its int8 weights + int32
    biases + 12 KB, the conv parameter structs 64 bytes, the exp table 96 entries, and none of the
    variants it does not use linked (nor the C library's strlen).  The default build (the one
    test_qemu_boot.py runs bit-exact against TFLM) streams its four depthwise + 1x1 pairs, for a
    smaller arena, within STREAM_FLASH_BUDGET more."""
    require_tool("arm-none-eabi-gcc")
    from build_cache import cached_build

    from tinyedge.memory import memory_report

    model = mlperf_tflite["kws"]
    _, record = cached_build(model, "qemu-cortex-m4", "aot", schedule="layer")
    elf = record["artifacts"]["elf"]
    g = load_tflite(model)
    wb = sum(t.nbytes for t in g.tensors if t.is_const and t.dtype in ("int8", "int32"))
    flash = memory_report(elf).flash_bytes
    assert flash <= wb + 12 * 1024, f"flash {flash:,} B, weights + biases + 12 KB = {wb + 12 * 1024:,} B"
    _, streamed = cached_build(model, "qemu-cortex-m4", "aot")
    s_report = memory_report(streamed["artifacts"]["elf"])
    assert s_report.flash_bytes <= flash + STREAM_FLASH_BUDGET, (s_report.flash_bytes, flash)
    assert _symbols(streamed["artifacts"]["elf"])["te_model_arena"] < _symbols(elf)["te_model_arena"]
    syms = _symbols(elf)
    convs = [op.index for op in g.ops if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert convs and all(syms[f"te_model_op{i}"] == 64 for i in convs)
    softmax = next(op.index for op in g.ops if op.opcode == "SOFTMAX")
    assert syms[f"te_model_op{softmax}_exp"] == 4 * 96
    assert {"te_conv2d_s8_paired_fast_packed", "te_depthwise_conv2d_s8_g4_fast9", "te_avg_pool_s8_global",
            "te_fully_connected_s8_small", "te_softmax_s8"} <= set(syms)
    unused = {"te_conv2d_s8_paired_fast", "te_conv2d_s8_paired", "te_conv2d_s8", "te_depthwise_conv2d_s8_g4_fast",
              "te_depthwise_conv2d_s8", "te_avg_pool_lanes", "te_pool", "te_binary", "te_fully_connected_s8",
              "strlen", "printf", "malloc"}
    assert not unused & set(syms), sorted(unused & set(syms))


def test_sizes_above_16_bits_are_reported_not_truncated():
    """te_conv_params_t / te_pool_params_t hold sizes in 16 bits: a larger one is an unsupported
    op in the support check (one line saying why), and the generator refuses rather than wraps."""
    from types import SimpleNamespace

    from tinyedge.aot import ops_math
    from tinyedge.errors import ModelError

    def graph(width):
        shapes = [(1, 1, width, 8), (8, 1, 3, 8), (8,), (1, 1, width - 2, 8)]
        return SimpleNamespace(tensors=[SimpleNamespace(shape=s) for s in shapes])

    op = SimpleNamespace(opcode="CONV_2D", index=3, inputs=[0, 1, 2], outputs=[3])
    assert ops_math.check_conv_sizes(graph(65535), op) is None
    assert "65536 is above 65535" in ops_math.check_conv_sizes(graph(65536), op)
    ops_math.check_conv_fields({"in_w": 65535, "in_offset": -128, "act_min": -128, "weights": "NULL"}, op)
    with pytest.raises(ModelError, match="in_w = 65536"):
        ops_math.check_conv_fields({"in_w": 65536}, op)
    with pytest.raises(ModelError, match="pad_h = -1"):
        ops_math.check_conv_fields({"pad_h": -1}, op)


@pytest.mark.slow
@pytest.mark.qemu
def test_unpacked_fast_pairs_stay_bit_exact_on_cortex_m4(mlperf_tflite, tmp_path, monkeypatch):
    """A conv whose second channels' folded biases are too large to pack takes the 20-byte per-pair
    constants of te_conv2d_s8_paired_fast: kws made so (the packing limit set to 0), model.c
    regenerated in a copy of the cached build and relinked, agrees with the tflite-micro
    interpreter on the Cortex-M4, and is 4 bytes per channel pair larger."""
    require_tool("arm-none-eabi-gcc")
    require_tool("qemu-system-arm")
    import shutil

    from build_cache import cached_build
    from tflite_micro.python.tflite_micro import runtime

    from tinyedge.aot import codegen
    from tinyedge.boards import get_board
    from tinyedge.builder import build_project
    from tinyedge.link import Device
    from tinyedge.memory import memory_report
    from tinyedge.qemu import start_qemu

    model = mlperf_tflite["kws"]
    src, record = cached_build(model, "qemu-cortex-m4", "aot")
    dest = tmp_path / "kws-unpacked"
    shutil.copytree(src, dest, symlinks=True)
    monkeypatch.setattr(codegen, "PACKED_EFF1_LIMIT", 0)
    codegen.generate_model_sources(dest / "model" / "model.tflite", dest / "model", prefix="te_model",
                                   weights="auto", arm_dsp=True)
    c = (dest / "model" / "model.c").read_text()
    assert "te_conv2d_s8_paired_fast(&" in c and "_packed" not in c
    built = build_project(dest, jobs=2)
    g = load_tflite(model)
    pairs = sum((g.tensors[op.outputs[0]].shape[-1] + 1) // 2 for op in g.ops if op.opcode == "CONV_2D")
    syms = _symbols(str(built.elf))
    assert "te_conv2d_s8_paired_fast" in syms and "te_conv2d_s8_paired_fast_packed" not in syms
    ph = sum(v for k, v in syms.items() if re.fullmatch(r"te_model_op\d+_ph", k))
    assert ph == 20 * pairs
    assert memory_report(built.elf).rodata - memory_report(record["artifacts"]["elf"]).rodata == 4 * pairs
    interp = runtime.Interpreter.from_bytes(model.read_bytes())
    rng = np.random.default_rng(19)
    with start_qemu(built.elf, get_board("qemu-cortex-m4")) as q, Device(q.url, timeout=120) as dev:
        x = rng.integers(-128, 128, size=dev.info().inputs[0].shape).astype(np.int8)
        y, _ = dev.infer(x)
    interp.set_input(x, 0)
    interp.invoke()
    np.testing.assert_array_equal(np.asarray(y).reshape(-1), interp.get_output(0).reshape(-1))
