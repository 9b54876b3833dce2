"""A logged-in `simple_salesforce.Salesforce`, re-authenticated once on INVALID_SESSION_ID.

`Connection.call` runs one API call: the API reserve is checked first, an expired session is
renewed and the call repeated once, and every failure leaves as a chronoforce error type. It
never logs a token and never retries anything but an expired session (the pipeline retries).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession

from chronoforce.config import SalesforceConfig, Secrets
from chronoforce.domain.errors import (
    ChronoforceError,
    RateLimitedError,
    SalesforceUnavailableError,
    SalesforceValidationError,
    SessionExpiredError,
)
from chronoforce.logs import get_logger
from chronoforce.redaction import redact_text
from chronoforce.salesforce.auth import Token, TokenSource, token_source
from chronoforce.salesforce.limits import DEFAULT_RETRY_AFTER_S, ApiBudget
from chronoforce.salesforce.transport import OnCall, SalesforceSession

T = TypeVar("T")
log = get_logger(component="salesforce")

# Error codes that mean "try again later" rather than "this data is wrong" (REST API docs).
TRANSIENT_CODES = frozenset(
    {"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG"}
)


def _first_error(content: Any) -> dict[str, Any]:
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return content[0]
    if isinstance(content, dict):
        return content
    return {}


def translate(exc: SalesforceError, operation: str = "") -> ChronoforceError:
    """A simple-salesforce error as the chronoforce error type it stands for."""
    first = _first_error(exc.content)
    code = str(first.get("errorCode") or first.get("statusCode") or f"HTTP_{exc.status}")
    message = str(first.get("message") or exc.content or f"HTTP {exc.status}")[:1000]
    fields = first.get("fields") or []
    payload = redact_text(json.dumps(exc.content, default=str)[:32_000])
    common: dict[str, Any] = {"code": code, "operation": operation, "response_payload": payload}
    error: ChronoforceError
    if exc.status == 403 and code == "REQUEST_LIMIT_EXCEEDED":
        error = RateLimitedError(message, **common)
        error.retry_after = DEFAULT_RETRY_AFTER_S
    elif code in TRANSIENT_CODES or exc.status >= 500:
        error = SalesforceUnavailableError(message, **common)
    elif exc.status == 401:
        error = SessionExpiredError(message, **common)
    else:
        field = ",".join(str(f) for f in fields) if isinstance(fields, list) else str(fields)
        error = SalesforceValidationError(message, field=field, **common)
    return error


class Connection:
    """One org: a token source, an instrumented HTTP session, and the Salesforce object."""

    def __init__(self, config: SalesforceConfig, tokens: TokenSource, session: SalesforceSession):
        self.config = config
        self.session = session
        self._tokens = tokens
        self._lock = threading.Lock()
        self.token = self._tokens(session)
        self.sf = self._salesforce(self.token)

    def _salesforce(self, token: Token) -> Salesforce:
        return Salesforce(
            session_id=token.access_token,
            instance_url=token.instance_url,
            version=self.config.api_version,
            session=self.session,
            object_pairs_hook=dict,
        )

    def close(self) -> None:
        self.session.close()

    @property
    def instance_url(self) -> str:
        return f"https://{self.sf.sf_instance}"

    def reauthenticate(self, stale_session_id: str) -> None:
        """New token, unless another thread already renewed the stale one."""
        with self._lock:
            if self.sf.session_id != stale_session_id:
                return
            token = self._tokens(self.session)
            self.token = Token(
                token.access_token,
                token.instance_url,
                token.issued_at,
                token.identity_url or self.token.identity_url,
            )
            fresh = self._salesforce(token)
            # Swap in place so every holder of `self.sf` uses the new token.
            self.sf.session_id = fresh.session_id
            self.sf.sf_instance = fresh.sf_instance
            self.sf.base_url = fresh.base_url
            self.sf.headers = fresh.headers
            log.info("salesforce session renewed", instance=self.instance_url)

    def call(self, operation: str, fn: Callable[[Salesforce], T], *, write: bool = False) -> T:
        """Run `fn(sf)` once (twice after an expired session); errors as chronoforce types."""
        self.session.budget.check(write=write)
        for attempt in (1, 2):
            stale = self.sf.session_id
            try:
                return fn(self.sf)
            except SalesforceExpiredSession as exc:
                if attempt == 2:
                    raise SessionExpiredError(
                        "session still refused after re-authentication", operation=operation
                    ) from exc
                self.reauthenticate(stale)
            except SalesforceError as exc:
                error = translate(exc, operation)
                if isinstance(error, RateLimitedError):  # the pause this process is told to use
                    error.retry_after = self.session.budget.retry_after_s
                raise error from exc
            except requests.RequestException as exc:
                raise SalesforceUnavailableError(
                    f"Salesforce unreachable: {type(exc).__name__}", operation=operation
                ) from exc
        raise AssertionError("unreachable")  # pragma: no cover


def connect(
    config: SalesforceConfig,
    secrets: Secrets,
    *,
    on_call: OnCall | None = None,
    tokens: TokenSource | None = None,
    pause_s: float | None = None,
) -> Connection:
    """Log in with the flow `config.auth` names; the session trusts `config.ca_file` if set.
    `pause_s`: the budget's pause once exhausted (None: its default)."""
    budget = ApiBudget(config.api_reserve_fraction)
    if pause_s is not None:
        budget = ApiBudget(config.api_reserve_fraction, retry_after_s=pause_s)
    session = SalesforceSession(
        ca_file=config.ca_file,
        budget=budget,
        on_call=on_call,
    )
    try:
        return Connection(config, tokens or token_source(config, secrets), session)
    except BaseException:
        session.close()  # no pooled connection outlives a refused login
        raise
