#!/usr/bin/env bash
# End to end against a real trace backend: Arize Phoenix, offline, on loopback.
set -euo pipefail
rm -rf .venv-phoenix
python3 -m venv .venv-phoenix && .venv-phoenix/bin/pip install -q arize-phoenix -e ".[demo]"
timeout 600 .venv-phoenix/bin/python scripts/phoenix_check.py
