"""Who may send: loopback by default; elsewhere only with a bearer token or an explicit ``--insecure``;
TLS on both ports when given a certificate and key."""

from __future__ import annotations

import hmac
import ipaddress
import ssl
from dataclasses import dataclass


class TokenCheck:
    """Checks ``Authorization: Bearer <token>`` (HTTP header / gRPC metadata) in constant time."""

    def __init__(self, token: str | None) -> None:
        self._expected = f"Bearer {token}".encode() if token else None

    @property
    def required(self) -> bool:
        return self._expected is not None

    def ok(self, authorization: str | None) -> bool:
        if self._expected is None:
            return True
        if not authorization:
            return False
        return hmac.compare_digest(authorization.strip().encode("utf-8", "replace"), self._expected)


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(hosts: list[str], *, token: str | None, insecure: bool) -> None:
    """Raise ``ValueError`` when a non-loopback address is bound with neither a token nor ``insecure``."""
    exposed = [h for h in hosts if not is_loopback(h)]
    if exposed and not token and not insecure:
        raise ValueError(
            f"refusing to listen on {', '.join(exposed)} without authentication: pass --token (or set "
            "OTEL_RUNJOURNAL_SERVE_TOKEN) so senders must present it, or --insecure to accept anyone"
        )


def split_endpoint(text: str, default_port: int) -> tuple[str, int]:
    """``host:port`` / ``[v6]:port`` / ``:port`` / ``host`` → (host, port); ``ValueError`` if malformed."""
    text = text.strip()
    if text.startswith("http://") or text.startswith("https://"):
        raise ValueError(f"give host:port, not a URL: {text!r}")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""
    host = host or "127.0.0.1"
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise ValueError(f"not a port in {text!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range in {text!r}")
    return host, port


@dataclass(frozen=True)
class Tls:
    """A certificate (chain) and its key, PEM, as files (HTTP) and bytes (gRPC)."""

    cert_file: str
    key_file: str
    cert: bytes
    key: bytes

    def server_context(self) -> ssl.SSLContext:
        """The HTTP receiver's context: TLS 1.2+, the standard library's server defaults."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def load_tls(cert_file: str | None, key_file: str | None) -> Tls | None:
    """Read and check a certificate / key pair (``ValueError`` in one line if unusable); None: plain."""
    if not cert_file and not key_file:
        return None
    if not cert_file or not key_file:
        raise ValueError("TLS needs both a certificate (--tls-cert) and its key (--tls-key)")
    data = []
    for what, path in (("certificate", cert_file), ("key", key_file)):
        try:
            with open(path, "rb") as f:
                data.append(f.read())
        except OSError as exc:
            raise ValueError(f"cannot read the TLS {what} {path}: {exc.strerror or exc}") from None
    tls = Tls(cert_file, key_file, data[0], data[1])
    try:
        tls.server_context()
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(
            f"{cert_file} and {key_file} are not a PEM certificate and its private key ({exc})"
        ) from None
    return tls
