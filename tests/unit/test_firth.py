"""Firth logistic regression against R's brglm2 (tests/data/firth_reference_brglm2.R)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize
from scipy.special import expit, log_expit, logit
from scipy.stats import chi2

from mskdx.evaluate.stats.calibration import calibration_fit
from mskdx.evaluate.stats.firth import firth_logistic, firth_profile_ci

DATA = Path(__file__).resolve().parents[1] / "data"
INPUT = pd.read_csv(DATA / "firth_input.csv")
#: brglm2 0.9 on R 4.2.2: glm(..., method = "brglmFit", type = "AS_mean"), epsilon 1e-12
REFERENCE = pd.read_csv(DATA / "firth_reference_brglm2.csv").set_index(["dataset", "model"])
SEPARATED = {"complete40", "quasi37", "complete31_extreme"}


def _data(name: str):
    part = INPUT[INPUT.dataset == name]
    return part["y"].to_numpy(), part["prob"].to_numpy()


def _designs(y, p):
    lp = logit(p)
    return {
        "slope": (np.column_stack([np.ones(len(y)), lp]), None, 1),
        "intercept": (np.ones((len(y), 1)), lp, 0),
    }


@pytest.mark.parametrize("name", sorted(INPUT.dataset.unique()))
@pytest.mark.parametrize("model", ["slope", "intercept"])
def test_firth_matches_brglm2(name, model):
    y, p = _data(name)
    X, offset, j = _designs(y, p)[model]
    fit = firth_logistic(y, X, offset=offset)
    ref = REFERENCE.loc[(name, model)]
    assert fit.converged
    assert fit.coef[j] == pytest.approx(ref.estimate, abs=1e-8)
    assert fit.se[j] == pytest.approx(ref.se, abs=1e-8)
    assert tuple(fit.wald_ci()[j]) == pytest.approx((ref.wald_low, ref.wald_high), abs=1e-7)


@pytest.mark.parametrize("name", sorted(SEPARATED))
def test_ml_slope_under_separation_is_meaningless_and_not_printed(name):
    y, p = _data(name)
    ref = REFERENCE.loc[(name, "slope")]
    # R's glm returns a large finite number (53, 192, 9.7); ours says why there is none
    assert ref.ml_estimate > 5 * ref.estimate
    ml = calibration_fit(y, p)
    assert math.isnan(ml.slope) and ml.note.startswith("slope not estimable")
    firth = calibration_fit(y, p, method="firth")
    assert firth.slope == pytest.approx(ref.estimate, abs=1e-8)
    assert firth.slope_low < firth.slope < firth.slope_high
    assert firth.intercept == pytest.approx(REFERENCE.loc[(name, "intercept")].estimate, abs=1e-8)


def _penalised_loglik(y, X, offset, beta):
    """l(b) + 1/2 log det(X'WX), written out from Firth (1993), independently of the module."""
    eta = X @ beta + (0 if offset is None else offset)
    w = expit(eta) * expit(-eta)
    info = X.T @ (w[:, None] * X)
    return float(np.sum(y * log_expit(eta) + (1 - y) * log_expit(-eta))) + 0.5 * math.log(
        np.linalg.det(info)
    )


@pytest.mark.parametrize("name", ["overlap60", "small8", "complete40", "quasi37"])
@pytest.mark.parametrize("model", ["slope", "intercept"])
def test_profile_ci_bounds_sit_on_the_chi_square_cut_off(name, model):
    y, p = _data(name)
    X, offset, j = _designs(y, p)[model]
    fit = firth_logistic(y, X, offset=offset)
    low, high = firth_profile_ci(y, X, fit, j, offset=offset)
    assert low < fit.coef[j] < high
    top = _penalised_loglik(y, X, offset, fit.coef)
    assert top == pytest.approx(fit.penalised_loglik, abs=1e-9)
    for bound in (low, high):
        if X.shape[1] == 1:
            best = _penalised_loglik(y, X, offset, np.array([bound]))
        else:  # maximise over the intercept with the slope held at the bound (Brent)
            res = optimize.minimize_scalar(
                lambda a, b=bound: -_penalised_loglik(y, X, offset, np.array([a, b])),
                bracket=(fit.coef[0] - 1, fit.coef[0] + 1),
                tol=1e-12,
            )
            best = -res.fun
        assert 2 * (top - best) == pytest.approx(chi2.ppf(0.95, 1), abs=1e-6)


def test_firth_refuses_collinear_or_bad_designs():
    with pytest.raises(ValueError, match="collinear"):
        firth_logistic([0, 1, 0, 1], np.column_stack([np.ones(4), np.full(4, 2.0)]))
    with pytest.raises(ValueError, match="only 0 and 1"):
        firth_logistic([0, 2], np.ones((2, 1)))


def test_saturated_fit_at_extreme_logits_converges_to_its_closed_form():
    """Two points, two coefficients: every hat value is 1, so Firth's fitted probabilities are
    (y + 1/2) / 2 = 0.25 and 0.75 in closed form. At logit(1e-6) = -13.8 the score cannot get
    below ~1e-7 in double precision; the fit must still say it converged (the case the
    property tests found: y = [0, 1], p = [0, 0.1])."""
    x = logit(np.array([1e-6, 0.1]))
    X = np.column_stack([np.ones(2), x])
    fit = firth_logistic(np.array([0, 1]), X)
    assert fit.converged
    np.testing.assert_allclose(expit(X @ fit.coef), [0.25, 0.75], atol=1e-9)
