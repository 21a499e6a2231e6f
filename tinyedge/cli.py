"""The `tinyedge` command: a thin layer that parses arguments and calls the library.

Verbs live one per module in `tinyedge.commands`; each module defines a click
command named `command`.  This file finds them, so adding a verb never means
editing a list here.

The global rule: a TinyedgeError (user error) prints one `error: ...` line
and exits 2; anything else is a bug and exits 1.  No traceback unless
`--verbose`.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import sys

import click

from . import __version__
from .errors import TinyedgeError

log = logging.getLogger("tinyedge")

EXIT_USER = 2
EXIT_BUG = 1


def _command_modules() -> list[str]:
    from . import commands

    return sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_"))


class LazyGroup(click.Group):
    """A group whose commands are imported only when listed or invoked."""

    def list_commands(self, ctx):
        return sorted(name.replace("_", "-") for name in _command_modules())

    def get_command(self, ctx, name):
        mod_name = name.replace("-", "_")
        if mod_name not in _command_modules():
            return None
        mod = importlib.import_module(f"tinyedge.commands.{mod_name}")
        return mod.command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="tinyedge")
@click.option("-v", "--verbose", is_flag=True, help="Log details, and show tracebacks on errors.")
@click.option(
    "--boards-dir",
    type=click.Path(file_okay=False),
    help="A folder of extra board files (*.toml); TINYEDGE_BOARDS_DIR works too.",
)
@click.pass_context
def cli(ctx, verbose: bool, boards_dir: str | None):
    """Take a Keras model to a microcontroller and prove it runs there.

    Start with `tinyedge deploy model.h5 --data test.npz`: it converts the
    model to full-int8, builds firmware for the default (emulated Cortex-M4)
    board, runs it and checks the board's answers against the host.
    """
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if boards_dir:
        from .boards import set_user_boards_dir

        set_user_boards_dir(boards_dir)


def _verbose_requested(argv: list[str]) -> bool:
    for a in argv:
        if a == "--":
            break
        if a in ("-v", "--verbose") or (a.startswith("-") and not a.startswith("--") and "v" in a[1:]):
            return True
    return False


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and map errors to exit statuses."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = _verbose_requested(argv)
    from .procutil import stop_on_signals

    stop_on_signals()  # SIGTERM unwinds like Ctrl-C: emulators are stopped on the way out
    try:
        cli.main(args=argv, prog_name="tinyedge", standalone_mode=False)
    except TinyedgeError as e:
        if verbose:
            import traceback

            traceback.print_exc()
        click.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("error: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        # Bad arguments: one line, exit 2 (click's own convention matches ours).
        msg = e.format_message()
        ctx_hint = ""
        if isinstance(e, click.UsageError) and e.ctx is not None:
            ctx_hint = f" (see '{e.ctx.command_path} --help')"
        click.echo(f"error: {msg}{ctx_hint}", err=True)
        sys.exit(EXIT_USER)
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        # Output piped into `head` and closed: not an error of ours.
        os._exit(0)
    except SystemExit:
        raise
    except Exception as e:  # a bug: exit 1
        if verbose:
            raise
        click.echo(
            f"error: internal error ({type(e).__name__}: {e}); this is a bug in tinyedge. "
            "Run again with --verbose for the traceback and report it.",
            err=True,
        )
        sys.exit(EXIT_BUG)
    else:
        sys.exit(0)
