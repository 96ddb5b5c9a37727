"""Multiplicity: Holm's step-down adjustment, for a reference named in advance or picked after.

Holm S (1979). A simple sequentially rejective multiple test procedure. Scandinavian Journal of
Statistics 6:65-70. Adjusted p_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)) over the sorted
p-values; it controls the family-wise error rate (FWER) strongly, under any dependence. Equal to
R's ``p.adjust(p, "holm")``, including NA: p-values that were not computed stay NaN and do not
count in m (checked against R, tests/data/clustered_reference.R).

A reference chosen after the fact (``auto``: the arm with the highest AUC on the same data) makes
"the k - 1 comparisons with the reference" a data-dependent family, and Holm over those k - 1
p-values no longer controls the FWER: the best arm is best partly by chance, so its comparisons
are biased towards significance (issue 37: 57% false "best vs the other 3" at 5%). Here the
family is instead **all k (k - 1) / 2 pairwise comparisons**, adjusted by Holm, and the k - 1
comparisons with the selected arm are reported from it. Strong FWER control means that the
probability of rejecting any true null hypothesis *in the whole family* is <= alpha, so the
probability of rejecting a true one among any subfamily, chosen by any rule, even after looking
at the data, is <= alpha too (e.g. Hochberg & Tamhane 1987, Multiple Comparison Procedures,
ch. 1; Goeman & Solari 2011, Stat Sci 26:584, on post-hoc selection under strong control). It is
conservative (m = 6 instead of 3 for four arms); Hsu's multiple comparisons with the best
(Hsu 1996) is sharper but needs the joint distribution of all differences, and is not used.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Hashable, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["holm", "pairwise_holm", "reference_holm"]


def holm(pvalues: ArrayLike) -> NDArray[np.float64]:
    """Return Holm's (1979) adjusted p-values in the input order; NaN stays NaN, not counted.

    Raises ValueError for p-values outside [0, 1].
    """
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p-values have shape {p.shape}; expected a 1-d array")
    ok = ~np.isnan(p)
    if np.any((p[ok] < 0.0) | (p[ok] > 1.0)):
        raise ValueError(f"p-values {p[ok][(p[ok] < 0) | (p[ok] > 1)][:5].tolist()} outside [0, 1]")
    out = np.full(p.shape, math.nan)
    idx = np.flatnonzero(ok)
    m = idx.size
    if m == 0:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    scaled = (m - np.arange(m)) * p[order]
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out


def reference_holm(pvalues: ArrayLike) -> NDArray[np.float64]:
    """Holm over the k - 1 comparisons with a reference named in advance (alias of `holm`)."""
    return holm(pvalues)


def pairwise_holm(
    arms: Sequence[Hashable],
    reference: Hashable,
    test: Callable[[Hashable, Hashable], float],
) -> dict[Hashable, tuple[float, float]]:
    """Selection-aware adjustment for a reference picked on the data (``auto``).

    Runs `test(a, b)` (a two-sided p-value, NaN if not computed) for all k (k - 1) / 2 pairs of
    `arms`, adjusts the whole family by Holm and returns, for each other arm j, (raw p of
    reference vs j, Holm-adjusted p from the all-pairs family). See the module docstring for
    why this keeps the family-wise error rate whatever rule picked `reference`.
    """
    arms = list(arms)
    if reference not in arms:
        raise ValueError(f"reference {reference!r} is not one of the arms {arms}")
    if len(set(arms)) != len(arms):
        raise ValueError(f"arms {arms} repeat a name")
    pairs = list(itertools.combinations(arms, 2))
    raw = np.array([test(a, b) for a, b in pairs], dtype=np.float64)
    adjusted = holm(raw)
    out: dict[Hashable, tuple[float, float]] = {}
    for (a, b), p, q in zip(pairs, raw, adjusted, strict=True):
        if reference in (a, b):
            other = b if a == reference else a
            out[other] = (float(p), float(q))
    return out
