"""Numbers as the study reports write them: values with intervals, differences in points."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hub.study.facts import interval


def value_text(method: Mapping[str, Any], metric: str) -> str:
    value = method.get(metric)
    if value is None:
        return "—"
    ci = interval(method, metric)
    return f"{value:.3f}" + (f" ({ci[0]:.3f}–{ci[1]:.3f})" if ci else "")


def difference_text(test: Mapping[str, Any] | None) -> str:
    """``+1.2 (−0.4 to +2.9), p 0.21`` in points, from a paired comparison."""
    if test is None or test.get("difference") is None:
        return "—"
    text = f"{100 * test['difference']:+.1f}"
    if test.get("ci"):
        low, high = test["ci"]
        text += f" ({100 * low:+.1f} to {100 * high:+.1f})"
    return text + (f", p {test['p_value']:.2g}" if test.get("p_value") is not None else "")


def _tenths_of_a_point(delta: float) -> float:
    """``100 * delta`` to one decimal, a rounded-away sign dropped (``-0.0`` reads as a loss)."""
    return round(100 * delta, 1) + 0.0


def points(delta: float) -> str:
    return f"{_tenths_of_a_point(delta):+.1f} points"


def mean_sd_text(stat: Mapping[str, Any] | None, digits: int = 3) -> str:
    if stat is None:
        return "—"
    return f"{stat['mean']:.{digits}f} ± " + ("—" if stat["sd"] is None else f"{stat['sd']:.{digits}f}")


def points_mean_sd(stat: Mapping[str, Any] | None) -> str:
    """``+1.2 ± 0.8 points`` from a mean ± sd of differences in accuracy."""
    if stat is None:
        return "—"
    sd = "—" if stat["sd"] is None else f"{100 * stat['sd']:.1f}"
    return f"{_tenths_of_a_point(stat['mean']):+.1f} ± {sd} points"
