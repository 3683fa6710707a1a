"""``python -m otel_runjournal`` — the same as the ``otel-runjournal`` command."""

from .cli.main import main

if __name__ == "__main__":
    main()
