"""The corrected resampled t-test (Nadeau & Bengio 2003; Bouckaert & Frank 2004), checked
against computations that do not call our code."""

import math

import numpy as np
import pytest
from scipy import stats

from mskdx.evaluate.stats.resampled import corrected_resampled_ttest

# 2 repeats x 5 folds of AUC differences (arm A minus arm B)
D = [0.02, 0.05, -0.01, 0.03, 0.04, 0.01, 0.06, 0.00, 0.02, 0.03]


def by_hand(d, n2_over_n1):
    """The formula as printed (Bouckaert & Frank 2004, eq. for r x k-fold), in plain Python."""
    n = len(d)
    mean = sum(d) / n
    var = sum((x - mean) ** 2 for x in d) / (n - 1)
    t = mean / math.sqrt((1 / n + n2_over_n1) * var)
    return t, n - 1


def test_matches_the_formula_written_out():
    t, df = by_hand(D, 1 / 4)  # 5-fold: test / train = 1 / 4
    got = corrected_resampled_ttest(D, folds=5)
    assert got.statistic == pytest.approx(t, rel=1e-12)
    assert got.df == df == 9
    assert got.p_value == pytest.approx(2 * stats.t.sf(abs(t), df), rel=1e-12)


def test_worked_numbers():
    # by hand: mean 0.025; squared deviations sum to 0.00425, sample variance 0.00425 / 9 =
    # 0.000472222; t = 0.025 / sqrt((0.1 + 0.25) * 0.000472222) = 0.025 / 0.0128560 = 1.94461
    got = corrected_resampled_ttest(D, test_train_ratio=0.25)
    assert got.mean == pytest.approx(0.025)
    assert got.sd**2 == pytest.approx(0.000472222, rel=1e-6)
    assert got.statistic == pytest.approx(1.94461, abs=1e-4)
    assert got.p_value == pytest.approx(0.0837, abs=5e-4)  # t(9) tables: t 1.833 <-> p 0.10
    # the plain paired t-test over folds (t = 0.025 / 0.0068718 = 3.638) says p < 0.01
    assert corrected_resampled_ttest(D, test_train_ratio=0).p_value < 0.01


def test_without_correction_it_is_the_paired_t_test():
    got = corrected_resampled_ttest(D, test_train_ratio=0.0)
    ref = stats.ttest_1samp(D, 0.0)
    assert got.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert got.p_value == pytest.approx(ref.pvalue, rel=1e-10)


def test_degenerate_and_bad_input():
    same = corrected_resampled_ttest([0.1] * 5, folds=5)
    assert same.p_value == 0.0 and math.isinf(same.statistic)
    assert corrected_resampled_ttest([0.0] * 5, folds=5).p_value == 1.0
    with pytest.raises(ValueError, match="expected >= 2"):
        corrected_resampled_ttest([0.1], folds=5)
    with pytest.raises(ValueError, match="folds"):
        corrected_resampled_ttest(D)


def test_type_one_error_is_near_nominal_under_overlapping_training_sets():
    """Simulated null: correlated fold differences (shared training data) inflate the plain test."""
    rng = np.random.default_rng(0)
    k, r, sims, rho = 5, 10, 400, 0.25  # rho ~ n2/n1 for 5-fold (Nadeau & Bengio's argument)
    cov = np.full((k * r, k * r), rho) + np.eye(k * r) * (1 - rho)
    d = rng.multivariate_normal(np.zeros(k * r), cov, size=sims)
    plain = np.mean([stats.ttest_1samp(x, 0).pvalue < 0.05 for x in d])
    corrected = np.mean([corrected_resampled_ttest(x, folds=k).p_value < 0.05 for x in d])
    assert plain > 0.3
    assert corrected < 0.12
