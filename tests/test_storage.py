"""Compact weight storage (tinyedge/aot/storage.py, firmware/kernels/te_weights.c), bit-exact.

Models whose conv / depthwise / FC weights have the property a storage exploits are made by
rewriting a real .tflite's int8 weights (tests/storage_models.py); the rewritten file is the
reference: the tflite-micro interpreter runs it, the aot engine with the storage forced (and
with `auto`) must give the same bytes on 22 inputs, on the host (also under ASan + UBSan) and
on qemu-cortex-m4 (the DSP paths).
"""

from __future__ import annotations

import hashlib
import inspect
import os

import numpy as np
import pytest
import storage_models as sm
from aot_zoo import _cache_dir, _convert, zoo_tflite
from test_aot_engine import assert_bit_exact, inputs_for

from tinyedge.aot import storage as ws
from tinyedge.aot.host import HostModel
from tinyedge.errors import UsageError
from tinyedge.graph import parse_tflite

# rewrite, forced policy, the storage it must produce
VARIANTS = {
    "pal16": (sm.palette(16), "palette", "palette4"),
    "pal16t": (sm.palette(16, per_tensor=True), "palette", "palette4"),
    "pal4": (sm.palette(4), "palette", "palette2"),
    "z90": (sm.zeros(0.9), "sparse", "sparse"),
    "z50": (sm.zeros(0.5), "sparse", "sparse"),
    "int4": (sm.int4(), "int4", "int4"),
    "int4v": (sm.int4(varied=True), "int4", "int4"),
}


def build_mixed(tf):
    """CONV_2D (3x3 and 1x1), DEPTHWISE_CONV_2D (7x7 and 3x3 stride 2), FULLY_CONNECTED: filters long enough
    that every storage saves on every op."""
    L = tf.keras.layers
    x = inp = L.Input((12, 12, 8), batch_size=1)
    x = L.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = L.DepthwiseConv2D(7, padding="same", activation="relu6")(x)
    x = L.DepthwiseConv2D(3, strides=2, padding="same")(x)
    x = L.Conv2D(20, 1, activation="relu")(x)
    x = L.Flatten()(x)
    x = L.Dense(24, activation="relu")(x)
    x = L.Dense(10)(x)
    return tf.keras.Model(inp, x)


def mixed_tflite():
    key = hashlib.sha256((inspect.getsource(build_mixed) + inspect.getsource(_convert)).encode()).hexdigest()[:16]
    path = _cache_dir() / f"storage-mixed-{key}.tflite"
    if not path.exists():
        import tensorflow as tf

        tf.keras.utils.set_random_seed(1234)
        data = _convert(tf, np, build_mixed(tf))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return path


@pytest.fixture(scope="session")
def rewritten(tmp_path_factory):
    """{(base, variant): path of the rewritten .tflite}, made on demand."""
    root = tmp_path_factory.mktemp("storage-models")
    made = {}

    def get(base: str, variant: str):
        if (base, variant) not in made:
            src = mixed_tflite() if base == "mixed" else zoo_tflite(base)
            p = root / f"{base}-{variant}.tflite"
            p.write_bytes(sm.rewrite_weights(src.read_bytes(), VARIANTS[variant][0]))
            made[base, variant] = p
        return made[base, variant]
    return get


def _stored_ops(model) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for e in model.storage:
        out.setdefault(e["storage"], set()).add(e["opcode"])
    return out


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_storage_on_every_op_bit_exact_host(rewritten, variant):
    """Each storage forced on CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED at once, 22 inputs."""
    path = rewritten("mixed", variant)
    _, policy, storage = VARIANTS[variant]
    model = HostModel(path, weights=policy)
    ops = _stored_ops(model).get(storage, set())
    want = set(sm.WEIGHT_OPS) - ({"DEPTHWISE_CONV_2D"} if variant == "z50" else set())
    assert want <= ops, f"{variant}: {storage} chosen only for {sorted(ops)}: {model.storage}"
    kernels = {(e["opcode"], e["kernel"]) for e in model.storage}
    if variant == "z90":   # 90% zeros: conv and FC skip the zeros (te_sparse.c); depthwise decodes
        assert {("CONV_2D", "skip zeros"), ("FULLY_CONNECTED", "skip zeros")} <= kernels, model.storage
    if variant == "z50":   # half zeros: decoding to 16-bit lanes and the paired kernel beat skipping
        assert ("CONV_2D", "decode wide") in kernels, model.storage
    if variant in ("pal16", "pal4", "int4"):   # every conv whose filter is a multiple of 4 decodes to lanes
        assert ("CONV_2D", "decode wide") in kernels, model.storage
        # FC: each weight decoded where the dot product uses it (te_fully_connected_s8_pal)
        assert ("FULLY_CONNECTED", "decode in loop") in kernels, model.storage
    g = model.graph
    assert_bit_exact(f"mixed/{variant}", path, model, inputs_for(g.tensors[g.inputs[0]].shape, seed=7))


CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")   # TFLite Micro's reference FC takes no INT4 filter


@pytest.fixture(scope="session")
def int4_typed(tmp_path_factory):
    """{base: a .tflite whose conv and depthwise weights are TensorType INT4} (the 4-bit values
    with the per-channel scales multiplied by the rounding step, packed as the converter packs)."""
    root = tmp_path_factory.mktemp("int4-typed")
    made = {}

    def get(base: str):
        if base not in made:
            src = mixed_tflite() if base == "mixed" else zoo_tflite(base)
            b = sm.rewrite_weights(src.read_bytes(), sm.int4_values(), ops=CONV_OPS)
            made[base] = root / f"{base}-int4-typed.tflite"
            made[base].write_bytes(sm.as_int4_type(b, ops=CONV_OPS))
        return made[base]
    return get


@pytest.mark.parametrize("base", ["mixed", "conv", "depthwise"])
def test_int4_typed_model_bit_exact_host(int4_typed, base):
    """A model that carries INT4 weights: read (tinyedge.graph unpacks the nibbles), kept int4 by
    `auto` at exactly half a byte per weight plus one step byte per tensor, bit-exact with the
    tflite-micro interpreter running the INT4 model itself."""
    path = int4_typed(base)
    g = parse_tflite(path.read_bytes())
    typed = [op.index for op in g.ops if op.opcode in CONV_OPS and g.tensors[op.inputs[1]].dtype == "int4"]
    assert typed, "the rewrite left no INT4 weights"
    model = HostModel(path)
    by_op = {e["op"]: e for e in model.storage}
    for i in typed:
        e = by_op[i]
        assert e["storage"] == "int4" and e["stored_bytes"] == (e["dense_bytes"] + 1) // 2 + 1, e
    assert_bit_exact(f"{base}/int4-typed", path, model, inputs_for(g.tensors[g.inputs[0]].shape, seed=5))


def test_tflm_compressed_model_bit_exact_host(tmp_path, rewritten):
    """A model compressed by TFLite Micro's own tool (TFLM_DECODE ops with per-channel LUTs, what
    its `compress` writes; the TF converter makes none): the aot engine folds the decodes at
    generation time, stores the weights as palettes again and matches the tflite-micro
    interpreter running the compressed model."""
    from tflite_micro.tensorflow.lite.micro.compression import spec
    from tflite_micro.tensorflow.lite.micro.compression.compress import compress

    src = rewritten("mixed", "pal16")
    g = parse_tflite(src.read_bytes())
    specs = [spec.Tensor(subgraph=0, tensor=op.inputs[1],
                         compression=[spec.LookUpTableCompression(index_bitwidth=4, mode=spec.PerChannel(axis=0))])
             for op in g.ops if op.opcode == "CONV_2D"]
    with pytest.warns(UserWarning):   # the small 1x1 conv grows; TFLM's tool says so
        data = bytes(compress(src.read_bytes(), specs))
    path = tmp_path / "mixed-tflm-compressed.tflite"
    path.write_bytes(data)
    cg = parse_tflite(data)
    assert sum(op.opcode == ws.DECODE_OP for op in cg.ops) == 2
    model = HostModel(path, weights="palette")
    assert {e["opcode"] for e in model.storage if e["storage"] == "palette4"} >= {"CONV_2D"}, model.storage
    assert_bit_exact("mixed/tflm-compressed", path, model, inputs_for(g.tensors[g.inputs[0]].shape, seed=6))


@pytest.mark.parametrize("base, variant", [("conv", "int4"), ("conv", "z90"), ("depthwise", "pal4"),
                                           ("depthwise", "pal16t"), ("fc", "z50"), ("fc", "pal16")])
def test_zoo_models_stored_bit_exact_host(rewritten, base, variant):
    """The zoo's op variants (strides, dilation, SAME/VALID, depth multiplier 2, batches) with stored weights."""
    path = rewritten(base, variant)
    _, policy, storage = VARIANTS[variant]
    model = HostModel(path, weights=policy)
    assert storage in _stored_ops(model), model.storage
    g = model.graph
    assert_bit_exact(f"{base}/{variant}", path, model, inputs_for(g.tensors[g.inputs[0]].shape, seed=3))


@pytest.mark.parametrize("variant", ["pal4", "z90", "z50"])
def test_channel_blocks_bit_exact_host(rewritten, variant):
    """A 192-byte scratch: conv and FC weights decoded (or listed) a few channels at a time."""
    path = rewritten("mixed", variant)
    model = HostModel(path, weights=VARIANTS[variant][1], scratch_cap=192)
    blocked = [e for e in model.storage if e["opcode"] != "DEPTHWISE_CONV_2D" and 0 < e["block"] < e["rows"]]
    assert len(blocked) >= 2, model.storage
    g = model.graph
    assert_bit_exact(f"mixed/{variant} (192-byte scratch)", path, model,
                     inputs_for(g.tensors[g.inputs[0]].shape, seed=8))


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["pal16", "pal4", "z90", "int4"])
def test_storage_sanitizers(rewritten, variant):
    path = rewritten("mixed", variant)
    model = HostModel(path, weights=VARIANTS[variant][1], sanitize=True, opt="-O1")
    g = model.graph
    assert_bit_exact(f"mixed/{variant} (asan+ubsan)", path, model,
                     inputs_for(g.tensors[g.inputs[0]].shape, seed=4)[-6:])


def test_auto_policy(rewritten):
    """auto: never a storage that saves nothing; the estimated extra instructions of all stored
    tensors within 5% of the model's dense estimate; nothing stored when the bytes saved do not
    pay for the decoder's code; 90%-zero conv and FC layers skip their zeros; a dense model stays
    dense."""
    z90 = HostModel(rewritten("mixed", "z90"))
    for e in z90.storage:
        if e["storage"] != "dense":
            assert e["stored_bytes"] < e["dense_bytes"], e
    assert sum(e["extra_instr_estimate"] for e in z90.storage) <= ws.AUTO_BOUND * sum(
        e["dense_instr_estimate"] for e in z90.storage)
    kernels = {(e["op"], e["kernel"]) for e in z90.storage}
    # the 12x12-pixel 3x3 conv and the big FC skip their zeros; the 3x3-pixel 1x1 conv (16-weight
    # filters) is cheaper decoded to lanes
    assert {(0, "skip zeros"), (5, "skip zeros"), (3, "decode wide")} <= kernels, z90.storage
    # 16 levels: the convs would save a few hundred bytes, less than te_weights.c's code; FC
    # decoding would cost several times its MACs: all dense
    pal = HostModel(rewritten("mixed", "pal16"))
    forced = HostModel(rewritten("mixed", "pal16"), weights="palette")
    conv_saving = sum(e["dense_bytes"] - e["stored_bytes"] for e in forced.storage if e["opcode"] != "FULLY_CONNECTED")
    assert 0 < conv_saving < ws.CODE_BYTES["_w"]
    assert all(e["storage"] == "dense" for e in pal.storage), pal.storage
    dense = HostModel(mixed_tflite())
    assert all(e["storage"] == "dense" for e in dense.storage), dense.storage
    assert dense.const_bytes == HostModel(mixed_tflite(), weights="dense").const_bytes


def test_auto_keeps_dense_where_the_kernels_have_no_arm_dsp_paths(rewritten, int4_typed):
    """auto's instruction estimates are the Cortex-M DSP paths': on a core whose kernels take the
    portable C paths it stores nothing (VWW on qemu-riscv32 ran 1.115x dense with the M4's
    choices), but keeps a model's own INT4 tensors int4; forced policies still store."""
    from tinyedge.aot.codegen import build_context, has_arm_dsp
    from tinyedge.boards import get_board

    # qemu-cortex-m55: its dense kernels are the Helium ones, faster than every compact storage's
    assert [has_arm_dsp(get_board(b)) for b in ("qemu-cortex-m4", "qemu-cortex-m55", "qemu-cortex-m3",
                                                "qemu-riscv32", "esp32s3", "host")] == [
        True, False, False, False, False, False]
    g = parse_tflite(rewritten("mixed", "z90").read_bytes())
    assert any(e["storage"] != "dense" for e in build_context(g)["storage"])
    assert all(e["storage"] == "dense" for e in build_context(g, arm_dsp=False)["storage"])
    forced = [e["storage"] for e in build_context(g, weights="sparse", arm_dsp=False)["storage"]]
    assert "sparse" in forced and set(forced) <= {"sparse", "dense"}, forced
    native = parse_tflite(int4_typed("mixed").read_bytes())
    assert sum(e["storage"] == "int4" for e in build_context(native, arm_dsp=False)["storage"]) >= 4


def test_bad_policy_is_a_usage_error():
    from tinyedge.aot.codegen import build_context

    with pytest.raises(UsageError, match="unknown weight storage"):
        build_context(parse_tflite(mixed_tflite().read_bytes()), weights="zip")


@pytest.mark.parametrize("storage", ["palette4", "palette2", "int4", "sparse"])
def test_encode_decode_round_trip(storage):
    """Odd row lengths, all-zero rows, rows that must stay plain, one-value rows."""
    rng = np.random.default_rng(11)
    rows = rng.integers(-128, 128, size=(9, 37)).astype(np.int8)
    rows[1] = 0
    rows[2] = 5
    rows[3] = rng.choice([-3, 0, 4, 9], size=37)
    rows[4] = rng.choice(np.arange(-8, 8) * 3, size=37)
    rows[5, rng.random(37) < 0.9] = 0
    st = ws.encode(rows, storage)
    assert np.array_equal(ws.decode(st), rows)
    assert 0 < st.coded_rows < st.rows   # some rows coded, the random ones plain
    assert st.stored_bytes < rows.size


def test_decode_mismatch_is_a_bug_report(monkeypatch):
    rows = np.tile(np.array([[-3, 0, 4, 9]], np.int8), (4, 8))
    real = ws._pack
    # the 2-bit indices off by one (the row bitmap, 1 bit per row, left alone)
    monkeypatch.setattr(ws, "_pack", lambda idx, bits: real((idx + 1) % (1 << bits) if bits == 2 else idx, bits))
    with pytest.raises(ws.StorageBug, match="decodes weight"):
        ws.encode(rows, "palette2")


def test_c_decoder_matches_python(tmp_path, rewritten):
    """te_weights_decode in C (host build, ASan + UBSan) gives back every stored weight tensor
    exactly, and so do the 16-bit lane decoders (read back lane by lane): 4-level palettes, 50%
    zeros (mask rows), 90% zeros (list rows), int4 with a step per channel; one executable."""
    import subprocess

    from tinyedge.aot import include_dirs, kernel_sources
    from tinyedge.aot.codegen import render

    want, objs, calls, opcodes = [], [], [], set()
    flags = ["cc", "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
             *[f"-I{d}" for d in include_dirs()]]
    for k, variant in enumerate(["pal4", "z50", "z90", "int4v"]):
        g = parse_tflite(rewritten("mixed", variant).read_bytes())
        files, ctx = render(g, prefix=f"m{k}", weights=VARIANTS[variant][1])
        d = tmp_path / variant
        d.mkdir()
        descs = [(op["index"], x) for op in ctx["ops"] for x in op["extra"]]
        (d / "model.c").write_text(files["model.c"] + "\n" + _DUMP_C.replace("DUMP", f"dump{k}").replace(
            "DESCS", ", ".join(f"&{x['var']}" for _, x in descs)))
        (d / "model.h").write_text(files["model.h"])
        subprocess.run([*flags, f"-I{d}", "-c", str(d / "model.c"), "-o", str(d / "model.o")], check=True)
        objs.append(str(d / "model.o"))
        calls.append(f"dump{k}();")
        opcodes |= {op.opcode for op in g.ops}
        dense = [g.tensors[g.ops[i].inputs[1]].data.reshape(-1) for i, _ in descs]   # the decoders' layout
        wide = [dict(x["field_items"])["decode_wide"] != "NULL" for _, x in descs]
        assert len(descs) >= 4 and sum(wide) >= 1, (variant, ctx["storage"])
        want += [w.astype(np.int64) for w in dense] + [w.astype(np.int64) for w, y in zip(dense, wide, strict=True) if y]
    (tmp_path / "main.c").write_text("".join(f"void dump{k}(void);\n" for k in range(4)) +
                                     "int main(void)\n{\n    " + " ".join(calls) + "\n    return 0;\n}\n")
    exe = tmp_path / "dump"
    srcs = [str(tmp_path / "main.c"), *objs, *[str(p) for p in kernel_sources(opcodes)]]
    subprocess.run([*flags, *srcs, "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    got = np.array([int(v) for v in out], np.int64)
    want = np.concatenate(want)
    assert got.size == want.size and np.array_equal(got, want)


_DUMP_C = r"""
#include <stdio.h>
#include <stdlib.h>
void DUMP(void);
void DUMP(void)
{
    const te_weights_t *d[] = {DESCS};
    size_t k;
    for (k = 0; k < sizeof d / sizeof d[0]; ++k) {
        const int32_t n = d[k]->rows * d[k]->row_len;
        int8_t *buf = malloc((size_t)n);
        int32_t i;
        te_weights_decode(d[k], 0, d[k]->rows, buf);
        for (i = 0; i < n; ++i) {
            printf("%d\n", buf[i]);
        }
        free(buf);
    }
    for (k = 0; k < sizeof d / sizeof d[0]; ++k) {
        const int32_t n = d[k]->row_len;
        uint32_t *lanes;
        int32_t r, j;
        if (d[k]->decode_wide == NULL) {
            continue;
        }
        lanes = malloc((size_t)(d[k]->rows * n * 2));
        d[k]->decode_wide(d[k], 0, d[k]->rows, lanes);
        for (r = 0; r < d[k]->rows; ++r) {
            for (j = 0; j < n; ++j) {   /* weight j: half (j >> 1) & 1 of word (j >> 2) * 2 + (j & 1) */
                const uint32_t word = lanes[r * (n / 2) + (j >> 2) * 2 + (j & 1)];
                printf("%d\n", (int)(int16_t)(uint16_t)(((j >> 1) & 1) ? word >> 16 : word & 0xFFFFu));
            }
        }
        free(lanes);
    }
}
"""


def _qemu_outputs(path, weights, xs):
    """(outputs, instruction counts, memory report) of the aot firmware with `weights` on qemu-cortex-m4."""
    from build_cache import cached_build

    from tinyedge.boards import get_board
    from tinyedge.link import Device
    from tinyedge.memory import memory_report
    from tinyedge.qemu import start_qemu

    board = get_board("qemu-cortex-m4")
    _, record = cached_build(path, "qemu-cortex-m4", "aot", weights=weights)
    elf = record["artifacts"]["elf"]
    outs, counts = [], []
    with start_qemu(elf, board) as q, Device(q.url, timeout=120) as dev:
        for x in xs:
            y, n = dev.infer(x)
            outs.append(np.asarray(y))
            counts.append(n)
    return outs, counts, memory_report(elf, board)


def _assert_same(label, path, outs, xs):
    from test_aot_engine import diff_report, tflm_outputs

    for k, (ref, got) in enumerate(zip(tflm_outputs(path, xs), outs, strict=True)):
        if not np.array_equal(ref.reshape(-1), got.reshape(-1)):
            pytest.fail(diff_report(label, k, ref, got))


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.parametrize("variant", ["pal16", "pal4", "z90", "int4"])
def test_every_storage_on_every_op_bit_exact_qemu_cortex_m4(rewritten, variant):
    """The Cortex-M4 DSP kernels on decoded weights, every op at once, 22 inputs."""
    from conftest import require_tool

    require_tool("qemu-system-arm")
    require_tool("arm-none-eabi-gcc")
    path = rewritten("mixed", variant)
    g = parse_tflite(path.read_bytes())
    xs = inputs_for(g.tensors[g.inputs[0]].shape, seed=9)
    outs, _, mem = _qemu_outputs(path, VARIANTS[variant][1], xs)
    _assert_same(f"mixed/{variant} on qemu-cortex-m4", path, outs, xs)
    _, _, dense = _qemu_outputs(path, "dense", xs[:1])
    assert mem.flash_bytes < dense.flash_bytes, (mem, dense)   # the stored weights really are smaller in flash
    # the build's memory report: per tensor the storage, stored against dense bytes (from the ELF's symbols)
    storage = VARIANTS[variant][2]
    assert {t["storage"] for t in dense.weights} == {"dense"} and len(dense.weights) == len(mem.weights) == 6
    coded = [t for t in mem.weights if t["storage"] == storage]
    assert len(coded) >= 3 and all(t["stored_bytes"] < t["dense_bytes"] for t in coded), mem.weights
    assert [t["dense_bytes"] for t in mem.weights] == [t["dense_bytes"] for t in dense.weights]
    assert "tensors compact" in mem.summary()


@pytest.mark.slow
@pytest.mark.qemu
def test_int4_typed_model_bit_exact_qemu_cortex_m4(int4_typed):
    """The INT4 model on the Cortex-M4 paths (lanes decode of the nibble stream, paired kernel)."""
    from conftest import require_tool

    require_tool("qemu-system-arm")
    require_tool("arm-none-eabi-gcc")
    path = int4_typed("mixed")
    g = parse_tflite(path.read_bytes())
    xs = inputs_for(g.tensors[g.inputs[0]].shape, seed=13)
    outs, _, mem = _qemu_outputs(path, "auto", xs)
    _assert_same("mixed/int4-typed on qemu-cortex-m4", path, outs, xs)
    assert sum(t["storage"] == "int4" for t in mem.weights) >= 4, mem.weights


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.parametrize("variant", ["pal16", "z90"])
def test_mlperf_kws_rewritten_bit_exact_qemu_cortex_m4(mlperf_tflite, tmp_path, variant):
    """An MLPerf Tiny model with 16-level palettes / 90% zeros per channel (the full matrix is
    benchmarks/bench_storage.py, which checks every output too)."""
    from conftest import require_tool

    require_tool("qemu-system-arm")
    path = tmp_path / f"kws-{variant}.tflite"
    path.write_bytes(sm.rewrite_weights(mlperf_tflite["kws"].read_bytes(), VARIANTS[variant][0]))
    g = parse_tflite(path.read_bytes())
    xs = inputs_for(g.tensors[g.inputs[0]].shape, seed=12)
    outs, _, _ = _qemu_outputs(path, VARIANTS[variant][1], xs)
    _assert_same(f"kws/{variant} on qemu-cortex-m4", path, outs, xs)


def test_inspect_shows_storage_per_tensor(rewritten, run_cli):
    from tinyedge.analyze import inspect_model

    path = rewritten("mixed", "z90")
    r = inspect_model(path, weights="sparse", tflm_arena=False)
    tensors = r["weights"]["tensors"]
    assert len(tensors) == 6 and {t["storage"] for t in tensors} == {"sparse"}
    assert r["weights"]["stored_bytes"] < 0.4 * r["weights"]["dense_bytes"]
    conv = next(o for o in r["ops"] if o["opcode"] == "CONV_2D")
    assert conv["storage"] == "sparse" and conv["stored_bytes"] < conv["weight_bytes"]
    res = run_cli("inspect", str(path), "--weights", "sparse", env={"COLUMNS": "250"})
    assert res.returncode == 0, res.stderr
    assert "aot storage" in res.stderr + res.stdout and "tensors compact" in res.stderr + res.stdout
    bad = run_cli("inspect", str(path), "--weights", "zip")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
