"""Reading commands: ids that tell runs apart, nothing written, empty results, one story for counts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from otel_runjournal.cli.demo_run import run_demo
from otel_runjournal.cli.main import cli
from otel_runjournal.cli.reading import MIN_ID, id_shortener
from otel_runjournal.stores.base import StoreError
from otel_runjournal.stores.location import open_store

READING = (
    ["runs"],
    ["runs", "--json"],
    ["show", "{run}"],
    ["show", "{run}", "--events"],
    ["show", "{run}", "--json"],
    ["messages", "{thread}"],
    ["tokens"],
    ["tokens", "--by", "model"],
    ["tokens", "--by", "run", "--json"],
)


pytestmark = pytest.mark.usefixtures("clean_otel_env")


@pytest.fixture(scope="module")
def journals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, Any]]:
    """One demo (2 successful runs and a failing one) in a DuckDB file and one in a JSONL directory."""
    base = tmp_path_factory.mktemp("reading")
    out = {}
    for kind, location in (("duckdb", str(base / "j.duckdb")), ("jsonl", f"jsonl:{base / 'jdir'}")):
        out[kind] = (location, run_demo(location, runs=2))
    return out


def _cli(*args: str, columns: int = 80) -> Result:
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": str(columns)})


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and mtime (ns)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            st = os.stat(path)
            out[os.path.relpath(path, root)] = (st.st_size, st.st_mtime_ns)
    return out


def test_shortener_tells_uuid7_ids_apart() -> None:
    """UUIDv7 ids of runs started in the same minute share 8+ leading characters; the shown ids differ
    and are at least MIN_ID characters, one length for the whole table."""
    ids = [f"01a22bba-{i:04x}-7000-8000-{uuid.uuid4().hex[:12]}" for i in range(50)]
    assert len({i[:8] for i in ids}) == 1
    short = id_shortener(ids, ids)
    shown = [short(i) for i in ids]
    assert len(set(shown)) == len(ids) and len({len(s) for s in shown}) == 1
    assert all(
        len(s) >= MIN_ID and (i.startswith(s) or i.endswith(s)) for i, s in zip(ids, shown, strict=True)
    )
    plain = ["run-a", "run-b"]
    assert [id_shortener(plain, plain)(p) for p in plain] == plain  # short ids are shown whole


@pytest.mark.parametrize("kind", ["duckdb", "jsonl"])
def test_runs_shows_ids_that_differ_and_show_accepts_them(
    journals: dict[str, tuple[str, Any]], kind: str
) -> None:
    """The demo's LangChain-given (UUIDv7) ids are shown so they differ, and each is accepted back."""
    location, demo = journals[kind]
    assert all(uuid.UUID(r).version == 7 for r in demo.run_ids)  # the ids LangChain gives, not ours
    out = _cli("runs", "--store", location)
    assert out.exit_code == 0, out.output
    shown = [line.split()[0] for line in out.output.splitlines()[3:]]
    assert len(set(shown)) == len(demo.run_ids)
    for short in shown:
        data = json.loads(_cli("show", short, "--store", location, "--json").output)
        assert data["run"]["run_id"] in demo.run_ids and (
            data["run"]["run_id"].startswith(short) or data["run"]["run_id"].endswith(short)
        )


@pytest.mark.parametrize("kind", ["duckdb", "jsonl"])
def test_reading_commands_change_nothing(
    journals: dict[str, tuple[str, Any]], kind: str, tmp_path: Path
) -> None:
    """Every reading command on a read-only journal (chmod 0555; as root that does not stop writes, so
    the file tree, sizes and mtimes are compared too) succeeds and leaves everything as it was."""
    location, demo = journals[kind]
    path = Path(location.removeprefix("jsonl:"))
    root = path if kind == "jsonl" else path.parent
    before = _tree(root)
    modes = {p: p.stat().st_mode for p in [root, *root.rglob("*")]}
    try:
        for p in modes:
            p.chmod(0o555 if p.is_dir() else 0o444)
        for args in READING:
            argv = [a.format(run=demo.run_ids[0], thread=demo.thread_ids[0]) for a in args]
            result = _cli(*argv, "--store", location)
            assert result.exit_code == 0, (argv, result.output)
    finally:
        for p, mode in modes.items():
            p.chmod(mode)
    assert _tree(root) == before


@pytest.mark.parametrize("location", ["{tmp}", "{tmp}/x.duckdb", "jsonl:{tmp}", "{tmp}/file.duckdb"])
def test_not_a_journal_is_refused_and_left_alone(tmp_path: Path, location: str) -> None:
    """A directory or file that is not a journal gets one line saying what was expected; nothing is
    created in it (no .lock, no events/)."""
    (tmp_path / "file.duckdb").write_text("not a database")
    (tmp_path / "notes.txt").write_text("mine")
    before = _tree(tmp_path)
    for args in (["runs"], ["tokens"], ["messages", "t"], ["show", "r"], ["sql", "select 1"]):
        result = _cli(*args, "--store", location.format(tmp=tmp_path))
        assert result.exit_code == 1
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
        assert "run journal" in lines[0]
    assert _tree(tmp_path) == before


def test_read_only_stores_refuse_writes(journals: dict[str, tuple[str, Any]]) -> None:
    """open_store(read_only=True) gives stores whose write raises instead of touching the journal."""
    for location, _ in journals.values():
        with (
            open_store(location, read_only=True) as store,  # type: ignore[attr-defined]
            pytest.raises(StoreError, match="read-only"),
        ):
            store.write([object()])


def test_jsonl_reader_skips_an_unfinished_batch(journals: dict[str, tuple[str, Any]], tmp_path: Path) -> None:
    """A lock-free read-only reader of a JSONL journal sees only committed batches: a batch whose intent
    has no ``ok`` (a writer died mid-write) is invisible, and the reader does not repair it."""
    import shutil

    source = Path(journals["jsonl"][0].removeprefix("jsonl:"))
    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    runs_file = copy / "runs.jsonl"
    size = runs_file.stat().st_size
    with open(copy / "commits.jsonl", "a") as log:
        log.write(json.dumps({"b": "dead", "files": {"runs.jsonl": size}, "seq": {}}) + "\n")
    ghost = {"run_id": "ghost", "thread_id": "t", "status": "success"}
    with open(runs_file, "a") as f:
        f.write(json.dumps(ghost) + "\n")
    before = _tree(copy)
    with open_store(f"jsonl:{copy}", read_only=True) as store:  # type: ignore[attr-defined]
        ids = {r.run_id for r in store.list_runs()}
    assert "ghost" not in ids and ids == set(journals["jsonl"][1].run_ids)
    assert _tree(copy) == before


def test_empty_results_are_not_errors(journals: dict[str, tuple[str, Any]]) -> None:
    """An empty result is exit status 0 with an empty table, or [] with --json, for every listing."""
    location, demo = journals["duckdb"]
    cases = (
        ["messages", "no-such-thread"],
        ["messages", demo.thread_ids[0], "--after", "100000"],
        ["runs", "--thread", "no-such-thread"],
        ["tokens", "--thread", "no-such-thread", "--by", "thread"],
    )
    for args in cases:
        table = _cli(*args, "--store", location)
        assert table.exit_code == 0 and "Error" not in table.output, (args, table.output)
        as_json = _cli(*args, "--store", location, "--json")
        assert as_json.exit_code == 0 and json.loads(as_json.output) == [], args


def test_llm_call_counts_agree(journals: dict[str, tuple[str, Any]]) -> None:
    """A failed model call counts as a call everywhere: runs, tokens --by run/thread/model and the SQL
    views give the same llm_call_count (the demo's failing run has one failed call)."""
    location, demo = journals["duckdb"]
    runs = json.loads(_cli("runs", "--store", location, "--json").output)
    failed = next(r for r in runs if r["run_id"] == demo.error_run_id)
    assert failed["llm_call_count"] == 1 and failed["total_tokens"] == 0
    total = sum(r["llm_call_count"] for r in runs)
    for by in ("run", "thread", "model"):
        rows = json.loads(_cli("tokens", "--by", by, "--store", location, "--json").output)
        assert sum(r["llm_calls"] for r in rows) == total, by
    for view in ("tokens_by_model", "tokens_by_caller", "tokens_per_day"):
        rows = json.loads(
            _cli("sql", f"select sum(llm_calls) n from {view}", "--store", location, "--json").output
        )
        assert rows == [{"n": total}], view


def test_errors_are_said_once(tmp_path: Path) -> None:
    """A store that cannot be read gives one message, not the same one nested twice."""
    result = _cli("runs", "--store", str(tmp_path / "missing.duckdb"))
    line = result.output.strip()
    assert result.exit_code == 1 and line.count("run journal") == 1, line


_PROBE = """
import sys
from otel_runjournal.cli.main import cli
try:
    cli(sys.argv[1:], prog_name="otel-runjournal")
except SystemExit as exc:
    assert not exc.code, exc.code
HEAVY = ("langchain_core", "opentelemetry.sdk", "otel_runjournal.tracing", "otel_runjournal.journal",
         "pyarrow")
heavy = sorted(m for m in sys.modules if m in HEAVY or m.startswith(tuple(h + "." for h in HEAVY)))
print("HEAVY", heavy, file=sys.stderr)
sys.exit(3 if heavy else 0)
"""


@pytest.mark.parametrize("args", [*READING, ["sql", "select count(*) from runs"], ["--help"]])
def test_reading_commands_import_no_tracing(journals: dict[str, tuple[str, Any]], args: list[str]) -> None:
    """Reading commands import neither langchain_core, the OpenTelemetry SDK, the tracing and journal
    packages nor pyarrow (they start about as fast as `import duckdb, click, rich`)."""
    location, demo = journals["duckdb"]
    argv = [a.format(run=demo.run_ids[0], thread=demo.thread_ids[0]) for a in args]
    if argv != ["--help"]:
        argv += ["--store", location]
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


ROOT = Path(__file__).resolve().parents[1]


def test_readme_and_examples_give_working_instructions() -> None:
    """The zero-code section and example name the HTTP protocol with port 4318 (for adding OTLP to the
    journal-only command) and the clone install;
    `otel-runjournal sql` comes before `duckdb` shell lines; OTEL_BSP_* are in the configuration table;
    the notebook way to query is documented next to the SQL examples."""
    readme = (ROOT / "README.md").read_text()
    zero = readme[readme.index("### Zero-code") :]
    zero = zero[: zero.index("\n## ")]
    assert "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf" in zero and ":4318" in zero
    assert "pip install -e '.[demo,zero-code]'" in zero
    example = (ROOT / "examples" / "zero_code.py").read_text()
    assert "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf" in example and ".[demo,zero-code]" in example
    duckdb_section = readme[readme.index("### DuckDB (default)") : readme.index("### JSONL")]
    assert duckdb_section.index("otel-runjournal sql") < duckdb_section.index("duckdb -readonly")
    assert "journal.store.sql(" in duckdb_section and "different configuration" in duckdb_section
    table = readme[readme.index("## Configuration") : readme.index("## Performance")]
    for name in ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_SCHEDULE_DELAY"):
        assert f"| `{name}` |" in table


def test_a_bare_name_says_how_to_write_a_jsonl_location(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A location without a .duckdb suffix that does not exist is refused with the three spellings
    that work (dir/, jsonl:dir, dir.duckdb), and `jsonl:NAME` creates the JSONL journal."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"journal/ \(or jsonl:journal\)") as info:
        open_store("journal")
    assert "journal.duckdb" in str(info.value)
    with open_store("jsonl:journal") as store:  # type: ignore[attr-defined]
        assert type(store).__name__ == "JsonlStore" and store.directory == str(tmp_path / "journal")
    result = _cli("runs", "--store", "journal")
    assert result.exit_code == 0 and "Runs" in result.output  # the existing directory is now a journal


def _mount_read_only(source: Path, target: Path) -> str | None:
    """Bind-mount ``source`` read-only at ``target``; why not, where this process may not mount."""
    bind = subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True, text=True)
    if bind.returncode != 0:
        return f"mount --bind failed: {bind.stderr.strip()}"
    ro = subprocess.run(["mount", "-o", "remount,ro,bind", str(target)], capture_output=True, text=True)
    if ro.returncode != 0:
        subprocess.run(["umount", str(target)], check=False)
        return f"mount -o remount,ro,bind failed: {ro.stderr.strip()}"
    return None


def test_reading_works_on_a_read_only_mount(journals: dict[str, tuple[str, Any]], tmp_path: Path) -> None:
    """On a read-only file system (a read-only bind mount; root ignores chmod) every reading command and
    `sql` work on both journals. Skips (a failure under CI=true, which runs as root) where mounting is not
    permitted."""
    import shutil

    source, target = tmp_path / "src", tmp_path / "ro"
    source.mkdir()
    target.mkdir()
    duck_location, duck_demo = journals["duckdb"]
    shutil.copy(duck_location, source / "j.duckdb")
    shutil.copytree(Path(journals["jsonl"][0].removeprefix("jsonl:")), source / "jdir")
    why_not = _mount_read_only(source, target)
    if why_not is not None:
        pytest.skip(f"needs a read-only bind mount (root): {why_not}")
    before = _tree(source)
    try:
        with pytest.raises(OSError):
            (target / "probe").write_text("x")
        for location, demo in (
            (str(target / "j.duckdb"), duck_demo),
            (f"jsonl:{target / 'jdir'}", journals["jsonl"][1]),
        ):
            for args in [*READING, ["sql", "select count(*) from runs"]]:
                argv = [a.format(run=demo.run_ids[0], thread=demo.thread_ids[0]) for a in args]
                result = _cli(*argv, "--store", location)
                if args[0] == "sql" and location.startswith("jsonl:"):
                    assert result.exit_code == 1 and "read_json" in result.output
                else:
                    assert result.exit_code == 0, (location, argv, result.output)
    finally:
        subprocess.run(["umount", str(target)], check=True)
    assert _tree(source) == before


_JSONL_WRITER = """
import sys
from otel_runjournal.wiring import configure
from otel_runjournal.demo.agent import build_agent

wired = configure(sys.argv[1], set_global=False)
agent = build_agent(subagent=False, middleware=False)
for i in range(int(sys.argv[2])):
    agent.invoke({"messages": [("user", f"question {i}")]},
                 {"callbacks": [wired.handler], "configurable": {"thread_id": f"w{i % 3}"}})
    wired.force_flush()
wired.shutdown()
"""


def test_lock_free_jsonl_reader_sees_whole_runs_while_a_writer_appends(tmp_path: Path) -> None:
    """A read-only JSONL reader takes no lock, yet while another process keeps writing, every run it
    lists has all its events (run_start first, run_end last) and seqs only grow."""
    location = f"jsonl:{tmp_path / 'busy'}"
    writer = subprocess.Popen([sys.executable, "-c", _JSONL_WRITER, location, "25"], stderr=subprocess.PIPE)
    checked = 0
    try:
        while writer.poll() is None or checked == 0:
            if not (tmp_path / "busy" / "events").exists():
                continue
            with open_store(location, read_only=True) as store:  # type: ignore[attr-defined]
                for run in store.list_runs(limit=1000):
                    events = store.list_events(run.run_id, limit=1000)
                    types = [e.event_type for e in events]
                    assert types[0] == "run_start" and types[-1] == "run_end", types
                    assert [e.seq for e in events] == sorted(e.seq for e in events)
                    checked += 1
        assert writer.wait(timeout=120) == 0, writer.stderr.read() if writer.stderr else b""
    finally:
        if writer.poll() is None:
            writer.kill()
    with open_store(location, read_only=True) as store:  # type: ignore[attr-defined]
        assert len(store.list_runs(limit=1000)) == 25
    assert checked > 0


def test_every_table_is_readable_at_80_columns(journals: dict[str, tuple[str, Any]]) -> None:
    """At 80 columns no line is wider, and what tells rows apart stays whole: run ids as shown (distinct),
    thread ids, model names, callers, the token numbers."""
    location, demo = journals["duckdb"]
    for args in (
        ["runs"],
        ["show", demo.run_ids[0]],
        ["show", demo.run_ids[0], "--events"],
        ["messages", demo.thread_ids[0]],
        ["tokens"],
        ["tokens", "--by", "run"],
        ["tokens", "--by", "thread"],
        ["tokens", "--by", "model"],
        ["sql", "select * from runs"],
    ):
        out = _cli(*args, "--store", location).output
        assert max(len(line) for line in out.splitlines()) <= 80, (args, out)
    runs = _cli("runs", "--store", location).output
    # threads as shortened as run ids (a unique suffix here), and the start time
    assert all(thread[-8:] in runs for thread in demo.thread_ids) and ":" in runs.splitlines()[3]
    by_thread = _cli("tokens", "--by", "thread", "--store", location).output
    assert all(thread in by_thread for thread in demo.thread_ids)
    rows = json.loads(_cli("tokens", "--by", "thread", "--store", location, "--json").output)
    for row in rows:
        assert f"{row['total_tokens']:,}" in by_thread and row["thread"] in by_thread
    by_model = _cli("tokens", "--by", "model", "--store", location).output
    assert "scripted-1" in by_model and "scripted-mini" in by_model
    callers = _cli("tokens", "--store", location).output
    assert "middleware:summarization" in callers and "subagent:researcher" in callers
    messages = _cli("messages", demo.thread_ids[0], "--store", location).output
    shown = {
        line.split()[1] for line in messages.splitlines()[3:] if line.strip() and line.split()[0].isdigit()
    }
    ids = [r for r in demo.run_ids if any(r.startswith(s) or r.endswith(s) for s in shown)]
    assert len(shown) == len(ids) >= 2 and all(len(s) < 36 for s in shown)  # short, distinct, whole
