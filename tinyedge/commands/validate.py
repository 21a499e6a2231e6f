"""`tinyedge validate`: check an already-flashed board against the host reference."""

from __future__ import annotations

import click

from ..console import emit_json, info, result
from ._common import existing_path, force_option, json_option, link_options, metrics_options
from ._report import exit_if_interrupted, print_report, progress_bar


@click.command("validate")
@click.argument("model", type=existing_path(dir_okay=False))
@link_options()
@click.option("--data", "-d", type=existing_path(dir_okay=False), default=None,
              help="Test data (.npz with x and optional y labels, or .npy of x). Default: generated inputs.")
@click.option("--samples", "-n", type=click.IntRange(min=1), default=None, help="Validate on at most N samples.")
@click.option("--float-model", type=existing_path(), default=None,
              help="The Keras model the .tflite came from, to report the float model's accuracy too.")
@click.option("--trust-code", is_flag=True,
              help="Allow Lambda layers stored as Python bytecode in --float-model (this runs code from it).")
@click.option("--report", "report_file", type=click.Path(dir_okay=False), default=None,
              help="Also write the report as JSON to this file (an existing file is refused without --force).")
@metrics_options
@force_option
@json_option
def command(model, port, baud, timeout, data, samples, float_model, trust_code, report_file, task, top_k, force,
            as_json):
    """Stream inputs to the board running MODEL.tflite and check its answers.

    The board's int8 outputs are compared with the tflite-micro interpreter's
    on the same inputs (bit-exact share, top-1 agreement, largest difference);
    with labels, the accuracy of the board, of the int8 model on the host and
    (with --float-model) of the float model; latency in the board's counter
    unit.  Without --port, the one attached board is used.  Ctrl-C stops
    streaming, reports what was measured and exits with status 130.
    """
    from ..validation import validate

    if report_file:
        from ..fsutil import check_output_file
        from ..report_html import html_path_for, is_report_page

        report_file = str(check_output_file(report_file, force=force))
        page = html_path_for(report_file)
        if not is_report_page(page):
            check_output_file(page, force=force)
    if port is None:
        from ..ports import pick_port

        port = pick_port()
    with progress_bar(f"streaming to {port}", enabled=not as_json) as progress:
        report = validate(port, model, data=data, samples=samples, float_model=float_model,
                          timeout=timeout, progress=progress, report_file=report_file, baud=baud,
                          trust_code=trust_code, on_status=info, task=task, top_k=top_k)
    if as_json:
        emit_json(report)
    else:
        print_report(report)
        if report_file:
            from ..report_html import html_path_for

            result(f"report written to {report_file} (and {html_path_for(report_file).name})")
    exit_if_interrupted(report)
