"""`tinyedge inspect`: ops, MACs, memory plan, TFLM arena, op support per runtime, board fit."""

from __future__ import annotations

import click

from ..console import emit_json, out
from ..runtimes import RUNTIMES
from ._common import convert_options, json_option, keras_options, warn_ignored_calib


def _shape(t: dict) -> str:
    return "x".join(map(str, t["shape"])) or "scalar"


def _runs_on(r: dict, index: int) -> str:
    marks = []
    for rt, s in r["support"].items():
        if s["status"] == "unknown":
            marks.append(f"{rt}?")
        elif s["per_op"][index]:
            marks.append(rt)
        else:
            marks.append(f"[red]not-{rt}[/]")
    return " ".join(marks)


def print_report(r: dict) -> None:
    """The inspect report for a terminal (stdout): every line fits the width, no number, shape or
    op name is cut; the full detail (constant shapes, every tensor) is in --json."""
    from ..console import result, short_path, table, width

    m = r["model"]
    result(f"[bold]{short_path(m['path'] or 'model', width())}[/]")
    result(f"{m['bytes']:,} B, sha256 {m['sha256'][:16]}")
    t = table(title="Ops in execution order")
    stor = "weights" in r
    runs = [_runs_on(r, op["index"]) for op in r["ops"]]
    # One verdict for every op goes on a line of its own, so the table keeps its width for the numbers.
    same = len(set(runs)) <= 1
    cols = ("#", "op", "input", "output", "MACs", "weight B", *(("aot storage", "stored B") if stor else ()),
            *(() if same else ("runs on",)))
    for col in cols:
        t.add_column(col, justify="right" if col in ("#", "MACs", "weight B", "stored B") else "left")
    for op in r["ops"]:
        ins = " ".join(_shape(x) for x in op["inputs"] if not x["const"]) or "-"
        outs = " ".join(_shape(x) for x in op["outputs"])
        name = op["opcode"] + (f" v{op['version']}" if op["version"] != 1 else "")
        extra = ((op.get("storage", ""), f"{op['stored_bytes']:,}" if "stored_bytes" in op else "") if stor else ())
        t.add_row(str(op["index"]), name, ins, outs, f"{op['macs']:,}", f"{op['weight_bytes']:,}", *extra,
                  *(() if same else (runs[op["index"]],)))
    out.print(t)
    if same and runs:
        result(f"every op runs on: {runs[0]}")
    tot, mem = r["totals"], r["memory"]
    result(f"totals: {tot['ops']} ops, {tot['macs']:,} MACs, {tot['param_bytes']:,} parameter bytes, "
        f"{tot['model_bytes']:,} model bytes")
    if stor:
        w = r["weights"]
        result(f"aot weights (--weights {w['policy']}): {w['stored_bytes']:,} B stored for {w['dense_bytes']:,} B "
               f"dense int8 ({len([e for e in w['tensors'] if e['storage'] != 'dense'])} of "
               f"{len(w['tensors'])} tensors compact)")
    arena = f"{mem['arena_bytes']:,} B" if mem.get("arena_bytes") is not None else "n/a"
    tflm = f"{mem['tflm_arena_bytes']:,} B" if mem.get("tflm_arena_bytes") is not None else "n/a"
    result(f"memory: peak live activations {mem['peak_live_bytes']:,} B at op #{mem['peak_op']} "
        f"({mem.get('peak_op_name')}); planned arena {arena}; TFLite Micro interpreter arena {tflm} "
        "(host, 64-bit)")
    if mem.get("stages") or mem.get("inplace"):
        lay = mem["layer_arena_bytes"]
        parts = [f"ops {s['ops'][0]}..{s['ops'][-1]}" if len(s["ops"]) > 1 else f"op {s['ops'][0]} in place"
                 for s in mem.get("stages", [])]
        parts += [f"op {i} in place" for i in mem.get("inplace", [])]
        result(f"  aot arena {mem['arena_bytes']:,} B vs {lay:,} B layer by layer "
               f"({mem['arena_bytes'] / lay:.2f}x), schedule auto: {', '.join(parts)} (--schedule layer: op by op)")
    for rt, s in r["support"].items():
        if s["status"] == "unsupported":
            for u in s["unsupported"]:
                result(f"  {rt}: op #{u['op_index']} {u['opcode']} v{u['version']}: {u['reason']}")
        else:
            result(f"runtime {rt}: {s['status']}" + (f" ({s['reason']})" if s.get("reason") else ""))
        for n in s.get("notes", []):
            result(f"  {rt}: op #{n['op_index']} {n['opcode']}: {n['note']}")
    fit = r.get("fit")
    if fit:
        verdict = "[green]fits[/]" if fit["fits"] else "[red]does not fit[/]"
        rt = f" with runtime {fit['runtime']}" if fit.get("runtime") else ""
        result(f"board {fit['board']}{rt}: {verdict}")
        result(f"  flash {fit['flash_needed']:,} of {fit['flash_bytes']:,} B (margin {fit['flash_margin']:,}; "
            f"{fit.get('flash_basis', 'the .tflite')})")
        result(f"  RAM {fit['ram_needed']:,} of {fit['ram_bytes']:,} B (margin {fit['ram_margin']:,}; "
            f"{fit['ram_basis']})")
        result(f"  {fit['note']}")


@click.command("inspect")
@click.argument("model", type=click.Path(path_type=str))
@click.option("--board", "-b", "board_id", default=None, metavar="BOARD",
              help="Also say whether the model fits this board (see 'tinyedge boards').")
@click.option("--runtime", "-r", type=click.Choice(sorted(RUNTIMES)), default="aot", show_default=True,
              help="The runtime whose flash and arena the --board fit is judged with.")
@click.option("--weights", "-w", type=click.Choice(["auto", "dense", "palette", "sparse", "int4"]), default="auto",
              show_default=True, help="aot weight storage policy whose per-tensor choice is shown.")
@keras_options
@json_option
def command(model, board_id, runtime, weights, calib, calib_samples, trust_code, as_json):
    """Show MODEL's ops, MACs, memory plan and op support (a Keras model is converted first)."""
    from ..analyze import inspect_model

    if board_id is not None:
        from ..boards import get_board

        get_board(board_id)  # an unknown board fails before any work
    opts = convert_options(calib, calib_samples, trust_code)
    warn_ignored_calib(model, opts)
    r = inspect_model(model, board=board_id, convert_options=opts, runtime=runtime, weights=weights)
    if as_json:
        emit_json(r)
    else:
        print_report(r)
