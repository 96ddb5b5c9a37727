"""AUC standard error from a summary (AUC and class sizes) when the scores are not available.

Hanley JA, McNeil BJ (1982). The meaning and use of the area under a receiver operating
characteristic (ROC) curve. Radiology 143:29-36, eq. (2) with Q1 = A / (2 - A),
Q2 = 2 A^2 / (1 + A) (exponential-score approximation). Used only to check printed AUC CIs in
papers; with scores, use the DeLong variance (`mskdx.evaluate.stats.delong.delong_auc`).
"""

from __future__ import annotations

import math

__all__ = ["hanley_mcneil_se"]


def hanley_mcneil_se(auc: float, n_positive: int, n_negative: int) -> float:
    """Return the Hanley & McNeil (1982) standard error of an AUC."""
    if not 0.0 <= auc <= 1.0:
        raise ValueError(f"auc={auc!r}: expected a value in [0, 1]")
    if n_positive < 1 or n_negative < 1:
        raise ValueError(
            f"n_positive={n_positive}, n_negative={n_negative}: expected at least one of each"
        )
    q1 = auc / (2.0 - auc)
    q2 = 2.0 * auc * auc / (1.0 + auc)
    var = (
        auc * (1.0 - auc)
        + (n_positive - 1) * (q1 - auc * auc)
        + (n_negative - 1) * (q2 - auc * auc)
    ) / (n_positive * n_negative)
    return math.sqrt(max(var, 0.0))
