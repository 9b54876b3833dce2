"""Address check cost: per-address time of the full normalizer on 10,000 real-looking addresses,
and the postal data's load time and memory.

Addresses are drawn from the committed postal tables themselves (so every one is real): French
codes with one of their names written as people do (case, accents, SAINT/ST, arrondissements,
CEDEX), European ones of every checked country, and about one in ten broken the ways the issue
lists (a lost leading zero, a Lyon code for Paris, a city of another code). Load time and memory
are measured in a fresh process first (tracemalloc over loading every table), then the check is
timed per address, best of five rounds. Target: well under a millisecond per address.

`python -m bench.bench_address [ADDRESSES]`
"""

from __future__ import annotations

import gc
import json
import random
import statistics
import subprocess
import sys
import time
import tracemalloc
from typing import Any

from bench.common import RESULTS, report
from chronoforce.domain import postal
from chronoforce.domain.address import normalize_party
from chronoforce.domain.models import Address, Contact, Party

COUNT = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 10_000
ROUNDS = 5
TARGET_MS = 0.25  # "well under a millisecond" on this 2-core machine
STREETS = (
    "{n} rue de la République",
    "{n} avenue Jean Jaurès",
    "{n} Hauptstraße",
    "{n} Kerkstraat",
)


def load_cost(traced: bool) -> dict[str, float]:
    """Seconds to load every table, or (traced) the MiB they hold, in this fresh process:
    tracemalloc slows loading several times, so time and memory are two runs."""
    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    postal.france()
    france_s = time.perf_counter() - started
    france_mib = tracemalloc.get_traced_memory()[0] / 2**20 if traced else 0.0
    for country in postal.LEVELS:
        postal.europe(country)
    total_s = time.perf_counter() - started
    if not traced:
        return {"france_load_s": france_s, "all_load_s": total_s}
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"france_mib": france_mib, "data_mib": current / 2**20, "peak_mib": peak / 2**20}


def _spelled(rng: random.Random, city: str) -> str:
    choice = rng.random()
    if choice < 0.3:
        return city.title()
    if choice < 0.4:
        return city.replace("SAINT-", "ST ").replace("SAINTE-", "STE ")
    if choice < 0.5:
        return city.lower().replace("-", " ")
    return city


def addresses(count: int, seed: int = 20) -> list[Party]:
    rng = random.Random(seed)
    fr = postal.france()
    fr_codes = sorted(fr.names)
    europe = {c: sorted(b.names) for c in postal.LEVELS if (b := postal.europe(c))}
    out: list[Party] = []
    while len(out) < count:
        roll = rng.random()
        if roll < 0.7:
            code = rng.choice(fr_codes)
            city, country = _spelled(rng, rng.choice(fr.names[code])), "FR"
            if code.startswith("750") and rng.random() < 0.3:
                city = f"Paris {int(code[3:])}e"
            elif rng.random() < 0.03:
                city += " CEDEX"
        else:
            country = rng.choice(sorted(europe))
            book = postal.europe(country)
            assert book is not None
            code = rng.choice(europe[country])
            names = book.names[code] or ("Centrum",)  # CODE countries keep no names
            city = _spelled(rng, rng.choice(names))
            # These keep part of the code only (postal.lookup_key): make a whole one.
            code += {"NL": "AB", "PT": "001", "GB": "1 1AA"}.get(country, "")
        broken = rng.random()
        if broken < 0.04 and code.startswith("0"):
            code = code[1:]  # the spreadsheet's lost zero
        elif broken < 0.08:
            city = rng.choice(("Paris", "Lyon", "Marseille", "Berlin", "Wien"))
        street = rng.choice(STREETS).format(n=rng.randint(1, 180))
        out.append(
            Party(
                Address("Camille Martin", "", street, "", code, city, country),
                Contact(phone="+33612345678", email="camille@example.fr"),
            )
        )
    return out


def _fresh_load_cost() -> dict[str, float]:
    """Run load_cost in new interpreters so nothing is cached yet (best of three for time)."""
    out: dict[str, float] = {}
    for traced in (False, False, False, True):
        code = f"import json; from bench.bench_address import load_cost; print(json.dumps(load_cost({traced})))"
        printed = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        for key, value in json.loads(printed.strip().splitlines()[-1]).items():
            out[key] = min(out.get(key, value), value)
    return out


def main() -> None:
    cost = _fresh_load_cost()
    parties = addresses(COUNT)
    for party in parties[:200]:  # warm the tables and the interpreter
        normalize_party(party, "recipient")
    per_address: list[float] = []
    rounds: list[float] = []
    refused = 0
    for round_ in range(ROUNDS):
        gc.collect()
        gc.disable()
        times = []
        for party in parties:
            started = time.perf_counter()
            result = normalize_party(party, "recipient")
            times.append(time.perf_counter() - started)
            if round_ == 0:
                refused += not result.ok
        gc.enable()
        rounds.append(sum(times))
        if not per_address or sum(times) < sum(per_address):
            per_address = times
    ms = [t * 1000 for t in per_address]
    mean_ms = statistics.fmean(ms)
    p99_ms = sorted(ms)[int(len(ms) * 0.99)]
    extra: dict[str, Any] = {
        "addresses": COUNT,
        "refused": refused,
        "mean_ms": mean_ms,
        "median_ms": statistics.median(ms),
        "p99_ms": p99_ms,
        "max_ms": max(ms),
        "rounds_s": rounds,
        **cost,
        "data": {
            "france": "npm @etalab/decoupage-administratif 6.0.0 + codes-postaux 4.1.2 (Licence "
            "Ouverte), src/chronoforce/domain/data/postal_fr.csv",
            "europe": "PyPI countrystatecity-postal-codes 2.0.1 (ODbL 1.0), "
            "src/chronoforce/domain/data/postal_europe.csv",
            "refresh": "python scripts/build_postal_data.py",
        },
    }
    report(
        "address",
        metric="check_ms_per_address",
        value=mean_ms,
        unit="ms",
        ratio=TARGET_MS / mean_ms,
        target=TARGET_MS,
        meets=p99_ms < 1.0 and mean_ms < TARGET_MS,
        direction="lower is better",
        extra=extra,
    )
    print(
        f"  {COUNT} addresses ({refused} refused): mean {mean_ms:.3f} ms, median "
        f"{statistics.median(ms):.3f} ms, p99 {p99_ms:.3f} ms, max {max(ms):.2f} ms; data load "
        f"{cost['france_load_s']:.2f} s (France) / {cost['all_load_s']:.2f} s (all), "
        f"{cost['france_mib']:.1f} MiB (France) / {cost['data_mib']:.1f} MiB (all) held, "
        f"{cost['peak_mib']:.1f} MiB peak",
        flush=True,
    )
    _plot(ms, mean_ms)


def _plot(ms: list[float], mean_ms: float) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(ms, bins=80, range=(0, max(1.2, sorted(ms)[int(len(ms) * 0.999)])))
    ax.axvline(TARGET_MS, color="red", linestyle="--", label=f"target {TARGET_MS} ms")
    ax.axvline(1.0, color="black", linestyle=":", label="1 ms")
    ax.axvline(mean_ms, color="green", label=f"mean {mean_ms:.3f} ms")
    ax.set_xlabel("check time per address (ms)")
    ax.set_ylabel("addresses")
    ax.set_title(f"address check: {len(ms)} addresses, full normalizer")
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "address.png")
    plt.close(fig)


if __name__ == "__main__":
    main()
