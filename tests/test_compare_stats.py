"""The comparison statistics against hand-computed values and against scipy.stats."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from mnistexp.compare.stats import NOISE_VERDICT, summarize, welch

# t quantiles from a printed table: t(0.975; 2) = 4.302653, t(0.975; 4) = 2.776445.
T2, T4 = 4.302653, 2.776445


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


def test_welch_difference_matches_hand_computation():
    a, b = [0.98, 0.99, 1.00], [0.95, 0.96, 0.97]
    c = welch(a, b)
    # Equal n and variances: se = sqrt(2 * 0.0001 / 3), df = 4, t = -0.03 / se = -3.674
    se = math.sqrt(2 * 0.0001 / 3)
    assert c["diff"] == pytest.approx(-0.03)
    assert c["df"] == pytest.approx(4.0)
    assert c["ci_low"] == pytest.approx(-0.03 - T4 * se, abs=1e-6)
    assert c["ci_high"] == pytest.approx(-0.03 + T4 * se, abs=1e-6)
    assert c["p_value"] == pytest.approx(0.02131, abs=5e-5)
    assert c["verdict"].startswith("differs: lower by 0.0300")


def test_welch_agrees_with_scipy_stats_on_unequal_groups():
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


def test_interval_spanning_zero_is_called_seed_noise():
    c = welch([0.990, 0.992, 0.991], [0.991, 0.989, 0.993])
    assert c["ci_low"] < 0 < c["ci_high"]
    assert c["verdict"] == NOISE_VERDICT


def test_too_few_runs_gives_a_note_instead_of_a_test():
    c = welch([0.99], [0.98, 0.97])
    assert c["diff"] == pytest.approx(-0.015)
    assert c["p_value"] is None and c["ci_low"] is None
    assert "n too small" in c["verdict"] and "have 1 and 2" in c["verdict"]


def test_zero_variance_on_both_sides_is_handled():
    same = welch([0.99, 0.99], [0.99, 0.99])
    assert same["verdict"] == NOISE_VERDICT and same["p_value"] == 1.0
    apart = welch([0.99, 0.99], [0.98, 0.98])
    assert apart["verdict"].startswith("differs: lower by 0.0100")
