"""`tinyedge report`: draw report.html again from a report.json."""

from __future__ import annotations

import click

from ..console import emit_json, result
from ._common import existing_path, force_option, json_option, output_option


@click.command("report")
@click.argument("report_json", metavar="REPORT.json", type=existing_path(dir_okay=False))
@output_option("out", kind="file", help="The HTML file to write (default: beside the JSON, REPORT.html); "
              "an existing file that is not a tinyedge report page is refused without --force.")
@force_option
@json_option
def command(report_json, out, force, as_json):
    """Render the HTML page of REPORT.json (written by deploy, validate or profile).

    The page is self-contained (charts as inline SVG, nothing fetched): the
    summary, metrics, a latency histogram, per-layer counts and error, flash
    and RAM against the board's limits, and the confusion matrix.
    """
    from pathlib import Path

    from ..fsutil import check_output_file
    from ..report_html import html_path_for, is_report_page, render_report_file

    target = Path(out).expanduser().resolve() if out is not None else html_path_for(report_json)
    if not (target.is_file() and is_report_page(target)):
        target = check_output_file(target, force=force, source=report_json)
    path = render_report_file(report_json, target)
    if as_json:
        emit_json({"report": str(report_json), "html": str(path)})
    else:
        result(f"report page: {path}")
