"""`tinyedge.compress`: the methods in their fixed order, the output written whole or not at all."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputFileError, ModelError, UsageError

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
StepHook = Callable[[str], None]

ORDER = ("l1", "prune_channels", "low_rank", "finetune", "prune", "cluster", "qat", "int8")


@dataclass
class Options:
    """The compression methods and their settings (see tinyedge.compress for the order)."""

    prune_channels: float | None = None
    channel_criterion: str = "l1"
    rank: float | None = None
    rank_energy: float | None = None
    prune: float | None = None
    sparsity_pattern: str | None = None
    cluster: int | None = None
    qat: bool = False
    distill: bool = False
    temperature: float = 4.0
    distill_weight: float = 0.5      # weight of the teacher term when labels are there too
    l1: float | None = None
    layers: list[str] | None = None
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 1e-3
    seed: int = 0
    notes: list[str] = field(default_factory=list)

    def any(self) -> bool:
        return any(v is not None for v in (self.prune_channels, self.rank, self.rank_energy, self.prune,
                                           self.sparsity_pattern, self.cluster, self.l1)) or self.qat or self.distill

    def check(self) -> None:
        from .clustering import check_clusters
        from .sparsity import check_sparsity, parse_pattern

        if self.prune_channels is not None and not 0.0 < self.prune_channels < 1.0:
            raise UsageError(f"--prune-channels must be between 0 and 1 (exclusive), got {self.prune_channels}",
                             hint="give the fraction of channels to remove, e.g. 0.5")
        if self.rank is not None and self.rank_energy is not None:
            raise UsageError("give --rank or --rank-energy, not both")
        if self.rank is not None and not 0.0 < self.rank <= 1.0:
            raise UsageError(f"--rank must be in (0, 1], got {self.rank}", hint="the fraction of the full rank to keep")
        if self.rank_energy is not None and not 0.0 < self.rank_energy < 1.0:
            raise UsageError(f"--rank-energy must be in (0, 1), got {self.rank_energy}")
        if self.prune is not None:
            check_sparsity(self.prune)
        parse_pattern(self.sparsity_pattern)
        if self.sparsity_pattern is not None and self.prune is not None:
            raise UsageError("give --prune SPARSITY or --sparsity-pattern N:M, not both",
                             hint="an N:M pattern fixes the sparsity at 1 - N/M")
        if self.cluster is not None:
            check_clusters(self.cluster)
        if not self.temperature > 0:
            raise UsageError(f"--temperature must be positive, got {self.temperature}")
        if not 0.0 <= self.distill_weight <= 1.0:
            raise UsageError(f"--distill-weight must be between 0 and 1, got {self.distill_weight}")
        if self.l1 is not None and not self.l1 > 0:
            raise UsageError(f"--l1 must be positive, got {self.l1}")
        if self.epochs < 1:
            raise UsageError(f"--epochs must be at least 1, got {self.epochs}")
        if self.channel_criterion not in ("l1", "l2", "bn"):
            raise UsageError(f"unknown channel criterion {self.channel_criterion!r}", hint="use l1, l2 or bn")

    def phases(self) -> list[str]:
        """The training phases these options run, in order."""
        p = []
        structural = self.prune_channels is not None or self.rank is not None or self.rank_energy is not None
        if self.l1 is not None and self.prune_channels is not None:
            p.append("l1")
        if structural or (self.l1 is not None and self.prune_channels is None) or \
                (self.distill and not (self.prune is not None or self.sparsity_pattern or self.cluster or self.qat)):
            p.append("finetune")
        if self.prune is not None or self.sparsity_pattern is not None:
            p.append("prune")
        if self.cluster is not None:
            p.append("cluster")
        if self.qat:
            p.append("qat")
        return p


def check_output(out, force: bool = False) -> Path:
    """OUT resolved, or the user error it would give (a bad suffix, a folder, an existing file without
    `force`): the CLI asks before it starts, so that bad input is one error line."""
    from ..errors import OutputExistsError

    p = Path(out).expanduser().resolve()
    if p.suffix.lower() not in (".h5", ".keras"):
        raise UsageError(f"the output {p.name} must end in .h5 or .keras", hint="e.g. -o small.h5")
    if p.is_dir():
        raise UsageError(f"{p} is a folder", hint="give -o the path of a .h5 or .keras file")
    if not p.parent.is_dir():
        raise InputFileError(f"the folder of {p} does not exist", path=p.parent, hint="create it first")
    if not force:      # refused before any training, not after it
        for f in (p, int8_path(p)):
            if f.exists():
                raise OutputExistsError(f"{f} already exists",
                                        hint="choose another output file with -o, or pass --force to overwrite it")
    return p


def int8_path(out: Path) -> Path:
    """Where compress writes the int8 .tflite of its result: beside OUT, `<stem>_int8.tflite`."""
    return out.with_name(f"{out.stem}_int8.tflite")


def _save(model, path: Path) -> None:
    import warnings

    from ..conversion import _quiet_tf

    # tf_keras says that .h5 is "legacy" (a UserWarning) and logs about compiled metrics: the user
    # chose the format with -o, and neither says anything to them
    tf_log = logging.getLogger("tensorflow")
    level = tf_log.level
    with _quiet_tf(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="You are saving your model as an HDF5 file", category=UserWarning)
        tf_log.setLevel(logging.ERROR)
        try:
            model.save(str(path), include_optimizer=False) if path.suffix == ".h5" else model.save(str(path))
        finally:
            tf_log.setLevel(level)


def compress(model: str | os.PathLike, train: str | os.PathLike, *, out: str | os.PathLike,
             val: str | os.PathLike | None = None, options: Options | None = None,
             progress: Progress | None = None, on_step: StepHook | None = None, force: bool = False,
             trust_code: bool = False, **kw) -> dict:
    """Compress a Keras model; write OUT (.h5/.keras) and `<stem>_int8.tflite` beside it; return the report.

    Options go in `options` or as keywords (`prune_channels=0.5, distill=True`, ...).  Nothing is
    written until every step has succeeded: a failure or Ctrl-C leaves OUT as it was.  An existing
    OUT (or its .tflite) is refused unless `force`; `trust_code` allows Lambda layers stored as
    Python bytecode in MODEL (loading it runs that code).
    """
    from ..conversion import _quiet_tf, load_model
    from ..data import load_data

    opts = options or Options(**kw)
    if options is not None and kw:
        raise UsageError("give options either as an Options object or as keywords, not both")
    opts.check()
    if not opts.any():
        raise UsageError("no compression method given",
                         hint="choose at least one of --prune-channels, --rank, --prune, --cluster, --qat, "
                              "--distill, --l1")
    outp = check_output(out, force)
    if opts.qat and outp.suffix.lower() == ".keras":
        raise UsageError("--qat keeps tfmot's quantize wrappers in the model, which only the Keras 2 .h5 format "
                         "holds (Keras 3 cannot load them from a .keras file)", hint=f"use -o {outp.stem}.h5")
    src = Path(model).expanduser().resolve()
    t_start = time.perf_counter()
    steps: dict[str, float] = {}
    loaded = load_model(src, trust_code=trust_code)
    if loaded.kind == "savedmodel":
        raise ModelError(f"{src.name} is a SavedModel; compression needs the Keras model (.h5 or .keras) with "
                         "its layers", hint="pass the .h5 or .keras file the SavedModel was exported from")
    if outp == src:
        raise UsageError(f"the output {outp} is the input model", hint="choose another path with -o")
    x, y = load_data(train, input_shape=loaded.input_shape)
    if val is not None:
        xv, yv = load_data(val, input_shape=loaded.input_shape)
    else:
        xv, yv = x, y
    phases = opts.phases()
    if y is None and phases and not opts.distill:
        first = {"l1": "--l1", "finetune": "fine-tuning after --prune-channels / --rank / --l1",
                 "prune": "--prune", "cluster": "--cluster", "qat": "--qat"}[phases[0]]
        raise UsageError(f"{first} trains on labels, and {Path(train).name} has no labels (no 'y' array)",
                         hint="add labels y to the .npz, or add --distill to train label-free from the "
                              "original model's outputs")
    with _quiet_tf():
        import tf_keras

        from . import channels, clustering, lowrank, qat, sparsity
        from . import train as tr
        from .ir import build, from_keras, to_tf_keras

        tf_keras.utils.set_random_seed(opts.seed)
        try:
            teacher = to_tf_keras(loaded.obj)
        except ModelError as e:
            methods = ", ".join(sorted(m for m in _methods_run(opts) if m != "int8"))
            raise ModelError(f"{methods}: this {loaded.kind} model cannot be rebuilt as the tf_keras model the "
                             f"methods train (tfmot needs tf_keras): {e.message}", layer=e.layer,
                             hint=e.hint) from None
        probs = tr.is_probs_output(teacher)
        t_out = teacher.predict(x, batch_size=256, verbose=0)
        classifier = probs or (y is not None and t_out.reshape(len(x), -1).shape[1] > 1)
        if y is not None and classifier:
            n_cls = t_out.reshape(len(x), -1).shape[1]
            if y.min() < 0 or y.max() >= n_cls:
                raise InputFileError(f"{Path(train).name}: labels run from {y.min()} to {y.max()} but the model "
                                     f"has {n_cls} outputs", path=Path(train))
        use_labels = y is not None and (not opts.distill or opts.distill_weight > 0)
        targets = tr.Targets(labels=y if use_labels else None, teacher=t_out if opts.distill else None,
                             probs=probs, classifier=classifier)
        if not classifier and targets.teacher is None:
            raise UsageError("fine-tuning a model whose output is not a class score needs --distill",
                             hint="add --distill to train towards the original model's outputs")
        total_epochs = opts.epochs * len(phases)
        done = 0
        run_notes: list[str] = []
        summary: dict = {"order": [p for p in ORDER if p in _methods_run(opts)], "phases": phases}

        def train(m, phase, **extra):
            nonlocal done
            if on_step:
                on_step(f"train: {phase}")
            t = time.perf_counter()
            losses = tr.fit(m, x, targets, epochs=opts.epochs, batch_size=opts.batch_size, lr=opts.learning_rate,
                            temperature=opts.temperature, alpha=opts.distill_weight, progress=progress,
                            progress_offset=done, progress_total=total_epochs, seed=opts.seed, **extra)
            done += opts.epochs
            steps[f"train_{phase}"] = round(time.perf_counter() - t, 3)
            summary.setdefault("training", {})[phase] = {"epochs": opts.epochs, "loss_first": losses[0],
                                                         "loss_last": losses[-1]}

        student = teacher
        if "l1" in phases:
            student = build(from_keras(teacher))
            train(student, "l1", l1=opts.l1, l1_target="bn" if opts.channel_criterion == "bn" else "kernels")
        g = from_keras(student)
        structural = False
        if opts.prune_channels is not None:
            g, summary["prune_channels"] = channels.prune_channels(g, opts.prune_channels,
                                                                   criterion=opts.channel_criterion,
                                                                   layers=opts.layers)
            structural = True
        if opts.rank is not None or opts.rank_energy is not None:
            g, summary["low_rank"] = lowrank.factorize(g, rank=opts.rank, energy=opts.rank_energy,
                                                       layers=opts.layers)
            structural = True
        if structural or "finetune" in phases:
            student = build(g)
        if "finetune" in phases:
            l1 = opts.l1 if (opts.l1 is not None and opts.prune_channels is None) else 0.0
            train(student, "finetune", l1=l1)
            student = build(from_keras(student))  # drop the training-only L1 loss
        pruned = clustered = False
        if "prune" in phases:
            pattern = sparsity.parse_pattern(opts.sparsity_pattern)
            steps_total = opts.epochs * int(np.ceil(len(x) / opts.batch_size))
            wrapped, cbs = sparsity.wrap(student, opts.prune, pattern, steps_total)
            train(wrapped, "prune", callbacks=cbs)
            student = sparsity.strip(wrapped)
            pruned = True
            summary["prune"] = {"sparsity": opts.prune, "pattern": opts.sparsity_pattern,
                                "schedule": "constant N:M mask" if pattern else "PolynomialDecay 0 -> target over "
                                "70% of the steps"}
        if "cluster" in phases:
            zeros_before = _kernel_zeros(student)
            wrapped, inits = clustering.wrap(student, opts.cluster, preserve_sparsity=pruned)
            train(wrapped, "cluster")
            student = clustering.strip(wrapped)
            if pruned:
                after = _kernel_zeros(student)
                lost = [f"'{k}' {v:.0%} -> {after.get(k, 0):.0%}" for k, v in zeros_before.items()
                        if after.get(k, 0) < v - 0.01]
                if lost:
                    run_notes.append("clustering lost zeros of the pruned layers: " + ", ".join(lost))
            clustered = True
            summary["cluster"] = {"clusters": opts.cluster, "preserve_sparsity": pruned, "layers": inits}
        if "qat" in phases:
            wrapped = qat.wrap(student, pruned=pruned, clustered=clustered)
            train(wrapped, "qat")
            student = wrapped
            summary["qat"] = {"scheme": "PCQAT" if pruned and clustered else "CQAT" if clustered else
                              "PQAT" if pruned else "QAT"}
        summary["distill"] = {"temperature": opts.temperature, "labels": targets.labels is not None,
                              "weight": opts.distill_weight if targets.labels is not None else 1.0} \
            if opts.distill else None

        # write into a staging folder beside OUT; move into place only when everything worked
        stage = Path(tempfile.mkdtemp(prefix=f".{outp.name}.", dir=outp.parent))
        try:
            staged = stage / f"model{outp.suffix}"
            if not opts.qat:  # an uncompiled rebuild: no training config in the file, no training-only losses
                student = build(from_keras(student))
            _save(student, staged)
            rep = _measure(src, staged, stage, x, xv, yv, teacher, student, steps, on_step, trust_code)
            staged_tfl = stage / "model_int8.tflite"
            os.replace(staged, outp)
            os.replace(staged_tfl, int8_path(outp))
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    notes = list(opts.notes) + run_notes
    if pruned or clustered:
        notes.append("the zeros and shared values are in the int8 weights, but the aot engine (and tflite-micro) "
                     "store int8 weights densely today: the flash gain of --prune / --cluster needs the compact "
                     "weight storage of the aot engine (a separate issue); MACs and flash gains of "
                     "--prune-channels and --rank are real now")
    if val is None:
        notes.append("no --val: quality measured on the --train inputs")
    steps["total"] = round(time.perf_counter() - t_start, 3)
    rep.update({"model": str(src), "out": str(outp), "tflite": str(int8_path(outp)),
                "source_keras": loaded.kind, "methods": summary, "notes": notes, "steps": steps})
    return rep


def _kernel_zeros(model) -> dict[str, float]:
    """The fraction of zero kernel weights per weighted layer."""
    out = {}
    for layer in model.layers:
        ws = [w for w in layer.weights if "kernel" in w.name]
        if ws:
            out[layer.name] = float(np.mean(ws[-1].numpy() == 0))
    return out


def _methods_run(opts: Options) -> set[str]:
    s = set(opts.phases())
    if opts.prune_channels is not None:
        s.add("prune_channels")
    if opts.rank is not None or opts.rank_energy is not None:
        s.add("low_rank")
    s.add("int8")
    return s


_BEFORE: dict[str, bytes] = {}


def _measure(src: Path, staged: Path, stage: Path, x, xv, yv, teacher, student, steps, on_step,
             trust_code: bool = False) -> dict:
    from ..conversion import convert
    from ..graph import load_tflite
    from . import report as R

    if on_step:
        on_step("convert to int8 (before and after)")
    t = time.perf_counter()
    calib = stage / "calib.npz"
    np.savez(calib, x=x[:200])
    import hashlib

    key = hashlib.sha256(src.read_bytes() + np.ascontiguousarray(x[:200]).tobytes()).hexdigest()
    if key in _BEFORE:  # the same source and calibration: the same int8 model (one process)
        (stage / "before_int8.tflite").write_bytes(_BEFORE[key])
    else:
        convert(src, out=stage / "before_int8.tflite", calib=calib, trust_code=trust_code)
        _BEFORE[key] = (stage / "before_int8.tflite").read_bytes()
    convert(staged, out=stage / "model_int8.tflite", calib=calib)
    steps["convert"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    gb, ga = load_tflite(stage / "before_int8.tflite"), load_tflite(stage / "model_int8.tflite")
    lb, la = R.graph_layers(gb), R.graph_layers(ga)
    ref = teacher.predict(xv, batch_size=256, verbose=0)
    scores = {
        "float_before": ref,
        "float_after": student.predict(xv, batch_size=256, verbose=0),
        "int8_before": R.int8_scores((stage / "before_int8.tflite").read_bytes(), gb, xv),
        "int8_after": R.int8_scores((stage / "model_int8.tflite").read_bytes(), ga, xv),
    }
    q = R.quality(R.top1(ref), scores, yv)
    steps["measure"] = round(time.perf_counter() - t, 3)
    return {"layers": {"before": lb, "after": la},
            "totals": {"before": R.totals(gb, lb), "after": R.totals(ga, la)},
            "quality": q}
