"""The aot firmware on the emulated Cortex-M4, M7 and M55 against TFLite Micro + CMSIS-NN, both built and run here.

For each MLPerf Tiny model (../shared/models/mlperf-tiny, or --models DIR) and each Cortex-M board
of --boards (qemu-cortex-m4: mps2-an386, Cortex-M4F; qemu-cortex-m7: mps2-an500; qemu-cortex-m55:
mps3-an547, whose Cortex-M55 executes MVE): generate + build the aot firmware AND the tflm firmware
(TFLite Micro 90b983c2 with CMSIS-NN, built from the pinned sources for that core: on the M55
CMSIS-NN's Helium paths, ARM_MATH_MVEI; TINYEDGE_SOURCES_DIR or a download) with
arm-none-eabi-gcc -O2, boot each under QEMU (-icount shift=0), run inferences over the emulated
UART and print:
  - instructions per inference (the firmware's SysTick count x 40) and per MAC;
  - aot's ratio to TFLM + CMSIS-NN measured in this run on the same board (target: <= 0.6);
  - aot's arena (symbol te_model_arena) vs the arena TFLM used on the device;
  - flash (text + rodata + data) of both firmwares, and aot's vs the int8
    weights + int32 biases + 12 KB (target: <=);
and checks every output against the tflite-micro interpreter.

Where aot's schedule `auto` streams stages row by row or works in place (tinyedge.stream), the
model is also built with `--schedule layer` on the first Cortex-M board of --boards, and a table
gives the arena against the layer-by-layer one (target for VWW: <= 0.6x) and the instructions
the streamed schedule costs.

Then (riscv32) the same aot firmware on qemu-riscv32 (the ESP32-C3's RV32IMC + Zicsr + Zifencei on
QEMU virt, riscv64-unknown-elf-gcc -O2, instructions from the minstret CSR under -icount shift=0):
instructions, per MAC, the ratio to aot on the Cortex-M4 in this run, arena and flash.
(TFLM is not built for RISC-V.)

    .venv/bin/python benchmarks/bench_firmware.py [--runs 3] [--models DIR]
        [--boards cortex-m4,cortex-m7,cortex-m55,riscv32] [--only ad01_int8,...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
# BENCHMARKS.md, TFLM on QEMU mps2-an386: (MACs, TFLM+CMSIS-NN instructions, TFLM arena, TFLM+CMSIS-NN text);
# only the MACs are used; the anchor instructions are printed beside this run's measurement.
ANCHORS = {
    "ad01_int8": (0.26e6, 0.58e6, 2_580, 332_904),
    "pretrainedResnet_quant": (12.50e6, 29.9e6, 54_996, 207_052),
    "kws_ref_model": (2.66e6, 7.70e6, 22_820, 167_832),
    "vww_96_int8": (7.49e6, 24.1e6, 100_708, 447_184),
}


def weight_bytes(graph) -> int:
    """int8 weights and int32 biases: the constant tensors the ops read."""
    return sum(t.nbytes for t in graph.tensors if t.is_const and t.dtype in ("int8", "int32"))


# --boards names -> (board id, whether TFLM + CMSIS-NN is built and measured there)
TABLES = {
    "cortex-m4": ("qemu-cortex-m4", True),
    "cortex-m7": ("qemu-cortex-m7", True),
    "cortex-m55": ("qemu-cortex-m55", True),
    "riscv32": ("qemu-riscv32", False),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=Path, default=REPO.parent / "shared" / "models" / "mlperf-tiny")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--boards", default="cortex-m4,cortex-m7,cortex-m55,riscv32",
                    help=f"which tables, comma-separated: {', '.join(TABLES)} (the Cortex-M ones: aot vs "
                         "TFLM + CMSIS-NN built for that core; riscv32: aot only)")
    ap.add_argument("--only", default="", help="comma-separated model names (default: all four)")
    args = ap.parse_args()
    tables = [t for t in args.boards.split(",") if t]
    unknown = [t for t in tables if t not in TABLES]
    if unknown:
        print(f"error: unknown board table {unknown[0]!r}; use some of {', '.join(TABLES)}", file=sys.stderr)
        return 2
    only = {m for m in args.only.split(",") if m}

    from tflite_micro.python.tflite_micro import runtime

    from tinyedge.boards import get_board
    from tinyedge.builder import build_project
    from tinyedge.graph import load_tflite
    from tinyedge.link import Device
    from tinyedge.project import generate_project
    from tinyedge.qemu import start_qemu

    rows: dict[str, list] = {t: [] for t in tables}
    sched_rows: list = []

    def measure(model: Path, runtime_name: str, folder: Path, interp, board, schedule: str = "auto") -> dict:
        built = build_project(generate_project(model, board, runtime_name, folder, schedule=schedule), jobs=2)
        rng = np.random.default_rng(0)
        counts, exact = [], True
        with start_qemu(built.elf, board) as q, Device(q.url, timeout=300) as dev:
            info = dev.info()
            for _ in range(args.runs):
                x = rng.integers(-128, 128, size=info.inputs[0].shape).astype(np.int8)
                y, count = dev.infer(x)
                interp.set_input(x, 0)
                interp.invoke()
                exact &= bool(np.array_equal(np.asarray(y).reshape(-1), interp.get_output(0).reshape(-1)))
                counts.append(count)
        m = built.memory
        # tflm: the arena the interpreter used on the device (te_info.arena_bytes), not the buffer's size
        arena = info.arena_bytes if runtime_name == "tflm" and getattr(info, "arena_bytes", 0) else m.arena_bytes
        return {"instr": int(np.median(counts)), "arena": arena, "flash": m.flash_bytes, "ram": m.ram_bytes,
                "exact": exact, "unit": info.unit}

    with tempfile.TemporaryDirectory(prefix="tinyedge-bench-fw-") as tmp:
        for name, (macs, anchor_instr, _anchor_arena, _anchor_text) in ANCHORS.items():
            if only and name not in only:
                continue
            model = args.models / f"{name}.tflite"
            if not model.is_file():
                print(f"skip {name}: {model} not found", file=sys.stderr)
                continue
            graph = load_tflite(model)
            interp = runtime.Interpreter.from_bytes(model.read_bytes())
            budget = weight_bytes(graph) + 12 * 1024
            m4_aot = None
            for table in tables:
                board_id, with_tflm = TABLES[table]
                board = get_board(board_id)
                # TFLite Micro + CMSIS-NN built here (tinyedge's tflm runtime, per-core library cache), same run.
                t = measure(model, "tflm", Path(tmp) / f"{name}-{table}-tflm", interp, board) if with_tflm else None
                a = measure(model, "aot", Path(tmp) / f"{name}-{table}-aot", interp, board)
                if table == "cortex-m4":
                    m4_aot = a
                if with_tflm and not any(r[0] == name for r in sched_rows):
                    from tinyedge.aot.codegen import build_context, has_arm_dsp

                    # the plan the generator made for this board (its kernels, its weight storage)
                    pl = build_context(graph, arm_dsp=has_arm_dsp(board), mve=bool(board.mve))["plan"]
                    if pl.stages or pl.inplace:
                        lay = measure(model, "aot", Path(tmp) / f"{name}-{table}-layer", interp, board, "layer")
                        sched_rows.append((name, board_id, a, lay, pl))
                rows[table].append((name, macs, a, t, anchor_instr, budget, m4_aot))
                print(f"measured {name} on {board_id}: aot {a['instr']:,}"
                      + (f", TFLM + CMSIS-NN {t['instr']:,}" if t else ""), file=sys.stderr, flush=True)
    for table in tables:
        board = get_board(TABLES[table][0])
        if not rows[table]:
            continue
        print()
        if TABLES[table][1]:
            print(f"{'model (' + board.id + ')':30} {'aot instr':>11} {'TFLM+CMSIS':>11} {'aot/TFLM':>8} {'/MAC':>5} "
                  f"{'arena':>8} {'TFLM arena':>10} {'ratio':>6} {'flash':>9} {'TFLM flash':>10} {'ratio':>6} "
                  f"{'w+b+12K':>9} exact")
            for name, macs, a, t, anchor, budget, _ in rows[table]:
                print(f"{name:30} {a['instr']:>11,} {t['instr']:>11,} {a['instr'] / t['instr']:>7.2f}x "
                      f"{a['instr'] / macs:>5.2f} {a['arena']:>8,} {t['arena']:>10,} "
                      f"{a['arena'] / t['arena']:>5.2f}x {a['flash']:>9,} {t['flash']:>10,} "
                      f"{a['flash'] / t['flash']:>5.2f}x {budget:>9,} {'yes' if a['exact'] and t['exact'] else 'NO'}"
                      + (f"  (TFLM anchor {anchor / 1e6:.2f} M, BENCHMARKS.md)" if table == "cortex-m4" else ""))
            print(f"(latency unit: {rows[table][0][2]['unit']}; QEMU {board.flash.qemu_machine}, -icount shift=0, "
                  f"{' '.join(board.cflags)} -O2; TFLM = TFLite Micro 90b983c2 + CMSIS-NN 4ab83cc3 built by "
                  "tinyedge for this core in this run; target aot/TFLM <= 0.6)")
        else:
            print(f"{'model (' + board.id + ', aot)':30} {'instr':>11} {'/MAC':>5} {'vs M4 aot':>9} {'arena':>8} "
                  f"{'flash':>9} {'w+b+12K':>9} {'RAM':>9} exact")
            for name, macs, r, _, _, budget, m4 in rows[table]:
                vs = f"{r['instr'] / m4['instr']:>8.2f}x" if m4 else f"{'-':>9}"
                print(f"{name:30} {r['instr']:>11,} {r['instr'] / macs:>5.2f} {vs} {r['arena']:>8,} "
                      f"{r['flash']:>9,} {budget:>9,} {r['ram']:>9,} {'yes' if r['exact'] else 'NO'}")
            print(f"(latency unit: {rows[table][0][2]['unit']}; QEMU virt, CPU "
                  f"{board.flash.qemu_cpu.split(',')[0]} cut to {board.march} (the ESP32-C3's ISA), minstret under "
                  "-icount shift=0; riscv64-unknown-elf-gcc -O2)")
    if sched_rows:
        print()
        print(f"{'model (schedule auto vs layer)':30} {'board':15} {'arena':>8} {'layer':>8} {'ratio':>6} "
              f"{'instr':>11} {'layer':>11} {'cost':>7} {'flash':>8} {'layer':>8} streamed")
        for name, board_id, a, lay, pl in sched_rows:
            what = ", ".join([f"{s.first}-{s.last}/{s.rows}" for s in pl.stages]
                             + [f"{i} in place" for i, _ in pl.inplace])
            print(f"{name:30} {board_id:15} {a['arena']:>8,} {lay['arena']:>8,} {a['arena'] / lay['arena']:>5.2f}x "
                  f"{a['instr']:>11,} {lay['instr']:>11,} {(a['instr'] / lay['instr'] - 1) * 100:>+6.2f}% "
                  f"{a['flash']:>8,} {lay['flash']:>8,} {what}"
                  + ("" if a["exact"] and lay["exact"] else "  NOT EXACT"))
        print("(arena: symbol te_model_arena of each firmware; streamed: op ranges/rows per kernel call; "
              "target VWW arena <= 0.6x layer by layer)")
        ok_sched = all(a["exact"] and lay["exact"] for _, _, a, lay, _ in sched_rows)
    else:
        ok_sched = True
    ok = ok_sched and all(r[2]["exact"] and (r[3] is None or r[3]["exact"]) for rs in rows.values() for r in rs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
