"""The comparison statistics against hand-computed values and against scipy.stats."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from mnistexp.compare.stats import (
    NOISE_VERDICT,
    classify,
    compare,
    paired,
    seeds_needed,
    summarize,
    welch,
)

# Quantiles from a printed table: t(0.975; 2) = 4.302653, t(0.975; 4) = 2.776445,
# t(0.95; 2) = 2.919986, t(0.95; 4) = 2.131847; z(0.95) = 1.644854, z(0.9) = 1.281552,
# z(0.975) = 1.959964, z(0.8) = 0.841621.
T2, T4, T2_90, T4_90 = 4.302653, 2.776445, 2.919986, 2.131847
Z95, Z90, Z975, Z80 = 1.644854, 1.281552, 1.959964, 0.841621
MARGIN = 0.001


def t2_cdf(t: float) -> float:
    """Student t with 2 degrees of freedom has a closed form: F(t) = 1/2 + t / (2 sqrt(2 + t²))."""
    return 0.5 + t / (2 * math.sqrt(2 + t * t))


def test_summary_of_three_seeds_matches_hand_computation():
    s = summarize([0.98, 0.99, 1.00])
    assert s["n"] == 3
    assert s["mean"] == pytest.approx(0.99)
    assert s["std"] == pytest.approx(0.01)  # sample std: sqrt((0.01² + 0 + 0.01²) / 2)
    half = T2 * 0.01 / math.sqrt(3)  # 0.0248414
    assert s["ci_low"] == pytest.approx(0.99 - half, abs=1e-6)
    assert s["ci_high"] == pytest.approx(0.99 + half, abs=1e-6)
    assert (s["min"], s["max"], s["median"]) == (0.98, 1.00, 0.99)


def test_single_run_has_no_std_or_interval_and_none_values_are_ignored():
    s = summarize([0.97, None])
    assert s["n"] == 1 and s["mean"] == 0.97
    assert s["std"] is None and s["ci_low"] is None
    assert summarize([None]) is None


def test_welch_different_with_tost_and_power_by_hand():
    a, b = [0.98, 0.99, 1.00], [0.95, 0.96, 0.97]
    c = compare(a, b, margin=MARGIN)  # no seeds given: Welch
    # Equal n and variances: se = sqrt(2 * 0.0001 / 3) = 0.0081650, df = 4, t = -3.674
    se = math.sqrt(2 * 0.0001 / 3)
    assert c["test"] == "welch"
    assert c["diff"] == pytest.approx(-0.03)
    assert c["df"] == pytest.approx(4.0)
    assert c["ci_low"] == pytest.approx(-0.03 - T4 * se, abs=1e-6)
    assert c["ci_high"] == pytest.approx(-0.03 + T4 * se, abs=1e-6)
    assert c["p_value"] == pytest.approx(0.02131, abs=5e-5)
    # TOST: the 90% CI -0.03 ± 2.131847 se = [-0.04741, -0.01259] is far outside ±0.001.
    assert c["ci90_low"] == pytest.approx(-0.03 - T4_90 * se, abs=1e-6)
    assert c["ci90_high"] == pytest.approx(-0.03 + T4_90 * se, abs=1e-6)
    # p for H0 "diff <= -margin": P(T4 >= (-0.03 + 0.001) / se) = P(T4 >= -3.5518) ≈ 0.988
    assert c["p_equivalence"] == pytest.approx(sps.t.sf((-0.03 + MARGIN) / se, 4), rel=1e-9)
    assert c["p_equivalence"] == pytest.approx(0.988, abs=1e-3)
    assert c["equivalence"] == "different"
    assert c["verdict"] == ("different: lower by 3.00 pp, more than seed noise explains (p = 0.021); "
                            "more than the margin")
    # Power from the pooled std 0.01: n = 2 s² (z95 + z90)² / m² = 200 x 8.56385 = 1712.8 -> 1713;
    # detect: 2 s² (z975 + z80)² / m² = 200 x 7.84887 = 1569.8 -> 1570.
    assert c["power_note"]["spread"] == pytest.approx(0.01)
    assert c["power_note"]["seeds_for_equivalence"] == math.ceil(200 * (Z95 + Z90) ** 2) == 1713
    assert c["power_note"]["seeds_to_detect_margin"] == math.ceil(200 * (Z975 + Z80) ** 2) == 1570
    assert "≈1713 seeds per side would show equivalence within ±0.10 pp" in c["power_text"]


def test_same_seeds_on_both_sides_are_paired_and_matched_by_seed():
    # Per-seed differences d = (0.0001, 0.0002, 0.0003): mean 0.0002, sd 0.0001,
    # se = 0.0001 / sqrt(3), df = 2, t = 0.0002 / se = 2 sqrt(3) = 3.4641.
    a = {1: 0.9900, 2: 0.9910, 3: 0.9920}
    b = {3: 0.9923, 1: 0.9901, 2: 0.9912}  # another order: pairs are by seed, not position
    c = compare(list(a.values()), list(b.values()), list(a), list(b), margin=MARGIN)
    se = 0.0001 / math.sqrt(3)
    t = 0.0002 / se
    assert c["test"] == "paired" and c["n_pairs"] == 3 and c["seeds"] == [1, 2, 3]
    assert c["diff"] == pytest.approx(0.0002)
    assert c["se"] == pytest.approx(se)
    assert c["df"] == 2
    assert c["p_value"] == pytest.approx(2 * (1 - t2_cdf(t)), abs=1e-9)  # 0.07418
    assert c["p_value"] == pytest.approx(0.07418, abs=5e-5)
    assert (c["ci_low"], c["ci_high"]) == (pytest.approx(0.0002 - T2 * se, abs=1e-8),
                                           pytest.approx(0.0002 + T2 * se, abs=1e-8))
    # 90% CI 0.0002 ± 2.919986 se = [0.0000314, 0.0003686]: inside ±0.001, so equivalent.
    assert (c["ci90_low"], c["ci90_high"]) == (pytest.approx(0.0002 - T2_90 * se, abs=1e-8),
                                               pytest.approx(0.0002 + T2_90 * se, abs=1e-8))
    # TOST p = max(P(T2 <= (0.0002 - 0.001) / se), P(T2 >= (0.0002 + 0.001) / se))
    #        = max(F(-13.856), 1 - F(20.785)) = max(0.002585, 0.001154)
    p_tost = max(t2_cdf((0.0002 - MARGIN) / se), 1 - t2_cdf((0.0002 + MARGIN) / se))
    assert c["p_equivalence"] == pytest.approx(p_tost, abs=1e-9)
    assert c["p_equivalence"] == pytest.approx(0.002585, abs=2e-6)
    assert c["equivalence"] == "equivalent"
    assert c["verdict"].startswith("equivalent: the difference lies within ±0.10 pp (90% CI [")
    ref = sps.ttest_rel([b[s] for s in (1, 2, 3)], [a[s] for s in (1, 2, 3)])
    assert c["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)


def test_paired_inconclusive_with_power_note_by_hand():
    # d = (0, 0.001, 0.002): mean 0.001, sd 0.001, se = 0.000577, t = sqrt(3) = 1.732
    a = [0.990, 0.990, 0.990]
    b = [0.990, 0.991, 0.992]
    c = compare(a, b, [7, 8, 9], [7, 8, 9], margin=MARGIN)
    t = math.sqrt(3)
    assert c["test"] == "paired"
    assert c["p_value"] == pytest.approx(2 * (1 - t2_cdf(t)), abs=1e-9)  # 0.2254
    # 95% CI 0.001 ± 0.0024841 spans 0; 90% CI 0.001 ± 0.0016859 = [-0.00069, +0.00269]
    # reaches past +0.001: neither different nor equivalent.
    assert c["ci_low"] < 0 < c["ci_high"] and c["ci90_high"] > MARGIN
    assert c["equivalence"] == "inconclusive"
    assert c["verdict"] == (f"inconclusive: {NOISE_VERDICT} (p = 0.225), but not shown equivalent within "
                            "±0.10 pp either (90% CI [-0.07, +0.27] pp)")
    # Paired power from the sd of the differences, 0.001 (= the margin):
    # equivalence (z95 + z90)² = 8.5638 -> 9 seeds; detection (z975 + z80)² = 7.8489 -> 8 seeds.
    note = c["power_note"]
    assert note["spread"] == pytest.approx(0.001)
    assert (note["seeds_for_equivalence"], note["seeds_to_detect_margin"]) == (9, 8)
    assert c["power_text"].startswith("power: ≈9 seeds (the same on both sides) would show equivalence")


def test_identical_on_every_seed():
    c = compare([0.99, 0.98, 0.97], [0.98, 0.99, 0.97], [1, 2, 3], [2, 1, 3])
    assert c["test"] == "paired" and c["identical"] is True
    assert c["equivalence"] == "equivalent"
    assert c["verdict"] == "equivalent: identical on every seed (3 seeds)"
    assert c["power_text"].startswith("power: no seed-to-seed spread")


@pytest.mark.parametrize("seeds_a, seeds_b", [
    ([1, 2, 3], [1, 2, 4]),  # different seeds
    ([1, 1, 2], [1, 2, 2]),  # a seed twice on a side (e.g. with and without XLA)
    (None, [1, 2, 3]),
])
def test_welch_unless_both_sides_ran_the_same_seeds_once(seeds_a, seeds_b):
    c = compare([0.99, 0.98, 0.97], [0.98, 0.99, 0.97], seeds_a, seeds_b)
    assert c["test"] == "welch" and c["n_pairs"] is None


def test_welch_and_paired_agree_with_scipy_stats():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.99, 0.002, 5), rng.normal(0.988, 0.006, 9)
    c = welch(a, b)
    ref = sps.ttest_ind(b, a, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert c["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)
    assert c["df"] == pytest.approx(ref.df, rel=1e-9)
    assert (c["ci_low"], c["ci_high"]) == (pytest.approx(ci.low, rel=1e-9), pytest.approx(ci.high, rel=1e-9))
    low, high = sps.t.interval(0.95, df=4, loc=a.mean(), scale=sps.sem(a))
    s = summarize(a)
    assert (s["ci_low"], s["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    x, y = rng.normal(0.99, 0.002, 6), rng.normal(0.99, 0.002, 6)
    p = paired(x, y)
    ref = sps.ttest_rel(y, x)
    ci = ref.confidence_interval(0.95)
    assert p["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)
    assert (p["ci_low"], p["ci_high"]) == (pytest.approx(ci.low, rel=1e-9), pytest.approx(ci.high, rel=1e-9))


def test_too_few_runs_is_inconclusive_with_a_reason():
    c = compare([0.99], [0.98, 0.97])
    assert c["diff"] == pytest.approx(-0.015)
    assert c["p_value"] is None and c["ci_low"] is None and c["p_equivalence"] is None
    assert c["equivalence"] == "inconclusive"
    assert c["verdict"] == ("inconclusive: n too small to say anything (need at least 2 runs on each side, "
                            "have 1 and 2)")
    assert "spread is unknown" in c["power_text"]


def test_zero_variance_on_both_sides():
    same = compare([0.99, 0.99], [0.99, 0.99])
    assert same["p_value"] == 1.0 and same["equivalence"] == "equivalent"
    apart = compare([0.99, 0.99], [0.98, 0.98])
    assert apart["equivalence"] == "different" and apart["verdict"].startswith("different: lower by 1.00 pp")
    # A real difference (no noise at all) that is smaller than the margin is still equivalent.
    tiny = compare([0.99, 0.99], [0.9905, 0.9905])
    assert tiny["p_value"] == 0.0 and tiny["equivalence"] == "equivalent"
    assert tiny["verdict"].startswith("equivalent: a real but negligible difference of +0.05 pp")


@pytest.mark.parametrize("ci, p_eq, expected", [
    ((-0.002, 0.003), 0.30, "inconclusive"),   # spans 0, not inside the margin
    ((-0.0004, 0.0006), 0.01, "equivalent"),   # spans 0, inside the margin
    ((0.0002, 0.0006), 0.01, "equivalent"),    # significant, but inside the margin
    ((0.0005, 0.0030), 0.40, "different"),     # significant, equivalence not shown
    ((-0.0300, -0.0100), 0.99, "different"),
])
def test_the_three_way_rule(ci, p_eq, expected):
    assert classify({"ci_low": ci[0], "ci_high": ci[1], "p_equivalence": p_eq}) == expected


def test_seeds_needed_scales_with_the_square_of_spread_over_margin():
    # Two sides, s = 0.002, margin 0.001: 2 x 4 x 8.56385 = 68.5 -> 69; 2 x 4 x 7.84887 = 62.8 -> 63
    n = seeds_needed(0.002, 0.001, paired_test=False)
    assert (n["seeds_for_equivalence"], n["seeds_to_detect_margin"]) == (69, 63)
    assert seeds_needed(0.0, 0.001, paired_test=True)["seeds_for_equivalence"] == 2
    assert seeds_needed(None, 0.001, paired_test=True)["seeds_for_equivalence"] is None
