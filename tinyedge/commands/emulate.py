"""`tinyedge emulate MODEL`: serve a host-emulated board on a pty until Ctrl-C."""

from __future__ import annotations

import time

import click

from ..console import emit_json, info
from ..errors import LinkError
from ._common import existing_path, force_option, json_option, output_option, runtime_option


@click.command("emulate")
@click.argument("model", type=existing_path(dir_okay=False))
@runtime_option(emulated=True)
@output_option("out_dir", help="Folder for the host firmware project (aot); default build/<model>-host.")
@force_option
@json_option
def command(model, runtime, out_dir, force, as_json):
    """Serve MODEL as an emulated board on a pty and print the pty's path.

    Any serial tool (or 'tinyedge validate --port PATH') can talk to it; it
    speaks the same protocol as a real board.  Ctrl-C stops it.
    """
    import signal

    from ..emulation import emulate

    def on_term(signum, frame):            # `kill PID` stops the board as cleanly as Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    board = emulate(model, runtime=runtime, work_dir=out_dir, force=force)
    try:
        if as_json:
            emit_json({"port": board.port, "runtime": runtime, "announcement": board.announcement,
                       "pid": getattr(board, "pid", None)})
        else:
            click.echo(board.port)
            info(f"{board.announcement}\nserving on {board.port} (Ctrl-C to stop)")
        try:
            while board.alive():
                time.sleep(0.2)
            raise LinkError("the emulated board stopped", hint="run again with --verbose to see why")
        except KeyboardInterrupt:
            pass
    finally:
        board.close()
