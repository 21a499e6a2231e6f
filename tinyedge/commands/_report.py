"""Rendering of validation and deploy reports for the terminal: the report on stdout, the bar on stderr."""

from __future__ import annotations

from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..console import err


class _LazyBar:
    """A `progress(done, total)` callback whose rich bar appears on its first call only,

    so a command that fails before streaming prints its error and nothing else."""

    def __init__(self, label: str, before=None, unit: str = "samples"):
        self.label = label
        self.unit = unit
        self.before = before
        self.progress: Progress | None | bool = None
        self.task = None

    def __call__(self, done: int, total: int) -> None:
        if self.progress is None and self.before is not None:
            self.before()
        if self.progress is None and not err.is_terminal:
            # No bar outside a terminal: one line says that it started (logs, CI, pipes).
            err.print(f"{self.label}: {done} of {total} {self.unit} ...", markup=False, highlight=False)
            self.progress = False
        if self.progress is False:
            return
        if self.progress is None:
            self.progress = Progress(TextColumn(self.label), BarColumn(), MofNCompleteColumn(),
                                     TimeRemainingColumn(), console=err, transient=True)
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=total)
        self.progress.update(self.task, completed=done, total=total)

    def stop(self) -> None:
        if self.progress:
            self.progress.stop()


@contextmanager
def progress_bar(label: str, enabled: bool = True, before=None, unit: str = "samples"):
    """Yield a `progress(done, total)` callback drawing a rich progress bar (or None when disabled);
    `before()` runs just before the bar appears (to stop a spinner)."""
    if not enabled:
        yield None
        return
    bar = _LazyBar(label, before, unit)
    try:
        yield bar
    finally:
        bar.stop()


def _fmt(v, pct=False) -> str:
    if v is None:
        return "not measured"
    if isinstance(v, float):
        if v != v:  # NaN
            return "-"
        if pct:
            return f"{v * 100:.2f} %"
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.4g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


LABEL_WIDTH = 22   # the widest label below ("accuracy float / int8 host / board" wraps to it)


def exit_if_interrupted(r: dict) -> None:
    """Ctrl-C stopped the streaming: the partial report was printed; the exit status says so (130)."""
    if r.get("interrupted"):
        from ..console import err

        err.print(f"error: interrupted after {r.get('samples')} of {r.get('samples_requested', '?')} samples")
        raise SystemExit(130)


def _samples(r: dict, room: int = 60) -> str:
    from ..console import short_path

    done, want = r.get("samples"), r.get("samples_requested")
    text = f"{done} of {want}" if want not in (None, done) else f"{done}"
    if r.get("inputs"):
        text += f" ({short_path(r['inputs'], room - 2)})"
    if r.get("interrupted"):
        text += "  INTERRUPTED"
    return text


def command_text(cmd: str, room: int, indent: str = "  ") -> str:
    """A shell command laid out to `room` columns: whole words, continued with backslashes."""
    lines, cur = [], indent
    for word in cmd.split(" "):
        if cur.strip() and len(cur) + 1 + len(word) + 2 > room:
            lines.append(cur + " \\")
            cur = indent + "    " + word
        else:
            cur = f"{cur} {word}" if cur.strip() else cur + word
    lines.append(cur)
    return "\n".join(lines)


def print_report(r: dict) -> None:
    """Print the human-readable summary of a validate or deploy report (stdout)."""
    from ..console import out, result, short_path, table, width

    if r.get("status") == "built, not flashed":
        return _print_built(r)
    t = table(show_header=False, title="Validation" if "steps" not in r else "Deploy")
    t.add_column(style="bold", max_width=LABEL_WIDTH)
    t.add_column()
    room = max(20, width() - LABEL_WIDTH - 1)
    if r.get("board"):
        t.add_row("board", f"{r['board']} (runtime {r.get('runtime', '?')})")
    if r.get("model"):
        m = r["model"]
        t.add_row("model", short_path(m.get("path"), room))
        t.add_row("", f"sha256 {str(m.get('sha256'))[:16]}  {_fmt(m.get('tflite_bytes'))} B")
    t.add_row("samples", _samples(r, room))
    a = r.get("agreement") or {}
    t.add_row("bit-exact vs host", _fmt(a.get("bit_exact_rate"), pct=True))
    t.add_row("top-1 agreement", _fmt(a.get("top1_agreement"), pct=True))
    diff = a.get("max_abs_diff")
    unit = " (float32 output)" if isinstance(diff, float) else " int8 steps"   # float outputs: a value
    t.add_row("max |diff|", f"{_fmt(diff)}{unit}" if diff is not None else _fmt(diff))
    acc = r.get("accuracy") or {}
    if (r.get("metrics") or {}).get("task", "classify") == "classify":   # an autoencoder has its AUC below
        t.add_row("accuracy float / int8 host / board",
                  " / ".join(_fmt(acc.get(k), pct=True) for k in ("float", "int8_host", "device")))
    lat = r.get("latency") or {}
    if lat.get("median") is not None:
        unit = lat.get("unit")
        line = (f"min {_fmt(lat['min'])}  median {_fmt(lat['median'])}  p95 {_fmt(lat['p95'])}  "
                f"max {_fmt(lat['max'])} {unit}")
        if lat.get("ms_median") is not None:
            line += f"  ({lat['ms_median']:.3f} ms median)"
        t.add_row("latency", line)
        est = lat.get("estimate_ms") or {}
        if est.get("median") is not None:
            t.add_row("latency (ms)", f"{est['median']:.3f} ms median ({lat.get('estimate')})")
    _metrics_rows(t, r.get("metrics"))
    _memory_rows(t, r)
    for s in r.get("steps") or []:
        t.add_row(f"step {s['name']}", f"{s['seconds']:.2f} s" + (f"  {s['note']}" if s.get("note") else ""))
    out.print(t)
    for n in r.get("notes") or []:
        result(f"[yellow]note:[/] {n}")


def _errors(e: dict) -> str:
    return (f"RMSE {_fmt(e.get('rmse'))}  MAE {_fmt(e.get('mae'))}  cosine {_fmt(e.get('cosine'))}  "
            f"rel. L2 {_fmt(e.get('rel_l2'))}")


def _metrics_rows(t, m: dict | None) -> None:
    """The report's `metrics`: the task, top-k, AUC, and the errors on dequantized outputs."""
    if not m:
        return
    t.add_row("task", f"{m.get('task')} ({m.get('task_reason')})")
    if m.get("top_k"):
        t.add_row("top-k board (host)", "  ".join(
            f"top-{k} {_fmt(v.get('device'), pct=True)} ({_fmt(v.get('int8_host'), pct=True)})"
            for k, v in m["top_k"].items()))
    if m.get("auc"):
        t.add_row("ROC AUC float / int8 host / board",
                  " / ".join(_fmt(m["auc"].get(k)) for k in ("float", "int8_host", "device")))
    elif m.get("auc_note"):
        t.add_row("ROC AUC", m["auc_note"])
    err = m.get("error") or {}
    if err.get("board_vs_int8_host"):
        t.add_row("board vs int8 host", _errors(err["board_vs_int8_host"]))
    if err.get("board_vs_float"):
        t.add_row("board vs float", _errors(err["board_vs_float"]))
    elif err.get("float_note"):
        t.add_row("board vs float", err["float_note"])


def _memory_rows(t, r: dict) -> None:
    mem = r.get("memory") or {}
    if mem.get("flash_bytes") is not None:
        t.add_row("flash", f"{_fmt(mem['flash_bytes'])} B of {_fmt(mem.get('board_flash_bytes'))} B")
        t.add_row("RAM", f"{_fmt(mem.get('ram_bytes'))} B of {_fmt(mem.get('board_ram_bytes'))} B "
                         f"(arena {_fmt(mem.get('arena_bytes'))} B)")


def _print_built(r: dict) -> None:
    """A deploy that built the firmware for a real board but had no board to flash."""
    from ..console import out, result, short_path, table, width

    room = max(20, width() - LABEL_WIDTH - 1)
    t = table(show_header=False, title=f"Built, not flashed: {r.get('board')} (runtime {r.get('runtime')})")
    t.add_column(style="bold", max_width=LABEL_WIDTH)
    t.add_column()
    if r.get("model"):
        t.add_row("model", short_path(r["model"].get("path"), room))
    _memory_rows(t, r)
    for s in r.get("steps") or []:
        t.add_row(f"step {s['name']}", f"{s['seconds']:.2f} s" + (f"  {s['note']}" if s.get("note") else ""))
    out.print(t)
    for n in r.get("notes") or []:
        result(f"[yellow]note:[/] {n}")
    nxt = r.get("next") or {}
    for key, what in (("flash", "flash it with:"), ("validate", "then check it with:")):
        if nxt.get(key):
            out.print(what)
            out.print(command_text(nxt[key], width()), markup=False, soft_wrap=True)
