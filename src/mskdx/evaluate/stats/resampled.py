"""The corrected resampled t-test of two models over repeated k-fold cross-validation.

DeLong and McNemar compare two *fixed* models on one set of predictions; they do not see the
variation that comes from training (another split, another seed, another thread count). Over r
repetitions of k-fold CV the per-fold differences d_ij of a metric (e.g. AUC of arm A minus arm
B on fold j of repeat i) carry that variation, but they are not independent: the training sets
overlap. Nadeau & Bengio (2003, Machine Learning 52:239-281) correct the variance for it, and
Bouckaert & Frank (2004, PAKDD, LNCS 3056:3-12) apply the correction to r x k-fold CV:

    t = mean(d) / sqrt((1 / (k r) + n2 / n1) * var(d)),   df = k r - 1,

with var(d) the sample variance (ddof 1) of the k r differences, n1 the training and n2 the test
size of a fold (for k-fold CV n2 / n1 = 1 / (k - 1)). Without the n2 / n1 term it is the plain
paired t-test over folds, whose type I error is far above its nominal level. The CI of the mean
difference inverts the same test: mean -+ t_{df} quantile * sqrt((1 / (k r) + n2 / n1) var(d)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import t as student_t

__all__ = ["ResampledTTest", "corrected_resampled_ttest"]


@dataclass(frozen=True)
class ResampledTTest:
    """The corrected resampled t-test of mean(d) = 0 (two-sided)."""

    mean: float  # mean of the per-fold differences
    sd: float  # their sample standard deviation (ddof 1)
    statistic: float
    df: int
    p_value: float
    n_folds: int  # k r differences
    test_train_ratio: float  # n2 / n1
    #: CI of the mean difference: mean -+ t_{df, 1 - (1 - level) / 2} * the corrected SE
    ci_low: float = math.nan
    ci_high: float = math.nan
    level: float = 0.95


def corrected_resampled_ttest(
    differences: ArrayLike,
    *,
    test_train_ratio: float | None = None,
    folds: int | None = None,
    level: float = 0.95,
) -> ResampledTTest:
    """Test the mean of per-fold differences with the Nadeau-Bengio correction.

    Args:
        differences: the k r per-fold differences of a metric between two models, every fold of
            every repeat (the models trained and tested on the same folds).
        test_train_ratio: n2 / n1, test over training size of a fold; or give `folds` (k) for
            k-fold CV, where it is 1 / (k - 1). 0 gives the uncorrected paired t-test.
        level: of the CI of the mean difference, mean -+ t quantile * sqrt((1 / (k r) + n2 /
            n1) var(d)), the interval that inverts the test (a point where var(d) = 0).
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level}; expected a number in (0, 1)")
    d = np.asarray(differences, dtype=np.float64).ravel()
    if d.size < 2 or not np.isfinite(d).all():
        raise ValueError(f"differences: {d.size} values; expected >= 2 finite per-fold differences")
    if test_train_ratio is None:
        if folds is None or folds < 2:
            raise ValueError(f"folds={folds}; give test_train_ratio or folds >= 2")
        test_train_ratio = 1.0 / (folds - 1)
    if test_train_ratio < 0:
        raise ValueError(f"test_train_ratio={test_train_ratio}; expected >= 0")
    n = d.size
    mean, var = float(d.mean()), float(d.var(ddof=1))
    scale = (1.0 / n + test_train_ratio) * var
    half = float(student_t.ppf(0.5 + level / 2.0, n - 1)) * math.sqrt(scale)
    if scale > 0:
        stat = mean / math.sqrt(scale)
        p = float(2.0 * student_t.sf(abs(stat), n - 1))
    else:  # identical differences: no spread to test against
        stat = math.nan if mean == 0 else math.copysign(math.inf, mean)
        p = 1.0 if mean == 0 else 0.0
    return ResampledTTest(
        mean=mean,
        sd=math.sqrt(var),
        statistic=stat,
        df=n - 1,
        p_value=p,
        n_folds=n,
        test_train_ratio=float(test_train_ratio),
        ci_low=mean - half,
        ci_high=mean + half,
        level=float(level),
    )
