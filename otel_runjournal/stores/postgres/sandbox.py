"""The sandbox of ``sql()`` on PostgreSQL: a caller's statement runs as a role that can only read the journal.

A read-only transaction alone is not a sandbox: the connecting role (often a superuser) could still read
server files (``pg_read_file``), write them (``COPY ... TO``) or run programs (``COPY ... PROGRAM``), and
``SET ROLE`` is no wall either, since the session user may ``RESET ROLE`` (or ``set_config('role', ...)``)
at any time. So the statement runs inside :data:`FUNCTION`, a ``SECURITY DEFINER`` function owned by the
``NOLOGIN`` role :data:`ROLE`, which holds nothing but ``USAGE`` on the journal's schema and ``SELECT`` on
its tables and views. Inside a security-definer function PostgreSQL refuses any change of ``role`` or
``session_authorization``; ``FOR ... IN EXECUTE`` runs only one statement that returns rows (no ``SET``,
``COPY``, DDL); functions reserved to superusers (files, large objects, ``dblink``) are refused to the
role. Before that the statement is parsed by the server as one prepared statement (which refuses
``select 1; select 2``) and described, so the result keeps its column names and types.

Migration 5 creates the role and the function when the migrating role may (superuser or
``CREATEROLE``); :data:`SETUP` is that migration, and ``python -m otel_runjournal.stores.postgres.sandbox
URL [USER ...]`` runs it later as an administrator. Where neither happened, ``sql()`` is refused with the
command to run (:func:`missing`).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

ROLE = "otel_runjournal_reader"
FUNCTION = "otel_runjournal_sql"

_MIGRATING_MAY = "(SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user)"

SETUP = f"""DO $rj$
BEGIN
    IF NOT {_MIGRATING_MAY} AND NOT EXISTS (
        SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}' AND pg_has_role(current_user, oid, 'MEMBER')
    ) THEN
        RAISE NOTICE 'otel-runjournal: % may not create the role {ROLE}: sql() is refused until an '
                     'administrator runs python -m otel_runjournal.stores.postgres.sandbox', current_user;
        RETURN;
    END IF;
    BEGIN  -- many databases of one server may be migrated at once: the role is created once
        CREATE ROLE {ROLE} NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
    IF NOT pg_has_role(current_user, '{ROLE}', 'MEMBER') THEN  -- to give it the function below
        EXECUTE format('GRANT {ROLE} TO %I', current_user);
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO {ROLE}', current_schema());
    CREATE OR REPLACE FUNCTION {FUNCTION}(statement TEXT) RETURNS SETOF RECORD
        LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT
        AS $f$ DECLARE r RECORD; BEGIN FOR r IN EXECUTE statement LOOP RETURN NEXT r; END LOOP; END $f$;
    REVOKE ALL ON FUNCTION {FUNCTION}(TEXT) FROM PUBLIC;
    -- the new owner needs CREATE on the schema for ALTER OWNER only; it does not keep it
    EXECUTE format('GRANT CREATE ON SCHEMA %I TO {ROLE}', current_schema());
    ALTER FUNCTION {FUNCTION}(TEXT) OWNER TO {ROLE};
    EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM {ROLE}', current_schema());
EXCEPTION WHEN insufficient_privilege THEN  -- e.g. a CREATEROLE role that does not own the schema
    RAISE NOTICE 'otel-runjournal: % cannot set up {ROLE} (%): sql() is refused until an administrator '
                 'runs python -m otel_runjournal.stores.postgres.sandbox', current_user, SQLERRM;
END
$rj$"""
"""Migration 5: the role and the function, where the migrating role may create them (else a NOTICE)."""

_CREATED = re.compile(r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:TABLE|VIEW)\s+(\w+)", re.IGNORECASE)


def journal_relations(migrations: Iterable[tuple[int, str, Sequence[str]]]) -> list[str]:
    """The tables and views the migrations create, in order: what the role may read."""
    names: list[str] = []
    for _version, _name, statements in migrations:
        for statement in statements:
            match = _CREATED.match(statement)
            if match and match.group(1) not in names:
                names.append(match.group(1))
    return names


def grant(relations: Sequence[str]) -> str:
    """``SELECT`` on ``relations`` for the role, when it exists (run after every migration)."""
    listed = ", ".join(relations)
    return f"""DO $rj$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}')
       AND to_regprocedure('{FUNCTION}(text)') IS NOT NULL THEN
        GRANT SELECT ON {listed} TO {ROLE};
    END IF;
END
$rj$"""


def missing(conn: psycopg.Connection[Any]) -> str | None:
    """Why the sandbox cannot be used on ``conn`` (one line saying what the admin must run), or ``None``."""
    row = conn.execute(
        f"SELECT coalesce(has_function_privilege(to_regprocedure('{FUNCTION}(text)')::oid, 'EXECUTE'), "
        "false), current_user"
    ).fetchone()
    if row and row[0]:
        return None
    user = row[1] if row else "?"
    return (
        f"sql on PostgreSQL runs each statement as the read-only role {ROLE}, "
        f"which {user!r} may not use here: "
        f"an administrator (superuser or CREATEROLE) runs once `python -m otel_runjournal.stores.postgres."
        f"sandbox 'postgresql://ADMIN@HOST/DB' {user}` (same database and search_path as the journal)"
    )


_FIRST_WORD = re.compile(
    r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*(?:select|with|values|table|\()", re.IGNORECASE | re.DOTALL
)
"""A query (as opposed to EXPLAIN, SHOW ...), after leading blanks and comments."""
_TRAILING = re.compile(r"(?:\s|;)+$")


class Refused(Exception):
    """The statement is not one statement that returns rows (the message says what is allowed)."""


def run(
    conn: psycopg.Connection[Any], query: str, params: Sequence[Any] | None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run ``query`` (``%s`` placeholders filled from ``params``) inside the sandbox; in the caller's
    (read-only) transaction. Raises :class:`Refused` or ``psycopg.Error``."""
    if not query.strip():
        raise Refused("no SQL statement given (example: select * from runs limit 5)")
    text = psycopg.ClientCursor(conn).mogrify(query, params) if params else query
    described = conn.pgconn.prepare(b"", text.encode(conn.info.encoding))
    if described.status != psycopg.pq.ExecStatus.COMMAND_OK:
        message = (described.error_field(psycopg.pq.DiagnosticField.MESSAGE_PRIMARY) or b"").decode()
        conn.rollback()
        if "multiple commands" in message:
            raise Refused("one statement at a time (no ';' between statements)")
        raise Refused(message or "the statement could not be parsed")
    shape = conn.pgconn.describe_prepared(b"")
    if shape.nfields == 0:
        raise Refused(
            "the run journal is read-only here: only statements that return rows run "
            "(SELECT, WITH, VALUES, TABLE, EXPLAIN, SHOW)"
        )
    names = [(shape.fname(i) or b"?").decode() for i in range(shape.nfields)]
    types = conn.execute(
        "SELECT format_type(t, nullif(m, -1)) "
        "FROM unnest(%s::oid[], %s::int[]) WITH ORDINALITY AS x(t, m, n) ORDER BY n",
        ([shape.ftype(i) for i in range(shape.nfields)], [shape.fmod(i) for i in range(shape.nfields)]),
    ).fetchall()
    kinds = [t for (t,) in types]
    columns = ", ".join(f"c{i} {t}" for i, t in enumerate(kinds))
    inner = text
    if _FIRST_WORD.match(text):  # a query: cast its columns to the described types (a domain's value,
        # e.g. information_schema's, is described by its base type, and rows must match exactly)
        body = _TRAILING.sub("", text)
        casts = ", ".join(f"c{i}::{t}" for i, t in enumerate(kinds))
        aliases = ", ".join(f"c{i}" for i in range(len(kinds)))
        inner = f"SELECT {casts} FROM (\n{body}\n) AS q({aliases})"
    with conn.cursor() as cur:
        cur.execute(f"SELECT * FROM {FUNCTION}(%s) AS result({columns})", [inner])
        return names, cur.fetchall()


def main(argv: Sequence[str]) -> int:
    """``python -m otel_runjournal.stores.postgres.sandbox ADMIN_URL [USER ...]``: create the role and the
    function in the journal's schema, grant it, and let each USER run ``sql``."""
    if not argv:
        print(__doc__.splitlines()[0], file=sys.stderr)
        print(
            "usage: python -m otel_runjournal.stores.postgres.sandbox ADMIN_URL [USER ...]", file=sys.stderr
        )
        return 2
    from .schema import MIGRATIONS

    with psycopg.connect(argv[0], autocommit=True) as conn:
        conn.execute(SETUP)
        conn.execute(grant(journal_relations(MIGRATIONS)))
        for user in argv[1:]:
            conn.execute(
                psycopg.sql.SQL("GRANT EXECUTE ON FUNCTION {}(text) TO {}").format(
                    psycopg.sql.Identifier(FUNCTION), psycopg.sql.Identifier(user)
                )
            )
        if missing(conn) is not None:
            print(f"{ROLE} could not be set up: connect as a superuser or a CREATEROLE role", file=sys.stderr)
            return 1
    print(f"{ROLE} is ready: sql() runs as it")
    return 0


if __name__ == "__main__":  # pragma: no cover - a command for administrators
    raise SystemExit(main(sys.argv[1:]))
