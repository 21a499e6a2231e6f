"""The CLI as a new user meets it (issue 17): output streams, widths, one set of options, errors, waits.

Every test runs the real `tinyedge` subprocess and checks what a user sees:
stdout, stderr and the exit status.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, tinyedge_exe

DIGITS = REPO / "examples" / "digits"
VERBS_LOADING_KERAS = ("convert", "deploy", "inspect", "generate")


@pytest.fixture(scope="module")
def fc_model():
    from aot_zoo import zoo_tflite

    return zoo_tflite("fc")


def _lines(text: str) -> list[str]:
    return text.rstrip("\n").splitlines()


# ------------------------------------------------------------------ 1: streams


def test_results_go_to_stdout_and_nothing_else(run_cli, mlperf_tflite, tmp_path):
    r = run_cli("inspect", mlperf_tflite["kws"])
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert "Ops in execution order" in r.stdout and "DEPTHWISE_CONV_2D" in r.stdout and "totals:" in r.stdout
    r = run_cli("boards")
    assert r.returncode == 0 and r.stderr == "" and "qemu-cortex-m4" in r.stdout
    r = run_cli("convert", mlperf_tflite["kws"], "-o", tmp_path / "k.tflite")
    assert r.returncode == 0, r.stderr
    assert "Checked" in r.stdout and "k.tflite" in r.stdout and r.stderr == ""


# ------------------------------------------------------------------ 2: widths


def _tokens(text: str) -> set[str]:
    return set(text.split())


@pytest.mark.parametrize("columns", [80, 120])
def test_tables_fit_the_width_and_never_cut_a_token(run_cli, mlperf_tflite, columns):
    env = {"COLUMNS": str(columns)}
    r = run_cli("inspect", mlperf_tflite["vww"], "--board", "qemu-cortex-m3", env=env)
    assert r.returncode == 0, r.stderr
    too_long = [line for line in _lines(r.stdout) if len(line) > columns]
    assert not too_long, too_long
    rep = json.loads(run_cli("inspect", mlperf_tflite["vww"], "--board", "qemu-cortex-m3", "--json").stdout)
    toks = _tokens(r.stdout)
    for op in rep["ops"]:
        assert op["opcode"] in toks, op["opcode"]
        assert f"{op['macs']:,}" in toks and f"{op['weight_bytes']:,}" in toks
        for t in op["outputs"]:
            assert "x".join(map(str, t["shape"])) in toks
    for n in (rep["totals"]["macs"], rep["memory"]["peak_live_bytes"], rep["fit"]["flash_bytes"]):
        assert f"{n:,}" in toks or f"{n:,}," in toks

    r = run_cli("boards", env=env)
    assert r.returncode == 0, r.stderr
    too_long = [line for line in _lines(r.stdout) if len(line) > columns]
    assert not too_long, too_long
    toks = _tokens(r.stdout)
    for b in json.loads(run_cli("boards", "--json").stdout)["boards"]:
        assert {b["id"], b["cpu"], b["family"], b["cycle_unit"], b["flash"]["method"]} <= toks, b["id"]


def test_the_convert_summary_fits_80_columns_with_a_long_path(run_cli, mlperf_tflite, tmp_path):
    deep = tmp_path / ("a-rather-long-folder-name-" * 3) / "and-another-one" / "kws_model_int8_checked.tflite"
    r = run_cli("convert", mlperf_tflite["kws"], "-o", deep, env={"COLUMNS": "80"})
    assert r.returncode == 0, r.stderr
    assert all(len(line) <= 80 for line in _lines(r.stdout)), r.stdout
    assert "kws_model_int8_checked.tflite" in _tokens(r.stdout) | {t.rsplit("/", 1)[-1] for t in _tokens(r.stdout)}


def test_long_paths_shorten_from_the_left_and_keep_the_file_name():
    from tinyedge.console import short_path

    p = "/home/someone/projects/tinyml/examples/digits/model.h5"
    assert short_path(p, 100) == p
    assert short_path(p, 30) == ".../examples/digits/model.h5"
    assert short_path(p, 10) == ".../model.h5"      # the file name is never cut


def test_words_wrap_between_words_only():
    from tinyedge.console import wrap_words

    text = "memory: peak live activations 55,296 B at op #2 (CONV_2D); planned arena 1x48x48x16 B"
    lines = [line.plain for line in wrap_words(text, 30)]
    assert all(len(line) <= 30 for line in lines)
    assert " ".join(w for line in lines for w in line.split()) == text


# ------------------------------------------------------------------ 13: one set of options


def test_bare_tinyedge_prints_the_help_and_succeeds(run_cli):
    r = run_cli()
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.startswith("Usage: tinyedge") and "deploy" in r.stdout


def test_global_options_work_after_the_verb(run_cli, tmp_path):
    text = (REPO / "boards" / "qemu-cortex-m3.toml").read_text().replace('id = "qemu-cortex-m3"', 'id = "my-m3"')
    (tmp_path / "my-m3.toml").write_text(text)
    for args in (["--boards-dir", tmp_path, "boards"], ["boards", "--boards-dir", tmp_path], ["boards", "-v"]):
        r = run_cli(*args)
        assert r.returncode == 0, (args, r.stderr)
        assert ("my-m3" in r.stdout) == ("-v" not in args), args


@pytest.mark.parametrize("verb", VERBS_LOADING_KERAS)
def test_every_verb_that_loads_keras_takes_the_same_options(run_cli, verb):
    r = run_cli(verb, "--help")
    assert r.returncode == 0
    for opt in ("--trust-code", "--calib", "--calib-samples"):
        assert opt in r.stdout, (verb, opt)
    if verb != "inspect":                       # every verb that writes takes -o/--output
        assert "-o, --output" in r.stdout, verb


def test_one_spelling_per_option(run_cli):
    helps = {v: " ".join(run_cli(v, "--help").stdout.split()) for v in ("deploy", "validate", "monitor", "emulate", "generate")}
    for v in ("deploy", "validate"):
        assert "--baud" in helps[v] and "--timeout" in helps[v] and "--timeout FLOAT RANGE Seconds to wait for each reply from the board. [default: 30.0" in helps[v]
        assert re.search(r"-n, --samples", helps[v])
    assert "-r, --runtime" in helps["emulate"] and "-o, --output" in helps["emulate"]
    assert "--baud" in helps["monitor"]
    # validate finds the port itself, as deploy and flash do
    assert "[required]" not in helps["validate"]


def test_the_newer_verbs_take_the_same_options(run_cli):
    """compress and mlperf (added after the first round) spell their options as every verb does."""
    comp = " ".join(run_cli("compress", "--help").stdout.split())
    assert "-o, --output, --out FILE" in comp and "--force" in comp and "--trust-code" in comp
    ml = " ".join(run_cli("mlperf", "--help").stdout.split())
    assert "-p, --port URL" in ml and "--baud INTEGER RANGE" in ml
    assert "--timeout FLOAT RANGE Seconds to wait for each reply from the board. [default: 30.0" in ml
    assert "[required]" not in ml                  # the port is found as deploy, flash and validate find it


def test_mlperf_without_a_port_looks_for_the_board(run_cli, mlperf_tflite):
    from tinyedge.ports import list_ports

    if any(p.likely_board for p in list_ports()):
        pytest.skip("a board is attached here")
    r = run_cli("mlperf", mlperf_tflite["kws"], "--json")
    assert r.returncode == 2
    obj = json.loads(r.stdout)
    assert obj["type"] == "NoPortFound" and "pass --port" in obj["error"]
    assert len(_lines(r.stderr)) == 1


def test_json_errors_are_json_on_stdout(run_cli, tmp_path):
    r = run_cli("inspect", tmp_path / "nope.tflite", "--json")
    assert r.returncode == 2
    obj = json.loads(r.stdout)
    assert "does not exist" in obj["error"] and obj["exit_code"] == 2
    assert r.stderr.startswith("error: ") and len(_lines(r.stderr)) == 1
    r = run_cli("boards", "--no-such-option", "--json")
    assert r.returncode == 2 and "No such option" in json.loads(r.stdout)["error"]


def test_ignored_options_are_said(run_cli, fc_model, tmp_path):
    np.savez(tmp_path / "c.npz", x=np.zeros((2, 4), np.float32))
    r = run_cli("inspect", fc_model, "--calib", tmp_path / "c.npz", "--trust-code")
    assert r.returncode == 0, r.stderr
    assert "warning:" in r.stderr and "--calib" in r.stderr and "--trust-code" in r.stderr
    assert "ignored" in r.stderr


# ------------------------------------------------------------------ 3: no silent overwrite


def test_convert_refuses_an_existing_output_file(run_cli, fc_model, tmp_path):
    precious = tmp_path / "model.h5"
    precious.write_bytes(b"my keras model")
    r = run_cli("convert", fc_model, "-o", precious)
    assert r.returncode == 2
    assert _lines(r.stderr) == [f"error: {precious} already exists; choose another output file with -o, "
                                "or pass --force to overwrite it"]
    assert precious.read_bytes() == b"my keras model"
    r = run_cli("convert", fc_model, "-o", precious, "--force")
    assert r.returncode == 0, r.stderr
    assert precious.read_bytes() == fc_model.read_bytes()


def test_compress_refuses_an_existing_output_before_it_trains(run_cli, tmp_path):
    from tinyedge.compress.core import check_output
    from tinyedge.errors import OutputExistsError

    precious = tmp_path / "small.h5"
    precious.write_bytes(b"my compressed model")
    r = run_cli("compress", DIGITS / "model.h5", "--train", DIGITS / "test.npz", "--output", precious,
                "--prune-channels", "0.5")
    assert r.returncode == 2 and r.stdout == ""
    # refused up front: the one error line, before any step (loading, training) started
    assert _lines(r.stderr) == [f"error: {precious} already exists; choose another output file with -o, "
                                "or pass --force to overwrite it"]
    assert precious.read_bytes() == b"my compressed model"
    (tmp_path / "fresh_int8.tflite").write_bytes(b"my int8 model")     # the .tflite compress writes beside OUT
    with pytest.raises(OutputExistsError, match="fresh_int8.tflite already exists"):
        check_output(tmp_path / "fresh.h5")
    assert check_output(tmp_path / "fresh.h5", force=True) == tmp_path / "fresh.h5"


def test_validate_refuses_an_existing_report_file(run_cli, fc_model, tmp_path):
    report = tmp_path / "r.json"
    report.write_text("{}")
    r = run_cli("validate", fc_model, "--port", "loop://", "--report", report)
    assert r.returncode == 2 and "already exists" in r.stderr and report.read_text() == "{}"


# ------------------------------------------------------------------ 10: labels


def test_labels_that_are_not_class_numbers_are_user_errors(run_cli, mlperf_tflite, tmp_path):
    x = np.zeros((3, 49, 10, 1), np.float32)
    np.savez(tmp_path / "names.npz", x=x, y=np.array(["cat", "dog", "cat"]))
    np.savez(tmp_path / "range.npz", x=x, y=np.array([0, 12, 15]))
    r = run_cli("validate", mlperf_tflite["kws"], "--port", "loop://", "--data", tmp_path / "names.npz")
    assert r.returncode == 2, r.stderr
    assert _lines(r.stderr) == [f"error: {tmp_path / 'names.npz'}: y holds strings ('cat', 'dog'); labels must "
                                "be integer class numbers; map the class names to 0..N-1 and save y as integers"]
    r = run_cli("validate", mlperf_tflite["kws"], "--port", "loop://", "--data", tmp_path / "range.npz")
    assert r.returncode == 2, r.stderr
    assert "2 label(s) of y are outside the model's 12 classes 0..11 (12, 15)" in r.stderr
    assert len(_lines(r.stderr)) == 1


# ------------------------------------------------------------------ 12: no garbage folders


def test_a_failed_deploy_leaves_no_folder_behind(run_cli, tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not a model at all")
    work = tmp_path / "work"
    work.mkdir()
    r = run_cli("deploy", junk, "--board", "host", cwd=work)
    assert r.returncode == 2 and "is not a model tinyedge can read" in r.stderr
    assert list(work.iterdir()) == []          # neither build/junk-host-aot/ nor build/


def test_one_deploy_one_folder():
    from tinyedge.pipeline import default_output_dir

    aot, tflm = (default_output_dir(Path("m.h5"), "esp32", rt) for rt in ("aot", "tflm"))
    assert aot != tflm and aot.name == "m-esp32-aot" and tflm.name == "m-esp32-tflm"


# ------------------------------------------------------------------ 14: generate without a board


def test_generate_without_a_board_writes_sources_that_compile(run_cli, fc_model, tmp_path):
    out = tmp_path / "src"
    r = run_cli("generate", fc_model, "-o", out)
    assert r.returncode == 0, r.stderr
    assert "README.md" in os.listdir(out) and "te_fc.c" in os.listdir(out) and "te_kernels.h" in os.listdir(out)
    c_files = sorted(f for f in os.listdir(out) if f.endswith(".c"))
    readme = (out / "README.md").read_text()
    assert readme.startswith("<!-- generated by tinyedge") and f"cc -std=c99 -O2 -I. -c {' '.join(c_files)}" in readme
    cc = subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-I.", "-c", *c_files], cwd=out,
                        capture_output=True, text=True)
    assert cc.returncode == 0, cc.stderr


# ------------------------------------------------------------------ 5: no silent waits


def _server(chatty: bool):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    stop = threading.Event()

    def serve():
        c, _ = srv.accept()
        while not stop.is_set():
            if chatty:
                try:
                    c.sendall(b"AT+OK modem ready\r\n")
                except OSError:
                    break
            time.sleep(0.2)
        c.close()

    threading.Thread(target=serve, daemon=True).start()
    return srv, stop


@pytest.mark.parametrize("chatty", [False, True])
def test_a_port_that_is_not_a_board_fails_soon_and_says_what_it_sent(fc_model, chatty):
    srv, stop = _server(chatty)
    url = f"socket://127.0.0.1:{srv.getsockname()[1]}"
    try:
        t0 = time.monotonic()
        proc = subprocess.Popen([*tinyedge_exe(), "validate", str(fc_model), "--port", url, "--timeout", "0.5"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = proc.stderr.readline()
        said_at = time.monotonic() - t0
        rest = proc.stderr.read()
        proc.wait(timeout=30)
    finally:
        stop.set()
        srv.close()
    assert first.startswith(f"waiting for the board's hello on {url}"), first
    assert said_at < 2 + 3                         # 1 s of waiting, plus the CLI's start-up
    assert proc.returncode == 2
    last = _lines(rest)[-1]
    assert last.startswith(f"error: {url}: no answer to hello within 3 s")
    if chatty:
        assert "the port sent" in last and "AT+OK modem ready" in last
    else:
        assert "the port sent nothing" in last


@pytest.mark.parametrize("port", ["/dev/null", "/dev/ttyUSB9"])
def test_monitor_on_a_port_it_cannot_open_is_an_error(run_cli, port):
    r = run_cli("monitor", "--port", port, timeout=20)
    assert r.returncode == 2
    assert _lines(r.stderr) and _lines(r.stderr)[0].startswith(f"error: cannot open {port}")


# ------------------------------------------------------------------ 15: one reader per port, output from the start


HOLDER = re.compile(r"is in use by pid (\d+) \((.*), since \d\d:\d\d:\d\d\); two readers would corrupt its "
                    r"session; stop the other one first, or watch an emulated board with 'tinyedge monitor' "
                    r"\(it mirrors the board read-only\)$")


def _pty() -> tuple[int, int, str]:
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    return master, slave, os.ttyname(slave)


def _tcp_board():
    """A plain TCP server standing for a board behind a socket:// port (ser2net, a remote UART)."""
    srv = socket.create_server(("127.0.0.1", 0))
    conns: list[socket.socket] = []
    threading.Thread(target=lambda: conns.append(srv.accept()[0]), daemon=True).start()
    return srv, conns


@pytest.mark.parametrize("kind", ["pty", "socket"])
def test_a_second_reader_is_refused_naming_the_holder_and_the_session_keeps_every_byte(run_cli, kind):
    from tinyedge.link.transport import Transport

    if kind == "pty":
        master, slave, url = _pty()
    else:
        srv, conns = _tcp_board()
        url = f"socket://localhost:{srv.getsockname()[1]}"      # the holder spells it 127.0.0.1
    first = Transport(url.replace("localhost", "127.0.0.1"))
    try:
        if kind == "socket":
            while not conns:
                time.sleep(0.01)
        pattern = bytes(range(256)) * 16

        def board_talks():
            if kind == "pty":
                os.write(master, pattern)
            else:
                conns[0].sendall(pattern)

        talker = threading.Thread(target=board_talks)
        talker.start()                              # the board talks while the second reader tries
        r = run_cli("monitor", "--port", url, "--exit-after", "2", timeout=30)
        talker.join()
        got = b""
        while len(got) < len(pattern):
            chunk = first.read(1.0)
            assert chunk, f"the session lost bytes: {len(got)} of {len(pattern)}"
            got += chunk
        assert got == pattern                       # every byte, in order, to the one session
    finally:
        first.close()
        if kind == "pty":
            os.close(master)
            os.close(slave)
        else:
            srv.close()
    assert r.returncode == 2 and r.stdout == ""
    [line] = _lines(r.stderr)
    assert line.startswith(f"error: {url} ")
    m = HOLDER.search(line)
    assert m, line
    from tinyedge.ports import _this_command

    assert int(m.group(1)) == os.getpid() and m.group(2) == _this_command()[:len(m.group(2))]


def test_a_port_locked_by_another_program_names_it(run_cli, tmp_path):
    master, slave, path = _pty()
    script = tmp_path / "terminal.py"       # a terminal program that locks the port, as pyserial's exclusive does
    script.write_text("import fcntl, os, sys, time\n"
                      "fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)\n"
                      "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, str(script), path], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        r = run_cli("monitor", "--port", path, "--exit-after", "1", timeout=30)
    finally:
        holder.kill()
        holder.wait()
        os.close(master)
        os.close(slave)
    assert r.returncode == 2, r.stderr
    assert len(_lines(r.stderr)) == 1, r.stderr
    [line] = _lines(r.stderr)
    assert line.startswith(f"error: {path} is in use by pid {holder.pid} (python") and "terminal.py" in line


def _silent_board(model):
    """A board that printed its banner before anyone listened: tinyedge's protocol (the Python
    device server with the tflite-micro interpreter) on a pty that tinyedge did not start, as a
    real board on a USB port is."""
    from tinyedge.emulation import ProtocolServer, TflmBackend

    server = ProtocolServer(TflmBackend(model))
    master, slave, path = _pty()
    stop = threading.Event()

    def serve():
        import select

        while not stop.is_set():
            if select.select([master], [], [], 0.1)[0]:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    return
                os.write(master, server.feed(data))

    threading.Thread(target=serve, daemon=True).start()
    return path, lambda: (stop.set(), os.close(master), os.close(slave))


def test_monitor_asks_a_silent_board_who_it_is(fc_model):
    path, close = _silent_board(fc_model)
    try:
        r = subprocess.run([*tinyedge_exe(), "monitor", "--port", path, "--exit-after", "4"],
                           capture_output=True, text=True, timeout=60)
    finally:
        close()
    assert r.returncode == 0, r.stderr
    assert "sent one hello" in r.stderr
    assert re.search(r"\[frame v1 HELLO_REPLY seq=0 board=host runtime=tflm model=[0-9a-f]{16} ", r.stdout), r.stdout


@pytest.fixture(scope="module")
def qemu_fc_project(fc_model):
    import shutil

    if shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("needs qemu-system-arm and arm-none-eabi-gcc")
    from build_cache import cached_build

    return cached_build(fc_model, "qemu-cortex-m4")[0]


def test_monitor_shows_an_emulated_boards_output_from_its_start_beside_validate(fc_model, qemu_fc_project):
    """`tinyedge flash` starts QEMU (its banner is printed before anyone else attaches); a monitor
    started later shows that banner, and mirrors a validate's session on the same port without
    taking a byte of it; a second session on the port is refused, naming the first."""
    from tinyedge.link.transport import Transport
    from tinyedge.ports import PortBusy

    flash = subprocess.Popen([*tinyedge_exe(), "flash", str(qemu_fc_project)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    monitor = None
    try:
        err = ""
        while not re.search(r"running; its port is\s+socket://127\.0\.0\.1:\d+", err):
            line = flash.stderr.readline()
            assert line, f"flash ended before it named the port: {err!r}"
            err += line
        url = re.search(r"socket://127\.0\.0\.1:\d+", err).group(0)
        monitor = subprocess.Popen([*tinyedge_exe(), "monitor", "--port", url, "--exit-after", "60"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = monitor.stdout.readline()
        assert first.startswith("tinyedge ready board=qemu-cortex-m4 runtime=aot "), first
        held = Transport(url)                       # a session holds the port: a second is refused
        try:
            with pytest.raises(PortBusy) as busy:
                Transport(url)
        finally:
            held.close()
        assert HOLDER.search(str(busy.value)) and f"pid {os.getpid()} " in str(busy.value)
        v = subprocess.run([*tinyedge_exe(), "validate", str(fc_model), "--port", url, "--samples", "5",
                            "--json"], capture_output=True, text=True, timeout=120)
        assert v.returncode == 0, v.stderr
        rep = json.loads(v.stdout)
        assert rep["samples"] == 5 and rep["agreement"]["bit_exact_rate"] == 1.0
        monitor.send_signal(signal.SIGINT)
        out, mon_err = monitor.communicate(timeout=30)
    finally:
        for proc in (monitor, flash):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
    assert monitor.returncode == 0, mon_err
    assert mon_err.startswith(f"mirroring {url} (emulated board qemu-cortex-m4, pid ")
    lines = _lines(out)
    assert "garbage" not in out
    assert sum(1 for ln in lines if re.match(r"\[frame v1 RESULT seq=\d+ TE_OK count=\d+ outputs=20 bytes\]$", ln)) == 5
    assert any(ln.startswith("[frame v1 HELLO_REPLY") and "board=qemu-cortex-m4" in ln for ln in lines)


# ------------------------------------------------------------------ 8: Ctrl-C


def test_ctrl_c_while_streaming_exits_130_with_a_partial_report(fc_model):
    emu = subprocess.Popen([*tinyedge_exe(), "emulate", str(fc_model), "--runtime", "tflm", "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        head = ""
        while not head.rstrip().endswith("}"):
            line = emu.stdout.readline()
            assert line, emu.stderr.read()
            head += line
        port = json.loads(head)["port"]
        proc = subprocess.Popen([*tinyedge_exe(), "validate", str(fc_model), "--port", port, "-n", "100000"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "COLUMNS": "100"})
        # Interrupt once streaming has begun (the CLI says so on stderr when it is not a terminal).
        first = proc.stderr.readline()
        assert first.startswith(f"streaming to {port}: 1 of 100000 samples"), first
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        emu.send_signal(signal.SIGINT)
        emu.wait(timeout=20)
    assert proc.returncode == 130, err
    m = re.search(r"samples\s+(\d+) of 100000", out)
    assert m, out
    done = int(m.group(1))
    assert 0 < done < 100000 and "INTERRUPTED" in out
    assert f"interrupted: validated {done} of 100000 samples" in out
    assert "WARNING" not in err and "tinyedge.validation" not in err and "Traceback" not in err
    assert _lines(err)[-1] == f"error: interrupted after {done} of 100000 samples"


if sys.platform != "linux":  # pragma: no cover
    pytestmark = pytest.mark.skip(reason="ptys and /proc are Linux-only here")


# ------------------------------------------------------------------ 17: ESP-IDF projects


def test_esp_idf_projects_name_their_target_and_have_plain_modes(run_cli, mlperf_tflite, tmp_path):
    out = tmp_path / "esp"
    r = run_cli("generate", mlperf_tflite["kws"], "-b", "esp32c3", "-o", out)
    assert r.returncode == 0, r.stderr
    assert 'CONFIG_IDF_TARGET="esp32c3"\n' in (out / "sdkconfig.defaults").read_text()
    mask = os.umask(0o022)
    os.umask(mask)
    modes = {p.relative_to(out).as_posix(): p.stat().st_mode & 0o777 for p in [out, *out.rglob("*")]}
    want_file, want_dir = 0o666 & ~mask, 0o777 & ~mask
    wrong = {k: oct(m) for k, m in modes.items()
             if m != (want_dir if (out / k).is_dir() else want_file)}
    assert not wrong, wrong


def test_deploy_without_idf_py_says_where_the_project_is(run_cli, mlperf_tflite, tmp_path):
    env = {"PATH": os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                                   if not (Path(p) / "idf.py").exists())}
    out = tmp_path / "dep"
    r = run_cli("deploy", mlperf_tflite["kws"], "-b", "esp32", "--port", "loop://", "-o", out, env=env)
    assert r.returncode == 2
    last = _lines(r.stderr)[-1]
    assert last.startswith("error: idf.py is not installed") and f"the generated project is in {out / 'project'}" in last
    assert (out / "project" / "CMakeLists.txt").is_file()


# ------------------------------------------------------------------ 6: fit per runtime


def test_fit_is_judged_with_the_runtime_the_build_will_have(run_cli, mlperf_tflite, tmp_path):
    text = (REPO / "boards" / "qemu-cortex-m3.toml").read_text()
    text = text.replace('id = "qemu-cortex-m3"', 'id = "ram80"').replace("ram_bytes = 4194304", "ram_bytes = 81920")
    (tmp_path / "ram80.toml").write_text(text)
    fits = {}
    for rt in ("aot", "tflm"):
        r = run_cli("inspect", mlperf_tflite["vww"], "-b", "ram80", "-r", rt, "--boards-dir", tmp_path, "--json")
        assert r.returncode == 0, r.stderr
        fit = json.loads(r.stdout)["fit"]
        assert fit["runtime"] == rt
        fits[rt] = fit
    # aot needs its own arena (28,032 B row-streamed; 55,296 B op by op) plus the stack; TFLM needs
    # its measured arena plus margin
    assert fits["aot"]["ram_needed"] == 28_032 + fits["aot"]["stack_bytes"] and fits["aot"]["fits"] is True
    assert fits["tflm"]["ram_needed"] > 103_680 and fits["tflm"]["fits"] is False
    assert fits["aot"]["flash_needed"] < fits["tflm"]["flash_needed"] == mlperf_tflite["vww"].stat().st_size
