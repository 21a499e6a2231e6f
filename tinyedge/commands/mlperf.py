"""`tinyedge mlperf`: the MLPerf Tiny runner (performance and accuracy modes) over any pyserial URL."""

from __future__ import annotations

import click

from ..console import emit_json, err
from ._common import existing_path, json_option
from ._report import progress_bar


@click.command("mlperf")
@click.argument("model", type=existing_path(dir_okay=False))
@click.option("--port", "-p", required=True, metavar="URL",
              help="pyserial URL of a board running MLPerf protocol firmware: /dev/ttyACM0, socket://HOST:PORT, ...")
@click.option("--mode", type=click.Choice(["performance", "accuracy", "both"]), default="both", show_default=True,
              help="performance: median throughput over windows; accuracy: every sample once.")
@click.option("--data", "-d", type=existing_path(dir_okay=False), default=None,
              help="Samples: .npz with x (float, the model's layout) and y labels (ad01: 1 = anomalous), or .npy.")
@click.option("--samples", "-n", type=click.IntRange(min=1), default=None, help="Use at most N samples.")
@click.option("--min-seconds", type=click.FloatRange(min=0.001), default=10.0, show_default=True,
              help="Shortest performance window, in the board's own time (the rules say 10 s).")
@click.option("--windows", type=click.IntRange(min=1), default=5, show_default=True,
              help="Performance windows; the median throughput is reported.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds to wait for each m-ready.")
@json_option
def command(model, port, mode, data, samples, min_seconds, windows, timeout, as_json):
    """Run the MLPerf Tiny / EEMBC host protocol against the board on --port that runs MODEL.

    The board runs firmware made with 'tinyedge generate MODEL --protocol
    mlperf' (or any MLPerf Tiny reference firmware).  Accuracy mode checks
    each result line against the host reference too; performance mode times
    windows with the board's m-lap-us timestamps.
    """
    from ..mlperf import run

    with progress_bar("accuracy", enabled=not as_json and mode != "performance") as progress:
        report = run(port, model, mode=mode, data=data, samples=samples, min_seconds=min_seconds,
                     windows=windows, timeout=timeout, progress=progress)
    if as_json:
        emit_json(report)
        return
    print_mlperf(report)


def print_mlperf(report: dict) -> None:
    err.print(f"board: {report['name']}  model: {report['model']}  ({report.get('profile', '')})")
    acc = report.get("accuracy")
    if acc:
        line = f"accuracy: {acc['samples']} samples"
        if "top1" in acc:
            line += f", top-1 {acc['top1']:.4f}"
        if "auc" in acc:
            line += f", AUC {acc['auc']:.4f}"
        line += f"; results equal to the host reference's: {acc['samples'] - acc.get('reference_mismatches', 0)}" \
                f"/{acc['samples']}"
        err.print(line)
    perf = report.get("performance")
    if perf:
        err.print(f"performance: {perf['median_per_second']:.2f} inferences/s median over {len(perf['windows'])} "
                  f"windows of >= {perf['min_window_s']:g} s ({perf['median_latency_ms']:.3f} ms per inference, "
                  "board time)")
    for n in report.get("notes", []):
        err.print(f"note: {n}")
