"""Cost: model calls priced with genai-prices (or the user's prices) in the journal stage, summed into
``runs.cost_usd`` and the cost views; unknown models are unpriced (null, counted), never $0. Expected
figures are computed here with ``genai_prices.calc_price`` directly, from the usage the spans report."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind
from spanfactory import T0, SpanFactory, common

from otel_runjournal import semconv as sc
from otel_runjournal.journal.exporter import RunJournalExporter
from otel_runjournal.pricing import CallUsage, Pricer
from otel_runjournal.stores import DuckDBStore, JsonlStore
from otel_runjournal.stores.base import RunStore

genai_prices = pytest.importorskip("genai_prices", reason="genai-prices needs Python 3.11")

AT = datetime.fromtimestamp(T0 / 1e9, timezone.utc)
_CALC_PRICE = genai_prices.calc_price  # the table itself, not the counting wrapper a test puts in

# OpenAI-shaped: input includes cache reads, output includes reasoning (what LangChain reports)
OPENAI = {"provider": "openai", "model": "o3-mini", "input": 1200, "output": 400, "read": 1000, "write": 0,
          "reasoning": 256}  # fmt: skip
# Anthropic-shaped: input includes cache reads and cache writes
ANTHROPIC = {"provider": "anthropic", "model": "claude-sonnet-4-5", "input": 1765, "output": 9, "read": 1500,
             "write": 203, "reasoning": 0}  # fmt: skip
UNKNOWN = {"provider": "openai", "model": "no-such-model-xyz", "input": 50, "output": 5, "read": 0,
           "write": 0, "reasoning": 0}  # fmt: skip


def expected(call: dict[str, Any], at: datetime = AT) -> float:
    """The call's price straight from genai-prices (independent of the code under test)."""
    usage = genai_prices.Usage(
        input_tokens=call["input"],
        output_tokens=call["output"],
        cache_read_tokens=call["read"] or None,
        cache_write_tokens=call["write"] or None,
        output_reasoning_tokens=call["reasoning"] or None,
    )
    result = _CALC_PRICE(usage, call["model"], provider_id=call["provider"], genai_request_timestamp=at)
    return float(result.total_price)


def _chat_attrs(run_id: str, call: dict[str, Any], caller: str) -> dict[str, Any]:
    attrs = {
        **common(run_id, "thread-cost", caller=caller, run_type="chat_model"),
        sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT,
        sc.GEN_AI_PROVIDER_NAME: call["provider"],
        sc.GEN_AI_REQUEST_MODEL: call["model"],
        sc.GEN_AI_RESPONSE_MODEL: call["model"],
        sc.GEN_AI_USAGE_INPUT_TOKENS: call["input"],
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: call["output"],
    }
    if call["read"]:
        attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = call["read"]
    if call["write"]:
        attrs[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = call["write"]
    if call["reasoning"]:
        attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = call["reasoning"]
    return attrs


def journal(store: RunStore, run_id: str, calls: list[tuple[dict[str, Any], str]], **kw: Any) -> None:
    """Journal one handler-shaped run whose model calls are ``calls`` ((call, caller) pairs)."""
    f = SpanFactory(TracerProvider())
    root = f.start(
        "invoke_agent lead",
        0,
        attrs={
            **common(run_id, "thread-cost"),
            sc.RJ_IS_ROOT: True,
            sc.GEN_AI_OPERATION_NAME: sc.OP_INVOKE_AGENT,
            sc.GEN_AI_AGENT_NAME: "lead",
        },
    )
    spans = []
    for i, (call, caller) in enumerate(calls):
        chat = f.start(
            f"chat {call['model']}",
            10 * i,
            parent=root,
            attrs=_chat_attrs(run_id, call, caller),
            kind=SpanKind.CLIENT,
        )
        spans.append(f.end(chat, 10 * i + 5))
    spans.append(f.end(root, 100))
    exporter = RunJournalExporter(store, **kw)
    exporter.export(spans)
    exporter.shutdown()


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[DuckDBStore]:
    with DuckDBStore(tmp_path / "j.duckdb") as store:
        yield store


def test_openai_and_anthropic_usage_priced_with_cache_and_reasoning(duck: DuckDBStore) -> None:
    """Each llm_end carries the genai-prices cost of its usage; the runs row sums them."""
    journal(duck, "r1", [(OPENAI, "lead_agent"), (ANTHROPIC, "subagent:researcher")])
    ends = [e for e in duck.list_events("r1") if e.event_type == "llm_end"]
    by_model = {e.metadata["model"]: e.metadata for e in ends}
    assert by_model["o3-mini"]["cost_usd"] == pytest.approx(expected(OPENAI), rel=1e-12)
    assert by_model["claude-sonnet-4-5"]["cost_usd"] == pytest.approx(expected(ANTHROPIC), rel=1e-12)
    assert by_model["o3-mini"]["price_source"].startswith(f"genai-prices {genai_prices.__version__}")
    run = duck.get_run("r1")
    assert run is not None
    assert run.cost_usd == pytest.approx(expected(OPENAI) + expected(ANTHROPIC), rel=1e-12)
    assert run.unpriced_call_count == 0
    # the cache breakdown matters: the same tokens all uncached cost more than with cache reads
    assert expected(ANTHROPIC) < expected({**ANTHROPIC, "read": 0, "write": 0})


def test_unknown_model_is_unpriced_never_zero(duck: DuckDBStore) -> None:
    """An unknown model's call has cost null and is counted; a run of only such calls has cost null."""
    journal(duck, "only-unknown", [(UNKNOWN, "lead_agent")])
    journal(duck, "mixed", [(UNKNOWN, "lead_agent"), (OPENAI, "lead_agent")])
    alone = duck.get_run("only-unknown")
    assert alone is not None and alone.cost_usd is None and alone.unpriced_call_count == 1
    end = next(e for e in duck.list_events("only-unknown") if e.event_type == "llm_end")
    assert end.metadata["cost_usd"] is None and end.metadata["price_source"] is None
    mixed = duck.get_run("mixed")
    assert mixed is not None and mixed.unpriced_call_count == 1
    assert mixed.cost_usd == pytest.approx(expected(OPENAI), rel=1e-12)
    usage = duck.token_usage()
    assert usage.unpriced_call_count == 2
    assert usage.cost_usd == pytest.approx(expected(OPENAI), rel=1e-12)


def test_user_prices_override_the_table(duck: DuckDBStore) -> None:
    """User prices per million tokens, and 'price as' aliases, win over the table."""
    mine = {**UNKNOWN, "model": "my-finetune", "read": 20}
    alias = {**UNKNOWN, "model": "my-gpt"}
    prices = {
        "my-finetune": {"input_mtok": 2.0, "output_mtok": 8.0, "cache_read_mtok": 0.5},
        "my-gpt": "openai:gpt-4o-mini",
        "o3-mini": {"input_mtok": 1.0, "output_mtok": 1.0},  # a negotiated rate beats the table
    }
    journal(duck, "u", [(mine, "lead_agent"), (alias, "lead_agent"), (OPENAI, "lead_agent")], prices=prices)
    ends = {e.metadata["model"]: e.metadata for e in duck.list_events("u") if e.event_type == "llm_end"}
    mine_cost = ((50 - 20) * 2.0 + 20 * 0.5 + 5 * 8.0) / 1e6
    alias_cost = expected({**alias, "model": "gpt-4o-mini"})
    rate_cost = (OPENAI["input"] + OPENAI["output"]) * 1.0 / 1e6
    assert ends["my-finetune"]["cost_usd"] == pytest.approx(mine_cost, rel=1e-12)
    assert ends["my-finetune"]["price_source"] == "user: my-finetune"
    assert ends["my-gpt"]["cost_usd"] == pytest.approx(alias_cost, rel=1e-12)
    assert ends["my-gpt"]["price_source"].startswith("user: as genai-prices")
    assert ends["o3-mini"]["cost_usd"] == pytest.approx(rate_cost, rel=1e-12)
    run = duck.get_run("u")
    assert run is not None and run.unpriced_call_count == 0
    assert run.cost_usd == pytest.approx(mine_cost + alias_cost + rate_cost, rel=1e-12)


def test_prices_file_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_RUNJOURNAL_PRICES names a JSON file of user prices; a bad file is ignored (table only)."""
    path = tmp_path / "prices.json"
    path.write_text('{"no-such-model-xyz": {"input_mtok": 3, "output_mtok": 5}}')
    monkeypatch.setenv("OTEL_RUNJOURNAL_PRICES", str(path))
    with DuckDBStore(tmp_path / "a.duckdb") as store:
        journal(store, "e", [(UNKNOWN, "lead_agent")])
        run = store.get_run("e")
        assert run is not None and run.cost_usd == pytest.approx((50 * 3 + 5 * 5) / 1e6, rel=1e-12)
    path.write_text("{not json")
    with DuckDBStore(tmp_path / "b.duckdb") as store:
        journal(store, "e", [(UNKNOWN, "lead_agent")])
        run = store.get_run("e")
        assert run is not None and run.cost_usd is None and run.unpriced_call_count == 1


def test_bad_user_prices_are_a_clear_error() -> None:
    """Malformed prices given in code fail at construction with a one-line reason."""
    with pytest.raises(ValueError, match="input_mtok and output_mtok"):
        Pricer({"m": {"input_mtok": 1}})
    with pytest.raises(ValueError, match="non-negative"):
        Pricer({"m": {"input_mtok": -1, "output_mtok": 1}})
    with pytest.raises(ValueError, match="unknown keys"):
        Pricer({"m": {"input_mtok": 1, "output_mtok": 1, "per_call": 2}})


def _view_rows(store: Any, view: str, key: str) -> dict[str, tuple[int, int, float | None]]:
    rows = store.sql(f"SELECT {key}, llm_calls, unpriced_calls, cost_usd FROM {view}")
    return {str(r[0]): (int(r[1]), int(r[2]), None if r[3] is None else float(r[3])) for r in rows}


def _check_views(store: Any) -> None:
    journal(store, "v1", [(OPENAI, "lead_agent"), (ANTHROPIC, "subagent:researcher")])
    journal(store, "v2", [(UNKNOWN, "middleware:summarization"), (OPENAI, "lead_agent")])
    by_model = _view_rows(store, "cost_by_model", "model")
    assert by_model["o3-mini"][:2] == (2, 0)
    assert by_model["o3-mini"][2] == pytest.approx(2 * expected(OPENAI), rel=1e-9)
    assert by_model["claude-sonnet-4-5"][2] == pytest.approx(expected(ANTHROPIC), rel=1e-9)
    assert by_model["no-such-model-xyz"] == (1, 1, None)
    by_caller = _view_rows(store, "cost_by_caller", "caller")
    assert by_caller["lead_agent"][2] == pytest.approx(2 * expected(OPENAI), rel=1e-9)
    assert by_caller["subagent:researcher"][2] == pytest.approx(expected(ANTHROPIC), rel=1e-9)
    assert by_caller["middleware:summarization"] == (1, 1, None)
    day = store.sql(
        "SELECT CAST(day AS VARCHAR), sum(cost_usd), sum(unpriced_calls) FROM cost_per_day GROUP BY 1"
    )
    assert [(d, pytest.approx(c, rel=1e-9), u) for d, c, u in day] == [
        (AT.date().isoformat(), 2 * expected(OPENAI) + expected(ANTHROPIC), 1)
    ]


def test_cost_views_on_duckdb(duck: DuckDBStore) -> None:
    """cost_by_model / cost_by_caller / cost_per_day sum the priced calls and count unpriced ones."""
    _check_views(duck)


def test_cost_views_on_postgresql() -> None:
    """The same cost views answer the same on PostgreSQL."""
    pytest.importorskip("psycopg", reason="the PostgreSQL store needs the postgres extra")
    from pg_server import Schema

    from otel_runjournal.stores.postgres.store import PostgresStore

    schema = Schema()
    try:
        with PostgresStore(schema.url) as store:
            _check_views(store)
    finally:
        schema.drop()


def test_jsonl_query_api_carries_cost(tmp_path: Path) -> None:
    """JSONL: runs rows and token_usage carry cost and the unpriced count, like the SQL stores."""
    with JsonlStore(tmp_path / "j") as store:
        journal(store, "j1", [(OPENAI, "lead_agent"), (UNKNOWN, "lead_agent")])
    with JsonlStore(tmp_path / "j") as again:  # read back from disk
        run = again.get_run("j1")
        assert run is not None and run.unpriced_call_count == 1
        assert run.cost_usd == pytest.approx(expected(OPENAI), rel=1e-12)
        usage = again.token_usage(thread_id="thread-cost")
        assert usage.cost_usd == pytest.approx(expected(OPENAI), rel=1e-12)
        assert usage.unpriced_call_count == 1


def _chat_costs(store: DuckDBStore, run_id: str, as_model: dict[str, str]) -> tuple[float, int]:
    """(cost, calls) of a run's chat spans priced here with genai-prices, each model as ``as_model``
    says (provider:model), at the span's start."""
    total, calls = 0.0, 0
    for span in store.list_spans(run_id):
        attrs = span.attributes
        if attrs.get(sc.GEN_AI_OPERATION_NAME) != sc.OP_CHAT:
            continue
        provider, model = as_model[attrs[sc.GEN_AI_RESPONSE_MODEL]].split(":")
        usage = genai_prices.Usage(
            input_tokens=int(attrs.get(sc.GEN_AI_USAGE_INPUT_TOKENS, 0)),
            output_tokens=int(attrs.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS, 0)),
        )
        at = span.start_time
        total += float(
            genai_prices.calc_price(
                usage, model, provider_id=provider, genai_request_timestamp=at
            ).total_price
        )
        calls += 1
    return total, calls


def test_demo_agent_cost_on_run_end_equals_the_runs_row(tmp_path: Path) -> None:
    """A real LangGraph agent (subagent, middleware) priced via user aliases: on_run_end's cost equals
    the runs row, which equals the chat spans priced independently."""
    pytest.importorskip("langgraph")
    from langchain_core.messages import HumanMessage

    from otel_runjournal import configure
    from otel_runjournal.cli.demo_run import DEMO_PRICES
    from otel_runjournal.demo.agent import build_agent

    ended: list[Any] = []
    wired = configure(tmp_path / "d.duckdb", set_global=False, prices=DEMO_PRICES, on_run_end=ended.append)
    try:
        build_agent().invoke(
            {"messages": [HumanMessage("What's the weather in Paris, and what is 6*7+1?")]},
            {"callbacks": [wired.handler], "configurable": {"thread_id": "t-demo"}},
        )
    finally:
        wired.shutdown()
    (summary,) = ended
    with DuckDBStore(tmp_path / "d.duckdb") as store:
        run = store.get_run(summary.run_id)
        assert run is not None
        independent, calls = _chat_costs(store, run.run_id, DEMO_PRICES)
    assert calls == run.llm_call_count > 1 and run.unpriced_call_count == 0 == summary.unpriced_call_count
    assert summary.cost_usd == pytest.approx(run.cost_usd, rel=1e-12)
    assert run.cost_usd == pytest.approx(independent, rel=1e-12)


def test_scripted_models_without_prices_are_unpriced(tmp_path: Path) -> None:
    """Without user prices the scripted models (provider 'scripted') are unpriced in the row and in
    on_run_end alike: cost null, every call counted."""
    pytest.importorskip("langgraph")
    from langchain_core.messages import HumanMessage

    from otel_runjournal import configure
    from otel_runjournal.demo.agent import build_agent

    ended: list[Any] = []
    wired = configure(tmp_path / "d.duckdb", set_global=False, on_run_end=ended.append)
    try:
        build_agent(subagent=False, failing_tool=False, middleware=False).invoke(
            {"messages": [HumanMessage("Give me a one-line forecast for Paris.")]},
            {"callbacks": [wired.handler]},
        )
    finally:
        wired.shutdown()
    (summary,) = ended
    with DuckDBStore(tmp_path / "d.duckdb") as store:
        run = store.get_run(summary.run_id)
    assert run is not None and run.cost_usd is None and summary.cost_usd is None
    assert run.unpriced_call_count == run.llm_call_count == summary.unpriced_call_count > 0


def _check_reprice(store: Any, tmp_path: Path) -> None:
    from otel_runjournal.cli.reprice import reprice_runs

    journal(store, "old", [(OPENAI, "lead_agent"), (UNKNOWN, "lead_agent")])
    result = reprice_runs(store, Pricer({"no-such-model-xyz": {"input_mtok": 10, "output_mtok": 20}}))
    run = store.get_run("old")
    new_cost = (50 * 10 + 5 * 20) / 1e6
    assert result["runs"] == 1 and result["calls"] == 2 and result["unpriced_calls"] == 0
    assert run.unpriced_call_count == 0
    assert run.cost_usd == pytest.approx(expected(OPENAI) + new_cost, rel=1e-12)
    ends = {e.metadata["model"]: e.metadata for e in store.list_events("old") if e.event_type == "llm_end"}
    assert ends["no-such-model-xyz"]["cost_usd"] == pytest.approx(new_cost, rel=1e-12)
    assert ends["no-such-model-xyz"]["price_source"] == "user: no-such-model-xyz"
    assert ends["o3-mini"]["cost_usd"] == pytest.approx(expected(OPENAI), rel=1e-12)
    # back to the table alone: the unknown model is unpriced again; a time range outside selects nothing
    assert reprice_runs(store, Pricer(), since=datetime(2100, 1, 1, tzinfo=timezone.utc))["runs"] == 0
    reprice_runs(store, Pricer(), until=datetime(2100, 1, 1, tzinfo=timezone.utc))
    run = store.get_run("old")
    assert run.unpriced_call_count == 1
    assert run.cost_usd == pytest.approx(expected(OPENAI), rel=1e-12)
    by_model = _view_rows(store, "cost_by_model", "model")
    assert by_model["no-such-model-xyz"] == (1, 1, None)


def test_reprice_duckdb(duck: DuckDBStore, tmp_path: Path) -> None:
    """reprice rewrites llm_end costs and the runs row with the given prices, within a time range."""
    _check_reprice(duck, tmp_path)


def test_reprice_postgresql(tmp_path: Path) -> None:
    """reprice works the same on PostgreSQL."""
    pytest.importorskip("psycopg", reason="the PostgreSQL store needs the postgres extra")
    from pg_server import Schema

    from otel_runjournal.stores.postgres.store import PostgresStore

    schema = Schema()
    try:
        with PostgresStore(schema.url) as store:
            _check_reprice(store, tmp_path)
    finally:
        schema.drop()


def test_reprice_command(tmp_path: Path) -> None:
    """`otel-runjournal reprice --prices FILE` re-prices the journal and says what it did."""
    from click.testing import CliRunner

    from otel_runjournal.cli.main import cli

    location = tmp_path / "c.duckdb"
    with DuckDBStore(location) as store:
        journal(store, "c", [(UNKNOWN, "lead_agent")])
    prices = tmp_path / "p.json"
    prices.write_text('{"no-such-model-xyz": {"input_mtok": 1, "output_mtok": 1}}')
    out = CliRunner().invoke(cli, ["reprice", "--store", str(location), "--prices", str(prices), "--json"])
    assert out.exit_code == 0, out.output
    assert '"calls": 1' in out.output and '"unpriced_calls": 0' in out.output
    with DuckDBStore(location) as store:
        run = store.get_run("c")
    assert run is not None and run.cost_usd == pytest.approx(55 / 1e6, rel=1e-12)


def test_show_and_tokens_carry_cost(tmp_path: Path) -> None:
    """`show --json` has each model call's cost on its span node; `tokens --by model --json` sums cost
    per model and counts the unpriced calls."""
    import json

    from click.testing import CliRunner

    from otel_runjournal.cli.main import cli

    location = tmp_path / "s.duckdb"
    with DuckDBStore(location) as store:
        journal(store, "s", [(OPENAI, "lead_agent"), (UNKNOWN, "lead_agent")])
    shown = CliRunner().invoke(cli, ["show", "s", "--store", str(location), "--json"])
    assert shown.exit_code == 0, shown.output
    (root,) = json.loads(shown.output)["spans"]
    costs = {c["model"]: c["cost_usd"] for c in root["children"]}
    assert costs["o3-mini"] == pytest.approx(expected(OPENAI), rel=1e-12)
    assert costs["no-such-model-xyz"] is None
    tokens = CliRunner().invoke(cli, ["tokens", "--by", "model", "--store", str(location), "--json"])
    rows = {r["model"]: r for r in json.loads(tokens.output)}
    assert rows["o3-mini"]["cost_usd"] == pytest.approx(expected(OPENAI), rel=1e-12)
    assert rows["no-such-model-xyz"]["cost_usd"] is None and rows["no-such-model-xyz"]["unpriced_calls"] == 1


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-4o-mini"),
        ("openai", "o3"),
        ("anthropic", "claude-sonnet-4-5"),
        ("deepseek", "deepseek-chat"),  # prices that change with the time of day
        ("google", "gemini-2.5-pro"),  # tiered: past 200k input tokens every token costs more
    ],
)
def test_repeated_calls_cost_what_the_table_says(
    provider: str, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Calls after a model's first are priced from its rates (the table itself is ~0.1-0.5 ms a call):
    every one costs exactly what genai-prices computes, at any time of day, usage or tier (inputs both
    sides of a threshold); usage the table refuses (cache reads beyond the input) stays unpriced."""
    table_calls = []
    calc_price = genai_prices.calc_price

    def counted(*args: Any, **kwargs: Any) -> Any:
        table_calls.append(1)
        return calc_price(*args, **kwargs)

    monkeypatch.setattr(genai_prices, "calc_price", counted)  # what the pricer imports on first use
    pricer = Pricer()
    rng = random.Random(f"{provider}/{model}")
    for n in range(120):
        i = rng.choice([0, 1, 17, 200_000, 200_001, rng.randint(0, 400_000)])  # at the tiers too
        read = rng.randint(0, i // 2)
        write = rng.randint(0, (i - read) // 3)
        o = rng.randint(0, 20_000)
        reasoning = rng.randint(0, o)
        if n % 40 == 39:
            read = i + 5  # not what the conventions say a provider reports: the table decides
        at = AT + timedelta(minutes=37 * n)  # many times of day
        call = {"provider": provider, "model": model, "input": i, "output": o, "read": read, "write": write,
                "reasoning": reasoning}  # fmt: skip
        try:
            want: float | None = expected(call, at)
        except (LookupError, ValueError):  # an unknown model; usage the table refuses
            want = None

        got = pricer.price(provider, model, CallUsage(i, o, read, write, reasoning), at)
        assert (got.cost_usd if got is not None else None) == want, (n, call, at)
    assert len(table_calls) < 60, len(table_calls)  # the table: a model's first call, then reading its rates
