"""`show RUN`: the run's span tree as a timeline (text at any width, nested JSON), DuckDB and JSONL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st

from otel_runjournal.cli.demo_run import run_demo
from otel_runjournal.cli.main import cli
from otel_runjournal.cli.timeline import bar_cells

pytestmark = pytest.mark.usefixtures("clean_otel_env")


@pytest.fixture(scope="module")
def journals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, Any]]:
    """The demo (2 successful runs, 1 failing) in a DuckDB file and in a JSONL directory."""
    base = tmp_path_factory.mktemp("timeline")
    return {
        kind: (location, run_demo(location, runs=2))
        for kind, location in (("duckdb", str(base / "t.duckdb")), ("jsonl", f"jsonl:{base / 'tdir'}"))
    }


def _cli(*args: str, columns: int = 80) -> Result:
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": str(columns)})


def _tree(location: str, run_id: str) -> dict[str, Any]:
    result = _cli("show", run_id, "--store", location, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert len(data["spans"]) == 1
    return data["spans"][0]  # type: ignore[no-any-return]


def _nodes(node: dict[str, Any], depth: int = 0) -> list[tuple[int, dict[str, Any]]]:
    out = [(depth, node)]
    for child in node["children"]:
        out += _nodes(child, depth + 1)
    return out


def _shape(node: dict[str, Any]) -> Any:
    return (node["name"], [_shape(c) for c in node["children"]])


@pytest.mark.parametrize("kind", ["duckdb", "jsonl"])
def test_tree_shape_order_and_nesting(journals: dict[str, tuple[str, Any]], kind: str) -> None:
    """The JSON tree has the run's root agent span on top, every span once, children in start order and
    inside their parent's time, model calls with tokens that add up to the run's, subagent and
    middleware calls under their own spans."""
    location, demo = journals[kind]
    run_id = demo.run_ids[0]
    root = _tree(location, run_id)
    run = json.loads(_cli("runs", "--store", location, "--json").output)
    run = next(r for r in run if r["run_id"] == run_id)
    assert root["name"] == "invoke_agent research_assistant" and root["start_ms"] == 0
    nodes = _nodes(root)
    assert len({n["span_id"] for _, n in nodes}) == len(nodes)
    for _, node in nodes:
        starts = [c["start_ms"] for c in node["children"]]
        assert starts == sorted(starts)
        for child in node["children"]:
            assert child["start_ms"] >= node["start_ms"] - 0.001
            assert child["start_ms"] + child["duration_ms"] <= node["start_ms"] + node["duration_ms"] + 0.01
    calls = [n for _, n in nodes if n.get("model")]
    assert len(calls) == run["llm_call_count"]
    assert sum(c["input_tokens"] + c["output_tokens"] for c in calls) == run["total_tokens"]
    sub = next(n for _, n in nodes if n["name"] == "invoke_agent researcher")
    assert {c["caller"] for _, c in _nodes(sub)} == {"subagent:researcher"}
    assert any(c.get("model") == "scripted-mini" for _, c in _nodes(sub))
    assert [n["caller"] for n in calls if n["caller"].startswith("middleware:")] == [
        "middleware:summarization"
    ]
    failed = [n for _, n in nodes if n["status"] == "ERROR"]
    assert [n["name"] for n in failed] == ["execute_tool lookup_order"] and "LookupError" in failed[0][
        "error"
    ]


def test_jsonl_and_duckdb_give_the_same_tree(journals: dict[str, tuple[str, Any]]) -> None:
    """The spans file of a JSONL journal gives the same tree as the DuckDB spans table."""
    shapes = [_shape(_tree(location, demo.run_ids[0])) for location, demo in journals.values()]
    assert shapes[0] == shapes[1]


@pytest.mark.parametrize("columns", [60, 80, 132])
@pytest.mark.parametrize("kind", ["duckdb", "jsonl"])
def test_timeline_text_fits_and_bars_stay_on_the_axis(
    journals: dict[str, tuple[str, Any]], kind: str, columns: int
) -> None:
    """One line per span within the width; every bar lies on the axis drawn in the header, and the
    root's bar spans all of it; errors are marked."""
    location, demo = journals[kind]
    nodes = _nodes(_tree(location, demo.run_ids[0]))
    out = _cli("show", demo.run_ids[0], "--store", location, columns=columns).output
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= columns
    header = lines[1]
    axis_start = header.index("0 ") if "0 " in header else header.index("0")
    axis_end = len(header.rstrip())
    body = lines[2 : 2 + len(nodes)]
    assert len(body) == len(nodes)
    for line, (_, node) in zip(body, nodes, strict=True):
        assert line.lstrip().startswith(node["name"][:10])
        cells = [i for i, ch in enumerate(line) if ch == "█"]
        assert cells and cells == list(range(cells[0], cells[-1] + 1))  # one unbroken bar
        assert axis_start <= cells[0] and cells[-1] < axis_end
    root_cells = [i for i, ch in enumerate(body[0]) if ch == "█"]
    assert root_cells[0] == axis_start
    assert "✗ LookupError" in out or "✗ Lookup" in out


def test_error_run_marks_the_failed_call(journals: dict[str, tuple[str, Any]]) -> None:
    """The failing run's model call carries the error message; its ancestors carry the mark only."""
    location, demo = journals["duckdb"]
    out = _cli("show", demo.error_run_id, "--store", location, columns=100).output
    marked = [line for line in out.splitlines() if "✗" in line]
    assert marked and "ScriptedModelError" in marked[-1] and "chat scripted-1" in marked[-1]
    assert all("ScriptedModelError" not in line for line in marked[:-1])


@given(
    start=st.floats(0, 1e6, allow_nan=False),
    length=st.floats(0, 1e6, allow_nan=False),
    axis=st.floats(1e-3, 1e6, allow_nan=False),
    width=st.integers(1, 200),
)
def test_bars_never_exceed_the_axis(start: float, length: float, axis: float, width: int) -> None:
    """Whatever the times (even past the axis), a bar has 1..width cells inside 0..width."""
    first, cells = bar_cells(min(start, axis), min(length, axis), axis, width)
    assert first >= 0 and cells >= 1 and first + cells <= width


_PARALLEL = """
import sys
from otel_runjournal.wiring import configure
from otel_runjournal.demo.agent import build_agent
from otel_runjournal.demo.model import ScriptedChatModel

wired = configure(sys.argv[1], set_global=False)
model = ScriptedChatModel(plan=[[("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Lisbon"}),
                                 ("calculator", {"expression": "1+1"})]])
agent = build_agent(model, subagent=False, failing_tool=False, middleware=False)
agent.invoke({"messages": [("user", "weather in Paris and Lisbon?")]},
             {"callbacks": [wired.handler], "configurable": {"thread_id": "parallel"}})
wired.shutdown()
"""


def test_parallel_tool_calls_are_siblings(tmp_path: Path) -> None:
    """Tool calls a model asks for at once are sibling spans under one tools node, each on its own line
    at the same depth, ordered by start."""
    import subprocess
    import sys

    location = str(tmp_path / "p.duckdb")
    subprocess.run([sys.executable, "-c", _PARALLEL, location], check=True, timeout=120)
    runs = json.loads(_cli("runs", "--store", location, "--json").output)
    root = _tree(location, runs[0]["run_id"])
    parents = [
        n for _, n in _nodes(root) if sum(c["name"].startswith("execute_tool") for c in n["children"]) > 1
    ]
    assert len(parents) == 1
    tools = [c for c in parents[0]["children"] if c["name"].startswith("execute_tool")]
    assert sorted(c["name"] for c in tools) == [
        "execute_tool calculator",
        "execute_tool get_weather",
        "execute_tool get_weather",
    ]
    assert [c["start_ms"] for c in tools] == sorted(c["start_ms"] for c in tools)
    text = _cli("show", runs[0]["run_id"], "--store", location).output.splitlines()
    tool_lines = [line for line in text if "execute_tool" in line]
    assert len(tool_lines) == 3
    assert len({len(line) - len(line.lstrip()) for line in tool_lines}) == 1
