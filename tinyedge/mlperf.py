"""The MLPerf Tiny / EEMBC runner protocol: the firmware variant's facts and a host runner.

The firmware (`tinyedge generate --protocol mlperf`, firmware/mlperf/te_mlperf.c)
speaks the benchmark's ASCII protocol on the UART: commands end with `%`
(`name`, `profile`, `db load N`, `db <hex>`, `infer N W`, `results`), each
answered by `m-...` lines and a final `m-ready`.  `MlperfDut(url)` is the
host side over any pyserial URL; `performance()` and `accuracy()` are the
runner's two modes:

- performance: one input loaded, `infer N 1` in windows of at least
  `min_seconds` of the board's own time (10 s by the rules; the board's
  `m-lap-us` timestamps), throughput = N / window; the median over windows.
- accuracy: every input loaded and inferred once; top-1 against labels,
  or for ad01 the AUC of the anomaly scores (labels 1 = anomalous).

The input bytes each model takes are those of the reference submissions:
ad01 640 float32 values; kws01 its int8 features; vww01 and ic01 uint8
pixels (int8 + 128).  `MODELS` is the one table of them.
"""

from __future__ import annotations

import logging
import re
import statistics
import time
from dataclasses import dataclass

import numpy as np

from .errors import DeviceTimeout, LinkError, ProtocolError, UsageError

log = logging.getLogger(__name__)

FW_VERSION = "ULPMark for tinyML Firmware V0.0.1"
DB_CHUNK = 32          # bytes per `db` line: 67 characters, within the reference firmware's 80
MIN_WINDOW_S = 10.0    # the rules' minimum measurement window
WINDOWS = 5


@dataclass(frozen=True)
class MlperfModel:
    name: str               # what m-model-[...] says
    input_shape: tuple      # the int8 model's input shape
    input: str              # what the db buffer holds: float32, int8 or uint8
    result: str             # scores (dequantized outputs) or mse (ad01's anomaly score)
    task: str               # top1 or auc


MODELS = {
    "ad01": MlperfModel("ad01", (1, 640), "float32", "mse", "auc"),
    "ic01": MlperfModel("ic01", (1, 32, 32, 3), "uint8", "scores", "top1"),
    "kws01": MlperfModel("kws01", (1, 49, 10, 1), "int8", "scores", "top1"),
    "vww01": MlperfModel("vww01", (1, 96, 96, 3), "uint8", "scores", "top1"),
}


def model_for(graph) -> MlperfModel:
    """The benchmark model a graph is, by its input tensor (shape, int8)."""
    if len(graph.input_tensors) != 1 or len(graph.output_tensors) != 1:
        raise UsageError("the MLPerf Tiny protocol takes models with one input and one output",
                         hint="use --protocol tinyedge for this model")
    t = graph.input_tensors[0]
    shape = tuple(int(d) for d in t.shape)
    for m in MODELS.values():
        if m.input_shape == shape:
            return m
    raise UsageError(f"no MLPerf Tiny benchmark model takes an input of shape {list(shape)}",
                     hint="the protocol knows " + ", ".join(f"{m.name} {list(m.input_shape)}" for m in MODELS.values())
                          + "; use --protocol tinyedge for other models")


def firmware_facts(graph) -> dict:
    """What templates/common/te_mlperf.h.j2 needs."""
    m = model_for(graph)
    n = int(np.prod(m.input_shape))
    return {"model": m.name, "input": m.input, "result": m.result, "input_bytes": n,
            "db_bytes": n * 4 if m.input == "float32" else n}


def _qparams(t) -> tuple[float, int]:
    scale = float(t.scale[0]) if t.scale is not None and len(t.scale) else 1.0
    zp = int(t.zero_point[0]) if t.zero_point is not None and len(t.zero_point) else 0
    return scale, zp


def quantize(x: np.ndarray, scale: float, zp: int) -> np.ndarray:
    """float -> int8 the way the firmware does it (float32, round half away from zero, clamp)."""
    v = np.asarray(x, np.float32) / np.float32(scale) + np.float32(zp)
    q = np.where(v >= 0, np.floor(v + np.float32(0.5)), -np.floor(-v + np.float32(0.5)))
    return np.clip(q, -128, 127).astype(np.int8)


class Payload:
    """The bytes one sample sends with `db`, and the int8 input the model then sees."""

    def __init__(self, model: MlperfModel, graph):
        self.model = model
        self.graph = graph
        self.in_scale, self.in_zp = _qparams(graph.input_tensors[0])
        self.out_scale, self.out_zp = _qparams(graph.output_tensors[0])

    def from_float(self, x) -> tuple[bytes, np.ndarray]:
        """(db bytes, int8 model input) for a float sample in the model's layout."""
        x = np.asarray(x, np.float32).reshape(self.model.input_shape)
        q = quantize(x, self.in_scale, self.in_zp)
        if self.model.input == "float32":
            return x.astype("<f4").tobytes(), q
        return self.from_int8(q)

    def from_int8(self, q) -> tuple[bytes, np.ndarray]:
        q = np.asarray(q, np.int8).reshape(self.model.input_shape)
        if self.model.input == "float32":     # ad01's bytes are floats: send the dequantized values
            x = ((q.astype(np.float32) - np.float32(self.in_zp)) * np.float32(self.in_scale)).astype(np.float32)
            return x.astype("<f4").tobytes(), quantize(x, self.in_scale, self.in_zp)
        if self.model.input == "uint8":
            return (q.astype(np.int16) + 128).astype(np.uint8).tobytes(), q
        return q.tobytes(), q

    def expected(self, db: bytes, y_int8: np.ndarray) -> list[float]:
        """The m-results values the firmware prints for output `y_int8` (from the host reference),
        computed in float32 in the firmware's order, rounded to 3 decimals as it prints them."""
        y = (np.asarray(y_int8, np.int8).reshape(-1).astype(np.float32) - np.float32(self.out_zp)) \
            * np.float32(self.out_scale)
        if self.model.result == "mse":
            x = np.frombuffer(db, "<f4")
            s = np.float32(0.0)
            for d in (y - x).astype(np.float32):
                s = np.float32(s + np.float32(d * d))
            vals = [np.float32(s / np.float32(y.size))]
        else:
            vals = list(y.astype(np.float32))
        return [_fixed3(v) for v in vals]


def _fixed3(v) -> float:
    v = np.float32(v)
    neg = v < 0
    milli = int(np.float32(abs(v) * np.float32(1000.0) + np.float32(0.5)))
    return (-milli if neg else milli) / 1000.0


_RESULTS = re.compile(r"^m-results-\[([^\]]*)\]$")
_LAP = re.compile(r"^m-lap-us-(\d+)$")


class MlperfDut:
    """The device under test, over any pyserial URL (`socket://`, `rfc2217://`, a pty, a COM port)."""

    def __init__(self, url: str, *, timeout: float = 10.0, baud: int = 115200, retries: int = 3,
                 transport=None):
        from .link.transport import Transport

        self.url = url
        self.timeout = timeout
        self.retries = retries
        self.transport = transport or Transport(url, baud=baud)
        self._buf = b""
        self.log: list[str] = []          # every line the board printed
        self.resends = 0                  # db lines sent again after a refused one
        self.slow_replies = 0             # waits that had to be extended

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def __enter__(self) -> MlperfDut:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ the line
    def _line(self, deadline: float) -> str | None:
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._buf += self.transport.read(left)
        raw, self._buf = self._buf.split(b"\n", 1)
        text = raw.decode("ascii", "replace").strip("\r\x00 ")
        self.log.append(text)
        return text

    def command(self, cmd: str, timeout: float | None = None) -> list[str]:
        """Send `cmd%`; return the lines before `m-ready`.

        A board slow to answer (a slow m-ready after `name%` is common) is
        waited for, with the wait doubled `retries` times, rather than sent
        the command again: a second copy would leave a reply out of step."""
        if not cmd.isascii() or "%" in cmd:
            raise UsageError(f"not an MLPerf command: {cmd!r}")
        self.transport.write(cmd.encode("ascii") + b"%")
        wait = timeout or self.timeout
        deadline = time.monotonic() + wait
        lines, extended = [], 0
        while True:
            ln = self._line(deadline)
            if ln is None:
                if extended < self.retries:
                    extended += 1
                    self.slow_replies += 1
                    wait *= 2
                    deadline = time.monotonic() + wait
                    log.info("%s: no m-ready after %r yet; waiting %g s more", self.url, cmd, wait)
                    continue
                raise DeviceTimeout(f"{self.url}: no m-ready after {cmd!r} (waited {extended} times longer)"
                                    + (f"; last line: {lines[-1]!r}" if lines else ""),
                                    hint="check that the board runs MLPerf protocol firmware (--protocol mlperf)")
            if ln == "m-ready":
                return lines
            if ln:
                lines.append(ln)

    def sync(self) -> None:
        """Flush half a command an earlier run left in the board's buffer, then drain: a lone
        `%` ends it (the firmware answers an empty or unknown command with m-ready)."""
        self.transport.write(b"%")
        deadline = time.monotonic() + self.timeout
        while True:
            ln = self._line(deadline)
            if ln is None:
                raise DeviceTimeout(f"{self.url}: the board does not answer '%' with m-ready "
                                    f"within {self.timeout:g} s",
                                    hint="check that the board runs MLPerf protocol firmware (--protocol mlperf)")
            if ln == "m-ready":
                break
        # boot lines (m-init-done, m-ready) can still be on their way: drain what is there
        while self._line(time.monotonic() + 0.05) is not None:
            pass

    def _errors(self, lines: list[str], what: str) -> None:
        errs = [ln for ln in lines if ln.startswith("e-")]
        if errs:
            raise LinkError(f"{self.url}: the board refused {what}: {errs[0]}",
                            hint="see the board's log; reflash it if it persists")

    def name(self) -> str:
        """The `m-name-dut-[...]` name."""
        for ln in self.command("name"):
            m = re.match(r"^m-name-dut-\[([^\]]+)\]$", ln)
            if m:
                return m.group(1)
        raise ProtocolError(f"{self.url}: no m-name-dut-[...] reply to name")

    def profile(self) -> dict:
        out = {}
        for ln in self.command("profile"):
            m = re.match(r"^m-(model|profile)-\[([^\]]+)\]$", ln)
            if m:
                out[m.group(1)] = m.group(2)
        if "model" not in out:
            raise ProtocolError(f"{self.url}: no m-model-[...] reply to profile")
        return out

    def load(self, data: bytes, *, chunk: int = DB_CHUNK) -> None:
        """`db load N`, then `db <hex>` lines; a refused line (dropped digits) is sent again,
        a load that does not end in m-load-done is started over."""
        for _attempt in range(self.retries + 1):
            lines = self.command(f"db load {len(data)}")
            self._errors(lines, "db load")
            if f"m-[Expecting {len(data)} bytes]" not in lines:
                raise ProtocolError(f"{self.url}: no m-[Expecting {len(data)} bytes] reply: {lines}")
            done = False
            for off in range(0, len(data), chunk):
                cmd = "db " + data[off:off + chunk].hex()
                for _ in range(self.retries + 1):
                    lines = self.command(cmd)
                    if not any(ln.startswith("e-") for ln in lines):
                        break
                    self.resends += 1
                    log.info("%s: %s; sending the line again", self.url, lines[0])
                else:
                    self._errors(lines, "a db line")
                done = "m-load-done" in lines
            if done:
                return
            log.info("%s: the load did not end in m-load-done; starting it over", self.url)
        raise LinkError(f"{self.url}: {len(data)} bytes did not load after {self.retries + 1} tries",
                        hint="the line loses data; lower the baud rate or check the cable")

    def infer(self, n: int = 1, warmup: int = 0, timeout: float | None = None) -> dict:
        """`infer N W`: {"us": board microseconds for the N inferences, "results": [...]}."""
        lines = self.command(f"infer {n} {warmup}", timeout=timeout or max(self.timeout, 60.0))
        self._errors(lines, f"infer {n} {warmup}")
        laps = [int(m.group(1)) for m in (_LAP.match(ln) for ln in lines) if m]
        res = [_RESULTS.match(ln) for ln in lines]
        res = [m for m in res if m]
        if len(laps) != 2 or not res or "m-infer-done" not in lines:
            raise ProtocolError(f"{self.url}: the reply to infer lacks its timestamps or results: {lines}")
        return {"us": laps[1] - laps[0], "results": parse_results(res[-1].group(1))}


def wait_boot(url: str, timeout: float = 20.0, process=None) -> list[str]:
    """Read an MLPerf firmware's boot lines up to its first m-ready (an emulator's first client).

    With `process` (the QemuProcess serving `url`) the wait is counted in QEMU's own CPU time, as
    the tinyedge announcement's is: on a loaded machine the guest gets less of the CPU and the
    wall-clock wait grows with the load (tinyedge.qemu.wall_limit); a QEMU that exits ends it."""
    from .link.transport import Transport
    from .qemu import wall_limit

    dut = MlperfDut(url, timeout=timeout, transport=Transport(url))
    cpu0 = process.cpu_seconds() if process is not None else None
    start = time.monotonic()
    try:
        while True:
            ln = dut._line(time.monotonic() + min(1.0, timeout))
            if ln == "m-ready":
                return dut.log
            if ln is not None:
                continue
            if process is not None and not dut.log:
                process.check_first_client(dut.transport)
            wall = time.monotonic() - start
            cpu = process.cpu_seconds() if process is not None else None
            used = cpu - cpu0 if cpu is not None and cpu0 is not None else wall
            dead = process is not None and not process.alive()
            if dead or used >= timeout or wall >= (wall_limit(timeout) if process is not None else timeout):
                raise DeviceTimeout(f"{url}: no m-ready from the MLPerf firmware after {wall:.0f} s"
                                    + (f" ({used:.1f} s of QEMU CPU time)" if process is not None else "")
                                    + ("; QEMU exited" if dead else "")
                                    + (f" (got {dut.log[-3:]})" if dut.log else "; nothing was printed"),
                                    hint="the firmware did not start; check its build log")
    finally:
        dut.close()


def parse_results(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ProtocolError(f"m-results-[{text}] is not a list of numbers") from None


def auc(scores, labels) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted half)."""
    s = np.asarray(scores, float)
    y = np.asarray(labels).astype(bool)
    pos, neg = s[y], s[~y]
    if not len(pos) or not len(neg):
        raise UsageError("the AUC needs labels of both classes (0 normal, 1 anomalous)")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def performance(dut: MlperfDut, db: bytes, *, min_seconds: float = MIN_WINDOW_S, windows: int = WINDOWS) -> dict:
    """The runner's performance mode on one loaded input."""
    if min_seconds <= 0 or windows < 1:
        raise UsageError("the window must be > 0 s and there must be at least one window")
    dut.load(db)
    first = dut.infer(1, 1)
    per = max(first["us"], 1)
    n = max(1, int(np.ceil(min_seconds * 1e6 / per)))
    runs = []
    for _ in range(windows):
        r = dut.infer(n, 1, timeout=max(dut.timeout, 120.0))
        if r["us"] < min_seconds * 1e6 and n < 10**8:      # the estimate was short: scale it up
            n = int(np.ceil(n * min_seconds * 1e6 / max(r["us"], 1) * 1.05))
            r = dut.infer(n, 1, timeout=max(dut.timeout, 120.0))
        runs.append({"inferences": n, "us": r["us"], "per_second": n / (r["us"] / 1e6)})
    med = statistics.median(r["per_second"] for r in runs)
    return {"mode": "performance", "windows": runs, "median_per_second": med,
            "median_latency_ms": 1000.0 / med, "min_window_s": min_seconds, "results": first["results"]}


def accuracy(dut: MlperfDut, payload: Payload, x, labels=None, *, reference=None, progress=None) -> dict:
    """The runner's accuracy mode: each sample loaded and inferred once.

    `x` are float samples (or int8 ones, given as an int8 array).  With
    `reference` (validation.Reference) each m-results line is also compared
    with what the firmware must print for the host reference's output."""
    x = np.asarray(x)
    scores, mismatches = [], 0
    for i in range(len(x)):
        db, q = payload.from_int8(x[i]) if x.dtype == np.int8 else payload.from_float(x[i])
        dut.load(db)
        r = dut.infer(1, 0)
        scores.append(r["results"])
        if reference is not None and r["results"] != payload.expected(db, reference.run(q)):
            mismatches += 1
        if progress:
            progress(i + 1, len(x))
    out = {"mode": "accuracy", "samples": len(x), "model": payload.model.name}
    if reference is not None:
        out["reference_mismatches"] = mismatches
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)[:len(x)]
        if payload.model.task == "auc":
            out["auc"] = auc([s[0] for s in scores], labels)
        else:
            out["top1"] = float(np.mean(np.argmax(np.array(scores), axis=1) == labels))
    out["scores"] = scores
    return out


# ------------------------------------------------------------------ the runner

MODES = ("performance", "accuracy", "both")


def run(port: str, model, *, mode: str = "both", data=None, samples: int | None = None,
        min_seconds: float = MIN_WINDOW_S, windows: int = WINDOWS, timeout: float = 10.0,
        chunk: int = DB_CHUNK, progress=None, dut: MlperfDut | None = None, baud: int = 115200,
        on_step=None) -> dict:
    """Run the MLPerf Tiny runner's modes against the board on `port` that runs `model`.

    Accuracy uses `data` (.npz x and optional y labels: class ids, or for ad01
    1 = anomalous), or generated inputs; every m-results line is also checked
    against the host reference.  Performance uses the first sample.  `on_step(name)` is
    called as each mode starts (the CLI shows it, with its time when it ends)."""
    from pathlib import Path

    from .graph import load_tflite
    from .validation import Reference, prepare_inputs

    if mode not in MODES:
        raise UsageError(f"unknown mode {mode!r}", hint=f"use one of: {', '.join(MODES)}")
    graph = load_tflite(model)
    bench = model_for(graph)
    payload = Payload(bench, graph)
    inputs = prepare_inputs(graph, data, samples)
    x = inputs.x_float if inputs.x_float is not None else inputs.xq
    own = dut is None
    dut = dut or MlperfDut(port, timeout=timeout, baud=baud)
    try:
        dut.sync()
        report: dict = {"port": port, "name": dut.name(), **dut.profile(),
                        "model_file": str(Path(model).resolve()), "model_sha256": graph.sha256,
                        "inputs": inputs.source, "notes": list(inputs.notes)}
        if report["model"] != bench.name:
            raise LinkError(f"{port}: the board runs MLPerf model {report['model']}, {Path(model).name} is {bench.name}",
                            hint="flash the firmware built from this model with --protocol mlperf")
        if mode in ("accuracy", "both"):
            if on_step:
                on_step("accuracy")
            acc = accuracy(dut, payload, x, inputs.labels, reference=Reference(Path(model).read_bytes()),
                           progress=progress)
            acc.pop("scores")
            report["accuracy"] = acc
        if mode in ("performance", "both"):
            if on_step:
                on_step(f"performance ({windows} windows of >= {min_seconds:g} s)")
            db, _ = payload.from_int8(x[0]) if x.dtype == np.int8 else payload.from_float(x[0])
            report["performance"] = performance(dut, db, min_seconds=min_seconds, windows=windows)
        report["db_resends"] = dut.resends
    finally:
        if own:
            dut.close()
    return report


def deploy(model, *, board: str | None = None, runtime: str = "aot", port: str | None = None, data=None,
           calib=None, samples: int | None = None, out=None, force: bool = False, mode: str = "accuracy",
           min_seconds: float = MIN_WINDOW_S, windows: int = WINDOWS, timeout: float = 30.0,
           progress=None) -> dict:
    """`deploy --protocol mlperf`: build the MLPerf protocol firmware, flash it (or start the
    emulated board) and run the runner on it; the report is also written to report.json."""
    from pathlib import Path

    from .boards import get_board
    from .builder import build_project
    from .flashers.dispatch import flash_project
    from .fsutil import check_output_dir, mark_ours
    from .pipeline import _find_port, _memory_section, default_output_dir
    from .project import generate_project
    from .report_html import write_report

    model = Path(model).expanduser().resolve()
    b = get_board(board)
    outdir = check_output_dir(Path(out) if out else default_output_dir(model, b.id, runtime), force=force)
    outdir.mkdir(parents=True, exist_ok=True)
    mark_ours(outdir, f"tinyedge deploy --protocol mlperf of {model.name} to {b.id}")
    from .hil.firmware import FirmwareCache

    tflite = FirmwareCache(outdir / "convert").tflite_for(model, calib or data)
    project = generate_project(tflite, b, runtime, outdir / "project", force=True, protocol="mlperf")
    built = build_project(project)
    report: dict = {"board": b.id, "runtime": runtime, "protocol": "mlperf",
                    "memory": _memory_section(built, b)}
    if not b.emulated and port is None:
        port = _find_port(b)
        if port is None:
            report["notes"] = [f"{b.id} is a real board and no --port was given: built, not flashed. "
                               f"Flash with 'tinyedge flash {project} --port PORT', then run "
                               f"'tinyedge mlperf --port PORT {tflite}'."]
            write_report(outdir / "report.json", report)
            return report
    result = flash_project(project, port=port, board=b)
    try:
        report["mlperf"] = run(result.port, tflite, mode=mode, data=data, samples=samples,
                               min_seconds=min_seconds, windows=windows, timeout=timeout, progress=progress)
    finally:
        result.close()
    report["artifacts"] = {"dir": str(outdir), "project": str(project), "report": str(outdir / "report.json")}
    write_report(outdir / "report.json", report)
    return report
