"""What a compression saved and cost, measured on the full-int8 flatbuffers before and after.

Per weighted op (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED) of the int8
model: params, MACs, weight bytes, the fraction of int8 weights that are 0
and the largest count of distinct non-zero int8 values in one output
channel.  Totals over the whole graph, the aot engine's flash (its constant
data) and arena, and accuracy (float and int8, with labels) or top-1
agreement with the original model (without labels).
"""

from __future__ import annotations

import numpy as np

from ..errors import TinyedgeError

WEIGHTED = {"CONV_2D": 0, "FULLY_CONNECTED": 0, "DEPTHWISE_CONV_2D": 3}


def _layer_name(tensor_name: str) -> str:
    parts = [p for p in tensor_name.split(";")[0].split("/") if p]
    skip = {"BiasAdd", "Relu", "Relu6", "Conv2D", "MatMul", "depthwise", "Add", "add", "Reshape"}
    keep = [p for p in parts[1:] if p not in skip and not p.startswith("StatefulPartitionedCall")]
    return keep[0] if keep else tensor_name


def weight_stats(w: np.ndarray, axis: int) -> dict:
    """Zeros and distinct non-zero values per output channel of an int8 weight tensor."""
    w = np.moveaxis(np.asarray(w), axis, 0).reshape(np.asarray(w).shape[axis], -1)
    distinct = [len(np.unique(row[row != 0])) for row in w]
    return {"sparsity": float(np.mean(w == 0)), "distinct_per_channel_max": int(max(distinct, default=0)),
            "channels": int(w.shape[0])}


def graph_layers(graph) -> list[dict]:
    from ..analyze import macs, weight_bytes

    rows = []
    for op in graph.ops:
        if op.opcode not in WEIGHTED or len(op.inputs) < 2 or op.inputs[1] < 0:
            continue
        w = graph.tensors[op.inputs[1]]
        if w.data is None:
            continue
        params = sum(graph.tensors[i].num_elements for i in op.inputs[1:] if i >= 0 and graph.tensors[i].is_const)
        st = weight_stats(w.data, WEIGHTED[op.opcode])
        wparts = w.name.split(";")[0].split("/")
        name = wparts[1] if len(wparts) >= 3 and not w.name.startswith("tfl.") else \
            _layer_name(graph.tensors[op.outputs[0]].name)
        rows.append({"layer": name, "op": op.opcode,
                     "params": int(params), "macs": int(macs(graph, op)), "weight_bytes": int(weight_bytes(graph, op)),
                     **st})
    return rows


def aot_footprint(graph) -> dict:
    """The aot engine's constant bytes (flash for the model) and arena for `graph`."""
    try:
        from ..aot.codegen import build_context

        ctx = build_context(graph)
    except TinyedgeError as e:
        return {"flash_bytes": None, "arena_bytes": None, "error": str(e)}
    return {"flash_bytes": int(ctx["const_bytes"]), "arena_bytes": int(ctx["arena_bytes"])}


def totals(graph, layers: list[dict]) -> dict:
    from ..analyze import macs

    w = [r for r in layers]
    n_w = sum(r["params"] for r in w)
    zeros = 0
    for op in graph.ops:
        if op.opcode in WEIGHTED and len(op.inputs) > 1 and graph.tensors[op.inputs[1]].data is not None:
            zeros += int(np.sum(graph.tensors[op.inputs[1]].data == 0))
    kernel = sum(int(graph.tensors[op.inputs[1]].num_elements) for op in graph.ops
                 if op.opcode in WEIGHTED and len(op.inputs) > 1 and graph.tensors[op.inputs[1]].data is not None)
    return {"params": int(n_w), "macs": int(sum(macs(graph, op) for op in graph.ops)),
            "weight_bytes": int(sum(r["weight_bytes"] for r in w)), "tflite_bytes": int(graph.size_bytes),
            "kernel_sparsity": float(zeros / kernel) if kernel else 0.0,
            "distinct_per_channel_max": int(max((r["distinct_per_channel_max"] for r in w), default=0)),
            "aot": aot_footprint(graph)}


def int8_scores(tflite: bytes, graph, x: np.ndarray) -> np.ndarray:
    from ..conversion import dequantize_output, quantize_input, tflm_run

    q = tflm_run(tflite, quantize_input(x, graph.input_tensors[0]))
    return dequantize_output(q, graph.output_tensors[0]).reshape(len(x), -1)


def top1(scores: np.ndarray) -> np.ndarray:
    return np.argmax(np.asarray(scores).reshape(len(scores), -1), axis=1)


def quality(ref_top1: np.ndarray, scores: dict[str, np.ndarray], y: np.ndarray | None) -> dict:
    """Accuracy per model (with labels) and top-1 agreement with the original float model."""
    out: dict = {"samples": int(len(ref_top1)), "labelled": y is not None}
    for k, s in scores.items():
        t = top1(s)
        out[k] = {"accuracy": float(np.mean(t == y)) if y is not None else None,
                  "agreement_with_original": float(np.mean(t == ref_top1))}
    return out


def render_rows(report: dict) -> list[tuple]:
    """(label, before, after) rows of the totals, for the CLI's table."""
    b, a = report["totals"]["before"], report["totals"]["after"]

    def pct(x, y):
        return f"{(y - x) / x * 100:+.1f}%" if x else ""

    rows = []
    for key, label in (("params", "params"), ("macs", "MACs"), ("weight_bytes", "weight bytes (int8)"),
                       ("tflite_bytes", ".tflite bytes")):
        rows.append((label, f"{b[key]:,}", f"{a[key]:,}", pct(b[key], a[key])))
    rows.append(("kernel zeros", f"{b['kernel_sparsity']:.1%}", f"{a['kernel_sparsity']:.1%}", ""))
    rows.append(("distinct non-zero / channel (max)", str(b["distinct_per_channel_max"]),
                 str(a["distinct_per_channel_max"]), ""))
    for key, label in (("flash_bytes", "aot flash (model constants)"), ("arena_bytes", "aot arena")):
        x, y = b["aot"].get(key), a["aot"].get(key)
        rows.append((label, f"{x:,}" if x is not None else "-", f"{y:,}" if y is not None else "-",
                     pct(x, y) if x and y is not None else ""))
    return rows
