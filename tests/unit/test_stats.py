"""Tests of mskdx.evaluate.stats against definitions, closed forms, hand computations and pROC."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2, norm
from sklearn.metrics import precision_recall_fscore_support, roc_auc_score
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

from mskdx.evaluate.stats.delong import delong_auc, delong_covariance, delong_test
from mskdx.evaluate.stats.hanley import hanley_mcneil_se
from mskdx.evaluate.stats.mcnemar import mcnemar, mcnemar_from_counts
from mskdx.evaluate.stats.metrics import binary_metrics
from mskdx.evaluate.stats.proportions import Estimate, proportion, wilson_ci
from mskdx.evaluate.stats.threshold import diagnose, search_threshold, threshold_grid

ASAH = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "asah.csv"


# ---------------------------------------------------------------------------------------------
# DeLong: brute force from the definition (DeLong, DeLong & Clarke-Pearson 1988)
# ---------------------------------------------------------------------------------------------


def brute_delong(y, scores):
    """AUCs and covariance from every positive-negative pair, written out as in DeLong 1988.

    psi(x, y) = 1 if x > y, 1/2 if x == y, 0 otherwise;
    V10_r(x_i) = (1/n) sum_j psi(x_i, y_j); V01_r(y_j) = (1/m) sum_i psi(x_i, y_j);
    S10_rs = 1/(m-1) sum_i (V10_r(x_i) - A_r)(V10_s(x_i) - A_s), S01 likewise over j;
    S = S10 / m + S01 / n.
    """
    y = np.asarray(y)
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    k = scores.shape[0]
    pos_idx = np.flatnonzero(y == 1)
    neg_idx = np.flatnonzero(y == 0)
    m, n = len(pos_idx), len(neg_idx)
    v10 = np.zeros((k, m))
    v01 = np.zeros((k, n))
    for r in range(k):
        for a, i in enumerate(pos_idx):
            for b, j in enumerate(neg_idx):
                xi, yj = scores[r, i], scores[r, j]
                psi = 1.0 if xi > yj else (0.5 if xi == yj else 0.0)
                v10[r, a] += psi
                v01[r, b] += psi
    v10 /= n
    v01 /= m
    auc = v10.mean(axis=1)
    s10 = np.zeros((k, k))
    s01 = np.zeros((k, k))
    for r in range(k):
        for s in range(k):
            s10[r, s] = np.sum((v10[r] - auc[r]) * (v10[s] - auc[s])) / (m - 1)
            s01[r, s] = np.sum((v01[r] - auc[r]) * (v01[s] - auc[s])) / (n - 1)
    return auc, s10 / m + s01 / n


def _random_case(rng, m, n, tie_levels):
    y = np.array([1] * m + [0] * n)
    rng.shuffle(y)
    base = rng.normal(size=m + n) + 0.8 * y
    a = np.round(base * tie_levels) / tie_levels  # coarse rounding -> many ties
    b = np.round((base + rng.normal(size=m + n)) * tie_levels) / tie_levels
    c = rng.integers(0, 3, size=m + n).astype(float)  # heavy ties, unrelated to y
    return y, np.vstack([a, b, c])


@pytest.mark.parametrize(
    ("m", "n", "tie_levels"),
    [(2, 2, 1), (2, 5, 2), (7, 3, 1), (20, 35, 2), (60, 41, 4), (150, 90, 1), (33, 200, 10)],
)
def test_delong_fast_equals_brute_force(m, n, tie_levels):
    rng = np.random.default_rng(1000 * m + n)
    y, scores = _random_case(rng, m, n, tie_levels)
    auc_b, cov_b = brute_delong(y, scores)
    auc_f, cov_f = delong_covariance(y, scores)
    assert np.abs(auc_f - auc_b).max() < 1e-12
    assert np.abs(cov_f - cov_b).max() < 1e-12  # variances on the diagonal, covariances off it
    # single-score API and the paired z agree with the brute-force numbers too
    for r in range(3):
        res = delong_auc(y, scores[r])
        assert abs(res.auc - auc_b[r]) < 1e-12
        assert abs(res.variance - cov_b[r, r]) < 1e-12
    test = delong_test(y, scores[0], scores[1])
    var = cov_b[0, 0] + cov_b[1, 1] - 2 * cov_b[0, 1]
    assert abs(test.covariance - cov_b[0, 1]) < 1e-12
    assert abs(test.variance - var) < 1e-12
    assert abs(test.z - (auc_b[0] - auc_b[1]) / math.sqrt(var)) < 1e-12
    assert abs(test.pvalue - 2 * norm.sf(abs(test.z))) < 1e-12


def test_delong_auc_matches_sklearn_and_ci_definition():
    rng = np.random.default_rng(7)
    y, scores = _random_case(rng, 80, 120, 3)
    res = delong_auc(y, scores[0], level=0.9)
    assert res.auc == pytest.approx(roc_auc_score(y, scores[0]), abs=1e-12)
    half = norm.ppf(0.95) * math.sqrt(res.variance)
    assert res.ci_low == pytest.approx(res.auc - half, abs=1e-12)
    assert res.ci_high == pytest.approx(min(1.0, res.auc + half), abs=1e-12)
    assert (res.n_positive, res.n_negative, res.level) == (80, 120, 0.9)
    assert res.se == pytest.approx(math.sqrt(res.variance))


def test_delong_ci_is_clipped_to_unit_interval():
    y = np.array([1, 1, 1, 0, 0, 0])
    res = delong_auc(y, [0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
    assert res.auc == 1.0 and res.variance == 0.0
    # issue 28: a zero DeLong variance is an artefact, not certainty: no CI (pROC prints [1, 1])
    assert math.isnan(res.ci_low) and math.isnan(res.ci_high)
    assert res.note.startswith("CI not estimable: the DeLong variance is 0")
    res = delong_auc(y, [0.9, 0.8, 0.2, 0.7, 0.3, 0.1])
    assert 0.0 <= res.ci_low <= res.auc <= res.ci_high <= 1.0


def test_delong_test_identical_scores_gives_z0_p1():
    rng = np.random.default_rng(3)
    y, scores = _random_case(rng, 30, 40, 2)
    res = delong_test(y, scores[0], scores[0])
    assert (res.z, res.pvalue, res.difference, res.variance) == (0.0, 1.0, 0.0, 0.0)
    # a monotone transform ranks identically: same 0/0 case
    res = delong_test(y, scores[0], 3 * scores[0] + 1)
    assert (res.z, res.pvalue) == (0.0, 1.0)


def test_delong_test_zero_variance_with_different_aucs():
    y = np.array([1, 1, 0, 0])
    perfect = np.array([0.9, 0.8, 0.2, 0.1])
    constant = np.zeros(4)
    res = delong_test(y, perfect, constant)
    assert res.auc_a == 1.0 and res.auc_b == 0.5
    # issue 28: no scale for a normal test; pROC's z = Inf, p = 0 is a number the data cannot back
    assert math.isnan(res.z) and math.isnan(res.pvalue)
    assert res.note.startswith("not estimable: the AUCs differ by 0.5")


def test_delong_is_symmetric_in_the_arms():
    rng = np.random.default_rng(11)
    y, s = _random_case(rng, 40, 50, 3)
    ab, ba = delong_test(y, s[0], s[1]), delong_test(y, s[1], s[0])
    assert ab.z == pytest.approx(-ba.z, abs=1e-12)
    assert ab.pvalue == pytest.approx(ba.pvalue, abs=1e-12)


def test_delong_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one of each"):
        delong_auc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="labels 0"):
        delong_auc([0, 1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="NaN"):
        delong_auc([0, 1, 1], [0.1, np.nan, 0.3])
    with pytest.raises(ValueError, match="shape"):
        delong_test([0, 1, 1], [0.1, 0.2, 0.3], [0.1, 0.2])
    # one positive: AUC defined, variance (ddof = 1) is not
    res = delong_auc([1, 0, 0], [0.5, 0.1, 0.9])
    assert res.auc == 0.5 and math.isnan(res.variance) and math.isnan(res.ci_low)
    assert math.isnan(delong_test([1, 0, 0], [0.5, 0.1, 0.9], [0.1, 0.2, 0.3]).pvalue)


# ---------------------------------------------------------------------------------------------
# DeLong on pROC's aSAH example
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def asah():
    if not ASAH.is_file():
        pytest.skip(f"{ASAH} not present (GPL-3 reference data, not shipped with mskdx)")
    df = pd.read_csv(ASAH)
    y = (df["outcome"] == "Poor").astype(int).to_numpy()  # cases = Poor (41), controls = Good (72)
    return y, {c: df[c].to_numpy(float) for c in ("wfns", "s100b", "ndka")}


def test_asah_fast_equals_brute_force(asah):
    y, s = asah
    scores = np.vstack([s["wfns"], s["s100b"], s["ndka"]])
    auc_b, cov_b = brute_delong(y, scores)
    auc_f, cov_f = delong_covariance(y, scores)
    assert np.abs(auc_f - auc_b).max() < 1e-12
    assert np.abs(cov_f - cov_b).max() < 1e-12


def test_asah_matches_proc(asah):
    """Values from pROC's test suite (xrobin/pROC tests/testthat/test-var.R, test-cov.R,
    test-ci.auc.R, test-roc.test.R) and its documentation (AUC 0.7314, CI 0.6301-0.8326)."""
    y, s = asah
    assert delong_auc(y, s["wfns"]).auc == pytest.approx(0.8237, abs=5e-5)
    s100b = delong_auc(y, s["s100b"])
    assert s100b.auc == pytest.approx(0.7314, abs=5e-5)
    assert (round(s100b.ci_low, 4), round(s100b.ci_high, 4)) == (0.6301, 0.8326)
    # var(r.wfns), var(r.ndka), var(r.s100b)
    assert delong_auc(y, s["wfns"]).variance == pytest.approx(0.00146991470882363, rel=1e-9)
    assert delong_auc(y, s["ndka"]).variance == pytest.approx(0.0031908105493913, rel=1e-9)
    assert s100b.variance == pytest.approx(0.00266868245717244, rel=1e-9)
    # ci.auc(r.ndka)
    ndka = delong_auc(y, s["ndka"])
    assert (ndka.ci_low, ndka.auc, ndka.ci_high) == pytest.approx(
        (0.501244999271703, 0.611957994579946, 0.722670989888189), rel=1e-9
    )
    # cov(r.wfns, r.ndka), cov(r.ndka, r.s100b), cov(r.s100b, r.wfns)
    _, cov = delong_covariance(y, [s["wfns"], s["ndka"], s["s100b"]])
    assert cov[0, 1] == pytest.approx(-0.000532967856762438, rel=1e-9)
    assert cov[1, 2] == pytest.approx(-0.000756164938056579, rel=1e-9)
    assert cov[2, 0] == pytest.approx(0.00119615567376754, rel=1e-9)
    # roc.test(r.wfns, r.s100b), (r.wfns, r.ndka), (r.ndka, r.s100b): Z, p, CI of the difference
    for a, b, z, p, lo, hi in (
        (
            "wfns",
            "s100b",
            2.20898359144091,
            0.0271757822291882,
            0.0104061769564846,
            0.174214419249478,
        ),
        (
            "wfns",
            "ndka",
            2.79777591868904,
            0.00514557970691098,
            0.0634011709339876,
            0.3600405634833566,
        ),
        (
            "ndka",
            "s100b",
            -1.39077002573558,
            0.164295175223054,
            -0.2876917446341914,
            0.0488706064228094,
        ),
    ):
        res = delong_test(y, s[a], s[b])
        assert res.z == pytest.approx(z, rel=1e-9)
        assert res.pvalue == pytest.approx(p, rel=1e-9)
        assert (res.ci_low, res.ci_high) == pytest.approx((lo, hi), rel=1e-9)
    # roc.test(r.wfns, r.wfns): Z = 0, p = 1
    same = delong_test(y, s["wfns"], s["wfns"])
    assert (same.z, same.pvalue) == (0.0, 1.0)


# ---------------------------------------------------------------------------------------------
# Wilson
# ---------------------------------------------------------------------------------------------


def wilson_closed_form(k, n, level=0.95):
    """Wilson (1927): (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)."""
    z = norm.ppf(0.5 + level / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@pytest.mark.parametrize(
    ("k", "n", "level"),
    [
        (334, 401, 0.95),
        (184, 223, 0.95),
        (0, 10, 0.95),
        (10, 10, 0.95),
        (1, 1, 0.9),
        (46, 51, 0.99),
    ],
)
def test_wilson_matches_closed_form(k, n, level):
    low, high = wilson_ci(k, n, level)
    ref_low, ref_high = wilson_closed_form(k, n, level)
    assert low == pytest.approx(max(0.0, ref_low), abs=1e-12)
    assert high == pytest.approx(min(1.0, ref_high), abs=1e-12)
    assert 0.0 <= low <= k / n <= high <= 1.0


def test_wilson_edge_cases_and_estimate():
    assert all(math.isnan(v) for v in wilson_ci(0, 0))
    est = proportion(0, 0)
    assert math.isnan(est.value) and est.n == 0
    with pytest.raises(ValueError, match="successes <= n"):
        wilson_ci(5, 4)
    with pytest.raises(ValueError, match="whole number"):
        wilson_ci(1.5, 4)
    with pytest.raises(ValueError, match="level"):
        wilson_ci(1, 4, level=95)
    est = proportion(112, 119)
    assert isinstance(est, Estimate)
    assert (est.successes, est.n) == (112, 119)
    assert est.percent() == "94.1% (112/119) [88.4, 97.1]"


# ---------------------------------------------------------------------------------------------
# McNemar
# ---------------------------------------------------------------------------------------------


def test_mcnemar_hand_computed_values():
    res = mcnemar_from_counts(10, 2)  # corrected: (|10 - 2| - 1)^2 / 12
    assert res.statistic == pytest.approx(49 / 12)
    assert res.statistic == pytest.approx(4.0833, abs=1e-4)
    assert res.pvalue == pytest.approx(0.04330, abs=1e-5)
    raw = mcnemar_from_counts(10, 2, correction=False)  # 64 / 12
    assert raw.statistic == pytest.approx(64 / 12)
    assert raw.pvalue == pytest.approx(chi2.sf(64 / 12, 1))
    exact = mcnemar_from_counts(10, 2, exact=True)  # 2 * P(X <= 2), X ~ Bin(12, 1/2)
    assert exact.pvalue == pytest.approx(2 * (1 + 12 + 66) / 4096)
    assert exact.pvalue == pytest.approx(0.03857, abs=5e-6)
    assert exact.statistic == 2.0


def test_mcnemar_from_arrays_counts_b_and_c():
    a = np.array([1, 1, 1, 1, 0, 0, 1, 0], bool)  # A right
    b = np.array([1, 0, 0, 0, 1, 0, 1, 0], bool)  # B right
    res = mcnemar(a, b)
    assert (res.b, res.c, res.n) == (3, 1, 8)  # b: A right & B wrong; c: A wrong & B right
    assert res.statistic == pytest.approx((3 - 1 - 1) ** 2 / 4)


@pytest.mark.parametrize(("b", "c"), [(10, 2), (3, 9), (25, 14), (1, 0), (0, 7), (40, 41)])
def test_mcnemar_agrees_with_statsmodels_and_r_formula(b, c):
    table = [[5, b], [c, 5]]
    for exact, correction in ((False, True), (False, False), (True, True)):
        ours = mcnemar_from_counts(b, c, correction=correction, exact=exact)
        ref = sm_mcnemar(table, exact=exact, correction=correction)
        assert ours.pvalue == pytest.approx(ref.pvalue, rel=1e-12)
        assert ours.statistic == pytest.approx(ref.statistic, rel=1e-12)


def test_mcnemar_edge_cases():
    for exact in (False, True):
        none = mcnemar_from_counts(0, 0, exact=exact)
        assert (none.statistic, none.pvalue) == (0.0, 1.0)
    same = mcnemar(np.ones(5, bool), np.ones(5, bool))
    assert (same.b, same.c, same.statistic, same.pvalue) == (0, 0, 0.0, 1.0)
    # b == c: the corrected difference is floored at 0 (R 4.2.2's mcnemar.test gives 0, p = 1 too)
    tie = mcnemar_from_counts(5, 5)
    assert (tie.statistic, tie.pvalue) == (0.0, 1.0)
    assert mcnemar_from_counts(5, 5, correction=False).pvalue == 1.0
    assert mcnemar_from_counts(5, 5, exact=True).pvalue == 1.0
    with pytest.raises(ValueError, match="equal 1-d"):
        mcnemar([True, False], [True])
    with pytest.raises(ValueError, match="non-negative"):
        mcnemar_from_counts(-1, 2)


# ---------------------------------------------------------------------------------------------
# Threshold search
# ---------------------------------------------------------------------------------------------


def test_threshold_grid_is_exact():
    grid = threshold_grid(0.02)
    assert len(grid) == 51 and grid[0] == 0.0 and grid[-1] == 1.0
    assert 0.28 in grid and 7 / 25 in grid and 0.34 in grid  # decimal literals, exact doubles
    assert np.all(np.diff(grid) > 0)


def test_threshold_known_answer_middle_of_run():
    # gout fractions 0.35..0.7, controls 0..0.3: every t in [0.30, 0.35) is perfect
    frac = [0.5, 0.6, 0.7, 0.35, 0.0, 0.1, 0.3]
    gout = [1, 1, 1, 1, 0, 0, 0]
    res = search_threshold(frac, gout)
    best = res.grid[res.accuracies == 1.0]
    assert best.tolist() == [0.30, 0.32, 0.34]
    assert res.threshold == 0.32  # middle of the run
    assert (res.accuracy, res.correct, res.n) == (1.0, 7, 7)
    assert len(res.accuracies) == len(res.grid) == 51
    # rule is "fraction > threshold": at t = 0.30 the control with 0.3 is negative
    assert not diagnose([0.3], 0.30)[0] and diagnose([0.31], 0.30)[0]


def test_threshold_ties_widest_run_then_first():
    # runs of best accuracy (2/3): t < 0.1 (5 points) and 0.4 <= t < 0.7 (15 points)
    res = search_threshold([0.1, 0.7, 0.4], [1, 1, 0])
    assert res.accuracy == pytest.approx(2 / 3)
    assert res.threshold == 0.54  # middle of 0.40..0.68
    # two equally wide runs (0.00..0.18 and 0.40..0.58): the first, lower middle of 10 points
    res = search_threshold([0.2, 0.6, 0.4], [1, 1, 0])
    assert res.accuracy == pytest.approx(2 / 3)
    assert res.threshold == 0.08


def test_threshold_accuracy_curve_matches_direct_count():
    rng = np.random.default_rng(5)
    frac = rng.integers(0, 11, 40) / 10
    gout = (frac + rng.normal(0, 0.2, 40)) > 0.45
    res = search_threshold(frac, gout)
    for t, acc in zip(res.grid, res.accuracies, strict=True):
        assert acc == np.mean((frac > t) == gout)
    assert res.accuracy == res.accuracies.max()
    assert res.accuracies[np.flatnonzero(res.grid == res.threshold)[0]] == res.accuracy


def test_threshold_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one"):
        search_threshold([], [])
    with pytest.raises(ValueError, match="outside"):
        search_threshold([1.2], [1])
    with pytest.raises(ValueError, match="equal 1-d"):
        search_threshold([0.2, 0.3], [1])
    with pytest.raises(ValueError, match="step"):
        threshold_grid(0)


# ---------------------------------------------------------------------------------------------
# Binary metrics
# ---------------------------------------------------------------------------------------------


def test_binary_metrics_counts_and_cis():
    # OLT T1 confusion from the paper's text: TP 23, FN 5, TN 89, FP 2
    y = np.array([1] * 28 + [0] * 91)
    pred = np.array([1] * 23 + [0] * 5 + [0] * 89 + [1] * 2)
    score = np.where(pred == 1, 0.8, 0.2) + np.linspace(0, 0.1, y.size)
    m = binary_metrics(y, pred, score)
    assert (m.tp, m.fn, m.tn, m.fp, m.n) == (23, 5, 89, 2, 119)
    assert (m.accuracy.successes, m.accuracy.n) == (112, 119)
    assert (m.sensitivity.successes, m.sensitivity.n) == (23, 28)
    assert (m.specificity.successes, m.specificity.n) == (89, 91)
    assert (m.precision_positive.successes, m.precision_positive.n) == (23, 25)
    assert (m.precision_negative.successes, m.precision_negative.n) == (89, 94)
    assert m.recall_positive == m.sensitivity and m.recall_negative == m.specificity
    assert (m.accuracy.low, m.accuracy.high) == wilson_ci(112, 119)
    assert m.f1_positive == pytest.approx(46 / 53)
    assert m.f1_negative == pytest.approx(178 / 185)
    p, r, f, _ = precision_recall_fscore_support(y, pred, labels=[0, 1])
    assert (m.precision_negative.value, m.precision_positive.value) == pytest.approx(tuple(p))
    assert (m.f1_negative, m.f1_positive) == pytest.approx(tuple(f))
    assert m.auc is not None and m.auc.auc == pytest.approx(roc_auc_score(y, score))


def test_binary_metrics_without_scores_or_a_class():
    m = binary_metrics([1, 1, 1], [1, 0, 1], [0.9, 0.1, 0.8])
    assert m.auc is None
    assert m.specificity.n == 0 and math.isnan(m.specificity.value)
    assert binary_metrics([1, 0], [1, 0]).auc is None
    with pytest.raises(ValueError, match="0/1"):
        binary_metrics([1, 0], [2, 0])


def test_hanley_mcneil_matches_delong_roughly():
    rng = np.random.default_rng(9)
    y = np.array([1] * 300 + [0] * 300)
    score = rng.exponential(size=600) * np.where(y == 1, 3.0, 1.0)
    res = delong_auc(y, score)
    assert hanley_mcneil_se(res.auc, 300, 300) == pytest.approx(res.se, rel=0.15)
    with pytest.raises(ValueError):
        hanley_mcneil_se(1.2, 3, 3)
