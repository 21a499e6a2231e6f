"""`tinyedge mlperf`: the MLPerf Tiny runner (performance and accuracy modes) over any pyserial URL."""

from __future__ import annotations

import click

from ..console import emit_json, result, short_path
from ._common import baud_option, existing_path, json_option, port_option, timeout_option
from ._report import progress_bar


@click.command("mlperf")
@click.argument("model", type=existing_path(dir_okay=False))
@port_option(help="Serial port of a board running MLPerf protocol firmware: a device path, a pty, or a pyserial "
                  "URL (socket://HOST:PORT, ...); found by itself when exactly one board is attached.")
@baud_option
@timeout_option
@click.option("--mode", type=click.Choice(["performance", "accuracy", "both"]), default="both", show_default=True,
              help="performance: median throughput over windows; accuracy: every sample once.")
@click.option("--data", "-d", type=existing_path(dir_okay=False), default=None,
              help="Samples: .npz with x (float, the model's layout) and y labels (ad01: 1 = anomalous), or .npy.")
@click.option("--samples", "-n", type=click.IntRange(min=1), default=None, help="Use at most N samples.")
@click.option("--min-seconds", type=click.FloatRange(min=0.001), default=10.0, show_default=True,
              help="Shortest performance window, in the board's own time (the rules say 10 s).")
@click.option("--windows", type=click.IntRange(min=1), default=5, show_default=True,
              help="Performance windows; the median throughput is reported.")
@json_option
def command(model, port, baud, timeout, mode, data, samples, min_seconds, windows, as_json):
    """Run the MLPerf Tiny / EEMBC host protocol against the board on --port that runs MODEL.

    The board runs firmware made with 'tinyedge generate MODEL --protocol
    mlperf' (or any MLPerf Tiny reference firmware).  Accuracy mode checks
    each result line against the host reference too; performance mode times
    windows with the board's m-lap-us timestamps.
    """
    from ..console import Steps
    from ..mlperf import run

    if port is None:
        from ..graph import load_tflite
        from ..ports import pick_port

        load_tflite(model)                  # a model that is not a .tflite is said before the port search

        port = pick_port()
    with Steps(enabled=not as_json) as steps, \
            progress_bar("accuracy", enabled=not as_json and mode != "performance", before=steps.pause) as progress:
        report = run(port, model, mode=mode, data=data, samples=samples, min_seconds=min_seconds,
                     windows=windows, timeout=timeout, progress=progress, baud=baud, on_step=steps.start)
    if as_json:
        emit_json(report)
        return
    print_mlperf(report)


def print_mlperf(report: dict) -> None:
    """The result on stdout, wrapped between words to the width; notes on stderr."""
    result(f"board: {report['name']}  model: {report['model']}  ({report.get('profile', '')})  "
           f"file: {short_path(report.get('model_file', ''), 60)}")
    acc = report.get("accuracy")
    if acc:
        line = f"accuracy: {acc['samples']} samples"
        if "top1" in acc:
            line += f", top-1 {acc['top1']:.4f}"
        if "auc" in acc:
            line += f", AUC {acc['auc']:.4f}"
        line += f"; results equal to the host reference's: {acc['samples'] - acc.get('reference_mismatches', 0)}" \
                f"/{acc['samples']}"
        result(line)
    perf = report.get("performance")
    if perf:
        result(f"performance: {perf['median_per_second']:.2f} inferences/s median over {len(perf['windows'])} "
                  f"windows of >= {perf['min_window_s']:g} s ({perf['median_latency_ms']:.3f} ms per inference, "
                  "board time)")
    for n in report.get("notes", []):
        result(f"[yellow]note:[/] {n}")
