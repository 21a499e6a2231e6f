"""Backend `natmod`: the aot engine's C and tinyedge's kernels as a MicroPython dynamic native module.

Built with MicroPython's own natmod build (`py/dynruntime.mk`, `tools/mpy_ld.py`,
pyelftools) from the generated `model.c` (tinyedge.aot) and the kernel sources
`tinyedge.aot.kernel_sources()`; the glue (templates/micropython/natmod.c.j2)
gives natmods' rules their due: no static BSS (model.c's arena becomes a
global the loader allocates), the C library through `mp_fun_table`.  The
result is cached under ~/.cache/tinyedge/micropython/, keyed by everything
that goes into it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import BuildError, ToolMissingError, UsageError
from ..graph import Graph
from . import build as mpbuild

# natmod arch -> the C compiler its build calls (dynruntime.mk's CROSS + gcc)
COMPILERS = {
    "x86": "gcc", "x64": "gcc", "armv6m": "arm-none-eabi-gcc", "armv7m": "arm-none-eabi-gcc",
    "armv7emsp": "arm-none-eabi-gcc", "armv7emdp": "arm-none-eabi-gcc", "xtensawin": "xtensa-esp32-elf-gcc",
    "rv32imc": "riscv64-unknown-elf-gcc",
}
HOW = {"gcc": "sudo apt-get install gcc", "arm-none-eabi-gcc": "sudo apt-get install gcc-arm-none-eabi",
       "xtensa-esp32-elf-gcc": "install ESP-IDF (it puts xtensa-esp32-elf-gcc on PATH)",
       "riscv64-unknown-elf-gcc": "sudo apt-get install gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf"}


def available(arch: str) -> str | None:
    """None when a natmod for `arch` can be built here, else the reason."""
    cc = COMPILERS.get(arch)
    if cc is None:
        return f"tinyedge builds no natmod for {arch}"
    if shutil.which(cc) is None:
        return f"{cc} is not on PATH ({HOW[cc]})"
    return None


def build_natmod(graph: Graph, arch: str, *, mpy_dir=None, name: str = "model", profile: bool = False,
                 fault_op: int | None = None) -> bytes:
    """The .mpy bytes of the model's natmod for `arch` (built once per content, then cached).

    `profile`: with the per-op profiler compiled in (`run_profiled`; model.c's hooks, configured by
    the same te_profile_config.h as a firmware profile build); `fault_op` (tests only, implies
    `profile`): that op's output is off by one int8 step (TE_FAULT_OP)."""
    from .. import aot
    from .package import render_text

    why = available(arch)
    if why:
        raise ToolMissingError(f"the natmod toolchain for {arch}", why)
    tree = mpbuild.micropython_tree(mpy_dir)
    with tempfile.TemporaryDirectory(prefix="tinyedge-natmod-") as tmp:
        d = Path(tmp)
        # auto weight storage as measured on the Cortex-M DSP paths only where the arch has them
        # a profile build runs op by op (a streamed stage's intermediates never exist in full)
        res = aot.generate_model_sources(graph, d, prefix="te_model", arm_dsp=arch.startswith("armv7em"),
                                         schedule="layer" if profile or fault_op is not None else "auto")
        kernels = [Path(k) for k in aot.kernel_sources({op.opcode for op in graph.ops})]
        for k in kernels:
            shutil.copyfile(k, d / k.name)
        vm_in = graph.input_tensors[0].nbytes
        vm_out = graph.output_tensors[0].nbytes
        profile = profile or fault_op is not None
        includes = " ".join(f"-I{p}" for p in aot.include_dirs())
        if profile:
            from ..profile import render_profile_config

            shutil.copyfile(aot.firmware_dir() / "app" / "te_profile.h", d / "te_profile.h")
            (d / "te_profile_config.h").write_text(render_profile_config(graph, fault_op))
            includes = "-I. " + includes
        max_out = max([sum(graph.tensors[t].nbytes for t in op.outputs if t >= 0) for op in graph.ops], default=0)
        (d / "natmod.c").write_text(render_text("natmod.c.j2", name=name, input_bytes=vm_in, output_bytes=vm_out,
                                                arena_bytes=res.arena_bytes, profile=profile,
                                                n_ops=len(graph.ops), max_out_bytes=max_out))
        (d / "Makefile").write_text(render_text(
            "natmod.mk.j2", mpy_dir=str(tree), mod="_native", arch=arch, python=sys.executable,
            kernel_sources=" ".join(k.name for k in kernels), includes=includes))
        h = hashlib.sha256()
        for f in sorted(d.iterdir()):
            h.update(f.name.encode() + b"\0" + f.read_bytes())
        for inc in aot.include_dirs():
            for f in sorted(Path(inc).glob("*.h")):
                h.update(f.name.encode() + b"\0" + f.read_bytes())
        h.update(mpbuild.tree_key(tree).encode() + arch.encode())
        cached = mpbuild.cache_root() / f"natmod-{h.hexdigest()[:20]}.mpy"
        if cached.is_file():
            return cached.read_bytes()
        r = subprocess.run(["make", "-C", str(d), "-j2", f"PYTHON={sys.executable}"], capture_output=True, text=True)
        out = d / "_native.mpy"
        if r.returncode != 0 or not out.is_file():
            # the cause is in what the compiler or MicroPython's linker (mpy_ld.py: 'LinkError: ...',
            # on stdout) said, not in make's last line
            lines = [ln.strip() for ln in (r.stdout + "\n" + r.stderr).splitlines() if ln.strip()]
            cause = [ln for ln in lines if ("error" in ln.lower() or "undefined" in ln.lower())
                     and not ln.startswith("make")] or lines[-4:]
            if len(cause) > 4:
                cause = cause[:4] + [f"... {len(cause) - 4} more"]
            raise BuildError(f"the natmod build for {arch} failed: {' / '.join(cause)}",
                             hint="run with --backend viper, or report this with the model")
        data = out.read_bytes()
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmpf = cached.with_suffix(".tmp")
        tmpf.write_bytes(data)
        tmpf.replace(cached)
        return data


def check_arch(arch: str) -> None:
    if arch not in COMPILERS:
        raise UsageError(f"tinyedge builds no natmod for {arch}", hint="use --backend viper")
