"""``python -m otel_runjournal`` — the same as the ``otel-runjournal`` command."""

from otel_runjournal.cli import main

if __name__ == "__main__":
    main()
