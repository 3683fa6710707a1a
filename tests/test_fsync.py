"""fsync promises: OTEL_RUNJOURNAL_FSYNC=batch syncs every file a JSONL write touched, serve --fsync syncs
the spool before answering; without them nothing is synced. Observed in the real processes through an
``os.fsync`` wrapper installed by a ``sitecustomize`` (it logs each synced file; our code is unchanged)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
from serve_helpers import ROOT, agent_spans, free_port, health, post, request_of

TESTS_DIR = str(Path(__file__).parent)

SPY = """
import os

_log = os.environ.get("FSYNC_SPY_LOG")
if _log:
    _real_fsync = os.fsync

    def _spying_fsync(fd):
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            path = "?"
        _real_fsync(fd)
        with open(_log, "a") as log:
            log.write(path + "\\n")

    os.fsync = _spying_fsync
"""


@pytest.fixture
def spy(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment whose Python processes log every os.fsync (the synced file's path), and the log."""
    site = tmp_path / "spy-site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SPY)
    log = tmp_path / "fsync.log"
    log.touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), TESTS_DIR, os.environ.get("PYTHONPATH", "")])
    env["FSYNC_SPY_LOG"] = str(log)
    return env, log


def _synced(log: Path) -> Counter[str]:
    return Counter(log.read_text().splitlines())


WRITER = """
    import sys
    from store_batches import make_run
    from otel_runjournal.stores import open_store
    with open_store(sys.argv[1]) as store:
        for i in range(3):
            store.write([make_run(f"r{i}", "t")])
"""


@pytest.mark.parametrize("policy", ["batch", "never", None])
def test_jsonl_fsync_policy_syncs_what_each_write_touched(
    spy: tuple[dict[str, str], Path], tmp_path: Path, policy: str | None
) -> None:
    """OTEL_RUNJOURNAL_FSYNC=batch: per write, the commit log twice (intent, ok) and every file appended
    to once; never (the default): no fsync at all."""
    env, log = spy
    if policy is not None:
        env["OTEL_RUNJOURNAL_FSYNC"] = policy
    journal = tmp_path / "journal"
    subprocess.run(
        [sys.executable, "-c", textwrap.dedent(WRITER), f"jsonl://{journal}"],
        env=env,
        check=True,
        timeout=120,
    )
    synced = _synced(log)
    if policy != "batch":
        assert synced == Counter()
        return
    appended = {str(p.relative_to(journal)) for p in journal.rglob("*.jsonl") if p.name != "commits.jsonl"}
    per_file = {str(Path(path).relative_to(journal)): n for path, n in synced.items()}
    assert per_file.pop("commits.jsonl") == 3 * 2
    assert set(per_file) == appended  # runs.jsonl, spans.jsonl and each run's events file
    assert per_file["runs.jsonl"] == per_file["spans.jsonl"] == 3
    events = {f: n for f, n in per_file.items() if f.startswith("events/")}
    assert len(events) == 3 and set(events.values()) == {1}, per_file  # one file per run, synced once


@pytest.mark.parametrize("flag", [True, False], ids=["--fsync", "default"])
def test_serve_fsync_syncs_the_spool_before_answering(
    spy: tuple[dict[str, str], Path], tmp_path: Path, flag: bool
) -> None:
    """serve --fsync: each acknowledged request was fsynced in its spool segment before the answer;
    without --fsync requests are answered without one."""
    env, log = spy
    spool = tmp_path / "spool"
    http_port, grpc_port = free_port(), free_port()
    command = [sys.executable, "-m", "otel_runjournal", "serve", "--store", str(tmp_path / "s.duckdb")]
    command += ["--spool", str(spool), "--http", f"127.0.0.1:{http_port}", "--grpc", f"127.0.0.1:{grpc_port}"]
    command += ["--settle", "600", *(["--fsync"] if flag else [])]  # runs stay held: no store writes
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
            try:
                if health(http_port)[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        requests = [request_of(agent_spans(1)).SerializeToString() for _ in range(3)]
        for body in requests:
            before = sum(n for path, n in _synced(log).items() if path.startswith(str(spool)))
            assert post(http_port, body).status == 200
            after = sum(n for path, n in _synced(log).items() if path.startswith(str(spool)))
            assert after - before == (1 if flag else 0)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
