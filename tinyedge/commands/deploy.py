"""`tinyedge deploy`: model file to validated board in one command."""

from __future__ import annotations

import click

from ..console import emit_json, err, warn
from ._common import board_option, existing_path, force_option, json_option
from ._report import print_report, progress_bar


@click.command("deploy")
@click.argument("model", type=existing_path())
@board_option
@click.option("--runtime", "-r", type=click.Choice(["aot", "tflm"]), default="aot", show_default=True,
              help="aot: tinyedge's ahead-of-time C engine; tflm: TensorFlow Lite Micro.")
@click.option("--port", "-p", default=None, metavar="URL",
              help="Serial port of a real board (found automatically when exactly one is attached).")
@click.option("--data", "-d", type=existing_path(dir_okay=False), default=None,
              help="Test data: .npz with x and optional labels y, or .npy of x. Default: generated inputs.")
@click.option("--calib", "-c", type=existing_path(dir_okay=False), default=None,
              help="Calibration data for int8 conversion (default: the --data inputs).")
@click.option("--samples", "-n", type=click.IntRange(min=1), default=None, help="Validate on at most N samples.")
@click.option("-o", "--out", type=click.Path(file_okay=False), default=None,
              help="Artifacts folder (default: build/<model>-<board>/).")
@click.option("--weights", "-w", type=click.Choice(["auto", "dense", "palette", "sparse", "int4"]), default="auto",
              show_default=True,
              help="aot: storage of the conv/FC weights: auto picks per tensor the smallest storage within 5% "
                   "of dense's instructions; palette (16/4 values per channel), sparse (bit mask), int4, dense.")
@force_option
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds to wait for each reply from the board.")
@json_option
def command(model, board_id, runtime, port, data, calib, samples, out, weights, force, timeout, as_json):
    """Convert MODEL to full-int8, build firmware, flash it, and validate it on the board.

    MODEL is a Keras .h5 / .keras file, a SavedModel folder, or a .tflite.
    On an emulated board (the default, qemu-cortex-m4, or host) everything
    runs here.  On a real board without --port (and none attached) it
    builds and stops, saying how to flash.  The report (also written to
    report.json in the artifacts folder) compares the board's outputs with the
    host reference bit for bit, and gives accuracy, latency and memory.
    """
    from ..pipeline import deploy

    def on_step(name: str) -> None:
        if not as_json:
            err.print(f"[bold]{name}[/] ...")

    with progress_bar("validate", enabled=not as_json) as progress:
        report = deploy(model, board=board_id, runtime=runtime, port=port, data=data, calib=calib,
                        samples=samples, out=out, force=force, timeout=timeout, progress=progress, weights=weights,
                        on_step=on_step)
    if as_json:
        emit_json(report)
        return
    print_report(report)
    ag = report.get("agreement") or {}
    if ag.get("bit_exact_rate") not in (None, 1.0):
        warn("the board's outputs differ from the host reference; see report.json")
    err.print(f"report: {report.get('artifacts', {}).get('report') or 'report.json'}")
