"""The hand-over between serve's processes: run writes encoded in one process, decoded in the other."""

from __future__ import annotations

import dataclasses

from serve_helpers import agent_spans

from otel_runjournal.journal.assembler import Assembler
from otel_runjournal.records import RunWrite
from otel_runjournal.serve.wire import dump_writes, load_writes


def _writes() -> list[RunWrite]:
    """Run writes of real agent runs (content on), as serve's writer hands them to the store."""
    writes = Assembler(max_pending_spans=10_000).add(agent_spans(3, light=False, capture_content=True))
    assert len(writes) == 3 and all(w.events and w.spans for w in writes)
    return writes


def test_run_writes_cross_unchanged() -> None:
    """Every field of every run, event and span row arrives equal, with the record types it had."""
    writes = _writes()
    back = load_writes(dump_writes(writes))
    assert [dataclasses.asdict(w) for w in back] == [dataclasses.asdict(w) for w in writes]
    for sent, got in zip(writes, back, strict=True):
        assert type(got.run) is type(sent.run)
        assert [type(e) for e in got.events] == [type(e) for e in sent.events]
        assert [type(s) for s in got.spans] == [type(s) for s in sent.spans]
        assert [e.created_at for e in got.events] == [e.created_at for e in sent.events]
        assert all(e.created_at.tzinfo is not None for e in got.events)


def test_decoded_rows_are_new_objects() -> None:
    """The decoded rows are copies: the store may change them (e.g. assign ``seq``) without touching
    the sender's."""
    writes = _writes()
    back = load_writes(dump_writes(writes))
    back[0].events[0].seq = 12345
    back[0].events[0].metadata["changed"] = True
    assert writes[0].events[0].seq != 12345 and "changed" not in writes[0].events[0].metadata
