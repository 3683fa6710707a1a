"""OTLP requests decoded for the journal process: the values of the SDK's spans, repeats shared."""

from __future__ import annotations

from serve_helpers import agent_spans, request_of

from otel_runjournal.serve.otlp_spans import convert, decode


def test_decoded_spans_carry_the_sdk_spans_attributes() -> None:
    """Every span decoded from the request has the attributes, events and resource of the SDK span
    it was encoded from (arrays as tuples, as the SDK keeps them)."""
    spans = agent_spans(2)
    converted = convert(request_of(spans))
    assert converted.rejected == 0 and len(converted.spans) == len(spans)
    by_id = {s.context.span_id: s for s in spans}
    for got in converted.spans:
        sent = by_id[got.context.span_id]
        assert dict(got.attributes or {}) == dict(sent.attributes or {})
        assert [(e.name, dict(e.attributes or {}), e.timestamp) for e in got.events] == [
            (e.name, dict(e.attributes or {}), e.timestamp) for e in sent.events
        ]
        assert dict(got.resource.attributes) == dict(sent.resource.attributes)


def test_repeated_short_values_are_one_object_within_a_request() -> None:
    """A run id repeated on every span of a run is one string object after decoding (so pickle sends
    it once), and so is every attribute key."""
    spans = agent_spans(2, capture_content=True)
    decoded = decode(request_of(spans))
    run_ids = [attrs["runjournal.run_id"] for *_, attrs, _, _, _ in decoded.spans]
    assert len(run_ids) == len(spans) and len(set(run_ids)) == 2
    assert len({id(r) for r in run_ids}) == 2
    keys = [k for *_, attrs, _, _, _ in decoded.spans for k in attrs if k == "runjournal.run_id"]
    assert len({id(k) for k in keys}) == 1
