"""Runtime micropython on the emulated Cortex-M3, against the bare-metal aot firmware (BENCHMARKS.md).

In one run:
  1. instructions per inference on qemu-micropython-m3 (MicroPython's QEMU
     port, -icount shift=0): the natmod package against the bare-metal aot
     firmware of the same model on qemu-cortex-m3 (target <= 1.15x), and the
     viper package per MAC (target <= 40);
  2. validation throughput over the REPL: the wire cost of the session's
     framing (binary chunks + acks in, hex frame out) projected at 115200 baud
     with 1 ms of USB-serial turnaround per round trip, as a share of the
     UART's byte rate (target >= 0.5 for inputs of 1 KB and more), and the
     rate measured on the emulated boards (their UARTs have no baud rate);
  3. `deploy` of the digits example to micropython-unix end to end, a second
     time (conversion cached, MicroPython built): wall seconds (target <= 30).

    .venv/bin/python benchmarks/bench_micropython.py [--models DIR] [--samples 5]

Needs the pinned sources (TINYEDGE_SOURCES_DIR, default ../shared/sources) and
the MLPerf Tiny models (../shared/models/mlperf-tiny).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared"
os.environ.setdefault("TINYEDGE_SOURCES_DIR", str(SHARED / "sources"))

from tinyedge.micropython.session import CHUNK  # noqa: E402


def wire(n_in: int, n_out: int, chunk: int = CHUNK) -> tuple[int, int]:
    """Bytes on the wire and round trips of one sample of the REPL session."""
    acks = -(-n_in // chunk)
    frame = 2 + 2 * (7 + n_out) + 4 + 1
    return 3 + n_in + acks + frame, acks


def projected(baud: int = 115200, turnaround: float = 0.001) -> None:
    print(f"# REPL session, projected at {baud} baud, {turnaround * 1e3:g} ms per round trip, chunk {CHUNK} B")
    print(f"{'input B':>8} {'wire B':>8} {'round trips':>11} {'input B/s':>9} {'share of baud/10':>16}")
    for n in (256, 1024, 3072, 27648):
        w, rt = wire(n, 10)
        s = w * 10 / baud + rt * turnaround
        print(f"{n:>8} {w:>8} {rt:>11} {n / s:>9.0f} {n / s / (baud / 10):>16.3f}")


def aot_instructions(tflite: Path, samples: int) -> float | None:
    from tinyedge.pipeline import deploy

    with tempfile.TemporaryDirectory(prefix="bench-mp-aot-") as d:
        r = deploy(tflite, board="qemu-cortex-m3", runtime="aot", samples=samples, out=Path(d) / "o", force=True)
    assert r["agreement"]["bit_exact_rate"] == 1.0
    return r["latency"]["median"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=Path, default=SHARED / "models" / "mlperf-tiny")
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--no-aot", action="store_true", help="skip the bare-metal aot firmware anchor")
    args = ap.parse_args()

    from tinyedge.boards import get_board
    from tinyedge.graph import load_tflite
    from tinyedge.micropython.boards import start_board
    from tinyedge.micropython.package import generate_package
    from tinyedge.micropython.session import MicroPythonDevice
    from tinyedge.validation import validate_device

    projected()
    models = [("ad01", args.models / "ad01_int8.tflite"), ("kws", args.models / "kws_ref_model.tflite")]
    board = get_board("qemu-micropython-m3")
    print("\n# qemu-micropython-m3 (viper) vs qemu-cortex-m3 (bare-metal aot), instructions per inference")
    print(f"{'model':>6} {'MACs':>9} {'aot':>11} {'natmod':>11} {'natmod/aot':>10} {'viper':>12} {'viper/MAC':>9} "
          f"{'bit-exact':>9} {'in B/s':>7}")
    h = start_board(board)
    try:
        for name, tfl in models:
            g = load_tflite(tfl)
            counts, exact, rates = {}, [], []
            for backend in ("natmod", "viper"):
                with tempfile.TemporaryDirectory(prefix="bench-mp-") as d:
                    pkg = generate_package(g, Path(d) / "dist", arch="armv7m", name=f"{name}_{backend}",
                                           backend=backend, force=True)
                    dev = MicroPythonDevice(h.port, board=board, name=pkg.name, timeout=300,
                                            boot_script=h.boot_script)
                    try:
                        dev.install(pkg.out_dir, pkg.name)
                        v = validate_device(dev, tfl, samples=args.samples)
                        rates.append(dev.stats.bytes_out / max(dev.stats.stream_seconds, 1e-9))
                    finally:
                        dev.close()
                counts[backend] = v["latency"]["median"]
                exact.append(v["agreement"]["bit_exact_rate"])
            aot = None if args.no_aot else aot_instructions(tfl, 3)
            ratio = f"{counts['natmod'] / aot:.3f}" if aot else "-"
            print(f"{name:>6} {pkg.macs:>9} {aot or 0:>11.0f} {counts['natmod']:>11.0f} {ratio:>10} "
                  f"{counts['viper']:>12.0f} {counts['viper'] / pkg.macs:>9.1f} {min(exact):>9.3f} "
                  f"{min(rates):>7.0f}")
    finally:
        h.close()

    print("\n# deploy of examples/digits to micropython-unix, end to end (second run: conversion reused)")
    from tinyedge.pipeline import deploy

    digits = REPO / "examples" / "digits"
    with tempfile.TemporaryDirectory(prefix="bench-mp-deploy-") as d:
        kw = dict(board="micropython-unix", runtime="micropython", data=digits / "test.npz",
                  calib=digits / "calib.npz", out=Path(d) / "o")
        deploy(digits / "model.h5", **kw)
        t0 = time.perf_counter()
        r = deploy(digits / "model.h5", **kw)
        wall = time.perf_counter() - t0
    steps = ", ".join(f"{s['name']} {s['seconds']:.2f} s" for s in r["steps"])
    print(f"deploy: {wall:.1f} s (target <= 30 s; {steps}); {r['samples']} samples, bit-exact "
          f"{r['agreement']['bit_exact_rate']:.3f}, unix-port input rate "
          f"{r['link']['bytes_out'] / max(r['link']['stream_seconds'], 1e-9):.0f} B/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
