"""Decision curve analysis: net benefit of acting on a model's calls across threshold probabilities.

Vickers AJ, Elkin EB (2006) "Decision curve analysis: a novel method for evaluating prediction
models", Med Decis Making 26:565-574. At a threshold probability pt (the risk at which a clinician
would act), everyone with predicted probability >= pt is treated and

    net benefit = TP / n - FP / n * pt / (1 - pt)

"Treat all" has net benefit prevalence - (1 - prevalence) * pt / (1 - pt); "treat none" has 0.
A model is clinically useful at pt where its curve lies above both. The cut-off ">= pt" is the
one of the `dcurves` package (Sjoberg), against which the tests check these numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from mskdx.evaluate.stats.calibration import _check

__all__ = ["net_benefit", "threshold_grid_dca"]


def threshold_grid_dca(low: float, high: float, step: float) -> np.ndarray:
    """Threshold probabilities low, low + step, ..., high (inclusive, rounded to the step)."""
    if not 0.0 <= low < high < 1.0 or step <= 0:
        raise ValueError(
            f"decision curve thresholds {low}..{high} by {step}: expected 0 <= low < high < 1 "
            "and a positive step"
        )
    count = int(round((high - low) / step)) + 1
    decimals = max(0, -int(np.floor(np.log10(step)))) + 2
    return np.round(low + step * np.arange(count), decimals)


def net_benefit(y_true: ArrayLike, prob: ArrayLike, thresholds: ArrayLike) -> pd.DataFrame:
    """Net benefit of the model, of treating all and of treating none at each threshold.

    Columns: threshold, tp, fp, n, net_benefit, treat_all, treat_none, useful (the model beats
    both strategies).
    """
    y, p = _check(y_true, prob)
    pt = np.asarray(thresholds, dtype=float)
    if pt.ndim != 1 or (pt < 0).any() or (pt >= 1).any():
        raise ValueError("thresholds: expected a 1-D array of probabilities in [0, 1)")
    n = len(y)
    called = p[None, :] >= pt[:, None]
    tp = (called & (y[None, :] == 1)).sum(axis=1)
    fp = (called & (y[None, :] == 0)).sum(axis=1)
    odds = pt / (1 - pt)
    model = tp / n - fp / n * odds
    prevalence = y.mean()
    treat_all = prevalence - (1 - prevalence) * odds
    return pd.DataFrame(
        {
            "threshold": pt,
            "tp": tp,
            "fp": fp,
            "n": n,
            "net_benefit": model,
            "treat_all": treat_all,
            "treat_none": 0.0,
            "useful": (model > treat_all + 1e-12) & (model > 1e-12),
        }
    )
