"""On-device validation: stream inputs to a board, compare with the host reference.

The reference is the `tflite-micro` Python interpreter running the same
`.tflite` on the same inputs: int8, or float32 for a model converted with float
input (a QUANTIZE op at its input; float outputs are compared bit for bit).  The board must run that very model: its
hello reply carries the model's sha256, checked before anything is streamed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from . import __version__
from .errors import ValidationError
from .graph import Graph, load_tflite
from .metrics import accuracy, agreement, dequantize, detect_task, latency, task_metrics

log = logging.getLogger(__name__)

DEFAULT_GENERATED_SAMPLES = 20
GENERATED_SEED = 20261122

Progress = Callable[[int, int], None]


def generated_inputs(shape: tuple[int, ...], n: int = DEFAULT_GENERATED_SAMPLES) -> np.ndarray:
    """A fixed set of int8 inputs: all -128, all 127, then seeded uniform random ones."""
    rng = np.random.default_rng(GENERATED_SEED)
    n = max(n, 2)
    xs = [np.full(shape, -128, np.int8), np.full(shape, 127, np.int8)]
    xs += [rng.integers(-128, 128, size=shape, dtype=np.int64).astype(np.int8) for _ in range(n - 2)]
    return np.stack(xs)


class Reference:
    """The tflite-micro interpreter on the host: the answer the board must give."""

    def __init__(self, tflite_bytes: bytes):
        from tflite_micro.python.tflite_micro import runtime

        self._interp = runtime.Interpreter.from_bytes(tflite_bytes)
        details = self._interp.get_input_details(0)
        self._shape = tuple(int(d) for d in details["shape"])
        self._dtype = np.dtype(details.get("dtype", np.int8))

    def run(self, xq: np.ndarray) -> np.ndarray:
        self._interp.reset()   # each sample from the zero state (recurrent models: Keras' stateful=False)
        self._interp.set_input(np.asarray(xq, dtype=self._dtype).reshape(self._shape), 0)
        self._interp.invoke()
        return np.array(self._interp.get_output(0), copy=True)


@dataclass
class ValidationInputs:
    """The inputs to stream (int8, or float32 for a float-input model), and what is known about them."""

    xq: np.ndarray                     # (N, *input_shape) in the model's input dtype
    labels: np.ndarray | None = None
    x_float: np.ndarray | None = None  # the float inputs, when given as data
    source: str = "generated"          # "generated" or the data file's path
    notes: list[str] = field(default_factory=list)
    float_outputs: np.ndarray | None = None  # the float model's outputs on these inputs, when there is one
    float_note: str | None = None      # why there are no float outputs ("no float model", ...)
    task: str | None = None            # the user's --task (classify, anomaly, regress); None: detected
    top_k: tuple[int, ...] | None = None  # the user's --top-k; None: 1, 3, 5 (bounded by the classes)


def float_input_quantization(graph: Graph) -> tuple[float, int] | None:
    """(scale, zero point) of the QUANTIZE op a float32 model input feeds, or None."""
    t = graph.inputs[0]
    if graph.tensors[t].dtype != "float32":
        return None
    for op in graph.ops:
        if op.opcode == "QUANTIZE" and op.inputs and op.inputs[0] == t:
            q = graph.tensors[op.outputs[0]]
            if q.scale is not None and q.dtype == "int8":
                return float(q.scale[0]), int(q.zero_point[0])
    return None


def prepare_inputs(graph: Graph, data: str | Path | None = None, samples: int | None = None) -> ValidationInputs:
    """Quantize the user's float data with the model's input scale and zero point, or generate inputs.

    A model with a float32 input (converted with `inference_input_type` float32: a QUANTIZE op at
    its input) takes the float data as it is; its generated inputs are int8 ones dequantized with
    that QUANTIZE's scale and zero point (so all -128 and all 127 are among them)."""
    t = graph.input_tensors[0]
    shape = tuple(t.shape)
    fq = float_input_quantization(graph)
    if t.dtype == "float32" and fq is None:
        raise ValidationError(f"the model's input '{t.name}' is float32 and not quantized by a QUANTIZE op",
                              hint="convert it with 'tinyedge convert' (int8 input) first")
    if data is None:
        n = samples or DEFAULT_GENERATED_SAMPLES
        xs = generated_inputs(shape, n)
        notes = [f"no --data: {n} generated inputs; accuracy was not measured"]
        if fq is not None:
            xs = dequantize(xs, np.asarray([fq[0]], np.float32), np.asarray([fq[1]])).astype(np.float32)
            notes.append("float32 input: the generated int8 inputs, dequantized with the input QUANTIZE's scale")
        return ValidationInputs(xs, notes=notes)
    from .data import load_data

    x, y = load_data(data, input_shape=shape, samples=samples)
    x = np.asarray(x, dtype=np.float32).reshape((-1, *shape))
    if fq is not None:
        from .data import check_labels

        check_labels(y, _classes(graph), data)
        return ValidationInputs(x.copy(), labels=y, x_float=x, source=str(data))
    if t.dtype != "int8" or t.scale is None:
        raise ValidationError(f"the model's input is {t.dtype}, not quantized int8",
                              hint="convert it with 'tinyedge convert' first")
    from .conversion import quantize_input
    from .data import check_labels

    check_labels(y, _classes(graph), data)
    xq = quantize_input(x, t)
    return ValidationInputs(xq, labels=y, x_float=x, source=str(data))


def _classes(graph: Graph) -> int:
    """The number of classes of a classifier's output (its last dimension), or 0 when not a vector."""
    shape = [int(d) for d in graph.output_tensors[0].shape]
    return shape[-1] if shape and shape[-1] > 1 else 0


def float_inputs(graph: Graph, inputs: ValidationInputs) -> np.ndarray:
    """The float inputs: the data as given, or the generated int8 inputs dequantized."""
    if inputs.x_float is not None:
        return inputs.x_float
    t = graph.input_tensors[0]
    if t.scale is None:   # a float32 input (or an unquantized one): the inputs as streamed
        return inputs.xq.astype(np.float32)
    return dequantize(inputs.xq, t.scale, t.zero_point).astype(np.float32)


def add_float_outputs(inputs: ValidationInputs, graph: Graph, float_model: str | Path | None, *,
                      trust_code: bool = False, note: str = "no float model") -> ValidationInputs:
    """Run the float (Keras) model on the validation inputs, so the report compares against it too.

    Without a float model, `inputs.float_note` says why there is no float comparison.
    """
    if float_model is None:
        inputs.float_note = note
        return inputs
    from .conversion import float_predict

    try:
        y = float_predict(float_model, float_inputs(graph, inputs), trust_code=trust_code)
    except Exception as e:  # noqa: BLE001 - the float comparison is extra: the report says why it is missing
        log.warning("the float model %s did not run (%s: %s): no float comparison", float_model,
                    type(e).__name__, e)
        inputs.float_note = f"the float model did not run ({type(e).__name__}: {e})"
        return inputs
    y = y[0] if isinstance(y, (list, tuple)) else y
    inputs.float_outputs = np.asarray(y, dtype=np.float32)
    if inputs.x_float is None:
        inputs.notes.append("the float model ran on the generated int8 inputs, dequantized")
    return inputs


def _dequantized(q: np.ndarray, t) -> np.ndarray:
    if t.scale is None:
        return q.astype(np.float64)
    return dequantize(q, t.scale, t.zero_point)


def report_metrics(graph: Graph, inputs: ValidationInputs, dev: np.ndarray, ref: np.ndarray,
                   labels: np.ndarray | None) -> dict:
    """The report's `metrics` section for the board's and the host's outputs (one row per sample; int8,
    or float32 for a model with a float output)."""
    tin, tout = graph.input_tensors[0], graph.output_tensors[0]
    prod = graph.producers().get(graph.outputs[0])
    last_op = graph.ops[prod].opcode if prod is not None else None
    task, reason = detect_task(tin.shape, tout.shape, last_op=last_op, labels=labels, override=inputs.task)
    n = dev.shape[0]
    x = float_inputs(graph, inputs)[:n] if task == "anomaly" else None
    return task_metrics(task, _dequantized(dev, tout), _dequantized(ref, tout), labels=labels,
                        float_outputs=inputs.float_outputs, inputs=x, top_k=inputs.top_k,
                        classes=_classes(graph), reason=reason, float_note=inputs.float_note)


def tool_versions(extra: dict | None = None) -> dict:
    v = {"tinyedge": __version__}
    for pkg in ("tensorflow", "tf-keras", "tflite-micro", "numpy", "esptool", "pyserial"):
        try:
            v[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            v[pkg] = None
    if extra:
        v.update(extra)
    return v


def check_model(device_info, graph: Graph) -> None:
    """Raise ValidationError unless the board runs the model `graph` was read from."""
    got = str(getattr(device_info, "model_sha256", "")).lower()
    if got != graph.sha256:
        raise ValidationError(
            f"the board runs another model (board: {got[:16] or 'unknown'}, "
            f"{graph.path.name if graph.path else 'model'}: {graph.sha256[:16]})",
            hint="flash the firmware built from this model, or pass the .tflite the board was built from",
        )


def validate_device(
    device,
    tflite: str | Path,
    *,
    data: str | Path | None = None,
    samples: int | None = None,
    float_accuracy: float | None = None,
    inputs: ValidationInputs | None = None,
    progress: Progress | None = None,
    clock_hz: int | None = None,
) -> dict:
    """Validate an open Device session (anything with `.info()` and `.infer(x) -> (y, count)`).

    Returns the validation part of the report.  Ctrl-C stops streaming and
    the report covers the samples measured so far (`interrupted: true`).
    """
    tflite = Path(tflite)
    graph = load_tflite(tflite)
    info = device.info()
    check_model(info, graph)
    if inputs is None:
        inputs = prepare_inputs(graph, data, samples)
    ref = Reference(tflite.read_bytes())

    n = inputs.xq.shape[0]
    dev_out, ref_out, counts = [], [], []
    out_dtype = np.dtype(graph.output_tensors[0].dtype) if graph.output_tensors[0].dtype in (
        "int8", "float32", "int32", "int64") else np.dtype(np.int8)
    interrupted = False
    t0 = time.perf_counter()
    try:
        for i in range(n):
            y, count = device.infer(inputs.xq[i])
            y = np.asarray(y, dtype=out_dtype).reshape(-1)
            r = ref.run(inputs.xq[i]).reshape(-1)
            dev_out.append(y)
            ref_out.append(r)
            counts.append(int(count))
            if progress:
                progress(i + 1, n)
    except KeyboardInterrupt:
        interrupted = True
        log.info("interrupted after %d of %d samples", len(dev_out), n)
    stream_s = time.perf_counter() - t0
    # A Ctrl-C can land between the appends above: a sample counts once all three lists hold it.
    done = min(len(dev_out), len(ref_out), len(counts))
    del dev_out[done:], ref_out[done:], counts[done:]
    width = dev_out[0].size if dev_out else int(np.prod(graph.output_tensors[0].shape))
    dev = np.array(dev_out, dtype=out_dtype).reshape(done, width)
    refa = np.array(ref_out, dtype=out_dtype).reshape(done, width)
    agree = agreement(dev, refa)
    labels = inputs.labels[:done] if inputs.labels is not None else None

    unit = info.unit
    hz = clock_hz or info.clock_hz
    if float_accuracy is None and inputs.float_outputs is not None and labels is not None:
        float_accuracy = accuracy(inputs.float_outputs[:done], labels)
    metrics = report_metrics(graph, inputs, dev, refa, labels)
    notes = list(inputs.notes)
    classifier = metrics["task"] == "classify"
    if labels is not None and not classifier:
        # top-1 accuracy of an autoencoder's or a regressor's arg-max means nothing: its metrics say more
        notes.append(f"labels given to a model taken as {metrics['task']} ({metrics['task_reason']}): no top-1 "
                     "accuracy" + ("; ROC AUC of the reconstruction error instead" if metrics["task"] == "anomaly"
                                   else "") + " (--task classify to treat it as a classifier)")
    return {
        "samples": done,
        "samples_requested": n,
        "interrupted": interrupted,
        "inputs": inputs.source,
        "agreement": agree.to_dict(),
        "accuracy": {
            "float": float_accuracy if labels is not None and classifier else None,
            "int8_host": accuracy(refa, labels) if classifier else None,
            "device": accuracy(dev, labels) if classifier else None,
            "labels": labels is not None,
        },
        "metrics": metrics,
        "latency": latency(counts, unit or "unknown", hz),
        "stream_seconds": stream_s,
        "notes": notes + ([f"interrupted: validated {done} of {n} samples"] if interrupted else []),
    }


def validate(
    port: str,
    tflite: str | Path,
    *,
    data: str | Path | None = None,
    samples: int | None = None,
    float_model: str | Path | None = None,
    timeout: float = 10.0,
    progress: Progress | None = None,
    report_file: str | Path | None = None,
    baud: int = 115200,
    trust_code: bool = False,
    on_status: Callable[[str], None] | None = None,
    task: str | None = None,
    top_k: tuple[int, ...] | None = None,
) -> dict:
    """Validate the board on `port` (a pyserial URL) that runs `tflite`; return the report.

    With `float_model` (the Keras model the .tflite came from), the board's outputs are also
    compared with the float model's, and with labelled data its accuracy is reported too.
    `task` (classify, anomaly, regress) overrides the detected kind of model, `top_k` the k of
    the top-k accuracies.  With `report_file`, the report is also written there as JSON and beside
    it as HTML (atomically).
    """
    from .link import Device

    graph = load_tflite(tflite)
    inputs = prepare_inputs(graph, data, samples)
    inputs.task, inputs.top_k = task, top_k
    add_float_outputs(inputs, graph, float_model, trust_code=trust_code,
                      note="no float model (pass --float-model to compare with it)")
    float_acc = None
    with Device(port, timeout=timeout, baud=baud, on_status=on_status) as dev:
        info = dev.info()
        report = {
            "board": info.board,
            "runtime": info.runtime,
            "port": port,
            "model": {"path": str(Path(tflite).resolve()), "sha256": graph.sha256,
                      "tflite_bytes": graph.size_bytes},
        }
        report.update(validate_device(dev, tflite, inputs=inputs, float_accuracy=float_acc,
                                      progress=progress))
        report["device"] = info.to_dict()
        report["link"] = dict(vars(dev.stats))
    report["versions"] = tool_versions()
    if report_file:
        from .report_html import write_report

        write_report(report_file, report)
    return report
