"""Every statistic on the degenerate inputs docs/statistics.md names (issue 28).

R's answers come from tests/data/degenerate_reference.R (R 4.2.2, pROC 1.18.0), stored in
tests/data/degenerate_reference.csv, so that the tests need no R.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mskdx.evaluate.stats.calibration import brier_score, calibration_fit
from mskdx.evaluate.stats.decision import net_benefit
from mskdx.evaluate.stats.delong import delong_auc, delong_test
from mskdx.evaluate.stats.mcnemar import mcnemar, mcnemar_from_counts
from mskdx.evaluate.stats.metrics import binary_metrics
from mskdx.evaluate.stats.proportions import proportion, wilson_ci
from mskdx.evaluate.stats.threshold import search_threshold

REF = pd.read_csv(Path(__file__).resolve().parents[1] / "data" / "degenerate_reference.csv")
Y6 = [0, 0, 0, 1, 1, 1]
MIXED = [0.1, 0.4, 0.35, 0.8, 0.2, 0.9]
CASES = {  # the inputs of degenerate_reference.R: (y, score a, score b)
    "tied": (Y6, [0.5] * 6, MIXED),
    "separated": (Y6, [0.1, 0.2, 0.3, 0.7, 0.8, 0.9], [0.3, 0.2, 0.1, 0.9, 0.8, 0.7]),
    "reversed": (Y6, [0.7, 0.8, 0.9, 0.1, 0.2, 0.3], MIXED),
    "one_each": ([0, 1], [0.2, 0.8], [0.8, 0.2]),
    "perfect_vs_constant": ([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1], [0.0] * 4),
    "quasi": (Y6, [0.1, 0.2, 0.5, 0.5, 0.8, 0.9], MIXED),
}


def r_value(case: str, quantity: str) -> float:
    value = REF[(REF.case == case) & (REF.quantity == quantity)]["value"].item()
    return math.nan if pd.isna(value) else float(value)


# ---- Wilson -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "n"), [(0, 1), (1, 1), (0, 3), (3, 3), (1, 2), (0, 20), (20, 20)])
def test_wilson_at_the_boundaries_matches_r_prop_test(k, n):
    low, high = wilson_ci(k, n)
    assert (low, high) == pytest.approx(
        (r_value(f"wilson_{k}_of_{n}", "low"), r_value(f"wilson_{k}_of_{n}", "high")), abs=1e-11
    )
    assert low <= k / n <= high


def test_wilson_of_an_empty_stratum_is_not_estimable():
    est = proportion(0, 0)
    assert math.isnan(est.value) and math.isnan(est.low) and est.note == "not estimable: no cases"
    assert proportion(3, 4).note == ""


# ---- DeLong -----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
def test_delong_auc_and_variance_match_proc(case):
    y, a, _ = CASES[case]
    res = delong_auc(y, a)
    assert res.auc == pytest.approx(r_value(case, "auc_a"), abs=1e-11)
    var = r_value(case, "var_a")
    if math.isnan(var):
        assert math.isnan(res.variance) and math.isnan(res.ci_low)
        assert res.note.startswith("CI not estimable: 1 positives and 1 negatives")
    elif var == 0:
        # pROC prints [auc, auc] and warns that it "can be misleading"; we print no CI
        assert res.variance == 0 and r_value(case, "ci_low_a") == res.auc
        assert math.isnan(res.ci_low) and math.isnan(res.ci_high)
        assert res.note.startswith("CI not estimable: the DeLong variance is 0")
    else:
        assert res.variance == pytest.approx(var, rel=1e-9)
        assert (res.ci_low, res.ci_high) == pytest.approx(
            (r_value(case, "ci_low_a"), r_value(case, "ci_high_a")), abs=1e-9
        )
        assert res.note == ""


@pytest.mark.parametrize("case", sorted(CASES))
def test_delong_paired_test_matches_proc_but_for_a_zero_variance_difference(case):
    y, a, b = CASES[case]
    res = delong_test(y, a, b)
    z, p = r_value(case, "z"), r_value(case, "p")
    if case == "perfect_vs_constant":
        assert (z, p) == (math.inf, 0.0)  # pROC; a sample of 4 cannot give p = 0
        assert math.isnan(res.z) and math.isnan(res.pvalue) and math.isnan(res.ci_low)
        assert res.note.startswith("not estimable: the AUCs differ")
    elif math.isnan(p):
        assert math.isnan(res.z) and math.isnan(res.pvalue)
        assert res.note.startswith("not estimable: 1 positives and 1 negatives")
    else:
        assert (res.z, res.pvalue) == pytest.approx((z, p), abs=1e-9)
    if case == "separated":  # both arms perfect: every case placed alike
        assert res.note.startswith("no difference") and res.pvalue == 1.0


def test_delong_one_class_is_refused_and_binary_metrics_say_why():
    with pytest.raises(ValueError, match="at least one of each"):
        delong_auc([1, 1], [0.2, 0.4])
    m = binary_metrics([1, 1, 1], [1, 0, 1], [0.9, 0.2, 0.8])
    assert m.auc is None
    assert m.auc_note == "not estimable: 3 positives and 0 negatives; the AUC needs both"


# ---- McNemar ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("b", "c"), [(5, 5), (1, 0), (0, 1)])
def test_mcnemar_small_and_balanced_tables_match_r(b, c):
    name = f"mcnemar_b{b}_c{c}"
    corrected, raw = mcnemar_from_counts(b, c), mcnemar_from_counts(b, c, correction=False)
    assert corrected.statistic == pytest.approx(r_value(name, "statistic_corrected"), abs=1e-12)
    assert corrected.pvalue == pytest.approx(r_value(name, "p_corrected"), abs=1e-12)
    assert raw.statistic == pytest.approx(r_value(name, "statistic"), abs=1e-12)
    assert raw.pvalue == pytest.approx(r_value(name, "p"), abs=1e-11)


def test_mcnemar_without_discordant_pairs_or_pairs():
    assert math.isnan(r_value("mcnemar_b0_c0", "p"))  # R: 0/0
    agree = mcnemar(np.ones(4, bool), np.ones(4, bool))
    assert (agree.statistic, agree.pvalue) == (0.0, 1.0)  # the exact conditional test's answer
    assert agree.note.startswith("no discordant pairs")
    empty = mcnemar(np.array([], bool), np.array([], bool))
    assert math.isnan(empty.pvalue) and empty.note == "not estimable: no pairs"
    with pytest.raises(ValueError, match="n >= b"):
        mcnemar_from_counts(3, 2, n=4)


# ---- Brier, calibration, net benefit ------------------------------------------------------------


def test_brier_and_calibration_of_one_class():
    brier = brier_score([1, 1, 1], [0.9, 0.5, 0.7])
    assert brier.value == pytest.approx((0.01 + 0.25 + 0.09) / 3) and brier.reference == 0.0
    fit = calibration_fit([1, 1, 1], [0.9, 0.5, 0.7], method="firth")
    assert math.isnan(fit.intercept) and math.isnan(fit.slope)
    assert fit.note.startswith("not estimable: one class only")


def test_net_benefit_on_degenerate_inputs():
    grid = np.array([0.0, 0.5, 0.99])
    one = net_benefit([0, 0, 0], [0.2, 0.6, 1.0], grid)  # one class: every call is a false one
    assert one["tp"].sum() == 0 and (one["net_benefit"] <= 0).all()
    assert one["treat_all"].tolist() == pytest.approx([0.0, -1.0, -99.0])
    const = net_benefit([0, 1, 1], [0.5, 0.5, 0.5], grid)  # constant: all or nobody treated
    assert const["net_benefit"].iloc[1] == pytest.approx(const["treat_all"].iloc[1])
    assert const["net_benefit"].iloc[2] == 0.0 and not const["useful"].any()
    exact = net_benefit([0, 1], [0.0, 1.0], grid)  # exactly 0 and 1: never wrong above pt = 0
    assert exact["net_benefit"].tolist() == pytest.approx([0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="non-zero length"):
        net_benefit([], [], grid)


# ---- threshold search, binary metrics -----------------------------------------------------------


def test_threshold_search_names_one_class_and_a_flat_curve():
    one = search_threshold([0.3, 0.5], [1, 1])
    assert one.accuracy == 1.0 and one.note.startswith("one class only")
    flat = search_threshold([0.3, 0.3], [0, 1])
    assert flat.accuracy == 0.5 and flat.note.startswith("every threshold gives the same")
    assert search_threshold([0.1, 0.6], [0, 1]).note == ""
    with pytest.raises(ValueError, match="at least one"):
        search_threshold([], [])


def test_binary_metrics_of_empty_and_one_case_inputs():
    empty = binary_metrics([], [])
    assert empty.n == 0 and math.isnan(empty.accuracy.value) and math.isnan(empty.f1_positive)
    assert empty.accuracy.note == "not estimable: no cases"
    single = binary_metrics([1], [0], [0.3])
    assert single.sensitivity.value == 0.0 and single.sensitivity.high < 1
    # F1 = 2 TP / (2 TP + FP + FN): 0 where a case of the class exists or was called, else 0/0
    assert single.f1_positive == 0.0 and single.f1_negative == 0.0
    assert math.isnan(binary_metrics([0], [0]).f1_positive)
    assert single.auc is None and single.auc_note.startswith("not estimable")
