"""The API budget: Sforce-Limit-Info parsed, exported as gauges, and the reserve enforced."""

from __future__ import annotations

import datetime as dt

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from prometheus_client import REGISTRY

from chronoforce.domain.errors import RateLimitedError
from chronoforce.salesforce.auth import jwt_assertion
from chronoforce.salesforce.changes import parse_modstamp, watermark_of
from chronoforce.salesforce.limits import ApiBudget, parse_limit_info
from chronoforce.salesforce.transport import call_kind


def test_limit_info_header_is_parsed_with_or_without_per_app_usage():
    assert parse_limit_info("api-usage=18/5000").used == 18
    usage = parse_limit_info("api-usage=25/5000; per-app-api-usage=17/250(appName=x)")
    assert (usage.used, usage.max, usage.remaining) == (25, 5000, 4975)
    assert parse_limit_info("nothing here") is None


def test_usage_is_exported_as_prometheus_gauges():
    ApiBudget().observe("api-usage=123/4567")
    assert REGISTRY.get_sample_value("chronoforce_salesforce_api_used") == 123
    assert REGISTRY.get_sample_value("chronoforce_salesforce_api_max") == 4567


def test_writes_stop_at_the_reserve_and_reads_at_half_of_it():
    budget = ApiBudget(reserve_fraction=0.2)
    budget.observe("api-usage=850/1000")  # 150 left: under the 200 reserve, over 100
    with pytest.raises(RateLimitedError) as caught:
        budget.check(write=True)
    assert caught.value.retry_after and caught.value.retry_after > 0
    assert caught.value.code == "API_RESERVE"
    budget.check(write=False)
    budget.observe("api-usage=950/1000")
    with pytest.raises(RateLimitedError):
        budget.check(write=False)


def test_unknown_usage_never_blocks():
    ApiBudget(reserve_fraction=0.9).check(write=True)


@pytest.mark.parametrize(
    ("method", "path", "kind"),
    [
        ("POST", "/services/oauth2/token", "auth"),
        ("GET", "/services/data/v61.0/query/?q=SELECT", "query"),
        ("GET", "/services/data/v61.0/query/01gxx-2000", "query"),
        ("PATCH", "/services/data/v61.0/composite/sobjects", "collection"),
        ("GET", "/services/data/v61.0/sobjects/Order/describe", "describe"),
        ("POST", "/services/data/v61.0/sobjects/ContentVersion", "file"),
        ("GET", "/services/data/v61.0/sobjects/ContentVersion/068000000000001", "record"),
    ],
)
def test_calls_are_counted_by_kind(method, path, kind):
    assert call_kind(method, "https://org.example" + path) == kind


def test_jwt_assertion_claims_and_expiry_within_three_minutes():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    now = dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.UTC)
    token = jwt_assertion("client", "user@example.com", "https://login.example/", pem, now=now)
    claims = jwt.decode(
        token,
        key.public_key(),
        algorithms=["RS256"],
        audience="https://login.example",
        options={"verify_exp": False},
    )
    assert (claims["iss"], claims["sub"], claims["aud"]) == (
        "client",
        "user@example.com",
        "https://login.example",
    )
    assert 0 < claims["exp"] - now.timestamp() <= 180


def test_modstamps_in_salesforce_and_watermark_forms_compare_alike():
    assert watermark_of("2024-05-01T10:00:00.000+0000") == "2024-05-01T10:00:00.000Z"
    assert watermark_of("2024-05-01T12:00:00.5+02:00") == "2024-05-01T10:00:00.500Z"
    assert parse_modstamp("2024-05-01T10:00:00.000Z") == dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)
