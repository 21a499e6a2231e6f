"""Firmware projects: a board + a template + the model's sources -> a folder that builds standalone.

`generate_project(model, board, runtime, out_dir)` renders `templates/<board.template>/`
with Jinja (StrictUndefined: a missing value is an error, never an empty
string) from one typed context (`ProjectContext`), copies the firmware C the
project needs (board layer, runtime adapter, protocol, inference loop, aot
kernels) into it, and writes `tinyedge-project.json`.  Which files a template
renders, for which runtime, and which board-layer files it needs are data in
the template folder's `manifest.toml`, not code here.

The folder is written atomically (`fsutil.staged_dir`) and a non-empty folder
that tinyedge did not make is refused unless `force=True`.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import shutil
import tempfile
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from . import __version__
from .boards import Board, get_board
from .errors import InputFileError, ToolMissingError, UnsupportedOpError, UsageError
from .fsutil import atomic_write_bytes, atomic_write_json, atomic_write_text, staged_dir
from .graph import Graph, is_tflite_bytes, parse_tflite, read_model_bytes
from .resources import firmware_dir, templates_dir

log = logging.getLogger(__name__)

PROJECT_FILE = "tinyedge-project.json"
PROJECT_SCHEMA = 1
PREFIX_RE = re.compile(r"^[a-z][a-z0-9_]{0,30}$")

# TensorFlow Lite Micro for runtime tflm: the pins are tinyedge.sources.SOURCES
# (one table); these are the names the Cortex-M project's FetchContent gives
# them, in the order it declares them.  gemmlowp and ruy come as GitHub zip
# archives of their pinned commits, checked by MD5.
TFLM_PINS = ("tflite-micro", "flatbuffers", "gemmlowp", "ruy", "CMSIS-NN", "CMSIS_6")
_TFLM_ARCHIVE_MD5 = {"gemmlowp": "7e8191b24853d75de2af87622ad293ba", "ruy": "abf7a91eb90d195f016ebe0be885bb6e"}
# The ESP-IDF component that packages TFLM (espressif/esp-tflite-micro, newest release).
ESP_TFLITE_MICRO_VERSION = "1.3.8"
# Arena margin over the size the tflite-micro interpreter measured on this
# host (64-bit pointers make the host's bookkeeping larger, not smaller).
TFLM_ARENA_MARGIN = 1.25
TFLM_ARENA_EXTRA = 2048

# Clock the core runs at after the board layer's init, when it is not the
# board's nominal clock: the real-board HALs leave the PLLs off (see the
# driver files).  Keyed by UART driver, which names the chip family here.
_RESET_CLOCK_HZ = {
    "stm32-lpuart": 4_000_000,    # STM32L4+: MSI 4 MHz after reset
    "stm32-usart": 16_000_000,    # STM32F7: HSI 16 MHz after reset
    "rp2040-pl011": 12_000_000,   # RP2040: the HAL switches clk_sys to the 12 MHz crystal
}
# STM32 alternate-function number of the board's UART pins.
_STM32_AF = {"LPUART1": 8, "USART1": 7}
# TFLM MicroMutableOpResolver method names that plain CamelCase gets wrong.
_TFLM_METHOD_EXCEPTIONS = {"BATCH_MATMUL": "BatchMatMul", "L2_NORMALIZATION": "L2Normalization",
                           "UNIDIRECTIONAL_SEQUENCE_LSTM": "UnidirectionalSequenceLSTM", "CUMSUM": "CumSum",
                           "PADV2": "PadV2"}


# ---------------------------------------------------------------------------
# The typed context every template gets
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class TensorQuant:
    index: int
    suffix: str          # "" for the first input/output, "_<i>" after it
    elements: int
    bytes: int
    scale_c: str         # a C float literal
    scale_text: str
    zero_point: int


@dataclass(frozen=True)
class ModelFacts:
    name: str            # the model's file name
    sha256: str
    sha16: str
    size: int
    inputs: tuple[TensorQuant, ...]
    outputs: tuple[TensorQuant, ...]


@dataclass(frozen=True)
class Hardware:
    """Board facts derived for the C side (te_board.h, linker script)."""

    clock_hz: int
    counter_kind: str    # SYSTICK | DWT | MINSTRET | ESP_CPU | HOST
    counter_mul: int
    counter_div: int
    counts_per_ms: int
    cpu_defines: tuple[str, ...]
    uart_base: str
    uart_clock_hz: int
    uart_port: str
    tx_port: int
    tx_pin: int
    rx_port: int
    rx_pin: int
    uart_af: int
    stack_bytes: int
    flash_origin: str
    ram_origin: str
    boot2: bool          # RP2040: a second-stage boot leads the flash image
    semihosting_exit: bool = False  # an emulator that stops on semihosting SYS_EXIT (QEMU Cortex-M boards)
    exit_base: str | None = None  # an emulator's exit device (TE_BOARD_EXIT_BASE), e.g. QEMU virt's finisher


@dataclass(frozen=True)
class TflmPin:
    """One pinned source as the Cortex-M project's CMake FetchContent declares it."""

    name: str            # tinyedge.sources name ("tflite-micro")
    cmake_name: str      # FetchContent name ("tflite_micro"): FETCHCONTENT_SOURCE_DIR_TFLITE_MICRO
    git_url: str
    ref: str
    url: str             # an archive URL with md5, or "" to clone git_url at ref
    md5: str


@dataclass(frozen=True)
class TflmFacts:
    resolver_methods: tuple[str, ...]   # e.g. ("AddConv2D", ...), one per distinct op
    num_ops: int
    arena_bytes: int
    model_bytes: int
    model_lines: tuple[str, ...]        # the .tflite as C hex, 16 bytes a line
    pins: tuple[TflmPin, ...]           # FetchContent declarations, TFLM first
    kernels: tuple[str, ...]            # kernel source stems (tflm_support.kernel_stems)
    cmsis_nn_folders: tuple[str, ...]   # CMSIS-NN Source/ folders those kernels call
    optimized_kernel_dir: str           # "cmsis_nn", or "" for TFLM's reference kernels
    esp_tflite_micro_version: str
    stateful: bool = False              # variable tensors (recurrent state), reset before each invoke


@dataclass(frozen=True)
class EspFacts:
    idf_target: str
    cpu_freq_mhz: int
    main_stack_bytes: int


@dataclass(frozen=True)
class ProjectContext:
    banner: str
    version: str
    board: Board
    runtime: str
    prefix: str
    model: ModelFacts
    hw: Hardware
    hal_dir: str
    sources: tuple[str, ...]        # C/C++ sources, relative to the project root
    include_dirs: tuple[str, ...]
    tflm: TflmFacts | None
    esp: EspFacts | None


@dataclass(frozen=True)
class TemplateFile:
    template: str
    output: str
    runtimes: tuple[str, ...] | None = None
    requires: str | None = None      # a Hardware field that must be true


@dataclass(frozen=True)
class Manifest:
    name: str
    hal_dir: str
    hal: tuple[str, ...]
    build_system: dict[str, str]
    artifacts: dict[str, str]
    files: tuple[TemplateFile, ...] = field(default_factory=tuple)

    def files_for(self, runtime: str, hw: Hardware | None = None) -> list[TemplateFile]:
        return [f for f in self.files if (f.runtimes is None or runtime in f.runtimes)
                and (f.requires is None or (hw is not None and getattr(hw, f.requires)))]


def load_manifest(template: str) -> Manifest:
    """The manifest of project template `template` (templates/<template>/manifest.toml)."""
    path = templates_dir() / template / "manifest.toml"
    if not path.is_file():
        raise UsageError(f"no project template {template!r} ({path} is missing)",
                         hint="the board file's 'template' key must name a folder of templates/")
    data = tomllib.loads(path.read_text("utf-8"))
    files = tuple(TemplateFile(f["template"], f["output"], tuple(f["runtimes"]) if "runtimes" in f else None,
                               f.get("requires"))
                  for f in data.get("file", []))
    return Manifest(name=template, hal_dir=data["hal_dir"], hal=tuple(data["hal"]),
                    build_system=dict(data["build_system"]), artifacts=dict(data.get("artifacts", {})),
                    files=files)


# ---------------------------------------------------------------------------
# Jinja
# ---------------------------------------------------------------------------

_CTRL = re.compile(r"[\x00-\x1f\x7f]")


def _text(value: Any) -> str:
    """Free text (names from user files) made safe for a comment in C, Make, CMake or YAML."""
    s = _CTRL.sub(" ", str(value))
    return s.replace("*/", "* /").replace("/*", "/ *").replace("-->", "- ->")


def c_string(value: Any) -> str:
    """A C string literal (quotes included) holding `value`, every unsafe byte escaped."""
    out = []
    for b in str(value).encode("utf-8"):
        ch = chr(b)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= b < 0x7F and ch != "?":  # '?' escaped against trigraphs
            out.append(ch)
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'


@cache
def _env():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["c_string"] = c_string
    env.filters["text"] = _text
    return env


def render_template(name: str, ctx: ProjectContext) -> str:
    """Render one template with the project context (StrictUndefined)."""
    import jinja2

    try:
        return _env().get_template(name).render(**{f: getattr(ctx, f) for f in ctx.__dataclass_fields__})
    except jinja2.UndefinedError as e:
        raise RuntimeError(f"template {name}: {e}") from e


# ---------------------------------------------------------------------------
# Context building
# ---------------------------------------------------------------------------

def _c_float(x: float) -> str:
    r = repr(float(x))
    if "e" not in r and "." not in r:
        r += ".0"
    return r + "f"


def _quant(t, i: int) -> TensorQuant:
    if t.scale is None or len(t.scale) == 0:
        scale, zp = 1.0, 0
    else:
        scale, zp = float(t.scale[0]), int(t.zero_point[0])
    return TensorQuant(index=i, suffix="" if i == 0 else f"_{i}", elements=t.num_elements, bytes=t.nbytes,
                       scale_c=_c_float(scale), scale_text=f"{scale:.9g}", zero_point=zp)


def model_facts(graph: Graph, name: str) -> ModelFacts:
    return ModelFacts(
        name=name, sha256=graph.sha256, sha16=graph.sha256[:16], size=graph.size_bytes,
        inputs=tuple(_quant(t, i) for i, t in enumerate(graph.input_tensors)),
        outputs=tuple(_quant(t, i) for i, t in enumerate(graph.output_tensors)),
    )


def _pin(pin: str | None) -> tuple[int, int]:
    """(port, pin) of a pin name: 'PG7' -> (6, 7), 'P0.06' -> (0, 6), 'GP1' -> (0, 1)."""
    if not pin:
        return 0, 0
    m = re.fullmatch(r"P([A-K])(\d+)", pin)
    if m:
        return ord(m.group(1)) - ord("A"), int(m.group(2))
    m = re.fullmatch(r"P(\d+)\.(\d+)", pin)
    if m:
        return int(m.group(1)), int(m.group(2))
    m = re.fullmatch(r"GP(\d+)", pin)
    if m:
        return 0, int(m.group(1))
    raise UsageError(f"cannot read pin name {pin!r}", hint="use PG7, P0.06 or GP0 style names")


def hardware_facts(board: Board) -> Hardware:
    counter = board.cycle_counter
    clock = board.clock_hz
    if board.family == "cortex-m":
        clock = _RESET_CLOCK_HZ.get(board.uart.driver, board.clock_hz)
    mul, div = 1, 1
    if board.family == "riscv":
        # the minstret CSR: instructions; under QEMU -icount shift=0 one per ns of virtual time
        kind = "MINSTRET"
        per_ms = 1_000_000 if counter == "qemu-icount" else clock // 1000
    elif counter == "qemu-icount":
        kind = "SYSTICK"
        g = math.gcd(1_000_000_000, clock)
        mul, div = 1_000_000_000 // g, clock // g
        per_ms = 1_000_000  # -icount shift=0: one instruction per ns of virtual time
    elif counter == "systick":
        kind, per_ms = "SYSTICK", clock // 1000
    elif counter == "dwt":
        kind, per_ms = "DWT", clock // 1000
    elif counter == "esp-cpu":
        kind, per_ms = "ESP_CPU", clock // 1000
    else:
        kind, per_ms = "HOST", 1_000_000
    cpu_defines = [f"TE_BOARD_CPU_{re.sub(r'[^A-Z0-9]', '_', board.cpu.upper())}"]
    if board.fpu:
        cpu_defines.append("TE_BOARD_HAS_FPU")
    tx = _pin(board.uart.tx_pin)
    rx = _pin(board.uart.rx_pin)
    mem = board.memory
    stack = mem.stack_bytes if mem else 16384
    return Hardware(
        clock_hz=clock, counter_kind=kind, counter_mul=mul, counter_div=div, counts_per_ms=per_ms,
        cpu_defines=tuple(cpu_defines),
        uart_base=f"0x{board.uart.base or 0:08X}",
        uart_clock_hz=board.uart.clock_hz or clock,
        uart_port=board.uart.instance if board.family == "esp32" and board.uart.instance else "0",
        tx_port=tx[0], tx_pin=tx[1], rx_port=rx[0], rx_pin=rx[1],
        uart_af=_STM32_AF.get(board.uart.instance or "", 0),
        stack_bytes=stack,
        flash_origin=f"0x{mem.flash_origin:08X}" if mem else "0x00000000",
        ram_origin=f"0x{mem.ram_origin:08X}" if mem else "0x00000000",
        boot2=board.family == "cortex-m" and board.uart.driver == "rp2040-pl011",
        exit_base=f"0x{mem.exit_base:08X}" if mem and mem.exit_base is not None else None,
        semihosting_exit=board.family == "cortex-m" and board.is_qemu,
    )


def tflm_resolver_method(opcode: str) -> str:
    """The MicroMutableOpResolver method that registers builtin `opcode` (CONV_2D -> AddConv2D)."""
    if opcode.startswith("CUSTOM:") or opcode.startswith("UNKNOWN"):
        raise UnsupportedOpError(f"runtime 'tflm' projects cannot register op {opcode}", op=opcode,
                                 hint="use builtin ops only, or runtime aot")
    # CONV_2D -> Conv2D, BATCH_TO_SPACE_ND -> BatchToSpaceNd: a part that starts with a digit stays as is.
    name = _TFLM_METHOD_EXCEPTIONS.get(opcode) or "".join(
        p if p[:1].isdigit() else p.capitalize() for p in opcode.split("_"))
    return "Add" + name


def tflm_arena_bytes(tflite: bytes) -> int:
    """Arena size for runtime tflm: measured with the tflite-micro interpreter, plus a margin."""
    from .analyze import tflm_arena_bytes as measure  # a worker process: a crash there is an error

    measured = int(measure(tflite))
    need = int(measured * TFLM_ARENA_MARGIN) + TFLM_ARENA_EXTRA
    return (need + 15) // 16 * 16


def tflm_pins() -> tuple[TflmPin, ...]:
    """The FetchContent declarations of the tflm project's sources, from tinyedge.sources.SOURCES."""
    from .sources import get_source

    pins = []
    for name in TFLM_PINS:
        src = get_source(name)
        md5 = _TFLM_ARCHIVE_MD5.get(name, "")
        url = f"https://github.com/{src.repo}/archive/{src.ref}.zip" if md5 else ""
        pins.append(TflmPin(name=name, cmake_name=name.lower().replace("-", "_"), git_url=src.git_url,
                            ref=src.ref, url=url, md5=md5))
    return tuple(pins)


def render_library_cmake() -> str:
    """The CMakeLists.txt of a build of the TFLM library alone (tinyedge.tflm_library)."""
    return _env().get_template("tflm/library.cmake.j2").render(
        banner=f"generated by tinyedge {__version__}, do not edit")


def tflm_optimized_kernel_dir(board: Board) -> str:
    """TFLM's OPTIMIZED_KERNEL_DIR for `board`: cmsis_nn on Cortex-M (its DSP, MVE or plain-C paths)."""
    return "cmsis_nn" if board.family == "cortex-m" else ""


def tflm_facts(graph: Graph, tflite: bytes, board: Board | None = None) -> TflmFacts:
    from .tflm_support import cmsis_nn_folders, kernel_stems

    methods = []
    for op in graph.ops:
        m = tflm_resolver_method(op.opcode)
        if m not in methods:
            methods.append(m)
    lines = tuple(", ".join(f"0x{b:02x}" for b in tflite[i:i + 16]) + ","
                  for i in range(0, len(tflite), 16))
    kernels = kernel_stems(op.opcode for op in graph.ops)
    optimized = tflm_optimized_kernel_dir(board) if board is not None else ""
    return TflmFacts(
        resolver_methods=tuple(methods), num_ops=len(methods), arena_bytes=tflm_arena_bytes(tflite),
        model_bytes=len(tflite), model_lines=lines, pins=tflm_pins(), kernels=kernels,
        cmsis_nn_folders=cmsis_nn_folders(kernels) if optimized else (), optimized_kernel_dir=optimized,
        esp_tflite_micro_version=ESP_TFLITE_MICRO_VERSION,
        stateful=any(t.is_variable for t in graph.tensors),
    )


def esp_facts(board: Board, model: ModelFacts, runtime: str) -> EspFacts:
    io = max([t.bytes for t in (*model.inputs, *model.outputs)] or [0])
    from .runtimes import get_runtime

    stack = 8192 + get_runtime(runtime).extra_stack_bytes + io
    stack = (stack + 1023) // 1024 * 1024
    target = board.flash.esptool_chip or board.id
    return EspFacts(idf_target=target, cpu_freq_mhz=board.clock_hz // 1_000_000, main_stack_bytes=stack)


# ---------------------------------------------------------------------------
# Firmware sources copied into the project
# ---------------------------------------------------------------------------

# Folders of firmware/ every project takes whole (the serial-link issue's
# protocol and inference loop).
_SHARED_FIRMWARE = ("include", "proto", "app")


# The host protocols a firmware can speak -> the folder holding its te_app_run().
PROTOCOLS = {"tinyedge": "app", "mlperf": "mlperf"}


def _shared_firmware(runtime: str, protocol: str = "tinyedge") -> list[Path]:
    """Files of firmware/ that every project of `runtime` needs (besides the HAL and kernels)."""
    fw = firmware_dir()
    files: list[Path] = []
    subs = [s for s in _SHARED_FIRMWARE if s != "app"] + [PROTOCOLS[protocol]]
    for sub in subs:
        d = fw / sub
        if not d.is_dir():
            if sub != "include":
                raise ToolMissingError(f"tinyedge firmware folder firmware/{sub}",
                                       "this tinyedge checkout is incomplete; update it")
            continue
        files += sorted(p for p in d.rglob("*") if p.is_file() and p.suffix in (".c", ".h"))
    from .runtimes import get_runtime

    for rel in get_runtime(runtime).firmware:
        adapter = fw / rel
        if not adapter.is_file():
            raise ToolMissingError(f"tinyedge firmware file firmware/{rel}",
                                   "this tinyedge checkout is incomplete; update it")
        files.append(adapter)
    return files


def _engine(runtime: str):
    """The module that writes the model's C for `runtime` (None when the runtime has none)."""
    from .runtimes import get_runtime

    rt = get_runtime(runtime)
    if rt.engine is None:
        return None
    try:
        engine = rt.engine_module()
    except ImportError as e:  # pragma: no cover - the package ships it
        raise ToolMissingError(rt.engine, "reinstall tinyedge") from e
    for fn in ("generate_model_sources", "kernel_sources", "include_dirs"):
        if not hasattr(engine, fn):
            raise ToolMissingError(f"{rt.engine}.{fn}", "this tinyedge checkout is incomplete; update it")
    return engine


def _copy_firmware(src: Path, stage: Path) -> str:
    """Copy one firmware file to the same path under <project>/firmware/; return its relative path."""
    fw = firmware_dir().resolve()
    src = src.resolve()
    try:
        rel = Path("firmware") / src.relative_to(fw)
    except ValueError:
        rel = Path("firmware") / "extra" / src.name
    dst = stage / rel
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return rel.as_posix()


def _sources_and_includes(stage: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Every C/C++ source and every folder holding a header, in a stable order."""
    order = {"src": 0, "firmware": 1, "model": 2, "main": 3}
    srcs, incs = [], set()
    for p in stage.rglob("*"):
        if not p.is_file():
            continue
        rel = p.relative_to(stage)
        if rel.parts[0] in ("build", "main"):
            continue
        if p.suffix in (".c", ".cc"):
            srcs.append(rel)
        elif p.suffix == ".h":
            incs.add(rel.parent)

    def key(r: Path):
        return (order.get(r.parts[0], 9), r.as_posix())

    return (tuple(r.as_posix() for r in sorted(srcs, key=key)),
            tuple(r.as_posix() for r in sorted(incs, key=key)))


# ---------------------------------------------------------------------------
# The public entry
# ---------------------------------------------------------------------------

def _load_model(model: os.PathLike | str, tmp: Path, convert_options: dict | None = None) -> tuple[Path, bytes]:
    """(source path, .tflite bytes); a Keras model is converted first."""
    path = Path(model).expanduser().resolve()
    data = read_model_bytes(path) if path.is_file() else None
    if data is not None and is_tflite_bytes(data):
        return path, data
    if not path.exists():
        raise InputFileError(f"{path} does not exist", path=path, hint="check the model path")
    try:
        from .conversion import convert
    except ImportError:
        raise InputFileError(f"{path} is not a .tflite file", path=path,
                             hint="convert it first with 'tinyedge convert'") from None
    log.info("converting %s to full-int8 TFLite", path)
    result = convert(path, out=tmp / (path.stem + "_int8.tflite"), **(convert_options or {}))
    if result.tflite_bytes is not None:
        return path, result.tflite_bytes
    return path, Path(result.tflite_path).read_bytes()


def _runtime_facts(runtime: str, graph: Graph, tflite: bytes, board: Board):
    from .runtimes import get_runtime

    facts = get_runtime(runtime).resolve("project_facts")
    return facts(graph, tflite, board) if facts else None


def project_context(board: Board, runtime: str, graph: Graph, tflite: bytes, model_name: str,
                    prefix: str, sources: tuple[str, ...] = (), include_dirs: tuple[str, ...] = ()
                    ) -> ProjectContext:
    import dataclasses

    manifest = load_manifest(board.template)
    model = model_facts(graph, model_name)
    hw = hardware_facts(board)
    esp = esp_facts(board, model, runtime) if board.family == "esp32" else None
    if esp is not None:  # one stack fact: te_board.h says the main task's stack that sdkconfig.defaults sets
        hw = dataclasses.replace(hw, stack_bytes=esp.main_stack_bytes)
    return ProjectContext(
        banner=f"generated by tinyedge {__version__}, do not edit; source model sha256 {graph.sha256}",
        version=__version__, board=board, runtime=runtime, prefix=prefix, model=model,
        hw=hw, hal_dir=manifest.hal_dir, sources=sources, include_dirs=include_dirs,
        tflm=_runtime_facts(runtime, graph, tflite, board), esp=esp,
    )


def generate_project(model: os.PathLike | str, board: Board | str | None = None, runtime: str = "aot",
                     out_dir: os.PathLike | str = "project", *, force: bool = False,
                     prefix: str = "te_model", convert_options: dict | None = None,
                     protocol: str = "tinyedge", weights: str = "auto", schedule: str = "auto") -> Path:
    """Render a complete firmware project for `model` on `board` into `out_dir`; return its path.

    MODEL is a .tflite (full-int8) or a Keras model, converted first (with `convert_options`, the
    keyword arguments of `tinyedge.conversion.convert`, such as calib and trust_code).  The
    project builds standalone with the board's own tools (`build_project`).
    `protocol` is what the firmware speaks on the UART: `tinyedge` (the framed
    protocol of tinyedge.link) or `mlperf` (the MLPerf Tiny / EEMBC runner's).
    `schedule` (aot): `auto` streams stages row by row where that lowers the arena, `layer` runs
    op by op (tinyedge.stream).
    """
    if protocol not in PROTOCOLS:
        raise UsageError(f"unknown protocol {protocol!r}", hint=f"use one of: {', '.join(PROTOCOLS)}")
    if protocol == "mlperf" and (board.family == "host" if isinstance(board, Board) else board == "host"):
        raise UsageError("the host board serves the tinyedge protocol only",
                         hint="use a qemu-* board (or a real one) for --protocol mlperf")
    board = board if isinstance(board, Board) else get_board(board)
    if runtime not in board.runtimes:
        raise UsageError(f"board {board.id} does not support runtime {runtime!r}",
                         hint=f"use one of: {', '.join(board.runtimes)}")
    if not PREFIX_RE.match(prefix):
        raise UsageError(f"prefix {prefix!r} is not a valid C identifier prefix",
                         hint="use lower-case letters, digits and '_', starting with a letter")
    from .runtimes import get_runtime

    if get_runtime(runtime).kind != "firmware":
        raise UsageError(f"runtime {runtime!r} makes no firmware project",
                         hint=f"generate its package with 'tinyedge generate MODEL -b {board.id} -r {runtime} -o DIR'")
    if get_runtime(runtime).engine is not None and prefix != "te_model":
        # firmware/runtime/te_runtime_aot.c forwards to te_model_*; another prefix is for
        # model sources used outside a tinyedge project (tinyedge generate without --board).
        raise UsageError(f"a firmware project's model uses the prefix te_model, not {prefix!r}",
                         hint="drop --prefix, or generate just the model sources (without --board)")
    manifest = load_manifest(board.template)
    if runtime not in manifest.build_system:
        raise UsageError(f"template {board.template!r} cannot build runtime {runtime!r} projects",
                         hint=f"use one of: {', '.join(manifest.build_system)}")

    with tempfile.TemporaryDirectory(prefix="tinyedge-model-") as tmp:
        model_path, tflite = _load_model(model, Path(tmp), convert_options)
    graph = parse_tflite(tflite, path=model_path)
    try:
        from .runtimes import require_supported

        require_supported(graph, runtime)
    except ImportError:
        log.debug("no op check for runtime %s yet", runtime)

    aot = _engine(runtime)
    uart = board.uart.driver.replace("-", "_")
    with staged_dir(out_dir, force=force, what=f"tinyedge project ({board.id}, {runtime})") as stage:
        fw = firmware_dir()
        for rel in manifest.hal:
            src = fw / rel.replace("{uart_driver}", uart)
            if not src.is_file():
                raise ToolMissingError(f"board layer file firmware/{rel}", "this tinyedge checkout is incomplete")
            _copy_firmware(src, stage)
        for src in _shared_firmware(runtime, protocol):
            _copy_firmware(src, stage)
        if protocol == "mlperf":
            from .mlperf import firmware_facts

            atomic_write_text(stage / "src" / "te_mlperf.h", _env().get_template("common/te_mlperf.h.j2").render(
                banner=f"generated by tinyedge {__version__}, do not edit; source model sha256 {graph.sha256}",
                mlperf=firmware_facts(graph)))
        if aot is not None:
            for src in aot.kernel_sources():
                _copy_firmware(Path(src), stage)
            for d in aot.include_dirs():
                for h in sorted(Path(d).rglob("*.h")):
                    _copy_firmware(h, stage)
            (stage / "model").mkdir()
            model_copy = stage / "model" / "model.tflite"
            atomic_write_bytes(model_copy, tflite)
            from .aot.codegen import has_arm_dsp

            aot.generate_model_sources(model_copy, stage / "model", prefix=prefix, weights=weights,
                                       arm_dsp=has_arm_dsp(board), mve=bool(board.mve),
                                       **({"schedule": schedule} if schedule != "auto" else {}))
        else:
            atomic_write_bytes(stage / "model" / "model.tflite", tflite)
        # Every output of the templates, rendered once without the source list
        # to place the sources, then with it.
        ctx = project_context(board, runtime, graph, tflite, model_path.name, prefix)
        outputs = manifest.files_for(runtime, ctx.hw)
        for f in outputs:
            if f.output.endswith((".c", ".cc", ".h")):
                atomic_write_text(stage / f.output, render_template(f.template, ctx))
        sources, incs = _sources_and_includes(stage)
        ctx = project_context(board, runtime, graph, tflite, model_path.name, prefix, sources, incs)
        for f in outputs:
            atomic_write_text(stage / f.output, render_template(f.template, ctx))
        atomic_write_json(stage / PROJECT_FILE, {
            "schema": PROJECT_SCHEMA,
            "generated_by": f"tinyedge {__version__}",
            "board": board.id,
            "runtime": runtime,
            "template": board.template,
            "build_system": manifest.build_system[runtime],
            "prefix": prefix,
            "protocol": protocol,
            "model": {"path": str(model_path), "copy": "model/model.tflite", "sha256": graph.sha256,
                      "bytes": len(tflite)},
            "artifacts": manifest.artifacts,
            "tinyedge_version": __version__,
        })
    final = Path(out_dir).expanduser().resolve()
    log.info("generated %s project for %s in %s", runtime, board.id, final)
    return final


def read_project(folder: os.PathLike | str) -> dict:
    """The tinyedge-project.json of a generated project (InputFileError when absent or broken)."""
    import json

    folder = Path(folder).expanduser().resolve()
    f = folder / PROJECT_FILE
    if not f.is_file():
        raise InputFileError(f"{folder} is not a tinyedge project (no {PROJECT_FILE})", path=folder,
                             hint="make one with 'tinyedge generate MODEL --board B -o DIR'")
    try:
        data = json.loads(f.read_text("utf-8"))
    except (OSError, ValueError) as e:
        raise InputFileError(f"{f} is not readable JSON ({e})", path=f) from None
    for key in ("board", "runtime", "build_system"):
        if key not in data:
            raise InputFileError(f"{f} lacks key {key!r}", path=f, hint="generate the project again")
    return data


def content_hash(folder: os.PathLike | str) -> str:
    """sha256 over a project's files (names and bytes), build/ excluded: the key of a build cache."""
    folder = Path(folder)
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if not p.is_file() or rel.parts[0] == "build" or rel.name == PROJECT_FILE:
            continue
        h.update(rel.as_posix().encode() + b"\0")
        h.update(p.read_bytes())
    return h.hexdigest()


__all__ = ["generate_project", "read_project", "render_template", "project_context", "ProjectContext",
           "load_manifest", "c_string", "tflm_resolver_method", "tflm_arena_bytes", "content_hash"]
