"""The events of each kind of span: model calls, tools, retrievers, and custom events (summaries).

Each function adds a span's trace events, and its message events (a lead agent's answer, a summary),
to the span's :class:`~.emitter.Emitter`. Which function runs is decided in :func:`.mapping.map_span`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from .. import content as _content
from .. import genai_json as gj
from .. import semconv as sc
from ..pricing import CallUsage, Pricer, priced_model
from .emitter import G_BODY, R_POINT, Emitter, SortKey, SpanContent
from .spanfacts import run_name, usage_of


def llm_events(
    out: Emitter, attrs: Mapping[str, Any], content: SpanContent, pricer: Pricer | None = None
) -> None:
    get = attrs.get
    response_model = get(sc.GEN_AI_RESPONSE_MODEL)
    model = get(sc.GEN_AI_REQUEST_MODEL) or response_model
    mapped = out.mapped
    caller = mapped.caller
    usage = mapped.usage = usage_of(attrs)
    price = provider = None
    if pricer is not None:
        provider, priced = priced_model(attrs)
        call = CallUsage(
            usage.input_tokens,
            usage.output_tokens,
            usage.cached_input_tokens,
            usage.cache_write_input_tokens,
            usage.reasoning_tokens,
        )
        price = pricer.price(provider, priced, call, out.start_at)
        mapped.cost_usd = None if price is None else price.cost_usd
    out.emit(out.start_key, "llm_start", "trace", None, {"model_name": model, "caller": caller})
    if out.failed:
        failure = {"error_type": out.error_type, "caller": caller, "model_name": model}
        failure["latency_ms"] = out.latency_ms
        if pricer is not None:
            failure["cost_usd"] = None if price is None else price.cost_usd
            failure["price_source"] = None if price is None else price.source
            failure["provider"] = provider
        out.emit(out.end_key, "llm_error", "trace", out.error_message, failure)
        return
    data, rendered = content.parsed(sc.GEN_AI_OUTPUT_MESSAGES)
    text, calls = gj.output_of(rendered, data) if rendered is not None else ("", [])
    text = text or content.get("gen_ai.completion.0.content") or ""  # OpenLLMetry-style spans
    finish = get(sc.GEN_AI_RESPONSE_FINISH_REASONS)
    meta: dict[str, Any] = {
        "model": response_model or model,
        "model_name": model,
        "caller": caller,
        "usage": usage.as_dict(),
        "latency_ms": out.latency_ms,
        "finish_reasons": list(finish) if isinstance(finish, (list, tuple)) else [],
        "tool_calls": calls,
    }
    if pricer is not None:
        if price is None:
            meta["cost_usd"] = meta["price_source"] = None
        else:
            meta["cost_usd"], meta["price_source"] = price.cost_usd, price.source
        meta["provider"] = provider  # what reprice prices by
    if sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in attrs:
        meta["time_to_first_chunk"] = attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]
    end_key = out.end_key
    out.emit(end_key, "llm_end", "trace", text or None, meta)
    if text and caller == sc.CALLER_LEAD_AGENT:
        meta = {"model_name": model, "tool_calls": calls}
        out.emit((*end_key[:5], end_key[5] + 1), "ai_message", "message", text, meta)


def tool_events(out: Emitter, span: ReadableSpan, attrs: Mapping[str, Any], content: SpanContent) -> None:
    ids = {
        "tool_name": attrs.get(sc.GEN_AI_TOOL_NAME) or run_name(span, attrs),
        "tool_call_id": attrs.get(sc.GEN_AI_TOOL_CALL_ID),
    }
    args, args_text = content.parsed(sc.GEN_AI_TOOL_CALL_ARGUMENTS)
    if args is gj.NOT_JSON:
        args = None
    meta = {**ids, "args": args if args is not None else args_text, "caller": out.mapped.caller}
    out.emit(out.start_key, "tool_start", "trace", None, meta)
    if out.failed:
        meta = {**ids, "error_type": out.error_type, "latency_ms": out.latency_ms}
        out.emit(out.end_key, "tool_error", "trace", out.error_message, meta)
    elif attrs.get(sc.RJ_INTERRUPTED):  # a LangGraph interrupt ended it: it returned nothing
        meta = {**ids, "latency_ms": out.latency_ms}
        out.emit(out.end_key, "tool_interrupted", "trace", content.get(_content.KEY_INTERRUPT_VALUE), meta)
    else:
        meta = {**ids, "status": "success", "latency_ms": out.latency_ms}
        out.emit(out.end_key, "tool_end", "trace", content.get(sc.GEN_AI_TOOL_CALL_RESULT), meta)


def retriever_events(
    out: Emitter, span: ReadableSpan, attrs: Mapping[str, Any], content: SpanContent
) -> None:
    name = run_name(span, attrs)
    query = content.get(_content.KEY_RETRIEVAL_QUERY)
    out.emit(
        out.start_key,
        "retriever_start",
        "trace",
        query,
        {"retriever_name": name, "caller": out.mapped.caller},
    )
    if out.failed:
        meta = {"retriever_name": name, "error_type": out.error_type, "latency_ms": out.latency_ms}
        out.emit(out.end_key, "retriever_error", "trace", out.error_message, meta)
    else:
        count = attrs.get(sc.RJ_RETRIEVER_DOCUMENT_COUNT)
        meta = {"retriever_name": name, "document_count": count, "latency_ms": out.latency_ms}
        docs = content.get(_content.KEY_RETRIEVAL_DOCUMENTS)
        out.emit(out.end_key, "retriever_end", "trace", docs, meta)


def custom_events(out: Emitter, content: SpanContent) -> None:
    """``runjournal.custom.<name>`` span events → ``<name>`` trace events (+ ``summary`` messages)."""
    side = content.raw(_content.KEY_CUSTOM_EVENTS)
    pool: list[tuple[str, int, Any]] = list(side) if isinstance(side, (list, tuple)) else []
    start = out.mapped.start_ns
    for index, event in enumerate(out.events):
        if not event.name.startswith(sc.EVENT_CUSTOM_PREFIX):
            continue
        name = event.name[len(sc.EVENT_CUSTOM_PREFIX) :]
        raw = (event.attributes or {}).get(sc.RJ_CUSTOM_DATA) if content.enabled else None
        for i, entry in enumerate(pool):  # this event's side-channel entry: the next one of that name
            if entry[0] == name:
                raw = raw if raw is not None else _content.render(entry[2])
                del pool[i]
                break
        data = gj.parse(raw) if isinstance(raw, str) else raw
        if data is None and isinstance(raw, str):
            data = raw
        ts = max(event.timestamp or start, start)
        # a point event sorts after its span's start and before its span's end
        key: SortKey = (G_BODY, ts, R_POINT, start, out.span_id, 2 * index)
        if ts >= out.end_key[1]:
            key = (*out.end_key[:5], out.end_key[5] - 1000 + 2 * index)
        summary = data.get("summary") if isinstance(data, dict) else None
        text = summary if isinstance(summary, str) else None
        meta = data if isinstance(data, dict) else ({} if data is None else {"data": data})
        out.emit(key, name, "trace", text, meta)
        if name == "summarization" and text is not None:
            replaced = {"replaced_count": meta.get("replaced_count")}
            out.emit((*key[:5], key[5] + 1), "summary", "message", text, replaced)
