"""The folders follow the data flow and imports run one way (issue: a layout that shows the data flow)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "otel_runjournal"
WRITING_COMMANDS = {"demo_run.py", "serve.py"}  # CLI modules that run the tracing side on purpose


def _imports(path: Path, *, module_level_only: bool) -> set[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    if module_level_only:  # also imports under `if TYPE_CHECKING:` are fine: they never run
        nodes = [n for n in nodes if not isinstance(n, ast.If)]
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                stem = ".".join([*base, node.module] if node.module else base)
            else:
                stem = node.module or ""
            found.add(stem)
            found.update(f"{stem}.{alias.name}" for alias in node.names)
    return found


def _offenders(folder: str, forbidden: tuple[str, ...], *, module_level_only: bool = False) -> list[str]:
    out = []
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        if folder == "cli" and path.name in WRITING_COMMANDS:
            continue
        for name in _imports(path, module_level_only=module_level_only):
            if name.startswith(forbidden):
                out.append(f"{path.relative_to(PACKAGE)} imports {name}")
    return out


READING_FORBIDDEN = (
    "otel_runjournal.tracing",
    "otel_runjournal.wiring",
    "langchain_core",
    "opentelemetry.sdk",
)


def test_stores_import_nothing_of_the_tracing_side() -> None:
    """Nothing under stores/ imports tracing/, LangChain or the OpenTelemetry SDK (not even lazily)."""
    assert _offenders("stores", (*READING_FORBIDDEN, "otel_runjournal.journal")) == []


def test_reading_commands_import_nothing_of_the_tracing_side() -> None:
    """The CLI's reading commands import neither tracing/ nor LangChain nor the SDK at module level."""
    assert _offenders("cli", READING_FORBIDDEN, module_level_only=True) == []


def test_tracing_never_imports_the_journal_or_the_stores() -> None:
    """Callbacks → spans knows nothing of spans → rows or rows → stores."""
    assert (
        _offenders("tracing", ("otel_runjournal.journal", "otel_runjournal.stores", "otel_runjournal.cli"))
        == []
    )


def test_journal_never_imports_tracing() -> None:
    """Spans → rows reads finished spans only; it never reaches back into the handler."""
    assert _offenders("journal", ("otel_runjournal.tracing", "langchain_core", "otel_runjournal.cli")) == []


def _loaded_after_import(modules: str, prefixes: tuple[str, ...]) -> list[str]:
    """The modules starting with ``prefixes`` that importing ``modules`` loads in a fresh interpreter."""
    code = (
        f"import sys, {modules}\n"
        f"print(','.join(sorted(m for m in sys.modules if m.startswith({prefixes!r}))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


@pytest.mark.parametrize("module", ["otel_runjournal.stores", "otel_runjournal.cli.main", "otel_runjournal"])
def test_importing_the_reading_side_loads_no_tracing(module: str) -> None:
    """In a fresh interpreter, the stores, the CLI and the package itself load no LangChain and no SDK."""
    tracing = ("langchain_core", "opentelemetry.sdk", "otel_runjournal.tracing", "otel_runjournal.journal")
    assert _loaded_after_import(f"{module}, otel_runjournal.stores", tracing) == []


def test_no_module_grows_past_400_lines_without_saying_why() -> None:
    """Small modules with one job: a longer one states its reason in its docstring ("Long because")."""
    long = []
    for path in PACKAGE.rglob("*.py"):
        lines = path.read_text().count("\n")
        if lines > 400 and "Long because" not in (ast.get_docstring(ast.parse(path.read_text())) or ""):
            long.append(f"{path.relative_to(PACKAGE)}: {lines} lines")
    assert long == []


def test_serves_receiving_process_loads_no_store() -> None:
    """serve's receiving process (server, receivers, the journal process's proxy) loads no DuckDB, no
    pyarrow, no PostgreSQL driver: the journal process does the writing."""
    receiving = (
        "otel_runjournal.serve.server, otel_runjournal.serve.grpc_server, otel_runjournal.serve.http_server"
    )
    assert _loaded_after_import(receiving, ("duckdb", "pyarrow", "psycopg")) == []
