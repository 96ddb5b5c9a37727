"""Binary classification metrics with counts and confidence intervals.

Proportions (accuracy, sensitivity, specificity, per-class precision and recall) carry their
count k/n and a Wilson score interval (Wilson 1927). The AUC carries a DeLong (1988) interval.
F1 is a ratio of counts but not a binomial proportion, so it has no Wilson interval; it is
reported without a CI.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import precision_recall_fscore_support

from mskdx.evaluate.stats.delong import DelongResult, delong_auc
from mskdx.evaluate.stats.proportions import Estimate, proportion

__all__ = ["BinaryMetrics", "binary_metrics"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BinaryMetrics:
    """Confusion counts and derived metrics; positive class = label 1.

    sensitivity = recall_positive = TP / (TP + FN); specificity = recall_negative = TN / (TN + FP);
    precision_positive (PPV) = TP / (TP + FP); precision_negative (NPV) = TN / (TN + FN).
    `auc` is None when no scores were given or a class is absent (`auc_note` then says why).
    F1 is NaN where precision or recall is 0/0 (no predicted or no actual positives).
    """

    tp: int
    fn: int
    tn: int
    fp: int
    accuracy: Estimate
    sensitivity: Estimate
    specificity: Estimate
    precision_positive: Estimate
    recall_positive: Estimate
    f1_positive: float
    precision_negative: Estimate
    recall_negative: Estimate
    f1_negative: float
    auc: DelongResult | None
    auc_note: str = ""

    @property
    def n(self) -> int:
        """Number of cases."""
        return self.tp + self.fn + self.tn + self.fp


def _binary(name: str, values: ArrayLike) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} has shape {arr.shape}; expected a 1-d array")
    if arr.dtype != np.bool_ and arr.size and not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name} holds values other than 0/1; expected binary labels")
    return arr.astype(np.int64)


def binary_metrics(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    y_score: ArrayLike | None = None,
    level: float = 0.95,
) -> BinaryMetrics:
    """Compute confusion counts, Wilson-CI proportions, F1 and (with scores) the DeLong AUC.

    Args:
        y_true: 0/1 reference labels. y_pred: 0/1 calls. y_score: optional scores for the AUC
            (higher = more likely positive).
    """
    t = _binary("y_true", y_true)
    p = _binary("y_pred", y_pred)
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} cases but y_pred {p.size}; expected the same")
    # counted directly: sklearn's confusion_matrix refuses an empty subgroup
    tp, fn = int(np.sum((t == 1) & (p == 1))), int(np.sum((t == 1) & (p == 0)))
    tn, fp = int(np.sum((t == 0) & (p == 0))), int(np.sum((t == 0) & (p == 1)))
    if t.size:
        _, _, f1, _ = precision_recall_fscore_support(t, p, labels=[0, 1], zero_division=np.nan)
        f1_neg, f1_pos = float(f1[0]), float(f1[1])
    else:
        f1_neg = f1_pos = math.nan
    auc = None
    auc_note = ""
    if y_score is not None:
        score = np.asarray(y_score, dtype=np.float64)
        if score.shape != t.shape:
            raise ValueError(f"y_score has shape {score.shape}; expected {t.shape} like y_true")
        if tp + fn and tn + fp:
            auc = delong_auc(t, score, level=level)
        else:
            auc_note = (
                f"not estimable: {tp + fn} positives and {tn + fp} negatives; the AUC needs both"
            )
            log.warning("AUC %s", auc_note)
    return BinaryMetrics(
        tp=tp,
        fn=fn,
        tn=tn,
        fp=fp,
        accuracy=proportion(tp + tn, t.size, level),
        sensitivity=proportion(tp, tp + fn, level),
        specificity=proportion(tn, tn + fp, level),
        precision_positive=proportion(tp, tp + fp, level),
        recall_positive=proportion(tp, tp + fn, level),
        f1_positive=f1_pos,
        precision_negative=proportion(tn, tn + fn, level),
        recall_negative=proportion(tn, tn + fp, level),
        f1_negative=f1_neg,
        auc=auc,
        auc_note=auc_note,
    )
