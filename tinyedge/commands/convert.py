"""`tinyedge convert`: a Keras model to a full-int8 `.tflite` (or check an existing `.tflite`)."""

from __future__ import annotations

import click

from ..console import emit_json, out, warn
from ._common import (
    convert_options,
    force_option,
    json_option,
    keras_options,
    output_option,
    warn_ignored_calib,
)


def _q(t: dict) -> str:
    if t.get("scale") is None:
        return "-"
    return f"scale {t['scale']:.6g}, zp {t['zero_point']}"


def print_report(r: dict) -> None:
    """The conversion summary (stdout), laid out to the terminal's width; paths shortened from the left."""
    from ..console import short_path, table, width

    src = r["source"]
    tfl = r["tflite"]
    label = 12
    room = max(20, width() - label - 1)
    t = table(title="Converted" if src["kind"] != "tflite" else "Checked", show_header=False)
    t.add_column(style="bold", min_width=label)
    t.add_column()
    t.add_row("source", short_path(src["path"], room))
    t.add_row("", f"{src['kind']}, {src['bytes']:,} B")
    t.add_row("tflite", short_path(tfl["path"], room) if tfl["path"] else "(not written)")
    t.add_row("", f"{tfl['bytes']:,} B, sha256 {tfl['sha256'][:16]}")
    for k in ("inputs", "outputs"):
        for x in r[k]:
            t.add_row(k[:-1], f"{x['name']}: {'x'.join(map(str, x['shape']))} {x['dtype']} ({_q(x)})")
    t.add_row("ops", ", ".join(f"{n} x{c}" for n, c in r["ops"].items()) + f" ({r['op_count']} in all)")
    t.add_row("parameters", f"{r['param_count']:,}")
    t.add_row("size", f"{r['size']['before']:,} B -> {r['size']['after']:,} B")
    cal = r.get("calibration")
    if cal:
        t.add_row("calibration", f"{short_path(cal['source'], room)}, {cal['samples']} samples")
    acc = r.get("accuracy")
    if acc:
        t.add_row("accuracy", f"float {acc['float']:.4f}, int8 {acc['int8']:.4f}, top-1 agreement "
                  f"{acc['top1_agreement']:.4f} on {acc['samples']} labelled samples")
    t.add_row("steps", ", ".join(f"{k} {v:.2f} s" for k, v in r["steps"].items()))
    out.print(t)


@click.command("convert")
@click.argument("model", type=click.Path(path_type=str))
@output_option("out", kind="file", help="Output .tflite (default: ./<model>_int8.tflite); an existing file "
              "is refused without --force.")
@keras_options
@force_option
@json_option
def command(model, out, calib, calib_samples, trust_code, force, as_json):
    """Convert MODEL (.h5, .keras, SavedModel folder) to a full-int8 .tflite, or check a .tflite.

    The result has int8 input and output and integer kernels only; it is
    checked for float or hybrid ops and loaded in TFLite Micro's interpreter
    before it is written.  With labels in --calib, the float and int8 models'
    accuracy is reported.
    """
    from pathlib import Path

    from ..conversion import convert, default_output, sniff
    from ..fsutil import check_output_file

    src = Path(model).expanduser().resolve()
    kind = sniff(src)
    opts = convert_options(calib, calib_samples, trust_code)
    if kind == "tflite":
        warn_ignored_calib(src, opts)
        opts = {}
    if out is not None or kind != "tflite":
        out = str(check_output_file(out if out is not None else default_output(src), force=force, source=src))
    from ..console import Steps

    with Steps(enabled=not as_json, off_terminal=False) as steps:
        steps.start("convert" if kind != "tflite" else "check", src.name)
        res = convert(model, out=out, **opts)
    for w in res.warnings:
        warn(w)
    if as_json:
        emit_json(res.report)
    else:
        print_report(res.report)
