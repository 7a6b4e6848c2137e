"""Small statistics helpers shared by the benchmarks (pure)."""

from __future__ import annotations

import statistics


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "mean": statistics.fmean(values) if values else float("nan"),
    }


def spread(values: list[float]) -> dict:
    """Median and min/max of per-round figures."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "rounds": values}
