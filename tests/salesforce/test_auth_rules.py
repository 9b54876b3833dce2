"""OAuth as real orgs apply it (issue 19, item 5; REAL-ORG-FACTS.md §5, R24, R25).

The JWT `aud` is its own setting, login or test by default whatever host the assertion is posted
to; the client-credentials flow needs the org's My Domain and says so when it is missing.
"""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from chronoforce.config import SalesforceConfig, Secrets
from chronoforce.salesforce.auth import SalesforceAuthError, jwt_audience
from chronoforce.salesforce.connection import connect
from chronoforce.sandbox.salesforce import DEMO_USERNAME

from .conftest import DEMO_CLIENT_SECRET, JWT_CLIENT_ID


@pytest.mark.parametrize(
    ("login_url", "audience"),
    [
        ("https://login.salesforce.com", "https://login.salesforce.com"),
        ("https://test.salesforce.com", "https://test.salesforce.com"),
        ("https://acme.my.salesforce.com", "https://login.salesforce.com"),
        ("https://acme--uat.sandbox.my.salesforce.com", "https://test.salesforce.com"),
    ],
)
def test_the_default_jwt_audience_follows_the_host(login_url: str, audience: str) -> None:
    assert jwt_audience(SalesforceConfig(login_url=login_url)) == audience
    explicit = SalesforceConfig(login_url=login_url, jwt_audience="https://example.my.site.com/")
    assert jwt_audience(explicit) == "https://example.my.site.com"


def test_jwt_posted_to_my_domain_carries_the_login_audience(org, jwt_app):
    """The sandbox (like orgs that refuse a My Domain `aud`) takes login/test only."""
    secrets = Secrets(sf_private_key=SecretStr(jwt_app[0]))
    config = org.config(auth="jwt", client_id=JWT_CLIENT_ID, username=DEMO_USERNAME)
    connect(config, secrets).close()  # login_url is the sandbox, i.e. the org's My Domain
    mine = org.config(
        auth="jwt", client_id=JWT_CLIENT_ID, username=DEMO_USERNAME, jwt_audience=org.url
    )
    with pytest.raises(SalesforceAuthError, match="audience is invalid"):
        connect(mine, secrets)


def test_client_credentials_without_my_domain_is_a_configuration_error(org):
    secrets = Secrets(sf_client_secret=SecretStr(DEMO_CLIENT_SECRET))
    org.sandbox.reset_stats()
    for instance_url in ("", "https://login.salesforce.com", "https://test.salesforce.com/"):
        with pytest.raises(SalesforceAuthError) as caught:
            connect(org.config(instance_url=instance_url), secrets)
        assert caught.value.code == "CONFIG_MY_DOMAIN_MISSING"
        assert caught.value.field == "salesforce.instance_url"
        assert "My Domain" in caught.value.message
    assert org.sandbox.stats()["auth"] == 0, "nothing is posted before the setting is right"


def test_the_shared_login_host_refuses_client_credentials(org):
    secrets = Secrets(sf_client_secret=SecretStr(DEMO_CLIENT_SECRET))
    shared = org.config(instance_url=f"{org.url}/login.salesforce.com")  # the sandbox's login host
    with pytest.raises(SalesforceAuthError) as caught:
        connect(shared, secrets)
    assert (caught.value.code, caught.value.message) == (
        "invalid_grant",
        "request not supported on this domain",
    )
