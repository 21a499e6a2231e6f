"""Runtime `micropython`: the model as a MicroPython package, on any board that runs MicroPython.

- `package.generate_package(tflite, out_dir, name=..., arch=..., backend=...)`
  writes `<out>/<name>/` (`__init__.py` + `.mpy` files) and `<out>/package.json`
  for `mpremote mip install`.
- `viper`: the aot engine's graph as generated `@micropython.viper` code,
  bit-exact with the tflite-micro interpreter on 32- and 64-bit ports.
- `build`: MicroPython itself from source (mpy-cross, the unix port, the QEMU
  port), cached under ~/.cache/tinyedge/micropython/.
- `boards`: the emulated MicroPython boards (unix port behind a pty, QEMU port
  with its UART on TCP).
- `session`: a Device session over the raw REPL (mpremote's transport), with
  the same `info()` / `infer()` as the C firmware's protocol session.
"""

from __future__ import annotations
