# openssl: tests/test_serve_tls.py makes a throwaway self-signed certificate with it (Debian's package;
# present on most machines, installed when missing). Sourced by .ci/run.
if ! command -v openssl >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
fi
