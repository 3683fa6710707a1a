# PostgreSQL for the PostgresStore tests: Debian's package, a private server in a temporary
# directory on a free loopback port, as the unprivileged `postgres` user (the server refuses root).
# Sourced by .ci/run: exports OTEL_RUNJOURNAL_TEST_POSTGRES and registers the stop with on_exit.
# iproute2: tests/test_postgres_hosts.py puts writers in network namespaces (separate hosts)
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || ! command -v ip >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql iproute2 >/dev/null
fi
id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
pg_dir=$(mktemp -d /tmp/rj-ci-postgres.XXXXXX)
chmod 755 "$pg_dir"
OTEL_RUNJOURNAL_TEST_POSTGRES=$(scripts/postgres_server.sh start "$pg_dir")
export OTEL_RUNJOURNAL_TEST_POSTGRES
on_exit "scripts/postgres_server.sh stop '$pg_dir'; rm -rf '$pg_dir'"
