"""`tinyedge compress`: channel pruning, low-rank, sparsity, clustering, QAT, distillation, L1."""

from __future__ import annotations

import click

from ..console import emit_json, out, result, short_path, table, warn
from ._common import existing_path, force_option, json_option, output_option

# The compression options, shared with `deploy`: (flags, Options field, click keywords).
_OPTIONS = [
    (("--prune-channels",), "prune_channels", dict(type=float, metavar="RATIO",
     help="Remove this fraction of the channels (filters) of each conv/dense layer, dependency-aware.")),
    (("--channel-criterion",), "channel_criterion", dict(type=click.Choice(["l1", "l2", "bn"]), default="l1",
     show_default=True, help="Rank channels by the L1/L2 norm of their weights, or by BatchNorm scale.")),
    (("--rank",), "rank", dict(type=float, metavar="RATIO",
     help="Low-rank factorise Dense/Conv2D layers, keeping this fraction of the full rank.")),
    (("--rank-energy",), "rank_energy", dict(type=float, metavar="E",
     help="Low-rank: the smallest rank that keeps this fraction of the singular values' energy.")),
    (("--prune",), "prune", dict(type=float, metavar="SPARSITY",
     help="Magnitude pruning (tfmot) to this fraction of zero weights.")),
    (("--sparsity-pattern",), "sparsity_pattern", dict(metavar="N:M",
     help="Structured N:M sparsity instead, e.g. 2:4 (tfmot).")),
    (("--cluster",), "cluster", dict(type=int, metavar="K",
     help="Weight clustering (tfmot): K shared values per output channel.")),
    (("--qat",), "qat", dict(is_flag=True, help="Quantization-aware training (sparsity/cluster preserving).")),
    (("--distill",), "distill", dict(is_flag=True,
     help="Fine-tune by distillation from the original model (label-free when --train has no y).")),
    (("--temperature",), "temperature", dict(type=float, default=4.0, show_default=True,
     help="Distillation temperature.")),
    (("--distill-weight",), "distill_weight", dict(type=float, default=0.5, show_default=True,
     help="With labels: weight of the labels' loss (the teacher's gets 1 minus it).")),
    (("--l1",), "l1", dict(type=float, metavar="LAMBDA",
     help="L1 regularisation during training (before channel pruning: on weights, or BN scales with "
          "--channel-criterion bn).")),
    (("--layers",), "layers", dict(metavar="NAMES",
     help="Comma-separated layer names: apply channel pruning / low-rank to these only.")),
    (("--epochs",), "epochs", dict(type=int, default=20, show_default=True,
     help="Training epochs per phase (fine-tune, prune, cluster, QAT).")),
    (("--batch-size",), "batch_size", dict(type=int, default=32, show_default=True, help="Training batch size.")),
    (("--lr",), "learning_rate", dict(type=float, default=1e-3, show_default=True, help="Adam learning rate.")),
    (("--seed",), "seed", dict(type=int, default=0, show_default=True, help="Random seed.")),
]


def compression_options(f):
    """Add the compression options to a click command (its function gets them as keywords)."""
    for flags, field, kw in reversed(_OPTIONS):
        f = click.option(*flags, field, **kw)(f)
    return f


def options_from(kwargs: dict):
    """Pop the compression options out of a command's keywords; an Options, or None if none was given."""
    from ..compress import Options

    vals = {field: kwargs.pop(field) for _, field, _ in _OPTIONS}
    if vals["layers"]:
        vals["layers"] = [s.strip() for s in vals["layers"].split(",") if s.strip()]
    opts = Options(**vals)
    return opts if opts.any() else None


def print_report(r: dict) -> None:
    """The result on stdout (tables that fit the width without cutting a token); notes on stderr."""
    from ..compress.report import render_rows

    result(f"Compressed {short_path(r['model'])} -> {short_path(r['out'])}")
    t = table()
    for c in ("", "before", "after", "change"):
        t.add_column(c, justify="left" if not c else "right")
    for row in render_rows(r):
        t.add_row(*row)
    q = r["quality"]
    for k, label in (("float", "float"), ("int8", "int8")):
        b, a = q[f"{k}_before"], q[f"{k}_after"]
        if q["labelled"]:
            t.add_row(f"{label} accuracy", f"{b['accuracy']:.2%}", f"{a['accuracy']:.2%}",
                      f"{(a['accuracy'] - b['accuracy']) * 100:+.1f} pt")
        t.add_row(f"{label} top-1 agreement with original", f"{b['agreement_with_original']:.2%}",
                  f"{a['agreement_with_original']:.2%}", "")
    out.print(t)
    lt = table(title="Layers of the int8 model after")
    for c in ("layer", "op", "params", "MACs", "weight B", "zeros", "distinct/ch"):
        lt.add_column(c, justify="left" if c in ("layer", "op") else "right")
    for row in r["layers"]["after"]:
        lt.add_row(row["layer"], row["op"], f"{row['params']:,}", f"{row['macs']:,}", f"{row['weight_bytes']:,}",
                   f"{row['sparsity']:.0%}", str(row["distinct_per_channel_max"]))
    out.print(lt)
    m = r["methods"]
    result("order: " + " -> ".join(m["order"]) + f"  (samples {q['samples']}"
           f"{', labelled' if q['labelled'] else ', no labels: agreement only'})")
    for lr in (m.get("low_rank") or {}).get("refused", []):
        warn(f"low-rank refused for '{lr['layer']}': rank {lr['rank']} needs {lr['params_after']:,} weights vs "
             f"{lr['params_before']:,} (break-even rank {lr['break_even_rank']})")
    for n in r.get("notes", []):
        warn(n)
    result(f"wrote {r['out']} and {r['tflite']}")


@click.command("compress")
@click.argument("model", type=existing_path())
@click.option("--train", "-t", "train", type=existing_path(dir_okay=False), required=True,
              help="Training data: .npz with x (the model's input layout) and labels y (optional with --distill).")
@click.option("--val", type=existing_path(dir_okay=False), default=None,
              help="Validation data (.npz with x, y) for the accuracy before and after.")
@output_option("out", kind="file", required=True,
               help="The compressed Keras model (.h5 or .keras); its int8 .tflite goes beside it "
                    "(<name>_int8.tflite).  Existing files are refused without --force.")
@click.option("--trust-code", is_flag=True,
              help="Allow Lambda layers stored as Python bytecode (this runs code from the model file).")
@force_option
@compression_options
@json_option
def command(model, train, val, out, trust_code, force, as_json, **kw):
    """Compress MODEL so the board gains flash, RAM and cycles, and report what it cost.

    Methods run in a fixed order: L1 -> channel pruning -> low-rank ->
    fine-tuning (with --distill: from the original model) -> magnitude/N:M
    pruning -> clustering -> QAT -> full-int8.  The report compares params,
    MACs, weight bytes, zeros, shared values, the aot engine's flash and arena,
    and accuracy before and after.  Ctrl-C stops with nothing written.
    """
    from ..compress import compress
    from ..console import Steps
    from ._report import progress_bar

    opts = options_from(kw)
    if opts is None:
        raise click.UsageError("no compression method given; choose at least one of --prune-channels, --rank, "
                               "--rank-energy, --prune, --sparsity-pattern, --cluster, --qat, --distill, --l1")

    from ..compress.core import check_output

    opts.check()
    check_output(out, force)                # bad input: one error line, before any step starts
    with Steps(enabled=not as_json) as steps, \
            progress_bar("training", enabled=not as_json, before=steps.pause, unit="epochs") as progress:
        steps.start("load and check")
        report = compress(model, train, val=val, out=out, options=opts, progress=progress, on_step=steps.start,
                          force=force, trust_code=trust_code)
    if as_json:
        emit_json(report)
    else:
        print_report(report)
