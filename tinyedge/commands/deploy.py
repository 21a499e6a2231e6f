"""`tinyedge deploy`: model file to validated board in one command."""

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
    metrics_options,
    mpy_dir_option,
    name_option,
    output_option,
    runtime_option,
    schedule_option,
)
from ._report import exit_if_interrupted, print_report, progress_bar
from .compress import compression_options, options_from


@click.command("deploy")
@click.argument("model", type=existing_path())
@board_option
@runtime_option()
@link_options()
@click.option("--data", "-d", type=existing_path(dir_okay=False), default=None,
              help="Test data: .npz with x and optional labels y, or .npy of x. Default: generated inputs.")
@keras_options
@click.option("--samples", "-n", type=click.IntRange(min=1), default=None, help="Validate on at most N samples.")
@output_option("out", help="Artifacts folder (default: build/<model>-<board>-<runtime>/).")
@click.option("--weights", "-w", type=click.Choice(["auto", "dense", "palette", "sparse", "int4"]), default="auto",
              show_default=True,
              help="aot: storage of the conv/FC weights: palette (16/4 values per channel), sparse (bit mask, zeros "
                   "skipped), int4, dense; auto picks per tensor within 5% of dense's instructions.")
@schedule_option
@force_option
@click.option("--protocol", type=click.Choice(["tinyedge", "mlperf"]), default="tinyedge", show_default=True,
              help="mlperf: build the MLPerf Tiny protocol firmware and run the runner's accuracy mode on it.")
@backend_option
@name_option
@mpy_dir_option
@click.option("--train", type=existing_path(dir_okay=False), default=None,
              help="Training data (.npz x, y) for the compression options below; compress first, then deploy.")
@click.option("--val", type=existing_path(dir_okay=False), default=None,
              help="Validation data for the compression report (default: --data).")
@compression_options
@click.option("--per-layer", is_flag=True,
              help="Build with the per-op profiler: each op's count, and the first op whose output differs "
                   "(as 'tinyedge profile'), in the report under per_layer.")
@metrics_options
@json_option
def command(model, board_id, runtime, port, baud, timeout, data, calib, calib_samples, trust_code, samples, out,
            weights, schedule, force, protocol, backend, name, micropython_dir, as_json, train, val, task, top_k,
            per_layer=False, **kw):
    """Convert MODEL to full-int8, build firmware, flash it, and validate it on the board.

    MODEL is a Keras .h5 / .keras file, a SavedModel folder, or a .tflite.
    On an emulated board (the default, qemu-cortex-m4, or host) everything
    runs here.  On a real board without --port (and none attached) it
    builds and stops, saying how to flash.  The report (also written to
    report.json in the artifacts folder) compares the board's outputs with the
    host reference bit for bit, and gives accuracy, latency and memory.
    Without --calib, the --data inputs calibrate the conversion.
    """
    copts = options_from(kw)
    if copts is None and train is not None:
        raise click.UsageError("--train is for compression; add a compression option (e.g. --prune-channels 0.5)")
    if copts is not None and protocol == "mlperf":
        raise click.UsageError("compression options work with --protocol tinyedge; run 'tinyedge compress' first "
                               "and deploy its result with --protocol mlperf")
    if per_layer and protocol == "mlperf":
        raise click.UsageError("--per-layer works with --protocol tinyedge")
    if protocol == "mlperf":
        from ..mlperf import deploy as deploy_mlperf

        runtime = runtime or "aot"
        from .mlperf import print_mlperf

        with progress_bar("accuracy", enabled=not as_json) as progress:
            report = deploy_mlperf(model, board=board_id, runtime=runtime, port=port, data=data, calib=calib,
                                   samples=samples, out=out, force=force, timeout=timeout, progress=progress)
        if as_json:
            emit_json(report)
        elif "mlperf" in report:
            print_mlperf(report["mlperf"])
        else:
            for n in report.get("notes", []):
                warn(n)
        return
    from ..console import Steps
    from ..pipeline import deploy

    opts = convert_options(None, calib_samples, trust_code)
    with Steps(enabled=not as_json) as steps, \
            progress_bar("training", enabled=not as_json and copts is not None, unit="epochs",
                         before=steps.pause) as train_progress, \
            progress_bar("validate", enabled=not as_json, before=steps.pause) as progress:
        def on_step(name: str) -> None:
            steps.start(name)

        report = deploy(model, board=board_id, runtime=runtime, port=port, data=data, calib=calib,
                        samples=samples, out=out, force=force, timeout=timeout, progress=progress,
                        on_step=on_step, convert_options=opts, baud=baud,
                        on_status=info, compress=copts, train=train, val=val, train_progress=train_progress,
                        backend=backend, name=name, micropython_dir=micropython_dir, weights=weights,
                        schedule=schedule, task=task, top_k=top_k, per_layer=per_layer)
    if as_json:
        emit_json(report)
        exit_if_interrupted(report)
        return
    if report.get("compression"):
        from .compress import print_report as print_compression

        print_compression(report["compression"])
    print_report(report)
    if report.get("per_layer"):
        from .profile import print_profile

        print_profile(report)
    ag = report.get("agreement") or {}
    if ag.get("bit_exact_rate") not in (None, 1.0):
        warn("the board's outputs differ from the host reference; see report.json")
    path = report.get("artifacts", {}).get("report")
    if path:
        result(f"report: {path}")
        from ..report_html import html_path_for

        if html_path_for(path).is_file():
            result(f"page:   {html_path_for(path)}")
    exit_if_interrupted(report)
