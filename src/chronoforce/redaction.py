"""Redaction of secrets in anything chronoforce logs or stores: dicts, JSON, XML, form bodies.

Applied by the logging pipeline and by every adapter before a payload is kept. It must never
raise and never return a known secret value, whatever shape the text has.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"

# Field names whose values are secrets wherever they appear (case-insensitive, substring match).
SECRET_KEY_PARTS = (
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "private_key",
    "privatekey",
    "api_key",
    "apikey",
    "session_id",
    "sessionid",
    "assertion",
    "client_assertion",
    "accesstoken",
)
_KEYS = "|".join(re.escape(p) for p in SECRET_KEY_PARTS)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # XML elements: <password>…</password>, <ns:sessionId>…</ns:sessionId>
    (
        re.compile(
            rf"(<(?:[\w.-]+:)?[\w.-]*(?:{_KEYS})[\w.-]*(?:\s[^>]*)?>)([^<]*)(</)", re.IGNORECASE
        ),
        rf"\g<1>{MASK}\g<3>",
    ),
    # JSON: "password": "…"
    (
        re.compile(rf'("[\w.-]*(?:{_KEYS})[\w.-]*"\s*:\s*")((?:[^"\\]|\\.)*)(")', re.IGNORECASE),
        rf"\g<1>{MASK}\g<3>",
    ),
    # form / query strings and key=value text: password=…&
    (
        re.compile(rf"(\b[\w.-]*(?:{_KEYS})[\w.-]*=)([^&\s\"'<>]+)", re.IGNORECASE),
        rf"\g<1>{MASK}",
    ),
    # HTTP auth headers and bearer tokens anywhere
    (re.compile(r"(\bBearer\s+)[A-Za-z0-9._~+/=!-]+", re.IGNORECASE), rf"\g<1>{MASK}"),
    # PEM private keys
    (
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL
        ),
        f"-----PRIVATE KEY {MASK}-----",
    ),
)

_known_lock = threading.Lock()
_known_values: frozenset[str] = frozenset()


def register_secrets(values: Iterable[str | None]) -> None:
    """Remember secret values (from configuration) so they are masked even in free text."""
    global _known_values
    fresh = {v for v in values if v and len(v) >= 4}
    with _known_lock:
        _known_values = _known_values | fresh


def is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(part in lowered for part in SECRET_KEY_PARTS)


@functools.lru_cache(maxsize=8)
def _known_pattern(values: frozenset[str]) -> re.Pattern[str] | None:
    # Longest first: a secret containing another is masked whole, not around the shorter one.
    ordered = sorted(values, key=len, reverse=True)
    return re.compile("|".join(re.escape(v) for v in ordered)) if ordered else None


def redact_text(text: str) -> str:
    """Mask secrets inside free text, XML, JSON or form-encoded payloads."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    known = _known_pattern(_known_values)
    # Masking can join what surrounds a secret into another one (`k` + `***`): mask until none
    # is left. Each pass shortens the text (values have 4+ characters, the mask 3): it ends.
    while known is not None and known.search(text):
        text = known.sub(MASK, text)
    return text


def redact(value: Any) -> Any:
    """Redact a structure recursively: secret keys masked, strings scanned."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return redact_text(bytes(value).decode("utf-8", "replace"))
    if isinstance(value, Mapping):
        return {
            (redact_text(k) if isinstance(k, str) else k): (
                MASK if isinstance(k, str) and is_secret_key(k) and v else redact(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(redact(v) for v in value)
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return MASK if str(value) in _known_values else value  # a numeric password
    # Anything else (an exception, a model…) is rendered through its repr by the loggers: keep
    # the object unless that text holds a secret.
    try:
        shown = repr(value)
    except Exception:  # a broken __repr__: the renderer will fail on it too, not our concern
        return value
    masked = redact_text(shown)
    return value if masked == shown else masked
