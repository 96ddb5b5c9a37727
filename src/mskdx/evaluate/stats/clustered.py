"""Clustered AUC: variance, CI, paired test and global test of k AUCs, images clustered by patient.

Method: Obuchowski NA (1997). Nonparametric analysis of clustered ROC curve data. Biometrics
53:567-578. Patients are the clusters; a patient may hold positive images, negative images or
both. With I patients, m_i positives and n_i negatives in patient i, M = sum m_i, N = sum n_i,
and the placements of DeLong et al. (1988) over all images (ties 1/2),

    V10(x_ij) = share of all N negatives below positive j of patient i
    V01(y_il) = share of all M positives above negative l of patient i
    AUC       = sum V10 / M = sum V01 / N
    V10_i     = sum_j V10(x_ij),  V01_i = sum_l V01(y_il)          (per patient)
    S10 = I10 / ((I10 - 1) M) sum_i (V10_i - m_i AUC)^2
    S01 = I01 / ((I01 - 1) N) sum_i (V01_i - n_i AUC)^2
    S11 = I / (I - 1)         sum_i (V10_i - m_i AUC)(V01_i - n_i AUC)
    Var(AUC) = S10 / M + S01 / N + 2 S11 / (M N)

where I10 (I01) counts the patients with at least one positive (negative) image. The covariance
of two arms scored on the same images replaces each square by the product of the two arms'
deviations. With one image per patient S11 = 0, I10 = M, I01 = N and every formula is DeLong's
(property test: equal to `delong_auc` and `delong_test` to 1e-12).

Algorithm: the placements come from midranks exactly as in `delong.delong_placements` (Sun & Xu
2014), the per-patient sums from ``np.bincount``: O(N log N) for N images, whatever the cluster
sizes. The test of k equal AUCs is the Wald chi-square on the contrasts AUC_j - AUC_k
(DeLong et al. 1988, section 3, with the clustered covariance), k - 1 degrees of freedom, a
Moore-Penrose pseudo-inverse and the rank as df where the contrast covariance is singular.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.stats import chi2, norm

from mskdx.evaluate.stats.delong import (
    _check_level,
    _labels,
    _scores,
    delong_placements,
    paired_z_test,
)
from mskdx.evaluate.stats.delong import _covariance as _delong_covariance

__all__ = [
    "ClusteredAUC",
    "ClusteredAUCTest",
    "GlobalAUCTest",
    "cluster_codes",
    "clustered_auc",
    "clustered_auc_covariance",
    "clustered_auc_global_test",
    "clustered_auc_test",
]

log = logging.getLogger(__name__)

#: placements are multiples of 1/(2N) and 1/(2M): deviations below this are exact zeros
_ZERO = 1e-12


def cluster_codes(clusters: ArrayLike, size: int) -> tuple[NDArray[np.int64], int]:
    """Return integer codes 0..I-1 of the cluster labels (one per image) and I.

    Any hashable labels (patient pseudonyms, integers) are accepted; NaN/None are refused.
    """
    labels = np.asarray(clusters, dtype=object)
    if labels.ndim != 1 or labels.size != size:
        raise ValueError(
            f"clusters have shape {labels.shape}; expected ({size},), one label per image"
        )
    if size and pd.isna(labels).any():
        rows = np.flatnonzero(pd.isna(labels))[:5].tolist()
        raise ValueError(f"clusters are missing (NaN/None) at positions {rows}")
    codes, uniques = pd.factorize(labels, sort=False)
    return codes.astype(np.int64), len(uniques)


@dataclass(frozen=True)
class _Deviations:
    """Per-patient placement deviations of k arms: r10 = V10_i - m_i AUC, r01 = V01_i - n_i AUC."""

    auc: NDArray[np.float64]  # (k,)
    r10: NDArray[np.float64]  # (k, I)
    r01: NDArray[np.float64]  # (k, I)
    m: int
    n: int
    n_clusters: int
    n_clusters_positive: int
    n_clusters_negative: int
    v10: NDArray[np.float64]  # (k, M), DeLong's placements, kept for the independent variance
    v01: NDArray[np.float64]  # (k, N)


def _deviations(y_true: ArrayLike, scores: ArrayLike, clusters: ArrayLike) -> _Deviations:
    y = _labels(y_true)
    s = _scores(scores, y.size)
    codes, n_clusters = cluster_codes(clusters, y.size)
    auc, v10, v01 = delong_placements(y, s)
    pos, neg = codes[y], codes[~y]
    m_i = np.bincount(pos, minlength=n_clusters).astype(np.float64)
    n_i = np.bincount(neg, minlength=n_clusters).astype(np.float64)
    k = s.shape[0]
    r10 = np.empty((k, n_clusters))
    r01 = np.empty((k, n_clusters))
    for r in range(k):
        r10[r] = np.bincount(pos, weights=v10[r], minlength=n_clusters) - m_i * auc[r]
        r01[r] = np.bincount(neg, weights=v01[r], minlength=n_clusters) - n_i * auc[r]
    return _Deviations(
        auc=auc,
        r10=r10,
        r01=r01,
        m=int(y.sum()),
        n=int((~y).sum()),
        n_clusters=n_clusters,
        n_clusters_positive=int(np.count_nonzero(m_i)),
        n_clusters_negative=int(np.count_nonzero(n_i)),
        v10=v10,
        v01=v01,
    )


def _not_estimable(d: _Deviations) -> str:
    """Why the Obuchowski variance cannot be computed, or "" (it needs 2 patients per class)."""
    if d.n_clusters_positive < 2 or d.n_clusters_negative < 2:
        return (
            f"{d.n_clusters_positive} patients with positive images and "
            f"{d.n_clusters_negative} with negative ones; the clustered variance needs 2 of each"
        )
    return ""


def _covariance(d: _Deviations) -> NDArray[np.float64]:
    k = d.auc.size
    if _not_estimable(d):
        return np.full((k, k), math.nan)
    i10, i01, i = d.n_clusters_positive, d.n_clusters_negative, d.n_clusters
    s10 = i10 / ((i10 - 1) * d.m) * (d.r10 @ d.r10.T)
    s01 = i01 / ((i01 - 1) * d.n) * (d.r01 @ d.r01.T)
    cross = d.r10 @ d.r01.T
    s11 = i / (i - 1) * (cross + cross.T) / 2.0  # symmetric: S11_rs + S11_sr, halved, twice
    return s10 / d.m + s01 / d.n + 2.0 * s11 / (d.m * d.n)


def clustered_auc_covariance(
    y_true: ArrayLike, scores: ArrayLike | Sequence[ArrayLike], clusters: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return the AUCs (k,) and their Obuchowski (1997) clustered covariance matrix (k, k).

    `scores` is one score vector or k of them on the same images; `clusters` one patient label
    per image. The covariance is NaN with fewer than two patients holding positive images or two
    holding negative ones. Raises ValueError without one image of each class.
    """
    d = _deviations(y_true, scores, clusters)
    return d.auc, _covariance(d)


def _zero(*arrays: NDArray[np.float64]) -> bool:
    return all(float(np.max(np.abs(a), initial=0.0)) <= _ZERO for a in arrays)


@dataclass(frozen=True)
class ClusteredAUC:
    """One AUC with its Obuchowski (1997) clustered variance and normal CI (clipped to [0, 1]).

    `variance_independent` is DeLong's variance treating every image as independent (the same
    placements); `design_effect` their ratio.
    """

    auc: float
    variance: float
    ci_low: float
    ci_high: float
    level: float
    n_positive: int
    n_negative: int
    n_clusters: int
    n_clusters_positive: int
    n_clusters_negative: int
    variance_independent: float
    #: why the CI is NaN ("CI not estimable: ..."), else ""
    note: str = ""

    @property
    def se(self) -> float:
        """Standard error, sqrt(variance)."""
        return math.sqrt(self.variance) if self.variance >= 0 else math.nan

    @property
    def design_effect(self) -> float:
        """Clustered over independent variance (NaN where either is 0 or NaN)."""
        if not (self.variance_independent > 0 and self.variance >= 0):
            return math.nan
        return self.variance / self.variance_independent


def clustered_auc(
    y_true: ArrayLike, y_score: ArrayLike, clusters: ArrayLike, level: float = 0.95
) -> ClusteredAUC:
    """Return the AUC with its Obuchowski (1997) clustered variance and CI, AUC +- z SE.

    Same conventions as `delong_auc`: the CI is clipped to [0, 1]; it is NaN with a note when
    fewer than two patients hold positive (or negative) images, and when the variance is 0
    (every patient's placements equal their expected share: AUC 0 or 1, separated or tied
    scores), an artefact of the sample and not certainty. Raises ValueError without one image
    of each class.
    """
    level = _check_level(level)
    d = _deviations(y_true, y_score, clusters)
    if d.auc.size != 1:
        raise ValueError(f"y_score has {d.auc.size} rows; clustered_auc takes one score vector")
    a = float(d.auc[0])
    var = float(_covariance(d)[0, 0])
    note = ""
    low = high = math.nan
    if math.isnan(var):
        note = f"CI not estimable: {_not_estimable(d)}"
    elif _zero(d.r10, d.r01) or var <= 0.0:
        var = 0.0
        note = (
            f"CI not estimable: the clustered variance is 0 (AUC {a:.3g}: every patient's "
            "placements equal their expected share), an artefact of the sample"
        )
    else:
        half = norm.ppf(0.5 + level / 2.0) * math.sqrt(var)
        low, high = max(0.0, a - half), min(1.0, a + half)
    return ClusteredAUC(
        auc=a,
        variance=var,
        ci_low=float(low),
        ci_high=float(high),
        level=level,
        n_positive=d.m,
        n_negative=d.n,
        n_clusters=d.n_clusters,
        n_clusters_positive=d.n_clusters_positive,
        n_clusters_negative=d.n_clusters_negative,
        variance_independent=float(_delong_covariance(d.v10, d.v01)[0, 0]),
        note=note,
    )


@dataclass(frozen=True)
class ClusteredAUCTest:
    """Paired clustered test of AUC(a) = AUC(b) on the same images (Obuchowski 1997), two-sided.

    `difference` = auc_a - auc_b, `variance` its clustered variance, `covariance` that of the
    two AUCs; `ci_low`/`ci_high` the normal CI of the difference (not clipped).
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
    n_clusters: int
    #: what the degenerate cases mean ("not estimable: ...", "no difference: ..."), else ""
    note: str = ""


def clustered_auc_test(
    y_true: ArrayLike,
    score_a: ArrayLike,
    score_b: ArrayLike,
    clusters: ArrayLike,
    level: float = 0.95,
) -> ClusteredAUCTest:
    """Test whether two AUCs on the same clustered images differ (Obuchowski 1997).

    z = (AUC_a - AUC_b) / sqrt(Var_a + Var_b - 2 Cov_ab) with the clustered (co)variances.
    Degenerate cases as `delong_test`: fewer than two patients per class: NaN, "not estimable";
    zero variance of the difference with equal AUCs (the arms place every patient alike):
    z = 0, p = 1, "no difference"; zero variance with different AUCs: NaN, "not estimable".
    """
    level = _check_level(level)
    a = np.asarray(score_a, dtype=np.float64)
    b = np.asarray(score_b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"score_a has shape {a.shape} but score_b {b.shape}; expected the same")
    d = _deviations(y_true, np.vstack([a, b]), clusters)
    cov = _covariance(d)
    diff = float(d.auc[0] - d.auc[1])
    var = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    z, p, low, high, diff, var, note = paired_z_test(
        diff,
        var,
        level,
        not_estimable=_not_estimable(d),
        zero_variance=_zero(d.r10[0] - d.r10[1], d.r01[0] - d.r01[1]) or var <= 0.0,
        variance="clustered",
        unit="patient",
    )
    return ClusteredAUCTest(
        auc_a=float(d.auc[0]),
        auc_b=float(d.auc[1]),
        difference=diff,
        variance=var,
        covariance=float(cov[0, 1]),
        z=float(z),
        pvalue=float(p),
        ci_low=float(low),
        ci_high=float(high),
        level=level,
        n_positive=d.m,
        n_negative=d.n,
        n_clusters=d.n_clusters,
        note=note,
    )


@dataclass(frozen=True)
class GlobalAUCTest:
    """Wald chi-square test that k AUCs on the same clustered images are all equal."""

    aucs: tuple[float, ...]
    statistic: float
    df: int
    pvalue: float
    #: degenerate cases ("not estimable: ...", "no difference: ...", the rank used), else ""
    note: str = ""


def _wald(diff: NDArray[np.float64], v: NDArray[np.float64]) -> tuple[float, int, str]:
    """Wald statistic diff' V^+ diff with df = rank(V); NaN if diff leaves the range of V."""
    vals, vecs = np.linalg.eigh((v + v.T) / 2.0)
    scale = max(float(vals.max(initial=0.0)), 0.0)
    keep = vals > scale * 1e-10 if scale > 0 else np.zeros_like(vals, dtype=bool)
    rank = int(keep.sum())
    coords = vecs.T @ diff
    outside = float(np.abs(coords[~keep]).max(initial=0.0))
    if rank == 0:
        if outside <= _ZERO:
            return 0.0, 0, "no difference: the arms place every patient alike, p = 1"
        return math.nan, 0, "not estimable: the AUCs differ but their clustered covariance is 0"
    if outside > 1e-9:
        return (
            math.nan,
            rank,
            "not estimable: the AUCs differ in a direction where their clustered covariance is 0",
        )
    stat = float(np.sum(coords[keep] ** 2 / vals[keep]))
    note = "" if rank == diff.size else f"singular covariance: pseudo-inverse, df = rank {rank}"
    return stat, rank, note


def clustered_auc_global_test(
    y_true: ArrayLike, scores: ArrayLike | Sequence[ArrayLike], clusters: ArrayLike
) -> GlobalAUCTest:
    """Test AUC_1 = ... = AUC_k with the Obuchowski covariance: chi-square on k - 1 df.

    Contrasts L = [I_{k-1} | -1] (each arm minus the last): chi2 = (L a)' (L S L')^+ (L a). The
    statistic does not depend on the choice of contrasts. Where L S L' is singular the
    pseudo-inverse is used and df is its rank (said in the note); a difference of AUCs outside
    the range of L S L' (different AUCs with zero variance) is "not estimable". With k = 2 the
    statistic is z^2 of `clustered_auc_test`.
    """
    d = _deviations(y_true, scores, clusters)
    k = d.auc.size
    aucs = tuple(float(a) for a in d.auc)
    if k < 2:
        return GlobalAUCTest(aucs, math.nan, 0, math.nan, "not estimable: fewer than 2 arms")
    cov = _covariance(d)
    if np.isnan(cov).any():
        return GlobalAUCTest(aucs, math.nan, k - 1, math.nan, f"not estimable: {_not_estimable(d)}")
    contrast = np.hstack([np.eye(k - 1), -np.ones((k - 1, 1))])
    diff = contrast @ d.auc
    dev10 = contrast @ d.r10
    dev01 = contrast @ d.r01
    if _zero(dev10, dev01):
        if _zero(diff):
            return GlobalAUCTest(
                aucs, 0.0, k - 1, 1.0, "no difference: the arms place every patient alike, p = 1"
            )
        return GlobalAUCTest(
            aucs, math.nan, k - 1, math.nan, "not estimable: the AUCs differ with zero variance"
        )
    stat, df, note = _wald(diff, contrast @ cov @ contrast.T)
    p = float(chi2.sf(stat, df)) if df > 0 and not math.isnan(stat) else math.nan
    if df == 0 and stat == 0.0:
        p = 1.0
    return GlobalAUCTest(aucs, stat, df, p, note)
