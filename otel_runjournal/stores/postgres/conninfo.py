"""PostgreSQL locations and connection errors as text: masking the password, telling a refusal from
no answer.

Pure string handling (no psycopg import), so :mod:`..location` can mask a location it only parses.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

SCHEMES = ("postgresql", "postgres")
MASK = "***"
_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def is_postgres(location: str) -> bool:
    """Whether ``location`` is a ``postgresql://`` (or ``postgres://``) URL."""
    return location.strip().lower().startswith(tuple(f"{s}://" for s in SCHEMES))


def secrets_of(location: str) -> list[str]:
    """The password(s) written in ``location`` (URL user info or ``password=`` parameters)."""
    found: list[str] = []
    try:
        parts = urlsplit(location)
        if parts.password:
            found.append(parts.password)
    except ValueError:
        pass
    for match in _KEYWORD_PASSWORD.finditer(location):
        value = match.group(2).split("&", 1)[0].strip("'")
        if value:
            found.append(value)
    return found


def mask(location: str) -> str:
    """``location`` with every password replaced by ``***`` (for reprs, logs and error messages)."""
    text = location
    try:
        parts = urlsplit(text)
        if parts.password is not None:
            host = parts.hostname or ""
            if ":" in host:  # an IPv6 literal
                host = f"[{host}]"
            user = parts.username or ""
            netloc = f"{user}:{MASK}@{host}" + (f":{parts.port}" if parts.port else "")
            text = urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        pass
    text = _KEYWORD_PASSWORD.sub(lambda m: m.group(1) + MASK, text)
    return text


def scrub(message: str, location: str) -> str:
    """``message`` (e.g. a driver error) with any password of ``location`` masked, on one line."""
    for secret in secrets_of(location):
        message = message.replace(secret, MASK)
    return " ".join(message.split())


_TRANSIENT = ("starting up", "shutting down", "too many", "recovery mode", "remaining connection slots")


def refused(message: str) -> bool:
    """Whether a connection error says the server answered no (wrong role, password or database), as
    opposed to no answer or a brief unavailability (restarting, out of connection slots)."""
    return "FATAL:" in message and not any(fragment in message for fragment in _TRANSIENT)
