"""Terminal output for the CLI only; library code never prints.

Results (tables, summaries, "wrote ..." lines) go to stdout, so that
`tinyedge inspect m.tflite > plan.txt` and `| less` work; progress, warnings
and logs go to stderr.  With `--json`, stdout holds the JSON only.

Text wraps at the terminal's width between words, never inside one.
"""

from __future__ import annotations

import json
import sys

from rich.console import Console

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def emit_json(obj) -> None:
    """Print `obj` as JSON on stdout (the only thing on stdout with --json)."""
    sys.stdout.write(json.dumps(obj, indent=2, default=_default) + "\n")
    sys.stdout.flush()


def _default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if hasattr(o, "__fspath__"):
        return str(o)
    raise TypeError(f"cannot serialise {type(o).__name__}")


def wrap_words(text, room: int, indent: str = "  "):
    """Split rich markup `text` into lines of at most `room` cells, between words only (a word longer
    than the room gets a line of its own, whole); continuation lines start with `indent`."""
    import re

    from rich.text import Text

    t = text if isinstance(text, Text) else Text.from_markup(text)
    lines = []
    for para in t.split("\n", allow_blank=True):
        plain = para.plain
        start, end, first = None, None, True
        for m in re.finditer(r"\S+", plain):
            lead = 0 if first else len(indent)
            if start is None:
                start, end = (0 if first else m.start()), m.end()
            elif lead + (m.end() - start) <= room:
                end = m.end()
            else:
                lines.append((first, para[start:end]))
                first = False
                start, end = m.start(), m.end()
        lines.append((first, para[start:end] if start is not None else Text("")))
    return [line if first else Text(indent) + line for first, line in lines]


def _say(console: Console, message, indent: str = "  ") -> None:
    for line in wrap_words(message, console.width, indent):
        console.print(line, overflow="ignore", crop=False)


def warn(message: str) -> None:
    _say(err, f"[bold yellow]warning:[/] {message}")


def info(message: str) -> None:
    """Progress and status: stderr."""
    _say(err, message)


def result(message: str, indent: str = "  ") -> None:
    """A line of the command's result: stdout, wrapped between words to the width."""
    _say(out, message, indent)


def width() -> int:
    """The width results are laid out for (the terminal's, or COLUMNS, or 80)."""
    return out.width


def short_path(path, room: int | None = None) -> str:
    """`path` as a string of at most `room` characters, shortened from the left so that the file name
    (and as many of its parent folders as fit) stay: `.../examples/digits/model.h5`.  The file name
    itself is never cut."""
    s = str(path)
    room = width() if room is None else room
    if len(s) <= room:
        return s
    parts = s.split("/")
    kept = parts[-1]
    for part in reversed(parts[:-1]):
        cand = f"{part}/{kept}"
        if len(".../" + cand) > room:
            break
        kept = cand
    return ".../" + kept


def _plain(cell) -> str:
    from rich.text import Text

    if isinstance(cell, str):
        return Text.from_markup(cell).plain
    return getattr(cell, "plain", "")


def _word_widths(cell) -> tuple[int, int]:
    """(longest word, with a line's indentation; longest line) of a table cell."""
    import re

    lines = _plain(cell).split("\n")
    word = max((len(w) for line in lines for w in re.findall(r"^\s*\S+|\S+", line)), default=0)
    return word, max((len(line) for line in lines), default=0)


def column_widths(mins: list[int], maxs: list[int], room: int) -> list[int] | None:
    """Widths for columns whose words need `mins` and whose lines want `maxs`, in `room` cells:
    None when everything fits as it is; otherwise each column gets at least its longest word and the
    rest of the room is shared in proportion to what each still wants."""
    if sum(maxs) <= room:
        return None
    widths = list(mins)
    extra = room - sum(widths)
    want = [mx - mn for mn, mx in zip(mins, maxs, strict=True)]
    total = sum(want)
    if extra <= 0 or total <= 0:
        return widths
    for i, w in enumerate(want):
        widths[i] += min(w, extra * w // total)
    left = room - sum(widths)
    for i in sorted(range(len(widths)), key=lambda i: -(maxs[i] - widths[i])):
        if left <= 0:
            break
        if widths[i] < maxs[i]:
            widths[i] += 1
            left -= 1
    return widths


def table(**kw):
    """A rich Table laid out for narrow terminals: no vertical borders, one space between columns,
    and no column narrower than its longest word (so numbers, shapes and names are never cut)."""
    from rich import box
    from rich.table import Table

    class _Table(Table):
        def __rich_console__(self, console, options):
            cols = self.columns
            if cols:
                mins, maxs = [], []
                for col in cols:
                    ww = [_word_widths(col.header), *(_word_widths(c) for c in col._cells)]
                    mins.append(max(w for w, _ in ww))
                    maxs.append(max(m for _, m in ww))
                widths = column_widths(mins, maxs, options.max_width - (len(cols) - 1))
                if widths is not None:
                    for col, w in zip(cols, widths, strict=True):
                        col.width = w
            yield from super().__rich_console__(console, options)

    kw.setdefault("box", box.SIMPLE_HEAD)
    kw.setdefault("padding", (0, 0))
    kw.setdefault("show_edge", False)
    kw.setdefault("pad_edge", False)
    kw.setdefault("title_justify", "left")
    return _Table(**kw)


class Steps:
    """Progress of long steps on stderr: a spinner with the step's name while it runs (a line saying
    that it started when stderr is not a terminal), then `name: 4.2 s` when it ends.

        with Steps() as steps:
            steps.start("convert")    # ends the previous step, if any
            ...
    """

    def __init__(self, enabled: bool = True, *, off_terminal: bool = True):
        # off_terminal=False: nothing at all when stderr is not a terminal (a one-step verb, whose
        # result shows its time anyway, keeps a failure to its one `error:` line in logs and pipes).
        self.enabled = enabled and (off_terminal or err.is_terminal)
        self._name: str | None = None
        self._t0 = 0.0
        self._status = None

    def start(self, name: str, detail: str = "") -> None:
        import time

        self.end()
        if not self.enabled:
            return
        self._name, self._t0 = name, time.perf_counter()
        label = f"{name} {detail}".strip()
        if err.is_terminal:
            self._status = err.status(f"[bold]{label}[/] ...", spinner="dots")
            self._status.start()
        else:
            err.print(f"{label} ...", markup=False, highlight=False)

    def pause(self) -> None:
        """Stop the spinner (a progress bar takes over the line); the step's time still ends it."""
        if self._status is not None:
            self._status.stop()
            self._status = None

    def end(self, note: str = "") -> None:
        import time

        if self._name is None:
            return
        if self._status is not None:
            self._status.stop()
            self._status = None
        seconds = time.perf_counter() - self._t0
        err.print(f"[bold]{self._name}[/]: {seconds:.1f} s" + (f" ({note})" if note else ""), highlight=False)
        self._name = None

    def __enter__(self) -> Steps:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.end()
        else:
            if self._status is not None:
                self._status.stop()
                self._status = None
            self._name = None
