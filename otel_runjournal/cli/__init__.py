"""``otel-runjournal``: the reading commands, their rendering, and the bundled offline demo.

Reading commands import only the stores (never the handler, LangChain or the OpenTelemetry SDK), so
they start fast; ``demo`` imports the tracing side when it runs.
"""

from .main import main

__all__ = ["main"]
