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


def _set_verbose(ctx, param, value):
    if value:
        ctx.ensure_object(dict)["verbose"] = True
        _setup_logging(True)
    return value


def _set_boards_dir(ctx, param, value):
    if value:
        from .boards import set_user_boards_dir

        set_user_boards_dir(value)
    return value


def _global_options() -> list[click.Option]:
    """`-v` and `--boards-dir`, accepted after the verb as well as before it."""
    return [
        click.Option(["-v", "--verbose"], is_flag=True, expose_value=False, is_eager=True, callback=_set_verbose,
                     help="Log details, and show tracebacks on errors."),
        click.Option(["--boards-dir"], type=click.Path(file_okay=False), expose_value=False, is_eager=True,
                     callback=_set_boards_dir,
                     help="A folder of extra board files (*.toml); TINYEDGE_BOARDS_DIR works too."),
    ]


class _WarningFormatter(logging.Formatter):
    """Without --verbose, a library warning reads like the CLI's own: `warning: ...`."""

    def format(self, record):
        return f"{record.levelname.lower()}: {record.getMessage()}"


def _setup_logging(verbose: bool) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_tinyedge", False):
            root.removeHandler(h)
    h = logging.StreamHandler(sys.stderr)
    h._tinyedge = True
    if verbose:
        h.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    else:
        h.setFormatter(_WarningFormatter())
    root.addHandler(h)
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)


class LazyGroup(click.Group):
    """A group whose commands are imported only when listed or invoked."""

    def list_commands(self, ctx):
        return sorted(name.replace("_", "-") for name in _command_modules())

    def get_command(self, ctx, name):
        mod_name = name.replace("-", "_")
        if mod_name not in _command_modules():
            return None
        mod = importlib.import_module(f"tinyedge.commands.{mod_name}")
        cmd = mod.command
        if not getattr(cmd, "_tinyedge_globals", False):
            have = {o for p in cmd.params for o in getattr(p, "opts", [])}
            cmd.params.extend(o for o in _global_options() if not set(o.opts) & have)
            cmd._tinyedge_globals = True
        return cmd


@click.group(cls=LazyGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
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
    _setup_logging(verbose)
    if boards_dir:
        from .boards import set_user_boards_dir

        set_user_boards_dir(boards_dir)
    if ctx.invoked_subcommand is None:
        # Bare `tinyedge`: the help, and success.
        click.echo(ctx.get_help())
        ctx.exit(0)


def _verbose_requested(argv: list[str]) -> bool:
    for a in argv:
        if a == "--":
            break
        if a in ("-v", "--verbose") or (a.startswith("-") and not a.startswith("--") and "v" in a[1:]):
            return True
    return False


def _json_requested(argv: list[str]) -> bool:
    for a in argv:
        if a == "--":
            break
        if a == "--json":
            return True
    return False


def _fail(message: str, code: int, as_json: bool, error=None) -> None:
    """The one way an error leaves the CLI: `error: ...` on stderr (and {"error": ...} on stdout with --json)."""
    click.echo(f"error: {message}", err=True)
    if as_json:
        from .console import emit_json

        obj = {"error": message, "exit_code": code}
        if error is not None:
            obj["type"] = type(error).__name__
        try:
            emit_json(obj)
        except (BrokenPipeError, OSError):
            pass
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and map errors to exit statuses."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = _verbose_requested(argv)
    from .procutil import stop_on_signals

    stop_on_signals()  # SIGTERM unwinds like Ctrl-C: emulators are stopped on the way out
    as_json = _json_requested(argv)
    try:
        cli.main(args=argv, prog_name="tinyedge", standalone_mode=False)
    except TinyedgeError as e:
        if verbose:
            import traceback

            traceback.print_exc()
        _fail(str(e), e.exit_code, as_json, e)
    except click.exceptions.Abort:
        _fail("interrupted", 130, as_json)
    except click.ClickException as e:
        # Bad arguments: one line, exit 2 (click's own convention matches ours).
        msg = e.format_message()
        ctx_hint = ""
        if isinstance(e, click.UsageError) and e.ctx is not None:
            ctx_hint = f" (see '{e.ctx.command_path} --help')"
        _fail(f"{msg}{ctx_hint}", EXIT_USER, as_json, e)
    except KeyboardInterrupt:
        _fail("interrupted", 130, as_json)
    except BrokenPipeError:
        # Output piped into `head` and closed: not an error of ours.
        os._exit(0)
    except SystemExit:
        raise
    except Exception as e:  # a bug: exit 1
        if verbose:
            raise
        _fail(f"internal error ({type(e).__name__}: {e}); this is a bug in tinyedge. "
              "Run again with --verbose for the traceback and report it.", EXIT_BUG, as_json, e)
    else:
        sys.exit(0)
