"""Serial link: wire efficiency, round trips, projected and measured throughput.

1. Computed from the protocol (the real encoder, random tensors): for inputs
   of 100 B, 1 KB, 10 KB and 27 KB (the visual-wake-words input) and a 10-byte
   output, the wire efficiency (tensor bytes / all bytes on the wire, framing,
   CRC, ACKs and the RESULT included), the round trips (turnarounds) per
   inference, and the projected link throughput at 115200 baud with 1 ms of
   USB-serial turnaround each, as a ratio of baud/10 (target >= 0.90;
   efficiency target >= 0.95 from 1 KB).
2. Measured: inferences per second through Device sessions against emulated
   boards: QEMU (qemu-cortex-m4, aot firmware) for small test models and the
   MLPerf Tiny models when ../shared/models is present, the host board (the
   C device loop with the fake 5000-byte model of tests/c/fake_board.c), and
   the TFLM board.  QEMU's UART has no baud rate, so these measure protocol +
   emulation speed, not a wire.

    .venv/bin/python benchmarks/bench_link.py [--seconds 3] [--no-qemu]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from tinyedge.link import Device  # noqa: E402
from tinyedge.link import protocol as p  # noqa: E402

SIZES = [("100 B", 100), ("1 KB", 1024), ("10 KB", 10 * 1024), ("27 KB", 96 * 96 * 3)]
DEVICE_FRAME = 2064          # TE_PROTO_MAX_FRAME default (firmware/proto/te_proto.h)


def computed(baud: int = 115200, turnaround_s: float = 0.001, out_bytes: int = 10) -> None:
    print(f"# computed: device frame {DEVICE_FRAME} B, output {out_bytes} B, {baud} baud, "
          f"{turnaround_s * 1e3:g} ms per turnaround")
    print(f"{'input':>7} {'wire B':>8} {'efficiency':>10} {'round trips':>11} {'proj. B/s':>9} {'vs baud/10':>10}")
    for name, n in SIZES:
        c = p.wire_cost(n, out_bytes, DEVICE_FRAME)
        seconds = c["wire_bytes"] * 10 / baud + c["round_trips"] * turnaround_s
        rate = (n + out_bytes) / seconds
        print(f"{name:>7} {c['wire_bytes']:>8} {c['efficiency']:>10.3f} {c['round_trips']:>11} {rate:>9.0f} "
              f"{rate / (baud / 10):>10.3f}")


def measure(dev: Device, seconds: float) -> tuple[float, int, int]:
    info = dev.info()
    rng = np.random.default_rng(0)
    xs = [rng.integers(-128, 128, t.shape).astype(np.int8) for t in info.inputs]
    x = xs if len(xs) > 1 else xs[0]
    dev.infer(x)
    n, t0 = 0, time.perf_counter()
    b0 = dev.transport.bytes_in + dev.transport.bytes_out
    while time.perf_counter() - t0 < seconds or n < 3:
        _, count = dev.infer(x)
        n += 1
    dt = time.perf_counter() - t0
    wire = dev.transport.bytes_in + dev.transport.bytes_out - b0
    return n / dt, count, int(wire / dt)


def row(board: str, model: str, in_bytes: int, ips: float, count: int, unit: str, bps: int) -> None:
    print(f"{board:>16} {model:>14} {in_bytes:>7} {ips:>9.1f} {bps:>10} {count:>12} {unit}")


def measured(seconds: float, with_qemu: bool) -> None:
    print("\n# measured (Device sessions on emulated boards)")
    print(f"{'board':>16} {'model':>14} {'input B':>7} {'infer/s':>9} {'wire B/s':>10} {'count':>12} unit")
    from test_device import build_fake_board

    from tinyedge.emulation import HostBoard, TflmBoard

    with tempfile.TemporaryDirectory() as tmp:
        exe = build_fake_board(Path(tmp) / "fake_board", sanitize=False)
        with HostBoard(exe) as hb, Device(hb.port, timeout=10) as d:
            ips, count, bps = measure(d, seconds)
            row("host (C loop)", "fake-5000B", 5000, ips, count, "ns", bps)
    from aot_zoo import zoo_tflite

    models = {"fc": zoo_tflite("fc"), "conv": zoo_tflite("conv")}
    shared = REPO.parent / "shared" / "models" / "mlperf-tiny"
    for key, f in (("ad01", "ad01_int8.tflite"), ("kws", "kws_ref_model.tflite"), ("vww", "vww_96_int8.tflite")):
        if (shared / f).is_file():
            models[key] = shared / f
    with TflmBoard(models["conv"]) as tb, Device(tb.port, timeout=10) as d:
        ips, count, bps = measure(d, seconds)
        row("host (TFLM)", "conv", d.info().input_bytes, ips, count, "ns", bps)
    if not with_qemu:
        return
    from build_cache import cached_build

    from tinyedge.boards import get_board
    from tinyedge.flashers import get_flasher

    board = get_board("qemu-cortex-m4")
    for name, model in models.items():
        try:
            proj, _ = cached_build(model, board.id)
        except Exception as e:  # noqa: BLE001 - a model that does not build is reported, not fatal
            print(f"{board.id:>16} {name:>14} build failed: {e}")
            continue
        res = get_flasher("qemu").flash(proj, board)
        with Device.from_flash(res, timeout=60) as d:
            ips, count, bps = measure(d, seconds)
            row("qemu-cortex-m4", name, d.info().input_bytes, ips, count, "instructions", bps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="measuring time per board")
    ap.add_argument("--no-qemu", action="store_true", help="skip the QEMU boards")
    args = ap.parse_args()
    computed()
    measured(args.seconds, not args.no_qemu)


if __name__ == "__main__":
    main()
