"""`tinyedge profile`: every op's count on the board, and the first op whose output differs from the host."""

from __future__ import annotations

import click

from ..console import emit_json, info, result, warn
from ._common import (
    backend_option,
    board_option,
    convert_options,
    existing_path,
    force_option,
    json_option,
    keras_options,
    link_options,
    mpy_dir_option,
    name_option,
    output_option,
    runtime_option,
)
from ._report import progress_bar


def _num(v) -> str:
    return "-" if v is None else f"{v:,}"


def _short(name: str, room: int = 16) -> str:
    """A tensor or layer name cut to `room` characters (its first ';' part, the end kept)."""
    name = (name or "").split(";")[0]
    return name if len(name) <= room else "…" + name[-(room - 1):]


def print_per_layer(rows: list[dict], unit: str) -> None:
    """The per-layer table for a terminal (stdout); the whole names and shapes are in --json."""
    from ..console import out, table

    t = table(title=f"Per layer ({unit}; name: the Keras layer, else the output tensor)")
    for name, right in (("#", True), ("op", False), ("name", False), ("MACs", True), (unit, True),
                        ("share", True), ("/MAC", True), ("host", False)):
        t.add_column(name, justify="right" if right else "left")
    for r in rows:
        if r["bit_exact"] is None:
            verdict = "?"
        elif r["bit_exact"]:
            verdict = "exact"
        elif r["max_diff_steps"] is not None:
            verdict = f"[red]{r['max_diff_steps']} steps[/]"
        else:
            verdict = "[red]differs[/]"
        t.add_row(str(r["index"]), r["op"], _short(r["layer"] or r["output"]), _num(r["macs"]), _num(r["count"]),
                  f"{r['share'] * 100:.1f}%", "-" if r["per_mac"] is None else f"{r['per_mac']:.2f}", verdict)
    out.print(t)


@click.command("profile")
@click.argument("model", type=existing_path())
@board_option
@runtime_option()
@link_options()
@click.option("--runs", "-n", type=click.IntRange(min=1, max=1000), default=5, show_default=True,
              help="Runs of the input; every count is the median over them.")
@click.option("--data", "-d", type=existing_path(dir_okay=False), default=None,
              help="Inputs (.npz with x, or .npy); the first one is profiled. Default: a generated input.")
@keras_options
@click.option("--weights", "-w", type=click.Choice(["auto", "dense", "palette", "sparse", "int4"]), default="auto",
              show_default=True, help="aot: storage of the conv/FC weights (as for deploy).")
@click.option("--fault-op", type=click.IntRange(min=0), default=None, hidden=True,
              help="Test builds only: op N's output is off by one int8 step (a deliberately broken kernel).")
@backend_option
@name_option
@mpy_dir_option
@output_option("out", help="Artifacts folder (default: build/<model>-<board>-<runtime>-profile/).")
@force_option
@json_option
def command(model, board_id, runtime, port, baud, timeout, runs, data, calib, calib_samples, trust_code, weights,
            fault_op, backend, name, micropython_dir, out, force, as_json):
    """Profile MODEL on the board, op by op.

    Builds the firmware with the per-op profiler, runs one input --runs
    times, and prints each op's count in the board's unit (cycles;
    instructions under QEMU; ns on the host board; on a MicroPython board
    its time.ticks_us / ticks_cpu, e.g. us on the unix port, instructions
    on the QEMU port) with its share of the whole and its count per MAC;
    the profiler's own cost is taken out.  On a MicroPython board a
    profile package is installed (--backend natmod or viper).
    Every op's output is compared with the tflite-micro interpreter (a
    CRC of each); the first op that differs is fetched whole and its
    largest difference, cosine similarity and RMSE are reported.
    """
    from ..console import Steps
    from ..profile import profile

    opts = convert_options(calib, calib_samples, trust_code)
    with Steps(enabled=not as_json) as steps, \
            progress_bar("runs", enabled=not as_json, before=steps.pause) as progress:
        rep = profile(model, board=board_id, runtime=runtime, port=port, runs=runs, out=out, force=force,
                      timeout=timeout, data=data, fault_op=fault_op, weights=weights, progress=progress,
                      on_status=info, baud=baud, convert_options=opts, on_step=steps.start, backend=backend,
                      name=name, micropython_dir=micropython_dir)
    if as_json:
        emit_json(rep)
        return
    print_profile(rep)
    result(f"report: {rep['artifacts']['report']}")


def print_profile(rep: dict) -> None:
    """The per-layer table and the totals of a report with `per_layer` and `profile` (stdout)."""
    p = rep["profile"]
    print_per_layer(rep["per_layer"], p["unit"] or "count")
    result(f"whole inference: {p['whole']:,.0f} {p['unit']} (median of {p['runs']}, hooks off); "
           f"sum of the ops: {p['sum_of_ops']:,} ({p['coverage'] * 100:.2f}%); "
           f"profiler overhead taken out: {p['overhead_per_op']:.1f} per op")
    d = p.get("first_divergent")
    if d:
        warn(f"op {d['index']} is the first whose output differs from the host: {d['max_diff_steps']} int8 steps "
             f"at most, {d['elements_differing']} values, cosine {d['cosine']:.6f}, RMSE {d['rmse']:.6g}")
    else:
        result(f"every op's output is bit-exact with the host ({p['bit_exact_ops']} of {p['ops']})")
    if "steps" not in rep:   # deploy prints its notes itself
        for n in rep.get("notes") or []:
            result(f"[yellow]note:[/] {n}")
