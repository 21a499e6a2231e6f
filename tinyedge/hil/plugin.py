"""The `tinyedge` pytest plugin (entry point `pytest11`): boards as fixtures.

    def test_ad01(tinyedge_deploy):
        d = tinyedge_deploy("ad01_int8.tflite")
        assert d.report["agreement"]["bit_exact_rate"] == 1.0
        y, count = d.device.infer(x)

Options are in the `tinyedge` group (`pytest --help`).  The default board is
the emulated Cortex-M4, so a test file passes on a machine with no hardware.
A deployed board lives for `--tinyedge-scope` (module by default): each
model is built once per content (cached across runs) and flashed once per
scope.  A board that stops answering is restarted once, then marked broken;
later tests on it skip with the reason.  No emulator outlives the run.
"""

from __future__ import annotations

import logging
import re
import signal
import time
from pathlib import Path

import pytest

from ..errors import DeviceTimeout, TinyedgeError
from .deployment import Deployment, deploy_to
from .firmware import FirmwareCache
from .targets import BoardPool, BoardUnavailable, load_inventory, parse_ports

log = logging.getLogger("tinyedge.hil")

DEFAULT_BOARD = "qemu-cortex-m4"
SCOPES = ("function", "module", "session")


class TestTimeout(DeviceTimeout):
    """A test ran past its tinyedge timeout."""

    __test__ = False


def pytest_addoption(parser):
    g = parser.getgroup("tinyedge", "tinyedge boards (hardware-in-the-loop tests)")
    g.addoption("--tinyedge-board", action="append", default=[], metavar="ID",
                help=f"board id to run on (repeatable; default {DEFAULT_BOARD}, emulated)")
    g.addoption("--tinyedge-port", action="append", default=[], metavar="URL",
                help="pyserial URL of a real board (repeatable; paired in order with the real --tinyedge-board ids)")
    g.addoption("--tinyedge-runtime", default="aot", metavar="NAME", help="runtime of deployed firmware (default aot)")
    g.addoption("--tinyedge-inventory", default=None, metavar="FILE",
                help="TOML of real boards: [[board]] name, board, url, tags; locked across processes")
    g.addoption("--tinyedge-labgrid-place", default=None, metavar="PLACE",
                help="a labgrid place whose NetworkSerialPort is the board (acquired, then released)")
    g.addoption("--tinyedge-labgrid-env", default=None, metavar="FILE",
                help="a labgrid environment YAML with a RemotePlace (its name and coordinator_address are used)")
    g.addoption("--tinyedge-labgrid-coordinator", default=None, metavar="HOST:PORT",
                help="labgrid coordinator (default $LG_COORDINATOR or 127.0.0.1:20408)")
    g.addoption("--tinyedge-scope", choices=SCOPES, default="module",
                help="how long a deployed board lives (default module)")
    g.addoption("--tinyedge-log-dir", default=None, metavar="DIR", help="write each test's board log here")
    g.addoption("--tinyedge-timeout", type=float, default=None, metavar="S",
                help="seconds a test using a board may take (marker tinyedge_timeout overrides)")
    g.addoption("--tinyedge-reply-timeout", type=float, default=10.0, metavar="S",
                help="seconds to wait for each reply from a board (default 10)")
    g.addoption("--tinyedge-lock-wait", type=float, default=600.0, metavar="S",
                help="seconds to wait for a real board another process holds (default 600)")
    g.addoption("--tinyedge-cache", default=None, metavar="DIR",
                help="firmware build cache (default ~/.cache/tinyedge/hil)")


def pytest_configure(config):
    config.addinivalue_line("markers", "tinyedge_boards(*ids): run the test on each of these boards "
                                       "(parametrized, one id per board)")
    config.addinivalue_line("markers", "tinyedge_hardware: needs a real board; skipped on emulated ones")
    config.addinivalue_line("markers", "tinyedge_timeout(seconds): fail the test (and restart its board) "
                                       "after this many seconds")
    try:
        session = HilSession(config)
    except TinyedgeError as e:
        raise pytest.UsageError(f"tinyedge: {e}") from None
    config.pluginmanager.register(session, "tinyedge-hil-session")
    config.stash[_KEY] = session


_KEY = pytest.StashKey["HilSession"]()


def _session(config) -> HilSession:
    return config.stash[_KEY]


class HilSession:
    """The run's boards, firmware cache and deployments (one per process: xdist workers have their own)."""

    def __init__(self, config):
        o = config.option
        self.config = config
        self.worker = getattr(config, "workerinput", {}).get("workerid", "main")
        self.boards = list(dict.fromkeys(o.tinyedge_board))
        self.runtime = o.tinyedge_runtime
        self.scope = o.tinyedge_scope
        self.reply_timeout = o.tinyedge_reply_timeout
        self.timeout = o.tinyedge_timeout
        self.log_dir = Path(o.tinyedge_log_dir).resolve() if o.tinyedge_log_dir else None
        self.stats: dict[str, int] = {}
        self.cache = FirmwareCache(o.tinyedge_cache)
        ports = parse_ports(self.boards, o.tinyedge_port)
        inventory = load_inventory(o.tinyedge_inventory) if o.tinyedge_inventory else []
        self._labgrid_args = (o.tinyedge_labgrid_place, o.tinyedge_labgrid_env, o.tinyedge_labgrid_coordinator)
        self._lock_wait = o.tinyedge_lock_wait
        self._ports, self._inventory = ports, inventory
        self._pool: BoardPool | None = None
        self.scopes: dict[str, dict[tuple, Deployment]] = {}
        self._references: dict = {}
        if not self.boards:
            real = [e.board for e in inventory]
            self.boards = list(dict.fromkeys(real)) or [DEFAULT_BOARD]

    @property
    def pool(self) -> BoardPool:
        if self._pool is None:
            labgrid = []
            place, env, coord = self._labgrid_args
            if place or env:
                from .labgrid import labgrid_target

                labgrid.append(labgrid_target(place=place, env=env, coordinator=coord,
                                              board=self.boards[0] if self._boards_given() else None))
                if not self._boards_given():
                    self.boards = [labgrid[0].board.id]
            self._pool = BoardPool(ports=self._ports, inventory=self._inventory, labgrid=labgrid,
                                   lock_wait=self._lock_wait, worker=self.worker)
        return self._pool

    def _boards_given(self) -> bool:
        return bool(self.config.option.tinyedge_board)

    # ------------------------------------------------------------ deploying
    def deploy(self, item, target, model, *, data=None, calib=None, runtime=None, samples=None,
               scope=None) -> Deployment:
        scope = scope or self.scope
        if scope not in SCOPES:
            raise pytest.UsageError(f"tinyedge_deploy(scope={scope!r}): use one of {', '.join(SCOPES)}")
        if target.broken:
            pytest.skip(f"board {target.describe()} is broken: {target.broken}")
        runtime = runtime or self.runtime
        model = Path(model).expanduser().resolve()
        skey = _scope_key(item, scope)
        # A Keras model is converted once (calibrated on `calib`, else on `data`, as deploy does).
        tflite = self.cache.tflite_for(model, calib or data)
        key = (target.name, target.board.id, str(tflite), _stamp(tflite), runtime)
        deps = self.scopes.setdefault(skey, {})
        d = deps.get(key)
        fresh = d is None or d.closed
        if fresh:
            fw = self.cache.prepare(tflite, target.board, runtime)
            self._count("builds" if fw.built else "cache_hits")
            self._count("deploys")
            d = deploy_to(target, fw, data=data, samples=samples, reply_timeout=self.reply_timeout,
                          stats=self.stats)
            deps[key] = d
        else:
            if d.target.current is not d:
                d.start()                # another model ran on the board since: put this one back
            d.validate(data=data, samples=samples)     # once per data set: the firmware stays
        used = item.stash.setdefault(_USED, {})
        if d not in used:
            used[d] = 0 if fresh else len(d.log_lines)   # a fresh board's log starts at its boot
            for prop in d.junit_properties():
                if prop not in item.user_properties:
                    item.user_properties.append(prop)
        return d

    def reference(self, model):
        from ..validation import Reference

        path = Path(model).expanduser().resolve()
        if path not in self._references:
            self._references[path] = Reference(self.cache.tflite_for(path).read_bytes())
        return self._references[path]

    def close_scope(self, skey: str) -> None:
        for d in self.scopes.pop(skey, {}).values():
            d.close()
        if self._pool is not None:
            self._pool.release_idle()

    def _count(self, what: str) -> None:
        self.stats[what] = self.stats.get(what, 0) + 1

    # ---------------------------------------------------------------- hooks
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item):
        seconds = self.timeout
        m = item.get_closest_marker("tinyedge_timeout")
        if m is not None:
            seconds = float(m.args[0]) if m.args else float(m.kwargs.get("seconds", 0))
        if not seconds or seconds <= 0 or not hasattr(signal, "setitimer"):
            yield
            return

        def on_alarm(signum, frame):
            raise TestTimeout(f"{item.nodeid} ran past its tinyedge timeout of {seconds:g} s")

        t0 = time.monotonic()
        old_handler = signal.signal(signal.SIGALRM, on_alarm)
        old_delay, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old_handler)
            if old_delay > 0:   # give back another plugin's timer (pytest-timeout), less the time used
                signal.setitimer(signal.ITIMER_REAL, max(0.001, old_delay - (time.monotonic() - t0)))

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        rep = outcome.get_result()
        used = item.stash.get(_USED, {})
        if not used or rep.when == "teardown" and not rep.failed:
            return
        if rep.when == "call" or rep.failed:
            for d, start in used.items():
                text = "\n".join(d.log_lines[start:])
                err = d.emulator_stderr().strip()
                if err:
                    text += f"\n--- emulator stderr ---\n{err}"
                if rep.failed:
                    rep.sections.append((f"tinyedge board log: {d.target.describe()}", text or "(the board printed nothing)"))
                if self.log_dir is not None:
                    self._write_log(item, rep.when, d, text)
        if rep.failed and call.excinfo is not None:
            notes = self._recover(item, used)
            if notes:
                rep.sections.append(("tinyedge recovery", "\n".join(notes)))

    def _recover(self, item, used) -> list[str]:
        notes = []
        for d in list(used):
            if d.closed or d.healthy():
                continue
            t = d.target
            if t.restarts == 0:
                try:
                    d.restart()
                    notes.append(f"{t.describe()} stopped answering in {item.nodeid}: restarted it")
                    continue
                except TinyedgeError as e:
                    why = f"stopped answering in {item.nodeid} and did not come back after a restart: {e}"
            else:
                why = f"stopped answering again in {item.nodeid} after a restart"
            t.broken = why
            for other in list(t.deployments):
                other.close()
            notes.append(f"{t.describe()} {why}: marked broken; later tests on it skip")
        return notes

    def _write_log(self, item, when, d, text) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid).strip("_")
        with open(self.log_dir / f"{name}.log", "a", encoding="utf-8") as f:
            f.write(f"# {when}: {d.target.describe()} firmware {d.firmware.firmware_sha256[:16]}\n{text}\n")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item, nextitem):
        yield
        self.close_scope(_scope_key(item, "function"))
        if nextitem is None or _module_key(nextitem) != _module_key(item):
            self.close_scope(_scope_key(item, "module"))

    def pytest_sessionfinish(self, session):
        for skey in list(self.scopes):
            self.close_scope(skey)
        if self._pool is not None:
            self._pool.close()
        from ..procutil import close_all

        close_all()           # any emulator a user's test started itself

    def pytest_terminal_summary(self, terminalreporter):
        s = self.stats
        if not s:
            return
        terminalreporter.write_line(
            f"tinyedge: {s.get('deploys', 0)} deploys ({s.get('builds', 0)} built, "
            f"{s.get('cache_hits', 0)} from cache), {s.get('flashes', 0)} flashes, "
            f"{s.get('restarts', 0)} restarts")
        if self._pool is not None:
            for t in self._pool.targets():
                if t.broken:
                    terminalreporter.write_line(f"tinyedge: {t.describe()} broken: {t.broken}")


_USED = pytest.StashKey[dict]()


def _stamp(p: Path) -> tuple:
    try:
        st = p.stat()
        return (st.st_size, st.st_mtime_ns)
    except OSError:
        return ()


def _module_key(item) -> str:
    return item.nodeid.split("::", 1)[0]


def _scope_key(item, scope: str) -> str:
    if scope == "function":
        return f"function:{item.nodeid}"
    if scope == "module":
        return f"module:{_module_key(item)}"
    return "session"


def pytest_generate_tests(metafunc):
    if "tinyedge_target" not in metafunc.fixturenames:
        return
    m = metafunc.definition.get_closest_marker("tinyedge_boards")
    sess = _session(metafunc.config)
    if any(sess._labgrid_args):
        try:
            _ = sess.pool           # a labgrid place's board id is its `board` tag
        except TinyedgeError as e:
            raise pytest.UsageError(f"tinyedge: {e}") from None
    boards = list(m.args) if m is not None else sess.boards
    metafunc.parametrize("tinyedge_target", boards, indirect=True, ids=boards)


def pytest_runtest_setup(item):
    if item.get_closest_marker("tinyedge_hardware") and "tinyedge_target" not in item.fixturenames:
        sess = item.config.stash.get(_KEY, None)
        if sess is not None and not sess._ports and not sess._inventory and not any(sess._labgrid_args):
            pytest.skip("needs a real board: pass --tinyedge-port URL with --tinyedge-board ID, "
                        "or --tinyedge-inventory FILE")


# ---------------------------------------------------------------- fixtures

@pytest.fixture
def tinyedge_target(request):
    """The Target (board) this test runs on: `.board`, `.kind`, `.url`, `.emulated`."""
    sess = _session(request.config)
    board_id = getattr(request, "param", None) or sess.boards[0]
    try:
        t = sess.pool.get(board_id)
    except BoardUnavailable as e:
        pytest.skip(str(e))
    if t.broken:
        pytest.skip(f"board {t.describe()} is broken: {t.broken}")
    if request.node.get_closest_marker("tinyedge_hardware") and t.emulated:
        pytest.skip(f"needs a real board; {t.board.id} is emulated (pass --tinyedge-port URL with "
                    "--tinyedge-board ID, or --tinyedge-inventory FILE)")
    t.users += 1
    yield t
    t.users -= 1


@pytest.fixture
def tinyedge_board(tinyedge_target) -> str:
    """The id of the board this test runs on (parametrized by --tinyedge-board / tinyedge_boards)."""
    return tinyedge_target.board.id


@pytest.fixture
def tinyedge_deploy(request, tinyedge_target):
    """Factory: `tinyedge_deploy(model, data=None, calib=None, runtime=None, samples=None, scope=None)`
    -> Deployment (`.report`, `.device`, `.board`, `.url`), deployed once per scope."""
    sess = _session(request.config)

    def deploy(model, *, data=None, calib=None, runtime=None, samples=None, scope=None) -> Deployment:
        return sess.deploy(request.node, tinyedge_target, model, data=data, calib=calib, runtime=runtime,
                           samples=samples, scope=scope)

    return deploy


@pytest.fixture
def tinyedge_reference(request):
    """Factory: `tinyedge_reference(model)` -> the host reference (tflite-micro interpreter):
    `.run(x_int8) -> y_int8`."""
    return _session(request.config).reference


@pytest.fixture(scope="session")
def tinyedge_session(request) -> HilSession:
    """The plugin's session object (boards, stats), for tests that need more than the fixtures."""
    return _session(request.config)

