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

    Runs until Ctrl-C; when the port goes away (a USB board reset), waits for
    it to come back and goes on.  A port that cannot be opened is an error.
    The port is held exclusively: a monitor beside a validate on the same
    port is refused rather than stealing its bytes.
    """
    from ..errors import LinkError
    from ..link import protocol as p
    from ..link.protocol import Frame, FrameDecoder, Garbage, TextLine
    from ..link.transport import Transport, open_with_backoff

    if port is None:
        from ..ports import pick_port

        port = pick_port()
    deadline = None if exit_after is None else time.monotonic() + exit_after

    def done() -> bool:
        return deadline is not None and time.monotonic() >= deadline

    def emit(line: str) -> None:
        click.echo(line)

    t = Transport(port, baud=baud)          # a port that cannot be opened: an error, exit 2
    try:
        while not done():
            if t is None:
                try:
                    t = open_with_backoff(port, baud=baud, stop=done)
                except LinkError:
                    return
            info(f"monitoring {port} at {baud} baud (Ctrl-C to stop)")
            dec = FrameDecoder()
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
                    if raw:
                        emit(data.hex(" "))
                        continue
                    for ev in dec.feed(data):
                        if isinstance(ev, TextLine):
                            emit(ev.text)
                        elif isinstance(ev, Frame):
                            emit(describe_frame(ev))
                        elif isinstance(ev, Garbage):
                            emit(f"[garbage {len(ev.data)} bytes: {ev.data[:16].hex(' ')}"
                                 f"{' ...' if len(ev.data) > 16 else ''}]")
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
