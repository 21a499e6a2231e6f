"""Per-layer profiling: do the per-op counts add up to the whole inference? (target: within 2%)

For each MLPerf Tiny model (../shared/models/mlperf-tiny, or --models DIR), on each board and
runtime asked for, the profile firmware (tinyedge.profile.generate_profile_project) is built into a
temporary folder, started, and profiled on one seeded random input:
  - whole: the median count of plain inferences of that input (hooks compiled in, off), the anchor;
  - sum: the sum of the per-op medians, the profiler's cost (an empty begin/end pair, measured on
    the board) taken out of each op;
  - ratio: sum / whole (target: 0.98 .. 1.02);
  - overhead: the empty pair's cost per op, and the whole count with the hooks on;
  - exact: ops whose output CRC matches the tflite-micro interpreter's.
Under QEMU the counter counts instructions (exact and repeatable); on the host board it is wall
nanoseconds on a shared machine, so its ratio carries the machine's noise.

MicroPython boards take BOARD:BACKEND (micropython-unix:natmod, qemu-micropython-m3:viper, ...): a
profile package (tinyedge.micropython.package.generate_package(profile=True)) is installed on the
emulated board and profiled over the raw REPL; the counter is the port's time.ticks_us (1 us on the
unix port; 1000 instructions a tick on the QEMU port under -icount shift=0).

    .venv/bin/python benchmarks/bench_profile.py [--boards qemu-cortex-m4:aot,qemu-cortex-m4:tflm,host:aot]
                                                 [--runs 3] [--models DIR] [--only ad01,kws]
    .venv/bin/python benchmarks/bench_profile.py --boards qemu-micropython-m3:natmod,qemu-micropython-m3:viper
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
MODELS = {"ad01": "ad01_int8.tflite", "kws": "kws_ref_model.tflite", "resnet": "pretrainedResnet_quant.tflite",
          "vww": "vww_96_int8.tflite"}


def _micropython(board_id: str, backend: str, model: Path, x, tmp: Path, runs: int) -> dict:
    """A profile package on the emulated MicroPython board, profiled over its raw REPL."""
    from tinyedge.boards import get_board
    from tinyedge.micropython.boards import start_board
    from tinyedge.micropython.package import generate_package
    from tinyedge.micropython.session import MicroPythonDevice
    from tinyedge.profile import profile_device

    b = get_board(board_id)
    pkg = generate_package(model, tmp / "pkg", arch=b.micropython.arch, name="m", backend=backend, force=True,
                           profile=True)
    handle = start_board(b)
    dev = MicroPythonDevice(handle.port, board=b, name="m", timeout=600, boot_script=handle.boot_script,
                            process=handle)
    try:
        dev.install(pkg.out_dir, "m")
        dev.open_model()
        return profile_device(dev, model, x, runs=runs)
    finally:
        dev.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", default="qemu-cortex-m4:aot,qemu-cortex-m4:tflm,host:aot")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--models", type=Path, default=REPO.parent / "shared" / "models" / "mlperf-tiny")
    ap.add_argument("--only", default=",".join(MODELS))
    args = ap.parse_args()
    if not args.models.is_dir():
        print(f"models folder {args.models} not found", file=sys.stderr)
        return 2
    sources = REPO.parent / "shared" / "sources"
    if "TINYEDGE_SOURCES_DIR" not in os.environ and sources.is_dir():
        os.environ["TINYEDGE_SOURCES_DIR"] = str(sources)

    from tinyedge.boards import get_board
    from tinyedge.builder import build_project
    from tinyedge.flashers.dispatch import flash_project
    from tinyedge.graph import load_tflite
    from tinyedge.link import Device
    from tinyedge.profile import generate_profile_project, profile_device

    print(f"{'board':19s} {'rt':4s} {'model':6s} {'unit':12s} {'whole':>12s} {'sum':>12s} {'ratio':>7s} "
          f"{'ovh/op':>6s} {'hooked/whole':>12s} exact  target")
    worst = 0.0
    for spec in args.boards.split(","):
        board, runtime = spec.split(":")
        for name in args.only.split(","):
            model = args.models / MODELS[name]
            g = load_tflite(model)
            x = np.random.default_rng(7).integers(-128, 128, size=g.input_tensors[0].shape).astype(np.int8)
            with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
                t0 = time.perf_counter()
                if get_board(board).micropython:
                    rep = _micropython(board, runtime, model, x, Path(tmp), args.runs)
                else:
                    proj = generate_profile_project(model, board, runtime, Path(tmp) / "p")
                    build_project(proj, jobs=2)
                    with Device.from_flash(flash_project(proj, board=board), timeout=120) as dev:
                        rep = profile_device(dev, model, x, runs=args.runs)
                secs = time.perf_counter() - t0
            p = rep["profile"]
            ratio = p["sum_of_ops"] / p["whole"]
            met = 0.98 <= ratio <= 1.02
            if p["unit"] == "instructions":
                worst = max(worst, abs(ratio - 1))
            print(f"{board:19s} {runtime[:4]:4s} {name:6s} {p['unit']:12s} {p['whole']:12,.0f} {p['sum_of_ops']:12,} "
                  f"{ratio:7.4f} {p['overhead_per_op']:6.1f} {p['whole_with_hooks'] / p['whole']:12.3f} "
                  f"{p['bit_exact_ops']:>2}/{p['ops']:<2}  {'met' if met else 'NOT met'}  ({secs:.0f} s)", flush=True)
    print(f"worst |ratio - 1| where the counter counts instructions: {worst:.5f} (target <= 0.02)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
