# shellcheck shell=bash
# Jaeger v2 and our OpenTelemetry Collector, built with Go from the module proxy (sourced by .ci/run).
#
# Exports JAEGER_BIN and OTELCOL_BIN (absolute paths) for .ci/checks/40-jaeger.sh and for tests that
# run the Collector. Starts no server: the check starts both on free loopback ports and stops them.
# Everything Go writes (modules, build cache, the binaries) lives under $CI_CACHE, so a second run
# reuses it: cold on this 2-core machine the two builds take minutes, cached a few seconds.
#   Jaeger:    go get -tool github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION in a module of
#              our own under $CI_CACHE, then go build (`go install ...@version` refuses Jaeger's module
#              because its go.mod has a replace directive).
#   Collector: the official builder (ocb) at $OTELCOL_VERSION, manifest collector-config/otelcol-builder.yaml.
JAEGER_VERSION=v1.76.0 # Jaeger v2.13.0's binary (v2 is tagged v1.x for Go)
OTELCOL_VERSION=v0.165.0

otel_binaries_go() {
  local gocache="$CI_CACHE/go"
  export GOPATH="$gocache/path" GOMODCACHE="$gocache/mod" GOCACHE="$gocache/build"
  export GOFLAGS=-buildvcs=false GOTELEMETRY=off
  export PATH="$PATH:/usr/local/go/bin"
  if ! command -v go >/dev/null; then
    echo "ci: Go is not on this machine (it is on the project's machines): cannot build Jaeger and the Collector" >&2
    return 1
  fi
  go version
}

otel_binaries_jaeger() {
  local dir="$CI_CACHE/go/src/jaeger-$JAEGER_VERSION" bin="$CI_CACHE/bin/jaeger-$JAEGER_VERSION/jaeger"
  if [ ! -x "$bin" ]; then
    local t0=$SECONDS
    mkdir -p "$dir"
    (
      cd "$dir"
      [ -f go.mod ] || go mod init otel-runjournal-ci/jaeger >/dev/null 2>&1
      go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION"
      go build -o "$bin.tmp" github.com/jaegertracing/jaeger/cmd/jaeger
    )
    mv "$bin.tmp" "$bin"
    echo "ci: built Jaeger $JAEGER_VERSION in $((SECONDS - t0))s"
  fi
  export JAEGER_BIN="$bin"
}

otel_binaries_collector() {
  local manifest="$PWD/collector-config/otelcol-builder.yaml" key dir bin ocb
  key=$(sha256sum "$manifest" | cut -c1-12)
  dir="$CI_CACHE/go/src/otelcol-$key"
  bin="$CI_CACHE/bin/otelcol-$key/otelcol-runjournal"
  ocb="$CI_CACHE/bin/ocb-$OTELCOL_VERSION/builder"
  if [ ! -x "$bin" ]; then
    local t0=$SECONDS
    [ -x "$ocb" ] || GOBIN="$(dirname "$ocb")" go install "go.opentelemetry.io/collector/cmd/builder@$OTELCOL_VERSION"
    mkdir -p "$dir" "$(dirname "$bin")"
    (cd "$dir" && "$ocb" --config="$manifest") # writes ./otelcol-runjournal/ (sources + binary)
    cp "$dir/otelcol-runjournal/otelcol-runjournal" "$bin.tmp"
    mv "$bin.tmp" "$bin"
    echo "ci: built the Collector ($OTELCOL_VERSION, manifest $key) in $((SECONDS - t0))s"
  fi
  export OTELCOL_BIN="$bin"
}

otel_binaries_go
otel_binaries_jaeger
otel_binaries_collector
"$JAEGER_BIN" --help >/dev/null
"$OTELCOL_BIN" components | grep -q 'name: file_storage'
echo "ci: JAEGER_BIN=$JAEGER_BIN OTELCOL_BIN=$OTELCOL_BIN"
