"""Native calls (TensorFlow's converter and calibrator, the tflite-micro interpreter) in a worker process.

Those libraries abort or segfault on some ordinary models.  `call(step,
"module:function", *args)` runs the function in a fresh Python process
(`python -m tinyedge.isolate`), handing the arguments over in a pickle file
and reading the result back from another, so a crash there cannot take
tinyedge down: it becomes a `NativeCrashError` (a ModelError: one `error:`
line, exit 2) naming the step, the layer when the crash report names one,
and what to try.  A TinyedgeError raised in the worker is raised again here
as is.  The worker's stderr (TensorFlow's and the interpreter's own text,
and a crash report) is kept in a file: it goes to the debug log, so
`--verbose` shows it.

For tests, `TINYEDGE_WORKER_FAULT=<step>` makes the worker of that step kill
itself with SIGSEGV before it starts (fault injection: the real worker, a
real signal).
"""

from __future__ import annotations

import importlib
import logging
import os
import pickle
import re
import signal
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

from .errors import ModelError, TinyedgeError

log = logging.getLogger(__name__)

FAULT_ENV = "TINYEDGE_WORKER_FAULT"
# The worker's stderr file; capture_fd2 (tinyedge.analyze) appends there so that a crash
# report written while it captures still reaches the log.
STDERR_ENV = "TINYEDGE_WORKER_STDERR"
# Steps the worker reached, one a line (`mark`): a crash is blamed on the last one.
STEPS_ENV = "TINYEDGE_WORKER_STEPS"

_WHAT = {
    "load": "loading the model (TensorFlow)",
    "convert": "TensorFlow's converter (or its int8 calibrator)",
    "evaluate": "the tflite-micro interpreter",
    "tflm_check": "the tflite-micro interpreter",
    "arena": "the tflite-micro interpreter",
}
_TRY = {
    "load": "check the model file; with --verbose the crash report is shown",
    "convert": "replace that layer (recurrent layers: unroll them, or use tf_keras), or convert a smaller "
               "model; with --verbose the crash report is shown",
    "evaluate": "TFLite Micro cannot run the converted model; replace the layer, or use runtime aot",
    "tflm_check": "TFLite Micro cannot run that op as converted; replace the layer, or use runtime aot",
    "arena": "TFLite Micro cannot allocate this model; replace the layer, or use runtime aot",
}


class NativeCrashError(ModelError):
    """Native code (TensorFlow, the tflite-micro interpreter) crashed in a worker process."""

    def __init__(self, message: str, *, step: str, signal_name: str | None, layer: str | None = None,
                 hint: str | None = None, report: str = ""):
        super().__init__(message, layer=layer, hint=hint)
        self.step = step
        self.signal_name = signal_name
        self.report = report


def _signal_name(code: int) -> str | None:
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    if code in (134, 139):  # a shell's 128+SIGABRT / 128+SIGSEGV
        return signal.Signals(code - 128).name
    return None


def _layer_in(report: str, layers) -> str | None:
    for layer in sorted(layers or (), key=len, reverse=True):
        if re.search(rf"(^|[/\"'@ (]){re.escape(layer)}(/|[\"' ):;]|$)", report):
            return layer
    return None


def mark(step: str, suspects=()) -> None:
    """In a worker: note that `step` starts (a crash from here on is reported as that step's), and
    the (layer, why) pairs a crash in it most likely comes from (named when the report names none)."""
    path = os.environ.get(STEPS_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(step + "\n")
            f.writelines(f"?{layer}\t{why}\n" for layer, why in suspects)
    if os.environ.get(FAULT_ENV) == step:
        os.kill(os.getpid(), signal.SIGSEGV)


def _read_steps(path: Path) -> tuple[list[str], dict[str, list[tuple[str, str]]]]:
    """(steps reached, step -> suspected (layer, why)) from a worker's steps file."""
    reached: list[str] = []
    suspects: dict[str, list[tuple[str, str]]] = {}
    if path.is_file():
        for line in path.read_text("utf-8").splitlines():
            if line.startswith("?") and reached:
                layer, _, why = line[1:].partition("\t")
                suspects.setdefault(reached[-1], []).append((layer, why))
            elif line.strip():
                reached.append(line.strip())
    return reached, suspects


def call(step: str, target: str, *args, layers=(), timeout: float | None = None, **kwargs):
    """Run `target` ("module:function" inside tinyedge) with `args` in a worker process; return its result."""
    with tempfile.TemporaryDirectory(prefix=f"tinyedge-{step}-") as tmp:
        req, res, err = Path(tmp) / "request.pkl", Path(tmp) / "result.pkl", Path(tmp) / "stderr.txt"
        req.write_bytes(pickle.dumps((step, target, args, kwargs)))
        steps = Path(tmp) / "steps.txt"
        env = dict(os.environ, **{STDERR_ENV: str(err), STEPS_ENV: str(steps)})
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        log.debug("%s: running %s in a worker process", step, target)
        with open(err, "ab") as errf:
            try:
                p = subprocess.run([sys.executable, "-m", "tinyedge.isolate", str(req), str(res)],
                                   stdin=subprocess.DEVNULL, stdout=errf, stderr=errf, env=env, timeout=timeout)
                code = p.returncode
            except subprocess.TimeoutExpired:
                raise ModelError(f"{step}: {_WHAT.get(step, 'the worker')} did not finish in {timeout:.0f} s",
                                 hint="try a smaller model") from None
        report = err.read_text("utf-8", "replace") if err.is_file() else ""
        if report.strip():
            log.debug("%s worker output:\n%s", step, report.strip())
        if code == 0 and res.is_file():
            status, value = pickle.loads(res.read_bytes())
            if status == "ok":
                return value
            if status == "tinyedge":
                raise _rebuild(value)
            raise RuntimeError(f"{step} worker failed:\n{value}")
        reached, suspects = _read_steps(steps)
        step = reached[-1] if reached else step
        sig = _signal_name(code)
        layer = _layer_in(report, layers)
        what = _WHAT.get(step, "native code")
        how = f"crashed ({sig})" if sig else f"exited with status {code} and no result"
        where = f" at layer '{layer}'" if layer else ""
        if layer is None and suspects.get(step):
            layer, why = suspects[step][0]
            where = f" (most likely at layer '{layer}': {why})" if why else f" (most likely at layer '{layer}')"
        raise NativeCrashError(f"{what} {how} during step '{step}'{where}",
                               step=step, signal_name=sig, layer=layer, report=report,
                               hint=_TRY.get(step, "run with --verbose to see the crash report"))


def _rebuild(spec) -> TinyedgeError:
    """The TinyedgeError the worker raised, made again from its class, args and attributes."""
    mod, name, args, attrs = spec
    cls = getattr(importlib.import_module(mod), name, None)
    if not (isinstance(cls, type) and issubclass(cls, TinyedgeError)):
        return ModelError(str(attrs.get("message", args)))
    e = cls.__new__(cls)
    Exception.__init__(e, *args)
    e.__dict__.update(attrs)
    return e


def _worker(req: Path, res: Path) -> int:
    step, target, args, kwargs = pickle.loads(req.read_bytes())
    mark(step)
    import faulthandler

    faulthandler.enable()  # a Python-level trace of a crash, into the stderr file
    logging.basicConfig(level=logging.DEBUG if os.environ.get("TINYEDGE_WORKER_DEBUG") else logging.WARNING)
    mod, fn = target.split(":")
    if not mod.startswith("tinyedge."):
        raise SystemExit(f"refusing to run {target}: not a tinyedge function")
    try:
        value = ("ok", getattr(importlib.import_module(mod), fn)(*args, **kwargs))
    except TinyedgeError as e:
        value = ("tinyedge", (type(e).__module__, type(e).__qualname__, e.args, dict(vars(e))))
    except Exception:  # noqa: BLE001 - a bug: the parent raises it with this traceback
        value = ("bug", traceback.format_exc())
    tmp = res.with_suffix(".tmp")
    try:
        tmp.write_bytes(pickle.dumps(value))
    except (pickle.PicklingError, TypeError, AttributeError):
        tmp.write_bytes(pickle.dumps(("bug", traceback.format_exc())))
    os.replace(tmp, res)
    return 0


if __name__ == "__main__":
    sys.exit(_worker(Path(sys.argv[1]), Path(sys.argv[2])))
