"""Compact weight storage on the emulated Cortex-M4, against dense aot (BENCHMARKS.md, issue 15).

For each MLPerf Tiny model (../shared/models/mlperf-tiny, or --models DIR) and each rewrite of
its int8 weights (tests/storage_models.py: 16 and 4 levels per channel, 90% and 50% zeros per
channel, a 4-bit grid per channel; and the original weights, sparse against auto), the rewritten .tflite is built twice for qemu-cortex-m4
(arm-none-eabi-gcc -O2): with `--weights dense` (the anchor, same run) and with the storage
forced (palette / sparse / int4), then `auto`.  Each firmware runs under QEMU (-icount
shift=0) and every output is compared with the tflite-micro interpreter on the rewritten model.
Printed per model x storage:
  - weight bytes of the conv / depthwise / FC weights: stored, dense, and the plain format's
    bytes (index bits + table per channel, or mask + non-zeros, or half a byte per weight;
    counted only on channels where it saves) with the share of its saving reached;
  - flash (text + rodata + data) and its fall against the plain format's saving;
  - arena bytes; instructions per inference and the ratio to dense.
Targets (issue 15) are checked and printed as met / NOT met.

    .venv/bin/python benchmarks/bench_storage.py [--models DIR] [--only kws_ref_model] [--runs 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

MODELS = ("ad01_int8", "pretrainedResnet_quant", "kws_ref_model", "vww_96_int8")
TARGET_MODELS = ("pretrainedResnet_quant", "kws_ref_model", "vww_96_int8")   # the 1.05x palette target


def variants():
    import storage_models as sm
    # name, rewrite, forced policy, storage whose plain format is the yardstick
    return [("pal16", sm.palette(16), "palette", "palette4"), ("pal4", sm.palette(4), "palette", "palette2"),
            ("z90", sm.zeros(0.9), "sparse", "sparse"), ("z50", sm.zeros(0.5), "sparse", "sparse"),
            ("int4", sm.int4(), "int4", "int4"),
            ("original", lambda opcode, w: w, "sparse", "sparse")]   # the model's own weights


def run_firmware(tflite: Path, weights: str, workdir: Path, xs, interp) -> dict:
    from tinyedge.boards import get_board
    from tinyedge.builder import build_project
    from tinyedge.link import Device
    from tinyedge.project import generate_project
    from tinyedge.qemu import start_qemu

    board = get_board("qemu-cortex-m4")
    proj = generate_project(tflite, board, "aot", workdir, weights=weights)
    built = build_project(proj, jobs=2)
    counts, exact = [], True
    with start_qemu(built.elf, board) as q, Device(q.url, timeout=600) as dev:
        for x in xs:
            y, n = dev.infer(x)
            interp.set_input(x, 0)
            interp.invoke()
            exact &= bool(np.array_equal(np.asarray(y).reshape(-1), interp.get_output(0).reshape(-1)))
            counts.append(n)
    m = built.memory
    return {"instr": int(np.median(counts)), "flash": m.flash_bytes, "arena": m.arena_bytes, "exact": exact}


def weight_stats(graph, policy: str, plain_storage: str) -> dict:
    import storage_models as sm

    from tinyedge.aot import storage as ws
    from tinyedge.aot.codegen import build_context

    entries = build_context(graph, weights=policy)["storage"]
    dense = sum(e["dense_bytes"] for e in entries)
    stored = sum(e["stored_bytes"] for e in entries)
    plain = 0
    for op in graph.ops:
        if op.opcode in sm.WEIGHT_OPS:
            w = graph.tensors[op.inputs[1]].data
            plain += ws.plain_format_bytes(sm._channels(op.opcode, w), plain_storage)
    kinds = sorted({e["storage"] for e in entries})
    return {"dense_w": dense, "stored_w": stored, "plain_w": plain, "kinds": "+".join(kinds)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=Path, default=REPO.parent / "shared" / "models" / "mlperf-tiny")
    ap.add_argument("--only", action="append", default=None, help="model name (repeatable)")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--variant", action="append", default=None, help="pal16, pal4, z90, z50, int4 (repeatable)")
    ap.add_argument("--no-auto", action="store_true", help="only the forced storage (not `auto` too)")
    args = ap.parse_args()

    import storage_models as sm
    from tflite_micro.python.tflite_micro import runtime

    from tinyedge.graph import parse_tflite

    rows, verdicts = [], []
    with tempfile.TemporaryDirectory(prefix="tinyedge-bench-storage-") as tmp:
        for name in args.only or MODELS:
            model = args.models / f"{name}.tflite"
            if not model.is_file():
                print(f"skip {name}: {model} not found", file=sys.stderr)
                continue
            for vname, fn, policy, plain_storage in variants():
                if args.variant and vname not in args.variant:
                    continue
                path = Path(tmp) / f"{name}-{vname}.tflite"
                path.write_bytes(sm.rewrite_weights(model.read_bytes(), fn))
                graph = parse_tflite(path.read_bytes(), path=path)
                interp = runtime.Interpreter.from_bytes(path.read_bytes())
                shape = graph.tensors[graph.inputs[0]].shape
                rng = np.random.default_rng(0)
                xs = [rng.integers(-128, 128, size=shape).astype(np.int8) for _ in range(args.runs)]
                base = run_firmware(path, "dense", Path(tmp) / f"{name}-{vname}-dense", xs, interp)
                for pol in (policy,) if args.no_auto else (policy, "auto"):
                    r = run_firmware(path, pol, Path(tmp) / f"{name}-{vname}-{pol}", xs, interp)
                    r.update(weight_stats(graph, pol, plain_storage))
                    r.update(model=name, variant=vname, policy=pol, base=base)
                    rows.append(r)
                    print(_fmt(r), flush=True)
                    if pol == policy:
                        verdicts += _targets(r)
    print()
    print("targets (issue 15):")
    for v in verdicts:
        print("  " + v)
    ok = all(r["exact"] and r["base"]["exact"] for r in rows)
    print(f"every output bit-exact with the tflite-micro interpreter: {'yes' if ok else 'NO'}")
    print("(instructions: QEMU mps2-an386 -icount shift=0, SysTick x 40; flash = text + rodata + data)")
    return 0 if ok else 1


HEADER = (f"{'model':23} {'weights':8} {'policy':7} {'storage':22} {'stored W':>9} {'dense W':>9} {'plain W':>9} "
          f"{'of plain saving':>15} {'flash':>9} {'dense flash':>11} {'arena':>7} {'instr':>12} {'vs dense':>8} exact")


def _fmt(r: dict) -> str:
    if not getattr(_fmt, "done", False):
        print(HEADER)
        _fmt.done = True
    b = r["base"]
    saving = r["dense_w"] - r["plain_w"]
    share = (r["dense_w"] - r["stored_w"]) / saving if saving > 0 else float("nan")
    return (f"{r['model']:23} {r['variant']:8} {r['policy']:7} {r['kinds']:22} {r['stored_w']:>9,} {r['dense_w']:>9,} "
            f"{r['plain_w']:>9,} {share:>14.0%} {r['flash']:>9,} {b['flash']:>11,} {r['arena']:>7,} "
            f"{r['instr']:>12,} {r['instr'] / b['instr']:>7.3f}x {'yes' if r['exact'] and b['exact'] else 'NO'}")


def _targets(r: dict) -> list[str]:
    b = r["base"]
    m, v = r["model"], r["variant"]
    plain_saving = r["dense_w"] - r["plain_w"]
    share = (r["dense_w"] - r["stored_w"]) / plain_saving if plain_saving > 0 else 1.0
    instr = r["instr"] / b["instr"]
    wratio = r["stored_w"] / r["dense_w"]
    flash_fall = b["flash"] - r["flash"]
    out = []

    def check(what, ok):
        out.append(f"{m} {v}: {what}: {'met' if ok else 'NOT met'}")

    if v == "pal16":
        check(f"{share:.0%} of the plain format's saving (>= 90%)", share >= 0.9)
        if m in TARGET_MODELS:
            check(f"instructions {instr:.3f}x dense (<= 1.05x)", instr <= 1.05)
    elif v == "z90":
        check(f"{share:.0%} of the plain format's saving (>= 90%)", share >= 0.9)
        check(f"instructions {instr:.3f}x dense (<= 0.8x)", instr <= 0.8)
    elif v == "z50":
        check(f"weight bytes {wratio:.3f}x dense (<= 0.65x)", wratio <= 0.65)
        check(f"instructions {instr:.3f}x dense (<= 1.0x)", instr <= 1.0)
    elif v == "int4":
        check(f"weight bytes {wratio:.3f}x dense (<= 0.52x)", wratio <= 0.52)
    if plain_saving > 0:
        check(f"flash falls {flash_fall:,} B = {flash_fall / plain_saving:.0%} of the plain saving (>= 75%)",
              flash_fall >= 0.75 * plain_saving)
    return out


if __name__ == "__main__":
    sys.exit(main())
