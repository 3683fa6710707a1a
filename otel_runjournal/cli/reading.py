"""Opening a journal for reading (never creating, modifying or locking it), and finding runs in it.

Run ids are shown as the shortest prefix (or, when shorter, suffix) of at least :data:`MIN_ID` characters
that is unique among the journal's runs: LangChain 1.x gives time-ordered UUIDv7 ids, whose first 8
characters are the same for every run started within about a minute. What is shown is accepted back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

import click

from .. import settings as _env
from ..records import RunEvent, RunRecord
from ..stores.base import MAX_LIMIT, RunStore, StoreError
from ..stores.postgres.conninfo import mask

MIN_ID = 8
ELLIPSIS = "…"


def one_line(text: object, width: int = 300) -> str:
    """The first line of a message, at most ``width`` characters."""
    lines = str(text).strip().splitlines()
    first = lines[0] if lines else ""
    return first if len(first) <= width else first[: width - 1] + ELLIPSIS


def quoted(value: str, width: int = 40) -> str:
    """``value`` quoted for an error message, long ones cut (an id pasted wrong can be kilobytes)."""
    return repr(value if len(value) <= width else value[: width - 1] + ELLIPSIS)


@contextmanager
def open_for_reading(location: str) -> Iterator[RunStore]:
    """The journal at ``location``, opened read-only; every problem becomes one CLI error line."""
    from ..stores.location import open_store

    try:
        store = open_store(location, read_only=True, hold=True)
    except ValueError as exc:
        raise click.ClickException(f"malformed store location: {one_line(exc)}") from None
    except StoreError as exc:
        message = one_line(exc)
        if message.startswith("no run journal at"):
            variable = _env.OTEL_RUNJOURNAL_STORE
            message += f" (run `otel-runjournal demo`, or point --store / {variable} at your journal)"
        raise click.ClickException(message) from None
    except OSError as exc:
        shown = mask(location)  # a postgresql:// location may hold a password
        raise click.ClickException(f"cannot open the run journal {shown!r}: {one_line(exc)}") from None
    try:
        yield store
    except StoreError as exc:
        raise click.ClickException(one_line(exc)) from None
    finally:
        store.close()


def journal_runs(store: RunStore) -> list[RunRecord]:
    """The journal's latest :data:`MAX_LIMIT` runs (what run and thread ids are made unique among)."""
    return store.list_runs(limit=MAX_LIMIT)


def journal_run_ids(store: RunStore) -> list[str]:
    """The ids of the journal's latest :data:`MAX_LIMIT` runs (what ids are made unique among)."""
    return [r.run_id for r in journal_runs(store)]


def _unique_lengths(ids: Sequence[str]) -> dict[str, int]:
    """For each id, the length of its shortest prefix no other id shares (its neighbours in sort order
    share the longest prefixes)."""
    ordered = sorted(set(ids))
    out: dict[str, int] = {}
    for i, value in enumerate(ordered):
        common = 0
        for j in (i - 1, i + 1):
            if 0 <= j < len(ordered):
                other = ordered[j]
                n = 0
                limit = min(len(value), len(other))
                while n < limit and value[n] == other[n]:
                    n += 1
                common = max(common, n)
        out[value] = common + 1
    return out


def id_shortener(universe: Iterable[str], shown: Iterable[str]) -> Callable[[str], str]:
    """A function giving the displayed id: one length for all ``shown`` ids, prefix or suffix
    (whichever is shorter), unique among ``universe`` and at least :data:`MIN_ID` characters."""
    everyone = list(dict.fromkeys([*universe, *shown]))
    wanted = list(dict.fromkeys(shown))
    if not wanted:
        return lambda value: value
    by_prefix = _unique_lengths(everyone)
    by_suffix = _unique_lengths([v[::-1] for v in everyone])
    prefix = max(MIN_ID, *(by_prefix[v] for v in wanted))
    suffix = max(MIN_ID, *(by_suffix[v[::-1]] for v in wanted))
    if suffix < prefix:
        return lambda value: value if len(value) <= suffix else value[-suffix:]
    return lambda value: value if len(value) <= prefix else value[:prefix]


def resolve_run(store: RunStore, text: str) -> RunRecord:
    """The run with this id, or the one run (among the latest :data:`MAX_LIMIT`) whose id starts or
    ends with it (as the tables show it; a pasted ``…`` is ignored)."""
    key = text.strip().strip(ELLIPSIS)
    if key:
        run = store.get_run(key)
        if run is not None:
            return run
        matches = [
            r for r in store.list_runs(limit=MAX_LIMIT) if r.run_id.startswith(key) or r.run_id.endswith(key)
        ]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise click.ClickException(
                f"run id {quoted(text)} is ambiguous ({len(matches)} runs match); give more characters"
            )
    raise click.ClickException(f"unknown run id {quoted(text)} (list runs with `otel-runjournal runs`)")


def all_events(store: RunStore, run_id: str, *, category: str | None = None) -> list[RunEvent]:
    """Every event of a run, paging with ``after_seq``."""
    out: list[RunEvent] = []
    after: int | None = None
    while True:
        page = store.list_events(run_id, category=category, after_seq=after, limit=MAX_LIMIT)
        out.extend(page)
        if len(page) < MAX_LIMIT:
            return out
        after = page[-1].seq
