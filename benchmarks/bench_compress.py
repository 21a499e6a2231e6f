"""`tinyedge compress` on the digits example, each result deployed to the emulated Cortex-M4.

For the uncompressed model and each method (or combination) below: compress
examples/digits/model.h5 on scikit-learn's digits (the split train.py used),
deploy the int8 result to qemu-cortex-m4 (real firmware under QEMU,
-icount shift=0) on the 300 held-out samples, and print per row:
MACs, params, the aot engine's flash (model constants) and arena, the
firmware's flash, kernel zeros, distinct non-zero int8 values per output
channel (max), float and int8 accuracy, the board's accuracy, instructions
per inference on the board, and the ratios to the uncompressed row measured
in the same run.  Every row must be bit-exact with tflite-micro.

    .venv/bin/python benchmarks/bench_compress.py [--epochs 30] [--only NAME]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DIGITS = REPO / "examples" / "digits"

RUNS = {
    "prune-channels 0.5 + distill": dict(prune_channels=0.5, distill=True),
    "prune-channels 0.5 (labels only)": dict(prune_channels=0.5),
    "rank 0.7 on logits + distill": dict(rank=0.7, layers=["logits"], distill=True),
    "rank 0.7 on conv3 + logits + distill": dict(rank=0.7, layers=["conv3", "logits"], distill=True),
    "prune 0.8 + cluster 16 + distill": dict(prune=0.8, cluster=16, distill=True),
    "2:4 + QAT (PQAT)": dict(sparsity_pattern="2:4", qat=True),
    "qat": dict(qat=True),
}


def _split():
    spec = importlib.util.spec_from_file_location("digits_train", DIGITS / "train.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.data()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=30, help="training epochs per phase")
    ap.add_argument("--only", action="append", help="run only these rows (substring match)")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from tinyedge.compress import compress, int8_path
    from tinyedge.pipeline import deploy

    with tempfile.TemporaryDirectory(prefix="bench-compress-") as tmp:
        tmp = Path(tmp)
        xtr, ytr, xte, yte = _split()
        np.savez(tmp / "train.npz", x=xtr, y=ytr)
        np.savez(tmp / "val.npz", x=xte, y=yte)
        rows = []
        base = None
        runs = {k: v for k, v in RUNS.items() if not args.only or any(s in k for s in args.only)}
        for name, kw in runs.items():
            out = tmp / f"{len(rows)}.h5"
            rep = compress(DIGITS / "model.h5", tmp / "train.npz", val=tmp / "val.npz", out=out,
                           epochs=args.epochs, **kw)
            if base is None:
                r0 = deploy(DIGITS / "model.h5", data=tmp / "val.npz", calib=tmp / "train.npz",
                            out=tmp / "dep-base", samples=None)
                b = rep["totals"]["before"]
                base = dict(name="uncompressed", macs=b["macs"], params=b["params"], aot=b["aot"],
                            fw_flash=r0["memory"]["flash_bytes"], zeros=b["kernel_sparsity"],
                            distinct=b["distinct_per_channel_max"], float=rep["quality"]["float_before"]["accuracy"],
                            int8=rep["quality"]["int8_before"]["accuracy"], board=r0["accuracy"]["device"],
                            instr=r0["latency"]["median"], exact=r0["agreement"]["bit_exact_rate"])
                rows.append(base)
            r = deploy(int8_path(out), data=tmp / "val.npz", out=tmp / f"dep-{len(rows)}", samples=None)
            a = rep["totals"]["after"]
            rows.append(dict(name=name, macs=a["macs"], params=a["params"], aot=a["aot"],
                             fw_flash=r["memory"]["flash_bytes"], zeros=a["kernel_sparsity"],
                             distinct=a["distinct_per_channel_max"], float=rep["quality"]["float_after"]["accuracy"],
                             int8=rep["quality"]["int8_after"]["accuracy"], board=r["accuracy"]["device"],
                             instr=r["latency"]["median"], exact=r["agreement"]["bit_exact_rate"]))
            print(f"done: {name}", file=sys.stderr)
    print("| method | MACs | params | aot flash B | aot arena B | firmware flash B | zeros | distinct/ch | "
          "float acc | int8 acc | board acc | board instructions | bit-exact |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    def rel(r, k, v):
        return f" ({v / base[k]:.2f}x)" if r is not base and base[k] else ""

    for r in rows:
        print(f"| {r['name']} | {r['macs']:,}{rel(r, 'macs', r['macs'])} | {r['params']:,} | "
              f"{r['aot']['flash_bytes']:,} | {r['aot']['arena_bytes']:,} | {r['fw_flash']:,} | {r['zeros']:.0%} | "
              f"{r['distinct']} | {r['float']:.2%} | {r['int8']:.2%} | {r['board']:.2%} | "
              f"{r['instr']:,.0f}{rel(r, 'instr', r['instr'])} | {r['exact']:.0%} |")
    return 0 if all(r["exact"] == 1.0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
