"""The JSONL store: one events file per run, run summaries, spans and a commit log in a directory;
``names`` derives file names from run ids safely."""
