"""Run writes between serve's two processes: each record as a tuple of its fields, pickled.

Pickling the record dataclasses themselves runs ``dataclasses``' Python ``__getstate__`` /
``__setstate__`` for every row (slots classes): ~90 µs per span there and back, more than mapping
the span. Tuples of the fields pickle in C; the receiving side calls the constructors
(``bench/bench_serve.py``). The field order is read from the dataclasses, so it follows
``records.py``.
"""

from __future__ import annotations

import pickle
from dataclasses import fields
from operator import attrgetter
from typing import Any

from ..records import RunEvent, RunRecord, RunWrite, SpanRecord


def _getter(cls: type) -> Any:
    names = [f.name for f in fields(cls)]
    if not all(f.init for f in fields(cls)):  # the constructor must take every field, in order
        raise TypeError(f"{cls.__name__} has a field its constructor does not take")
    return attrgetter(*names)


_RUN, _EVENT, _SPAN = _getter(RunRecord), _getter(RunEvent), _getter(SpanRecord)


def dump_writes(writes: list[RunWrite]) -> bytes:
    """``writes`` as bytes for :func:`load_writes` (the other process)."""
    event, span = _EVENT, _SPAN
    return pickle.dumps(
        [(_RUN(w.run), [event(e) for e in w.events], [span(s) for s in w.spans]) for w in writes],
        protocol=pickle.HIGHEST_PROTOCOL,
    )


def load_writes(data: bytes | memoryview) -> list[RunWrite]:
    """The run writes :func:`dump_writes` encoded (equal to the originals)."""
    return [
        RunWrite(RunRecord(*run), [RunEvent(*e) for e in events], [SpanRecord(*s) for s in spans])
        for run, events, spans in pickle.loads(data)
    ]
