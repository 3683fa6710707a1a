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
#   Collector with the loadbalancing exporter (OTELCOL_LB_BIN, for several serves behind one Collector):
#              ocb at $OTELCOL_LB_VERSION, manifest collector-config/otelcol-builder-loadbalancing.yaml
#              (the module proxy has that exporter only at contrib v0.140.1, see the manifest).
JAEGER_VERSION=v1.76.0 # Jaeger v2.13.0's binary (v2 is tagged v1.x for Go)
OTELCOL_VERSION=v0.165.0
OTELCOL_LB_VERSION=v0.140.0

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

# otel_binaries_build MANIFEST OCB_VERSION NAME: build (once per manifest content) and print the binary's path
otel_binaries_build() {
  local manifest="$PWD/collector-config/$1" version=$2 name=$3 key dir bin ocb
  key=$(sha256sum "$manifest" | cut -c1-12)
  dir="$CI_CACHE/go/src/otelcol-$key"
  bin="$CI_CACHE/bin/otelcol-$key/$name"
  ocb="$CI_CACHE/bin/ocb-$version/builder"
  if [ ! -x "$bin" ]; then
    local t0=$SECONDS
    [ -x "$ocb" ] || GOBIN="$(dirname "$ocb")" go install "go.opentelemetry.io/collector/cmd/builder@$version" >&2
    mkdir -p "$dir" "$(dirname "$bin")"
    (cd "$dir" && "$ocb" --config="$manifest") >&2 # writes ./$name/ (sources + binary)
    cp "$dir/$name/$name" "$bin.tmp"
    mv "$bin.tmp" "$bin"
    echo "ci: built $name ($version, manifest $key) in $((SECONDS - t0))s" >&2
  fi
  echo "$bin"
}

otel_binaries_collector() {
  OTELCOL_BIN=$(otel_binaries_build otelcol-builder.yaml "$OTELCOL_VERSION" otelcol-runjournal) || return 1
  OTELCOL_LB_BIN=$(otel_binaries_build otelcol-builder-loadbalancing.yaml "$OTELCOL_LB_VERSION" otelcol-runjournal-lb) || return 1
  export OTELCOL_BIN OTELCOL_LB_BIN
}

otel_binaries_go
otel_binaries_jaeger
otel_binaries_collector
"$JAEGER_BIN" --help >/dev/null
"$OTELCOL_BIN" components | grep -q 'name: file_storage'
"$OTELCOL_LB_BIN" components | grep -q 'name: loadbalancing'
echo "ci: JAEGER_BIN=$JAEGER_BIN OTELCOL_BIN=$OTELCOL_BIN OTELCOL_LB_BIN=$OTELCOL_LB_BIN"
