"""The board's fault line, explained: `tinyedge fault: ...` with the Cortex-M fault status
registers (CFSR, HFSR) decoded into words on the host, so the firmware prints numbers only.

    explain("tinyedge fault: HardFault at pc=0x00001c28 ... cfsr=0x00010000 hfsr=0x40000000")
    -> "tinyedge fault: HardFault (undefined instruction) at pc=0x00001c28 ..."
"""

from __future__ import annotations

import re

# CFSR bits (ARMv7-M / ARMv8-M ARM: UFSR << 16 | BFSR << 8 | MMFSR), in the order they are named
CFSR_CAUSES = [
    (20, "stack overflow (STKOF)"),
    (16, "undefined instruction"),
    (17, "invalid state (a branch to an address without the Thumb bit)"),
    (18, "invalid exception return"),
    (19, "coprocessor access (the FPU or MVE is not enabled)"),
    (24, "unaligned access"),
    (25, "division by zero"),
    (12, "bus fault while stacking"),
    (4, "memory fault while stacking"),
    (8, "bus fault on instruction fetch"),
    (9, "bus fault on data access"),
    (10, "imprecise bus fault on data access"),
    (11, "bus fault on exception return"),
    (0, "memory access violation on instruction fetch"),
    (1, "memory access violation on data access"),
]
HFSR_VECTTBL = 1 << 1

_REG = re.compile(r"\b(cfsr|hfsr)=0x([0-9a-fA-F]{1,8})\b")
_HEAD = re.compile(r"^(tinyedge fault: [A-Za-z]+)")


def causes(cfsr: int, hfsr: int = 0) -> list[str]:
    """The causes CFSR (and HFSR's vector-table bit) record, most telling first."""
    found = [what for bit, what in CFSR_CAUSES if cfsr >> bit & 1]
    if hfsr & HFSR_VECTTBL:
        found.append("vector table read error")
    return found


def explain(line: str) -> str:
    """`line` with the causes its cfsr= / hfsr= fields record after the exception's name
    (unchanged when it has none: a RISC-V line names its cause itself)."""
    regs = {k: int(v, 16) for k, v in _REG.findall(line)}
    if "cfsr" not in regs:
        return line
    words = causes(regs["cfsr"], regs.get("hfsr", 0)) or ["no cause recorded"]
    return _HEAD.sub(lambda m: f"{m.group(1)} ({'; '.join(words)})", line, count=1)
