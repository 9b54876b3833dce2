"""Postal code against city (issue 20): La Poste's base for France, a European set elsewhere.

Right addresses pass untouched, fixable ones are fixed only when the city agrees, wrong ones
become errors naming the field with candidates. Cases per French département are drawn from the
committed table itself, so every département (mainland, Corsica, DOM, Monaco) is covered.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chronoforce.domain import postal, postal_formats
from chronoforce.domain.address import (
    FIELD_LIMITS,
    NormalizedParty,
    UnsendableAddressError,
    normalize_party,
    require_sendable,
    resolve_country,
)
from chronoforce.domain.models import Address, Contact, Party


def check(postal_code: str, city: str, country: str = "FR", **contact: str) -> NormalizedParty:
    address = Address(
        name="Camille Martin", line1="12 rue de la Paix", postal_code=postal_code, city=city,
        country=country,
    )  # fmt: skip
    return normalize_party(Party(address, Contact(**contact)), "recipient")


def error(result: NormalizedParty) -> Any:
    assert not result.ok, result.issues
    return result.errors[0]


# --- the failures of the issue ---------------------------------------------------------------------


def test_7508_paris_is_not_sent_to_ardeche() -> None:
    e = error(check("7508", "Paris"))
    assert e.field == "postal_code" and "07508" in e.message and "PARIS" in e.message
    assert e.candidates[0] == ("75008", "PARIS")  # the code most like what was typed first


def test_1011_berlin_is_not_sent_as_01011() -> None:
    e = error(check("1011", "Berlin", "DE"))
    assert e.field == "postal_code" and "01011" in e.message
    assert all(
        city == "BERLIN" and code.startswith(("10", "12", "13", "14"))
        for code, city in e.candidates
    )


def test_69001_paris_names_lyon_and_the_paris_codes() -> None:
    e = error(check("69001", "Paris"))
    assert (e.code, e.field) == ("POSTAL_CODE_CITY_MISMATCH", "postal_code")
    assert e.message.startswith("69001 is LYON; PARIS is 75001–75020, 75116 — did you mean")
    assert ("69001", "LYON") in e.candidates  # or the code was right and the city is not


def test_2a004_ajaccio_is_an_insee_code_not_a_postal_code() -> None:
    e = error(check("2A004", "Ajaccio"))
    assert e.field == "postal_code" and "INSEE" in e.message
    assert ("20000", "AJACCIO") in e.candidates


# --- France: every département, the arrondissements, CEDEX, the ways people write ---------------


def _departments() -> list[Any]:
    book = postal.france()
    first: dict[str, str] = {}
    for code in sorted(book.names):
        first.setdefault(code[:3] if code.startswith(("97", "98")) else code[:2], code)
    return [pytest.param(code, book.names[code][0], id=f"dep-{dep}") for dep, code in first.items()]


DEPARTMENTS = _departments()


def test_every_departement_is_in_the_table() -> None:
    ids = {p.id for p in DEPARTMENTS}
    mainland = {f"dep-{n:02d}" for n in range(1, 96) if n != 20}
    overseas = {
        f"dep-{d}" for d in ("971", "972", "973", "974", "975", "976", "980", "986", "987", "988")
    }
    assert mainland | overseas | {"dep-20"} <= ids


@pytest.mark.parametrize(("code", "city"), DEPARTMENTS)
def test_a_right_address_of_each_departement_passes_untouched(code: str, city: str) -> None:
    result = check(code, city)
    assert result.ok, result.issues
    assert result.party.address.postal_code == code
    assert not [i for i in result.issues if i.field == "postal_code"], result.issues


@pytest.mark.parametrize(("code", "city"), DEPARTMENTS)
def test_a_city_of_another_departement_is_an_error_with_candidates(code: str, city: str) -> None:
    other = "MARSEILLE" if not code.startswith("13") else "LILLE"
    e = error(check(code, other))
    assert (e.code, e.field) == ("POSTAL_CODE_CITY_MISMATCH", "postal_code")
    assert e.candidates and e.candidates[0][1] == other


@pytest.mark.parametrize(("code", "city"), [p.values for p in DEPARTMENTS if p.values[0] < "10"])
def test_a_lost_leading_zero_is_restored_when_the_city_agrees(code: str, city: str) -> None:
    result = check(code[1:], city)
    assert result.ok and result.party.address.postal_code == code, result.issues
    assert "POSTAL_CODE_FIXED" in {i.code for i in result.issues}


CITIES = [
    ("75008", "Paris 8"), ("75008", "PARIS 08"), ("75008", "Paris 8e"), ("75008", "Paris 8ème"),
    ("75016", "Paris 16e"), ("75116", "Paris 16"), ("69001", "Lyon 1er"), ("69003", "LYON 3E"),
    ("13008", "Marseille 8e"), ("13001", "Marseille"), ("75381", "Paris Cedex 08"),
    ("69441", "Lyon Cedex 3"), ("13290", "Les Milles"), ("13290", "Aix-en-Provence"),
    ("74940", "Annecy-le-Vieux"), ("42000", "Saint-Étienne"), ("42000", "ST ETIENNE"),
    ("42000", "st-etienne"), ("97110", "Pointe-à-Pitre"), ("97400", "Saint-Denis"),
    ("98000", "Monaco"), ("98000", "Monte-Carlo"), ("20200", "Bastia"), ("20000", "AJACCIO"),
    ("13520", "Le Paradou"), ("13520", "Paradou"), ("75008", "Paris VIIIe"), ("75020", "PARIS XX"),
]  # fmt: skip


@pytest.mark.parametrize(("code", "city"), CITIES)
def test_cities_match_the_way_people_write_them(code: str, city: str) -> None:
    result = check(code, city)
    assert result.ok, result.issues
    assert not [i for i in result.issues if i.severity != "info"], result.issues


@pytest.mark.parametrize(
    ("code", "city", "meant"),
    [("75015", "Paris 8e", "75008"), ("69002", "Lyon 1er", "69001"), ("13008", "Marseille 1er", "13001"),
     ("92042", "Lyon Cedex", "69001"), ("06500", "Nice", "06000")],
)  # fmt: skip
def test_arrondissement_or_cedex_of_another_code_is_an_error(
    code: str, city: str, meant: str
) -> None:
    e = error(check(code, city))
    assert e.field == "postal_code"
    assert meant in {c for c, _ in e.candidates}, e.candidates


def test_a_prefix_is_removed_only_when_the_city_agrees() -> None:
    assert check("F-75008", "Paris").party.address.postal_code == "75008"
    e = error(check("F-6500", "Paris"))
    assert "06500" in e.message and e.field == "postal_code"
    assert "prefix" in error(check("D-75008", "Paris")).message


def test_a_city_unknown_for_a_valid_code_is_a_warning_with_the_code_communes() -> None:
    result = check("75008", "Pariss")
    assert result.ok  # a typo next to the right name: read, and said
    assert "CITY_SPELLING" in {i.code for i in result.issues}
    hamlet = check("97133", "Gustavia")
    assert hamlet.ok
    unknown = next(i for i in hamlet.issues if i.code == "CITY_UNKNOWN")
    assert unknown.candidates == (("97133", "SAINT-BARTHELEMY"),)


def test_an_unknown_french_code_is_an_error() -> None:
    e = error(check("75000", "Paris"))
    assert e.code == "POSTAL_CODE_UNKNOWN" and ("75001", "PARIS") in e.candidates


# --- other European countries ---------------------------------------------------------------------

EUROPE_OK = [
    ("DE", "10115", "Berlin"), ("DE", "60311", "Frankfurt"), ("DE", "80331", "München"),
    ("AT", "1010", "Wien"), ("AT", "8010", "Graz"), ("CH", "8001", "Zürich"), ("CH", "1000", "Lausanne"),
    ("LI", "9490", "Vaduz"), ("LU", "L-1616", "Luxembourg"), ("NL", "1012 AB", "Amsterdam"),
    ("SE", "111 20", "Stockholm"), ("NO", "0150", "Oslo"), ("FI", "00100", "Helsinki"),
    ("DK", "2100", "København Ø"), ("AD", "AD500", "Andorra la Vella"), ("BE", "1020", "Bruxelles"),
    ("PL", "00-950", "Warszawa"), ("CZ", "110 00", "Praha 1"), ("SK", "81101", "Bratislava"),
    ("SI", "1000", "Ljubljana"), ("HR", "10000", "Zagreb"), ("HU", "1051", "Budapest"),
    ("IT", "00184", "Roma"), ("PT", "1000-001", "Lisboa"), ("LV", "LV-1050", "Riga"),
    ("GB", "SW1A 1AA", "London"), ("ES", "28013", "Madrid"), ("GR", "10431", "Athina"),
    ("IE", "D02 X285", "Dublin"), ("RO", "010011", "Bucuresti"), ("BG", "1000", "Sofia"),
]  # fmt: skip


@pytest.mark.parametrize(("country", "code", "city"), EUROPE_OK)
def test_right_european_addresses_pass(country: str, code: str, city: str) -> None:
    result = check(code, city, country)
    assert result.ok, result.issues


EUROPE_WRONG = [
    ("DE", "80331", "Hamburg"), ("AT", "1010", "Graz"), ("CH", "8001", "Genève"),
    ("NL", "1012AB", "Rotterdam"), ("SE", "11120", "Göteborg"), ("NO", "0150", "Bergen"),
    ("DK", "8000", "Odense"), ("LU", "1111", "Esch-sur-Alzette"), ("FI", "00100", "Tampere"),
    ("AD", "AD500", "Canillo"), ("LI", "9490", "Schaan"),
]  # fmt: skip


@pytest.mark.parametrize(("country", "code", "city"), EUROPE_WRONG)
def test_city_level_countries_refuse_a_city_of_another_code(
    country: str, code: str, city: str
) -> None:
    e = error(check(code, city, country))
    assert (e.code, e.field) == ("POSTAL_CODE_CITY_MISMATCH", "postal_code")
    assert e.candidates


@pytest.mark.parametrize(("country", "typed", "city", "sent"), [
    ("DE", "1067", "Dresden", "01067"), ("IT", "184", "Roma", "00184"), ("PL", "0950", "Warszawa", "00950"),
    ("BE", "B-1000", "Bruxelles", "1000"), ("CH", "CH-8001", "Zürich", "8001"),
])  # fmt: skip
def test_european_corrections_stand_when_the_code_exists(
    country: str, typed: str, city: str, sent: str
) -> None:
    result = check(typed, city, country)
    assert result.ok and result.party.address.postal_code == sent, result.issues


@pytest.mark.parametrize(("country", "typed", "city"), [
    ("ES", "8001", "Barcelona"), ("ES", "E-28013", "Madrid"), ("IT", "9999", "Roma"), ("DE", "1011", "Berlin"),
])  # fmt: skip
def test_european_corrections_that_cannot_be_confirmed_are_errors(
    country: str, typed: str, city: str
) -> None:
    assert error(check(typed, city, country)).field == "postal_code"


def test_every_country_of_the_european_file_has_a_level() -> None:
    path = Path(postal.__file__).parent / "data" / "postal_europe.csv"
    countries = {
        line[:2] for line in path.read_text("utf-8").splitlines() if not line.startswith("#")
    }
    assert countries == set(postal.LEVELS)


# --- formats from Chronopost's annex; countries no product reaches --------------------------------


def test_the_project_table_covers_chronopost_annex(reference_dir: Path) -> None:
    with (reference_dir / "chronopost" / "postcodes.csv").open(encoding="utf-8") as f:
        annex = list(csv.DictReader(f))
    table = postal_formats.formats()
    for row in annex:
        ours = table[row["country_iso2"]]
        assert " | ".join(ours.alternatives) == row["format"], row
        assert (ours.pattern.pattern if ours.pattern else "") == row["regex"], row
        if row["example"] and row["regex"] and row["country_iso2"] != "IE":
            formatted = postal_formats.format_postal(row["country_iso2"], row["example"])
            assert formatted.valid and formatted.code == row["example"], (row, formatted)


@pytest.mark.parametrize(("country", "typed", "sent"), [
    ("NL", "1012 ab", "1012AB"), ("PL", "00-950", "00950"), ("PT", "1000-001", "1000001"),
    ("CZ", "110 00", "11000"), ("SE", "111 20", "11120"), ("GB", "sw1a1aa", "SW1A 1AA"),
    ("KY", "ky11000", "KY1-1000"), ("MT", "vlt1117", "VLT 1117"), ("CA", "K1A 0B1", "K1A0B1"),
    ("IE", "A65 F4E2", "A65F4E2"),  # a real Eircode the annex's ANNANNN would refuse
])  # fmt: skip
def test_codes_are_sent_in_the_annex_format(country: str, typed: str, sent: str) -> None:
    formatted = postal_formats.format_postal(country, typed)
    assert formatted.valid and formatted.code == sent


@pytest.mark.parametrize(
    ("country", "typed"), [("CA", "D1A 0B1"), ("NL", "0123AB"), ("AD", "AD900")]
)
def test_stricter_real_shapes_apply_on_top_of_the_annex(country: str, typed: str) -> None:
    assert not postal_formats.format_postal(country, typed).valid


@pytest.mark.parametrize("country", ["IM", "AQ", "SS", "Isle of Man"])
def test_a_country_no_product_reaches_is_an_error_naming_it(country: str) -> None:
    e = error(check("12345", "Somewhere", country))
    assert (e.code, e.field) == ("COUNTRY_NOT_SERVED", "country")
    assert (resolve_country(country) or country) in e.message
    with pytest.raises(UnsendableAddressError):
        require_sendable(
            Party(Address(name="A", line1="1 road", city="X", country=country), Contact()),
            "recipient",
        )


# --- issue 17 item 10 -----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "code"), [("Northern Ireland", "GB"), ("Irlande du Nord", "GB"),
                                            ("Holland", "NL"), ("The Netherlands", "NL"), ("XI", "GB")])  # fmt: skip
def test_northern_ireland_and_holland_are_known(name: str, code: str) -> None:
    assert resolve_country(name) == code


@pytest.mark.parametrize("email", ["josé@example.fr", "zoë.müller@example.de", "léa@exämple.fr"])
def test_emails_with_accented_local_parts_are_kept(email: str) -> None:
    result = check("75008", "Paris", email=email)
    sent = result.party.contact.email
    assert sent.split("@")[0] == email.split("@")[0]
    assert sent.split("@")[1].isascii()  # an accented domain goes out as its punycode
    assert "EMAIL_INVALID" not in {i.code for i in result.issues}


# --- the normalizer's promises under any input --------------------------------------------------

_CITY = st.sampled_from(["Paris", "PARIS 8", "Lyon 1er", "Berlin", "Ajaccio", "Menton", "Saint-Étienne",
                         "Paris Cedex 08", "Graz", "Zürich", "", "Narnia", "Ω"]) | st.text(max_size=60)  # fmt: skip
_CODE = st.sampled_from(["7508", "1011", "69001", "2A004", "F-75008", "D-10115", "L-1616", "CH 8001",
                         "0000000000", "75 008", "1012 ab", "sw1a 1aa"]) | st.text(max_size=14)  # fmt: skip
_COUNTRY = st.sampled_from(["FR", "DE", "AT", "CH", "NL", "BE", "ES", "GB", "PT", "MC", "GP", "IM", "IE",
                            "Holland", "Northern Ireland", ""]) | st.text(max_size=8)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(_CODE, _CITY, _COUNTRY)
def test_postal_checks_raise_only_their_typed_error_and_fit_every_limit(
    code: str, city: str, country: str
) -> None:
    party = Party(
        Address(name="A B", line1="1 rue X", postal_code=code, city=city, country=country),
        Contact(),
    )
    result = normalize_party(party, "recipient")  # never raises
    address = result.party.address
    assert len(address.postal_code) <= FIELD_LIMITS["postal_code"]
    assert len(address.city) <= FIELD_LIMITS["city"]
    assert len(address.country) <= FIELD_LIMITS["country"]
    for issue in result.issues:
        for cand_code, cand_city in issue.candidates:
            assert (
                len(cand_code) <= FIELD_LIMITS["postal_code"]
                and len(cand_city) <= FIELD_LIMITS["city"]
            )
    try:
        require_sendable(party, "recipient")
    except UnsendableAddressError:
        assert not result.ok
    else:
        assert result.ok


# --- relay and pickup (warehouse) addresses: the same checks ------------------------------------


def test_the_warehouse_address_pickups_come_to_is_checked_like_any_other() -> None:
    from chronoforce.config import Settings
    from chronoforce.pipeline.runtime import shipper_party

    good = Settings()
    assert shipper_party(good).address.postal_code == "94250"
    shipper = good.chronopost.shipper.model_copy(update={"postal_code": "69001", "city": "Paris"})
    bad = good.model_copy(
        update={"chronopost": good.chronopost.model_copy(update={"shipper": shipper})}
    )
    with pytest.raises(UnsendableAddressError) as caught:
        shipper_party(bad)
    assert caught.value.field == "postal_code" and caught.value.role == "shipper"
    assert "75001–75020" in str(caught.value)


@pytest.mark.parametrize("name", ["postal_fr.csv", "postal_europe.csv", "postal_formats.csv"])
def test_every_data_file_names_its_source(name: str) -> None:
    path = Path(postal.__file__).parent / "data" / name
    header = "".join(
        line for line in path.read_text("utf-8").splitlines(True) if line.startswith("#")
    )
    assert "Source:" in header
    script = (Path(__file__).parents[2] / "scripts" / "build_postal_data.py").read_text("utf-8")
    if name != "postal_formats.csv":  # the two built files name the pinned package versions
        assert "build_postal_data.py" in header
        for package, version in re.findall(r'= \("([^"]+)", "([0-9.]+)"\)', script):
            if package.split("/")[-1] in header:
                assert version in header, (package, version)
