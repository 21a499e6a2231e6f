"""`tinyedge inspect`: ops, MACs, memory plan, TFLM arena, op support per runtime, board fit."""

from __future__ import annotations

import click

from ..console import emit_json, err
from ._common import board_option, json_option


def _shape(t: dict) -> str:
    return "x".join(map(str, t["shape"])) or "scalar"


def print_report(r: dict) -> None:
    from rich.table import Table

    m = r["model"]
    err.print(f"[bold]{m['path'] or 'model'}[/]  {m['bytes']:,} B  sha256 {m['sha256'][:16]}")
    runtimes = list(r["support"])
    t = Table(title="Ops in execution order", title_justify="left")
    stor = "weights" in r
    cols = ("#", "op", "v", "inputs", "output", "MACs", "weight B", *(("aot storage", "stored B") if stor else ()),
            *runtimes)
    for col in cols:
        t.add_column(col, overflow="fold", justify="right" if col in ("#", "MACs", "weight B", "stored B") else "left")
    for op in r["ops"]:
        ins = ", ".join(_shape(x) + ("c" if x["const"] else "") for x in op["inputs"])
        outs = ", ".join(_shape(x) for x in op["outputs"])
        marks = []
        for rt in runtimes:
            s = r["support"][rt]
            if s["status"] == "unknown":
                marks.append("?")
            else:
                marks.append("yes" if s["per_op"][op["index"]] else "[red]no[/]")
        extra = ((op.get("storage", ""), f"{op['stored_bytes']:,}" if "stored_bytes" in op else "") if stor else ())
        t.add_row(str(op["index"]), op["opcode"], str(op["version"]), ins, outs, f"{op['macs']:,}",
                  f"{op['weight_bytes']:,}", *extra, *marks)
    err.print(t)
    tot, mem = r["totals"], r["memory"]
    err.print(f"totals: {tot['ops']} ops, {tot['macs']:,} MACs, {tot['param_bytes']:,} parameter bytes, "
              f"{tot['model_bytes']:,} model bytes")
    if stor:
        w = r["weights"]
        err.print(f"aot weights (--weights {w['policy']}): {w['stored_bytes']:,} B stored for {w['dense_bytes']:,} B "
                  f"dense int8 ({len([e for e in w['tensors'] if e['storage'] != 'dense'])} of "
                  f"{len(w['tensors'])} tensors compact)")
    arena = f"{mem['arena_bytes']:,} B" if mem.get("arena_bytes") is not None else "n/a"
    tflm = f"{mem['tflm_arena_bytes']:,} B" if mem.get("tflm_arena_bytes") is not None else "n/a"
    err.print(f"memory: peak live activations {mem['peak_live_bytes']:,} B at op #{mem['peak_op']} "
              f"({mem.get('peak_op_name')}); planned arena {arena}; TFLite Micro interpreter arena {tflm} "
              "(host, 64-bit)")
    for rt, s in r["support"].items():
        if s["status"] == "unsupported":
            for u in s["unsupported"]:
                err.print(f"  {rt}: op #{u['op_index']} {u['opcode']} v{u['version']}: {u['reason']}")
        else:
            err.print(f"runtime {rt}: {s['status']}" + (f" ({s['reason']})" if s.get("reason") else ""))
    fit = r.get("fit")
    if fit:
        verdict = "[green]fits[/]" if fit["fits"] else "[red]does not fit[/]"
        err.print(f"board {fit['board']}: {verdict}; flash {fit['flash_needed']:,} of {fit['flash_bytes']:,} B "
                  f"(margin {fit['flash_margin']:,}), RAM {fit['ram_needed']:,} of {fit['ram_bytes']:,} B "
                  f"(margin {fit['ram_margin']:,}, {fit['ram_basis']}); {fit['note']}")


@click.command("inspect")
@click.argument("model", type=click.Path(path_type=str))
@board_option
@click.option("--weights", "-w", type=click.Choice(["auto", "dense", "palette", "sparse", "int4"]), default="auto",
              show_default=True, help="aot weight storage policy whose per-tensor choice is shown.")
@json_option
def command(model, board_id, weights, as_json):
    """Show MODEL's ops, MACs, memory plan and op support (a Keras model is converted first)."""
    from ..analyze import inspect_model

    if board_id is not None:
        from ..boards import get_board

        get_board(board_id)  # an unknown board fails before any work
    r = inspect_model(model, board=board_id, weights=weights)
    if as_json:
        emit_json(r)
    else:
        print_report(r)
