"""The API's shared state on SQLite and PostgreSQL: the rate cache and issued tokens."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from chronoforce.config import load_settings
from chronoforce.domain.models import Rate
from chronoforce.pipeline.rates import RateCacheTable, band_of
from chronoforce.store.db import Store
from chronoforce.store.models import ApiToken
from chronoforce.web.api_auth import _from_token, issue_token
from chronoforce.web.api_config import ApiClient, api_config, new_client_credentials, sha256_hex

NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
RATES = [Rate("01", Decimal("12.30"), Decimal("14.76"), Decimal("2.46"))]


def test_the_rate_cache_is_shared_replaced_and_expires(db_url: str) -> None:
    store = Store(db_url)
    try:
        cache = RateCacheTable(store, ttl_s=600)
        assert cache.get("k", NOW) is None
        cache.put("k", RATES, NOW)
        # Another process (another Store on the same database) sees it.
        other = RateCacheTable(Store(db_url), ttl_s=600)
        assert other.get("k", NOW + dt.timedelta(seconds=599)) == RATES
        assert other.get("k", NOW + dt.timedelta(seconds=600)) is None
        newer = [Rate("16", Decimal("9.90"), Decimal("11.88"), Decimal("1.98"))]
        cache.put("k", newer, NOW + dt.timedelta(seconds=700))  # an upsert, not a duplicate
        assert other.get("k", NOW + dt.timedelta(seconds=800)) == newer
        other.store.dispose()
    finally:
        store.dispose()


def test_a_zero_ttl_turns_the_cache_off(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    cache = RateCacheTable(store, ttl_s=0)
    cache.put("k", RATES, NOW)
    assert cache.get("k", NOW) is None
    store.dispose()


@pytest.mark.parametrize(
    ("weight", "band", "top"),
    [
        ("0.2", 1.0, "1"),
        ("1", 1.0, "1"),
        ("1.01", 1.0, "2"),
        ("2.4", 0.5, "2.5"),
        ("29.9", 5, "30"),
    ],
)
def test_a_weight_is_quoted_at_the_top_of_its_band(weight: str, band: float, top: str) -> None:
    assert band_of(Decimal(weight), band) == Decimal(top)


def test_tokens_are_stored_as_digests_and_expire(db_url: str) -> None:
    store = Store(db_url)
    try:
        client = ApiClient(id="sf", scopes=("rates",))
        token = issue_token(store, client, ("rates",), ttl_s=60)
        with store.session() as session:
            [row] = session.query(ApiToken).all()
            assert row.digest == sha256_hex(token) and token not in (row.digest, row.client_id)
        caller = _from_token(store, token)
        assert caller is not None and caller.client_id == "sf" and caller.scopes == {"rates"}
        assert _from_token(store, token + "x") is None
        with store.session() as session:
            session.query(ApiToken).update({"expires_at": dt.datetime.now(dt.UTC)})
        assert _from_token(store, token) is None
    finally:
        store.dispose()


def test_the_api_section_names_the_bad_key() -> None:
    with pytest.raises(Exception, match=r"api\.clients\.0\.key_sha256"):
        api_config({"clients": [{"id": "sf", "key_sha256": "not-a-digest"}]})
    with pytest.raises(Exception, match=r"api\.rate_cache_ttl_s"):
        api_config({"rate_cache_ttl_s": -1})
    with pytest.raises(Exception, match=r"api\.clients.*twice"):
        api_config({"clients": [{"id": "sf"}, {"id": "sf"}]})


def test_a_full_api_section_loads_from_the_yaml_file(tmp_path: Path) -> None:
    # Every key the docs show passes the file's secret-key guard (hashes are not secrets).
    made = new_client_credentials()
    config_file = tmp_path / "chronoforce.yaml"
    config_file.write_text(
        yaml.safe_dump(
            {
                "api": {
                    "clients": [
                        {
                            "id": "salesforce-prod",
                            "scopes": ["rates", "relay"],
                            "client_hash": made["client_hash"],
                            "key_sha256": made["key_sha256"],
                        }
                    ],
                    "access_ttl_s": 600,
                    "rate_cache_ttl_s": 300,
                    "weight_band_kg": 0.5,
                    "return_product": "4U",
                    "return_case_type": "Return",
                    "cost_includes_vat": False,
                }
            }
        )
    )
    settings = load_settings(config_file, environ={})
    config = api_config(settings.api)
    assert config.access_ttl_s == 600 and config.clients[0].scopes == ("rates", "relay")
    assert made["api_key"] not in config_file.read_text()
