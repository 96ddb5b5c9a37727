"""Clustered statistics (issue 37) against R: tests/data/clustered_reference.R wrote the stored
tests/data/clustered_reference.csv from tests/data/clustered_input.csv (no mskdx code in R)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mskdx.evaluate.stats.clustered import (
    clustered_auc,
    clustered_auc_covariance,
    clustered_auc_global_test,
    clustered_auc_test,
)
from mskdx.evaluate.stats.clustered_binary import clustered_mcnemar, clustered_proportion
from mskdx.evaluate.stats.delong import delong_auc
from mskdx.evaluate.stats.multiplicity import holm, pairwise_holm

DATA = Path(__file__).resolve().parents[1] / "data"
THRESHOLD = 0.5  # as in the R script


@pytest.fixture(scope="module")
def ref() -> pd.DataFrame:
    df = pd.read_csv(DATA / "clustered_reference.csv", keep_default_na=False, na_values=["NA"])
    return df


def value(ref, dataset, check, arm, quantity, arm_b=""):
    row = ref[
        (ref.dataset == dataset)
        & (ref.check == check)
        & (ref.arm == arm)
        & (ref.arm_b.astype(str) == arm_b)
        & (ref.quantity == quantity)
    ]
    assert len(row) == 1, (dataset, check, arm, arm_b, quantity)
    return float(row.value.iloc[0])


def wide(dataset: str) -> pd.DataFrame:
    d = pd.read_csv(DATA / "clustered_input.csv")
    d = d[d.dataset == dataset]
    w = d.pivot_table(index=["patient", "image", "label"], columns="arm", values="prob")
    return w.reset_index()


@pytest.fixture(scope="module")
def clus() -> pd.DataFrame:
    return wide("clustered")


# ---- Obuchowski (1997) against its formulas written out in R (all M x N pairs) -----------------


def test_obuchowski_matches_r_brute_force(ref, clus):
    y, cl = clus.label.to_numpy(), clus.patient.to_numpy()
    auc, cov = clustered_auc_covariance(y, [clus.A, clus.B, clus.C], cl)
    arms = ("A", "B", "C")
    for i, a in enumerate(arms):
        assert auc[i] == pytest.approx(value(ref, "clustered", "obuchowski_brute", a, "auc"), 1e-12)
        r_var = value(ref, "clustered", "obuchowski_brute", a, "variance")
        assert cov[i, i] == pytest.approx(r_var, rel=1e-10)
        assert clustered_auc(y, clus[a], cl).variance == pytest.approx(r_var, rel=1e-10)
    for i, j in ((0, 1), (0, 2), (1, 2)):
        a, b = arms[i], arms[j]
        r_cov = value(ref, "clustered", "obuchowski_brute", a, "covariance", b)
        assert cov[i, j] == pytest.approx(r_cov, rel=1e-10)
        test = clustered_auc_test(y, clus[a], clus[b], cl)
        assert test.z == pytest.approx(value(ref, "clustered", "obuchowski_brute", a, "z", b), 1e-9)
        assert test.pvalue == pytest.approx(
            value(ref, "clustered", "obuchowski_brute", a, "p", b), rel=1e-9
        )
    glob = clustered_auc_global_test(y, [clus.A, clus.B, clus.C], cl)
    assert glob.df == 2 and glob.note == ""
    assert glob.statistic == pytest.approx(
        value(ref, "clustered", "obuchowski_brute", "A+B+C", "global_chi2"), rel=1e-9
    )
    assert glob.pvalue == pytest.approx(
        value(ref, "clustered", "obuchowski_brute", "A+B+C", "global_p"), rel=1e-9
    )


def test_obuchowski_se_agrees_with_the_patient_bootstrap_and_delong_does_not(ref, clus):
    """boot's patient-resampling SE (R = 4000). Tolerance 10% relative: the Monte Carlo SE of a
    bootstrap SE with B = 4000 is about 1/sqrt(2B) = 1.1%, so 3 MC SEs are 3.4%; on top, the
    plug-in bootstrap variance is (I - 1)/I of the jackknife-type one (-0.8% in SE for I = 60)
    and the two estimators differ by O(1/I). The image-independent DeLong SE is ~47% smaller on
    these data, far outside the band, so the check discriminates."""
    y, cl = clus.label.to_numpy(), clus.patient.to_numpy()
    boot_se = value(ref, "clustered", "bootstrap", "A", "auc_se")
    res = clustered_auc(y, clus.A, cl)
    assert res.se == pytest.approx(boot_se, rel=0.10)
    assert math.sqrt(delong_auc(y, clus.A).variance) < 0.75 * boot_se
    assert res.design_effect > 2.0
    diff_se = value(ref, "clustered", "bootstrap", "A", "difference_se", "B")
    assert math.sqrt(clustered_auc_test(y, clus.A, clus.B, cl).variance) == pytest.approx(
        diff_se, rel=0.10
    )


# ---- proportions against survey; Durkalski; Holm against p.adjust ----------------------------


@pytest.mark.parametrize("arm", ["A", "B", "C"])
def test_clustered_proportions_match_survey(ref, clus, arm):
    y = clus.label.to_numpy() == 1
    correct = (clus[arm].to_numpy() >= THRESHOLD) == y
    cl = clus.patient.to_numpy()
    for metric, keep in (("acc", np.ones_like(y)), ("sen", y), ("spe", ~y)):
        est = clustered_proportion(correct[keep], cl[keep])
        get = lambda q, m=metric: value(ref, "clustered", "survey", arm, f"{m}_{q}")  # noqa: E731
        assert est.value == pytest.approx(get("value"), abs=1e-12)
        assert est.se == pytest.approx(get("se"), rel=1e-9)
        assert est.design_effect == pytest.approx(get("deff"), rel=1e-9)
        assert (est.low, est.high) == pytest.approx((get("low"), get("high")), abs=1e-9)
        assert est.low <= est.value <= est.high
        if est.design_effect > 1:
            assert est.effective_n == pytest.approx(est.n / est.design_effect)


def test_clustered_mcnemar_matches_durkalski_in_r(ref, clus):
    y = clus.label.to_numpy() == 1
    ok_a, ok_b = (clus.A.to_numpy() >= THRESHOLD) == y, (clus.B.to_numpy() >= THRESHOLD) == y
    cl = clus.patient.to_numpy()
    for metric, keep in (("acc", np.ones_like(y)), ("sen", y), ("spe", ~y)):
        res = clustered_mcnemar(ok_a[keep], ok_b[keep], cl[keep])
        r_stat = value(ref, "clustered", "durkalski", "A", f"{metric}_statistic", "B")
        assert res.statistic == pytest.approx(r_stat, rel=1e-10)
        r_p = value(ref, "clustered", "durkalski", "A", f"{metric}_p", "B")
        assert res.pvalue == pytest.approx(r_p, rel=1e-9)


def test_holm_matches_p_adjust(ref):
    h = ref[ref.dataset == "holm"]
    for name, group in h.groupby("arm"):
        p = group[group.quantity == "p"].sort_values("arm_b", key=lambda s: s.astype(int))
        q = group[group.quantity == "holm"].sort_values("arm_b", key=lambda s: s.astype(int))
        ours = holm(p.value.to_numpy())
        np.testing.assert_allclose(ours, q.value.to_numpy(), rtol=1e-12, err_msg=name)
        assert np.array_equal(np.isnan(ours), np.isnan(p.value.to_numpy()))


# ---- one image per patient: pROC, mcnemar.test, prop.test ------------------------------------


def test_one_image_per_patient_equals_proc(ref):
    w = wide("single")
    y, cl = w.label.to_numpy(), w.patient.to_numpy()
    for arm in ("A", "B"):
        res = clustered_auc(y, w[arm], cl)
        assert res.auc == pytest.approx(value(ref, "single", "proc", arm, "auc"), abs=1e-12)
        assert res.variance == pytest.approx(value(ref, "single", "proc", arm, "variance"), 1e-9)
        assert res.ci_low == pytest.approx(value(ref, "single", "proc", arm, "ci_low"), rel=1e-9)
        assert res.ci_high == pytest.approx(value(ref, "single", "proc", arm, "ci_high"), 1e-9)
        assert res.design_effect == pytest.approx(1.0, abs=1e-12)
    test = clustered_auc_test(y, w.A, w.B, cl)
    assert test.z == pytest.approx(value(ref, "single", "proc", "A", "z", "B"), rel=1e-9)
    assert test.pvalue == pytest.approx(value(ref, "single", "proc", "A", "p", "B"), rel=1e-9)
    ok_a = (w.A.to_numpy() >= THRESHOLD) == (y == 1)
    ok_b = (w.B.to_numpy() >= THRESHOLD) == (y == 1)
    mc = clustered_mcnemar(ok_a, ok_b, cl)
    assert mc.statistic == pytest.approx(
        value(ref, "single", "mcnemar", "A", "acc_statistic", "B"), rel=1e-10
    )
    assert mc.pvalue == pytest.approx(value(ref, "single", "mcnemar", "A", "acc_p", "B"), 1e-9)
    est = clustered_proportion(ok_a, cl)
    assert est.design_effect == 1.0 and est.effective_n == est.n
    assert est.low == pytest.approx(value(ref, "single", "wilson", "A", "acc_low"), abs=1e-9)
    assert est.high == pytest.approx(value(ref, "single", "wilson", "A", "acc_high"), abs=1e-9)


# ---- degenerate inputs -----------------------------------------------------------------------


def test_clustered_auc_not_estimable_with_one_patient_per_class():
    y = np.array([1, 1, 1, 0, 0, 0, 0])
    s = np.array([0.9, 0.4, 0.6, 0.5, 0.1, 0.2, 0.3])
    cl = np.array(["P-1", "P-1", "P-1", "P-2", "P-3", "P-3", "P-3"])
    res = clustered_auc(y, s, cl)
    assert 0 < res.auc < 1 and math.isnan(res.ci_low)
    assert res.note.startswith("CI not estimable: 1 patients with positive images")
    test = clustered_auc_test(y, s, s[::-1], cl)
    assert math.isnan(test.pvalue) and test.note.startswith("not estimable")
    assert math.isnan(clustered_auc_global_test(y, [s, s[::-1]], cl).pvalue)
    with pytest.raises(ValueError, match="at least one of each"):
        clustered_auc(np.ones(4), s[:4], cl[:4])
    with pytest.raises(ValueError, match="clusters are missing"):
        clustered_auc(y, s, np.array(["P-1", None, "P-1", "P-2", "P-3", "P-3", "P-3"]))


def test_clustered_auc_zero_variance_and_identical_arms():
    y = np.array([1, 1, 0, 0, 1, 0, 1, 0])
    cl = np.array([1, 1, 2, 2, 3, 3, 4, 4])
    perfect = np.where(y == 1, 0.9, 0.1)
    res = clustered_auc(y, perfect, cl)
    assert res.auc == 1.0 and res.variance == 0.0 and math.isnan(res.ci_low)
    assert "clustered variance is 0" in res.note
    same = clustered_auc_test(y, perfect, 2 * perfect, cl)
    assert (same.z, same.pvalue) == (0.0, 1.0) and same.note.startswith("no difference")
    other = clustered_auc_test(y, perfect, np.full(8, 0.5), cl)
    assert math.isnan(other.pvalue) and "differ by 0.5" in other.note
    rng = np.random.default_rng(1)
    s = rng.random(8)
    glob = clustered_auc_global_test(y, [s, s, 3 * s], cl)  # three identically ranking arms
    assert (glob.statistic, glob.pvalue) == (0.0, 1.0)


def test_global_test_k2_is_z_squared_and_singular_k3_uses_the_rank():
    rng = np.random.default_rng(5)
    cl = np.repeat(np.arange(30), 3)
    y = rng.integers(0, 2, cl.size)
    a, b = rng.normal(size=cl.size) + y, rng.normal(size=cl.size) + y
    z = clustered_auc_test(y, a, b, cl).z
    glob = clustered_auc_global_test(y, [a, b], cl)
    assert glob.statistic == pytest.approx(z * z, rel=1e-10) and glob.df == 1
    # a third arm ranking exactly like the first: the contrast covariance has rank 1
    glob3 = clustered_auc_global_test(y, [a, b, 2 * a + 1], cl)
    assert glob3.df == 1 and glob3.statistic == pytest.approx(z * z, rel=1e-8)
    assert "pseudo-inverse" in glob3.note


def test_clustered_auc_ignores_cluster_names_and_row_order():
    rng = np.random.default_rng(9)
    cl = rng.integers(0, 25, 120)
    y = rng.integers(0, 2, 120)
    s = np.round(rng.normal(size=120) + y + 0.5 * rng.normal(size=25)[cl], 1)
    res = clustered_auc(y, s, cl)
    perm = rng.permutation(120)
    names = np.array([f"P-{c:03d}" for c in cl])
    again = clustered_auc(y[perm], s[perm], names[perm])
    assert again.auc == pytest.approx(res.auc, abs=1e-12)
    assert again.variance == pytest.approx(res.variance, rel=1e-10)


def test_clustered_mcnemar_degenerate_cases():
    empty = clustered_mcnemar([], [], [])
    assert math.isnan(empty.pvalue) and empty.note == "not estimable: no pairs"
    agree = clustered_mcnemar([1, 0, 1], [1, 0, 1], [1, 1, 2])
    assert (agree.statistic, agree.pvalue) == (0.0, 1.0) and "no discordant" in agree.note
    # each patient has one image A-right-B-wrong and one the reverse: 0/0, balanced
    bal = clustered_mcnemar([1, 0, 1, 0], [0, 1, 0, 1], [1, 1, 2, 2])
    assert (bal.b, bal.c, bal.pvalue) == (2, 2, 1.0) and bal.note.startswith("no difference")
    one = clustered_mcnemar([1, 1, 1, 1], [0, 0, 0, 1], [1, 1, 2, 2])
    assert one.statistic == pytest.approx((3 - 0) ** 2 / (2**2 + 1**2))


def test_clustered_proportion_degenerate_cases_and_clamp():
    none = clustered_proportion([], [])
    assert math.isnan(none.value) and none.note == "not estimable: no cases"
    one = clustered_proportion([1, 0, 1], ["P-1"] * 3)
    assert one.value == pytest.approx(2 / 3) and math.isnan(one.low) and "one patient" in one.note
    allright = clustered_proportion([1] * 6, [1, 1, 2, 2, 3, 3])
    assert math.isnan(allright.design_effect) and allright.design_effect_used == 1.0
    assert allright.high == 1.0 and allright.low > 0
    # one right and one wrong in every patient: no between-patient variance, deff 0 -> used 1
    even = clustered_proportion([1, 0] * 5, np.repeat(np.arange(5), 2))
    assert even.design_effect == pytest.approx(0.0) and even.design_effect_used == 1.0
    assert even.effective_n == 10 and even.icc == pytest.approx(-1.0)


def test_pairwise_holm_reports_the_pairs_with_the_reference():
    p = {("A", "B"): 0.01, ("A", "C"): 0.04, ("B", "C"): 0.03}
    out = pairwise_holm(["A", "B", "C"], "B", lambda a, b: p[(a, b)])
    assert out == {"A": (0.01, 0.03), "C": (0.03, 0.06)}
    assert math.isnan(holm([math.nan])[0])
    with pytest.raises(ValueError, match="not one of the arms"):
        pairwise_holm(["A", "B"], "D", lambda a, b: 0.5)
    with pytest.raises(ValueError, match="outside"):
        holm([0.5, 1.5])
