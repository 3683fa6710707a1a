"""The row comparison of bench/mapping_instructions.py --check: it tells apart what a store would write
differently (types, dict order, timezones) and says where."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import ModuleType

import pytest
from bench_scripts import load_bench

from otel_runjournal.records import RunEvent, RunRecord, RunWrite

AT = datetime(2026, 12, 6, 12, 0, 0, 123456, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def check() -> ModuleType:
    """The benchmark script as a module."""
    return load_bench("mapping_instructions")


def _write(**meta: object) -> RunWrite:
    event = RunEvent("t", "r", "llm_end", "trace", AT, None, dict(meta), "a" * 32, "b" * 16)
    return RunWrite(RunRecord("r", "t", started_at=AT), [event], [])


def test_equal_writes_are_equal(check: ModuleType) -> None:
    """Two writes built alike compare equal."""
    assert check._canonical([_write(a=1, b=[1])]) == check._canonical([_write(a=1, b=[1])])


@pytest.mark.parametrize(
    ("other", "where"),
    [
        (_write(b=[1], a=1), "metadata"),  # the same items in another order: another JSON text
        (_write(a=1, b=(1,)), "metadata"),  # a tuple where a list was
        (_write(a=1.0, b=[1]), "metadata"),  # 1.0 is not 1 in JSON
    ],
)
def test_what_a_store_would_write_differently_differs(check: ModuleType, other: RunWrite, where: str) -> None:
    """Dict order, container type and number type all count, and the difference names its field."""
    mine, theirs = check._canonical([_write(a=1, b=[1])]), check._canonical([other])
    assert mine != theirs
    assert where in check._difference(mine, theirs, "writes")


def test_a_datetime_in_another_timezone_differs(check: ModuleType) -> None:
    """Equal instants with different tzinfo are different rows (their text differs)."""
    shifted = _write(a=1, b=[1])
    shifted.run.started_at = AT.astimezone(timezone(timedelta(hours=1)))
    assert shifted.run.started_at == AT
    mine, theirs = check._canonical([_write(a=1, b=[1])]), check._canonical([shifted])
    assert mine != theirs
    assert "started_at" in check._difference(mine, theirs, "writes")
