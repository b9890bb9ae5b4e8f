"""Pure statistics for the gateway's disparity endpoints (docs API.md,
"Disparities with confidence intervals" and "Officers ranked by disparity
(nc, md)").

Every function takes plain ints (or floats) and returns plain Python floats,
dicts or None, ready for JSON. Intervals are ``{"value", "low", "high"}``
with every number rounded to 4 decimals, at z = ``Z`` = 1.959964 (95%).

- ``wilson(successes, trials)``: a rate (``search_rate`` = searches / stops,
  ``hit_rate`` = hits / searches) with its Wilson score interval; None when
  the denominator is zero, as API.md says (0 of 10 is 0 with its interval).
- ``rate_ratio(x1, n1, x2, n2)``: ``search_rate_ratio`` / ``hit_rate_ratio``,
  the group's rate / the reference group's, with the Katz log interval
  exp(ln r ± z·√(1/x1 − 1/n1 + 1/x2 − 1/n2)); None when any count is zero.
- ``stop_rate_ratio(s1, p1, s2, p2)``: (stops / population) of the group /
  the same for the reference, interval exp(ln r ± z·√(1/s1 + 1/s2)); None
  when any count is zero or None (no census profile).
- ``reference_ratio(rate)``: the reference group's own ratios,
  ``{"value": 1, "low": None, "high": None}``, or None when its rate is None.
- ``fisher_p(...)``: an officer's ``p_value``, the two-sided Fisher exact
  test of (group vs reference drivers) × (searched vs not).
- ``benjamini_hochberg(p_values)``: the officers' ``q_value``s.
- ``significant(value)``: p and q are published to 6 significant digits
  (round them only after the adjustment).

``fisher_p`` runs the very algorithm of ``scipy.stats.fisher_exact``
(SciPy 1.17, two-sided 2×2: the mode, the 1 + 1e-14 relative tolerance and
the binary search for the other tail's boundary) on the kernels of
``scipy.stats.hypergeom`` (``_pmf``, ``_cdf``, ``_sf``, the per-distribution
methods its public ``pmf``/``cdf``/``sf`` call after validating arguments),
with the public methods' support rules written out. ``fisher_exact`` took
100-450 µs a call here (SciPy 1.17.1; tables of 20 to 3,000 stops), mostly
argument validation around a dozen ``hypergeom`` calls; this gives the same
p-values bit for bit (see tests/test_statistics.py) in 5-110 µs, and caches
results by table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache

from scipy.stats import hypergeom

Z = 1.959964
DECIMALS = 4


def _round(value: float) -> float:
    return round(float(value), DECIMALS)


def _interval(value: float, low: float, high: float) -> dict:
    return {"value": _round(value), "low": _round(low), "high": _round(high)}


def wilson(successes: int, trials: int) -> dict | None:
    """successes / trials with its Wilson score interval; None when trials == 0."""
    if trials == 0:
        return None
    if not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")
    p = successes / trials
    z2 = Z * Z
    denominator = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = Z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denominator
    return _interval(p, max(0.0, centre - half), min(1.0, centre + half))


def _log_interval(ratio: float, variance: float) -> dict:
    log_ratio = math.log(ratio)
    margin = Z * math.sqrt(variance)
    return _interval(ratio, math.exp(log_ratio - margin), math.exp(log_ratio + margin))


def rate_ratio(x1: int, n1: int, x2: int, n2: int) -> dict | None:
    """(x1/n1) / (x2/n2) with the Katz log interval; None when any count is 0."""
    if 0 in (x1, n1, x2, n2):
        return None
    if not (0 < x1 <= n1 and 0 < x2 <= n2):
        raise ValueError(f"need 0 < x <= n, got {x1}/{n1} and {x2}/{n2}")
    return _log_interval((x1 / n1) / (x2 / n2), 1 / x1 - 1 / n1 + 1 / x2 - 1 / n2)


def stop_rate_ratio(s1: int | None, p1: int | None,
                    s2: int | None, p2: int | None) -> dict | None:
    """(s1/p1) / (s2/p2), stops per resident of the group over the reference's,
    with the interval exp(ln r ± z·√(1/s1 + 1/s2)); None when any count is 0
    or None (no census profile)."""
    counts = (s1, p1, s2, p2)
    if any(count is None or count == 0 for count in counts):
        return None
    if any(count < 0 for count in counts):
        raise ValueError(f"negative count in {counts}")
    return _log_interval((s1 / p1) / (s2 / p2), 1 / s1 + 1 / s2)


def reference_ratio(rate: dict | None) -> dict | None:
    """The reference group's own ratio: 1 without an interval, or None when
    its own rate (the ratio's denominator) is None."""
    if rate is None:
        return None
    return {"value": 1, "low": None, "high": None}


def fisher_p(group_searched: int, group_stops: int,
             reference_searched: int, reference_stops: int) -> float:
    """Two-sided Fisher exact p of [[group_searched, group_stops - group_searched],
    [reference_searched, reference_stops - reference_searched]] (equal to
    scipy.stats.fisher_exact's); 1.0 when either row or column is empty."""
    if not (0 <= group_searched <= group_stops and 0 <= reference_searched <= reference_stops):
        raise ValueError("need 0 <= searched <= stops for both rows, got "
                         f"{group_searched}/{group_stops} and "
                         f"{reference_searched}/{reference_stops}")
    return _fisher_two_sided(group_searched, group_stops - group_searched,
                             reference_searched, reference_stops - reference_searched)


def _clip(probability) -> float:
    return min(max(float(probability), 0.0), 1.0)


@lru_cache(maxsize=65536)
def _fisher_two_sided(a: int, b: int, c: int, d: int) -> float:
    # scipy.stats.fisher_exact, two-sided 2x2 branch, step for step.
    n1, n2, n = a + b, c + d, a + c
    if 0 in (n1, n2, n, b + d):
        return 1.0
    total = n1 + n2
    support_low, support_high = max(n - n2, 0), min(n1, n)

    # hypergeom.pmf / cdf / sf(k, total, n1, n) for integer k.
    def pmf(k: int) -> float:
        if k < support_low or k > support_high:
            return 0.0
        return _clip(hypergeom._pmf(k, total, n1, n))

    def cdf(k: int) -> float:
        if k >= support_high:
            return 1.0
        if k < support_low:
            return 0.0
        return _clip(hypergeom._cdf(k, total, n1, n))

    def sf(k: int) -> float:
        if k < support_low:
            return 1.0
        if k >= support_high:
            return 0.0
        return _clip(hypergeom._sf(k, total, n1, n))

    mode = int((n + 1) * (n1 + 1) / (n1 + n2 + 2))
    p_exact = pmf(a)
    p_mode = pmf(mode)
    epsilon = 1e-14
    gamma = 1 + epsilon
    if abs(p_exact - p_mode) / max(p_exact, p_mode) <= epsilon:
        return 1.0
    if a < mode:
        p_lower = cdf(a)
        if pmf(n) > p_exact * gamma:
            return p_lower
        guess = _binary_search(lambda k: -pmf(k), -p_exact * gamma, mode, n)
        p_value = p_lower + sf(guess)
    else:
        p_upper = sf(a - 1)
        if pmf(0) > p_exact * gamma:
            return p_upper
        guess = _binary_search(pmf, p_exact * gamma, 0, mode)
        p_value = p_upper + cdf(guess)
    return min(p_value, 1.0)


def _binary_search(values: Callable[[int], float], target: float, low: int, high: int) -> int:
    """The i in [low - 1, high] with values(i) <= target < values(i + 1), for
    values ascending on [low, high] (scipy.stats._stats_py's search)."""
    while low < high:
        middle = low + (high - low) // 2
        value = values(middle)
        if value < target:
            low = middle + 1
        elif value > target:
            high = middle - 1
        else:
            return middle
    return low if values(low) <= target else low - 1


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg q-values, in the input order: the step-up
    min over j >= i of m/j · p_(j), capped at 1 (R's p.adjust(p, "BH"))."""
    m = len(p_values)
    for p in p_values:
        if not 0 <= p <= 1:
            raise ValueError(f"p-value out of [0, 1]: {p}")
    descending = sorted(range(m), key=lambda i: p_values[i], reverse=True)
    q_values = [0.0] * m
    running = 1.0
    for offset, i in enumerate(descending):
        rank = m - offset
        running = min(running, m / rank * p_values[i])
        q_values[i] = float(running)
    return q_values


def significant(value: float | None, digits: int = 6) -> float | None:
    """value rounded to `digits` significant digits (None stays None, 0 stays 0)."""
    if value is None:
        return None
    if digits < 1:
        raise ValueError(f"digits must be at least 1, got {digits}")
    if value == 0:
        return 0.0
    return float(f"{value:.{digits}g}")
