"""Product routing: default rules, cutoffs in Paris time, holidays, limits, overrides, Saturdays."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from chronoforce.domain.clock import ClockError
from chronoforce.domain.errors import PermanentError, RoutingError
from chronoforce.domain.models import (
    Address,
    Parcel,
    Party,
    References,
    ShipmentOptions,
    ShipmentRequest,
)
from chronoforce.domain.routing import (
    DEFAULT_RULES,
    RoutingFacts,
    RoutingRules,
    Zone,
    add_working_days,
    is_working_day,
    next_working_day,
    promised_delivery_date,
    route,
    zone_of,
)

PARIS = ZoneInfo("Europe/Paris")
BOX = (Parcel(weight_kg=Decimal("2.5")),)


def paris(year: int, month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=PARIS)


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)


def facts(country: str = "FR", postal_code: str = "75011", **more: Any) -> RoutingFacts:
    return RoutingFacts(country=country, postal_code=postal_code, parcels=BOX, **more)


TUESDAY_10H = paris(2025, 6, 17, 10)  # an ordinary working Tuesday


# --- every default rule -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "more", "product", "rule"),
    [
        ("relay point in Paris", {"relay_point_id": "2055K"}, "86", "relay-france"),
        ("priority order", {"priority": True}, "01", "priority-france"),
        ("gold customer", {"customer_tier": "Gold"}, "01", "vip-france"),
        ("ordinary order", {}, "16", "home-france"),
        ("Monaco", {"country": "MC", "postal_code": "98000"}, "16", "home-france"),
        ("Corsica", {"postal_code": "20000"}, "16", "home-france"),
        (
            "Corsica relay",
            {"postal_code": "20200", "relay_point_id": "1234A"},
            "86",
            "relay-france",
        ),
        ("Germany", {"country": "DE", "postal_code": "10115"}, "44", "europe"),
        ("Belgium", {"country": "BE", "postal_code": "1000"}, "44", "europe"),
        ("United States", {"country": "US", "postal_code": "10001"}, "17", "world"),
        ("Switzerland", {"country": "CH", "postal_code": "1201"}, "17", "world"),
        ("Guadeloupe", {"country": "GP", "postal_code": "97110"}, "17", "world"),
        ("Réunion sent as FR", {"postal_code": "97400"}, "17", "world"),
    ],
)
def test_default_rules_pick_the_expected_product(
    case: str, more: dict[str, Any], product: str, rule: str
) -> None:
    params: dict[str, Any] = {"country": "FR", "postal_code": "75011", **more}
    decision = route(facts(**params), TUESDAY_10H)
    assert (decision.product_code, decision.rule_name) == (product, rule), case
    assert decision.reason.startswith(f"Rule '{rule}' chose {decision.product_name} ({product})")


def test_europe_express_is_chosen_when_classic_cannot_keep_the_deliver_by_date() -> None:
    late_classic = facts("DE", "10115", deliver_by=dt.date(2025, 6, 19))
    decision = route(late_classic, TUESDAY_10H)
    assert decision.product_code == "17" and decision.rule_name == "europe-express"
    assert decision.promised_date == dt.date(2025, 6, 19)
    europe = next(s for s in decision.skipped if s.rule_name == "europe")
    assert "2025-06-20, after the deliver-by date 2025-06-19" in europe.reason
    assert "skipped" in decision.reason and "'europe' (Chrono Classic would deliver" in (
        decision.reason
    )


def test_a_deliver_by_date_no_product_can_keep_is_a_routing_error() -> None:
    with pytest.raises(RoutingError, match="after the deliver-by date") as caught:
        route(facts(deliver_by=dt.date(2025, 6, 17)), TUESDAY_10H)
    assert isinstance(caught.value, PermanentError)
    assert caught.value.code == "NO_PRODUCT"


def test_the_reason_names_the_rule_and_why_earlier_rules_were_skipped() -> None:
    decision = route(facts(), TUESDAY_10H)
    assert decision.reason == (
        "Rule 'home-france' chose Chrono 18 (16) to FR 75011; ships 2025-06-17, delivered "
        "2025-06-18 before 18:00; skipped 'relay-france' (no relay point was chosen), "
        "'priority-france' (not a priority order), 'vip-france' (customer tier '(none)' is not "
        "one of gold, vip)."
    )
    assert [s.rule_name for s in decision.skipped] == [
        "relay-france",
        "priority-france",
        "vip-france",
    ]
    assert decision.promised_before == dt.time(18, 0)
    assert decision.options.relay_point_id == "" and decision.service == "0"


# --- cutoffs, weekends, holidays, clock changes -------------------------------------------------


@pytest.mark.parametrize(
    ("now", "ship", "promised"),
    [
        (paris(2025, 6, 17, 16, 59), "2025-06-17", "2025-06-18"),  # Tuesday, before 17:00
        (paris(2025, 6, 17, 17, 0), "2025-06-18", "2025-06-19"),  # at the cutoff: too late
        (paris(2025, 6, 13, 17, 30), "2025-06-16", "2025-06-17"),  # Friday evening → Monday
        (paris(2025, 6, 14, 9, 0), "2025-06-16", "2025-06-17"),  # Saturday → Monday
        (paris(2025, 6, 15, 23, 59), "2025-06-16", "2025-06-17"),  # Sunday night → Monday
        (paris(2025, 6, 16, 0, 1), "2025-06-16", "2025-06-17"),  # Monday, just after midnight
    ],
)
def test_cutoff_and_weekends_move_the_ship_date(now: dt.datetime, ship: str, promised: str) -> None:
    decision = route(facts(), now)
    assert (str(decision.ship_date), str(decision.promised_date)) == (ship, promised)


def test_after_the_cutoff_the_reason_says_so() -> None:
    assert "17:30 is past the 17:00 cutoff" in route(facts(), paris(2025, 6, 13, 17, 30)).reason
    assert "2025-06-14 is not a working day" in route(facts(), paris(2025, 6, 14, 9)).reason


@pytest.mark.parametrize(
    ("holiday", "now", "ship", "promised"),
    [
        ("14 July (Monday)", paris(2025, 7, 11, 17, 30), "2025-07-15", "2025-07-16"),
        ("14 July, shipped Friday", paris(2025, 7, 11, 10), "2025-07-11", "2025-07-15"),
        ("Ascension Thursday", paris(2025, 5, 28, 10), "2025-05-28", "2025-05-30"),
        ("Ascension Thursday itself", paris(2025, 5, 29, 10), "2025-05-30", "2025-06-02"),
        ("Easter Monday", paris(2025, 4, 18, 18), "2025-04-22", "2025-04-23"),
        ("Whit Monday", paris(2025, 6, 6, 18), "2025-06-10", "2025-06-11"),
        ("Christmas Thursday", paris(2025, 12, 24, 17, 15), "2025-12-26", "2025-12-29"),
        ("New Year across years", paris(2025, 12, 31, 17, 15), "2026-01-02", "2026-01-05"),
    ],
)
def test_french_public_holidays_are_not_working_days(
    holiday: str, now: dt.datetime, ship: str, promised: str
) -> None:
    decision = route(facts(), now)
    assert (str(decision.ship_date), str(decision.promised_date)) == (ship, promised), holiday


def test_switch_to_summer_time_keeps_the_cutoff_at_17_paris() -> None:
    # last Sunday of March 2025 is the 30th: 15:30 UTC is 16:30 before, 17:30 after
    before_switch = route(facts(), utc(2025, 3, 28, 15, 30))  # Friday, CET
    after_switch = route(facts(), utc(2025, 3, 31, 15, 30))  # Monday, CEST
    assert before_switch.ship_date == dt.date(2025, 3, 28)
    assert after_switch.ship_date == dt.date(2025, 4, 1)
    assert route(facts(), utc(2025, 3, 31, 14, 59)).ship_date == dt.date(2025, 3, 31)


def test_switch_to_winter_time_keeps_the_cutoff_at_17_paris() -> None:
    # last Sunday of October 2025 is the 26th: 15:30 UTC is 17:30 before, 16:30 after
    before_switch = route(facts(), utc(2025, 10, 24, 15, 30))  # Friday, CEST
    after_switch = route(facts(), utc(2025, 10, 27, 15, 30))  # Monday, CET
    assert before_switch.ship_date == dt.date(2025, 10, 27)
    assert after_switch.ship_date == dt.date(2025, 10, 27)
    assert route(facts(), utc(2025, 10, 27, 16, 0)).ship_date == dt.date(2025, 10, 28)


def test_orders_during_the_night_of_the_switch_resolve_in_paris_time() -> None:
    # 2025-03-30 01:30 UTC is 03:30 CEST on a Sunday; ship Monday
    assert route(facts(), utc(2025, 3, 30, 1, 30)).ship_date == dt.date(2025, 3, 31)


def test_the_same_instant_in_any_time_zone_gives_the_same_decision() -> None:
    instant = utc(2025, 6, 17, 14, 45)
    tokyo = instant.astimezone(ZoneInfo("Asia/Tokyo"))
    assert route(facts(), instant) == route(facts(), tokyo)


def test_international_products_use_their_own_cutoff() -> None:
    at_1630 = paris(2025, 6, 17, 16, 30)
    assert route(facts("DE", "10115"), at_1630).ship_date == dt.date(2025, 6, 18)  # 16:00
    assert route(facts(), at_1630).ship_date == dt.date(2025, 6, 17)  # 17:00


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ClockError, match="now"):
        route(facts(), dt.datetime(2025, 6, 17, 10))


# --- weight and size limits --------------------------------------------------------------------


def with_parcels(*parcels: Parcel, **more: Any) -> RoutingFacts:
    return RoutingFacts(country="FR", postal_code="69003", parcels=parcels, **more)


def kg(value: str, *dims: int) -> Parcel:
    sides = [Decimal(d) for d in dims] + [None] * (3 - len(dims))
    return Parcel(Decimal(value), sides[0], sides[1], sides[2])


def test_relay_takes_a_parcel_of_exactly_20_kg() -> None:
    assert route(with_parcels(kg("20"), relay_point_id="R1"), TUESDAY_10H).product_code == "86"


def test_a_relay_parcel_over_20_kg_is_a_routing_error_not_a_home_delivery() -> None:
    with pytest.raises(RoutingError) as caught:
        route(with_parcels(kg("5"), kg("20.5"), relay_point_id="R1"), TUESDAY_10H)
    message = str(caught.value)
    assert "parcel 2 weighs 20.5 kg, over the 20 kg of Chrono Relais (86)" in message
    assert "delivers to the door but relay point R1 was chosen" in message


def test_a_parcel_over_30_kg_fits_no_default_product() -> None:
    with pytest.raises(RoutingError, match=r"parcel 1 weighs 30\.01 kg, over the 30 kg"):
        route(with_parcels(kg("30.01")), TUESDAY_10H)
    assert route(with_parcels(kg("30")), TUESDAY_10H).product_code == "16"


def test_relay_size_limits_are_longest_side_100_and_length_plus_girth_250() -> None:
    ok = kg("3", 100, 40, 35)  # 100 + 2 × 75 = 250
    assert route(with_parcels(ok, relay_point_id="R1"), TUESDAY_10H).product_code == "86"
    with pytest.raises(RoutingError, match="101 cm long, over the 100 cm"):
        route(with_parcels(kg("3", 101, 10, 10), relay_point_id="R1"), TUESDAY_10H)
    with pytest.raises(RoutingError, match="252 cm length \\+ girth, over the 250 cm"):
        route(with_parcels(kg("3", 100, 41, 35), relay_point_id="R1"), TUESDAY_10H)


def test_home_delivery_takes_a_150_cm_parcel_but_not_a_longer_one() -> None:
    assert route(with_parcels(kg("3", 150, 30, 20)), TUESDAY_10H).product_code == "16"
    with pytest.raises(RoutingError, match="151 cm long"):
        route(with_parcels(kg("3", 20, 151)), TUESDAY_10H)


def test_a_shipment_without_parcels_cannot_be_routed() -> None:
    with pytest.raises(RoutingError) as caught:
        route(RoutingFacts(country="FR", postal_code="75011"), TUESDAY_10H)
    assert caught.value.field == "parcels"


# --- overrides from Salesforce -----------------------------------------------------------------


def test_a_valid_override_is_honoured_over_the_rules() -> None:
    decision = route(facts(product_override="01"), TUESDAY_10H)
    assert (decision.product_code, decision.rule_name, decision.skipped) == ("01", "override", ())
    assert decision.reason.startswith("product_override asked for Chrono 13 (01)")


def test_an_override_written_without_the_leading_zero_is_understood() -> None:
    assert route(facts(product_override="1"), TUESDAY_10H).product_code == "01"


def test_an_override_to_an_unknown_product_names_the_salesforce_field() -> None:
    with pytest.raises(RoutingError) as caught:
        route(facts(product_override="99", override_field="Chronopost_Product__c"), TUESDAY_10H)
    assert caught.value.field == "Chronopost_Product__c"
    assert caught.value.code == "PRODUCT_OVERRIDE_INVALID"
    assert "'99'" in caught.value.message and "16 Chrono 18" in caught.value.message


@pytest.mark.parametrize(
    ("more", "why"),
    [
        ({"product_override": "44"}, "Chrono Classic does not serve zone FR"),
        ({"product_override": "01", "country": "DE", "postal_code": "10115"}, "zone EU"),
        ({"product_override": "86"}, "relay point and none was chosen"),
        ({"product_override": "16", "relay_point_id": "R1"}, "delivers to the door"),
    ],
)
def test_an_override_invalid_for_the_destination_is_a_routing_error(
    more: dict[str, Any], why: str
) -> None:
    params: dict[str, Any] = {"country": "FR", "postal_code": "75011", **more}
    with pytest.raises(RoutingError, match=why) as caught:
        route(facts(**params), TUESDAY_10H)
    assert caught.value.field == "product_override"


def test_an_override_too_heavy_for_the_product_is_a_routing_error() -> None:
    heavy = with_parcels(kg("25"), relay_point_id="R1", product_override="86")
    with pytest.raises(RoutingError, match="parcel 1 weighs 25 kg"):
        route(heavy, TUESDAY_10H)


def test_an_override_is_kept_past_a_deliver_by_date_and_the_reason_says_so() -> None:
    decision = route(
        facts("DE", "10115", product_override="44", deliver_by=dt.date(2025, 6, 18)), TUESDAY_10H
    )
    assert decision.product_code == "44"
    assert "kept although it delivers after the deliver-by date 2025-06-18" in decision.reason


# --- Saturday delivery -------------------------------------------------------------------------

FRIDAY_10H = paris(2025, 6, 20, 10)


def test_saturday_delivery_on_a_friday_shipment_uses_service_6() -> None:
    decision = route(facts(saturday_delivery=True, priority=True), FRIDAY_10H)
    assert (decision.product_code, decision.service) == ("01", "6")
    assert decision.promised_date == dt.date(2025, 6, 21)
    assert decision.options.saturday_delivery is True
    assert "Saturday delivery (service 6)" in decision.reason


def test_without_saturday_delivery_a_friday_shipment_arrives_monday() -> None:
    decision = route(facts(), FRIDAY_10H)
    assert (decision.service, decision.promised_date) == ("0", dt.date(2025, 6, 23))


def test_saturday_delivery_is_not_asked_when_the_parcel_arrives_on_a_weekday() -> None:
    decision = route(facts(saturday_delivery=True), TUESDAY_10H)
    assert (decision.service, decision.options.saturday_delivery) == ("0", False)
    assert "Saturday delivery not needed, it arrives on Wednesday" in decision.reason


def test_saturday_delivery_is_dropped_where_the_product_does_not_offer_it() -> None:
    decision = route(facts(saturday_delivery=True, relay_point_id="R1"), FRIDAY_10H)
    assert (decision.product_code, decision.service) == ("86", "0")
    assert decision.promised_date == dt.date(2025, 6, 23)
    assert "Saturday delivery is not offered with Chrono Relais" in decision.reason


def test_no_saturday_delivery_on_a_saturday_public_holiday() -> None:
    # 1 November 2025 (All Saints' Day) is a Saturday
    decision = route(facts(saturday_delivery=True), paris(2025, 10, 31, 10))
    assert (decision.service, decision.promised_date) == ("0", dt.date(2025, 11, 3))


def test_a_rule_can_ask_for_saturday_delivery_itself() -> None:
    rules = RoutingRules.from_mapping(
        {"rules": [{"name": "weekend", "product": "16", "saturday_delivery": True}]}
    )
    decision = route(facts(), FRIDAY_10H, rules)
    assert (decision.service, decision.promised_date) == ("6", dt.date(2025, 6, 21))


def test_saturday_delivery_is_never_asked_abroad_even_where_a_product_claims_it() -> None:
    # Service 6 is for France only ([S] §3.12.4, rev 2.5.8): a misconfigured product abroad
    # does not get it.
    rules = RoutingRules.from_mapping(
        {"products": [{"code": "17", "saturday_delivery": True}],
         "rules": [{"name": "abroad", "product": "17", "saturday_delivery": True}]}
    )  # fmt: skip
    decision = route(facts("BE", "1000"), FRIDAY_10H, rules)
    assert (decision.service, decision.options.saturday_delivery) == ("0", False)
    assert "never available abroad" in decision.reason


def test_a_relay_point_in_europe_ships_chrono_relais_europe() -> None:
    decision = route(facts("BE", "1000", relay_point_id="1001B"), TUESDAY_10H)
    assert (decision.product_code, decision.rule_name) == ("49", "relay-europe")
    assert decision.options.relay_point_id == "1001B"


# --- business rules from configuration ---------------------------------------------------------

BUSINESS = RoutingRules.from_mapping(
    yaml.safe_load(
        """
rules:
  - name: corsica
    product: "01"
    when: {postal_prefixes: ["20"]}
  - name: big-orders
    product: "01"
    when: {zones: [FR], min_order_value: 500}
  - name: express-method
    product: "01"
    when: {facts: {Shipping_Method__c: [Express, Premium]}}
  - name: benelux
    product: "17"
    when: {countries: [be, NL, lu]}
  - name: light-parcels
    product: "16"
    when: {zones: [FR], max_parcel_weight_kg: 1, exclude_postal_prefixes: ["75"]}
  - name: fallback
    product: "16"
    when: {exclude_countries: [DE]}
"""
    )
)


@pytest.mark.parametrize(
    ("more", "rule"),
    [
        ({"postal_code": "20090"}, "corsica"),
        ({"order_value": Decimal("500.00")}, "big-orders"),
        ({"order_value": Decimal("499.99")}, "fallback"),
        ({"facts": {"Shipping_Method__c": "premium"}}, "express-method"),
        ({"facts": {"Shipping_Method__c": "Standard"}}, "fallback"),
        ({"country": "NL", "postal_code": "1012 AB"}, "benelux"),
    ],
)
def test_configured_rules_match_on_business_fields_first_match_wins(
    more: dict[str, Any], rule: str
) -> None:
    params: dict[str, Any] = {"country": "FR", "postal_code": "75011", **more}
    assert route(facts(**params), TUESDAY_10H, BUSINESS).rule_name == rule


def test_weight_and_postal_conditions_of_a_rule() -> None:
    light = RoutingFacts("FR", "69003", parcels=(kg("0.8"),))
    assert route(light, TUESDAY_10H, BUSINESS).rule_name == "light-parcels"
    in_paris = RoutingFacts("FR", "75011", parcels=(kg("0.8"),))
    decision = route(in_paris, TUESDAY_10H, BUSINESS)
    assert decision.rule_name == "fallback"
    assert any("postal code 75011 is excluded" in s.reason for s in decision.skipped)


def test_an_order_without_a_value_does_not_match_a_value_rule() -> None:
    decision = route(facts(), TUESDAY_10H, BUSINESS)
    big = next(s for s in decision.skipped if s.rule_name == "big-orders")
    assert big.reason == "the order value is unknown"


def test_nothing_matching_lists_every_rule_in_the_error() -> None:
    with pytest.raises(RoutingError) as caught:
        route(facts("DE", "10115"), TUESDAY_10H, BUSINESS)
    for name in ("corsica", "big-orders", "express-method", "benelux", "fallback"):
        assert f"'{name}'" in caught.value.message


# --- configuration -----------------------------------------------------------------------------


def test_no_configuration_means_the_default_rules() -> None:
    assert RoutingRules.from_mapping({}) is DEFAULT_RULES
    assert RoutingRules.from_mapping(None) is DEFAULT_RULES
    assert [p.code for p in DEFAULT_RULES.products] == ["01", "16", "86", "49", "4T", "44", "17"]


def test_configured_products_are_merged_into_the_defaults_field_by_field() -> None:
    rules = RoutingRules.from_mapping(
        yaml.safe_load(
            """
products:
  - {code: "16", cutoff: "15:30", promise: {before: "19:00"}}
  - {code: "02", name: Chrono 10, zones: [FR], promise: {before: "10:00"}}
"""
        )
    )
    chrono18 = rules.product("16")
    assert chrono18 is not None
    assert chrono18.cutoff == dt.time(15, 30) and chrono18.promise.before == dt.time(19, 0)
    assert chrono18.promise.working_days == 1 and chrono18.saturday_delivery
    assert rules.product("2") is not None and rules.rules == DEFAULT_RULES.rules
    assert route(facts(), paris(2025, 6, 17, 16)).ship_date == dt.date(2025, 6, 17)
    assert route(facts(), paris(2025, 6, 17, 16), rules).ship_date == dt.date(2025, 6, 18)


def test_unquoted_yaml_product_codes_are_read_as_chronopost_spells_them() -> None:
    rules = RoutingRules.from_mapping(
        yaml.safe_load("rules: [{name: priority, product: 01}, {name: rest, product: 16}]")
    )
    assert [r.product for r in rules.rules] == ["01", "16"]
    assert route(facts(priority=True), TUESDAY_10H, rules).product_code == "01"


def test_an_unquoted_yaml_time_is_refused_with_a_hint() -> None:
    with pytest.raises(ValidationError, match="write times in quotes"):
        RoutingRules.from_mapping(yaml.safe_load('products: [{code: "16", cutoff: 15:30}]'))


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"rules": [{"name": "x", "product": "99"}]}, "unknown product '99'"),
        ({"rules": [{"name": "x", "product": "16"}, {"name": "x", "product": "01"}]}, "twice"),
        ({"rules": [{"name": "x", "product": "16", "when": {"zones": ["MARS"]}}]}, "zones"),
        ({"rules": [{"name": "x", "product": "16", "when": {"colour": "red"}}]}, "colour"),
        ({"timezone": "Europe/Atlantis"}, "unknown time zone"),
        ({"products": [{"code": "016", "name": "x", "zones": ["FR"]}]}, "code"),
        ({"products": "16"}, "products"),
    ],
)
def test_invalid_routing_configuration_is_refused(raw: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        RoutingRules.from_mapping(raw)


def test_full_rules_validate_from_a_plain_mapping() -> None:
    again = RoutingRules.model_validate(DEFAULT_RULES.model_dump(mode="json"))
    assert again == DEFAULT_RULES


# --- dates for the rates API, zones, calendar --------------------------------------------------


def test_promised_delivery_date_per_product() -> None:
    friday = dt.date(2025, 6, 20)
    assert promised_delivery_date("01", friday) == dt.date(2025, 6, 23)
    assert promised_delivery_date("01", friday, saturday=True) == dt.date(2025, 6, 21)
    assert promised_delivery_date("86", friday, saturday=True) == dt.date(2025, 6, 23)
    assert promised_delivery_date("44", dt.date(2025, 6, 16), zone=Zone.EU) == dt.date(2025, 6, 19)
    assert promised_delivery_date("17", dt.date(2025, 6, 16), zone=Zone.EU) == dt.date(2025, 6, 18)
    assert promised_delivery_date("17", dt.date(2025, 6, 16), zone=Zone.WORLD) == dt.date(
        2025, 6, 19
    )
    with pytest.raises(RoutingError) as caught:
        promised_delivery_date("XX", friday)
    assert (caught.value.code, caught.value.field) == ("UNKNOWN_PRODUCT", "product_code")


@pytest.mark.parametrize(
    ("country", "postal", "zone"),
    [
        ("FR", "75011", Zone.FR),
        ("fr", "20000", Zone.FR),
        ("MC", "98000", Zone.FR),
        ("FR", "98000", Zone.FR),
        ("FR", "97110", Zone.DOM),
        ("FR", "98800", Zone.DOM),
        ("RE", "97400", Zone.DOM),
        ("DE", "10115", Zone.EU),
        ("CH", "1201", Zone.WORLD),
        ("AD", "AD500", Zone.WORLD),
        ("GB", "SW1A 1AA", Zone.WORLD),
    ],
)
def test_zone_of_a_destination(country: str, postal: str, zone: Zone) -> None:
    assert zone_of(country, postal) is zone


def test_working_day_calendar() -> None:
    assert not is_working_day(dt.date(2025, 7, 14))
    assert not is_working_day(dt.date(2025, 6, 21))
    assert is_working_day(dt.date(2025, 7, 15))
    assert next_working_day(dt.date(2025, 5, 28)) == dt.date(2025, 5, 30)
    assert add_working_days(dt.date(2025, 12, 24), 2) == dt.date(2025, 12, 29)
    assert add_working_days(dt.date(2025, 6, 20), 0) == dt.date(2025, 6, 20)


def test_facts_from_a_prepared_shipment_request() -> None:
    request = ShipmentRequest(
        shipper=Party(Address(name="Shop", postal_code="37400", city="AMBOISE", country="FR")),
        recipient=Party(Address(name="Ana", postal_code="20000", city="AJACCIO", country="FR")),
        parcels=BOX,
        product_code="",
        ship_date=dt.date(2025, 6, 17),
        references=References(order_number="00001234"),
        options=ShipmentOptions(relay_point_id="R9", saturday_delivery=True),
    )
    built = RoutingFacts.from_request(request, priority=True)
    assert (built.country, built.postal_code, built.relay_point_id) == ("FR", "20000", "R9")
    assert built.saturday_delivery and built.priority and built.parcels == BOX
    assert route(built, TUESDAY_10H).product_code == "86"


# --- properties --------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(
        min_value=dt.datetime(2024, 1, 1),
        max_value=dt.datetime(2027, 12, 31),
        timezones=st.just(dt.UTC),
    ),
    st.sampled_from(["FR", "DE", "US"]),
    st.booleans(),
)
def test_ship_and_promise_dates_are_always_working_days_in_order(
    now: dt.datetime, country: str, saturday: bool
) -> None:
    decision = route(facts(country, "75011", saturday_delivery=saturday), now)
    local_today = now.astimezone(PARIS).date()
    assert is_working_day(decision.ship_date)
    assert local_today <= decision.ship_date <= local_today + dt.timedelta(days=6)
    assert decision.promised_date > decision.ship_date
    if decision.service == "6":
        assert decision.promised_date.weekday() == 5
    else:
        assert is_working_day(decision.promised_date)
