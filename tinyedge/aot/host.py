"""The generated aot C built for the host and run from Python.

`HostModel(tflite)` generates model.c/model.h, compiles them with the
kernels using the system C compiler into a shared library (cached by a hash
of every source byte and flag), and loads it with ctypes.  With
`sanitize=True` it builds an executable with AddressSanitizer and
UndefinedBehaviorSanitizer (`-fno-sanitize-recover=all`) instead and runs
inferences through a pipe, so a sanitizer report fails loudly.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import BuildError, ModelError, ToolMissingError
from ..graph import Graph, load_tflite
from ..resources import templates_dir
from . import include_dirs, kernel_sources
from .codegen import render

log = logging.getLogger(__name__)

SANITIZE_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"]
WARN_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror"]


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tinyedge" / "aot"


def find_cc() -> str:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    raise ToolMissingError("a C compiler (cc)", "install gcc or clang (Debian: apt-get install build-essential)")


class _TensorInfo(ctypes.Structure):
    _fields_ = [("dtype", ctypes.c_uint8), ("rank", ctypes.c_uint8), ("dims", ctypes.c_int32 * 6),
                ("bytes", ctypes.c_uint32), ("scale", ctypes.c_float), ("zero_point", ctypes.c_int32)]


class _ModelInfo(ctypes.Structure):
    _fields_ = [("runtime", ctypes.c_char_p), ("model_sha256", ctypes.c_uint8 * 32),
                ("arena_bytes", ctypes.c_uint32), ("num_inputs", ctypes.c_uint8), ("num_outputs", ctypes.c_uint8),
                ("inputs", ctypes.POINTER(_TensorInfo)), ("outputs", ctypes.POINTER(_TensorInfo))]


def _build(files: dict[str, str], cache_dir: Path, cc: str, flags: list[str], kind: str) -> Path:
    """Compile the generated files + kernels (+ host driver for executables); cached by content hash."""
    srcs = {name: text.encode() for name, text in files.items()}
    extra = [*kernel_sources()]
    if kind == "exe":
        extra.append(templates_dir() / "aot" / "host_main.c")
    headers = [p for d in include_dirs() for p in sorted(d.glob("*.h"))]
    h = hashlib.sha256()
    for name in sorted(srcs):
        h.update(name.encode() + b"\0" + srcs[name] + b"\0")
    for p in extra + headers:
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    h.update(" ".join([cc, kind, *flags]).encode())
    key = h.hexdigest()[:24]
    out = cache_dir / key / ("model.so" if kind == "so" else "model.exe")
    if out.exists():
        return out
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=cache_dir))
    try:
        for name, data in srcs.items():
            (work / name).write_bytes(data)
        target = work / out.name
        cmd = [cc, *WARN_FLAGS, *flags, *[f"-I{d}" for d in include_dirs()], f"-I{work}",
               *[str(work / n) for n in sorted(srcs) if n.endswith(".c")], *map(str, extra), "-o", str(target)]
        if kind == "so":
            cmd[1:1] = ["-shared", "-fPIC"]
        log.debug("aot host build: %s", " ".join(cmd))
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise BuildError(f"host build of the generated C failed:\n{r.stderr.strip()[:4000]}")
        final = cache_dir / key
        try:
            os.replace(work, final)
        except OSError:  # another process won the race: use its build
            shutil.rmtree(work, ignore_errors=True)
        return out
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def _view(addr: int, t) -> np.ndarray:
    """The arena bytes of I/O tensor `t` at `addr`, as an array of its dtype."""
    raw = np.ctypeslib.as_array((ctypes.c_uint8 * t.nbytes).from_address(addr))
    return raw.view(np.dtype(t.dtype))


def _checked_input(x, t) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype != np.dtype(t.dtype):
        raise ModelError(f"input must be {t.dtype}, got {x.dtype}")
    if x.size != t.num_elements:
        raise ModelError(f"input has {x.size} values, the model takes {t.num_elements}")
    return np.ascontiguousarray(x.reshape(-1))


class HostModel:
    """A generated aot model compiled for the host.

    `invoke(x) -> y` for single-input, single-output models (in the model's I/O dtypes: int8, float32
    at float edges, int32 indices);
    `info` (dict), `arena_bytes`, `const_bytes`, `source_files` (rendered text).
    """

    def __init__(self, tflite, *, cache_dir: os.PathLike | str | None = None, sanitize: bool = False,
                 opt: str = "-O3", cc: str | None = None, prefix: str = "te_model", weights: str = "auto",
                 scratch_cap: int | None = None, schedule: str = "auto", arm_dsp: bool = True):
        graph = tflite if isinstance(tflite, Graph) else load_tflite(tflite)
        self.graph = graph
        # arm_dsp=True (the default, for the tests): the Cortex-M DSP kernels' weight layouts and
        # storage choices, run through their portable C; False: what a board without the DSP
        # extension gets (the host board, RISC-V), the host's fast configuration
        self.files, ctx = render(graph, prefix, weights, scratch_cap, arm_dsp=arm_dsp, schedule=schedule)
        self.stages = ctx["stages"]
        self.layer_arena_bytes = ctx["layer_arena_bytes"]
        self.storage = ctx["storage"]
        if prefix != "te_model" and sanitize:
            raise ModelError("sanitizer builds use the default prefix te_model")
        self.arena_bytes = ctx["arena_bytes"]
        self.const_bytes = ctx["const_bytes"]
        self.peak_live_bytes = ctx["peak_live_bytes"]
        self.sanitize = sanitize
        self.prefix = prefix
        self._in = [graph.tensors[t] for t in graph.inputs]
        self._out = [graph.tensors[t] for t in graph.outputs]
        cc = cc or find_cc()
        cache = Path(cache_dir) if cache_dir else default_cache_dir()
        flags = opt.split() + (SANITIZE_FLAGS if sanitize else [])
        self.path = _build(self.files, cache, cc, flags, "exe" if sanitize else "so")
        self._lib = None
        if not sanitize:
            lib = ctypes.CDLL(str(self.path))
            for fn in ("init", "invoke"):
                getattr(lib, f"{prefix}_{fn}").restype = ctypes.c_int
            getattr(lib, f"{prefix}_input").restype = ctypes.c_void_p
            getattr(lib, f"{prefix}_input").argtypes = [ctypes.c_uint32]
            getattr(lib, f"{prefix}_output").restype = ctypes.c_void_p
            getattr(lib, f"{prefix}_output").argtypes = [ctypes.c_uint32]
            st = getattr(lib, f"{prefix}_init")()
            if st != 0:
                raise BuildError(f"{prefix}_init returned status {st}")
            self._lib = lib
            # the I/O buffers live at fixed arena offsets: resolve them once
            self._invoke_fn = getattr(lib, f"{prefix}_invoke")
            self._in_ptr = getattr(lib, f"{prefix}_input")(0) if self._in else None
            if self._out:
                optr = getattr(lib, f"{prefix}_output")(0)
                self._out_view = _view(optr, self._out[0])
        self.info = self._read_info() if self._lib else self._ctx_info(ctx)

    def _ctx_info(self, ctx) -> dict:
        def t(d):
            return {"dims": d["dims"], "bytes": d["bytes"], "scale": float(d["scale"]), "zero_point": d["zero_point"]}
        return {"runtime": "aot", "model_sha256": ctx["sha256"], "arena_bytes": ctx["arena_bytes"],
                "inputs": [t(d) for d in ctx["inputs"]], "outputs": [t(d) for d in ctx["outputs"]]}

    def _read_info(self) -> dict:
        mi = _ModelInfo.in_dll(self._lib, f"{self.prefix}_info")

        def t(ti):
            return {"dims": list(ti.dims[: ti.rank]) or [1], "bytes": ti.bytes, "scale": float(ti.scale),
                    "zero_point": ti.zero_point}
        return {"runtime": mi.runtime.decode(), "model_sha256": bytes(mi.model_sha256).hex(),
                "arena_bytes": mi.arena_bytes,
                "inputs": [t(mi.inputs[i]) for i in range(mi.num_inputs)],
                "outputs": [t(mi.outputs[i]) for i in range(mi.num_outputs)]}

    def _check_x(self, x) -> np.ndarray:
        return _checked_input(x, self._in[0])

    def invoke(self, x) -> np.ndarray:
        """One inference: the input in the model's input dtype (int8, or float32 for a model with float
        I/O; any shape with the right size) -> the output in the model's dtype and shape."""
        if len(self._in) != 1 or len(self._out) != 1:
            raise ModelError("HostModel.invoke runs single-input, single-output models")
        if self.sanitize:
            return self.invoke_many([x])[0]
        x = self._check_x(x)
        ctypes.memmove(self._in_ptr, x.ctypes.data, x.nbytes)
        st = self._invoke_fn()
        if st != 0:
            raise ModelError(f"{self.prefix}_invoke returned status {st}")
        return self._out_view.copy().reshape(self._out[0].shape)

    def invoke_many(self, xs) -> list[np.ndarray]:
        if not self.sanitize:
            return [self.invoke(x) for x in xs]
        data = b"".join(self._check_x(x).tobytes() for x in xs)
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:halt_on_error=1",
                   UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1")
        r = subprocess.run([str(self.path)], input=data, capture_output=True, timeout=600, env=env)
        if r.returncode != 0 or r.stderr:
            raise BuildError(f"sanitized model run failed (exit {r.returncode}):\n"
                             f"{r.stderr.decode(errors='replace')[:4000]}")
        out = self._out[0]
        n = out.nbytes
        if len(r.stdout) != n * len(xs):
            raise BuildError(f"sanitized model wrote {len(r.stdout)} bytes, expected {n * len(xs)}")
        return [np.frombuffer(r.stdout[i * n:(i + 1) * n], dtype=np.dtype(out.dtype)).reshape(out.shape).copy()
                for i in range(len(xs))]


class HostModelSet:
    """Several generated aot models in one shared library: the kernels compile once for all of
    them (what the op-coverage tests use to run dozens of one-layer models).  `models[k]` has
    `graph` and `invoke(x_int8) -> y_int8` like HostModel (single input, single output), and
    `context` (build_context's).  `options`: per model, more keyword arguments of build_context
    (schedule, arm_dsp, weights)."""

    def __init__(self, tflites, *, cache_dir: os.PathLike | str | None = None, opt: str = "-O2",
                 cc: str | None = None, options: list[dict] | None = None):
        from .codegen import _env, build_context

        graphs = [t if isinstance(t, Graph) else load_tflite(t) for t in tflites]
        files: dict[str, str] = {}
        contexts = []
        for k, g in enumerate(graphs):
            ctx = build_context(g, f"te_m{k}", **(options[k] if options else {}))
            contexts.append(ctx)
            ctx["header"] = f"te_m{k}.h"
            env = _env()
            files[f"te_m{k}.c"] = env.get_template("model.c.j2").render(**ctx)
            files[f"te_m{k}.h"] = env.get_template("model.h.j2").render(**ctx)
        cache = Path(cache_dir) if cache_dir else default_cache_dir()
        self.path = _build(files, cache, cc or find_cc(), opt.split(), "so")
        lib = ctypes.CDLL(str(self.path))
        self.models = [_SetMember(lib, f"te_m{k}", g) for k, g in enumerate(graphs)]
        for m, ctx in zip(self.models, contexts, strict=True):
            m.context = ctx


class _SetMember:
    def __init__(self, lib, prefix: str, graph: Graph):
        self.graph = graph
        self._in = graph.tensors[graph.inputs[0]]
        self._out = graph.tensors[graph.outputs[0]]
        for fn in ("init", "invoke"):
            getattr(lib, f"{prefix}_{fn}").restype = ctypes.c_int
        for fn in ("input", "output"):
            getattr(lib, f"{prefix}_{fn}").restype = ctypes.c_void_p
            getattr(lib, f"{prefix}_{fn}").argtypes = [ctypes.c_uint32]
        if getattr(lib, f"{prefix}_init")() != 0:
            raise BuildError(f"{prefix}_init failed")
        self._invoke = getattr(lib, f"{prefix}_invoke")
        self._in_ptr = getattr(lib, f"{prefix}_input")(0)
        optr = getattr(lib, f"{prefix}_output")(0)
        self._out_view = _view(optr, self._out)

    def invoke(self, x) -> np.ndarray:
        x = _checked_input(np.asarray(x, dtype=np.int8) if self._in.dtype == "int8" else x, self._in)
        ctypes.memmove(self._in_ptr, x.ctypes.data, x.nbytes)
        st = self._invoke()
        if st != 0:
            raise ModelError(f"invoke returned status {st}")
        return self._out_view.copy().reshape(self._out.shape)
