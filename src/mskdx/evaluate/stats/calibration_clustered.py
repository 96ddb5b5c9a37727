"""Calibration with images clustered by patient: cluster-robust intercept, slope and Brier CIs.

The estimates are those of `calibration.calibration_fit` and `calibration.brier_score`; only
their uncertainty changes, because the images of one patient are not independent (issue 37).

- Calibration intercept and slope (logit P(y=1) = a + b logit(p), the intercept with logit(p) as
  an offset): Wald 95% CIs from the cluster-robust sandwich covariance with patients as clusters
  (Liang & Zeger 1986, Biometrika 73:13; Zeileis, Koell & Graham 2020, J Stat Softw 95(1),
  "Various versatile variances"):

      V = (X'WX)^-1 (sum_g U_g U_g') (X'WX)^-1 * G/(G-1) * (n-1)/(n-k),

  U_g the patient's summed score x (y - p), G patients, n images, k coefficients. The factor is
  statsmodels' ``cov_type="cluster"`` correction and R's ``sandwich::vcovCL(fit, cluster,
  type = "HC1", cadjust = TRUE)``. Note that vcovCL's own default for a glm object is
  ``type = "HC0"`` (the factor G/(G-1) only, Stata's for logit), smaller by sqrt((n-1)/(n-k)):
  1 for the intercept (k = 1), about 1.002 for the slope at n = 300. With one image per patient
  the factor is n/(n-k) and V is exactly the unclustered robust HC1 covariance (White 1980 with
  the n/(n-k) correction; R's ``vcovHC(type = "HC1")``; statsmodels' GLM ignores the correction
  and gives HC0 under ``cov_type="HC1"``), not the model-based inverse information that
  `calibration_fit`'s Wald CIs use: the "independent" counterpart of a sandwich is the
  sandwich, and the two differ even without clustering when the recalibration model is
  misspecified.
- Method "firth": Firth's estimate (`firth.firth_logistic`) with the same sandwich evaluated at
  it (score and information of the likelihood, as ``vcovCL`` on a brglm2 fit). Under complete or
  quasi-complete separation that sandwich is no guide (on the stored separated example it is a
  third of the model-based SE): the slope's clustered CI is then not estimable, with the reason,
  and only `calibration_fit`'s profile penalised-likelihood CI (independent images) exists.
- Brier score: the ratio estimator sum_g E_g / sum_g n_g (E_g the patient's summed squared
  errors) with the between-patient linearisation variance
  G/(G-1) * sum_g (E_g - B n_g)^2 / n^2 (Cochran 1977, ch. 6; R's ``survey::svymean`` under
  ``svydesign(ids = ~patient)``), and a normal-approximation CI. With one image per patient it
  is exactly `brier_score`'s CI.

Checked against R (sandwich 3.0.2, survey 4.1.1, brglm2 0.9) in
tests/data/calibration_clustered_reference.R.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps

from mskdx.evaluate.stats.calibration import _check, prepare_fit

__all__ = [
    "CORRECTION",
    "ClusteredBrierScore",
    "ClusteredCalibrationFit",
    "brier_score_clustered",
    "calibration_fit_clustered",
    "cluster_sandwich",
]

#: the small-sample factor of the sandwich, as printed beside the CIs
CORRECTION = "G/(G-1) * (n-1)/(n-k) (vcovCL type HC1, cadjust)"


def _groups(groups: ArrayLike, n: int) -> tuple[NDArray[np.int64], int]:
    """Integer codes 0..G-1 of the patients, and G; refused if missing or of another length."""
    values = pd.Series(np.asarray(groups, dtype=object).ravel())
    if len(values) != n:
        raise ValueError(f"groups: {len(values)} patient ids for {n} images; expected one each")
    missing = np.flatnonzero(values.isna().to_numpy())
    if len(missing):
        raise ValueError(f"groups: missing patient id at rows {missing[:10].tolist()}")
    codes, uniques = pd.factorize(values, sort=True)
    return codes.astype(np.int64), len(uniques)


def cluster_sandwich(
    y: ArrayLike,
    X: ArrayLike,
    coef: ArrayLike,
    groups: ArrayLike,
    offset: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Return the cluster-robust covariance of a logistic fit's coefficients at `coef`.

    Bread: the inverse Fisher information X'WX at `coef`; meat: the outer products of the
    clusters' summed scores x (y - p); factor G/(G-1) * (n-1)/(n-k) (`CORRECTION`).
    """
    y = np.asarray(y, dtype=float)
    X = np.asarray(X, dtype=float).reshape(len(y), -1)
    coef = np.asarray(coef, dtype=float)
    off = np.zeros(len(y)) if offset is None else np.asarray(offset, dtype=float)
    codes, n_groups = _groups(groups, len(y))
    if n_groups < 2:
        raise ValueError(f"groups: {n_groups} cluster; the sandwich needs at least 2")
    p = 1.0 / (1.0 + np.exp(-(X @ coef + off)))
    bread = np.linalg.inv(X.T @ (X * (p * (1 - p))[:, None]))
    scores = np.zeros((n_groups, X.shape[1]))
    np.add.at(scores, codes, X * (y - p)[:, None])
    n, k = X.shape
    factor = n_groups / (n_groups - 1) * (n - 1) / (n - k)
    return factor * bread @ (scores.T @ scores) @ bread


@dataclass(frozen=True)
class ClusteredCalibrationFit:
    """Calibration intercept and slope with cluster-robust (patient) SEs and Wald 95% CIs.

    A value that does not exist is NaN and `note` says why, as in `CalibrationFit`; `clusters`
    is the number of patients, `correction` the sandwich's small-sample factor.
    """

    intercept: float
    intercept_se: float
    intercept_low: float
    intercept_high: float
    slope: float
    slope_se: float
    slope_low: float
    slope_high: float
    n: int
    events: int
    clusters: int
    note: str = ""
    method: str = "ml"
    separation: str = "none"
    correction: str = CORRECTION


def _wald(estimate: float, se: float, level: float) -> tuple[float, float, float, float]:
    z = float(sps.norm.ppf(0.5 + level / 2))
    return estimate, se, estimate - z * se, estimate + z * se


def _ml(y, X, offset, codes, level) -> tuple[float, float, float, float] | str:
    """ML fit of the last coefficient with statsmodels' cluster-robust covariance."""
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import PerfectSeparationError, PerfectSeparationWarning

    with np.errstate(over="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", PerfectSeparationWarning)
        try:
            fit = sm.GLM(y, X, family=sm.families.Binomial(), offset=offset).fit(
                cov_type="cluster", cov_kwds={"groups": codes}
            )
        except (PerfectSeparationError, np.linalg.LinAlgError) as exc:
            return f"the ML fit failed: {exc}"
    estimate, se = float(fit.params[-1]), float(fit.bse[-1])
    if not (fit.converged and np.isfinite([estimate, se]).all()):
        return "the ML fit did not converge"
    return _wald(estimate, se, level)


def _firth(y, X, offset, codes, level) -> tuple[float, float, float, float] | str:
    """Firth's estimate of the last coefficient with the sandwich evaluated at it."""
    from mskdx.evaluate.stats.firth import firth_logistic

    fit = firth_logistic(y, X, offset=offset)
    if not fit.converged:
        return "the Firth fit did not converge"
    cov = cluster_sandwich(y, X, fit.coef, codes, offset)
    return _wald(float(fit.coef[-1]), math.sqrt(cov[-1, -1]), level)


def calibration_fit_clustered(
    y_true: ArrayLike,
    prob: ArrayLike,
    groups: ArrayLike,
    level: float = 0.95,
    method: str = "ml",
) -> ClusteredCalibrationFit:
    """Fit the logistic recalibration model with patient-clustered (sandwich) Wald CIs.

    `groups` holds each image's patient. Separation, one class and constant scores are decided
    as in `calibration_fit`; a value that does not exist is NaN with the reason in `note`.
    """
    inputs = prepare_fit(y_true, prob, method)
    y, n, events = inputs.y, inputs.n, inputs.events
    codes, n_groups = _groups(groups, n)
    nan4 = (math.nan,) * 4
    base = {"n": n, "events": events, "clusters": n_groups, "method": method}
    if inputs.one_class:
        note = inputs.one_class
        return ClusteredCalibrationFit(*nan4, *nan4, **base, note=note, separation="one class")
    if n_groups < 2:
        note = "not estimable: one patient, no between-patient variance"
        return ClusteredCalibrationFit(*nan4, *nan4, **base, note=note)
    lp, notes, separation = inputs.lp, inputs.notes, inputs.separation
    fitter = _ml if method == "ml" else _firth
    intercept = fitter(y, np.ones((n, 1)), lp, codes, level)
    X = np.column_stack([np.ones(n), lp])
    if separation.kind == "constant" or (method == "ml" and not separation.estimable):
        slope = separation.reason()
    else:
        slope = fitter(y, X, None, codes, level)
        if not separation.estimable and not isinstance(slope, str):
            notes.insert(
                0,
                f"slope clustered CI not estimable: under {separation.kind} separation the "
                "sandwich at Firth's estimate is no guide; the profile CI of calibration_fit "
                "assumes independent images",
            )
            slope = (slope[0], math.nan, math.nan, math.nan)
    if isinstance(slope, str):
        notes.insert(0, f"slope not estimable: {slope}")
        slope = nan4
    if isinstance(intercept, str):
        notes.insert(0, f"intercept not estimable: {intercept}")
        intercept = nan4
    return ClusteredCalibrationFit(
        *(float(v) for v in intercept),
        *(float(v) for v in slope),
        **base,
        note="; ".join(notes),
        separation=separation.kind,
    )


@dataclass(frozen=True)
class ClusteredBrierScore:
    """Brier score with its patient-clustered SE and 95% CI (ratio estimator, linearisation).

    The CI is NaN, with `note` saying why, where there is no between-patient variance to
    estimate (one patient, or every patient's residual sum exactly its share).
    """

    value: float
    se: float
    low: float
    high: float
    n: int
    clusters: int
    #: the Brier score of predicting the prevalence for everyone (a model must do better)
    reference: float
    note: str = ""


def brier_score_clustered(
    y_true: ArrayLike, prob: ArrayLike, groups: ArrayLike, level: float = 0.95
) -> ClusteredBrierScore:
    """Return the Brier score with a CI from the between-patient variance of squared errors."""
    y, p = _check(y_true, prob)
    codes, n_groups = _groups(groups, len(y))
    terms = (p - y) ** 2
    n = len(terms)
    value = float(terms.mean())
    prevalence = float(y.mean())
    sums = np.bincount(codes, weights=terms, minlength=n_groups)
    sizes = np.bincount(codes, minlength=n_groups)
    se = low = high = math.nan
    note = ""
    if n_groups < 2:
        note = "CI not estimable: one patient, no between-patient variance"
    else:
        residual = sums - value * sizes
        if np.abs(residual).max() <= 1e-12 * sizes.max():
            # a zero SE is an artefact (e.g. all probabilities exactly right), not certainty
            note = "CI not estimable: every patient's squared errors average the same, SE 0"
        else:
            se = math.sqrt(n_groups / (n_groups - 1) * float(residual @ residual)) / n
            half = float(sps.norm.ppf(0.5 + level / 2)) * se
            low, high = max(0.0, value - half), min(1.0, value + half)
    return ClusteredBrierScore(
        value, se, low, high, n, n_groups, prevalence * (1 - prevalence), note
    )
