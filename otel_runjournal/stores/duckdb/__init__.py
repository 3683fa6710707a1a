"""The DuckDB store (the embedded default): ``store`` reads and writes, ``schema`` holds the recorded
migrations and views, ``insert`` the bulk-insert paths."""
