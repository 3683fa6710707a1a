"""Callbacks → spans: the LangChain callback handler and what it needs to make GenAI spans.

``handler`` receives LangChain callbacks; ``registry`` keeps live runs and their spans; ``classify``
decides span names, kinds and callers (pure, table-tested); ``usage`` reads token counts;
``serialize`` renders content; ``metrics`` records GenAI metrics; ``instrument`` attaches the handler
to every run. Nothing here imports ``otel_runjournal.journal`` or ``otel_runjournal.stores``.
"""
