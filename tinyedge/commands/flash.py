"""`tinyedge flash DIR`: write a built project's firmware to its board (or start an emulated one)."""

from __future__ import annotations

import click

from ..console import emit_json, err, info
from ..console import result as show
from ._common import existing_path, json_option, port_option


@click.command("flash")
@click.argument("project_dir", type=existing_path(file_okay=False))
@port_option()
@click.option("--board", "-b", "board_id", default=None, metavar="BOARD",
              help="Board id; default: the one the project was generated for (they must agree).")
@click.option("--method", default=None, metavar="METHOD",
              help="Use one of the board's alt_methods instead of its flash.method.")
@click.option("--no-stub", is_flag=True,
              help="esptool: talk to the ROM bootloader only, without uploading the stub flasher.")
@click.option("--connect-attempts", type=click.IntRange(1, 100), default=None,
              help="esptool: how many times to try to reach the bootloader (default 7).")
@click.option("--merged", is_flag=True, help="esptool: write one image merged with esptool's merge_bin.")
@click.option("--volume", type=click.Path(file_okay=False), default=None,
              help="uf2: the mounted board drive (default: found by its INFO_UF2.TXT).")
@click.option("--probe", default=None, metavar="ID",
              help="pyocd: the debug probe's unique id, when several are attached.")
@json_option
def command(project_dir, port, board_id, method, no_stub, connect_attempts, merged, volume, probe, as_json):
    """Flash the built firmware of PROJECT_DIR (run 'tinyedge build' first).

    Real boards are written with the board's flash method (esptool, pyocd,
    the STM32 serial bootloader, UF2 copy); emulated boards are started and
    served until Ctrl-C.
    """
    from ..flashers.dispatch import flash_project

    options = {"use_stub": False if no_stub else None, "connect_attempts": connect_attempts,
               "merged": merged or None, "volume": volume, "probe": probe}
    bar = None
    task = None

    def progress(done: int, total: int) -> None:
        # The bar starts with the first bytes written, so errors before it stay one line.
        nonlocal bar, task
        if as_json:
            return
        if bar is None:
            from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

            bar = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                           TimeRemainingColumn(), console=err, transient=True)
            bar.start()
            task = bar.add_task("flashing", total=total)
        bar.update(task, completed=done, total=total)

    try:
        result = flash_project(project_dir, port=port, board=board_id, method=method, options=options,
                               progress=progress)
    finally:
        if bar is not None:
            bar.stop()
    try:
        if as_json:
            emit_json({"port": result.port, "running": result.process is not None, **result.details})
        else:
            d = result.details
            what = d.get("chip") or d.get("target") or d.get("method", "board")
            files = d.get("files") or []
            total = sum(f.get("bytes", 0) for f in files)
            extra = f", {total:,} bytes in {len(files)} image(s)" if files else ""
            verified = ", verified" if d.get("verified") else ""
            show(f"flashed {what}{extra}{verified}" + (f"; it talks on {result.port}" if result.port else ""))
        if result.process is not None:
            ann = result.details.get("announcement")
            if isinstance(ann, dict) and not as_json:
                # The board printed this before anyone could connect: show it, it is the board's start.
                show("tinyedge ready " + " ".join(f"{k}={v}" for k, v in ann.items()))
            info(f"the emulated board is running; its port is {result.port} (Ctrl-C stops it); "
                 f"'tinyedge monitor --port {result.port}' shows its output from the start")
            _serve_until_interrupted()
    finally:
        result.close()


def _serve_until_interrupted() -> None:
    import time

    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
