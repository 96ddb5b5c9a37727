"""McNemar's test for paired proportions (e.g. per-image correctness of two models).

McNemar Q (1947). Note on the sampling error of the difference between correlated proportions
or percentages. Psychometrika 12:153-157; continuity correction of Edwards AL (1948),
Psychometrika 13:185-187, as in R's ``mcnemar.test(correct = TRUE)`` and SPSS, which the papers
used. Exact version: two-sided binomial test of b against Binomial(b + c, 1/2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import binomtest, chi2

__all__ = ["McNemarResult", "mcnemar", "mcnemar_from_counts"]


@dataclass(frozen=True)
class McNemarResult:
    """McNemar test result.

    b: pairs where A is correct and B wrong; c: A wrong and B correct; n: all pairs. `statistic`
    is the chi-square statistic (1 df), or for the exact test min(b, c) as in statsmodels.
    """

    statistic: float
    pvalue: float
    b: int
    c: int
    n: int
    exact: bool
    correction: bool
    #: what a degenerate case means ("not estimable: ...", "no discordant pairs: ..."), else ""
    note: str = ""


def mcnemar_from_counts(
    b: int, c: int, correction: bool = True, exact: bool = False, n: int | None = None
) -> McNemarResult:
    """Run McNemar's test from the discordant counts b and c (see `mcnemar`).

    `n` (all pairs) is optional; given as 0 (an empty subgroup) the test is not estimable.
    """
    given_n = n is not None
    b, c = int(b), int(c)
    if b < 0 or c < 0:
        raise ValueError(f"b={b}, c={c}: expected non-negative discordant counts")
    n = b + c if n is None else int(n)
    if n < b + c:
        raise ValueError(f"n={n} pairs but b + c = {b + c} discordant ones; expected n >= b + c")
    d = b + c
    note = ""
    if n == 0 and d == 0 and given_n:
        # an empty subgroup: there is nothing to test, and p = 1 would read as a finding
        stat = p = float("nan")
        note = "not estimable: no pairs"
    elif d == 0:
        # No discordant pairs: the conditional (exact) null distribution of b given b + c = 0 is
        # a point mass at the observed 0, so p = 1 exactly; the chi-square statistic 0/0 is
        # taken as its limit 0 (R's mcnemar.test and statsmodels' chi-square give NaN here).
        stat, p = 0.0, 1.0
        note = "no discordant pairs: the two agree on every case, p = 1"
    elif exact:
        stat = float(min(b, c))
        p = float(min(1.0, binomtest(b, d, 0.5, alternative="two-sided").pvalue))
    else:
        diff = abs(b - c)
        if correction:
            # Edwards' correction, floored at 0, so that b == c gives statistic 0, p = 1; R's
            # mcnemar.test does the same by dropping the correction when b == c (R 4.2.2,
            # tests/data/degenerate_reference.csv).
            diff = max(0.0, diff - 1.0)
        stat = diff * diff / d
        p = float(chi2.sf(stat, 1))
    return McNemarResult(
        statistic=float(stat),
        pvalue=p,
        b=b,
        c=c,
        n=n,
        exact=bool(exact),
        correction=bool(correction),
        note=note,
    )


def mcnemar(
    correct_a: ArrayLike, correct_b: ArrayLike, correction: bool = True, exact: bool = False
) -> McNemarResult:
    """Test whether two classifiers' accuracies differ on the same cases (McNemar 1947).

    Args:
        correct_a, correct_b: per-case booleans, True where that classifier is right; the same
            cases in the same order.
        correction: continuity correction (Edwards 1948), statistic (|b - c| - 1)^2 / (b + c),
            as R's ``mcnemar.test`` (default). At b == c the corrected difference is floored at
            0 (statistic 0, p = 1), which is also R's answer (it drops the correction there).
        exact: two-sided exact binomial test of b ~ Binomial(b + c, 1/2) (statsmodels
            ``mcnemar(exact=True)``); `correction` is then ignored.

    Edge cases: b = c = 0 (classifiers agree on every case): statistic 0, p = 1 (the exact
    conditional test's answer), with a note; no cases at all: NaN, "not estimable: no pairs".
    """
    a = np.asarray(correct_a)
    bb = np.asarray(correct_b)
    if a.shape != bb.shape or a.ndim != 1:
        raise ValueError(
            f"correct_a has shape {a.shape} and correct_b {bb.shape}; expected equal 1-d arrays"
        )
    for name, arr in (("correct_a", a), ("correct_b", bb)):
        if arr.dtype != np.bool_ and arr.size and not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{name} holds values other than True/False (or 1/0)")
    a, bb = a.astype(bool), bb.astype(bool)
    b = int(np.sum(a & ~bb))
    c = int(np.sum(~a & bb))
    return mcnemar_from_counts(b, c, correction=correction, exact=exact, n=a.size)
