"""The aot engine's layout, resize, math, matmul and transposed-convolution ops, bit for bit.

The models of tests/aot_ops_zoo.py (every op and option, TensorFlow ops converted full-int8) run
as generated C on the host (one library for all of them), under ASan + UBSan, and on the emulated
qemu-cortex-m4 board (one firmware for all of them), each against the tflite-micro interpreter on
random, all -128 and all 127 inputs; TILE and int64 ARG_MAX / GATHER indices, which TFLite Micro
lacks, against TensorFlow Lite's interpreter.  Models converted with float32 input and output
(QUANTIZE / DEQUANTIZE at the edges) take float inputs (the int8 grid, between it, past its ends)
and their float outputs must equal TFLite Micro's bit for bit.  Plus the planner's aliases and
scratch, and the checks' refusals.
"""

from __future__ import annotations

import numpy as np
import pytest
from aot_ops_zoo import BUILDERS, ID_INPUT, ops_zoo_tflite
from conftest import require_tool
from test_aot_engine import tflite_outputs, tflm_outputs

from tinyedge.aot import kernel_sources
from tinyedge.aot.codegen import build_context
from tinyedge.aot.host import HostModel, HostModelSet
from tinyedge.aot.support import SUPPORTED_OPS, check_op
from tinyedge.graph import load_tflite
from tinyedge.planner import plan
from tinyedge.validation import float_input_quantization

pytestmark = pytest.mark.slow

HOST = ("layout", "math", "resize", "convs", "tile", "matmul", "index64", "float_io", "islands", "embedding")


def _inputs(shape, seed, n=10, graph=None):
    """n random int8 inputs, all -128, all 127; for a float32 input (`graph` given) those dequantized
    with its QUANTIZE's scale, plus floats between the grid points and past both ends of it."""
    rng = np.random.default_rng(seed)
    if graph is not None and graph.tensors[graph.inputs[0]].dtype == "int32":   # indices: random, first, last
        hi = next(v for k, v in ID_INPUT.items() if graph.path is None or k in graph.path.name)
        return [rng.integers(0, hi, size=shape).astype(np.int32) for _ in range(n)] + \
            [np.zeros(shape, np.int32), np.full(shape, hi - 1, np.int32)]
    xs = [rng.integers(-128, 128, size=shape, dtype=np.int8) for _ in range(n)]
    xs += [np.full(shape, -128, np.int8), np.full(shape, 127, np.int8)]
    fq = float_input_quantization(graph) if graph is not None else None
    if fq is None:
        return xs
    scale, zp = np.float32(fq[0]), fq[1]
    grid = [((x.astype(np.float32) - np.float32(zp)) * scale).astype(np.float32) for x in xs]
    between = [(rng.uniform(-140, 140, size=shape).astype(np.float32) * scale).astype(np.float32)
               for _ in range(3)]
    halves = [((rng.integers(-130, 130, size=shape) + np.float32(0.5)) * scale).astype(np.float32)]
    far = [np.where(rng.random(shape) < 0.5, -1e6, 1e6).astype(np.float32) * scale]   # saturates both ways
    return grid + between + halves + far


def _tflm_lacks(path) -> bool:
    """TFLite Micro has no TILE kernel, and its ARG_MAX / GATHER take int32 indices only."""
    g = load_tflite(path)
    return any(op.opcode == "TILE" or (op.opcode == "ARG_MAX" and g.tensors[op.outputs[0]].dtype == "int64")
               for op in g.ops)


def _reference(path, xs):
    return tflite_outputs(path, xs) if _tflm_lacks(path) else tflm_outputs(path, xs)


def _compare(label, refs, outs):
    for k, (ref, got) in enumerate(zip(refs, outs, strict=True)):
        assert ref.dtype == got.dtype, (label, ref.dtype, got.dtype)
        r, g = ref.reshape(-1), got.reshape(-1)
        if ref.dtype.kind == "f":   # float outputs: bit for bit
            r, g = r.view(np.uint32), g.view(np.uint32)
        if not np.array_equal(r, g):
            bad = np.nonzero(r != g)[0]
            pytest.fail(f"{label} input #{k}: {bad.size} of {r.size} bytes differ; first at {int(bad[0])}: "
                        f"ref={int(r[bad[0]])} aot={int(g[bad[0]])}")


@pytest.fixture(scope="session")
def ops_paths():
    return {name: ops_zoo_tflite(name) for name in BUILDERS}


def test_models_cover_every_new_op(ops_paths):
    seen = {op.opcode for name in HOST for op in load_tflite(ops_paths[name]).ops}
    new = {"TRANSPOSE", "SLICE", "STRIDED_SLICE", "TILE", "SPLIT", "SPLIT_V", "UNPACK", "PACK", "GATHER", "SUB",
           "SQUARED_DIFFERENCE", "MAXIMUM", "MINIMUM", "REDUCE_MAX", "SUM", "RESIZE_NEAREST_NEIGHBOR",
           "RESIZE_BILINEAR", "TRANSPOSE_CONV", "RSQRT", "L2_NORMALIZATION", "BATCH_MATMUL", "ARG_MAX", "QUANTIZE",
           "DEQUANTIZE"}
    assert new <= seen, sorted(new - seen)
    assert new <= set(SUPPORTED_OPS)
    every = {op.opcode for op in load_tflite(ops_paths["all"]).ops}   # the one firmware runs them all
    assert new - {"TILE"} <= every, sorted(new - {"TILE"} - every)
    mm = load_tflite(ops_paths["matmul"])
    kinds = {(bool(op.options.get("adj_x")), bool(op.options.get("adj_y")), mm.tensors[op.inputs[1]].is_const)
             for op in mm.ops if op.opcode == "BATCH_MATMUL"}
    assert {(False, False, False), (True, False, False), (False, True, False), (True, True, False),
            (False, False, True)} <= kinds, kinds
    dyn = [op for op in mm.ops if op.opcode == "GATHER" and not mm.tensors[op.inputs[1]].is_const]
    assert {int(op.options["axis"]) for op in dyn} == {0, 1, 2}
    g64 = load_tflite(ops_paths["index64"])
    assert {g64.tensors[op.outputs[0]].dtype for op in g64.ops if op.opcode == "ARG_MAX"} == {"int64"}
    from tinyedge.aot.islands import roles

    for name, want in (("math", {"ELU"}), ("islands", {"ELU", "NEG", "SPLIT", "TRANSPOSE", "STRIDED_SLICE"})):
        gi = load_tflite(ops_paths[name])   # the float ops the aot engine runs as int8 codes and tables
        assert set(roles(gi).values()) == {"head", "unary", "move", "tail"}, (name, roles(gi))
        floats = {gi.ops[i].opcode for i in roles(gi) if gi.ops[i].opcode not in ("DEQUANTIZE", "QUANTIZE")}
        assert want <= floats <= want | {"RESHAPE"}, (name, floats)
    emb = load_tflite(ops_paths["embedding"])   # GATHER of a constant table by the model's int32 input
    assert emb.ops[0].opcode == "GATHER" and emb.tensors[emb.inputs[0]].dtype == "int32"
    assert emb.tensors[emb.ops[0].inputs[0]].is_const and emb.ops[0].inputs[1] == emb.inputs[0]
    fio = load_tflite(ops_paths["float_io"])
    assert [fio.tensors[t].dtype for t in fio.inputs + fio.outputs] == ["float32", "float32"]
    assert [fio.ops[0].opcode, fio.ops[-1].opcode] == ["QUANTIZE", "DEQUANTIZE"]
    convs = load_tflite(ops_paths["convs"])
    grouped = [op for op in convs.ops if op.opcode == "CONV_2D"
               and convs.tensors[op.inputs[1]].shape[3] != convs.tensors[op.inputs[0]].shape[3]]
    assert grouped, "no grouped CONV_2D in the convs model"
    resize = load_tflite(ops_paths["resize"])
    opts = {(op.opcode, bool(op.options.get("align_corners")), bool(op.options.get("half_pixel_centers")))
            for op in resize.ops if op.opcode.startswith("RESIZE")}
    assert len(opts) == 6, opts


def test_host_bit_exact(ops_paths, tmp_path_factory):
    lib = HostModelSet([ops_paths[n] for n in HOST], cache_dir=tmp_path_factory.mktemp("ops"))
    for seed, (name, m) in enumerate(zip(HOST, lib.models, strict=True)):
        for op in m.graph.ops:
            assert check_op(m.graph, op) is None, (name, op.opcode, check_op(m.graph, op))
        xs = _inputs(m.graph.tensors[m.graph.inputs[0]].shape, seed, graph=m.graph)
        _compare(name, _reference(ops_paths[name], xs), [m.invoke(x) for x in xs])


@pytest.mark.parametrize("name", ["all", "index64"])
def test_sanitizers(ops_paths, tmp_path_factory, name):
    """Every op but TILE (whose kernel, te_strided_copy_s8, TRANSPOSE and STRIDED_SLICE run here too),
    with float32 edges; and the int64 indices of ARG_MAX / GATHER."""
    path = ops_paths[name]
    model = HostModel(path, cache_dir=tmp_path_factory.mktemp("asan"), sanitize=True, opt="-O1")
    g = model.graph
    xs = _inputs(g.tensors[g.inputs[0]].shape, 11, n=4, graph=g)
    _compare(f"{name} (asan+ubsan)", _reference(path, xs), model.invoke_many(xs))


@pytest.mark.qemu
def test_bit_exact_on_qemu_cortex_m4(ops_paths, tmp_path):
    """Every op but TILE (its reference is not TFLite Micro) in one firmware, through the real
    pipeline: generate, arm-none-eabi-gcc, QEMU, the serial protocol; the model's input and output
    are float32 (QUANTIZE / DEQUANTIZE at its edges), streamed and compared bit for bit."""
    require_tool("qemu-system-arm")
    require_tool("arm-none-eabi-gcc")
    from tinyedge.pipeline import deploy

    path = ops_paths["all"]
    g = load_tflite(path)
    x = np.stack(_inputs(g.tensors[g.inputs[0]].shape[1:], 5, n=8, graph=g)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x)
    report = deploy(path, board="qemu-cortex-m4", runtime="aot", data=tmp_path / "x.npz", samples=len(x),
                    out=tmp_path / "out", timeout=60)
    agree = report["agreement"]
    assert agree["bit_exact_rate"] == 1.0, agree
    assert agree["max_abs_diff"] == 0
    assert report["samples"] == len(x)


def test_squeeze_and_expand_dims_alias_in_place(ops_paths):
    """The converter writes SQUEEZE / EXPAND_DIMS as RESHAPE; the same graph with those opcodes
    plans them as aliases (no copy), as RESHAPE."""
    g = load_tflite(ops_paths["layout"])
    reshapes = [op for op in g.ops if op.opcode == "RESHAPE"]
    reshapes[0].opcode, reshapes[1].opcode = "SQUEEZE", "EXPAND_DIMS"
    pl = plan(g)
    for op in reshapes[:2]:
        assert pl.offsets[op.inputs[0]] == pl.offsets[op.outputs[0]]
        assert check_op(g, op) is None
    ops = {d["index"]: d for d in build_context(g)["ops"]}
    assert ops[reshapes[0].index]["alias"] and ops[reshapes[1].index]["alias"]


def test_refusals_name_the_reason(ops_paths):
    g = load_tflite(ops_paths["layout"])
    ss = next(op for op in g.ops if op.opcode == "STRIDED_SLICE")
    ss.options["ellipsis_mask"] = 1
    assert "ellipsis" in check_op(g, ss)
    m = load_tflite(ops_paths["math"])
    rmax = next(op for op in m.ops if op.opcode == "REDUCE_MAX")
    m.tensors[rmax.outputs[0]].zero_point = m.tensors[rmax.outputs[0]].zero_point + 1
    assert "quantized differently" in check_op(m, rmax)
    mm = load_tflite(ops_paths["matmul"])
    bmm = next(op for op in mm.ops if op.opcode == "BATCH_MATMUL")
    bmm.options["asymmetric_quantize_inputs"] = True
    assert "hybrid" in check_op(mm, bmm)
    am = next(op for op in mm.ops if op.opcode == "ARG_MAX")
    mm.tensors[am.outputs[0]].dtype = "int16"
    assert "int32 or int64" in check_op(mm, am)
    ga = next(op for op in mm.ops if op.opcode == "GATHER" and not mm.tensors[op.inputs[1]].is_const)
    mm.tensors[ga.inputs[1]].dtype = "float32"
    assert "int32 or int64" in check_op(mm, ga)
    f = load_tflite(ops_paths["float_io"])
    f.tensors[f.ops[-1].outputs[0]].dtype = "float16"
    assert "float32 only" in check_op(f, f.ops[-1])


def test_only_used_kernel_files_are_linked():
    names = {p.name for p in kernel_sources({"TRANSPOSE", "RESIZE_BILINEAR"})}
    assert names == {"te_shape.c", "te_resize.c"}
    assert "te_transpose_conv.c" in {p.name for p in kernel_sources({"TRANSPOSE_CONV"})}
    assert "te_math.c" in {p.name for p in kernel_sources({"SUB"})}


def test_contiguous_slices_are_views(ops_paths):
    """UNPACK along the outermost axis and a STRIDED_SLICE of one run are placed inside their input's
    buffer (no copy); the host and qemu tests above run them that way."""
    g = load_tflite(ops_paths["layout"])
    pl = plan(g)
    ops = {d["index"]: d for d in build_context(g)["ops"]}
    unpack = next(op for op in g.ops if op.opcode == "UNPACK")
    assert ops[unpack.index]["alias"]
    src = pl.offsets[unpack.inputs[0]]
    assert [pl.offsets[t] - src for t in unpack.outputs] == [k * g.tensors[t].nbytes for k, t in
                                                             enumerate(unpack.outputs)]
    assert any(ops[op.index]["alias"] for op in g.ops if op.opcode == "STRIDED_SLICE")
    assert not any(ops[op.index]["alias"] for op in g.ops if op.opcode in ("TRANSPOSE", "GATHER"))


def test_inspect_names_the_slower_cortex_m4_paths(ops_paths):
    from tinyedge.analyze import support_table

    g = load_tflite(ops_paths["convs"])
    notes = support_table(g)["aot"]["notes"]
    noted = {n["op_index"] for n in notes}
    for op in g.ops:
        grouped = op.opcode == "CONV_2D" and g.tensors[op.inputs[1]].shape[3] != g.tensors[op.inputs[0]].shape[3]
        assert (op.index in noted) == (op.opcode == "TRANSPOSE_CONV" or grouped), op
    assert all("Cortex-M4" in n["note"] for n in notes)
    r = support_table(load_tflite(ops_paths["layout"]))
    assert r["aot"]["notes"] == [] and "notes" not in r["tflm"]


def test_matmul_scratch_notes_and_tflm_verdicts(ops_paths):
    """BATCH_MATMUL's working memory is a planner scratch buffer live during the op only (column sums,
    and the transposed right-hand side when it is an activation not stored [n][k]); `inspect` names
    its Cortex-M4 path; TFLite Micro is said to run the float edges and refused int64 indices."""
    from tinyedge.analyze import support_table
    from tinyedge.aot.ops_matmul import matmul_dims
    from tinyedge.runtimes import check_graph

    g = load_tflite(ops_paths["matmul"])
    pl = plan(g)
    mms = [op for op in g.ops if op.opcode == "BATCH_MATMUL"]
    for op in mms:
        d = matmul_dims(g, op)
        want = 4 * d["cols"]
        if not d["adj_y"] and not g.tensors[op.inputs[1]].is_const:
            want += (d["cols"] * d["depth"] + 3) // 4 * 4
        if d["adj_x"]:
            want += d["rows"] * d["depth"]
        b = next(b for b in pl.buffers if b.root == -1 - op.index)
        assert (b.nbytes, b.first, b.last, pl.scratch[op.index]) == (want, op.index, op.index, b.offset)
    notes = {n["op_index"]: n["note"] for n in support_table(g)["aot"]["notes"]}
    assert {op.index for op in mms} == set(notes) and all("Cortex-M4" in n for n in notes.values())
    from tinyedge.aot.islands import roles

    ga = load_tflite(ops_paths["all"])   # the float edges pass; only the ELU island's float ops do not
    refused = {v.op_index for v in check_graph(ga, "tflm") if not v.supported}
    assert refused and refused <= set(roles(ga)), refused
    assert not {ga.ops[0].index, ga.ops[-1].index} & refused
    bad = {v.opcode: v.reason for v in check_graph(load_tflite(ops_paths["index64"]), "tflm") if not v.supported}
    assert set(bad) == {"ARG_MAX", "GATHER"} and "int32" in bad["ARG_MAX"] and "int32" in bad["GATHER"], bad
    g64 = load_tflite(ops_paths["index64"])
    assert all(check_op(g64, op) is None for op in g64.ops)


@pytest.mark.qemu
def test_float_io_model_on_tflm_qemu_cortex_m4(ops_paths, shared_sources, tmp_path):
    """The tflm runtime deploys a float32 in / out model too: its firmware reports the float32 I/O
    tensors as TensorType FLOAT32 (TfLiteType numbers float32 1, not 0) and validation streams and
    compares float32, bit for bit with the tflite-micro interpreter."""
    require_tool("qemu-system-arm")
    require_tool("arm-none-eabi-gcc")
    from tinyedge.pipeline import deploy

    report = deploy(ops_paths["float_io"], board="qemu-cortex-m4", runtime="tflm", samples=6,
                    out=tmp_path / "out", timeout=60)
    agree = report["agreement"]
    assert report["samples"] == 6 and agree["bit_exact_rate"] == 1.0 and agree["max_abs_diff"] == 0, agree
