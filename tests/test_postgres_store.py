"""PostgresStore beyond the shared contract: schema parity with DuckDB, read-only sessions, masked
passwords and clear errors, and the ways in (open_store, configure, the zero-code exporter)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from pg_server import Schema, server_url, with_schema
from store_batches import make_run

from otel_runjournal.stores import DuckDBStore, StoreError, open_store
from otel_runjournal.stores.location import split_location
from otel_runjournal.stores.postgres.conninfo import mask

pytest.importorskip("psycopg", reason="the PostgreSQL store needs the postgres extra")

from otel_runjournal.stores.postgres.store import PostgresStore

VIEWS = ("messages", "tokens_by_model", "tokens_by_caller", "tokens_per_day", "slowest_tools", "error_runs")


def _with_password(url: str, password: str) -> str:
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user}:{password}@{host}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_tables_and_views_match_duckdb(schema: Schema, tmp_path: Path) -> None:
    """Every DuckDB table has the same columns in PostgreSQL, and every documented view answers."""
    with PostgresStore(schema.url) as pg, DuckDBStore(tmp_path / "j.duckdb") as duck:
        pg.write([make_run("r1", "t1"), make_run("r2", "t1", status="error")])
        duck.write([make_run("r1", "t1"), make_run("r2", "t1", status="error")])
        for table in ("runs", "run_events", "spans", "thread_seq", *VIEWS):
            ask = (
                "SELECT column_name FROM information_schema.columns WHERE table_name = {} "
                "AND table_schema = current_schema() ORDER BY ordinal_position"
            )
            pg_cols = [c for (c,) in pg.sql(ask.format("%s"), [table])]
            duck_cols = [c for (c,) in duck.sql(ask.format("$1"), [table])]
            assert pg_cols == duck_cols, table
        for view in VIEWS:
            pg_rows = pg.sql(f"SELECT * FROM {view}")
            duck_rows = duck.sql(f"SELECT * FROM {view}")
            assert len(pg_rows) == len(duck_rows) > 0, view
        assert pg.sql("SELECT model, llm_calls, input_tokens, output_tokens FROM tokens_by_model") == [
            ("m", 2, 20, 10)
        ]
        shared = [v for v in pg.schema_versions() if v[1] != "sql_sandbox_role"]  # PostgreSQL only
        assert (
            shared
            == duck.schema_versions()
            == [
                (1, "create_tables"),
                (2, "create_views"),
                (3, "views_count_failed_model_calls"),
                (4, "views_count_model_calls_once"),
                (5, "runs_service_name"),
                (6, "cost"),
            ]
        )


def test_views_give_the_python_types_duckdb_gives(schema: Schema, tmp_path: Path) -> None:
    """Token sums are ``int`` from PostgreSQL as from DuckDB (not ``Decimal``): same views, same values."""
    runs = [make_run("r1", "t1"), make_run("r2", "t1", tokens=(7, 3))]
    with PostgresStore(schema.url) as pg, DuckDBStore(tmp_path / "j.duckdb") as duck:
        pg.write(runs)
        duck.write(runs)
        for view in ("tokens_by_model", "tokens_by_caller", "tokens_per_day"):
            pg_rows, duck_rows = pg.sql(f"SELECT * FROM {view}"), duck.sql(f"SELECT * FROM {view}")
            assert pg_rows == duck_rows, view
            assert [[type(v) for v in r] for r in pg_rows] == [[type(v) for v in r] for r in duck_rows], view
        assert pg.sql("SELECT sum(total_tokens) FROM runs") == [(25,)]
        assert type(pg.sql("SELECT sum(total_tokens) FROM runs")[0][0]) is int


def test_views_are_queryable_from_psql(schema: Schema) -> None:
    """The documented views answer from psql itself (what the README shows)."""
    psql = shutil.which("psql") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))), None)
    if psql is None:
        pytest.skip("psql not installed (apt-get install -y postgresql-client)")
    with PostgresStore(schema.url) as store:
        store.write([make_run("r1", "t1")])
    out = subprocess.run(
        [str(psql), schema.url, "-XAtc", "SELECT caller, total_tokens FROM tokens_by_caller"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "lead_agent|15"


def test_read_only_opens_no_migrations_and_refuses_writes(schema: Schema) -> None:
    """read_only: an unmigrated database is an error (nothing created); sessions refuse any write."""
    with pytest.raises(StoreError, match="needs migrating"):
        PostgresStore(schema.url, read_only=True)
    with PostgresStore(schema.url) as writer:
        writer.write([make_run("r1", "t1")])
    with PostgresStore(schema.url, read_only=True) as reader:
        assert reader.get_run("r1") is not None
        with pytest.raises(StoreError, match="read-only"):
            reader.write([make_run("r2", "t1")])
        with pytest.raises(StoreError, match="read-only"):
            reader.sql("DELETE FROM runs")
        assert len(reader.list_events("r1")) == 8


def test_password_never_shown(schema: Schema) -> None:
    """The password is masked in repr/str, split errors and every StoreError (server up or down)."""
    secret = "pa55-w0rd-xyzzy"
    url = _with_password(schema.url, secret)
    with PostgresStore(url) as store:  # the test server trusts loopback: any password connects
        assert secret not in repr(store) and secret not in str(store) and "***" in repr(store)
        store.write([make_run("r1", "t1")])
        with pytest.raises(StoreError) as failed:
            store.sql(f"SELECT no_such_column, '{secret}' FROM runs")
        assert secret not in str(failed.value)
        with pytest.raises(StoreError, match="read-only"):  # sql() only reads, in any mode
            store.sql("DELETE FROM runs")
        assert store.get_run("r1") is not None
    missing_db = _with_password(server_url().rsplit("/", 1)[0] + "/no_such_database", secret)
    with pytest.raises(StoreError) as no_db:
        PostgresStore(missing_db)
    assert "no_such_database" in str(no_db.value) and secret not in str(no_db.value)
    assert "\n" not in str(no_db.value)
    down = f"postgresql://u:{secret}@127.0.0.1:{_free_port()}/db"
    with pytest.raises(StoreError) as refused:
        PostgresStore(down, connect_timeout=1, read_only=True)
    assert secret not in str(refused.value) and "\n" not in str(refused.value)
    with PostgresStore(down, connect_timeout=1) as writer:  # a writer opens; its writes fail
        with pytest.raises(StoreError) as unwritten:
            writer.write([make_run("r1", "t1")])
        assert secret not in str(unwritten.value) and secret not in repr(writer)
    with pytest.raises(ValueError) as bad:
        split_location(f"postgresx://u:{secret}@h/db")
    assert secret not in str(bad.value)
    assert (
        mask(f"postgresql://u:{secret}@h:5/db?password={secret}") == "postgresql://u:***@h:5/db?password=***"
    )


def test_nul_characters_are_stored_as_replacement(schema: Schema) -> None:
    """PostgreSQL text holds no NUL: ids and content with NUL are written (as U+FFFD) and found again."""
    with PostgresStore(schema.url) as store:
        write = make_run("r\x00🚀", "t\x001")
        write.events[1].content = "a\x00b"
        store.write([write])
        events = store.list_events("r\x00🚀")
        assert [e.run_id for e in events] == ["r\ufffd🚀"] * 8
        assert events[1].content == "a\ufffdb"
        assert [m.thread_id for m in store.list_messages("t\x001")] == ["t\ufffd1"] * 2
        twins = [make_run("x\x00", "u\x00"), make_run("x\ufffd", "u\ufffd")]  # the same once stored
        store.write(twins)
        assert [e.seq for e in store.list_events("x\ufffd", limit=100)] == list(range(1, 17))
        assert len(store.list_runs(thread_id="u\ufffd")) == 1


def test_open_store_and_environment_pick_postgres(schema: Schema, monkeypatch: pytest.MonkeyPatch) -> None:
    """postgresql:// and postgres:// locations, as argument or OTEL_RUNJOURNAL_STORE, open a PostgresStore."""
    assert split_location(schema.url) == ("postgresql", schema.url)
    store = open_store(schema.url.replace("postgresql://", "postgres://", 1))
    assert isinstance(store, PostgresStore)
    store.close()
    monkeypatch.setenv("OTEL_RUNJOURNAL_STORE", schema.url)
    store = open_store()
    assert isinstance(store, PostgresStore)
    store.close()


def test_configure_journals_an_agent_into_postgres(schema: Schema) -> None:
    """configure(store="postgresql://...") journals a real LangGraph agent run into PostgreSQL."""
    from otel_runjournal.demo.agent import build_agent
    from otel_runjournal.wiring import configure

    wired = configure(schema.url, set_global=False)
    try:
        agent = build_agent(subagent=False, failing_tool=False, middleware=False)
        agent.invoke(
            {"messages": [("user", "weather in Paris?")]},
            {"callbacks": [wired.handler], "configurable": {"thread_id": "pg-thread"}},
        )
        wired.force_flush()
        runs = wired.store.list_runs(thread_id="pg-thread")
        assert [r.status for r in runs] == ["success"] and runs[0].llm_call_count == 3
        types = [e.event_type for e in wired.store.list_events(runs[0].run_id, limit=1000)]
        assert types[0] == "run_start" and types[-1] == "run_end"
    finally:
        wired.shutdown()


def test_zero_code_exporter_writes_to_postgres(schema: Schema, tmp_path: Path) -> None:
    """opentelemetry-instrument with OTEL_RUNJOURNAL_STORE=postgresql://... journals the unmodified app."""
    instrument = shutil.which("opentelemetry-instrument", path=str(Path(sys.executable).parent))
    if instrument is None:
        pytest.skip("opentelemetry-instrument not installed (the dev extra has it)")
    example = Path(__file__).resolve().parent.parent / "examples" / "zero_code.py"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        OTEL_TRACES_EXPORTER="runjournal",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_RUNJOURNAL_STORE=schema.url,
    )
    out = subprocess.run(
        [instrument, sys.executable, str(example)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr
    with PostgresStore(with_schema(schema.server, schema.name), read_only=True) as store:
        runs = store.list_runs(thread_id="zero-code")
        assert [(r.status, r.llm_call_count) for r in runs] == [("success", 3)], out.stderr[-2000:]


def test_cli_reads_postgres_and_fails_in_one_masked_line(schema: Schema) -> None:
    """The CLI lists runs from PostgreSQL; an unreachable server is one 'Error:' line without the password."""
    from click.testing import CliRunner

    from otel_runjournal.cli.main import cli

    with PostgresStore(schema.url) as store:
        store.write([make_run("r1", "t1"), make_run("r2", "t2")])
    listed = CliRunner().invoke(cli, ["runs", "--json", "--store", schema.url])
    assert listed.exit_code == 0, listed.output
    assert "r1" in listed.output and "r2" in listed.output
    empty = Schema()  # reading an empty database creates nothing
    try:
        failed_empty = CliRunner().invoke(cli, ["runs", "--store", empty.url])
        assert failed_empty.exit_code == 1 and "needs migrating" in failed_empty.output
        with PostgresStore(schema.url, read_only=True) as reader:
            tables = "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s"
            assert reader.sql(tables, [empty.name]) == [(0,)]
    finally:
        empty.drop()
    secret = "hunter2-secret"
    down = f"postgresql://u:{secret}@127.0.0.1:{_free_port()}/db?connect_timeout=1"
    failed = CliRunner().invoke(cli, ["runs", "--store", down])
    lines = failed.output.strip().splitlines()
    assert failed.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: "), failed.output
    assert secret not in failed.output and "***" in failed.output


def test_queries_postgres_sql_runs(schema: Schema) -> None:
    """Every statement of examples/queries_postgres.sql runs on a PostgreSQL journal."""
    text = (Path(__file__).resolve().parent.parent / "examples" / "queries_postgres.sql").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    statements = [s.strip() for s in body.split(";") if s.strip()]
    assert len(statements) >= 10
    with PostgresStore(schema.url, read_only=False) as store:
        store.write([make_run("r1", "quickstart"), make_run("r2", "quickstart", status="error")])
    with PostgresStore(schema.url, read_only=True) as store:
        results = [store.sql(statement) for statement in statements]
    assert (
        results[0] and results[1] and [r[3] for r in results[7]] == ["q r1", "answer 0 ", "q r2", "answer 0 "]
    )


def test_refusal_raises_at_once_and_slow_statements_time_out(schema: Schema) -> None:
    """A role that may not log in is refused at open; a write stuck on a lock ends at statement_timeout."""
    import psycopg

    role = f"rj_nologin_{schema.name}"
    with psycopg.connect(schema.server, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} NOLOGIN")
        try:
            parts = urlsplit(schema.server)
            refused_url = urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port}"))
            with pytest.raises(StoreError, match="not permitted to log in"):
                PostgresStore(refused_url)
        finally:
            admin.execute(f"DROP ROLE {role}")
    with PostgresStore(schema.url, statement_timeout=0.3) as store:
        store.write([make_run("r1", "t1")])
        with psycopg.connect(schema.url) as holder:  # another writer holds thread t1's counter
            holder.execute("SELECT * FROM thread_seq WHERE thread_id = 't1' FOR UPDATE")
            with pytest.raises(StoreError, match="statement timeout"):
                store.write([make_run("r2", "t1")])
        later = make_run("r3", "t1")
        store.write([later])  # the lock is gone: writes go on, seq continues
        assert later.events[0].seq == 9 and store.get_run("r2") is None


def test_list_spans_gives_what_duckdb_gives(schema: Schema, tmp_path: Path) -> None:
    """The span rows of a run (what `otel-runjournal show` draws) read back alike from both stores."""
    with PostgresStore(schema.url) as pg, DuckDBStore(tmp_path / "j.duckdb") as duck:
        pg.write([make_run("r1", "t1")])
        duck.write([make_run("r1", "t1")])
        from_pg, from_duck = pg.list_spans("r1"), duck.list_spans("r1")
        assert from_pg and [dataclasses.asdict(s) for s in from_pg] == [
            dataclasses.asdict(s) for s in from_duck
        ]
        assert pg.list_spans("no-such-run") == []
