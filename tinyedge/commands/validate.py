"""`tinyedge validate`: check an already-flashed board against the host reference."""

from __future__ import annotations

import click

from ..console import emit_json, err
from ._common import existing_path, json_option
from ._report import print_report, progress_bar


@click.command("validate")
@click.argument("model", type=existing_path(dir_okay=False))
@click.option("--port", "-p", required=True, metavar="URL",
              help="pyserial URL of the board: /dev/ttyUSB0, socket://127.0.0.1:5555, a pty path.")
@click.option("--data", "-d", type=existing_path(dir_okay=False), default=None,
              help="Test data (.npz with x and optional y labels, or .npy of x). Default: generated inputs.")
@click.option("--samples", "-n", type=click.IntRange(min=1), default=None, help="Use at most N samples.")
@click.option("--float-model", type=existing_path(), default=None,
              help="The Keras model the .tflite came from, to report the float model's accuracy too.")
@click.option("--report", "report_file", type=click.Path(dir_okay=False), default=None,
              help="Also write the report as JSON to this file.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds to wait for each reply.")
@json_option
def command(model, port, data, samples, float_model, report_file, timeout, as_json):
    """Stream inputs to the board running MODEL.tflite and check its answers.

    The board's int8 outputs are compared with the tflite-micro interpreter's
    on the same inputs (bit-exact share, top-1 agreement, largest difference);
    with labels, the accuracy of the board, of the int8 model on the host and
    (with --float-model) of the float model; latency in the board's counter
    unit.  Ctrl-C stops streaming and still reports what was measured.
    """
    from ..validation import validate

    with progress_bar("streaming", enabled=not as_json) as progress:
        report = validate(port, model, data=data, samples=samples, float_model=float_model,
                          timeout=timeout, progress=progress, report_file=report_file)
    if as_json:
        emit_json(report)
    else:
        print_report(report)
        if report_file:
            err.print(f"report written to {report_file}")
