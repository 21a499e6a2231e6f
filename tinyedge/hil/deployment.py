"""A model deployed on a Target: the Device session, the validation report, restarts.

`deploy_to(target, firmware)` flashes (or, on an emulated board, starts) the
prepared firmware, opens a Device session and validates the board against
the host reference; the Deployment it returns stays usable until closed.
A board runs one firmware: deploying another model to the same target
closes the earlier deployment first.  A real board that already runs the
very model (its hello reply names the model's sha256) is not reflashed.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ..errors import LinkError, TinyedgeError
from .firmware import PreparedFirmware
from .targets import Target

log = logging.getLogger(__name__)


class Deployment:
    """`.device` (a tinyedge.Device), `.report` (the validation report), `.board`, `.url`."""

    def __init__(self, target: Target, firmware: PreparedFirmware, *, reply_timeout: float = 10.0,
                 stats: dict | None = None):
        self.target = target
        self.firmware = firmware
        self.reply_timeout = reply_timeout
        self.stats = stats if stats is not None else {}
        self.device = None
        self.report: dict = {}
        self.flashed = 0               # flashes (or emulator starts) of this deployment
        self._old_log: list[str] = []
        self._reports: dict = {}
        self.closed = False

    # ------------------------------------------------------------------ facts
    @property
    def board(self):
        return self.firmware.board

    @property
    def tflite(self) -> Path:
        return self.firmware.tflite

    @property
    def url(self) -> str | None:
        return self.device.url if self.device is not None else self.target.url

    @property
    def log_lines(self) -> list[str]:
        """The board's text outside protocol frames, over every restart."""
        return self._old_log + (list(self.device.log_lines) if self.device is not None else [])

    def emulator_stderr(self) -> str:
        proc = getattr(self.device, "process", None)
        return proc.stderr_text() if proc is not None and hasattr(proc, "stderr_text") else ""

    def junit_properties(self) -> list[tuple[str, str]]:
        return [("tinyedge_board", self.board.id), ("tinyedge_target", f"{self.target.kind}:{self.target.name}"),
                ("tinyedge_runtime", self.firmware.runtime),
                ("tinyedge_firmware_sha256", self.firmware.firmware_sha256),
                ("tinyedge_model_sha256", self.firmware.model_sha256), ("tinyedge_url", self.url or "")]

    # ------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Flash (or start) the firmware and open the session."""
        t = self.target
        if t.current is not None and t.current is not self:
            t.current.close()
        if self.device is not None:
            self._old_log += list(self.device.log_lines)
            self.device.close()
            self.device = None
        from ..flashers.dispatch import flash_project
        from ..link import Device

        fw = self.firmware
        if t.emulated:
            result = flash_project(fw.project, board=fw.board)
            self._count("flashes")
            self.flashed += 1
            ann = result.details.get("announcement")
            if isinstance(ann, dict):     # the boot line, read by the flasher before the session
                self._old_log.append("tinyedge ready " + " ".join(f"{k}={v}" for k, v in ann.items()))
            self.device = Device.from_flash(result, timeout=self.reply_timeout)
        else:
            if not self._runs_model(t.url):
                if not t.can_flash:
                    raise LinkError(
                        f"{t.describe()} runs another model than {fw.tflite.name} and is emulated remotely: "
                        "tinyedge cannot flash it from here",
                        hint="start that emulator with this model's firmware, or deploy to a real board")
                flash_project(fw.project, port=t.url, board=fw.board).close()
                self._count("flashes")
                self.flashed += 1
            self.device = Device(t.url, timeout=self.reply_timeout)
        t.current = self
        if self not in t.deployments:
            t.deployments.append(self)

    def _runs_model(self, url: str) -> bool:
        from ..link import Device

        try:
            with Device(url, timeout=2.0, retries=1) as d:
                return d.info().model_sha256 == self.firmware.model_sha256
        except TinyedgeError as e:
            log.info("%s does not answer as tinyedge firmware (%s): flashing", url, e)
            return False

    def validate(self, *, data=None, samples: int | None = None) -> dict:
        """Validate the board on `data` (generated inputs when None); `.report` becomes that report.
        Each data set is validated once per deployment."""
        from ..pipeline import _memory_section
        from ..validation import validate_device

        rkey = (str(Path(data).resolve()) if data is not None else None, samples)
        if rkey in self._reports:
            self.report = self._reports[rkey]
            return self.report
        fw = self.firmware
        v = validate_device(self.device, fw.tflite, data=data, samples=samples)
        from types import SimpleNamespace

        self.report = {
            "board": fw.board.id, "runtime": fw.runtime, "protocol": fw.protocol,
            "target": {"kind": self.target.kind, "name": self.target.name, "url": self.url},
            "model": {"path": str(fw.tflite), "sha256": fw.model_sha256},
            "firmware": {"project": str(fw.project), "sha256": fw.firmware_sha256, "built": fw.built},
            "memory": _memory_section(SimpleNamespace(memory=dict(fw.memory)), fw.board),
            **{k: v[k] for k in ("samples", "interrupted", "inputs", "agreement", "accuracy", "latency", "notes")},
        }
        self._reports[rkey] = self.report
        return self.report

    def healthy(self, timeout: float = 3.0) -> bool:
        """Does the board still answer hello (and, emulated, does its process run)?"""
        d = self.device
        if d is None or self.closed:
            return False
        proc = getattr(d, "process", None)
        if proc is not None and hasattr(proc, "alive") and not proc.alive():
            return False
        old = (d.timeout, d.retries)
        d.timeout, d.retries = timeout, 0
        try:
            d.info(refresh=True)
            return True
        except TinyedgeError:
            return False
        finally:
            d.timeout, d.retries = old

    def restart(self) -> None:
        """A new emulator process, or a reflash of the real board; then a new session."""
        self.target.restarts += 1
        self._count("restarts")
        t0 = time.monotonic()
        if not self.target.emulated and self.target.can_flash:
            self.target.current = None         # reflash whatever it runs
            if self.device is not None:
                self._old_log += list(self.device.log_lines)
                self.device.close()
                self.device = None
            from ..flashers.dispatch import flash_project

            flash_project(self.firmware.project, port=self.target.url, board=self.firmware.board).close()
            self._count("flashes")
            self.flashed += 1
        self.start()
        self.device.info()
        log.info("restarted %s in %.1f s", self.target.describe(), time.monotonic() - t0)

    def close(self) -> None:
        if self.device is not None:
            self._old_log += list(self.device.log_lines)
            self.device.close()
            self.device = None
        self.closed = True
        t = self.target
        if t.current is self:
            t.current = None
        if self in t.deployments:
            t.deployments.remove(self)

    def _count(self, what: str) -> None:
        self.stats[what] = self.stats.get(what, 0) + 1

    def __repr__(self) -> str:
        return f"Deployment({self.firmware.tflite.name} on {self.target.describe()})"


def deploy_to(target: Target, firmware: PreparedFirmware, *, data=None, samples: int | None = None,
              reply_timeout: float = 10.0, stats: dict | None = None) -> Deployment:
    """Flash `firmware` onto `target`, open the session and validate; return the Deployment."""
    d = Deployment(target, firmware, reply_timeout=reply_timeout, stats=stats)
    try:
        d.start()
        d.validate(data=data, samples=samples)
    except BaseException:
        d.close()
        raise
    return d
