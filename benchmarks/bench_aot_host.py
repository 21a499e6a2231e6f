"""Host speed and memory of the aot engine against the tflite-micro interpreter.

For each MLPerf Tiny model (../shared/models/mlperf-tiny, or --models DIR):
  - engine ms: the generated C built for the host (HostModel, -O2), one
    inference from Python (input copy, invoke, output copy), median of runs;
  - engine invoke ms: the bare te_model_invoke() call through ctypes;
  - TFLM ms: tflite-micro's Python interpreter, set_input + invoke + get_output;
  - ratio: TFLM ms / engine ms (target: >= 3x);
  - arena bytes of each (TFLM: smallest arena its interpreter loads with,
    tinyedge.analyze.tflm_arena_bytes) and the planner's peak-live bound
    (target: engine arena <= TFLM arena and <= 1.05 x peak-live).
Outputs are also checked for equality on the timed input.

    .venv/bin/python benchmarks/bench_aot_host.py [--repeat 15] [--models DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
MODELS = ["ad01_int8.tflite", "kws_ref_model.tflite", "pretrainedResnet_quant.tflite", "vww_96_int8.tflite"]


def _median_ms(fn, repeat: int, min_time: float = 0.02) -> float:
    fn()  # warm up
    n = 1
    while True:  # calibrate the inner loop to at least min_time seconds
        t = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - t >= min_time:
            break
        n *= 2
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - t) / n * 1e3)
    return statistics.median(samples)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=Path, default=REPO.parent / "shared" / "models" / "mlperf-tiny")
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args(argv)

    from tflite_micro.python.tflite_micro import runtime

    from tinyedge.aot.host import HostModel
    try:
        from tinyedge.analyze import tflm_arena_bytes
    except ImportError:  # pragma: no cover - analyze is another area's module
        tflm_arena_bytes = None

    cache = Path(tempfile.mkdtemp(prefix="tinyedge-bench-aot-"))
    hdr = (f"{'model':<32} {'engine ms':>10} {'invoke ms':>10} {'TFLM ms':>9} {'ratio':>7} "
           f"{'arena B':>8} {'layer B':>8} {'TFLM arena B':>13} {'peak-live B':>12} {'arena/peak':>10} {'exact':>6}")
    print(hdr)
    print("-" * len(hdr))
    worst = float("inf")
    for name in MODELS:
        path = args.models / name
        if not path.exists():
            print(f"{name:<32} missing ({path})")
            continue
        data = path.read_bytes()
        # the host's own configuration: no Cortex-M DSP layouts or storages (their portable C is for tests)
        hm = HostModel(path, cache_dir=cache, arm_dsp=False)
        g = hm.graph
        x = np.random.default_rng(0).integers(-128, 128, size=g.tensors[g.inputs[0]].shape, dtype=np.int8)
        interp = runtime.Interpreter.from_bytes(data)

        def tflm_run(interp=interp, x=x):
            interp.set_input(x, 0)
            interp.invoke()
            return interp.get_output(0)

        exact = np.array_equal(np.asarray(tflm_run()).reshape(-1), hm.invoke(x).reshape(-1))
        eng = _median_ms(lambda hm=hm, x=x: hm.invoke(x), args.repeat)
        inv = _median_ms(hm._lib.te_model_invoke, args.repeat)
        ref = _median_ms(tflm_run, args.repeat)
        tflm_arena = tflm_arena_bytes(data) if tflm_arena_bytes else float("nan")
        ratio = ref / eng
        worst = min(worst, ratio)
        print(f"{name:<32} {eng:>10.3f} {inv:>10.3f} {ref:>9.3f} {ratio:>6.1f}x "
              f"{hm.arena_bytes:>8} {hm.layer_arena_bytes:>8} {tflm_arena:>13} {hm.peak_live_bytes:>12} "
              f"{hm.arena_bytes / max(hm.peak_live_bytes, 1):>10.3f} {'yes' if exact else 'NO':>6}")
    print(f"\nworst speed ratio (TFLM / engine): {worst:.1f}x (target >= 3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
