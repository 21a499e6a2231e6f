"""`tinyedge convert`: a Keras model to a full-int8 `.tflite` (or check an existing `.tflite`)."""

from __future__ import annotations

import click

from ..console import emit_json, err, warn
from ._common import json_option


def _q(t: dict) -> str:
    if t.get("scale") is None:
        return "-"
    return f"scale {t['scale']:.6g}, zp {t['zero_point']}"


def print_report(r: dict) -> None:
    from rich.table import Table

    src = r["source"]
    tfl = r["tflite"]
    t = Table(title="Converted" if src["kind"] != "tflite" else "Checked", title_justify="left",
              show_header=False)
    t.add_column(style="bold")
    t.add_column(overflow="fold")
    t.add_row("source", f"{src['path']} ({src['kind']}, {src['bytes']:,} B)")
    t.add_row("tflite", f"{tfl['path'] or '(not written)'} ({tfl['bytes']:,} B, sha256 {tfl['sha256'][:16]})")
    for k in ("inputs", "outputs"):
        for x in r[k]:
            t.add_row(k[:-1], f"{x['name']}: {'x'.join(map(str, x['shape']))} {x['dtype']} ({_q(x)})")
    t.add_row("ops", ", ".join(f"{n} x{c}" for n, c in r["ops"].items()) + f" ({r['op_count']} in all)")
    t.add_row("parameters", f"{r['param_count']:,}")
    t.add_row("size", f"{r['size']['before']:,} B -> {r['size']['after']:,} B")
    cal = r.get("calibration")
    if cal:
        t.add_row("calibration", f"{cal['source']}, {cal['samples']} samples")
    acc = r.get("accuracy")
    if acc:
        t.add_row("accuracy", f"float {acc['float']:.4f}, int8 {acc['int8']:.4f}, top-1 agreement "
                  f"{acc['top1_agreement']:.4f} on {acc['samples']} labelled samples")
    t.add_row("steps", ", ".join(f"{k} {v:.2f} s" for k, v in r["steps"].items()))
    err.print(t)


@click.command("convert")
@click.argument("model", type=click.Path(path_type=str))
@click.option("-o", "--out", type=click.Path(dir_okay=False), default=None,
              help="Output .tflite (default: ./<model>_int8.tflite).")
@click.option("--calib", type=click.Path(), default=None,
              help="Calibration data: .npz with x (and optional labels y) or .npy, in the model's input layout.")
@click.option("--samples", type=click.IntRange(min=1), default=200, show_default=True,
              help="Use at most this many calibration samples.")
@click.option("--trust-code", is_flag=True,
              help="Allow Lambda layers stored as Python bytecode (this runs code from the model file).")
@json_option
def command(model, out, calib, samples, trust_code, as_json):
    """Convert MODEL (.h5, .keras, SavedModel folder) to a full-int8 .tflite, or check a .tflite.

    The result has int8 input and output and integer kernels only; it is
    checked for float or hybrid ops and loaded in TFLite Micro's interpreter
    before it is written.  With labels in --calib, the float and int8 models'
    accuracy is reported.
    """
    from ..conversion import convert

    res = convert(model, out=out, calib=calib, samples=samples, trust_code=trust_code)
    for w in res.warnings:
        warn(w)
    if as_json:
        emit_json(res.report)
    else:
        print_report(res.report)
