"""The query API's SQL pieces for PostgreSQL: the columns it selects and the rows → records conversions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ...records import RunRecord, SpanRecord
from .. import codec as _codec
from ..base import RunFilter
from . import write as _write

EVENT_SELECT = (
    "thread_id, run_id, seq, event_type, category::TEXT, content, metadata::TEXT, created_at, "
    "trace_id, span_id"
)
SPAN_SELECT = (
    "trace_id, span_id, parent_span_id, run_id, name, kind, start_time, end_time, duration_ms, "
    "status_code, status_message, attributes::TEXT, events::TEXT, resource::TEXT"
)
RUN_SELECT = ", ".join(f"{name}::TEXT" if name == "usage_by_caller" else name for name in _codec.RUN_FIELDS)


def equal_filter(**equal: str | None) -> tuple[list[str], list[Any]]:
    """``runs.column = %s`` terms and their parameters for the values that are set."""
    terms, params = [], []
    for column, value in equal.items():
        if value is not None:
            params.append(_write.text(value))
            terms.append(f"runs.{column} = %s")
    return terms, params


def run_filter(wanted: RunFilter, run_id: str | None = None) -> tuple[str, list[Any]]:
    """The ``WHERE`` clause (``%s`` parameters) of ``list_runs`` / ``count_runs`` / ``token_usage``."""
    terms, params = equal_filter(run_id=run_id, **wanted.equal())
    for op, moment in ((">=", wanted.started_after), ("<", wanted.started_before)):
        if moment is not None:
            params.append(moment)
            terms.append(f"runs.started_at {op} %s")
    return ("WHERE " + " AND ".join(terms) if terms else ""), params


def plain_values(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows with whole-number ``Decimal`` values as ``int``: PostgreSQL's ``sum(bigint)`` is ``numeric``
    where DuckDB's is an integer, and the views (``tokens_by_model`` ...) should read the same."""
    if not any(isinstance(v, Decimal) for row in rows[:1] for v in row):
        return rows
    return [tuple(_whole(v) if isinstance(v, Decimal) else v for v in row) for row in rows]


def _whole(value: Decimal) -> Decimal | int:
    exponent = value.as_tuple().exponent
    return int(value) if isinstance(exponent, int) and exponent >= 0 else value


def run_from_row(row: tuple[Any, ...]) -> RunRecord:
    values = dict(zip(_codec.RUN_FIELDS, row, strict=True))
    values["usage_by_caller"] = _codec.loads(values["usage_by_caller"] or "{}")
    return _codec.run_from_dict(values)


def span_from_row(r: tuple[Any, ...]) -> SpanRecord:
    loads = _codec.loads
    return SpanRecord(
        r[0], r[1], r[2], r[3] or "", r[4] or "", r[5] or "", r[6], r[7], float(r[8] or 0.0), r[9] or "",
        r[10], loads(r[11] or "{}"), loads(r[12] or "[]"), loads(r[13] or "{}"),
    )  # fmt: skip
