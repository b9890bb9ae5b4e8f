"""services.gateway.statistics, against values that do not come from the
module: SciPy's own routines, published worked examples and formulas written
out by hand (docs API.md, "Disparities with confidence intervals" and
"Officers ranked by disparity (nc, md)")."""

from __future__ import annotations

import json
import math
import random

import pytest
from scipy.stats import binomtest, false_discovery_control, fisher_exact

from services.gateway.statistics import (
    Z,
    benjamini_hochberg,
    fisher_p,
    rate_ratio,
    reference_ratio,
    significant,
    stop_rate_ratio,
    wilson,
)

pytestmark = pytest.mark.unit


def test_z_is_the_documented_constant():
    assert Z == 1.959964


# --- Wilson score interval -------------------------------------------------


@pytest.mark.parametrize("successes, trials", [
    (0, 10), (10, 10), (0, 1), (1, 1), (1, 2), (3, 7), (81, 263), (310, 5120),
    (61, 310), (1, 1000), (999, 1000), (5000, 5120),
])
def test_wilson_matches_scipy_binomtest(successes, trials):
    # SciPy's z is ndtri(0.975) = 1.95996398..., API.md's 1.959964: equal at 4 decimals.
    expected = binomtest(successes, trials).proportion_ci(method="wilson")

    assert wilson(successes, trials) == {"value": round(successes / trials, 4),
                                         "low": round(float(expected.low), 4),
                                         "high": round(float(expected.high), 4)}


@pytest.mark.parametrize("successes, trials, low, high", [
    # Newcombe RG (1998), "Two-sided confidence intervals for the single
    # proportion: comparison of seven methods", Statistics in Medicine 17,
    # 857-872, method 3 (score interval without continuity correction); the
    # limits agree with binomtest(...).proportion_ci(method="wilson").
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_matches_newcombe_1998(successes, trials, low, high):
    interval = wilson(successes, trials)

    assert (interval["low"], interval["high"]) == (low, high)


def test_wilson_reproduces_the_api_example():
    assert wilson(310, 5120) == {"value": 0.0605, "low": 0.0543, "high": 0.0674}


def test_a_rate_is_null_only_when_its_denominator_is_zero():
    assert wilson(0, 0) is None

    none_of_ten = wilson(0, 10)
    assert none_of_ten["value"] == 0 and none_of_ten["low"] == 0
    assert 0 < none_of_ten["high"] < 1
    assert math.copysign(1, none_of_ten["low"]) == 1  # not -0.0

    all_of_ten = wilson(10, 10)
    assert all_of_ten["value"] == 1 and all_of_ten["high"] == 1 and all_of_ten["low"] < 1


def test_wilson_refuses_impossible_counts():
    with pytest.raises(ValueError):
        wilson(11, 10)
    with pytest.raises(ValueError):
        wilson(-1, 10)


# --- Katz log interval for a ratio of rates --------------------------------


def test_rate_ratio_by_hand():
    # 310 searches in 5120 stops against 400 in 13000:
    value = (310 / 5120) / (400 / 13000)
    se = math.sqrt(1 / 310 - 1 / 5120 + 1 / 400 - 1 / 13000)
    low = math.exp(math.log(value) - 1.959964 * se)
    high = math.exp(math.log(value) + 1.959964 * se)
    assert (round(value, 4), round(low, 4), round(high, 4)) == (1.9678, 1.7026, 2.2742)

    assert rate_ratio(310, 5120, 400, 13000) == {"value": 1.9678, "low": 1.7026,
                                                 "high": 2.2742}


def test_rate_ratio_matches_a_published_worked_example():
    # 30 of 50 treated vs 15 of 50 on placebo report relief: RR 2, 95% CI
    # 1.237 to 3.232 (z = 1.96; worked exercise reproduced at
    # https://plainmath.net/2629/clinical-conducted-compare-experimental-medication-symptoms-participan).
    ratio = rate_ratio(30, 50, 15, 50)

    assert ratio["value"] == 2
    assert ratio["low"] == pytest.approx(1.237, abs=5e-4)
    assert ratio["high"] == pytest.approx(3.232, abs=5e-4)


def test_rate_ratio_of_everyone_has_no_width():
    assert rate_ratio(5, 5, 7, 7) == {"value": 1.0, "low": 1.0, "high": 1.0}


@pytest.mark.parametrize("counts", [(0, 10, 3, 10), (3, 0, 3, 10), (3, 10, 0, 10),
                                    (3, 10, 3, 0), (0, 0, 0, 0)])
def test_a_ratio_is_null_when_any_count_in_its_formula_is_zero(counts):
    assert rate_ratio(*counts) is None


# --- Likelihood of stop ----------------------------------------------------


def test_stop_rate_ratio_by_hand():
    value = (5120 / 40101) / (12000 / 150000)
    se = math.sqrt(1 / 5120 + 1 / 12000)
    low = math.exp(math.log(value) - 1.959964 * se)
    high = math.exp(math.log(value) + 1.959964 * se)
    assert (round(value, 4), round(low, 4), round(high, 4)) == (1.596, 1.5446, 1.649)

    assert stop_rate_ratio(5120, 40101, 12000, 150000) == {"value": 1.596, "low": 1.5446,
                                                           "high": 1.649}


@pytest.mark.parametrize("counts", [(0, 100, 5, 100), (5, 0, 5, 100), (5, 100, 0, 100),
                                    (5, 100, 5, 0), (5, None, 5, 100), (5, 100, 5, None),
                                    (None, None, None, None)])
def test_stop_rate_ratio_is_null_without_counts_or_profile(counts):
    assert stop_rate_ratio(*counts) is None


def test_the_reference_groups_own_ratio():
    assert reference_ratio(wilson(3, 10)) == {"value": 1, "low": None, "high": None}
    assert reference_ratio(wilson(0, 10)) == {"value": 1, "low": None, "high": None}
    assert reference_ratio(wilson(0, 0)) is None
    assert reference_ratio(None) is None


def test_results_are_plain_json_values():
    results = [wilson(3, 7), rate_ratio(3, 7, 2, 9), stop_rate_ratio(3, 70, 2, 90)]
    for result in results:
        assert all(type(number) is float for number in result.values())
    assert type(fisher_p(3, 7, 2, 9)) is float
    assert all(type(q) is float for q in benjamini_hochberg([0.5, 0.01]))
    json.dumps(results + [reference_ratio(wilson(1, 2)), fisher_p(3, 7, 2, 9)])


# --- Fisher exact test -----------------------------------------------------


def test_fisher_tea_tasting():
    # Fisher's lady tasting tea, [[3, 1], [1, 3]]: two-sided p = 34/70 = 0.4857.
    assert round(fisher_p(3, 4, 1, 4), 4) == 0.4857
    assert fisher_p(3, 4, 1, 4) == pytest.approx(34 / 70, rel=1e-12)


def test_fisher_is_one_without_group_or_reference_drivers():
    assert fisher_p(0, 0, 5, 40) == 1.0
    assert fisher_p(5, 40, 0, 0) == 1.0
    assert fisher_p(0, 0, 0, 0) == 1.0


def _scipy_p(group_searched, group_stops, reference_searched, reference_stops):
    table = [[group_searched, group_stops - group_searched],
             [reference_searched, reference_stops - reference_searched]]
    return float(fisher_exact(table).pvalue)


def test_fisher_equals_scipy_on_every_small_table():
    # Every 2x2 table with cells 0..6, zeros of every kind included.
    for a in range(7):
        for b in range(7):
            for c in range(7):
                for d in range(7):
                    assert fisher_p(a, a + b, c, c + d) == _scipy_p(a, a + b, c, c + d), \
                        (a, b, c, d)


def test_fisher_equals_scipy_on_random_tables():
    rng = random.Random(20240601)
    tables = []
    for _ in range(1500):
        size = rng.choice([20, 100, 400, 1500])
        group_stops, reference_stops = rng.randint(0, size), rng.randint(0, size)
        rate = rng.choice([0.0, 0.01, 0.05, 0.1, 0.3, 0.6, 0.95, 1.0])
        lift = rng.choice([0.5, 1, 1, 1.5, 2, 4])
        group_searched = min(group_stops, round(group_stops * min(1.0, rate * lift)
                                                + rng.randint(-3, 3)))
        reference_searched = min(reference_stops, round(reference_stops * rate
                                                        + rng.randint(-3, 3)))
        tables.append((max(0, group_searched), group_stops,
                       max(0, reference_searched), reference_stops))
    for table in tables:
        assert fisher_p(*table) == _scipy_p(*table), table


def test_fisher_refuses_impossible_counts():
    with pytest.raises(ValueError):
        fisher_p(5, 4, 1, 4)
    with pytest.raises(ValueError):
        fisher_p(1, 4, -1, 4)


# --- Benjamini-Hochberg ----------------------------------------------------


def test_bh_all_equal_to_the_largest():
    # R: p.adjust(c(0.01, 0.02, 0.03, 0.04, 0.05), "BH") is 0.05 five times.
    assert benjamini_hochberg([0.01, 0.02, 0.03, 0.04, 0.05]) == pytest.approx([0.05] * 5)


def test_bh_unsorted_with_ties():
    # R's p.adjust "BH" is pmin(1, cummin(n / i * p[o]))[ro], o = decreasing order:
    # sorted 0.01, 0.01, 0.03, 0.04, 0.5 -> 5/1*.01, 5/2*.01, 5/3*.03, 5/4*.04, 5/5*.5
    # = 0.05, 0.025, 0.05, 0.05, 0.5 -> cummin from the top 0.025, 0.025, 0.05, 0.05, 0.5.
    assert benjamini_hochberg([0.04, 0.01, 0.03, 0.01, 0.5]) == pytest.approx(
        [0.05, 0.025, 0.05, 0.025, 0.5])


def test_bh_reproduces_benjamini_hochberg_1995():
    # The 15 p-values of the example in Benjamini & Hochberg (1995), JRSS B 57,
    # 289-300: at q = 0.05 the procedure rejects the four smallest.
    p = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459,
         0.3240, 0.4262, 0.5719, 0.6528, 0.7590, 1.0000]
    q = benjamini_hochberg(p)

    assert [value < 0.05 for value in q] == [True] * 4 + [False] * 11
    assert q[:6] == pytest.approx([15 * 0.0001, 15 / 2 * 0.0004, 15 / 3 * 0.0019,
                                   15 / 4 * 0.0095, 15 / 5 * 0.0201, 15 / 7 * 0.0298])


def test_bh_matches_scipy_and_is_monotone_and_capped():
    rng = random.Random(7)
    for size in (1, 2, 3, 10, 57, 300):
        p = [rng.choice([rng.random(), rng.random() ** 6, 1.0, 0.5]) for _ in range(size)]
        q = benjamini_hochberg(p)

        assert q == pytest.approx([float(x) for x in false_discovery_control(p)], rel=1e-12)
        assert all(pi <= qi <= 1 for pi, qi in zip(p, q, strict=True))
        by_p = [qi for _, qi in sorted(zip(p, q, strict=True))]
        assert by_p == sorted(by_p)


def test_bh_of_nothing():
    assert benjamini_hochberg([]) == []


def test_bh_refuses_values_outside_unit_interval():
    with pytest.raises(ValueError):
        benjamini_hochberg([0.5, 1.5])


# --- Rounding --------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    (0.000210004567, 0.000210005),
    (0.123456789, 0.123457),
    (0.00612345, 0.00612345),
    (0.4857142857142857, 0.485714),
    (1.0, 1.0),
    (12345678.9, 12345700.0),
    (3.14159265e-12, 3.14159e-12),
])
def test_significant_keeps_six_digits(value, expected):
    assert significant(value) == expected


def test_significant_edges():
    assert significant(None) is None
    assert significant(0) == 0
    assert significant(0.0) == 0
    assert significant(0.123456789, digits=2) == 0.12


def test_intervals_are_rounded_to_four_decimals():
    for result in (wilson(1, 3), rate_ratio(1, 3, 2, 7), stop_rate_ratio(1, 3, 2, 7)):
        for number in result.values():
            assert number == round(number, 4)
    assert wilson(1, 3)["value"] == 0.3333
