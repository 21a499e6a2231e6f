"""The aot firmware on the emulated Cortex-M4 against the TFLite Micro anchors (BENCHMARKS.md).

For each MLPerf Tiny model (../shared/models/mlperf-tiny, or --models DIR):
generate + build the aot firmware for qemu-cortex-m4 (arm-none-eabi-gcc -O2),
boot it under QEMU (-icount shift=0), run inferences over the emulated UART
and print:
  - instructions per inference (the firmware's SysTick count x 40) and per MAC;
  - ratio to TFLM + CMSIS-NN on the same board (target: <= 0.6);
  - arena bytes (symbol te_model_arena) vs TFLM's arena;
  - flash (text + rodata + data) vs TFLM + CMSIS-NN firmware text, and vs
    the int8 weights + int32 biases + 12 KB (target: <=);
  - RAM (data + bss + stack);
and checks every output against the tflite-micro interpreter.

    .venv/bin/python benchmarks/bench_firmware.py [--runs 3] [--models DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
# BENCHMARKS.md, TFLM on QEMU mps2-an386: (MACs, TFLM+CMSIS-NN instructions, TFLM arena, TFLM+CMSIS-NN text)
ANCHORS = {
    "ad01_int8": (0.26e6, 0.58e6, 2_580, 332_904),
    "pretrainedResnet_quant": (12.50e6, 29.9e6, 54_996, 207_052),
    "kws_ref_model": (2.66e6, 7.70e6, 22_820, 167_832),
    "vww_96_int8": (7.49e6, 24.1e6, 100_708, 447_184),
}


def weight_bytes(graph) -> int:
    """int8 weights and int32 biases: the constant tensors the ops read."""
    return sum(t.nbytes for t in graph.tensors if t.is_const and t.dtype in ("int8", "int32"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=Path, default=REPO.parent / "shared" / "models" / "mlperf-tiny")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    from tflite_micro.python.tflite_micro import runtime

    from tinyedge.boards import get_board
    from tinyedge.builder import build_project
    from tinyedge.graph import load_tflite
    from tinyedge.link import Device
    from tinyedge.project import generate_project
    from tinyedge.qemu import start_qemu

    board = get_board("qemu-cortex-m4")
    rows = []
    with tempfile.TemporaryDirectory(prefix="tinyedge-bench-fw-") as tmp:
        for name, (macs, tflm_instr, tflm_arena, tflm_text) in ANCHORS.items():
            model = args.models / f"{name}.tflite"
            if not model.is_file():
                print(f"skip {name}: {model} not found", file=sys.stderr)
                continue
            graph = load_tflite(model)
            proj = generate_project(model, board, "aot", Path(tmp) / name)
            built = build_project(proj)
            m = built.memory
            interp = runtime.Interpreter.from_bytes(model.read_bytes())
            rng = np.random.default_rng(0)
            counts = []
            exact = True
            with start_qemu(built.elf, board) as q, Device(q.url, timeout=300) as dev:
                info = dev.info()
                for _ in range(args.runs):
                    x = rng.integers(-128, 128, size=info.inputs[0].shape).astype(np.int8)
                    y, count = dev.infer(x)
                    interp.set_input(x, 0)
                    interp.invoke()
                    exact &= bool(np.array_equal(np.asarray(y).reshape(-1), interp.get_output(0).reshape(-1)))
                    counts.append(count)
            instr = int(np.median(counts))
            budget = weight_bytes(graph) + 12 * 1024
            rows.append((name, instr, instr / macs, instr / tflm_instr, m.arena_bytes, tflm_arena, m.flash_bytes,
                         tflm_text, budget, m.ram_bytes, exact, info.unit))
    print(f"{'model':24} {'instr':>12} {'/MAC':>6} {'vs TFLM+CMSIS':>13} {'arena':>8} {'TFLM arena':>10} "
          f"{'flash':>9} {'vs TFLM text':>12} {'w+b+12K':>9} {'RAM':>8} exact")
    for name, instr, per_mac, ratio, arena, tarena, flash, ttext, budget, ram, exact, _unit in rows:
        print(f"{name:24} {instr:>12,} {per_mac:>6.2f} {ratio:>12.2f}x {arena:>8,} {tarena:>10,} "
              f"{flash:>9,} {flash / ttext:>11.2f}x {budget:>9,} {ram:>8,} {'yes' if exact else 'NO'}")
    print(f"(latency unit: {rows[0][-1] if rows else 'instructions'}; QEMU mps2-an386, -icount shift=0)")
    return 0 if all(r[10] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
