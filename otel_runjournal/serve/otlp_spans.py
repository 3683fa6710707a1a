"""OTLP trace requests → plain decoded values → the spans the journal mapping reads (no second mapping).

``serve`` journals exactly what ``RunJournalExporter`` would journal in the sending process: each
OTLP span becomes a finished span with the same name, ids, parent, kind, times, status, attributes
(arrays as tuples, as the SDK keeps them), events and a ``Resource`` shared by the spans of one
``ResourceSpans``, and goes through the same :class:`~otel_runjournal.journal.assembler.Assembler`.
The journal process builds its own span objects from :func:`decode`'s values
(:func:`.journal_spans.journal_spans_of`); :func:`spans_of` / :func:`convert` build the SDK's
``ReadableSpan`` from the same values (the tests and the benchmarks' in-process baselines).

Bodies: OTLP/protobuf (``ExportTraceServiceRequest``) and OTLP/JSON (lowerCamelCase or original
field names, ids as hex, enums as integers, unknown fields ignored, as the OTLP spec says). A span
with malformed ids is rejected (counted for the protocol's partial success); a body that does not
parse raises :class:`MalformedRequest`.

What OTLP cannot carry: the in-process content side channel. Over OTLP, prompts and completions
reach the journal only when the sending app put them on its spans (``capture_content=True`` /
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``). A parent's ``is_remote`` travels in
the span flags (bits 8-9) when the sender sets them (the Python SDK does); otherwise the parent
counts as local.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode

__all__ = [
    "Converted",
    "Decoded",
    "ExportTraceServiceRequest",
    "ExportTraceServiceResponse",
    "MalformedRequest",
    "convert",
    "decode",
    "parse_json",
    "parse_protobuf",
    "response_json",
    "spans_of",
]

_HAS_IS_REMOTE = 0x100  # SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
_IS_REMOTE = 0x200  # SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
# OTLP SpanKind (0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer) → SDK SpanKind
_KINDS = {
    0: SpanKind.INTERNAL,
    1: SpanKind.INTERNAL,
    2: SpanKind.SERVER,
    3: SpanKind.CLIENT,
    4: SpanKind.PRODUCER,
    5: SpanKind.CONSUMER,
}
_STATUS_CODES = {0: StatusCode.UNSET, 1: StatusCode.OK, 2: StatusCode.ERROR}
_PLAIN_STATUS = {number: Status(code) for number, code in _STATUS_CODES.items()}  # by OTLP number
_TRACE_FLAGS = [TraceFlags(flags) for flags in range(256)]  # immutable ints: one of each, shared
_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


class MalformedRequest(ValueError):
    """The body is not a valid OTLP trace export request (the protocol's "bad request")."""


@dataclass(slots=True)
class Converted:
    """The spans of one request and what was rejected (for the protocol's partial success)."""

    spans: list[ReadableSpan]
    rejected: int = 0
    reason: str | None = None


def parse_protobuf(body: bytes) -> ExportTraceServiceRequest:
    """Decode an OTLP/protobuf body; :class:`MalformedRequest` when it does not parse."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise MalformedRequest(f"not an OTLP/protobuf ExportTraceServiceRequest: {exc}") from None
    return request


def _hex_ids_to_base64(obj: Any) -> None:
    """OTLP/JSON writes trace / span ids as hex; protobuf's JSON mapping expects base64 for bytes."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in _ID_FIELDS and isinstance(value, str):
                try:
                    obj[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
                except ValueError:
                    raise MalformedRequest(f"{key} is not hex: {value[:40]!r}") from None
            else:
                _hex_ids_to_base64(value)
    elif isinstance(obj, list):
        for item in obj:
            _hex_ids_to_base64(item)


def parse_json(body: bytes) -> ExportTraceServiceRequest:
    """Decode an OTLP/JSON body; :class:`MalformedRequest` when it does not parse."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedRequest(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedRequest("an OTLP/JSON request is a JSON object")
    _hex_ids_to_base64(data)
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(data, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise MalformedRequest(f"not an OTLP/JSON ExportTraceServiceRequest: {exc}") from None
    return request


def response_json(response: ExportTraceServiceResponse) -> bytes:
    """An export response in OTLP/JSON."""
    return json_format.MessageToJson(response, indent=None).encode("utf-8")


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return tuple(_value(x) for x in v.array_value.values)
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":  # no bytes in JSON rows: base64, as OTLP/JSON writes them
        return base64.b64encode(v.bytes_value).decode("ascii")
    return getattr(v, kind)


SHARED_STRING_CHARS = 64
"""String values up to this long are shared within a request (see :func:`attributes`)."""
_intern = sys.intern


def attributes(kvs: Iterable[Any], strings: dict[str, str] | None = None) -> dict[str, Any]:
    """OTLP ``KeyValue`` list → attribute dict (empty values dropped, as the SDK drops ``None``).

    Keys are interned and short string values (run ids, model and tool names, operation names)
    are shared through ``strings`` (one dict per request): every span of a run repeats them, and
    pickle writes a repeated object once, so the request crosses to the journal process at ~40% of
    the bytes and unpickles in ~half the time there (``bench/bench_serve.py``); its dict lookups
    in the mapping then compare keys by identity.
    """
    out: dict[str, Any] = {}
    if strings is None:
        strings = {}
    share, limit, intern = strings.setdefault, SHARED_STRING_CHARS, _intern
    for kv in kvs:  # the scalar cases inline: this runs for every attribute of every span
        v = kv.value
        text = v.string_value  # most values are strings: read first, WhichOneof only for the rest
        if text:
            out[intern(kv.key)] = share(text, text) if len(text) <= limit else text
            continue
        kind = v.WhichOneof("value")
        if kind == "string_value":
            out[intern(kv.key)] = text
        elif kind == "int_value":
            out[intern(kv.key)] = v.int_value
        elif kind == "bool_value":
            out[intern(kv.key)] = v.bool_value
        elif kind == "double_value":
            out[intern(kv.key)] = v.double_value
        elif kind is not None:
            out[intern(kv.key)] = _value(v)
    return out


def _check_id(raw: bytes, size: int) -> int | None:
    if len(raw) != size:
        return None
    value = int.from_bytes(raw, "big")
    return value or None


_REJECT_REASON = "spans with a missing or malformed trace_id / span_id / parent_span_id"


class Decoded(NamedTuple):
    """A request as plain values (cheap to pickle): what :func:`decode` reads, :func:`spans_of` builds.

    ``spans``: ``(name, trace_id, span_id, parent_id, parent_remote, flags, kind, status_code,
    status_message, start, end, attributes, events, resource, scope)`` with ``events`` a tuple of
    ``(name, attributes, time)`` and ``resource`` / ``scope`` indexes into the two lists.
    """

    resources: list[tuple[dict[str, Any], str | None]]
    scopes: list[tuple[str, str | None, str | None]]
    spans: list[tuple[Any, ...]]
    rejected: int
    reason: str | None


def decode(request: ExportTraceServiceRequest) -> Decoded:
    """The request's valid spans as plain values; spans with malformed ids are counted, not kept."""
    resources: list[tuple[dict[str, Any], str | None]] = []
    scopes: list[tuple[str, str | None, str | None]] = []
    out: list[tuple[Any, ...]] = []
    rejected = 0
    strings: dict[str, str] = {}  # short string values shared within the request
    # ... and ids (a run's trace id, a parent's span id: marshal writes a repeated object once, and
    # the journal process reads a reference for ~a tenth of what a 64 / 128-bit int costs)
    ids: dict[int, int] = {}
    share, share_id, limit = strings.setdefault, ids.setdefault, SHARED_STRING_CHARS
    for rs in request.resource_spans:
        resource = len(resources)
        resources.append((attributes(rs.resource.attributes, strings), rs.schema_url or None))
        for ss in rs.scope_spans:
            scope = len(scopes)
            scopes.append((ss.scope.name, ss.scope.version or None, ss.schema_url or None))
            for span in ss.spans:
                trace_id = _check_id(span.trace_id, 16)
                span_id = _check_id(span.span_id, 8)
                parent_raw = span.parent_span_id
                parent_id = _check_id(parent_raw, 8) if parent_raw else None
                if trace_id is None or span_id is None or (parent_raw and parent_id is None):
                    rejected += 1
                    continue
                trace_id, span_id = share_id(trace_id, trace_id), share_id(span_id, span_id)
                if parent_id is not None:
                    parent_id = share_id(parent_id, parent_id)
                name = span.name
                flags = span.flags
                status = span.status
                events = span.events  # each field read of a upb message looks its name up: read once
                events = (
                    tuple((e.name, attributes(e.attributes, strings), e.time_unix_nano) for e in events)
                    if events
                    else ()
                )
                out.append(
                    (
                        share(name, name) if len(name) <= limit else name,
                        trace_id,
                        span_id,
                        parent_id,
                        bool(flags & _HAS_IS_REMOTE and flags & _IS_REMOTE),
                        flags & 0xFF,
                        span.kind,
                        status.code,
                        status.message,
                        span.start_time_unix_nano,
                        span.end_time_unix_nano,
                        attributes(span.attributes, strings),
                        events,
                        resource,
                        scope,
                    )
                )
    return Decoded(resources, scopes, out, rejected, _REJECT_REASON if rejected else None)


def spans_of(decoded: Decoded) -> Converted:
    """Finished ``ReadableSpan`` objects of a decoded request, as the SDK would hand them to exporters.

    Immutable parts are shared within the request: a span's context is also its children's parent
    context (``SpanContext`` validates its ids in Python, ~1 µs each), the trace flags and the
    plain statuses are made once. (The journal process builds its own, lighter span objects from the
    same values: :func:`.journal_spans.journal_spans_of`.)"""
    resources = [Resource(attrs, schema_url) for attrs, schema_url in decoded.resources]
    scopes = [InstrumentationScope(*scope) for scope in decoded.scopes]
    contexts: dict[tuple[int, int, bool, int], SpanContext] = {}
    out: list[ReadableSpan] = []
    for (
        name,
        trace_id,
        span_id,
        parent_id,
        remote,
        flags,
        kind,
        code,
        message,
        start,
        end,
        attrs,
        events,
        resource,
        scope,
    ) in decoded.spans:
        trace_flags = _TRACE_FLAGS[flags]
        key = (span_id, trace_id, False, flags)
        context = contexts.get(key)
        if context is None:
            context = contexts[key] = SpanContext(trace_id, span_id, False, trace_flags)
        parent = None
        if parent_id:
            key = (parent_id, trace_id, remote, flags)
            parent = contexts.get(key)
            if parent is None:
                parent = contexts[key] = SpanContext(trace_id, parent_id, remote, trace_flags)
        out.append(
            ReadableSpan(
                name,
                context=context,
                parent=parent,
                resource=resources[resource],
                attributes=attrs,
                events=[Event(*event) for event in events] if events else (),
                kind=_KINDS.get(kind, SpanKind.INTERNAL),
                status=Status(StatusCode.ERROR, message)
                if code == 2 and message
                else _PLAIN_STATUS.get(code, _PLAIN_STATUS[0]),
                start_time=start,
                end_time=end,
                instrumentation_scope=scopes[scope],
            )
        )
    return Converted(out, decoded.rejected, decoded.reason)


def convert(request: ExportTraceServiceRequest) -> Converted:
    """Every valid span of the request as a finished ``ReadableSpan``; invalid ones are counted."""
    return spans_of(decode(request))
