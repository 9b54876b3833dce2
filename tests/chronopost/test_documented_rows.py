"""Issue 18's table, row by row, through the client and the Chronopost sandbox over HTTP: what
chronoforce sends is what Chronopost's documents ask (SPEC-FACTS §2.3-§2.6, §5), and the
sandbox refuses what the documents forbid, so breaking a rule fails here."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from decimal import Decimal
from typing import Any

import pypdf
import pytest
from lxml import etree

from chronoforce.chronopost import ChronopostClient, ChronopostCredentials, ChronopostEndpoint
from chronoforce.chronopost.config import AccountFamily, ChronopostAccounts
from chronoforce.domain.errors import CarrierValidationError
from chronoforce.domain.models import (
    Address,
    LabelFormat,
    Parcel,
    Party,
    RelayPoint,
    ShipmentOptions,
    ShipmentRequest,
)
from chronoforce.pipeline.writeback import label_file_row
from chronoforce.sandbox.chronopost import ChronopostSandbox

from .conftest import CREDENTIALS, make_request

MENTON = Address("Claire Martin", "", "72 rue Reine Elisabeth", "", "06500", "MENTON", "FR")
SHIRTS = ("Cotton T-shirts", "Wool scarf")


def _stored(sandbox: ChronopostSandbox, skybill: str) -> dict[str, Any]:
    parcel = sandbox.parcel(skybill)
    assert parcel is not None
    return parcel.label_data


def _sent(sandbox: ChronopostSandbox, operation: str) -> etree._Element:
    """The operation element of the last `operation` request the sandbox received."""
    return etree.fromstring(sandbox.requests(operation)[-1].request.encode())


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)


def _point(client: ChronopostClient, point_id: str = "0601R") -> RelayPoint:
    point = client.relay_point(point_id, MENTON)
    assert point is not None
    return point


# --- relay labels ------------------------------------------------------------------------------


def test_a_relay_label_is_addressed_to_the_point_with_the_customer_collecting(
    client: ChronopostClient, sandbox: ChronopostSandbox
) -> None:
    point = _point(client)
    options = ShipmentOptions(relay_point_id=point.id, relay_point=point)
    result = client.create_shipment(make_request("86", options=options))
    stored = _stored(sandbox, result.skybill_numbers[0])
    recipient = stored["recipient"]
    assert (recipient["name"], recipient["address1"], recipient["zip"]) == (
        "TABAC DU PORT", "1 QUAI BONAPARTE", "06500",
    )  # fmt: skip
    assert recipient["name2"] == "Claire Martin"  # who collects ([D] §3.2)
    assert stored["id_relais"] == stored["recipient_ref"] == "0601R"
    sent = _sent(sandbox, "shippingMultiParcelV5")
    assert sent.findtext("recipientValue/recipientPhone") == "0612345678"  # a mobile
    assert sent.findtext("recipientValue/recipientEmail") == "claire@example.fr"


def test_the_sandbox_refuses_a_relay_label_sent_to_the_customers_home(
    client: ChronopostClient, sandbox: ChronopostSandbox
) -> None:
    point = _point(client)
    home = dataclasses.replace(point, address=MENTON, name="Claire Martin")
    with pytest.raises(CarrierValidationError) as refused:
        client.create_shipment(
            make_request("86", options=ShipmentOptions(relay_point_id="0601R", relay_point=home))
        )
    assert refused.value.code == "CHRONOPOST_33" and "recipientAdress1" in refused.value.message
    assert sandbox.live_labels() == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"parcels": 2}, "parcels"),
        ({"mobile": ""}, "recipient_mobile"),
        ({"email": ""}, "recipient_email"),
        ({"weight": Decimal("21")}, "parcels"),
    ],
)
def test_relay_rules_are_checked_before_anything_is_sent(
    client: ChronopostClient, sandbox: ChronopostSandbox, change: dict[str, Any], field: str
) -> None:
    point = _point(client)
    request = make_request(
        "86",
        parcels=change.get("parcels", 1),
        options=ShipmentOptions(relay_point_id=point.id, relay_point=point),
    )
    contact = dataclasses.replace(
        request.recipient.contact,
        mobile=change.get("mobile", "0612345678"),
        email=change.get("email", "claire@example.fr"),
    )
    parcels = tuple(
        dataclasses.replace(p, weight_kg=change.get("weight", p.weight_kg)) for p in request.parcels
    )
    request = dataclasses.replace(
        request, recipient=Party(request.recipient.address, contact), parcels=parcels
    )
    with pytest.raises(CarrierValidationError) as refused:
        client.create_shipment(request)
    assert refused.value.field == field
    assert not sandbox.requests("shippingMultiParcelV5")


# --- modeRetour, multi-parcel, money, label modes ------------------------------------------------


def test_labels_we_print_are_not_emailed_by_chronopost(
    client: ChronopostClient, sandbox: ChronopostSandbox
) -> None:
    result = client.create_shipment(make_request())
    assert _stored(sandbox, result.skybill_numbers[0])["mode_retour"] == "2"
    assert not _stored(sandbox, result.skybill_numbers[0])["is_return"]


def test_a_multi_parcel_shipment_numbers_each_parcel_rank_of_total(
    client: ChronopostClient, sandbox: ChronopostSandbox
) -> None:
    result = client.create_shipment(make_request(parcels=3))
    ranks = [
        (_stored(sandbox, s)["rank"], _stored(sandbox, s)["total"]) for s in result.skybill_numbers
    ]
    assert ranks == [(1, 3), (2, 3), (3, 3)]
    assert "Parcel 2/3" in _text(sandbox.parcel(result.skybill_numbers[1]).label)  # type: ignore[union-attr]


def test_the_sandbox_refuses_bulk_number_without_skybill_rank(sandbox_url: str) -> None:
    import httpx

    from chronoforce.chronopost import shipping

    from .conftest import operation_element

    envelope = shipping.build_shipment(make_request(parcels=2), CREDENTIALS)
    op = operation_element(envelope)
    for rank in op.iter("skybillRank"):
        rank.getparent().remove(rank)  # type: ignore[union-attr]
    body = etree.tostring(op.getroottree().getroot())
    answer = httpx.post(f"{sandbox_url}/shipping-cxf/ShippingServiceWS", content=body,
                        headers={"Content-Type": "text/xml; charset=utf-8"})  # fmt: skip
    assert b"<errorCode>31</errorCode>" in answer.content
    assert b"Empty data: skybillRank" in answer.content


def test_insured_and_cash_on_delivery_values_reach_chronopost_in_cents(
    client: ChronopostClient, sandbox: ChronopostSandbox
) -> None:
    options = ShipmentOptions(insured_value=Decimal("250.00"), cod_value=Decimal("12.50"))
    result = client.create_shipment(make_request(options=options))
    stored = _stored(sandbox, result.skybill_numbers[0])
    assert (stored["insured_cents"], stored["cod_cents"]) == (25000, 1250)
    assert "Insured value: 250.00 EUR" in _text(sandbox.parcel(result.skybill_numbers[0]).label)  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", [LabelFormat.THE, LabelFormat.THEPSG, LabelFormat.THE1015])
def test_the_thermal_modes_are_pdf_files_and_published_as_pdf(
    client: ChronopostClient, mode: LabelFormat
) -> None:
    label = client.create_shipment(make_request(options=ShipmentOptions(label_format=mode))).labels[
        0
    ]
    assert label.data.startswith(b"%PDF") and label.label_format.is_pdf
    row = label_file_row(
        shipment_id=1, generation=1, parcels=[(1, len(label.data))],
        label_format=label.label_format.value, title="t", name="chronopost-x", attach_to=["801x"],
    )  # fmt: skip
    assert row["payload"]["filename"] == "chronopost-x.pdf"


def test_zpl_modes_stay_zpl(client: ChronopostClient) -> None:
    options = ShipmentOptions(label_format=LabelFormat.Z2DPSG)
    label = client.create_shipment(make_request(options=options)).labels[0]
    assert label.data.startswith(b"^XA") and not label.label_format.is_pdf


# --- international, Saturday, Monday, Chronofresh -------------------------------------------------


@pytest.mark.parametrize(("product", "country"), [("44", "DE"), ("17", "US")])
def test_an_international_parcel_carries_english_contents_and_its_customs_value(
    client: ChronopostClient, sandbox: ChronopostSandbox, product: str, country: str
) -> None:
    options = ShipmentOptions(contents=SHIRTS, declared_value=Decimal("89.20"))
    result = client.create_shipment(make_request(product, country, options=options))
    stored = _stored(sandbox, result.skybill_numbers[0])
    assert stored["contents"] == list(SHIRTS) and stored["customs_cents"] == 8920


@pytest.mark.parametrize(
    ("options", "field"),
    [
        (ShipmentOptions(declared_value=Decimal("10")), "contents"),
        (ShipmentOptions(contents=SHIRTS), "declared_value"),
        (ShipmentOptions(contents=("x" * 46,), declared_value=Decimal("10")), "contents"),
        (ShipmentOptions(contents=SHIRTS, declared_value=Decimal(1), saturday_delivery=True),
         "saturday_delivery"),
        (ShipmentOptions(contents=SHIRTS, declared_value=Decimal(1), monday_delivery=True),
         "monday_delivery"),
    ],
)  # fmt: skip
def test_international_rules_are_checked_before_anything_is_sent(
    client: ChronopostClient, sandbox: ChronopostSandbox, options: ShipmentOptions, field: str
) -> None:
    with pytest.raises(CarrierValidationError) as refused:
        client.create_shipment(make_request("17", "US", options=options))
    assert refused.value.field == field
    assert not sandbox.requests("shippingMultiParcelV5")


def test_the_sandbox_refuses_an_international_parcel_without_contents(sandbox_url: str) -> None:
    import httpx

    from chronoforce.chronopost import shipping

    from .conftest import operation_element

    options = ShipmentOptions(contents=SHIRTS, declared_value=Decimal("10"))
    op = operation_element(
        shipping.build_shipment(make_request("44", "BE", options=options), CREDENTIALS)
    )
    for name in ("content1", "content2"):
        for node in op.iter(name):
            node.getparent().remove(node)  # type: ignore[union-attr]
    answer = httpx.post(f"{sandbox_url}/shipping-cxf/ShippingServiceWS",
                        content=etree.tostring(op.getroottree().getroot()),
                        headers={"Content-Type": "text/xml; charset=utf-8"})  # fmt: skip
    assert b"<errorCode>31</errorCode>" in answer.content and b"content1" in answer.content


def test_saturday_is_service_6_and_monday_service_1_in_france(
    client: ChronopostClient, sandbox: ChronopostSandbox
) -> None:
    saturday = client.create_shipment(make_request(options=ShipmentOptions(saturday_delivery=True)))
    monday = client.create_shipment(make_request(options=ShipmentOptions(monday_delivery=True)))
    assert _stored(sandbox, saturday.skybill_numbers[0])["service"] == "6"
    assert _stored(sandbox, monday.skybill_numbers[0])["service"] == "1"


def test_chronofresh_needs_its_use_by_date(
    client: ChronopostClient, sandbox: ChronopostSandbox
) -> None:
    import datetime as dt

    with pytest.raises(CarrierValidationError) as refused:
        client.create_shipment(make_request("2R"))
    assert refused.value.field == "expiry_date"
    fresh = make_request("2R", options=ShipmentOptions(expiry_date=dt.date(2024, 3, 9)))
    result = client.create_shipment(fresh)
    assert _stored(sandbox, result.skybill_numbers[0])["expiration_date"].startswith("2024-03-09")


# --- field limits and product codes --------------------------------------------------------------


def test_an_80_character_email_is_accepted_and_81_refused(
    client: ChronopostClient, sandbox: ChronopostSandbox
) -> None:
    def with_email(email: str) -> ShipmentRequest:
        request = make_request()
        contact = dataclasses.replace(request.recipient.contact, email=email)
        return dataclasses.replace(request, recipient=Party(request.recipient.address, contact))

    long_ok = ("c" * 69) + "@example.fr"  # 80 characters ([D] §2.3.2.b5)
    assert len(long_ok) == 80
    assert client.create_shipment(with_email(long_ok)).skybill_numbers
    with pytest.raises(CarrierValidationError) as refused:
        client.create_shipment(with_email("c" + long_ok))
    assert refused.value.code == "CHRONOPOST_32" and "recipientEmail" in refused.value.message


def test_product_codes_are_two_characters_and_quickcost_gets_its_one(
    client: ChronopostClient, sandbox: ChronopostSandbox
) -> None:
    rates = client.calculate_products("75001", "06500", Parcel(Decimal("2")))
    codes = {rate.product_code for rate in rates}
    assert {"01", "02"} <= codes and not {"1", "2"} & codes  # the sandbox answers "1", "2"
    rate = client.quick_cost("01", "75001", "06500", Decimal("2"))
    assert rate.product_code == "01"
    assert _sent(sandbox, "quickCost").findtext("productCode") == "1"  # only at this edge


def test_the_sandbox_refuses_a_one_character_shipping_product_code(
    client: ChronopostClient,
) -> None:
    with pytest.raises(CarrierValidationError) as refused:
        client.create_shipment(make_request("1"))
    assert refused.value.field == "product_code"


# --- relay search ---------------------------------------------------------------------------------


def test_relay_search_sends_service_and_weight_in_grams_within_the_limits(
    client: ChronopostClient, sandbox: ChronopostSandbox
) -> None:
    points = client.relay_points("75009", "FR", "PARIS", limit=40, max_distance_km=99,
                                 weight_kg=Decimal("3.2"))  # fmt: skip
    assert points and len(points) <= 25
    sent = _sent(sandbox, "recherchePointChronopostInter")
    assert (sent.findtext("service"), sent.findtext("weight")) == ("L", "3200")
    assert (sent.findtext("maxPointChronopost"), sent.findtext("maxDistanceSearch")) == ("25", "50")


def test_an_answer_of_quality_0_is_ignored_and_no_point_is_no_error(
    client: ChronopostClient, sandbox_url: str
) -> None:
    import httpx

    from chronoforce.chronopost import relay

    # The sandbox cannot place 01000: it answers arbitrary points with qualiteReponse 0 ...
    body = relay.build_search(CREDENTIALS, "01000", "FR", "BOURG EN BRESSE")
    raw = httpx.post(f"{sandbox_url}/recherchebt-ws-cxf/PointRelaisServiceWS", content=body,
                     headers={"Content-Type": "text/xml; charset=utf-8"}).content  # fmt: skip
    assert b"<qualiteReponse>0</qualiteReponse>" in raw and b"<listePointRelais>" in raw
    # ... which the client ignores ([D] §2.4.2.b).
    assert relay.parse_search(raw) == ()
    assert client.relay_points("01000", "FR", "BOURG EN BRESSE") == ()
    # Heavier than any relay point takes: error 601, "no point found", is an empty answer.
    assert client.relay_points("75009", "FR", "PARIS", weight_kg=Decimal("25")) == ()


# --- accounts per product family ------------------------------------------------------------------


def test_relay_international_and_home_labels_use_their_own_contract(
    sandbox_url: str, sandbox: ChronopostSandbox
) -> None:
    sandbox.accounts["12345678"] = "654321"
    sandbox.accounts["87654321"] = "112233"
    relay_account = ChronopostCredentials("12345678", "654321", "2")
    abroad_account = ChronopostCredentials("87654321", "112233")
    accounts = ChronopostAccounts(
        CREDENTIALS,
        {AccountFamily.RELAY: relay_account, AccountFamily.INTERNATIONAL: abroad_account},
    )
    endpoint = ChronopostEndpoint(sandbox_url, connect_timeout=2.0, read_timeout=5.0)
    with ChronopostClient(endpoint, CREDENTIALS, accounts=accounts) as client:
        point = _point(client)
        relay = client.create_shipment(
            make_request("86", options=ShipmentOptions(relay_point_id=point.id, relay_point=point))
        )
        abroad = client.create_shipment(
            make_request(
                "44", "DE", options=ShipmentOptions(contents=SHIRTS, declared_value=Decimal(5))
            )
        )
        home = client.create_shipment(make_request())
    owners = [sandbox.parcel(r.skybill_numbers[0]).account for r in (relay, abroad, home)]  # type: ignore[union-attr]
    assert owners == ["12345678", "87654321", CREDENTIALS.account_number]
    header = _sent(sandbox, "shippingMultiParcelV5").find("headerValue")
    assert header is not None and header.findtext("accountNumber") == CREDENTIALS.account_number
    relay_request = etree.fromstring(sandbox.requests("shippingMultiParcelV5")[0].request.encode())
    assert relay_request.findtext("headerValue/subAccount") == "2"
    assert "654321" not in sandbox.requests("shippingMultiParcelV5")[0].request


def test_a_label_made_under_a_family_contract_is_cancelled_under_it(
    sandbox_url: str, sandbox: ChronopostSandbox
) -> None:
    sandbox.accounts["12345678"] = "654321"
    accounts = ChronopostAccounts(
        CREDENTIALS, {AccountFamily.RELAY: ChronopostCredentials("12345678", "654321", "2")}
    )
    endpoint = ChronopostEndpoint(sandbox_url, connect_timeout=2.0, read_timeout=5.0)
    with ChronopostClient(endpoint, CREDENTIALS, accounts=accounts) as client:
        point = _point(client)
        relay = client.create_shipment(
            make_request("86", options=ShipmentOptions(relay_point_id=point.id, relay_point=point))
        )
        skybill = relay.skybill_numbers[0]
        sandbox.advance_clock(dt.timedelta(minutes=20))  # well past the cancel window
        made = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)
        # The main contract answers "not your parcel" (2); the relay contract cancels it.
        client.cancel(skybill, created_at=made, now=dt.datetime.now(dt.UTC))
    parcel = sandbox.parcel(skybill)
    assert parcel is not None and parcel.cancelled_at is not None
    cancels = sandbox.requests("cancelSkybill")
    assert [etree.fromstring(c.request.encode()).findtext(".//accountNumber") for c in cancels] == [
        CREDENTIALS.account_number, "12345678",
    ]  # fmt: skip


def test_a_family_account_without_its_own_password_falls_back_to_the_main_one() -> None:
    from chronoforce.chronopost.config import AccountsConfig

    config = AccountsConfig.model_validate({"returns": {"account_number": "11112222"}})
    accounts = ChronopostAccounts.build(CREDENTIALS, config, {})
    returns = accounts.for_family(AccountFamily.RETURNS)
    assert (returns.account_number, returns.password) == ("11112222", CREDENTIALS.password)
    assert accounts.for_family(AccountFamily.RELAY) is CREDENTIALS


def test_a_relay_label_named_by_its_point_id_alone_gets_the_points_address(
    client: ChronopostClient, sandbox: ChronopostSandbox
) -> None:
    request = make_request("86", options=ShipmentOptions(relay_point_id="0601R"))
    result = client.create_shipment(request)
    assert _stored(sandbox, result.skybill_numbers[0])["recipient"]["name"] == "TABAC DU PORT"
    with pytest.raises(CarrierValidationError) as unknown:
        client.create_shipment(make_request("86", options=ShipmentOptions(relay_point_id="2004R")))
    assert (unknown.value.code, unknown.value.field) == ("RELAY_POINT_NOT_FOUND", "relay_point_id")


def test_crash_recovery_finds_labels_made_under_a_family_contract(
    sandbox_url: str, sandbox: ChronopostSandbox
) -> None:
    sandbox.accounts["12345678"] = "654321"
    relay_account = ChronopostCredentials("12345678", "654321")
    accounts = ChronopostAccounts(CREDENTIALS, {AccountFamily.RELAY: relay_account})
    endpoint = ChronopostEndpoint(sandbox_url, connect_timeout=2.0, read_timeout=5.0)
    with ChronopostClient(endpoint, CREDENTIALS, accounts=accounts) as client:
        request = make_request("86", options=ShipmentOptions(relay_point_id="0601R"))
        made = client.create_shipment(request)
        found = client.find_by_reference(request.references.order_number)
    assert [p.skybill_number for p in found] == list(made.skybill_numbers)
