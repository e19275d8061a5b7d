"""Statistics over repeated seeds: summaries, and between two sides of a comparison a
paired t-test (same seeds on both sides) or Welch's test, an equivalence test (TOST) with
a margin, and how many seeds would settle the question.

Verdict rule (one of three, the README documents it):
  equivalent   -- the 90% CI of the difference lies inside ±margin (both one-sided tests of
                  TOST reject at alpha 0.05), whether or not the difference test is significant;
  different    -- the 95% CI excludes zero (p < 0.05) and equivalence is not shown;
  inconclusive -- neither: too few runs, or too much seed noise for the margin.

The Student t distribution comes from scipy.special (stdtr / stdtrit): importing
scipy.stats costs ~0.8 s, a quarter of the 3 s budget for 10,000 records, for the same
two functions. The tests check these results against scipy.stats.ttest_ind and
scipy.stats.t.interval.
"""

from __future__ import annotations

import math

import numpy as np

CONFIDENCE = 0.95
ALPHA = 0.05  # each one-sided test of TOST, hence the 90% interval
POWER = 0.8
DEFAULT_MARGIN = 0.001  # 0.1 percentage points of accuracy
NOISE_VERDICT = "not distinguishable from seed noise"
VERDICTS = ("equivalent", "different", "inconclusive")


def summarize(values) -> dict | None:
    """n, mean, sample std (ddof=1), 95% CI of the mean (Student t), min, max, median."""
    x = np.asarray([v for v in values if v is not None], dtype=float)
    if x.size == 0:
        return None
    n = int(x.size)
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if n > 1 else None
    ci_low = ci_high = None
    if n > 1:
        if std == 0.0:  # identical values: the interval degenerates to the point
            ci_low = ci_high = mean
        else:
            half = t_quantile(n - 1) * std / math.sqrt(n)
            ci_low, ci_high = mean - half, mean + half
    return {"n": n, "mean": mean, "std": std, "ci_low": ci_low, "ci_high": ci_high,
            "min": float(x.min()), "max": float(x.max()), "median": float(np.median(x))}


def median(values) -> float | None:
    x = [v for v in values if v is not None]
    return float(np.median(x)) if x else None


def welch(a, b) -> dict:
    """Mean of b minus mean of a, its standard error and Welch-Satterthwaite df, the 95% CI
    and the two-sided p-value. With fewer than 2 values on a side only `diff` is set."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    out = _empty("welch", a.size, b.size)
    if a.size == 0 or b.size == 0:
        return out
    out["diff"] = float(b.mean() - a.mean())
    if a.size < 2 or b.size < 2:
        return out
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    df = None if se == 0 else (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    pooled = math.sqrt(((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2))
    return _tested(out, se, df, spread=pooled)


def paired(a, b) -> dict:
    """Per-seed differences b_i - a_i (a and b in the same seed order): paired t-test."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    out = _empty("paired", a.size, b.size)
    d = b - a
    out["n_pairs"] = int(d.size)
    out["identical"] = bool(d.size > 0 and np.all(d == 0))
    if d.size == 0:
        return out
    out["diff"] = float(d.mean())
    if d.size < 2:
        return out
    sd = float(d.std(ddof=1))
    return _tested(out, sd / math.sqrt(d.size), d.size - 1.0, spread=sd)


def _empty(test: str, n_a: int, n_b: int) -> dict:
    return {"test": test, "n_a": int(n_a), "n_b": int(n_b), "n_pairs": None, "identical": False,
            "diff": None, "se": None, "df": None, "ci_low": None, "ci_high": None, "p_value": None,
            "spread": None}


def _tested(out: dict, se: float, df: float | None, spread: float) -> dict:
    diff = out["diff"]
    out.update(se=se, df=None if df is None else float(df), spread=spread)
    if se == 0:
        # No seed noise at all (e.g. deterministic runs): any difference is real, none is none.
        out.update(ci_low=diff, ci_high=diff, p_value=1.0 if diff == 0 else 0.0)
        return out
    from scipy.special import stdtr

    half = t_quantile(df) * se
    p = 2.0 * float(stdtr(df, -abs(diff) / se))
    out.update(ci_low=diff - half, ci_high=diff + half, p_value=min(p, 1.0))
    return out


def equivalence(c: dict, margin: float = DEFAULT_MARGIN) -> dict:
    """TOST within ±margin: the 90% CI and the larger of the two one-sided p-values."""
    out = {"margin": margin, "ci90_low": None, "ci90_high": None, "p_equivalence": None}
    if c["se"] is None:
        return out
    diff, se = c["diff"], c["se"]
    if se == 0:
        inside = abs(diff) < margin
        out.update(ci90_low=diff, ci90_high=diff, p_equivalence=0.0 if inside else 1.0)
        return out
    from scipy.special import stdtr, stdtrit

    df = c["df"]
    half = float(stdtrit(df, 1 - ALPHA)) * se
    p_lower = float(stdtr(df, -(diff + margin) / se))  # H0: diff <= -margin
    p_upper = float(stdtr(df, (diff - margin) / se))  # H0: diff >= +margin
    out.update(ci90_low=diff - half, ci90_high=diff + half, p_equivalence=max(p_lower, p_upper))
    return out


def seeds_needed(spread: float | None, margin: float, paired_test: bool) -> dict:
    """Seeds per side for power 0.8 at alpha 0.05, from the observed spread (normal
    approximation; at least 2). Equivalence assumes the true difference is 0:
        n = k * s^2 * (z[1-alpha] + z[1-beta/2])^2 / margin^2
    detecting a true difference of `margin` with the two-sided test:
        n = k * s^2 * (z[1-alpha/2] + z[1-beta])^2 / margin^2
    with k = 2 for two independent sides (s = pooled std) and k = 1 for seed pairs
    (s = std of the per-seed differences)."""
    out = {"alpha": ALPHA, "power": POWER, "spread": spread,
           "spread_of": "the per-seed differences" if paired_test else "the runs (pooled over both sides)",
           "seeds_for_equivalence": None, "seeds_to_detect_margin": None}
    if spread is None:
        return out
    from scipy.special import ndtri

    k = 1.0 if paired_test else 2.0
    beta = 1 - POWER
    for key, z in (("seeds_for_equivalence", ndtri(1 - ALPHA) + ndtri(1 - beta / 2)),
                   ("seeds_to_detect_margin", ndtri(1 - ALPHA / 2) + ndtri(1 - beta))):
        n = k * spread**2 * float(z) ** 2 / margin**2
        out[key] = max(2, math.ceil(n - 1e-9))  # the tolerance: 3.0000000001 is 3 seeds
    return out


def compare(a, b, seeds_a=None, seeds_b=None, margin: float = DEFAULT_MARGIN) -> dict:
    """Everything said about b against a: the test (paired when both sides ran the same
    seeds, once each; else Welch), TOST, the three-way verdict, the power note, plain words."""
    a, b = list(a), list(b)
    pairs = _pairs(a, b, seeds_a, seeds_b)
    if pairs is not None:
        c = paired(*pairs[1:])
        c["seeds"] = pairs[0]
    else:
        c = welch(a, b)
        c["seeds"] = None
    c.update(equivalence(c, margin))
    c["power_note"] = seeds_needed(c["spread"], margin, c["test"] == "paired")
    c["equivalence"] = classify(c)
    c["verdict"] = verdict(c)
    c["power_text"] = power_text(c)
    return c


def _pairs(a, b, seeds_a, seeds_b):
    """(seeds, a values, b values) in seed order when both sides ran the same seeds once each."""
    if seeds_a is None or seeds_b is None or len(a) < 2:
        return None
    sa, sb = list(seeds_a), list(seeds_b)
    if not all(type(s) is int for s in sa + sb):  # a seed that is missing or not a number pairs nothing
        return None
    if len(set(sa)) != len(sa) or len(set(sb)) != len(sb) or set(sa) != set(sb):
        return None
    va, vb = dict(zip(sa, a, strict=True)), dict(zip(sb, b, strict=True))
    seeds = sorted(sa)
    return seeds, [va[s] for s in seeds], [vb[s] for s in seeds]


def classify(c: dict) -> str:
    if c["ci_low"] is None:
        return "inconclusive"
    if c["p_equivalence"] < ALPHA:
        return "equivalent"
    if not (c["ci_low"] <= 0 <= c["ci_high"]):
        return "different"
    return "inconclusive"


def pp(value: float, signed: bool = True) -> str:
    """Accuracy difference in percentage points: 0.0012 -> +0.12 pp."""
    points = value * 100
    if points == 0:
        return "0.00"
    text = f"{points:+.2f}" if abs(points) >= 0.005 else f"{points:+.1e}"
    return text if signed else text.lstrip("+-")


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def verdict(c: dict) -> str:
    """The verdict in plain words, starting with equivalent / different / inconclusive."""
    m = f"±{pp(c['margin'], signed=False)} pp"
    label = c["equivalence"]
    if c["diff"] is None:
        return "inconclusive: no completed runs on one side"
    if c["ci_low"] is None:
        if c["test"] == "paired":
            return f"inconclusive: n too small to say anything (need at least 2 seeds, have {c['n_pairs']})"
        return (f"inconclusive: n too small to say anything (need at least 2 runs on each side, "
                f"have {c['n_a']} and {c['n_b']})")
    ci90 = f"90% CI [{pp(c['ci90_low'])}, {pp(c['ci90_high'])}] pp"
    if c.get("identical"):
        return f"equivalent: identical on every seed ({c['n_pairs']} seeds)"
    if label == "equivalent":
        if c["ci_low"] <= 0 <= c["ci_high"]:
            return f"equivalent: the difference lies within {m} ({ci90})"
        return (f"equivalent: a real but negligible difference of {pp(c['diff'])} pp, "
                f"within {m} ({ci90})")
    if label == "different":
        direction = "higher" if c["diff"] > 0 else "lower"
        beyond = (c["ci_low"] > c["margin"]) or (c["ci_high"] < -c["margin"])
        size = "more than the margin" if beyond else f"possibly less than the {m} margin"
        return (f"different: {direction} by {pp(c['diff'], signed=False)} pp, more than seed noise "
                f"explains ({_p(c['p_value'])}); {size}")
    return (f"inconclusive: {NOISE_VERDICT} ({_p(c['p_value'])}), but not shown equivalent "
            f"within {m} either ({ci90})")


def power_text(c: dict) -> str | None:
    note = c["power_note"]
    m = pp(c["margin"], signed=False)
    unit = "seeds (the same on both sides)" if c["test"] == "paired" else "seeds per side"
    if note["spread"] is None:
        return "power: the seed spread is unknown; run at least 2 seeds per side (the same seeds on both)"
    if note["spread"] == 0:
        return "power: no seed-to-seed spread observed, so 2 seeds per side already settle it"
    return (f"power: ≈{note['seeds_for_equivalence']} {unit} would show equivalence within ±{m} pp "
            f"and ≈{note['seeds_to_detect_margin']} would detect a {m} pp difference "
            f"(alpha 0.05, power 0.8, from the observed std of {note['spread_of']}, "
            f"{pp(note['spread'], signed=False)} pp)")


def t_quantile(df: float) -> float:
    """Two-sided critical value of Student's t for CONFIDENCE (4.303 for df=2 at 95%)."""
    from scipy.special import stdtrit

    return float(stdtrit(df, 0.5 + CONFIDENCE / 2))


def finite(value) -> bool:
    # type() rather than isinstance: bool is an int subclass but not a measurement.
    return type(value) in (int, float) and math.isfinite(value)
