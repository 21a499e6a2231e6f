"""`tinyedge monitor --port URL`: the board's text output, with protocol frames decoded."""

from __future__ import annotations

import time

import click

from ..console import info
from ._common import baud_option, port_option


def describe_frame(f) -> str:
    """One readable line for a protocol frame."""
    from ..link import protocol as p

    head = f"[frame v{f.version} {f.name} seq={f.seq}"
    try:
        if f.type == p.HELLO_REPLY:
            i = p.decode_hello(f.body)
            ins = " ".join("x".join(map(str, t.shape)) + f":{t.dtype}" for t in i.inputs)
            outs = " ".join("x".join(map(str, t.shape)) + f":{t.dtype}" for t in i.outputs)
            return (f"{head} board={i.board} runtime={i.runtime} model={i.model_sha256[:16]} unit={i.unit} "
                    f"max_frame={i.max_frame} in={ins} out={outs}]")
        if f.type == p.INPUT:
            flags, off, data = p.decode_input(f.body)
            names = "|".join(n for n, b in (("ACK", p.FLAG_ACK), ("LAST", p.FLAG_LAST)) if flags & b) or "-"
            return f"{head} offset={off} bytes={len(data)} flags={names}]"
        if f.type == p.ACK:
            st, nxt = p.decode_ack(f.body)
            return f"{head} {p.status_name(st)} next={nxt}]"
        if f.type == p.RESULT:
            st, count = f.body[0], int.from_bytes(f.body[1:9], "little")
            return f"{head} {p.status_name(st)} count={count} outputs={len(f.body) - 9} bytes]"
        if f.type == p.ERROR:
            st, ver = p.decode_error(f.body)
            return f"{head} {p.status_name(st)} device_proto={ver}]"
    except p.ProtocolError as e:
        return f"{head} malformed body: {e}]"
    return f"{head} {len(f.body)} bytes]"


PROBE_AFTER = 1.5      # seconds of silence after connecting before one hello is sent
SILENT_NOTICE = 5.0    # seconds of silence before saying that nothing arrives


class Shower:
    """Turns the bytes of a line into what monitor prints: text lines, decoded frames, garbage."""

    def __init__(self, raw: bool):
        from ..link.protocol import FrameDecoder

        self.raw = raw
        self.dec = FrameDecoder()

    def feed(self, data: bytes) -> None:
        from ..link.protocol import Frame, Garbage, TextLine

        if self.raw:
            click.echo(data.hex(" "))
            return
        for ev in self.dec.feed(data):
            if isinstance(ev, TextLine):
                click.echo(ev.text)
            elif isinstance(ev, Frame):
                click.echo(describe_frame(ev))
            elif isinstance(ev, Garbage):
                click.echo(f"[garbage {len(ev.data)} bytes: {ev.data[:16].hex(' ')}"
                           f"{' ...' if len(ev.data) > 16 else ''}]")


def mirror(board, port: str, raw: bool, done) -> None:
    """Show an emulated board's output from its first byte, following its log (never its port)."""
    import os

    info(f"mirroring {port} (emulated board {board.board or '?'}, pid {board.pid}) read-only from its start; "
         "Ctrl-C to stop")
    show = Shower(raw)
    try:
        f = open(board.log, "rb")  # noqa: SIM115 - closed below
    except OSError as e:
        from ..errors import LinkError

        raise LinkError(f"cannot read the output of the emulated board on {port}: {e}",
                        hint="is it still running?") from None
    with f:
        while not done():
            data = f.read(65536)
            if data:
                show.feed(data)
                continue
            if not board.alive() or not os.path.exists(board.log):
                info(f"the emulated board on {port} stopped")
                return
            time.sleep(0.05)


@click.command("monitor")
@port_option()
@baud_option
@click.option("--raw", is_flag=True, help="Show the bytes in hex instead of decoding them.")
@click.option("--hello/--no-hello", default=True, show_default=True,
              help="When the board is silent after connecting (it printed its banner before), send one hello "
                   "so that it says which board, runtime and model it is.")
@click.option("--exit-after", type=float, default=None, hidden=True, help="Stop after this many seconds (tests).")
def command(port: str | None, baud: int, raw: bool, hello: bool, exit_after: float | None):
    """Show a board's text output and decode protocol frames into readable lines.

    An emulated board that tinyedge started (flash, emulate, deploy) is shown
    from its first byte and mirrored read-only: monitor reads the board's log,
    never its port, so it can run beside a validate.  On any other port,
    monitor holds the port exclusively: beside a validate it is refused (exit
    2, naming who holds the port) rather than stealing its bytes.

    Runs until Ctrl-C; when the port goes away (a USB board reset), waits for
    it to come back and goes on.  A port that cannot be opened is an error.
    """
    from ..errors import LinkError
    from ..link import protocol as p
    from ..link.transport import Transport, open_with_backoff
    from ..ports import find_emulated

    if port is None:
        from ..ports import pick_port

        port = pick_port()
    deadline = None if exit_after is None else time.monotonic() + exit_after

    def done() -> bool:
        return deadline is not None and time.monotonic() >= deadline

    t = None
    try:
        board = find_emulated(port)
        if board is not None and board.live:
            mirror(board, port, raw, done)
            return
        t = Transport(port, baud=baud)      # cannot be opened, or held by another session: an error, exit 2
        while not done():
            if t is None:
                try:
                    t = open_with_backoff(port, baud=baud, stop=done)
                except LinkError:
                    return
            info(f"monitoring {port} at {baud} baud (Ctrl-C to stop)")
            show = Shower(raw)
            since, probed, noticed, heard = time.monotonic(), not hello, False, False
            try:
                while not done():
                    data = t.read(0.2)
                    if not data:
                        quiet = time.monotonic() - since
                        if not heard and not probed and quiet >= PROBE_AFTER:
                            probed = True
                            info("nothing received yet; sent one hello to ask the board who it is")
                            t.write(p.encode_frame(p.HELLO, 0, b"", lead=True))
                        elif not heard and not noticed and quiet >= SILENT_NOTICE:
                            noticed = True
                            info(f"nothing received from {port} in {SILENT_NOTICE:g} s: is the board running, "
                                 f"and at {baud} baud?")
                        continue
                    heard = True
                    show.feed(data)
            except LinkError as e:
                info(f"lost {port} ({e.message}); waiting for it to come back")
            finally:
                t.close()
                t = None
    except KeyboardInterrupt:
        pass
    finally:
        if t is not None:
            t.close()
