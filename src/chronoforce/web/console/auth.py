"""Console login: argon2 password checks, signed session cookies, CSRF tokens, login throttling.

The session cookie holds the username, the session's CSRF token and an expiry, signed with
HMAC-SHA256 under `console_session_key`; nothing secret is in it and nothing is kept server-side.
It must never log a password or a cookie, and never say whether a username exists.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from chronoforce.web.console.settings import ConsoleConfig

COOKIE = "cf_session"
LOGIN_CSRF_COOKIE = "cf_login_csrf"

_hasher = PasswordHasher()  # argon2id with argon2-cffi's RFC 9106 low-memory defaults


def hash_password(password: str) -> str:
    return _hasher.hash(password)


# Verifying against this when the username is unknown costs the same time as a real check.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Session:
    username: str
    csrf: str
    expires: float

    def csrf_ok(self, offered: str) -> bool:
        return bool(offered) and hmac.compare_digest(self.csrf.encode(), offered.encode())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    """Cookie value ⇄ Session; a tampered, foreign or expired cookie reads as no session."""

    def __init__(self, key: bytes, now: Callable[[], float] = time.time) -> None:
        # Derive a purpose-bound key so the configured secret is never used raw.
        self._key = hmac.new(key, b"chronoforce console session v1", hashlib.sha256).digest()
        self.now = now

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest())

    def issue(self, username: str, lifetime_s: float) -> tuple[Session, str]:
        session = Session(username, secrets.token_urlsafe(24), self.now() + lifetime_s)
        body = _b64(
            json.dumps({"u": session.username, "c": session.csrf, "e": session.expires}).encode()
        )
        return session, f"{body}.{self._mac(body)}"

    def read(self, cookie: str | None) -> Session | None:
        if not cookie or cookie.count(".") != 1:
            return None
        body, mac = cookie.split(".")
        if not hmac.compare_digest(self._mac(body).encode(), mac.encode()):
            return None
        try:
            data = json.loads(_unb64(body))
            session = Session(str(data["u"]), str(data["c"]), float(data["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires > self.now() else None


class LoginThrottle:
    """At most `attempts` failed logins per (username, client address) in a sliding window."""

    def __init__(
        self, attempts: int, window_s: float, now: Callable[[], float] = time.monotonic
    ) -> None:
        self.attempts, self.window_s, self.now = attempts, window_s, now
        self._failures: defaultdict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        failures = self._failures[key]
        while failures and failures[0] <= self.now() - self.window_s:
            failures.popleft()
        return failures

    def blocked(self, username: str, client: str) -> bool:
        with self._lock:
            return len(self._recent((username.lower(), client))) >= self.attempts

    def failed(self, username: str, client: str) -> None:
        with self._lock:
            self._recent((username.lower(), client)).append(self.now())

    def succeeded(self, username: str, client: str) -> None:
        with self._lock:
            self._failures.pop((username.lower(), client), None)


def check_password(config: ConsoleConfig, username: str, password: str) -> bool:
    """True when the user is configured and the password matches its hash."""
    user = config.user(username)
    try:
        return _hasher.verify(user.hash if user else _DUMMY_HASH, password) and user is not None
    except (VerificationError, InvalidHashError):
        return False
