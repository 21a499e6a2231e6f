"""Options and helpers shared by several verbs.

One option, one spelling, one meaning across the CLI: a verb that writes
output takes `-o/--output`; a verb that loads a Keras model takes the same
loading options (`keras_options`); a verb that talks to a board takes the
same link options (`port_option`, `baud_option`, `timeout_option`).
"""

from __future__ import annotations

import click

DEFAULT_TIMEOUT = 30.0          # seconds to wait for each reply from a board, in every verb
DEFAULT_BAUD = 115200

json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print the result as JSON on stdout (errors too, as {\"error\": ...}).")
board_option = click.option("--board", "-b", "board_id", default=None, metavar="BOARD",
                            help="Board id (see 'tinyedge boards'); default: qemu-cortex-m4.")
force_option = click.option("--force", is_flag=True,
                            help="Overwrite an existing output file, or write into a non-empty folder "
                                 "that tinyedge did not make.")


def _compose(*decorators):
    def apply(f):
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


def output_option(dest: str = "out", *, kind: str = "dir", help: str, required: bool = False):
    """`-o/--output PATH` (also spelled `--out`), stored in parameter `dest`."""
    return click.option("-o", "--output", "--out", dest, required=required, default=None,
                        type=click.Path(file_okay=kind != "dir", dir_okay=kind == "dir", path_type=str),
                        help=help)


def port_option(*, required: bool = False, help: str | None = None):
    return click.option(
        "--port", "-p", required=required, default=None, metavar="URL",
        help=help or ("Serial port: a device path, a pty, or a pyserial URL (socket://host:port, rfc2217://...); "
                      "found by itself when exactly one board is attached."))


baud_option = click.option("--baud", type=click.IntRange(300, 20_000_000), default=DEFAULT_BAUD,
                           show_default=True, help="Baud rate of the serial port (ignored by sockets and ptys).")
timeout_option = click.option("--timeout", type=click.FloatRange(min=0.1), default=DEFAULT_TIMEOUT,
                              show_default=True, help="Seconds to wait for each reply from the board.")


def link_options(*, port_required: bool = False):
    """--port, --baud, --timeout: the options of every verb that talks to a board's protocol."""
    return _compose(port_option(required=port_required), baud_option, timeout_option)


keras_options = _compose(
    click.option("--calib", "-c", type=click.Path(exists=True, dir_okay=False, resolve_path=True), default=None,
                 help="Calibration data for int8 conversion: .npz with x (and optional labels y) or .npy, "
                      "in the model's input layout (ignored for a .tflite)."),
    click.option("--calib-samples", type=click.IntRange(min=1), default=None,
                 help="Use at most this many calibration samples (default 200)."),
    click.option("--trust-code", is_flag=True,
                 help="Allow Lambda layers stored as Python bytecode (this runs code from the model file)."),
)
"""The Keras loading options, for every verb that may convert a Keras model: --calib, --calib-samples,
--trust-code.  Their values go to the library as `convert_options(...)`."""


def convert_options(calib=None, calib_samples=None, trust_code=False) -> dict:
    """The keyword arguments of `tinyedge.conversion.convert` that the Keras options set."""
    opts: dict = {}
    if calib is not None:
        opts["calib"] = calib
    if calib_samples is not None:
        opts["samples"] = calib_samples
    if trust_code:
        opts["trust_code"] = True
    return opts


def existing_path(**kw):
    """A click Path for an input that must exist (a missing one exits 2 with one line)."""
    return click.Path(exists=True, dir_okay=kw.pop("dir_okay", True), file_okay=kw.pop("file_okay", True),
                      resolve_path=True, **kw)


def warn_ignored_calib(model, opts: dict) -> None:
    """A .tflite is not converted: say so when Keras loading options were given with one."""
    from pathlib import Path

    from ..console import warn
    from ..graph import is_tflite_bytes

    if not opts:
        return
    p = Path(model)
    if p.is_file():
        with p.open("rb") as f:
            if is_tflite_bytes(f.read(8)):
                names = ", ".join("--" + {"samples": "calib-samples"}.get(k, k).replace("_", "-") for k in opts)
                warn(f"{p.name} is already a .tflite: {names} ignored (they apply to converting a Keras model)")


def runtime_option(emulated: bool = False):
    """--runtime, its choices and help from the runtime registry (tinyedge/runtimes.py).

    With `emulated`, only the runtimes that have a host-emulated board."""
    from ..runtimes import RUNTIMES

    names = [r.name for r in RUNTIMES.values() if r.host_board or not emulated]
    helps = "; ".join(f"{r.name}: {r.help}" for r in RUNTIMES.values() if r.name in names)
    if emulated:
        return click.option("--runtime", "-r", type=click.Choice(names), default="aot", show_default=True,
                            help=helps + ".")
    return click.option("--runtime", "-r", type=click.Choice(names), default=None,
                        help=helps + ". Default: aot, or the board's first runtime when it has no aot.")


def default_runtime(board) -> str:
    """aot when the board runs it, else the board's first runtime (a MicroPython board's micropython)."""
    return "aot" if board is None or "aot" in board.runtimes else board.runtimes[0]


backend_option = click.option("--backend", type=click.Choice(["auto", "natmod", "viper"]), default="auto",
                              show_default=True,
                              help="Runtime micropython: the engine inside the package (natmod: the aot C "
                                   "as a native module; viper: @micropython.viper code, runs on every port; "
                                   "auto: both, the board picks natmod when it loads it).")
schedule_option = click.option("--schedule", type=click.Choice(["auto", "layer"]), default="auto", show_default=True,
                               help="aot: auto computes the early, high-resolution ops row band by row band "
                                    "(no full intermediate tensors) and writes ADD outputs over dead inputs where "
                                    "that lowers the arena, at some instructions; layer: op by op, the fastest.")
name_option = click.option("--name", default=None, metavar="NAME",
                           help="Runtime micropython: the package's module name (default: the model file's stem).")
mpy_dir_option = click.option("--micropython-dir", "micropython_dir", type=click.Path(file_okay=False), default=None,
                              envvar="MPY_DIR", help="Runtime micropython: a MicroPython source tree to build "
                                                     "mpy-cross and the emulated boards from (default: the pinned "
                                                     "release, fetched once into tinyedge's cache).")


def _top_k(ctx, param, value):
    if value is None:
        return None
    try:
        ks = tuple(sorted({int(v) for v in str(value).split(",") if v.strip()}))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a list of integers like 1,3,5") from None
    if not ks or ks[0] < 1:
        raise click.BadParameter("give positive integers, like 1,3,5")
    return ks


metrics_options = _compose(
    click.option("--task", type=click.Choice(["classify", "anomaly", "regress"]), default=None,
                 help="What the model does, for the report's metrics (default: detected; an output of the "
                      "input's shape is an autoencoder: anomaly, scored by reconstruction error, with ROC AUC "
                      "when labels are given; a vector after SOFTMAX, or with labels, a classifier)."),
    click.option("--top-k", "top_k", default=None, metavar="K[,K...]", callback=_top_k,
                 help="Classifiers: the k of the top-k accuracies (default 1,3,5; k above the class count is "
                      "left out)."),
)
"""--task and --top-k: the options of the verbs that write a report with metrics (deploy, validate)."""
