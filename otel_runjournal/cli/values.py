"""Values → terminal text and JSON: durations, times, counts, previews, and the one console and JSON
writer every command uses."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

import click
from rich.console import Console


def to_jsonable(value: Any) -> Any:
    """Dataclasses, datetimes and containers → plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def dumps(value: Any) -> str:
    """Indented JSON of :func:`to_jsonable` values (non-ASCII kept)."""
    return json.dumps(to_jsonable(value), indent=2, ensure_ascii=False, default=str)


def preview(text: str | None, width: int = 60) -> str:
    """One line of at most ``width`` characters."""
    if not text:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def duration(ms: float | None) -> str:
    """``0.4 ms``, ``12 ms``, ``1.23 s``, ``2m05s``: at most 8 characters."""
    if ms is None:
        return ""
    if ms < 10:
        return f"{ms:.1f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    minutes, seconds = divmod(round(ms / 1000), 60)
    return f"{minutes}m{seconds:02d}s" if minutes < 600 else f"{minutes // 60}h"


def when(value: datetime | None, today: bool | None = None) -> str:
    """Local time of day for today's timestamps, else date and minute."""
    if value is None:
        return ""
    local = value.astimezone()
    same_day = local.date() == datetime.now(local.tzinfo).date() if today is None else today
    return local.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M")


def count(value: int) -> str:
    return f"{value:,}"


def number(value: float) -> str:
    """A float for a table: at most 4 decimals, trailing zeros dropped (``34.9589``, ``0.5``, ``12``);
    very large or small magnitudes in exponent form."""
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    if value != 0 and not 1e-4 <= abs(value) < 1e15:
        return f"{value:.4g}"
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


class _Console(Console):
    """rich's console, ending quietly (status 0) when the reader of a pipe went away (``| head``):
    rich's default is status 1, as if the command had failed."""

    def on_broken_pipe(self) -> None:
        silence_stdout()
        raise SystemExit(0)


def silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again (the Python
    docs' recipe for SIGPIPE)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def usd(value: float | None, unpriced: int = 0) -> str:
    """A cost: ``$0.0123`` (four decimals under a dollar), ``-`` when nothing was priced; ``*`` marks
    a figure that leaves unpriced calls out (the footnote says how many)."""
    if value is None:
        return "-" if not unpriced else "-*"
    text = f"${value:,.4f}" if value < 1 else f"${value:,.2f}"
    return text + ("*" if unpriced else "")


UNPRICED_NOTE = "* {n} model call{s} unpriced (unknown model or provider): left out, never $0"


INCOMPLETE_NOTE = "! incomplete: some of the run's spans never reached the journal; totals may be short"


def unpriced_note(n: int) -> str:
    return UNPRICED_NOTE.format(n=n, s="" if n == 1 else "s")


def console() -> Console:
    """The output console: the terminal's width, ``COLUMNS``, or 80 when piped."""
    return _Console(soft_wrap=False)


def echo_json(value: Any) -> None:
    """Print ``value`` as indented JSON on stdout."""
    click.echo(dumps(value))


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def moment(text: str, now: datetime | None = None) -> datetime:
    """``30m``, ``2h``, ``1d``, ``1w`` (that long before ``now``) or an ISO time (local when it names
    no zone) → an aware datetime; ``ValueError`` with a one-line reason otherwise."""
    value = text.strip()
    number, unit = value[:-1], value[-1:].lower()
    if unit in _UNITS and number.isdigit():
        current = now or datetime.now(timezone.utc)
        return current - timedelta(seconds=int(number) * _UNITS[unit])
    try:
        parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
    except ValueError:
        raise ValueError(
            f"{value!r} is neither a duration (30m, 2h, 1d, 1w) nor an ISO time (2026-12-06T09:30)"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.astimezone()
