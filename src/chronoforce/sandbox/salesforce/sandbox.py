"""`SalesforceSandbox`: one org (SQLite), its HTTPS app, and the Python helpers tests use.

Everything a test needs to observe or steer (seed, faults, budget, clock, stats, change log) is a
method here and an admin endpoint. It never reads secrets from the environment.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from chronoforce.sandbox.salesforce.app import build_app
from chronoforce.sandbox.salesforce.auth import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_PASSWORD,
    DEMO_SECURITY_TOKEN,
    DEMO_USERNAME,
    JWT_AUDIENCES,
    Auth,
    ConnectedApp,
    SandboxUser,
)
from chronoforce.sandbox.salesforce.describe import describe_object
from chronoforce.sandbox.salesforce.errors import ApiError
from chronoforce.sandbox.salesforce.faults import Faults
from chronoforce.sandbox.salesforce.ids import make_id
from chronoforce.sandbox.salesforce.org import Org, sf_time
from chronoforce.sandbox.salesforce.records import to_json
from chronoforce.sandbox.salesforce.rest import Reply, Request, Rest
from chronoforce.sandbox.salesforce.schema import (
    API_VERSION,
    ORDER_ONLY,
    default_metadata_dir,
    load_schema,
    restrict,
)
from chronoforce.sandbox.salesforce.store import Store

CATEGORIES = (
    "auth",
    "query",
    "describe",
    "sobject_read",
    "sobject_create",
    "sobject_update",
    "sobject_delete",
    "sobject_upsert",
    "collections",
    "composite",
    "files",
    "limits",
    "other",
)


class SalesforceSandbox:
    def __init__(
        self,
        db_path: str | Path = ":memory:",
        metadata_dir: Path | None = None,
        token_ttl: dt.timedelta = dt.timedelta(hours=2),
        daily_api_limit: int = 100_000,
        seed: int = 0,
        connected_apps: list[ConnectedApp] | None = None,
        users: list[SandboxUser] | None = None,
        *,
        order_only: bool = False,
        hidden_objects: Iterable[str] = (),
        hidden_fields: Mapping[str, Iterable[str]] | None = None,
        read_only_fields: Mapping[str, Iterable[str]] | None = None,
        unknown_field_in_collection: Literal["request", "record"] = "request",
        jwt_audiences: Iterable[str] = JWT_AUDIENCES,
        short_pages: float = 0.0,
        view_setup: bool = True,
    ) -> None:
        """`order_only`: an org without Order Management / Field Service (no Shipment…);
        `hidden_objects` / `hidden_fields`: what the integration user may not read (answers
        like a missing object or field). `token_ttl` is the idle session timeout.
        `short_pages`: the share of query pages cut shorter than the batch size (seeded)."""
        hidden = frozenset(hidden_objects) | (ORDER_ONLY if order_only else frozenset())
        fields = {k: frozenset(v) for k, v in (hidden_fields or {}).items()}
        frozen = {k: frozenset(v) for k, v in (read_only_fields or {}).items()}
        self.order_only = order_only
        self.schema = restrict(
            load_schema(metadata_dir or default_metadata_dir(), shipment=not order_only),
            hidden,
            fields,
            frozen,
        )
        self.store = Store(db_path, self.schema)
        self._offset = dt.timedelta(0)
        self._lock = threading.Lock()
        self.org_id = make_id("00D", 1)
        self.users = users or [SandboxUser(DEMO_USERNAME, DEMO_PASSWORD, DEMO_SECURITY_TOKEN)]
        self.user_ids = {
            u.username.lower(): make_id("005", i + 1) for i, u in enumerate(self.users)
        }
        self.user_id = self.user_ids[self.users[0].username.lower()]
        self.faults = Faults(seed)
        self.org = Org(self.store, self.now, self.user_id, write_hook=self.faults.on_write)
        self.org.shorten_pages(short_pages, seed)
        apps = [ConnectedApp(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET), *(connected_apps or [])]
        self.auth = Auth(
            apps,
            self.users,
            self.user_ids,
            self.org_id,
            token_ttl.total_seconds(),
            lambda: self.now().timestamp(),
            jwt_audiences=tuple(jwt_audiences),
        )
        self.rest = Rest(self.org, self.limits)
        self.rest.collections.unknown_field = unknown_field_in_collection
        self.rest.spend = self._spend
        self.rest.view_setup = view_setup
        self.api_max = daily_api_limit
        self.api_used = 0
        self._stats: Counter[str] = Counter()
        self._ensure_users()
        self.app = build_app(self)

    # --- clock -------------------------------------------------------------------------------

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self._offset

    def advance_clock(self, delta: dt.timedelta) -> dt.datetime:
        if delta < dt.timedelta(0):
            raise ValueError("the sandbox clock only moves forward")
        self._offset += delta
        return self.now()

    # --- requests ----------------------------------------------------------------------------

    def validate_token(self, token: str) -> bool:
        return self.auth.session(token) is not None

    def count(self, category: str) -> None:
        with self._lock:
            self._stats[category] += 1

    def charge(self, category: str) -> ApiError | None:
        """Spend one API request from the daily budget; the refusal when it is spent."""
        with self._lock:
            if self.api_used >= self.api_max:
                self._stats["refused"] += 1
                return ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            self.api_used += 1
            self._stats[category] += 1
        return None

    def _spend(self, count: int) -> None:
        with self._lock:
            self.api_used += count

    def limit_headers(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self.api_used}/{self.api_max}"}

    def limits(self) -> dict[str, Any]:
        remaining = max(0, self.api_max - self.api_used)
        return {
            "DailyApiRequests": {"Max": self.api_max, "Remaining": remaining},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
            "DataStorageMB": {"Max": 1024, "Remaining": 1024},
            "FileStorageMB": {"Max": 1024, "Remaining": 1024},
        }

    def serve(self, version: str, request: Request) -> Reply:
        with self.store.lock:
            self.org.version = version
            token = API_VERSION.set(float(version))
            try:
                return self.rest.dispatch(request)
            finally:
                API_VERSION.reset(token)

    # --- helpers for tests and the admin endpoints -------------------------------------------

    def _ensure_users(self) -> None:
        obj = self.schema["User"]
        now = sf_time(self.now())
        for index, user in enumerate(self.users):
            user_id = make_id("005", index + 1)
            if self.store.fetch(obj, user_id) is None:
                self.store.insert(
                    obj,
                    index + 1,
                    {
                        "Id": user_id,
                        "Username": user.username,
                        "LastName": "Integration",
                        "FirstName": "chronoforce",
                        "Name": "chronoforce Integration",
                        "Email": "integration@chronoforce.example",
                        "IsActive": True,
                        "IsDeleted": False,
                        "CreatedDate": now,
                        "LastModifiedDate": now,
                        "SystemModstamp": now,
                        "CreatedById": user_id,
                        "LastModifiedById": user_id,
                    },
                )
                self.store._numbers["User"] = max(self.store._numbers["User"], index + 1)

    def seed(
        self, orders: int = 100, seed: int = 0, showcase: bool = False, location: str = ""
    ) -> dict[str, list[str]]:
        """`location`: every third order names it in Chronopost_Location__c (issue 23)."""
        from chronoforce.sandbox.salesforce.seed import seed_org

        return seed_org(self.org, orders=orders, seed=seed, showcase=showcase, location=location)

    def reset(self) -> None:
        self.store.reset()
        self._ensure_users()

    def records(self, sobject: str) -> list[dict[str, Any]]:
        obj = self.org.sobject(sobject)
        return [
            {name: to_json(obj.fields[name], value) for name, value in row.items()}
            for row in self.store.rows(obj)
        ]

    def set_faults(
        self,
        lock_row_share: float | None = None,
        latency: float | None = None,
        status_503_share: float | None = None,
        seed: int | None = None,
    ) -> dict[str, Any]:
        return self.faults.configure(lock_row_share, latency, status_503_share, seed)

    def system_update(self, sobject: str, record_id: str) -> None:
        """A change by the platform (roll-up, async job): SystemModstamp moves alone, as
        HELP:000387261 describes; LastModifiedDate stays (REAL-ORG-FACTS.md R16)."""
        with self.store.lock:
            self.org.update(sobject, record_id, {})

    def expire_sessions(self) -> None:
        self.auth.expire_all()

    def issue_refresh_token(self, client_id: str, username: str | None = None) -> str:
        return self.auth.issue_refresh_token(client_id, username or self.users[0].username)

    def set_api_budget(self, max: int | None = None, used: int | None = None) -> None:
        with self._lock:
            if max is not None:
                self.api_max = int(max)
            if used is not None:
                self.api_used = int(used)

    def stats(self) -> dict[str, int]:
        with self._lock:
            counts = {c: self._stats.get(c, 0) for c in CATEGORIES}
            counts["refused"] = self._stats.get("refused", 0)
        counts["total"] = sum(v for k, v in counts.items() if k not in ("auth", "refused"))
        return counts

    def reset_stats(self) -> None:
        with self._lock:
            self._stats.clear()

    def describe(self, sobject: str) -> dict[str, Any]:
        return describe_object(self.org.sobject(sobject), self.schema, self.org.version)

    def topics(self) -> list[str]:
        return sorted(o.topic for o in self.schema.values() if o.name != "User")

    def read_changes(
        self, topic: str, after_replay_id: int | None, limit: int
    ) -> list[tuple[int, float, dict[str, Any]]]:
        return self.store.read_changes(topic, after_replay_id, limit, self.org.retention_start())

    def latest_replay_id(self, topic: str) -> int | None:
        return self.store.replay_bound(topic, True, self.org.retention_start())

    def earliest_replay_id(self, topic: str) -> int | None:
        return self.store.replay_bound(topic, False, self.org.retention_start())

    def summary(self) -> dict[str, Any]:
        counts = {
            name: int(
                self.store.execute(f'SELECT count(*) FROM {obj.table} WHERE "IsDeleted" = 0')[0][0]
            )
            for name, obj in self.store.stored().items()
        }
        return {
            "org_id": self.org_id,
            "now": self.now().isoformat(),
            "records": counts,
            "limits": self.limits()["DailyApiRequests"],
            "faults": self.faults.settings(),
            "stats": self.stats(),
        }
