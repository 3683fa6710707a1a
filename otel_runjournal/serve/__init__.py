"""``otel-runjournal serve``: the OTLP stage in front of the journal.

``otlp_spans`` (OTLP protobuf / JSON → plain decoded values), ``journal_spans`` (decoded values →
the span objects the journal mapping reads: slotted stand-ins for the SDK's ``ReadableSpan``),
``spool`` (the write-ahead spool that makes acknowledged spans survive a SIGKILL), ``writer`` (the
one thread that spools, dedupes, assembles and writes), ``journal_process`` (the writer in a child
process, fed over a pipe), ``grpc_server`` / ``http_server`` (the receivers), ``auth`` (bind rules,
bearer token), ``server`` (lifecycle, graceful shutdown).
"""
