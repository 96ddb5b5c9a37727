"""Binary calls on images clustered by patient: McNemar's test and proportions with their CIs.

Clustered McNemar: Durkalski VL, Palesch YY, Lipsitz SR, Rust PF (2003). Analysis of clustered
matched-pair data. Statistics in Medicine 22:2417-2428. Patient k contributes b_k images where
arm A is right and B wrong and c_k the reverse; with b = sum b_k, c = sum c_k,

    X2 = (b - c)^2 / sum_k (b_k - c_k)^2  ~  chi-square(1)

With one image per patient (b_k - c_k)^2 is 1 for a discordant pair and 0 otherwise, so X2 is
McNemar's (1947) statistic without continuity correction (property test).

Proportion (ACC, SEN, SPE, PPV, NPV): the ratio estimator p = sum y_i / sum n_i over patients
(y_i successes among the n_i images of patient i in the denominator), with its
between-patient (linearisation) variance, as R survey's ``svymean`` under
``svydesign(ids = ~patient)`` (with-replacement, no finite-population correction):

    Var(p) = I / (I - 1) * sum_i (y_i - p n_i)^2 / n^2           (I patients with n_i > 0)

The design effect is Kish's deff = Var(p) / Var_srs(p), Var_srs = s^2 / n with the sample
variance s^2 = n p (1 - p) / (n - 1) (survey's ``deff = "replace"``). The CI is Wilson's (1927)
score interval on the effective sample size n_eff = n / deff, with p held fixed (Korn & Graubard
1998, Stat Med 17:2329, who used Clopper-Pearson; Wilson here so that one image per patient
gives exactly `wilson_ci`). **The deff used for n_eff is clamped at >= 1** (Korn & Graubard's
recommendation: clustering is not allowed to make the interval narrower than the binomial one;
the raw deff is reported beside it), and is 1 where the variance is 0 (p = 0 or 1).

ICC: from deff = 1 + (m_w - 1) ICC (Kish 1965), with the size-weighted mean patient size
m_w = sum n_i^2 / n, which is Eldridge, Ashby & Kerry's (2006, Int J Epidemiol 35:1292)
(1 + cv^2) m for unequal clusters: ICC = (deff - 1) / (m_w - 1), from the raw deff, NaN where
no patient holds two images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import chi2, norm

from mskdx.evaluate.stats.clustered import cluster_codes
from mskdx.evaluate.stats.proportions import _check_level, wilson_ci

__all__ = [
    "ClusteredMcNemar",
    "ClusteredProportion",
    "clustered_mcnemar",
    "clustered_proportion",
]

#: deff within this of 1 is 1 (one image per patient gives 1 up to rounding)
_DEFF_ROUND = 1e-9


def _binary(name: str, values: ArrayLike) -> NDArray[np.bool_]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} has shape {arr.shape}; expected a 1-d array")
    if arr.dtype != np.bool_ and arr.size and not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name} holds values other than True/False (or 1/0)")
    return arr.astype(bool)


@dataclass(frozen=True)
class ClusteredMcNemar:
    """Durkalski et al. (2003) clustered McNemar test of two arms' correctness on the same images.

    b: images where A is right and B wrong; c: the reverse; n: all images; `denominator`
    sum_k (b_k - c_k)^2. `statistic` is chi-square on 1 df.
    """

    statistic: float
    pvalue: float
    b: int
    c: int
    n: int
    n_clusters: int
    denominator: float
    #: what a degenerate case means ("not estimable: ...", "no discordant pairs: ..."), else ""
    note: str = ""


def clustered_mcnemar(
    correct_a: ArrayLike, correct_b: ArrayLike, clusters: ArrayLike
) -> ClusteredMcNemar:
    """Test whether two arms' accuracy on the same clustered images differs (Durkalski 2003).

    Args:
        correct_a, correct_b: per-image booleans, True where that arm is right (for SEN pass
            the positive images only, for SPE the negative ones); the same images in the same
            order. clusters: the patient of each image.

    Edge cases: no images: NaN, "not estimable: no pairs"; b = c = 0: statistic 0, p = 1
    ("no discordant pairs", as `mcnemar`); discordant images that balance within every patient
    (b_k = c_k for all k, so 0/0): statistic 0, p = 1 ("no difference"): the sign-flip
    permutation distribution of the patients' differences is a point mass at the observed 0.
    """
    a = _binary("correct_a", correct_a)
    bb = _binary("correct_b", correct_b)
    if a.shape != bb.shape:
        raise ValueError(f"correct_a has shape {a.shape} and correct_b {bb.shape}; expected equal")
    codes, n_clusters = cluster_codes(clusters, a.size)
    b_k = np.bincount(codes, weights=a & ~bb, minlength=n_clusters)
    c_k = np.bincount(codes, weights=~a & bb, minlength=n_clusters)
    b, c = int(round(b_k.sum())), int(round(c_k.sum()))
    denominator = float(np.sum((b_k - c_k) ** 2))
    note = ""
    if a.size == 0:
        stat = p = math.nan
        note = "not estimable: no pairs"
    elif b + c == 0:
        stat, p = 0.0, 1.0
        note = "no discordant pairs: the two agree on every case, p = 1"
    elif denominator == 0.0:
        stat, p = 0.0, 1.0
        note = "no difference: the discordant images balance within every patient, p = 1"
    else:
        stat = (b - c) ** 2 / denominator
        p = float(chi2.sf(stat, 1))
    return ClusteredMcNemar(
        statistic=float(stat),
        pvalue=float(p),
        b=b,
        c=c,
        n=int(a.size),
        n_clusters=n_clusters,
        denominator=denominator,
        note=note,
    )


@dataclass(frozen=True)
class ClusteredProportion:
    """A proportion of images with its cluster-robust SE, design effect, ICC and Wilson CI.

    `value` = successes / n; `se` the between-patient SE; `design_effect` Kish's raw deff,
    `design_effect_used` = max(1, deff) (1 where the variance is 0), `effective_n` =
    n / design_effect_used; `low`/`high` Wilson's interval on effective_n; `icc` from the raw
    deff and `mean_cluster_size` (size-weighted, sum n_i^2 / n). See the module docstring.
    """

    value: float
    low: float
    high: float
    successes: int
    n: int
    n_clusters: int
    se: float
    design_effect: float
    design_effect_used: float
    effective_n: float
    icc: float
    mean_cluster_size: float
    level: float = 0.95
    #: why something is NaN ("not estimable: ..."), else ""
    note: str = ""


def _wilson(p: float, n_eff: float, level: float) -> tuple[float, float]:
    """Wilson (1927) score interval for proportion p on a (non-integer) sample size n_eff."""
    z = norm.ppf(0.5 + level / 2.0)
    z2n = z * z / n_eff
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z * math.sqrt(p * (1.0 - p) / n_eff + z2n / (4.0 * n_eff)) / (1.0 + z2n)
    low = 0.0 if p == 0.0 else max(0.0, centre - half)
    high = 1.0 if p == 1.0 else min(1.0, centre + half)
    return low, high


def clustered_proportion(
    successes: ArrayLike, clusters: ArrayLike, level: float = 0.95
) -> ClusteredProportion:
    """Return the share of True among the images with its cluster-robust Wilson CI.

    Pass the images of the denominator only (all for ACC, the positives for SEN, the
    negatives for SPE, the called positives for PPV, ...): patients with no image in the
    denominator do not count as clusters (the domain is its own population of patients; R
    survey's ``subset`` would keep them, changing I / (I - 1) only). With no images every
    value is NaN, "not estimable: no cases"; with one patient the variance is NaN and the CI
    falls back to nothing ("not estimable: one patient").
    """
    level = _check_level(level)
    ok = _binary("successes", successes)
    codes, n_clusters = cluster_codes(clusters, ok.size)
    n, k = int(ok.size), int(ok.sum())
    nan = math.nan
    if n == 0:
        return ClusteredProportion(
            nan, nan, nan, 0, 0, 0, nan, nan, nan, nan, nan, nan, level, "not estimable: no cases"
        )
    p = k / n
    n_i = np.bincount(codes, minlength=n_clusters).astype(np.float64)
    y_i = np.bincount(codes, weights=ok, minlength=n_clusters)
    m_w = float(np.sum(n_i**2) / n)
    if n_clusters < 2:
        return ClusteredProportion(
            p, nan, nan, k, n, n_clusters, nan, nan, nan, nan, nan, m_w, level,
            "not estimable: one patient; the between-patient variance needs 2",
        )  # fmt: skip
    resid = y_i - p * n_i
    var = n_clusters / (n_clusters - 1) * float(np.sum(resid**2)) / n**2
    note = ""
    if k in (0, n):
        deff = nan  # 0/0: no variance within or between patients
        used = 1.0
    else:
        deff = var * (n - 1) / (p * (1.0 - p))  # Var / (s^2 / n), s^2 = n p (1-p) / (n-1)
        if abs(deff - 1.0) <= _DEFF_ROUND:
            deff = 1.0
        used = max(1.0, deff)
    n_eff = n / used
    if used == 1.0:
        low, high = wilson_ci(k, n, level)
    else:
        low, high = _wilson(p, n_eff, level)
    icc = (deff - 1.0) / (m_w - 1.0) if m_w > 1.0 and not math.isnan(deff) else nan
    return ClusteredProportion(
        value=p,
        low=float(low),
        high=float(high),
        successes=k,
        n=n,
        n_clusters=n_clusters,
        se=math.sqrt(var),
        design_effect=float(deff),
        design_effect_used=float(used),
        effective_n=float(n_eff),
        icc=float(icc),
        mean_cluster_size=m_w,
        level=level,
        note=note,
    )
