"""Row-streamed stages and in-place ops (tinyedge.stream, the planner's `auto` schedule).

The plans are checked in Python (VWW under 0.6x its layer-by-layer bound, a stage never
overlapping an input that is read later, `auto` keeping the layer plan where streaming does not
lower the peak); the generated C of auto and of forced stages (every kernel variant the
generator picks on the Cortex-M DSP paths, and the portable ones) runs on the host in one shared
library against TFLite Micro's interpreter, byte for byte.
"""

from __future__ import annotations

import numpy as np
import pytest
from aot_zoo import zoo_tflite
from test_aot_engine import diff_report, inputs_for, tflm_outputs

from tinyedge import stream
from tinyedge.aot.host import HostModelSet
from tinyedge.errors import UsageError
from tinyedge.graph import load_tflite
from tinyedge.planner import plan

VWW_BOUND = 55_296            # VWW's arena op by op (the peak at op 2)


def _replay(st: stream.Stage, overlap: int) -> bool:
    """Whether the stage's output placed `overlap` bytes before its input never writes a byte
    the schedule reads later (the same call's reads included): simulate()'s claim, re-checked
    byte by byte from the schedule's events."""
    events: list = []
    stream.simulate(stream.Stage(st.ops, st.tensors, st.geom, rows=st.rows, overlap=0), events)
    reads_left = np.zeros(overlap + st.geom[0].in_h * st.geom[0].row_in, np.int64)
    for kind, lo, hi in events:
        if kind == "r":
            reads_left[overlap + lo:overlap + hi] += 1
    for kind, lo, hi in events:
        if kind == "r":
            reads_left[overlap + lo:overlap + hi] -= 1
        elif reads_left[lo:hi].any():
            return False
    return True


def test_vww_plan_below_the_layer_bound(mlperf_tflite):
    g = load_tflite(mlperf_tflite["vww"])
    pl = plan(g, "auto")
    assert pl.layer_arena_bytes == VWW_BOUND == plan(g, "layer").arena_bytes
    assert pl.arena_bytes <= int(0.6 * VWW_BOUND), [s.describe() for s in pl.stages]
    assert pl.stages and pl.stages[0].first == 0
    for st in pl.stages:   # every overlap is safe and the least safe one (16-byte steps)
        if st.overlap is not None:
            assert _replay(st, st.overlap)
            assert st.overlap == 0 or not _replay(st, st.overlap - 16)


def test_resnet_inplace_add_and_conv(mlperf_tflite):
    g = load_tflite(mlperf_tflite["resnet"])
    pl = plan(g, "auto")
    assert pl.arena_bytes < pl.layer_arena_bytes == 49_152
    assert pl.inplace and all(g.ops[i].opcode == "ADD" for i, _ in pl.inplace)
    for i, t in pl.inplace:   # the ADD's output is at its input's offset
        assert pl.offsets[g.ops[i].outputs[0]] == pl.offsets[t]


def test_helium_schedule_keeps_narrow_depthwise_layers_whole(mlperf_tflite):
    """kws's depthwise layers are 5 pixels wide and 25 tall: the Helium band kernel runs them as
    whole columns, which bands of rows would take away, so on an MVE core they are not streamed;
    on the Cortex-M4 they are."""
    from tinyedge.analyze import inspect_model
    from tinyedge.aot.codegen import build_context

    g = load_tflite(mlperf_tflite["kws"])
    dws = {op.index for op in g.ops if op.opcode == "DEPTHWISE_CONV_2D"}
    m4 = build_context(g, arm_dsp=True)
    m55 = build_context(g, arm_dsp=False, mve=True)
    assert dws <= {i for st in m4["plan"].stages for i in st.ops}
    assert not dws & {i for st in m55["plan"].stages for i in st.ops}
    assert m4["arena_bytes"] < m55["arena_bytes"] == m55["layer_arena_bytes"]
    # inspect's arena and RAM fit follow the board's kernels
    mem = inspect_model(g, "qemu-cortex-m55", tflm_arena=False)["memory"]
    assert mem["arena_bytes"] == m55["arena_bytes"]
    assert inspect_model(g, "qemu-cortex-m4", tflm_arena=False)["memory"]["arena_bytes"] == m4["arena_bytes"]


def test_stream_plans_and_refusals():
    none = load_tflite(zoo_tflite("stream_none"))
    pl = plan(none, "auto")   # a chain exists, but the dense layer keeps the peak: no stage
    assert stream.chains(none) and not pl.stages and pl.arena_bytes == pl.layer_arena_bytes
    res = load_tflite(zoo_tflite("stream_residual"))
    forced = plan(res, "stages:1-2")   # its input is the ADD's too: beside it, never over it
    a = res.ops[1].inputs[0]
    src = next(b for b in forced.buffers if a in b.tensors)
    assert src.anchor is None and src.last >= 3
    with pytest.raises(UsageError, match="not a chain"):
        plan(res, "stages:0-2")
    with pytest.raises(UsageError, match="at most 8"):
        plan(load_tflite(zoo_tflite("stream_a")), "stages:0-8")
    with pytest.raises(UsageError, match="unknown schedule"):
        plan(res, "fast")


# (model, build_context options): auto, and forced stages over every op kind and size, tall bands
VARIANTS = [
    ("stream_a", {}),
    ("stream_a", {"schedule": "stages:0-4"}),
    ("stream_a", {"schedule": "stages:0-4/3", "arm_dsp": False}),
    ("stream_a", {"schedule": "stages:0-1/2,2-4"}),
    ("stream_a", {"schedule": "stages:1,3", "arm_dsp": False}),
    ("stream_b", {}),
    ("stream_b", {"schedule": "stages:0-3"}),
    ("stream_b", {"schedule": "stages:0-3/4", "arm_dsp": False}),
    ("stream_b", {"schedule": "stages:2/5"}),
    ("stream_residual", {}),
    ("stream_residual", {"schedule": "stages:1-2/3"}),
]


@pytest.mark.slow
def test_streamed_c_bit_exact(tmp_path_factory):
    paths = {name: zoo_tflite(name) for name, _ in VARIANTS}
    models = HostModelSet([paths[n] for n, _ in VARIANTS], options=[o for _, o in VARIANTS],
                          cache_dir=tmp_path_factory.mktemp("stream-cache"))
    refs = {}
    for (name, opts), m in zip(VARIANTS, models.models, strict=True):
        ctx = m.context
        if opts.get("schedule", "auto") != "auto" or name != "stream_none":
            assert ctx["stages"], (name, opts)   # the variant really streams
            assert ctx["arena_bytes"] < ctx["layer_arena_bytes"] or "stages:" in opts.get("schedule", "")
        g = m.graph
        xs = inputs_for(g.tensors[g.inputs[0]].shape, seed=4)[-8:]
        if name not in refs:
            refs[name] = tflm_outputs(paths[name], xs)
        for k, (ref, x) in enumerate(zip(refs[name], xs, strict=True)):
            got = m.invoke(x)
            if not np.array_equal(ref.reshape(-1), got.reshape(-1)):
                pytest.fail(diff_report(f"{name} {opts}", k, ref, got))


def test_generate_schedule_switch(run_cli, tmp_path):
    """`--schedule layer` is the op-by-op arena; the default streams; a bad value is one error line."""
    import re

    from tinyedge.aot import generate_model_sources

    path = zoo_tflite("stream_a")
    g = load_tflite(path)
    r = run_cli("generate", path, "-o", tmp_path / "layer", "--schedule", "layer")
    assert r.returncode == 0, r.stderr
    layer = (tmp_path / "layer" / "model.c").read_text()
    assert f"arena {plan(g).arena_bytes} bytes" in layer and "row-streamed" not in layer
    auto = generate_model_sources(g, tmp_path / "auto")
    text = (tmp_path / "auto" / "model.c").read_text()
    assert auto.arena_bytes == plan(g, "auto").arena_bytes < plan(g).arena_bytes
    assert len(auto.stages) == len(re.findall(r"row-streamed stage \d+ ", text)) > 0
    bad = run_cli("generate", path, "-o", tmp_path / "bad", "--schedule", "fast")
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error:") and "Traceback" not in bad.stderr


def test_streamed_plan_never_overlaps_live_buffers(mlperf_tflite):
    """At every op, the live buffers of the auto plans are disjoint, but for a stage's output and
    its input, which share exactly the bytes the plan counts as shared."""
    for name in ("vww", "kws", "resnet"):
        g = load_tflite(mlperf_tflite[name])
        pl = plan(g, "auto")
        al = pl.alias_of
        pairs = {(al.get(st.tensors[0], st.tensors[0]), al.get(st.tensors[-1], st.tensors[-1])) for st in pl.stages}
        for i in range(len(g.ops)):
            live = sorted((b.offset, b.offset + b.nbytes, b.root) for b in pl.buffers if b.first <= i <= b.last)
            assert sum(hi - lo for lo, hi, _ in live) - pl.live_bytes_at(i) == sum(
                n for f, la, n in pl.credits if f <= i <= la)
            for k, (lo, hi, r) in enumerate(live):
                for lo2, hi2, r2 in live[k + 1:]:
                    if lo2 < hi and lo < hi2:
                        assert (r, r2) in pairs or (r2, r) in pairs, (name, i, r, r2)
            assert max((hi for _, hi, _ in live), default=0) <= pl.arena_bytes
