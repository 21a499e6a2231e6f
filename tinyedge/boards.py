"""Board registry: one TOML file per board, validated on load.

A board is data, not code (as Zephyr keeps `board.yml`).  The shipped boards
live in the package's `boards/` folder; users add their own with
`--boards-dir DIR` or the `TINYEDGE_BOARDS_DIR` environment variable (a
`os.pathsep`-separated list).  A user board with the id of a shipped one
replaces it.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from .errors import BoardError
from .resources import boards_dir
from .runtimes import RUNTIMES

ENV_VAR = "TINYEDGE_BOARDS_DIR"
DEFAULT_BOARD = "qemu-cortex-m4"

FAMILIES = ("cortex-m", "riscv", "esp32", "host", "micropython")
# counter id -> the unit it measures.  Latency is always reported with its unit.
CYCLE_COUNTERS = {
    "dwt": "cycles",          # Cortex-M3/M4/M7/M33/M55 DWT CYCCNT
    "systick": "cycles",      # Cortex-M0+ (no DWT): SysTick at the core clock, overflow counted
    "esp-cpu": "cycles",      # esp_cpu_get_cycle_count()
    "qemu-icount": "instructions",  # QEMU -icount shift=0: SysTick ticks count instructions
    "host": "ns",             # host build: monotonic clock
    "mp-ticks-us": "us",      # MicroPython time.ticks_us() (a port whose ticks_cpu is no cycle count)
}
UART_DRIVERS = ("cmsdk", "stm32-usart", "stm32-lpuart", "nrf-uarte", "rp2040-pl011", "ns16550", "esp-idf", "stdio")
FLASH_METHODS = ("qemu", "esptool", "pyocd", "stm32-serial", "uf2", "host", "mpremote")
MP_ARCHS = ("x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp", "xtensa",
            "xtensawin", "rv32imc", "rv64imc")
QEMU_SYSTEMS = ("arm", "riscv32")
MP_TICKS = ("ticks_cpu", "ticks_us")
MP_EMULATORS = ("unix", "qemu")

# Schema: key -> (type or tuple of types, required).  Nested tables have their own.
_TOP = {
    "id": (str, True),
    "name": (str, True),
    "family": (str, True),
    "cpu": (str, True),
    "arch": (str, True),
    "march": (str, False),           # RISC-V: the ISA string of -march (rv32imc_zicsr_zifencei)
    "mabi": (str, False),            # RISC-V: the -mabi (ilp32)
    "cflags": (list, True),
    "clock_hz": (int, True),
    "flash_bytes": (int, True),
    "ram_bytes": (int, True),
    "runtimes": (list, True),
    "cycle_counter": (str, True),
    "template": (str, True),
    "emulated": (bool, False),
    "fpu": (bool, False),
    "dsp": (bool, False),
    "mve": (bool, False),
    "description": (str, False),
    "memory": (dict, False),
    "uart": (dict, True),
    "flash": (dict, True),
    "micropython": (dict, False),
}
# [micropython]: how the board runs runtime `micropython`
_MICROPYTHON = {
    "arch": (str, True),             # mpy-cross -march of its native code (viper, natmods)
    "archs": (list, False),          # other arches its MicroPython builds may report
    "ticks": (str, False),           # the latency clock: ticks_cpu (cycles) or ticks_us
    "unit_per_tick": (int, False),   # board-unit counts per tick (QEMU -icount: 1000 instructions per us)
    "emulator": (str, False),        # emulated boards: which MicroPython tinyedge builds and starts
    "qemu_board": (str, False),      # emulator qemu: the port's BOARD
    "fs_bytes": (int, False),        # emulator qemu: size of the RAM filesystem mounted at boot
}
_MEMORY = {
    "flash_origin": (int, True),
    "ram_origin": (int, True),
    "stack_bytes": (int, False),
    "exit_base": (int, False),       # an emulator's exit device (QEMU virt: the SiFive test finisher)
}
_UART = {
    "driver": (str, True),
    "baud": (int, True),
    "base": (int, False),
    "instance": (str, False),
    "tx_pin": (str, False),
    "rx_pin": (str, False),
    "clock_hz": (int, False),
}
_FLASH = {
    "method": (str, True),
    "alt_methods": (list, False),
    "qemu_machine": (str, False),
    "qemu_cpu": (str, False),
    "qemu_system": (str, False),     # qemu-system-<this>: arm (the default) or riscv32
    "esptool_chip": (str, False),
    "flash_baud": (int, False),
    "flash_size": (str, False),
    "offsets": (dict, False),
    "pyocd_target": (str, False),
    "uf2_family": (str, False),
    "uf2_volume": (str, False),
    "usb_ids": (list, False),
    "flash_only_usb_ids": (list, False),
}


@dataclass(frozen=True)
class Toolchain:
    """A bare-metal C toolchain: what the generated Makefile runs and how to get it."""

    cross: str                 # prefix of gcc and objcopy
    libc: str                  # the C library it links
    link_specs: tuple[str, ...]
    how: str                   # how to install it
    compile_specs: tuple[str, ...] = ()   # what the compiler needs to find the C library's headers


# family -> its toolchain (the Debian packages are in the Makefile's APT_PACKAGES)
TOOLCHAINS = {
    "cortex-m": Toolchain("arm-none-eabi-", "newlib", ("--specs=nano.specs", "--specs=nosys.specs"),
                          "sudo apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi "
                          "(or Arm GNU Toolchain from developer.arm.com)"),
    "riscv": Toolchain("riscv64-unknown-elf-", "picolibc", ("--specs=picolibc.specs",),
                       "sudo apt-get install gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf",
                       compile_specs=("--specs=picolibc.specs",)),
}


@dataclass(frozen=True)
class Uart:
    driver: str
    baud: int
    base: int | None = None
    instance: str | None = None
    tx_pin: str | None = None
    rx_pin: str | None = None
    clock_hz: int | None = None


@dataclass(frozen=True)
class FlashSpec:
    method: str
    alt_methods: tuple[str, ...] = ()
    qemu_machine: str | None = None
    qemu_cpu: str | None = None
    qemu_system: str = "arm"
    esptool_chip: str | None = None
    flash_baud: int | None = None
    flash_size: str | None = None
    offsets: dict[str, int] = field(default_factory=dict)
    pyocd_target: str | None = None
    uf2_family: str | None = None
    uf2_volume: str | None = None
    usb_ids: tuple[str, ...] = ()
    # USB ids that reach the bootloader but not the protocol's UART (an ESP32-C3/S3's native
    # USB-Serial/JTAG, while the firmware talks on UART0): flashing there works, validating does not.
    flash_only_usb_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class MicroPythonSpec:
    arch: str
    archs: tuple[str, ...] = ()
    ticks: str = "ticks_us"
    unit_per_tick: int = 1
    emulator: str | None = None
    qemu_board: str | None = None
    fs_bytes: int = 1048576


@dataclass(frozen=True)
class Memory:
    flash_origin: int
    ram_origin: int
    stack_bytes: int = 8192
    exit_base: int | None = None


@dataclass(frozen=True)
class Board:
    id: str
    name: str
    family: str
    cpu: str
    arch: str
    cflags: tuple[str, ...]
    clock_hz: int
    flash_bytes: int
    ram_bytes: int
    runtimes: tuple[str, ...]
    cycle_counter: str
    template: str
    uart: Uart
    flash: FlashSpec
    memory: Memory | None = None
    micropython: MicroPythonSpec | None = None
    emulated: bool = False
    fpu: bool = False
    dsp: bool = False
    mve: bool = False            # the M-profile Vector Extension (Helium), integer: the aot kernels' te_mve_* paths
    description: str = ""
    march: str | None = None
    mabi: str | None = None
    source: Path | None = None

    @property
    def cycle_unit(self) -> str:
        """The unit the board's counter measures: cycles, instructions or ns."""
        return CYCLE_COUNTERS[self.cycle_counter]

    @property
    def is_qemu(self) -> bool:
        return self.flash.method == "qemu"

    @property
    def toolchain(self) -> Toolchain | None:
        """The bare-metal C toolchain of the board's family (None where another build system brings its own)."""
        return TOOLCHAINS.get(self.family)

    @property
    def arch_flags(self) -> tuple[str, ...]:
        """The compiler's architecture flags: -march/-mabi from the board's ISA facts, then its cflags."""
        isa = (f"-march={self.march}",) if self.march else ()
        abi = (f"-mabi={self.mabi}",) if self.mabi else ()
        return (*isa, *abi, *self.cflags)

    @property
    def link_arch_flags(self) -> tuple[str, ...]:
        """The architecture flags of the link, which pick the C library's multilib.  GCC 12's RISC-V
        multilib table predates the Zicsr/Zifencei split, so the link names the base ISA only
        (rv32imc_zicsr_zifencei -> rv32imc); what is linked is a subset of it."""
        if not self.march:
            return self.arch_flags
        base = self.march.split("_", 1)[0]
        abi = (f"-mabi={self.mabi}",) if self.mabi else ()
        return (f"-march={base}", *abi, *self.cflags)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["source"] = str(self.source) if self.source else None
        d["cycle_unit"] = self.cycle_unit
        return d


def _check_table(data: dict, schema: dict, file: Path, prefix: str = "") -> None:
    for key in data:
        if key not in schema:
            known = ", ".join(sorted(schema))
            raise BoardError(
                f"{file}: unknown key '{prefix}{key}'", file=file, key=prefix + key,
                hint=f"known keys here are: {known}",
            )
    for key, (typ, required) in schema.items():
        if key not in data:
            if required:
                raise BoardError(f"{file}: missing key '{prefix}{key}'", file=file, key=prefix + key,
                                 hint="add it to the board file")
            continue
        value = data[key]
        # bool is an int in Python: keep the two apart.
        ok = isinstance(value, typ) and not (typ is int and isinstance(value, bool))
        if not ok:
            raise BoardError(
                f"{file}: key '{prefix}{key}' must be {typ.__name__}, not {type(value).__name__}",
                file=file, key=prefix + key,
            )


def _check_choice(value, choices, file: Path, key: str) -> None:
    if value not in choices:
        raise BoardError(f"{file}: key '{key}' is {value!r}; it must be one of {', '.join(choices)}",
                         file=file, key=key)


def _check_str_list(values: list, file: Path, key: str, choices=None) -> tuple[str, ...]:
    for v in values:
        if not isinstance(v, str):
            raise BoardError(f"{file}: key '{key}' must be a list of strings", file=file, key=key)
        if choices is not None:
            _check_choice(v, choices, file, key)
    return tuple(values)


def parse_board(data: dict, file: Path) -> Board:
    """Validate one board's TOML data and return the Board."""
    _check_table(data, _TOP, file)
    _check_choice(data["family"], FAMILIES, file, "family")
    _check_choice(data["cycle_counter"], tuple(CYCLE_COUNTERS), file, "cycle_counter")
    runtimes = _check_str_list(data["runtimes"], file, "runtimes", RUNTIMES)
    if not runtimes:
        raise BoardError(f"{file}: key 'runtimes' is empty", file=file, key="runtimes")
    cflags = _check_str_list(data["cflags"], file, "cflags")
    for key in ("clock_hz", "flash_bytes", "ram_bytes"):
        if data[key] <= 0:
            raise BoardError(f"{file}: key '{key}' must be positive", file=file, key=key)
    if data["id"] != file.stem:
        raise BoardError(f"{file}: key 'id' is {data['id']!r} but the file is named {file.name}",
                         file=file, key="id", hint="name the file <id>.toml")

    _check_table(data["uart"], _UART, file, "uart.")
    _check_choice(data["uart"]["driver"], UART_DRIVERS, file, "uart.driver")
    uart = Uart(**data["uart"])

    fl = dict(data["flash"])
    _check_table(fl, _FLASH, file, "flash.")
    _check_choice(fl["method"], FLASH_METHODS, file, "flash.method")
    if "qemu_system" in fl:
        _check_choice(fl["qemu_system"], QEMU_SYSTEMS, file, "flash.qemu_system")
    fl["alt_methods"] = _check_str_list(fl.get("alt_methods", []), file, "flash.alt_methods", FLASH_METHODS)
    fl["usb_ids"] = _check_str_list(fl.get("usb_ids", []), file, "flash.usb_ids")
    fl["flash_only_usb_ids"] = _check_str_list(fl.get("flash_only_usb_ids", []), file, "flash.flash_only_usb_ids")
    for u in fl["flash_only_usb_ids"]:
        if u not in fl["usb_ids"]:
            raise BoardError(f"{file}: flash.flash_only_usb_ids lists {u}, which flash.usb_ids does not",
                             file=file, key="flash.flash_only_usb_ids")
    offsets = fl.get("offsets", {})
    for k, v in offsets.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise BoardError(f"{file}: key 'flash.offsets.{k}' must be a non-negative integer",
                             file=file, key=f"flash.offsets.{k}")
    method_needs = {"qemu": "qemu_machine", "esptool": "esptool_chip", "pyocd": "pyocd_target",
                    "uf2": "uf2_family"}
    for method in (fl["method"], *fl["alt_methods"]):
        need = method_needs.get(method)
        if need and need not in fl:
            raise BoardError(f"{file}: flash method {method!r} needs key 'flash.{need}'",
                             file=file, key=f"flash.{need}")
    flash = FlashSpec(**fl)

    memory = None
    if "memory" in data:
        _check_table(data["memory"], _MEMORY, file, "memory.")
        memory = Memory(**data["memory"])
    elif data["family"] in ("cortex-m", "riscv"):
        raise BoardError(f"{file}: missing key 'memory' (bare-metal boards need their memory map)",
                         file=file, key="memory")
    if data["family"] == "riscv" and "march" not in data:
        raise BoardError(f"{file}: missing key 'march' (RISC-V boards name their ISA, e.g. rv32imc_zicsr_zifencei)",
                         file=file, key="march")
    for key in ("march", "mabi"):
        if key in data and not re.fullmatch(r"[a-z0-9_]+", data[key]):
            raise BoardError(f"{file}: key '{key}' is {data[key]!r}; it must be lower-case letters, digits and '_'",
                             file=file, key=key)

    mp = None
    if "micropython" in data:
        m = dict(data["micropython"])
        _check_table(m, _MICROPYTHON, file, "micropython.")
        _check_choice(m["arch"], MP_ARCHS, file, "micropython.arch")
        m["archs"] = _check_str_list(m.get("archs", []), file, "micropython.archs", MP_ARCHS)
        if "ticks" in m:
            _check_choice(m["ticks"], MP_TICKS, file, "micropython.ticks")
        if "emulator" in m:
            _check_choice(m["emulator"], MP_EMULATORS, file, "micropython.emulator")
            if m["emulator"] == "qemu" and "qemu_board" not in m:
                raise BoardError(f"{file}: emulator 'qemu' needs key 'micropython.qemu_board'", file=file,
                                 key="micropython.qemu_board")
        mp = MicroPythonSpec(**m)
    if "micropython" in runtimes and mp is None:
        raise BoardError(f"{file}: runtime 'micropython' needs a [micropython] table (at least its arch)",
                         file=file, key="micropython", hint='add [micropython] arch = "..." to the board file')

    rest = {k: data[k] for k in ("emulated", "fpu", "dsp", "mve", "description", "march", "mabi") if k in data}
    return Board(
        id=data["id"], name=data["name"], family=data["family"], cpu=data["cpu"], arch=data["arch"],
        cflags=cflags, clock_hz=data["clock_hz"], flash_bytes=data["flash_bytes"],
        ram_bytes=data["ram_bytes"], runtimes=runtimes, cycle_counter=data["cycle_counter"],
        template=data["template"], uart=uart, flash=flash, memory=memory, micropython=mp, source=file, **rest,
    )


def load_board_file(file: os.PathLike | str) -> Board:
    file = Path(file)
    try:
        raw = file.read_bytes()
    except OSError as e:
        raise BoardError(f"{file}: cannot read board file ({e.strerror})", file=file) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise BoardError(f"{file}: not valid TOML ({e})", file=file) from None
    return parse_board(data, file)


def _user_dirs(extra: os.PathLike | str | None) -> list[Path]:
    dirs = []
    env = os.environ.get(ENV_VAR)
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
    if extra:
        dirs.append(Path(extra))
    for d in dirs:
        if not d.is_dir():
            raise BoardError(f"boards folder {d} does not exist", file=d,
                             hint=f"check --boards-dir or {ENV_VAR}")
    return dirs


_extra_dir: Path | None = None


def set_user_boards_dir(path: os.PathLike | str | None) -> None:
    """Set the folder of user boards for this process (the CLI's --boards-dir)."""
    global _extra_dir
    _extra_dir = Path(path).expanduser().resolve() if path else None
    _load_all.cache_clear()


@cache
def _load_all(extra: Path | None, env: str | None) -> dict[str, Board]:
    boards: dict[str, Board] = {}
    for d in [boards_dir(), *_user_dirs(extra)]:
        for f in sorted(d.glob("*.toml")):
            b = load_board_file(f)
            boards[b.id] = b
    return boards


def all_boards() -> dict[str, Board]:
    """Every known board by id: shipped ones, then user ones (which win)."""
    return dict(_load_all(_extra_dir, os.environ.get(ENV_VAR)))


def get_board(board_id: str | None) -> Board:
    """The board with this id (the default board when None)."""
    board_id = board_id or DEFAULT_BOARD
    boards = all_boards()
    if board_id not in boards:
        raise BoardError(f"unknown board {board_id!r}",
                         hint=f"run 'tinyedge boards' to list them; known: {', '.join(sorted(boards))}")
    return boards[board_id]
