"""Property-based tests of the statistics package (Hypothesis; issue 28).

Random and adversarial inputs - ties, separation, n of 1 to 3, probabilities of exactly 0 and 1,
duplicated rows - against invariants that must hold whatever the data: the AUC is the
Mann-Whitney statistic and lies in [0, 1]; every CI contains its estimate or is NaN with a
reason; every p-value lies in [0, 1] or is NaN with a reason; swapping the arms mirrors a paired
test; no finite ML slope where the classes are separated, and the separation check agrees with
the linear program of Konis (2007).

Seeds are fixed (derandomize=True, no example database), so a failure replays identically on
every machine; examples are few enough to keep the file well under a minute on one core.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog
from scipy.stats import mannwhitneyu

from mskdx.evaluate.stats.calibration import brier_score, calibration_fit, logit
from mskdx.evaluate.stats.decision import net_benefit
from mskdx.evaluate.stats.delong import delong_auc, delong_test
from mskdx.evaluate.stats.mcnemar import mcnemar
from mskdx.evaluate.stats.metrics import binary_metrics
from mskdx.evaluate.stats.proportions import proportion
from mskdx.evaluate.stats.separation import detect_separation
from mskdx.evaluate.stats.threshold import search_threshold

FIXED = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
)

#: a few values, so that ties (within and across classes) are common; 0 and 1 included
TIED = st.sampled_from([0.0, 1e-9, 0.1, 0.25, 0.5, 0.5, 0.75, 0.9, 1 - 1e-9, 1.0])
ANY = st.floats(0.0, 1.0, allow_nan=False)
PROBABILITY = st.one_of(TIED, ANY)


@st.composite
def labelled(draw, min_size=1, max_size=30, both=False, columns=1):
    """(y, scores...) with optional duplicated rows and, if `both`, each class at least once."""
    n = draw(st.integers(max(min_size, 2 if both else 0), max_size))
    y = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), dtype=int)
    if both and (y.all() or not y.any()):
        y[:2] = [0, 1]
    vectors = st.lists(PROBABILITY, min_size=n, max_size=n)
    scores = [np.array(draw(vectors), dtype=float) for _ in range(columns)]
    if draw(st.booleans()):  # separate the first score column (complete or, with ties, quasi)
        scores[0] = np.where(y == 1, 0.5 + 0.5 * scores[0], 0.5 * scores[0])
    if draw(st.booleans()):  # duplicated rows
        repeat = np.array(draw(st.lists(st.integers(1, 3), min_size=n, max_size=n)), dtype=int)
        y, scores = np.repeat(y, repeat), [np.repeat(v, repeat) for v in scores]
    return (y, *scores)


def _noted(value: float, note: str) -> bool:
    return math.isnan(value) and "not estimable" in note


# ---- AUC --------------------------------------------------------------------------------------


@FIXED
@given(labelled(both=True))
def test_auc_is_the_mann_whitney_statistic_in_0_1(data):
    y, s = data
    res = delong_auc(y, s)
    m, n = int(y.sum()), int((1 - y).sum())
    u = mannwhitneyu(s[y == 1], s[y == 0]).statistic
    assert 0.0 <= res.auc <= 1.0
    assert res.auc == pytest.approx(u / (m * n), abs=1e-12)
    if math.isnan(res.ci_low):
        assert res.note.startswith("CI not estimable")
    else:
        assert 0.0 <= res.ci_low <= res.auc <= res.ci_high <= 1.0 and res.note == ""


@FIXED
@given(labelled(both=True))
def test_duplicating_every_row_keeps_auc_and_separation(data):
    y, s = data
    twice_y, twice_s = np.repeat(y, 2), np.repeat(s, 2)
    assert delong_auc(twice_y, twice_s).auc == pytest.approx(delong_auc(y, s).auc, abs=1e-12)
    assert detect_separation(twice_y, twice_s) == detect_separation(y, s)


@FIXED
@given(labelled(both=True, columns=2))
def test_paired_delong_p_in_0_1_or_noted_and_mirrored_by_swapping(data):
    y, a, b = data
    ab, ba = delong_test(y, a, b), delong_test(y, b, a)
    if math.isnan(ab.pvalue):
        assert "not estimable" in ab.note and math.isnan(ba.pvalue)
    else:
        assert 0.0 <= ab.pvalue <= 1.0
        assert ab.ci_low <= ab.difference <= ab.ci_high
        assert ab.z == pytest.approx(-ba.z, abs=1e-9)
        assert ab.pvalue == pytest.approx(ba.pvalue, abs=1e-12)
    assert ab.difference == pytest.approx(-ba.difference, abs=1e-12)
    assert ab.note == ba.note


# ---- McNemar, Wilson, binary metrics ------------------------------------------------------------


@FIXED
@given(
    st.lists(st.tuples(st.booleans(), st.booleans()), min_size=0, max_size=40),
    st.booleans(),
    st.booleans(),
)
def test_mcnemar_p_in_0_1_or_noted_and_symmetric(pairs, exact, correction):
    a = np.array([p[0] for p in pairs], bool)
    b = np.array([p[1] for p in pairs], bool)
    ab = mcnemar(a, b, correction=correction, exact=exact)
    ba = mcnemar(b, a, correction=correction, exact=exact)
    assert (ab.b, ab.c) == (ba.c, ba.b)
    if len(pairs) == 0:
        assert _noted(ab.pvalue, ab.note)
    else:
        assert 0.0 <= ab.pvalue <= 1.0 and ab.statistic >= 0.0
        assert ab.pvalue == pytest.approx(ba.pvalue, abs=1e-12)
        assert ab.statistic == pytest.approx(ba.statistic, abs=1e-12)


@FIXED
@given(st.integers(0, 200).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_ci_contains_the_proportion_or_is_not_estimable(kn):
    k, n = kn
    est = proportion(k, n)
    if n == 0:
        assert _noted(est.value, est.note) and math.isnan(est.low)
    else:
        assert 0.0 <= est.low <= est.value <= est.high <= 1.0


@FIXED
@given(labelled(min_size=0))
def test_binary_metrics_counts_and_proportions(data):
    y, s = data
    pred = (s > 0.5).astype(int)
    m = binary_metrics(y, pred, s)
    assert m.n == len(y) and m.tp + m.fn == int(y.sum())
    for est in (m.accuracy, m.sensitivity, m.specificity, m.precision_positive):
        assert _noted(est.value, est.note) or est.low <= est.value <= est.high
    for f1 in (m.f1_positive, m.f1_negative):
        assert math.isnan(f1) or 0.0 <= f1 <= 1.0
    assert (m.auc is None) == (m.tp + m.fn == 0 or m.tn + m.fp == 0)
    assert (m.auc is None) == m.auc_note.startswith("not estimable")


# ---- Brier, calibration, separation -----------------------------------------------------------


@FIXED
@given(labelled())
def test_brier_in_0_1_with_its_ci_or_a_reason(data):
    y, p = data
    res = brier_score(y, p)
    assert 0.0 <= res.value <= 1.0 and 0.0 <= res.reference <= 0.25
    if math.isnan(res.low):
        assert res.note.startswith("CI not estimable")
    else:
        assert res.low <= res.value <= res.high


def _konis_separated(y: np.ndarray, x: np.ndarray) -> bool:
    """Konis (2007): with X = [1, x], s = 2y - 1, the LP max sum(s * Xb) s.t. s * Xb >= 0,
    -1 <= b <= 1 has a positive optimum iff the data are (quasi-)completely separated."""
    X = np.column_stack([np.ones(len(x)), x])
    signed = (2 * y - 1)[:, None] * X
    res = linprog(-signed.sum(axis=0), A_ub=-signed, b_ub=np.zeros(len(x)), bounds=[(-1, 1)] * 2)
    assert res.status == 0
    return -res.fun > 1e-9


@FIXED
@given(labelled(max_size=20))
def test_separation_check_agrees_with_the_konis_linear_program(data):
    y, p = data
    x = np.round(logit(p), 6)  # bounded (|x| <= 13.8), ties kept
    kind = detect_separation(y, x).kind
    assert _konis_separated(y, x) == (kind in ("complete", "quasi-complete", "one class"))


@FIXED
@given(labelled())
def test_no_finite_ml_slope_where_separation_holds(data):
    y, p = data
    fit = calibration_fit(y, p)
    kind = detect_separation(y, logit(p)).kind
    assert fit.separation == kind
    if kind == "none":
        assert fit.slope_low <= fit.slope <= fit.slope_high and "slope not" not in fit.note
    else:
        assert math.isnan(fit.slope) and math.isnan(fit.slope_low) and math.isnan(fit.slope_high)
        assert "not estimable" in fit.note
    if kind != "one class":
        assert fit.intercept_low <= fit.intercept <= fit.intercept_high


@settings(FIXED, max_examples=25)
@given(labelled(min_size=2, max_size=15, both=True))
def test_firth_slope_is_finite_unless_constant(data):
    y, p = data
    fit = calibration_fit(y, p, method="firth")
    if fit.separation == "constant":
        assert _noted(fit.slope, fit.note)
    else:
        assert math.isfinite(fit.slope)
        assert fit.slope_low <= fit.slope <= fit.slope_high  # a bound may be infinite
        assert fit.intercept_low <= fit.intercept <= fit.intercept_high


# ---- net benefit, threshold search -------------------------------------------------------------


@FIXED
@given(labelled(), st.lists(st.floats(0.0, 0.99), min_size=1, max_size=5))
def test_net_benefit_never_beats_perfect_and_useful_beats_both(data, thresholds):
    y, p = data
    curve = net_benefit(y, p, thresholds)
    prevalence = y.mean()
    assert (curve["net_benefit"] <= prevalence + 1e-12).all()
    useful = curve[curve["useful"]]
    assert (useful["net_benefit"] > useful["treat_all"]).all()
    assert (useful["net_benefit"] > 0).all()


@FIXED
@given(labelled())
def test_threshold_search_is_at_least_calling_everyone_negative(data):
    y, fraction = data
    res = search_threshold(fraction, y)
    assert res.threshold in res.grid and 0.0 <= res.accuracy <= 1.0
    assert res.accuracy >= 1 - y.mean() - 1e-12
    assert res.correct == int(((fraction > res.threshold) == y.astype(bool)).sum())
    assert res.accuracy == res.accuracies.max()
