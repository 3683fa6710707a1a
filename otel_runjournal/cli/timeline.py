"""A run's span tree as a timeline, from the journal's ``spans`` rows alone (what Jaeger's trace view
shows, in the terminal).

One line per span, in tree order (children by start time), indented by depth; a bar placed and sized
by the span's start and duration on the run's time axis; the duration; tokens in→out on model calls;
the caller where it changes (``subagent:NAME`` / ``middleware:NAME`` under a ``lead_agent`` parent:
every span below it belongs to it too); errors (``✗``) and interrupts (``⏸``) marked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text

from .. import semconv as sc
from ..records import SpanRecord
from .values import duration, usd

LEAD = sc.CALLER_LEAD_AGENT
_LLM_OPS = ("chat", "text_completion", "generate_content")
NAME_SHARE = 0.4
"""Widest name column (indent included) as a share of the width; longer names end in "…"
(``--json`` has them whole)."""
BAR_MIN = 12
EXTRA_BUDGET = 22
"""Columns kept for tokens / caller / marks before the bar gets the rest (longer ones are cut)."""
DUR_WIDTH = 8


@dataclass
class Node:
    """One span in the tree (times in ms from the run's first span start)."""

    name: str
    span_id: str
    start_ms: float
    duration_ms: float
    status: str
    caller: str
    kind: str = ""
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None  # a model call's cost as journaled (its llm_end), None: unpriced
    error: str | None = None
    interrupted: bool = False
    children: list[Node] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The node and its children as nested JSON-ready dicts."""
        out: dict[str, Any] = {
            "name": self.name,
            "span_id": self.span_id,
            "kind": self.kind,
            "start_ms": round(self.start_ms, 3),
            "duration_ms": round(self.duration_ms, 3),
            "status": self.status,
            "caller": self.caller,
        }
        if self.model is not None:
            out |= {
                "model": self.model,
                "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens,
                "cost_usd": self.cost_usd,
            }
        if self.error is not None:
            out["error"] = self.error
        if self.interrupted:
            out["interrupted"] = True
        out["children"] = [c.as_dict() for c in self.children]
        return out


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _node(span: SpanRecord, t0: float) -> Node:
    attrs = span.attributes
    op = attrs.get(sc.GEN_AI_OPERATION_NAME)
    node = Node(
        name=span.name,
        span_id=span.span_id,
        start_ms=span.start_time.timestamp() * 1000 - t0,
        duration_ms=max(0.0, span.duration_ms),
        status=span.status_code,
        caller=str(attrs.get(sc.RJ_CALLER) or LEAD),
        kind=span.kind,
        interrupted=bool(attrs.get(sc.RJ_INTERRUPTED)),
    )
    if op in _LLM_OPS or sc.GEN_AI_USAGE_INPUT_TOKENS in attrs:
        node.model = str(attrs.get(sc.GEN_AI_RESPONSE_MODEL) or attrs.get(sc.GEN_AI_REQUEST_MODEL) or "")
        node.input_tokens = _int(attrs.get(sc.GEN_AI_USAGE_INPUT_TOKENS))
        node.output_tokens = _int(attrs.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS))
    if span.status_code == "ERROR":
        node.error = span.status_message or str(attrs.get("error.type") or "error")
    return node


def build_tree(spans: Sequence[SpanRecord], costs: Mapping[str, float | None] | None = None) -> list[Node]:
    """The roots (normally one) of the run's span tree; a span whose parent is not in the run is a root.
    Children are ordered by start time (then span id, so equal starts keep one order). ``costs``: model
    calls' cost by span id (from their ``llm_end`` events)."""
    if not spans:
        return []
    t0 = min(s.start_time.timestamp() for s in spans) * 1000
    nodes = {s.span_id: _node(s, t0) for s in spans}
    for span_id, cost in (costs or {}).items():
        node = nodes.get(span_id)
        if node is not None and node.model is not None:
            node.cost_usd = cost
    roots: list[Node] = []
    for span in spans:
        parent = nodes.get(span.parent_span_id or "")
        (parent.children if parent is not None and span.parent_span_id != span.span_id else roots).append(
            nodes[span.span_id]
        )

    def order(level: list[Node]) -> None:
        level.sort(key=lambda n: (n.start_ms, n.span_id))
        for n in level:
            order(n.children)

    order(roots)
    return roots


def walk(roots: Sequence[Node]) -> list[tuple[int, Node, str]]:
    """``(depth, node, parent's caller)`` in display order."""
    out: list[tuple[int, Node, str]] = []

    def visit(node: Node, depth: int, parent_caller: str) -> None:
        out.append((depth, node, parent_caller))
        for child in node.children:
            visit(child, depth + 1, node.caller)

    for root in roots:
        visit(root, 0, LEAD)
    return out


def axis_ms(roots: Sequence[Node]) -> float:
    """The run's time axis length: the latest end of any span."""
    return max((n.start_ms + n.duration_ms for _, n, _ in walk(roots)), default=0.0)


def bar_cells(start_ms: float, duration_ms: float, axis: float, width: int) -> tuple[int, int]:
    """``(first cell, cells)`` of a span's bar on a ``width``-cell axis: always 1..width cells, never
    past the axis' end."""
    if axis <= 0 or width <= 0:
        return 0, max(1, min(width, 1))
    first = min(width - 1, max(0, math.floor(start_ms / axis * width)))
    last = min(width, max(first + 1, math.ceil((start_ms + duration_ms) / axis * width)))
    return first, last - first


def _extras(node: Node, parent_caller: str) -> str:
    parts = []
    if node.model is not None and (node.input_tokens is not None or node.output_tokens is not None):
        parts.append(f"{node.input_tokens or 0:,}→{node.output_tokens or 0:,}")
    if node.cost_usd is not None and node.error is None:  # a failed call's $0 would crowd its error out
        parts.append(usd(node.cost_usd))
    if node.caller != LEAD and node.caller != parent_caller:
        parts.append(node.caller)
    if node.error is not None:  # the message where the error arose; its ancestors just carry the mark
        arose_here = not any(c.error is not None for c in node.children)
        parts.append("✗ " + " ".join(node.error.split()) if arose_here else "✗")
    if node.interrupted:
        parts.append("⏸ interrupted")
    return " ".join(parts)


def _short_callers(text: str) -> str:
    return text.replace("middleware:", "mw:").replace("subagent:", "sub:")


def render(roots: Sequence[Node], width: int = 80) -> list[Text]:
    """The timeline as lines of at most ``width`` characters."""
    rows = walk(roots)
    if not rows:
        return []
    axis = axis_ms(roots)
    limit = max(20, int(width * NAME_SHARE))
    indent = 2 if max(2 * d + len(n.name) for d, n, _ in rows) <= limit else 1  # names whole if they can be
    name_width = min(limit, max(indent * d + len(n.name) for d, n, _ in rows))
    extras = [_extras(n, pc) for _, n, pc in rows]
    extra_width = min(EXTRA_BUDGET, max((len(e) for e in extras), default=0))
    bar_width = max(BAR_MIN, width - name_width - DUR_WIDTH - extra_width - 3 - 1)
    if name_width + bar_width + DUR_WIDTH + 3 > width:  # very narrow: the bar gives way first
        bar_width = max(4, width - name_width - DUR_WIDTH - 3)
    room = max(0, width - name_width - bar_width - DUR_WIDTH - 3)
    header = Text(" " * name_width + " ")
    left, right = "0", duration(axis)
    header.append(
        left + right.rjust(bar_width - len(left)) if bar_width > len(left + right) else right, "dim"
    )
    lines = [header]
    for (depth, node, _), extra in zip(rows, extras, strict=True):
        label = " " * (indent * depth) + node.name
        if len(label) > name_width:
            label = label[: name_width - 1] + "…"
        first, cells = bar_cells(node.start_ms, node.duration_ms, axis, bar_width)
        style = "red" if node.error else "magenta" if node.interrupted else "cyan" if node.model else "blue"
        line = Text(label.ljust(name_width) + " ", style="bold" if depth == 0 else "")
        line.append(" " * first)
        line.append("█" * cells, style)
        line.append(" " * (bar_width - first - cells))
        line.append(" " + duration(node.duration_ms).rjust(DUR_WIDTH))
        if extra and room:
            if len(extra) > room:
                extra = _short_callers(extra)
            if len(extra) > room:
                extra = extra[: room - 1] + "…"
            line.append(" " + extra, "red" if node.error else "")
        lines.append(line)
    return lines
