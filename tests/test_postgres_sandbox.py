"""``sql()`` on PostgreSQL is a sandbox: one reading statement, run as a role that can only read the journal,
whatever the connecting role (a superuser here) may do."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from pg_server import Schema, with_schema
from store_batches import make_run

pytest.importorskip("psycopg", reason="the PostgreSQL store needs the postgres extra")

import psycopg

from otel_runjournal.stores import StoreError
from otel_runjournal.stores.postgres.sandbox import FUNCTION, ROLE
from otel_runjournal.stores.postgres.store import PostgresStore


@pytest.fixture
def store(schema: Schema) -> Iterator[PostgresStore]:
    with PostgresStore(schema.url) as opened:
        opened.write([make_run("r1", "t1")])
        yield opened


def _is_superuser(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    return bool(row and row[0])


def _refused(store: PostgresStore, query: str) -> str:
    with pytest.raises(StoreError) as refused:
        store.sql(query)
    message = str(refused.value)
    assert "\n" not in message, message
    return message


def test_the_test_role_is_a_superuser(schema: Schema) -> None:
    """The holes below are real for the connecting role: as a superuser it reads server files itself."""
    assert _is_superuser(schema.url)
    with psycopg.connect(schema.url) as conn:
        conn.read_only = True  # what sql() did before the sandbox: a read-only transaction only
        assert conn.execute("SELECT length(pg_read_file('/etc/passwd')) > 0").fetchone() == (True,)


@pytest.mark.parametrize(
    "query",
    [
        "select pg_read_file('/etc/passwd')",
        "select pg_ls_dir('.')",
        "select lo_import('/etc/passwd')",
        "select pg_read_binary_file('/etc/passwd')",
        "select * from pg_authid",
    ],
)
def test_server_files_and_catalog_secrets_are_refused(store: PostgresStore, query: str) -> None:
    """Functions and tables reserved to superusers are refused: the statement runs as the reader role."""
    assert "permission denied" in _refused(store, query)


def test_copy_to_a_server_file_writes_nothing(store: PostgresStore, tmp_path: Path) -> None:
    """COPY ... TO a file is refused and no file appears."""
    target = tmp_path / "runs.csv"
    os.chmod(tmp_path, 0o777)  # the server (user postgres) could write here if it were let
    assert "read-only" in _refused(store, f"copy runs to '{target}'")
    assert "read-only" in _refused(store, f"copy (select * from runs) to '{target}'")
    assert not target.exists()


def test_copy_program_runs_nothing(store: PostgresStore, tmp_path: Path) -> None:
    """COPY ... FROM/TO PROGRAM is refused and the program never runs."""
    marker = tmp_path / "ran"
    os.chmod(tmp_path, 0o777)
    _refused(store, f"copy runs from program 'touch {marker}'")
    _refused(store, f"copy (select 1) to program 'touch {marker}'")
    assert not marker.exists()


@pytest.mark.parametrize(
    "query",
    [
        "select 1; select 2",
        "select 1; select pg_read_file('/etc/passwd')",
        "select * from runs; delete from runs",
    ],
)
def test_one_statement_per_call(store: PostgresStore, query: str) -> None:
    """Two statements in one call are refused, whatever the second one is."""
    assert "one statement at a time" in _refused(store, query)
    assert store.get_run("r1") is not None


@pytest.mark.parametrize(
    "query",
    [
        "reset role",
        "set role postgres",
        "set session authorization postgres",
        "select set_config('role', 'postgres', false)",
        "select set_config('session_authorization', 'postgres', false)",
        "select current_user, set_config('role', 'none', true)",
    ],
)
def test_no_way_back_to_the_connecting_role(store: PostgresStore, query: str) -> None:
    """set/reset role or session authorization inside the statement cannot leave the reader role."""
    _refused(store, query)
    assert store.sql("select current_user") == [(ROLE,)]
    assert "permission denied" in _refused(store, "select pg_read_file('/etc/passwd')")


def test_dblink_cannot_be_installed_or_called(store: PostgresStore, schema: Schema) -> None:
    """CREATE EXTENSION is refused; where dblink is installed (by an admin), the reader cannot connect."""
    assert "read-only" in _refused(store, "create extension dblink")
    with psycopg.connect(schema.url, autocommit=True) as admin:
        available = admin.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'dblink'").fetchone()
        if available:
            admin.execute(f"CREATE EXTENSION dblink SCHEMA {schema.name}")
    if available:
        server = urlsplit(schema.server)
        target = f"host={server.hostname} port={server.port} dbname={server.path[1:]} user={server.username}"
        message = _refused(store, f"select * from dblink('{target}', 'select 1') as t(x int)")
        assert "password" in message or "permission denied" in message, message


def test_writes_and_ddl_are_refused(store: PostgresStore) -> None:
    """Statements that change the journal are refused and change nothing."""
    for query in (
        "delete from runs",
        "delete from runs returning run_id",
        "drop table runs",
        "create table x (a int)",
        "with gone as (delete from runs returning run_id) select * from gone",
    ):
        _refused(store, query)
    assert store.get_run("r1") is not None


def test_reading_statements_keep_names_types_and_parameters(store: PostgresStore) -> None:
    """What a reader asks still works: parameters, column names and Python types, views, EXPLAIN, SHOW,
    information_schema (domain types) and a trailing semicolon."""
    run = store.get_run("r1")
    assert run is not None
    columns, rows = store.query(
        "SELECT run_id AS id, started_at, usage_by_caller FROM runs WHERE run_id = %s;", ["r1"]
    )
    assert columns == ["id", "started_at", "usage_by_caller"]
    assert rows == [("r1", run.started_at, run.usage_by_caller)]
    assert isinstance(rows[0][1], dt.datetime)
    assert store.sql("select count(*), 'a%%b' from run_events where run_id = %s", ["r1"]) == [
        (len(store.list_events("r1")), "a%b")
    ]
    assert store.sql("select category, count(*) from run_events group by 1 order by 1")[0][0] == "lifecycle"
    assert store.sql("select * from messages") != []
    assert store.sql("-- a comment\nvalues (1, 'x')") == [(1, "x")]
    assert store.sql("explain select * from runs")
    assert store.sql("show TimeZone") == [("UTC",)]
    tables = store.sql(
        "select table_name from information_schema.tables where table_schema = current_schema() order by 1"
    )
    assert ("runs",) in tables and ("messages",) in tables


def _plain_role(schema: Schema, createrole: bool = False) -> Iterator[tuple[str, str]]:
    """A login role without superuser (and CREATEROLE unless asked) owning a fresh schema: (its journal
    URL, its name)."""
    name = f"rj_plain_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(schema.server, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {name} LOGIN NOSUPERUSER {'' if createrole else 'NO'}CREATEROLE")
        admin.execute(f"CREATE SCHEMA {name}_journal AUTHORIZATION {name}")
    parts = urlsplit(schema.server)
    as_plain = urlunsplit(parts._replace(netloc=f"{name}@{parts.hostname}:{parts.port}"))
    try:
        yield with_schema(as_plain, f"{name}_journal"), name
    finally:
        with psycopg.connect(schema.server, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {name}_journal CASCADE")
            admin.execute(f"DROP OWNED BY {name}")
            admin.execute(f"DROP ROLE {name}")


@pytest.fixture
def plain(schema: Schema) -> Iterator[tuple[str, str]]:
    yield from _plain_role(schema)


def test_a_role_without_createrole_gets_a_clear_refusal(plain: tuple[str, str], schema: Schema) -> None:
    """A journal opened by a plain role works, but sql() is refused in one line saying what the admin runs;
    after the admin runs it, sql() works, in the sandbox."""
    url, name = plain
    with PostgresStore(url) as store:
        store.write([make_run("r1", "t1")])
        assert store.get_run("r1") is not None  # the store's own reads need no sandbox
        message = _refused(store, "select count(*) from runs")
        assert ROLE in message and "python -m otel_runjournal.stores.postgres.sandbox" in message
        assert name in message
    admin_url = with_schema(schema.server, f"{name}_journal")
    done = subprocess.run(
        [sys.executable, "-m", "otel_runjournal.stores.postgres.sandbox", admin_url, name],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    with PostgresStore(url) as store:
        assert store.sql("select count(*), current_user from runs") == [(1, ROLE)]
        assert "permission denied" in _refused(store, "select pg_ls_dir('.')")


def test_a_createrole_role_sets_the_sandbox_up_itself(schema: Schema) -> None:
    """A non-superuser with CREATEROLE opening its own journal gets the sandbox from migration 5."""
    for url, name in _plain_role(schema, createrole=True):
        with PostgresStore(url) as store:
            store.write([make_run("r1", "t1")])
            assert store.sql("select count(*), current_user from runs") == [(1, ROLE)]
            assert "permission denied" in _refused(store, "select pg_read_file('/etc/passwd')")
            _refused(store, "set role " + name)
            assert store.sql("select current_user") == [(ROLE,)]


def test_the_function_is_owned_by_the_reader_and_not_public(store: PostgresStore, schema: Schema) -> None:
    """The sandbox function belongs to the reader role, which holds no superuser or CREATE powers."""
    with psycopg.connect(schema.url, autocommit=True) as conn:
        owner, secdef, public = conn.execute(
            "SELECT pg_get_userbyid(proowner), prosecdef, "
            "has_function_privilege('public', p.oid, 'EXECUTE') "
            f"FROM pg_proc p WHERE p.oid = to_regprocedure('{FUNCTION}(text)')"
        ).fetchone() or (None, None, None)
        assert (owner, secdef, public) == (ROLE, True, False)
        role = conn.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolcanlogin, rolbypassrls "
            "FROM pg_roles WHERE rolname = %s",
            [ROLE],
        ).fetchone()
        assert role == (False, False, False, False, False)
        assert conn.execute(
            "SELECT has_schema_privilege(%s, %s, 'CREATE')", [ROLE, schema.name]
        ).fetchone() == (False,)


def test_the_cli_refuses_in_one_line(store: PostgresStore, schema: Schema) -> None:
    """`otel-runjournal sql` on PostgreSQL: the README's holes exit 1 with one line; a read prints rows."""

    def cli(query: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "otel_runjournal", "sql", "--store", schema.url, "--json", query],
            capture_output=True,
            text=True,
            timeout=120,
        )

    for query in ("select pg_read_file('/etc/passwd')", "copy runs to '/tmp/rj-x.csv'", "select 1; select 2"):
        out = cli(query)
        assert out.returncode == 1 and "root:" not in out.stdout, (query, out.stdout)
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    read = cli("select run_id from runs")
    assert read.returncode == 0 and '"run_id": "r1"' in read.stdout, read.stderr
