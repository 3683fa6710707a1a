#!/usr/bin/env bash
# A private PostgreSQL server for the tests and benchmarks, on a free loopback port.
#
#   scripts/postgres_server.sh start DIR   # initdb into DIR (if new), start, print the store URL
#   scripts/postgres_server.sh stop DIR    # (start DIR again: same data, same port)
#
# Then: export OTEL_RUNJOURNAL_TEST_POSTGRES=$(scripts/postgres_server.sh start /tmp/rj-pg)
# Needs Debian's PostgreSQL (apt-get install -y postgresql). The server refuses to run as root, so
# as root it runs as the unprivileged `postgres` user (created by the package). Trust authentication
# on 127.0.0.1 only: a throw-away server for one developer or one CI run, not for production.
# PG_LISTEN=addr,addr overrides the listen addresses (tests/test_postgres_hosts.py adds the
# addresses of virtual links to network namespaces; those also need their own pg_hba.conf lines).
set -euo pipefail

cmd="${1:-}"
dir="${2:-}"
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop DIR" >&2
  exit 2
fi
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/pg_ctl" ]; then
  echo "PostgreSQL is not installed: apt-get install -y postgresql" >&2
  exit 1
fi
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
owner=$([ "$(id -u)" = 0 ] && echo postgres || id -un)

case "$cmd" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_owner "$bin/initdb" -D "$dir/data" -U "$owner" --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log"
    fi
    if [ -f "$dir/port" ]; then  # a restart keeps the port (clients reconnect to the same URL)
      port=$(cat "$dir/port")
    else
      port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    fi
    # fsync stays on (the journal's durability is what the tests check); small shared memory, no
    # unix socket (loopback TCP only), enough connections for the multi-process tests
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start -o \
      "-c listen_addresses=${PG_LISTEN:-127.0.0.1} -p $port -c unix_socket_directories='' -c max_connections=200 -c shared_buffers=128MB" >/dev/null
    echo "$port" >"$dir/port"
    as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U "$owner" -d postgres -qtAc \
      "SELECT 1 FROM pg_database WHERE datname = 'runjournal'" | grep -q 1 ||
      as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U "$owner" runjournal
    echo "postgresql://$owner@127.0.0.1:$port/runjournal"
    ;;
  stop)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
  *)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
