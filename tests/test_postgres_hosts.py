"""PostgresStore from separate hosts: writer processes in their own network namespaces (each with its
own network stack and address, reaching the server over a virtual link) share threads of one journal."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_server import server_url
from test_postgres_processes import SERVER_SCRIPT, TESTS_DIR, _check_journal, _server

pytest.importorskip("psycopg", reason="the PostgreSQL store needs the postgres extra")

from otel_runjournal.stores.postgres.store import PostgresStore

HOSTS = 2


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def namespaces() -> Iterator[list[tuple[str, str, str]]]:
    """``(namespace, its address, the server's address on its link)`` for each simulated host."""
    server_url()  # skip unless the PostgreSQL tests are enabled
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("separate hosts need root and iproute2 (network namespaces)")
    tag, net = uuid.uuid4().hex[:6], random.randrange(1, 250)
    made: list[tuple[str, str, str]] = []
    links: list[str] = []
    try:
        for n in range(HOSTS):
            ns, outer, inner = f"rj{tag}h{n}", f"rj{tag}a{n}", f"rj{tag}b{n}"
            server_ip, host_ip = f"10.213.{net}.{4 * n + 1}", f"10.213.{net}.{4 * n + 2}"
            _ip("netns", "add", ns)
            made.append((ns, host_ip, server_ip))
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            links.append(outer)
            _ip("link", "set", inner, "netns", ns)
            _ip("addr", "add", f"{server_ip}/30", "dev", outer)
            _ip("link", "set", outer, "up")
            _ip("-n", ns, "addr", "add", f"{host_ip}/30", "dev", inner)
            _ip("-n", ns, "link", "set", inner, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield made
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot make network namespaces here: {exc.stderr.strip()}")
    finally:
        for outer in links:
            subprocess.run(["ip", "link", "del", outer], capture_output=True)
        for ns, _, _ in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_writers_on_separate_hosts_share_threads(namespaces: list[tuple[str, str, str]]) -> None:
    """2 hosts x 2 writer processes x 250 runs on 20 shared threads: every run whole, seqs unique."""
    directory = tempfile.mkdtemp(prefix="rj-pg-hosts-")
    os.chmod(directory, 0o755)
    try:
        local = _server("start", directory)
        listen = ",".join(["127.0.0.1", *(server_ip for _, _, server_ip in namespaces)])
        with open(Path(directory, "data", "pg_hba.conf"), "a") as hba:
            for _, host_ip, _ in namespaces:
                hba.write(f"host all all {host_ip}/32 trust\n")
        _server("stop", directory)
        _server("start", directory, PG_LISTEN=listen)
        PostgresStore(local).close()  # schema first
        writer = """
            import os
            from store_batches import make_run
            from otel_runjournal.stores import open_store
            name = os.environ["WRITER"]
            store = open_store(os.environ["URL"])
            print("from", store.sql("SELECT host(inet_client_addr())")[0][0])
            for start in range(0, 250, 10):
                runs = range(start, start + 10)
                store.write([make_run(f"{name}-{i}", f"thread-{i % 20}", start=i) for i in runs])
            store.close()
            print("done")
        """
        env = {**os.environ, "PYTHONPATH": TESTS_DIR + os.pathsep + os.environ.get("PYTHONPATH", "")}
        children = []
        for ns, _, server_ip in namespaces:
            url = local.replace("127.0.0.1", server_ip, 1)
            for w in range(2):
                children.append(
                    subprocess.Popen(
                        ["ip", "netns", "exec", ns, sys.executable, "-c", textwrap.dedent(writer)],
                        env={**env, "URL": url, "WRITER": f"{ns}-{w}"},
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                    )
                )
        seen = set()
        for child in children:
            out, err = child.communicate(timeout=240)
            assert child.returncode == 0 and "done" in out, err[-3000:]
            seen.add(out.split()[1])
        assert seen == {host_ip for _, host_ip, _ in namespaces}  # the server saw two hosts
        with PostgresStore(local, read_only=True) as store:
            counts = _check_journal(store)
        assert len(counts) == HOSTS * 2 * 250
    finally:
        subprocess.run(["bash", str(SERVER_SCRIPT), "stop", directory], capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)
