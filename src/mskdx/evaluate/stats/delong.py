"""DeLong AUC variance, confidence interval and paired test of two correlated AUCs.

Method: DeLong ER, DeLong DM, Clarke-Pearson DL (1988). Comparing the areas under two or more
correlated receiver operating characteristic curves: a nonparametric approach. Biometrics
44:837-845. The AUC is the Mann-Whitney statistic (ties between a positive and a negative count
1/2); its variance is estimated from the structural components ("placements") V10 (one per
positive) and V01 (one per negative).

Algorithm: Sun X, Xu W (2014). Fast implementation of DeLong's algorithm for comparing the areas
under correlated receiver operating characteristic curves. IEEE Signal Processing Letters
21:1389-1393. The placements follow from three midrankings (positives alone, negatives alone,
both together), so the cost is O(N log N) instead of O(m n) pairwise comparisons:

    V10_i = (T_Z(x_i) - T_X(x_i)) / n          (share of negatives below positive i, ties 1/2)
    V01_j = 1 - (T_Z(y_j) - T_Y(y_j)) / m      (share of positives above negative j, ties 1/2)
    AUC   = mean(V10) = mean(V01)
    S     = cov(V10) / m + cov(V01) / n        (sample covariances, ddof = 1)

These are the same formulas as pROC's ``var``/``cov``/``roc.test(method="delong")`` and give
pROC's published values on its aSAH example (see tests/unit/test_stats.py).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import norm, rankdata

__all__ = [
    "DelongResult",
    "DelongTest",
    "delong_auc",
    "delong_covariance",
    "delong_placements",
    "delong_test",
]

log = logging.getLogger(__name__)


def _check_level(level: float) -> float:
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level={level!r}: expected a confidence level strictly between 0 and 1")
    return float(level)


def _labels(y_true: ArrayLike) -> NDArray[np.bool_]:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"y_true has shape {y.shape}; expected a 1-d array of 0/1 labels")
    if y.dtype == np.bool_:
        return y
    if y.size and not np.isin(y, (0, 1)).all():
        bad = np.unique(y[~np.isin(y, (0, 1))])[:5]
        raise ValueError(f"y_true contains {bad.tolist()}; expected labels 0 (negative) or 1")
    return y.astype(bool)


def _scores(scores: ArrayLike | Sequence[ArrayLike], size: int) -> NDArray[np.float64]:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 1:
        s = s[np.newaxis, :]
    if s.ndim != 2 or s.shape[1] != size:
        raise ValueError(
            f"scores have shape {np.shape(scores)}; expected ({size},) or (k, {size}) "
            "to match y_true"
        )
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or infinite values; expected finite numbers")
    return s


def delong_placements(
    y_true: ArrayLike, scores: ArrayLike | Sequence[ArrayLike]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Return (auc, v10, v01) for one or k score vectors by midranks (Sun & Xu 2014).

    Returns:
        auc: shape (k,); v10: shape (k, m), one placement per positive; v01: shape (k, n), one
        per negative. A 1-d `scores` counts as k = 1.
    """
    y = _labels(y_true)
    s = _scores(scores, y.size)
    m, n = int(y.sum()), int((~y).sum())
    if m == 0 or n == 0:
        raise ValueError(
            f"y_true has {m} positives and {n} negatives; the AUC needs at least one of each"
        )
    x, z = s[:, y], s[:, ~y]
    tx = rankdata(x, method="average", axis=1)
    tz_ = rankdata(z, method="average", axis=1)
    t_all = rankdata(np.concatenate([x, z], axis=1), method="average", axis=1)
    v10 = (t_all[:, :m] - tx) / n
    v01 = 1.0 - (t_all[:, m:] - tz_) / m
    auc = (t_all[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (m * n)
    return auc, v10, v01


def delong_covariance(
    y_true: ArrayLike, scores: ArrayLike | Sequence[ArrayLike]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return the AUCs (k,) and their DeLong covariance matrix (k, k) (DeLong et al. 1988).

    The covariance needs at least two positives and two negatives; with fewer it is NaN.
    """
    auc, v10, v01 = delong_placements(y_true, scores)
    return auc, _covariance(v10, v01)


def _covariance(v10: NDArray[np.float64], v01: NDArray[np.float64]) -> NDArray[np.float64]:
    k, m = v10.shape
    n = v01.shape[1]
    if m < 2 or n < 2:
        return np.full((k, k), math.nan)
    s10 = np.atleast_2d(np.cov(v10, ddof=1))
    s01 = np.atleast_2d(np.cov(v01, ddof=1))
    return s10 / m + s01 / n


def _constant(v10: NDArray[np.float64], v01: NDArray[np.float64]) -> bool:
    """Whether placements (or their paired differences) are constant within each class: then
    the DeLong variance is exactly 0, whatever rounding np.cov leaves (placements are multiples
    of 1/(2n) and 1/(2m), so 1e-12 separates "equal" from the smallest real difference)."""
    return bool(np.ptp(v10) <= 1e-12 and np.ptp(v01) <= 1e-12)


@dataclass(frozen=True)
class DelongResult:
    """One AUC with its DeLong variance and normal-approximation confidence interval."""

    auc: float
    variance: float
    ci_low: float
    ci_high: float
    level: float
    n_positive: int
    n_negative: int
    #: why the CI is NaN ("CI not estimable: ..."), else ""
    note: str = ""

    @property
    def se(self) -> float:
        """Standard error, sqrt(variance)."""
        return math.sqrt(self.variance) if self.variance >= 0 else math.nan


def delong_auc(y_true: ArrayLike, y_score: ArrayLike, level: float = 0.95) -> DelongResult:
    """Return the AUC with its DeLong (1988) variance and CI, AUC +- z * SE clipped to [0, 1].

    This is pROC's ``ci.auc(method = "delong")``, except where the DeLong variance is 0. The CI is
    NaN, with a note, when there are fewer than two positives or two negatives (no variance
    estimate), and when the variance is 0: then every positive outranks the same share of
    negatives (AUC 0 or 1, separated scores, or all scores tied), an artefact of the sample and
    not certainty; pROC prints the point as its own CI, [1, 1], and warns that it "can be
    misleading". Raises ValueError without one of each class.
    """
    level = _check_level(level)
    y = _labels(y_true)
    auc, v10, v01 = delong_placements(y, y_score)
    if auc.size != 1:
        raise ValueError(f"y_score has {auc.size} rows; delong_auc takes one score vector")
    a, var = float(auc[0]), float(_covariance(v10, v01)[0, 0])
    m, n = int(y.sum()), int((~y).sum())
    note = ""
    if math.isnan(var):
        low = high = math.nan
        note = f"CI not estimable: {m} positives and {n} negatives; the variance needs 2 of each"
    elif _constant(v10, v01):
        var, low, high = 0.0, math.nan, math.nan
        note = (
            f"CI not estimable: the DeLong variance is 0 (AUC {a:.3g}: every positive outranks "
            "the same share of negatives), an artefact of the sample"
        )
    else:
        half = norm.ppf(0.5 + level / 2.0) * math.sqrt(max(var, 0.0))
        low, high = max(0.0, float(a - half)), min(1.0, float(a + half))
    return DelongResult(
        auc=a,
        variance=var,
        ci_low=low,
        ci_high=high,
        level=level,
        n_positive=m,
        n_negative=n,
        note=note,
    )


@dataclass(frozen=True)
class DelongTest:
    """Paired DeLong test of AUC(a) = AUC(b) on the same cases, two-sided.

    `difference` = auc_a - auc_b, `variance` its DeLong variance, `covariance` the covariance of
    the two AUCs; `ci_low`/`ci_high` the normal CI of the difference (not clipped).
    """

    auc_a: float
    auc_b: float
    difference: float
    variance: float
    covariance: float
    z: float
    pvalue: float
    ci_low: float
    ci_high: float
    level: float
    n_positive: int
    n_negative: int
    #: what the degenerate cases mean ("not estimable: ...", "no difference: ..."), else ""
    note: str = ""


def delong_test(
    y_true: ArrayLike, score_a: ArrayLike, score_b: ArrayLike, level: float = 0.95
) -> DelongTest:
    """Test whether two correlated AUCs differ (DeLong et al. 1988), two-sided normal test.

    z = (AUC_a - AUC_b) / sqrt(Var_a + Var_b - 2 Cov_ab), as pROC's ``roc.test`` (paired).
    Zero variance of the difference means every case's placement differs by the same amount in
    the two arms. With equal AUCs that amount is 0: the arms place every case alike, the
    sign-flip permutation distribution of the difference is a point mass at the observed 0, and
    z = 0, p = 1 (as pROC). With different AUCs (e.g. a perfect arm against a constant one) the
    normal test has no scale: z, p and the CI are NaN, "not estimable" (pROC prints z = Inf,
    p = 0, a number that the sample cannot support). With fewer than two positives or negatives
    z and p are NaN (pROC: NA).
    """
    level = _check_level(level)
    y = _labels(y_true)
    a = np.asarray(score_a, dtype=np.float64)
    b = np.asarray(score_b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"score_a has shape {a.shape} but score_b {b.shape}; expected the same")
    auc, v10, v01 = delong_placements(y, np.vstack([a, b]))
    cov = _covariance(v10, v01)
    diff = float(auc[0] - auc[1])
    var = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    m, n = int(y.sum()), int((~y).sum())
    z, p, low, high, diff, var, note = paired_z_test(
        diff,
        var,
        level,
        not_estimable=f"{m} positives and {n} negatives; the variance needs 2 of each",
        zero_variance=_constant(v10[0] - v10[1], v01[0] - v01[1]),
        variance="DeLong",
        unit="case",
    )
    return DelongTest(
        auc_a=float(auc[0]),
        auc_b=float(auc[1]),
        difference=diff,
        variance=var,
        covariance=float(cov[0, 1]),
        z=float(z),
        pvalue=float(p),
        ci_low=float(low),
        ci_high=float(high),
        level=level,
        n_positive=m,
        n_negative=n,
        note=note,
    )


def paired_z_test(
    diff: float,
    var: float,
    level: float,
    *,
    not_estimable: str,
    zero_variance: bool,
    variance: str,
    unit: str,
) -> tuple[float, float, float, float, float, float, str]:
    """The normal test of a difference of two AUCs and its CI, with the degenerate cases of
    `delong_test` (and its clustered twin): a NaN variance is "not estimable" (the reason given);
    a zero variance with equal AUCs is z = 0, p = 1 ("no difference"), with different AUCs NaN.

    Returns (z, p, ci_low, ci_high, diff, var, note).
    """
    if math.isnan(var):
        return (math.nan,) * 4 + (diff, var, f"not estimable: {not_estimable}")
    if zero_variance:
        if abs(diff) <= 1e-12:
            note = f"no difference: the two arms place every {unit} alike (zero variance), p = 1"
            return 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, note
        log.warning(
            "%s test: AUCs differ by %.6g with zero variance: not estimable", variance, diff
        )
        note = (
            f"not estimable: the AUCs differ by {abs(diff):.3g} but the {variance} variance of the "
            "difference is 0, so the normal test has no scale"
        )
        return (math.nan,) * 4 + (diff, 0.0, note)
    se = math.sqrt(var)
    z = diff / se
    half = norm.ppf(0.5 + level / 2.0) * se
    return z, float(min(1.0, 2.0 * norm.sf(abs(z)))), diff - half, diff + half, diff, var, ""
