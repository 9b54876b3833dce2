"""Rates through the official-schema client and relay points through our own WSDL (the relay
service is not in the reference XSDs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import zeep

from chronoforce.sandbox.chronopost.rates import price

DEMO = {"accountNumber": "19869502", "password": "255562"}


def test_quick_cost_prices_a_product_from_the_table_with_vat(
    official: Callable[[str], Any],
) -> None:
    client = official("quickcost")
    result = client.service.quickCost(
        **DEMO, depCode="75001", arrCode="06500", weight="4.0", productCode="01", type="M"
    )
    client.assert_valid_response()
    expected = price("01", "FR", 4.0)
    assert result.errorCode == 0 and result.zone == "FR"
    assert result.amount == pytest.approx(expected)
    assert result.amountTVA == pytest.approx(round(expected * 0.2, 2))
    assert result.amountTTC == pytest.approx(result.amount + result.amountTVA)
    assert result.assurance.plafond > 0


def test_quick_cost_to_corsica_costs_more(official: Callable[[str], Any]) -> None:
    client = official("quickcost").service
    mainland = client.quickCost(
        **DEMO, depCode="75001", arrCode="69001", weight="1", productCode="1", type="M"
    )
    corsica = client.quickCost(
        **DEMO, depCode="75001", arrCode="20000", weight="1", productCode="1", type="M"
    )
    assert corsica.zone == "CORSE" and corsica.amount > mainland.amount


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        # [D] §4.3.6: 3 bad password, 4 product not for this destination, 5 no price
        ({"password": "bad"}, 3),
        ({"weight": "heavy"}, 5),
        ({"weight": "45"}, 5),
        ({"arrCode": "00000"}, 4),
        ({"productCode": "44"}, 4),
        ({"productCode": "86", "weight": "25"}, 4),
    ],
)
def test_quick_cost_errors_come_in_the_body(
    official: Callable[[str], Any], overrides: dict[str, str], code: int
) -> None:
    client = official("quickcost")
    args = {
        **DEMO,
        "depCode": "75001",
        "arrCode": "06500",
        "weight": "2",
        "productCode": "01",
        "type": "M",
        **overrides,
    }
    result = client.service.quickCost(**args)
    client.assert_valid_response()
    assert result.errorCode == code and result.errorMessage
    assert result.amount == 0


def test_calculate_products_lists_what_the_route_offers(official: Callable[[str], Any]) -> None:
    client = official("quickcost")
    result = client.service.calculateProducts(
        **DEMO,
        depCountryCode="FR",
        depZipCode="75001",
        arrCountryCode="FR",
        arrZipCode="91210",
        type="M",
        weight="4.0",
    )
    client.assert_valid_response()
    codes = [p.productCode for p in result.productList]
    # calculateProducts speaks "1" and "2" for Chrono 13 and 10 ([S] §3.2.4).
    assert {"1", "2", "16", "86"} <= set(codes) and "44" not in codes and "01" not in codes
    abroad = client.service.calculateProducts(
        **DEMO,
        depCountryCode="FR",
        depZipCode="75001",
        arrCountryCode="DE",
        arrZipCode="10115",
        type="M",
        weight="4.0",
    )
    assert {p.productCode for p in abroad.productList} == {"17", "37", "44"}


def test_calculate_products_with_a_wrong_password_answers_error_code_3(
    official: Callable[[str], Any],
) -> None:
    client = official("quickcost")
    result = client.service.calculateProducts(
        accountNumber="19869502", password="x", depZipCode="75001", arrZipCode="91210", weight="1"
    )
    client.assert_valid_response()
    assert (result.errorCode, result.errorMessage, result.productList) == (
        3,
        "invalid account or password",
        [],
    )


def _relay_client(base_url: str) -> Any:
    return zeep.Client(f"{base_url}/recherchebt-ws-cxf/PointRelaisServiceWS?wsdl").service


def test_relay_points_near_a_postal_code_nearest_first(base_url: str) -> None:
    result = _relay_client(base_url).recherchePointChronopost(
        **DEMO, address="46 rue de Douai", zipCode="75009", city="Paris", countryCode="FR", type="P",
        productCode="86", service="L", weight="1", shippingDate="02/06/2026",
        maxPointChronopost="3", maxDistanceSearch="40", holidayTolerant="1",
    )  # fmt: skip
    assert result.errorCode == 0
    points = result.listePointRelais
    assert len(points) == 3
    assert [p.codePostal for p in points[:2]] == ["75009", "75009"]
    assert points[0].listeHoraireOuverture[0].listeHoraireOuverture[0].debut == "09:00"


def test_relay_search_with_a_wrong_password_answers_error_code_1500(base_url: str) -> None:
    # error_codes.csv, relay 1500: wrong contract number or password ([D] §4.3.3).
    result = _relay_client(base_url).recherchePointChronopost(
        accountNumber="19869502", password="x", zipCode="75009"
    )
    assert result.errorCode == 1500 and not result.listePointRelais


_SEARCH = {
    **DEMO, "address": "46 rue de Douai", "zipCode": "75009", "city": "Paris",
    "countryCode": "FR", "type": "P", "productCode": "86", "service": "L", "weight": "2000",
    "shippingDate": "02/06/2026", "maxPointChronopost": "5", "maxDistanceSearch": "50",
    "holidayTolerant": "1", "language": "FR", "version": "2.0",
}  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"service": None}, 301),  # mandatory ([D] §2.4.2.a)
        ({"weight": None}, 301),  # mandatory in [S] §3.4.4, grams
        ({"weight": "2.5"}, 321),
        ({"type": "A"}, 300),  # agencies are not supported
        ({"shippingDate": "2026-06-02"}, 306),
        ({"holidayTolerant": "0"}, 317),
        ({"maxDistanceSearch": "60"}, 319),
        ({"maxPointChronopost": "26"}, 320),
        ({"weight": "25000"}, 601),  # no point takes more than 20 kg
    ],
)
def test_relay_search_inter_enforces_the_documented_request(
    base_url: str, overrides: dict[str, str | None], code: int
) -> None:
    result = _relay_client(base_url).recherchePointChronopostInter(**{**_SEARCH, **overrides})
    assert result.errorCode == code and not result.listePointRelais


def test_relay_search_inter_rates_an_address_search_quality_2(base_url: str) -> None:
    result = _relay_client(base_url).recherchePointChronopostInter(**_SEARCH)
    assert result.errorCode == 0 and result.qualiteReponse == 2
    assert {p.poidsMaxi for p in result.listePointRelais} == {20}  # kg ([D] §2.4.2.b)
    by_postcode = _relay_client(base_url).recherchePointChronopostInter(
        **{**_SEARCH, "address": None}
    )
    assert by_postcode.qualiteReponse == 1
