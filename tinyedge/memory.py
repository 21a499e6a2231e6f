"""Memory report of a built firmware ELF (pyelftools), against the board's limits.

flash = text + rodata + data (the initial values of .data live in flash),
RAM = data + bss + stack (+ heap when the linker script reserves one).  The
stack and heap are the sections named `.stack*` / `.heap*` (the Cortex-M
linker script reserves the stack as `.stack`); every other allocated section
is classified by its flags, the way `arm-none-eabi-size` (Berkeley format)
does: read-only -> text/rodata, writable with contents -> data, without
contents -> bss.  The arena is the largest data object whose symbol name
contains "arena".  The aot model's weight tensors are read from their symbols
(`<prefix>_op<N>_w`, and `_w_<storage>` / `_mode` / `_nnz` / `_table` when stored
compactly): per tensor the storage, the bytes in flash, and the dense int8 bytes.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import BuildError, InputFileError

SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4


@dataclass(frozen=True)
class MemoryReport:
    elf: str
    text: int
    rodata: int
    data: int
    bss: int
    stack: int
    heap: int
    arena_bytes: int | None
    arena_symbol: str | None
    flash_limit: int | None
    ram_limit: int | None
    weights: tuple = field(default=())   # aot: ({op, storage, stored_bytes, dense_bytes}, ...) by op


    @property
    def flash_bytes(self) -> int:
        return self.text + self.rodata + self.data

    @property
    def ram_bytes(self) -> int:
        return self.data + self.bss + self.stack + self.heap

    @property
    def fits(self) -> bool:
        return ((self.flash_limit is None or self.flash_bytes <= self.flash_limit)
                and (self.ram_limit is None or self.ram_bytes <= self.ram_limit))

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(flash_bytes=self.flash_bytes, ram_bytes=self.ram_bytes, fits=self.fits)
        return d

    def summary(self) -> str:
        def pct(n, lim):
            return f"{n:,} B" if not lim else f"{n:,} of {lim:,} B ({100 * n / lim:.1f}%)"

        arena = f", arena {self.arena_bytes:,} B" if self.arena_bytes is not None else ""
        w = ""
        compact = [t for t in self.weights if t["storage"] != "dense"]
        if compact:
            w = (f", weights {sum(t['stored_bytes'] for t in self.weights):,} B for "
                 f"{sum(t['dense_bytes'] for t in self.weights):,} B dense ({len(compact)} of {len(self.weights)} "
                 "tensors compact)")
        return f"flash {pct(self.flash_bytes, self.flash_limit)}, RAM {pct(self.ram_bytes, self.ram_limit)}{arena}{w}"


def memory_report(elf: os.PathLike | str, board=None) -> MemoryReport:
    """Read the section sizes and the arena of `elf`; limits from `board` (a Board) when given."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    path = Path(elf)
    try:
        f = path.open("rb")
    except OSError as e:
        raise InputFileError(f"cannot read {path} ({e.strerror})", path=path) from None
    sizes = dict(text=0, rodata=0, data=0, bss=0, stack=0, heap=0)
    arena_name, arena_size = None, None
    wsyms: dict[int, dict] = {}
    with f:
        try:
            ef = ELFFile(f)
            for sec in ef.iter_sections():
                flags = sec["sh_flags"]
                if not flags & SHF_ALLOC or sec["sh_size"] == 0:
                    continue
                name, size = sec.name, sec["sh_size"]
                if name.startswith(".stack"):
                    sizes["stack"] += size
                elif name.startswith(".heap"):
                    sizes["heap"] += size
                elif sec["sh_type"] == "SHT_NOBITS":
                    sizes["bss"] += size
                elif flags & SHF_WRITE:
                    sizes["data"] += size
                elif flags & SHF_EXECINSTR:
                    sizes["text"] += size
                else:
                    sizes["rodata"] += size
            symtab = ef.get_section_by_name(".symtab")
            if isinstance(symtab, SymbolTableSection):
                for sym in symtab.iter_symbols():
                    m = _WEIGHT_SYM.match(sym.name)
                    if m and sym["st_info"]["type"] == "STT_OBJECT":
                        wsyms.setdefault(int(m.group("op")), {})[m.group("part") or ""] = sym
                    if sym["st_info"]["type"] != "STT_OBJECT" or "arena" not in sym.name.lower():
                        continue
                    if arena_size is None or sym["st_size"] > arena_size:
                        arena_name, arena_size = sym.name, int(sym["st_size"])
            weights = tuple(_weight_entry(ef, op, parts) for op, parts in sorted(wsyms.items()) if "" in parts)
        except ELFError as e:
            raise InputFileError(f"{path} is not a readable ELF file ({e})", path=path) from None
    return MemoryReport(
        elf=str(path), arena_bytes=arena_size, arena_symbol=arena_name, weights=weights,
        flash_limit=board.flash_bytes if board is not None else None,
        ram_limit=board.ram_bytes if board is not None else None, **sizes,
    )


_WEIGHT_SYM = re.compile(r"^[a-z_][a-z0-9_]*?_op(?P<op>\d+)_w(?:_(?P<part>palette4|palette2|int4|sparse|mode|nnz|table))?$")


def _weight_entry(ef, op: int, parts: dict) -> dict:
    """One weight tensor from its symbols: dense (the int8 array) or stored (te_weights_t + arrays)."""
    kinds = [k for k in parts if k in ("palette4", "palette2", "int4", "sparse")]
    if not kinds:
        n = int(parts[""]["st_size"])
        return {"op": op, "storage": "dense", "stored_bytes": n, "dense_bytes": n}
    stored = sum(int(s["st_size"]) for k, s in parts.items() if k)
    desc = parts[""]
    sec = ef.get_section(desc["st_shndx"])
    raw = sec.data()[desc["st_value"] - sec["sh_addr"]:][:12]   # te_weights_t: kind, rows, row_len (int32)
    rows, row_len = int.from_bytes(raw[4:8], "little"), int.from_bytes(raw[8:12], "little")
    return {"op": op, "storage": kinds[0], "stored_bytes": stored, "dense_bytes": rows * row_len}


def check_fits(report: MemoryReport, board_id: str = "the board") -> None:
    """Raise BuildError with the numbers when the firmware does not fit."""
    problems = []
    if report.flash_limit is not None and report.flash_bytes > report.flash_limit:
        problems.append(f"flash needs {report.flash_bytes:,} B (text {report.text:,} + rodata "
                        f"{report.rodata:,} + data {report.data:,}) but {board_id} has {report.flash_limit:,} B")
    if report.ram_limit is not None and report.ram_bytes > report.ram_limit:
        arena = f", arena {report.arena_bytes:,}" if report.arena_bytes is not None else ""
        problems.append(f"RAM needs {report.ram_bytes:,} B (data {report.data:,} + bss {report.bss:,} + stack "
                        f"{report.stack:,}{arena}) but {board_id} has {report.ram_limit:,} B")
    if problems:
        raise BuildError("the firmware does not fit: " + "; ".join(problems),
                         hint="pick a board with more memory, or a smaller model (tinyedge inspect shows the plan)")
