"""serve's own span objects journal exactly what the SDK's ReadableSpans journal, every field of every row."""

from __future__ import annotations

import marshal
import struct
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from serve_helpers import agent_spans, request_of
from spanfactory import SpanFactory, chat_attrs, common

from otel_runjournal import open_store
from otel_runjournal import semconv as sc
from otel_runjournal.journal.assembler import Assembler
from otel_runjournal.pricing import resolve_pricer
from otel_runjournal.records import RunWrite
from otel_runjournal.serve import journal_spans as js
from otel_runjournal.serve.otlp_spans import Decoded, decode, spans_of
from otel_runjournal.serve.writer import _SeenIds, _span_ids


def _foreign_and_odd_spans() -> list[ReadableSpan]:
    """Spans the handler's runs do not have: other instrumentations' GenAI spans (a local root under a
    server span, a remote parent, OpenLLMetry's markers and legacy token names), a provider SDK's span
    inside a handler trace (a duplicate), failures with exception events, every span kind and status,
    array / bool / float attributes, and a second resource."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "other-app", "deployment": "test"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    f = SpanFactory(provider)
    # a foreign agent under an HTTP server span: the server span is the trace's local root
    server = f.start("POST /ask", 0, kind=SpanKind.SERVER, attrs={"http.route": "/ask"})
    agent = f.start(
        "invoke_agent planner",
        1,
        parent=server,
        attrs={sc.GEN_AI_OPERATION_NAME: "invoke_agent", sc.GEN_AI_AGENT_NAME: "planner"},
    )
    chat = f.start("chat gpt-4o", 2, parent=agent, kind=SpanKind.CLIENT)
    f.end(
        chat,
        5,
        attrs=chat_attrs(
            "gpt-4o",
            12,
            4,
            **{
                sc.GEN_AI_CONVERSATION_ID: "conv-1",
                sc.GEN_AI_RESPONSE_FINISH_REASONS: ("stop", "length"),
                sc.GEN_AI_OUTPUT_MESSAGES: '[{"role": "assistant", "parts": [{"type": "text", '
                '"content": "hi"}]}]',
                "gen_ai.request.temperature": 0.25,
                "gen_ai.request.stream": False,
            },
        ),
    )
    tool = f.start(
        "execute_tool search",
        6,
        parent=agent,
        kind=SpanKind.PRODUCER,
        attrs={sc.GEN_AI_OPERATION_NAME: "execute_tool", sc.GEN_AI_TOOL_NAME: "search"},
    )
    f.end(tool, 7, error=TimeoutError("search timed out"))
    retriever = f.start(
        "retrieval docs",
        8,
        parent=agent,
        kind=SpanKind.CONSUMER,
        attrs={sc.GEN_AI_OPERATION_NAME: "retrieval"},
    )
    f.end(retriever, 9)
    f.end(agent, 10, error=RuntimeError("planner gave up"))
    f.end(server, 11)
    # a foreign agent whose parent is in another process (a remote parent: a local root itself)
    upstream = f.start("upstream", 20)
    remote = f.start(
        "invoke_agent helper",
        21,
        parent=upstream,
        remote_parent=True,
        kind=SpanKind.SERVER,
        attrs={sc.GEN_AI_OPERATION_NAME: "invoke_agent", sc.GEN_AI_AGENT_NAME: "helper"},
    )
    f.end(remote, 22)
    # OpenLLMetry: markers and legacy token names, a workflow with a chat below it
    workflow = f.start("assistant.workflow", 30, attrs={"traceloop.span.kind": "workflow"})
    legacy = f.start(
        "openai.chat", 31, parent=workflow, kind=SpanKind.CLIENT, attrs={"llm.request.type": "chat"}
    )
    legacy.set_status(Status(StatusCode.OK))
    f.end(legacy, 32, attrs={"gen_ai.usage.prompt_tokens": 3, "gen_ai.usage.completion_tokens": 2})
    f.end(workflow, 35)
    # a handler run with a provider SDK's chat span below its chat span (kept as a duplicate row)
    run = "run-with-duplicate"
    root = f.start(
        "invoke_agent research_assistant",
        40,
        attrs={**common(run), sc.RJ_IS_ROOT: True, sc.GEN_AI_OPERATION_NAME: "invoke_agent"},
    )
    ours = f.start(
        "chat scripted-1", 41, parent=root, kind=SpanKind.CLIENT, attrs=common(run, run_type="chat_model")
    )
    provider_sdk = f.start("chat scripted-1", 42, parent=ours, kind=SpanKind.CLIENT)
    f.end(provider_sdk, 43, attrs=chat_attrs("scripted-1", 5, 1))
    f.end(ours, 44, attrs=chat_attrs("scripted-1", 5, 1))
    f.end(root, 45)
    provider.shutdown()
    return list(memory.get_finished_spans())


@pytest.fixture(scope="module")
def decoded() -> Decoded:
    """One OTLP request of every kind of span the journal reads, decoded as serve's receivers do."""
    spans = agent_spans(2, light=False) + _foreign_and_odd_spans()  # light=False: failing tool, custom events
    request = decode(request_of(spans))
    # what the SDK cannot send but OTLP can: a message on a span that did not fail, a failure without
    # one, a status code and a span kind from a newer OTLP version (by position in ``Decoded.spans``)
    odd = {"openai.chat": (None, 1, "fine"), "retrieval docs": (None, 2, ""), "POST /ask": (9, 7, "?")}
    for i, span in enumerate(request.spans):
        if span[0] in odd:
            kind, code, message = odd[span[0]]
            request.spans[i] = (*span[:6], span[6] if kind is None else kind, code, message, *span[9:])
    return Decoded(*marshal.loads(marshal.dumps(tuple(request))))  # as it crosses to the journal


def _journaled(spans: list[Any]) -> list[RunWrite]:
    assembler = Assembler(max_pending_spans=100_000, pricer=resolve_pricer())
    return assembler.add(spans) + assembler.drain(final=True)


def test_journal_spans_make_the_writes_the_sdk_spans_make(decoded: Decoded) -> None:
    """The journal's writes (runs, events, span rows: every field, with its type) from serve's own span
    objects equal those from the SDK ReadableSpans of the same request."""
    sdk = _journaled(spans_of(decoded).spans)
    ours = _journaled(js.journal_spans_of(decoded).spans)  # type: ignore[arg-type]
    kinds = {row.kind for write in sdk for row in write.spans}
    statuses = {row.status_code for write in sdk for row in write.spans}
    assert kinds == {"INTERNAL", "CLIENT", "SERVER", "PRODUCER", "CONSUMER"}
    assert statuses == {"UNSET", "OK", "ERROR"}
    assert any(row.status_message for write in sdk for row in write.spans)  # a failure's message
    assert any(row.events for write in sdk for row in write.spans)  # OTel events (exceptions, custom)
    assert any(row.attributes.get(sc.RJ_DUPLICATE) for write in sdk for row in write.spans)
    assert len({write.run.run_id for write in sdk}) >= 6  # 2 handler runs, 3 foreign groups, 1 more
    assert len(ours) == len(sdk)
    for mine, theirs in zip(ours, sdk, strict=True):
        assert repr(mine) == repr(theirs)  # repr: 1 and 1.0 and True differ, tuples and lists too
        assert mine == theirs


def test_journal_spans_write_the_rows_the_sdk_spans_write(decoded: Decoded, tmp_path: Path) -> None:
    """Written to a DuckDB journal, the rows of serve's own span objects equal, column by column, the
    rows of the SDK spans of the same request."""
    tables = {
        "runs": "run_id",
        "run_events": "run_id, seq",
        "spans": "span_id, run_id",
    }
    rows: list[dict[str, list[tuple[Any, ...]]]] = []
    for name, spans in (("sdk", spans_of(decoded).spans), ("ours", js.journal_spans_of(decoded).spans)):
        store = open_store(str(tmp_path / f"{name}.duckdb"))
        try:
            store.write(_journaled(spans))
            rows.append(
                {
                    table: store.sql(f"select * from {table} order by {order}")  # type: ignore[attr-defined]
                    for table, order in tables.items()
                }
            )
        finally:
            store.close()
    sdk_rows, our_rows = rows
    assert all(sdk_rows[table] for table in tables)
    for table in tables:
        assert our_rows[table] == sdk_rows[table], table


def test_a_journal_span_reads_like_a_readable_span(decoded: Decoded) -> None:
    """Each journal span offers the SDK span's values under the SDK's names: context, parent (and its
    remoteness), kind, status, times, attributes, events, resource, scope."""
    for sdk, ours in zip(spans_of(decoded).spans, js.journal_spans_of(decoded).spans, strict=True):
        ctx, mine = sdk.get_span_context(), ours.get_span_context()
        assert ctx is not None
        assert (mine.trace_id, mine.span_id, mine.is_remote, mine.trace_flags) == (
            ctx.trace_id,
            ctx.span_id,
            ctx.is_remote,
            ctx.trace_flags,
        )
        assert (ours.parent is None) == (sdk.parent is None)
        if sdk.parent is not None and ours.parent is not None:
            assert (ours.parent.trace_id, ours.parent.span_id, ours.parent.is_remote) == (
                sdk.parent.trace_id,
                sdk.parent.span_id,
                sdk.parent.is_remote,
            )
        assert ours.kind is sdk.kind and ours.status.status_code is sdk.status.status_code
        assert ours.status.description == sdk.status.description
        assert (ours.name, ours.start_time, ours.end_time) == (sdk.name, sdk.start_time, sdk.end_time)
        assert dict(ours.attributes) == dict(sdk.attributes or {})
        assert [(e.name, e.attributes, e.timestamp) for e in ours.events] == [
            (e.name, e.attributes, e.timestamp) for e in sdk.events
        ]
        assert dict(ours.resource.attributes) == dict(sdk.resource.attributes)
        assert ours.instrumentation_scope == sdk.instrumentation_scope
    assert any(s.parent is not None and s.parent.is_remote for s in js.journal_spans_of(decoded).spans)


def test_ids_and_names_repeated_in_a_request_are_one_object(decoded: Decoded) -> None:
    """A run's trace id, a parent's span id (its own span's id too) and a repeated span name are one
    object each after decoding, so marshal sends each once."""
    spans = decoded.spans
    by_trace: dict[int, set[int]] = {}
    for span in spans:
        by_trace.setdefault(span[1], set()).add(id(span[1]))
    assert len(by_trace) >= 6 and all(len(objects) == 1 for objects in by_trace.values())
    own = {span[2]: id(span[2]) for span in spans}
    parents = [span[3] for span in spans if span[3] is not None and span[3] in own]
    assert parents and all(id(parent) == own[parent] for parent in parents)
    names: dict[str, set[int]] = {}
    for span in spans:
        names.setdefault(span[0], set()).add(id(span[0]))
    assert len(names) < len(spans) and all(len(objects) == 1 for objects in names.values())


def test_seen_ids_forget_only_after_two_generations() -> None:
    """The writer's dedupe drops a span whose id it accepted within the last two generations of
    ``capacity`` ids (also twice in one request) and forgets older ones."""
    seen = _SeenIds(4)

    resource, flags, status = Resource({}), js._TRACE_FLAGS[1], js._PLAIN_STATUS[0]

    def fresh(ids: list[int]) -> list[int]:
        spans = [
            js.JournalSpan("s", 1, i, flags, None, SpanKind.INTERNAL, status, 0, 0, {}, (), resource, None)
            for i in ids
        ]
        return [s.span_id for s in seen.fresh(spans)]

    assert fresh([1, 2, 3, 1, 4]) == [1, 2, 3, 4]  # the second 1 of the same request is a re-send
    assert fresh([5, 6, 7, 8]) == [5, 6, 7, 8]  # generation 1..4 full: 5..8 start the next
    assert fresh([1, 4, 5, 8]) == []  # both generations still known
    assert fresh([9]) == [9]  # a third generation starts: 1..4 are forgotten
    assert fresh([1, 5]) == [1]


def test_committed_span_ids_are_read_back_from_their_hex() -> None:
    """The ids the writer records as committed are the span rows' hex ids as integers, also when a
    row's id is not 16 hex digits."""
    ids = [0, 1, 0xFFFF_FFFF_FFFF_FFFF, 0x0123_4567_89AB_CDEF]
    texts = [struct.pack(">Q", i).hex() for i in ids]
    assert list(_span_ids(texts)) == ids
    assert list(_span_ids(["ff", *texts])) == [255, *ids]
    assert list(_span_ids([])) == []
