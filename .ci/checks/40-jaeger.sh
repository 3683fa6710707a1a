#!/usr/bin/env bash
# End to end against a real Jaeger v2 through the real OpenTelemetry Collector running
# collector-config/ as shipped (binaries from .ci/services/20-otel-binaries.sh: JAEGER_BIN, OTELCOL_BIN).
# Uses the virtualenv the tests step made (.venv has otel-runjournal[dev]; the demo extra is added).
set -euo pipefail
: "${JAEGER_BIN:?set by .ci/services/20-otel-binaries.sh}" "${OTELCOL_BIN:?set by .ci/services/20-otel-binaries.sh}"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e ".[demo]"
timeout 600 .venv/bin/python scripts/jaeger_check.py
