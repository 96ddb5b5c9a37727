"""Property-based tests of the clustered statistics (Hypothesis; issue 37).

With one image per patient every clustered statistic equals its independent counterpart:
Obuchowski's AUC, CI and paired test equal DeLong's (`delong_auc`, `delong_test`), Durkalski's
McNemar equals McNemar without continuity correction, the clustered proportion's interval equals
Wilson's. With clusters: variances are >= 0, p-values in [0, 1] or NaN with a reason, and
relabelling or reordering the patients changes nothing. Seeds fixed (derandomize=True).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mskdx.evaluate.stats.clustered import (
    clustered_auc,
    clustered_auc_global_test,
    clustered_auc_test,
)
from mskdx.evaluate.stats.clustered_binary import clustered_mcnemar, clustered_proportion
from mskdx.evaluate.stats.delong import delong_auc, delong_test
from mskdx.evaluate.stats.mcnemar import mcnemar
from mskdx.evaluate.stats.multiplicity import holm
from mskdx.evaluate.stats.proportions import wilson_ci

FIXED = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=50,
    suppress_health_check=[HealthCheck.too_slow],
)

TIED = st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.5, 0.75, 0.9, 1.0])
PROBABILITY = st.one_of(TIED, st.floats(0.0, 1.0, allow_nan=False))


@st.composite
def cohorts(draw, singletons=False, arms=2):
    """(y, clusters, scores (arms, n)) with both classes present."""
    n = draw(st.integers(2, 30))
    y = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), dtype=int)
    if y.all() or not y.any():
        y[:2] = [0, 1]
    if singletons:
        clusters = np.arange(n)
    else:
        n_clusters = draw(st.integers(1, n))
        clusters = np.array(
            draw(st.lists(st.integers(0, n_clusters - 1), min_size=n, max_size=n)), dtype=int
        )
    vectors = st.lists(PROBABILITY, min_size=n, max_size=n)
    scores = np.array([draw(vectors) for _ in range(arms)], dtype=float)
    if draw(st.booleans()):  # separate the first arm (complete or, with ties, quasi)
        scores[0] = np.where(y == 1, 0.5 + 0.5 * scores[0], 0.5 * scores[0])
    return y, clusters, scores


def _same(a: float, b: float, tol: float = 1e-12) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol


@FIXED
@given(cohorts(singletons=True))
def test_one_image_per_patient_auc_equals_delong(data):
    y, cl, s = data
    ours, ref = clustered_auc(y, s[0], cl), delong_auc(y, s[0])
    for field in ("auc", "variance", "ci_low", "ci_high"):
        assert _same(getattr(ours, field), getattr(ref, field)), field
    assert ours.note.startswith("CI not estimable") == ref.note.startswith("CI not estimable")
    t_ours, t_ref = clustered_auc_test(y, s[0], s[1], cl), delong_test(y, s[0], s[1])
    for field in ("difference", "variance", "covariance", "z", "pvalue", "ci_low", "ci_high"):
        assert _same(getattr(t_ours, field), getattr(t_ref, field)), field
    assert t_ours.note.split(":")[0] == t_ref.note.split(":")[0]
    glob = clustered_auc_global_test(y, s, cl)
    if t_ref.z == t_ref.z and t_ref.variance > 0:
        assert glob.statistic == pytest.approx(t_ref.z**2, rel=1e-9, abs=1e-12)


@FIXED
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=0, max_size=40))
def test_one_image_per_patient_mcnemar_and_wilson(pairs):
    a = np.array([p[0] for p in pairs], bool)
    b = np.array([p[1] for p in pairs], bool)
    cl = np.arange(a.size)
    ours, ref = clustered_mcnemar(a, b, cl), mcnemar(a, b, correction=False)
    assert _same(ours.statistic, ref.statistic) and _same(ours.pvalue, ref.pvalue)
    assert (ours.b, ours.c, ours.n) == (ref.b, ref.c, ref.n)
    if a.size >= 2:
        est = clustered_proportion(a, cl)
        low, high = wilson_ci(int(a.sum()), a.size)
        assert est.low == pytest.approx(low, abs=1e-12)
        assert est.high == pytest.approx(high, abs=1e-12)
        assert est.effective_n == a.size


@FIXED
@given(cohorts())
def test_clustered_results_are_valid_and_invariant_to_patient_names(data):
    y, cl, s = data
    res = clustered_auc(y, s[0], cl)
    if math.isnan(res.ci_low):
        assert res.note.startswith("CI not estimable")
    else:
        assert res.variance > 0 and 0.0 <= res.ci_low <= res.auc <= res.ci_high <= 1.0
    test = clustered_auc_test(y, s[0], s[1], cl)
    assert (0.0 <= test.pvalue <= 1.0) or "not estimable" in test.note
    renamed = np.array([f"P-{c * 7 % 101}" for c in cl])
    perm = np.random.default_rng(len(y)).permutation(len(y))
    again = clustered_auc_test(y[perm], s[0][perm], s[1][perm], renamed[perm])
    assert _same(again.pvalue, test.pvalue, 1e-9) and _same(again.variance, test.variance, 1e-12)
    ok = s[1] >= 0.5
    est = clustered_proportion(ok, cl)
    assert est.design_effect_used >= 1.0 or "not estimable: one patient" in est.note
    assert math.isnan(est.low) or est.low <= est.value <= est.high
    mc = clustered_mcnemar(ok, s[0] >= 0.5, cl)
    assert (0.0 <= mc.pvalue <= 1.0) and mc.statistic >= 0.0


@FIXED
@given(st.lists(st.one_of(st.floats(0.0, 1.0), st.just(math.nan)), max_size=12))
def test_holm_is_monotone_and_bounded(p):
    p = np.array(p, dtype=float)
    q = holm(p)
    ok = ~np.isnan(p)
    assert np.array_equal(np.isnan(q), ~ok)
    assert np.all(q[ok] >= p[ok]) and np.all(q[ok] <= 1.0)
    order = np.argsort(p[ok], kind="stable")
    assert np.all(np.diff(q[ok][order]) >= -1e-15)
