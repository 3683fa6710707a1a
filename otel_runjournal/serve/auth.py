"""Who may send: loopback by default; elsewhere only with a bearer token or an explicit ``--insecure``."""

from __future__ import annotations

import hmac
import ipaddress


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
