"""Calibration of predicted probabilities: Brier score, logistic recalibration, reliability bins.

- Brier score (Brier 1950): the mean squared difference between probability and outcome, with a
  95% CI from the normal approximation of a mean of independent terms (the images or patients).
- Calibration intercept and slope (Cox 1958; Van Calster et al. 2019, "Calibration: the Achilles
  heel of predictive analytics", BMC Med 17:230): the slope is b in logit P(y=1) = a + b logit(p);
  the intercept ("calibration-in-the-large") is a in logit P(y=1) = a + 1 * logit(p), i.e. with
  logit(p) as an offset. Both are maximum-likelihood fits (statsmodels GLM, binomial family) with
  Wald 95% CIs, or with `method="firth"` Firth's bias-reduced fits (`firth`) with profile
  penalised-likelihood CIs. A perfectly calibrated model has intercept 0 and slope 1; a slope
  below 1 means predictions that are too extreme (overfitting). Where the classes are separated
  on logit(p) (`separation`) the ML slope is infinite: it is reported as NaN with the reason.
- Reliability diagram: observed event rate against mean predicted probability per bin, with a
  Wilson CI per bin, and a LOWESS-smoothed curve of the outcomes on the probabilities
  (statsmodels' lowess), as in Austin & Steyerberg 2014 (Stat Med 33:517).

Labels: 1 = positive, 0 = negative; probabilities are P(positive).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps

from mskdx.evaluate.stats.proportions import wilson_ci

__all__ = [
    "BrierScore",
    "CalibrationFit",
    "brier_score",
    "calibration_fit",
    "reliability_bins",
    "smoothed_calibration",
]

#: probabilities are clipped to [EPS, 1 - EPS] before the logit, so that a model that outputs
#: exactly 0 or 1 (saturated softmax) still has a finite linear predictor
EPS = 1e-6


def _check(y_true: ArrayLike, prob: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    y = np.asarray(y_true)
    p = np.asarray(prob, dtype=float)
    if y.ndim != 1 or y.shape != p.shape or len(y) == 0:
        raise ValueError(
            f"outcomes {y.shape} and probabilities {p.shape}: expected two 1-D arrays of one "
            "non-zero length"
        )
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"outcomes {sorted(set(y.tolist()))}: expected only 0 and 1")
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise ValueError("probabilities: expected finite values in [0, 1]")
    return y.astype(np.int64), p


def logit(prob: ArrayLike) -> NDArray[np.float64]:
    p = np.clip(np.asarray(prob, dtype=float), EPS, 1 - EPS)
    return np.log(p / (1 - p))


@dataclass(frozen=True)
class BrierScore:
    """Brier score with its 95% CI (normal approximation of a mean), and the reference value.

    The CI is NaN, with `note` saying why, where the normal approximation gives no interval: one
    case, or every squared error the same (no spread to estimate a standard error from).
    """

    value: float
    low: float
    high: float
    n: int
    #: the Brier score of predicting the prevalence for everyone (a model must do better)
    reference: float
    note: str = ""


def brier_score(y_true: ArrayLike, prob: ArrayLike, level: float = 0.95) -> BrierScore:
    """Return the Brier score mean((p - y)^2) with a CI from its terms' standard error."""
    y, p = _check(y_true, prob)
    terms = (p - y) ** 2
    value = float(terms.mean())
    n = len(terms)
    low = high = math.nan
    note = ""
    if n == 1:
        note = "CI not estimable: one case, no standard error"
    elif terms.min() == terms.max():
        # a zero standard error is an artefact (e.g. every probability exactly right), not
        # certainty: the normal approximation of the mean has nothing to say
        note = f"CI not estimable: every squared error is {terms[0]:.4g}, so the SE is 0"
    else:
        half = sps.norm.ppf(0.5 + level / 2) * terms.std(ddof=1) / math.sqrt(n)
        low, high = max(0.0, value - half), min(1.0, value + half)
    prevalence = y.mean()
    return BrierScore(value, low, high, n, float(prevalence * (1 - prevalence)), note)


@dataclass(frozen=True)
class CalibrationFit:
    """Calibration intercept (with slope fixed at 1) and slope, each with a 95% CI.

    A value that does not exist is NaN, and `note` says why ("not estimable: ..."); `note` also
    names anything else a reader must know (Firth fit, clipped probabilities). `method` is "ml"
    (Wald CIs) or "firth" (profile penalised-likelihood CIs).
    """

    intercept: float
    intercept_low: float
    intercept_high: float
    slope: float
    slope_low: float
    slope_high: float
    n: int
    events: int
    note: str = ""
    method: str = "ml"
    #: how the classes sit on logit(p): none, complete, quasi-complete, constant, one class
    separation: str = "none"


METHODS = ("ml", "firth")


def _ml_fits(y, lp, level, fit_slope):
    """ML intercept (offset) fit and slope fit: each (value, low, high) or a reason; slope None
    when not asked for."""
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import PerfectSeparationError, PerfectSeparationWarning

    family = sm.families.Binomial()
    with np.errstate(over="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", PerfectSeparationWarning)
        large = sm.GLM(y, np.ones((len(y), 1)), family=family, offset=lp).fit()
        a_low, a_high = large.conf_int(1 - level)[0]
        intercept = (float(large.params[0]), a_low, a_high)
        if not (large.converged and np.isfinite(intercept).all()):
            # cannot happen with both classes present (the offset model's ML estimate is
            # finite), kept so that a number from a failed fit is never printed
            intercept = "the ML intercept fit did not converge"
        if not fit_slope:
            return intercept, None
        try:
            slope_fit = sm.GLM(y, sm.add_constant(lp, has_constant="add"), family=family).fit()
        except (PerfectSeparationError, np.linalg.LinAlgError) as exc:
            return intercept, f"the ML slope fit failed: {exc}"
    b_low, b_high = slope_fit.conf_int(1 - level)[1]
    if not (slope_fit.converged and np.isfinite([b_low, b_high]).all()):
        # a guard beyond the separation check: IRLS that stops at its iteration limit leaves a
        # large number that is no estimate
        return intercept, "the ML slope fit did not converge"
    return intercept, (float(slope_fit.params[1]), b_low, b_high)


def _firth_fits(y, lp, level, slope_estimable):
    """Firth intercept (offset) and slope fits with profile penalised-likelihood CIs."""
    from mskdx.evaluate.stats.firth import firth_logistic, firth_profile_ci

    ones = np.ones((len(y), 1))
    large = firth_logistic(y, ones, offset=lp)
    a_low, a_high = firth_profile_ci(y, ones, large, 0, offset=lp, level=level)
    intercept = (float(large.coef[0]), a_low, a_high)
    if not slope_estimable:
        return intercept, None
    X = np.column_stack([np.ones(len(y)), lp])
    fit = firth_logistic(y, X)
    if not fit.converged:
        return intercept, "the Firth slope fit did not converge"
    b_low, b_high = firth_profile_ci(y, X, fit, 1, level=level)
    return intercept, (float(fit.coef[1]), b_low, b_high)


@dataclass(frozen=True)
class FitInputs:
    """What every recalibration fit starts from (`prepare_fit`): the checked labels and
    probabilities, and unless they hold one class only, logit(p), the notes so far (clipping)
    and how the classes sit on logit(p)."""

    y: NDArray[np.int64]
    p: NDArray[np.float64]
    n: int
    events: int
    one_class: str = ""  # the "not estimable" note where the labels hold one class only
    lp: NDArray[np.float64] | None = None
    notes: list[str] = field(default_factory=list)
    separation: object = None  # `separation.Separation`


def prepare_fit(y_true: ArrayLike, prob: ArrayLike, method: str) -> FitInputs:
    """The checks and inputs that `calibration_fit` and the clustered fit share: the method,
    the classes, logit(p) with its clipping note, and the separation decided from the data."""
    from mskdx.evaluate.stats.separation import detect_separation

    if method not in METHODS:
        raise ValueError(f"method={method!r}: expected one of {METHODS}")
    y, p = _check(y_true, prob)
    n, events = len(y), int(y.sum())
    if events in (0, n):
        return FitInputs(y, p, n, events, f"not estimable: one class only ({events} events of {n})")
    lp = logit(p)
    notes = []
    clipped = int(((p < EPS) | (p > 1 - EPS)).sum())
    if clipped:
        notes.append(
            f"{clipped} probabilities outside [{EPS:g}, 1 - {EPS:g}] clipped before the logit"
        )
    return FitInputs(y, p, n, events, "", lp, notes, detect_separation(y, lp))


def calibration_fit(
    y_true: ArrayLike, prob: ArrayLike, level: float = 0.95, method: str = "ml"
) -> CalibrationFit:
    """Fit the logistic recalibration model; NaN with a "not estimable" note where it has no value.

    Separation is decided from the data (`detect_separation` on logit(p)), not from a fitter's
    warning: under complete or quasi-complete separation the ML slope is infinite and is
    reported as NaN with the reason; `method="firth"` reports Firth's finite bias-reduced slope
    instead. Constant probabilities leave the slope unidentified under either method.
    """
    inputs = prepare_fit(y_true, prob, method)
    n, events, nan = inputs.n, inputs.events, math.nan
    if inputs.one_class:
        note = inputs.one_class
        return CalibrationFit(nan, nan, nan, nan, nan, nan, n, events, note, method, "one class")
    y, lp, notes, separation = inputs.y, inputs.lp, inputs.notes, inputs.separation
    slope_estimable = separation.kind != "constant"
    if method == "ml":
        intercept, slope = _ml_fits(y, lp, level, separation.estimable)
        if slope is None:
            slope = separation.reason()
            if slope_estimable:
                slope += "; method firth gives a finite slope"
    else:
        intercept, slope = _firth_fits(y, lp, level, slope_estimable)
        if slope is None:
            slope = separation.reason()
        elif not separation.estimable:
            notes.insert(0, f"Firth slope under {separation.kind} separation")
    if isinstance(slope, str):
        notes.insert(0, f"slope not estimable: {slope}")
        slope = (nan, nan, nan)
    elif not np.isfinite(slope).all():
        notes.insert(0, "slope CI not estimable: the profile does not reach the cut-off")
    if isinstance(intercept, str):
        notes.insert(0, f"intercept not estimable: {intercept}")
        intercept = (nan, nan, nan)
    return CalibrationFit(
        *(float(v) for v in intercept),
        *(float(v) for v in slope),
        n=n,
        events=events,
        note="; ".join(notes),
        method=method,
        separation=separation.kind,
    )


def reliability_bins(
    y_true: ArrayLike, prob: ArrayLike, n_bins: int = 10, strategy: str = "uniform"
) -> pd.DataFrame:
    """Observed event rate vs mean predicted probability per bin, empty bins dropped.

    `strategy` is "uniform" (equal-width bins on [0, 1]) or "quantile" (equal counts), with the
    bin edges of `sklearn.calibration.calibration_curve`. Columns: bin, lower, upper, n, events,
    predicted (mean probability), observed (event rate), observed_low/high (Wilson 95%).
    """
    y, p = _check(y_true, prob)
    if n_bins < 1:
        raise ValueError(f"n_bins={n_bins}: expected at least 1")
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    elif strategy == "quantile":
        edges = np.percentile(p, np.linspace(0, 100, n_bins + 1))
    else:
        raise ValueError(f"strategy={strategy!r}: expected 'uniform' or 'quantile'")
    # the binning of sklearn's calibration_curve: a probability on an inner edge joins the lower bin
    index = np.searchsorted(edges[1:-1], p)
    rows = []
    for b in range(len(edges) - 1):
        inside = index == b
        n = int(inside.sum())
        if n == 0:
            continue
        events = int(y[inside].sum())
        low, high = wilson_ci(events, n)
        rows.append(
            {
                "bin": b,
                "lower": float(edges[b]),
                "upper": float(edges[b + 1]),
                "n": n,
                "events": events,
                "predicted": float(p[inside].mean()),
                "observed": events / n,
                "observed_low": low,
                "observed_high": high,
            }
        )
    return pd.DataFrame(rows)


def smoothed_calibration(
    y_true: ArrayLike, prob: ArrayLike, frac: float = 2 / 3
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """LOWESS of the outcomes on the probabilities: (sorted probabilities, smoothed rate)."""
    from statsmodels.nonparametric.smoothers_lowess import lowess

    y, p = _check(y_true, prob)
    fitted = lowess(y.astype(float), p, frac=frac, it=0, return_sorted=True)
    return fitted[:, 0], np.clip(fitted[:, 1], 0.0, 1.0)
