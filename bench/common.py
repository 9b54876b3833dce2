"""What every benchmark shares: the result record, its JSON file, its plot, the summary line."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def report(
    name: str,
    *,
    metric: str,
    value: float,
    unit: str,
    ratio: float | None,
    target: float | None,
    meets: bool,
    direction: str = "higher is better",
    extra: dict[str, Any] | None = None,
    series: dict[str, Sequence[float]] | None = None,
) -> dict[str, Any]:
    """Print `bench NAME: metric=value ratio=value target=value`, write NAME.json and NAME.png."""
    result: dict[str, Any] = {
        "name": name,
        "metric": metric,
        "value": value,
        "unit": unit,
        "ratio": ratio,
        "target": target,
        "direction": direction,
        "meets": meets,
        "machine": machine(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **(extra or {}),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    _plot(name, metric, value, unit, series)
    ratio_text = "n/a" if ratio is None else f"{ratio:.3f}"
    target_text = "n/a" if target is None else f"{target}"
    print(
        f"bench {name}: {metric}={value:.4g}{unit and ' ' + unit} ratio={ratio_text} "
        f"target={target_text} ({direction}) {'MEETS' if meets else 'MISSES'}",
        flush=True,
    )
    return result


def _plot(
    name: str, metric: str, value: float, unit: str, series: dict[str, Sequence[float]] | None
) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the bench extra is not installed: JSON only
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    if series:
        for label, values in series.items():
            ax.plot(list(values), label=label)
        ax.legend()
    else:
        ax.bar([metric], [value])
    ax.set_title(f"{name}: {metric} ({unit})")
    fig.tight_layout()
    fig.savefig(RESULTS / f"{name}.png")
    plt.close(fig)
