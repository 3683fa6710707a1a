"""Every place a journal location is taken accepts os.PathLike, and rejects anything else at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from store_batches import make_run

from otel_runjournal import RunJournalExporter, open_store
from otel_runjournal.stores import DuckDBStore, JsonlStore

pytestmark = pytest.mark.usefixtures("clean_otel_env")


def test_exporter_takes_a_path_and_journals_through_it(tmp_path: Path) -> None:
    """RunJournalExporter(Path("j.duckdb")) opens that file and its exports land there."""
    path = tmp_path / "j.duckdb"
    exporter = RunJournalExporter(path)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span(
        "invoke_agent demo", attributes={"gen_ai.operation.name": "invoke_agent"}
    ):
        pass
    provider.shutdown()
    assert path.exists()
    with open_store(path, read_only=True) as store:
        assert len(store.list_runs()) == 1


@pytest.mark.parametrize("bad", [42, b"j.duckdb", 3.5, ["j.duckdb"]])
def test_anything_else_is_refused_at_construction_in_one_line(bad: object) -> None:
    """A location that is neither str nor os.PathLike is a one-line ValueError when the object is made."""
    for make in (RunJournalExporter, open_store, DuckDBStore, JsonlStore):
        with pytest.raises(ValueError) as caught:
            make(bad)  # type: ignore[operator]
        message = str(caught.value)
        assert "\n" not in message and "os.PathLike" in message, (make, message)


def test_stores_take_paths(tmp_path: Path) -> None:
    """DuckDBStore, JsonlStore and open_store take pathlib paths and write where they point."""
    with DuckDBStore(tmp_path / "a.duckdb") as duck, JsonlStore(tmp_path / "dir") as jsonl:
        duck.write([make_run("r1", "t")])
        jsonl.write([make_run("r1", "t")])
    for path in (tmp_path / "a.duckdb", tmp_path / "dir"):
        with open_store(path, read_only=True) as store:
            assert [r.run_id for r in store.list_runs()] == ["r1"]
