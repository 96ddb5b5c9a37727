"""Firth's bias-reduced logistic regression, finite where maximum likelihood diverges.

Firth D (1993) "Bias reduction of maximum likelihood estimates", Biometrika 80:27-38: maximise
the penalised log-likelihood l*(b) = l(b) + 1/2 log det I(b), I = X' W X the Fisher information
(the Jeffreys prior); for the logit link its score is

    U*(b) = X' (y - pi + h (1/2 - pi)),   h = diag(W^1/2 X I^-1 X' W^1/2)  (the hat values),

solved by Fisher scoring with step halving on l*, as R's logistf does; the estimate is the
"AS_mean" fit of R's brglm2 (Kosmidis & Firth 2021, Biometrika 108:71-82), against which the
tests check it. Unlike the ML estimate it is finite under complete and quasi-complete separation
(Heinze G, Schemper M 2002, Stat Med 21:2409-2419).

Intervals:
- Wald: b +- z se, se from I(b)^-1 at the estimate; this is brglm2's `confint`.
- profile penalised likelihood (Heinze & Schemper 2002; logistf's default): the values of one
  coefficient at which 2 (l*(b_hat) - max over the others of l*) reaches the chi-square(1)
  quantile. Recommended under separation, where the penalised likelihood is far from quadratic
  and the Wald interval's symmetry is wrong. `calibration_fit` reports these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize
from scipy import stats as sps
from scipy.special import expit, log_expit

__all__ = ["FirthFit", "firth_logistic", "firth_profile_ci"]


@dataclass(frozen=True, eq=False)
class FirthFit:
    """Firth fit: coefficients, their standard errors (from I(b)^-1), the penalised
    log-likelihood at the estimate, and whether the iteration converged."""

    coef: NDArray[np.float64]
    se: NDArray[np.float64]
    penalised_loglik: float
    converged: bool
    iterations: int

    def wald_ci(self, level: float = 0.95) -> NDArray[np.float64]:
        """Wald intervals b +- z se, shape (k, 2) (brglm2's `confint`)."""
        z = sps.norm.ppf(0.5 + level / 2)
        return np.column_stack([self.coef - z * self.se, self.coef + z * self.se])


def _penalised(y, X, offset, beta) -> tuple[float, NDArray, NDArray]:
    """Return l*(beta), the modified score U*(beta) and the information I(beta)."""
    eta = offset + X @ beta
    pi = expit(eta)
    w = pi * (1 - pi)
    info = X.T @ (w[:, None] * X)
    sign, logdet = np.linalg.slogdet(info)
    if sign <= 0:
        return -math.inf, np.full(len(beta), np.nan), info
    loglik = float(np.sum(y * log_expit(eta) + (1 - y) * log_expit(-eta)))
    xw = X * np.sqrt(w)[:, None]
    hat = np.einsum("ij,jk,ik->i", xw, np.linalg.inv(info), xw)
    score = X.T @ (y - pi + hat * (0.5 - pi))
    return loglik + 0.5 * logdet, score, info


def _maximise(y, X, offset, beta, free, tol, max_iter) -> tuple[NDArray, float, bool, int]:
    """Fisher scoring on the `free` coefficients with step halving (logistf's iteration)."""
    beta = beta.astype(float).copy()
    value, score, info = _penalised(y, X, offset, beta)
    last = math.inf  # the previous step's size
    for iteration in range(1, max_iter + 1):
        step = np.zeros_like(beta)
        step[free] = np.linalg.solve(info[np.ix_(free, free)], score[free])
        step = np.clip(step, -5.0, 5.0)  # logistf's maxstep: no wild first steps
        for _ in range(30):
            trial = beta + step
            t_value, t_score, t_info = _penalised(y, X, offset, trial)
            if t_value >= value - 1e-12:
                break
            step /= 2
        else:  # no step along the scoring direction improves l*: stop where we are
            return beta, value, False, iteration
        gain = t_value - value
        beta, value, score, info = trial, t_value, t_score, t_info
        size = np.abs(step).max()
        if size < tol and np.abs(score[free]).max() < 1e-8:
            return beta, value, True, iteration
        # At the floor of double precision (a saturated fit with |x| of 10 or more: the score
        # stays near 1e-7 and the steps near 1e-8 without shrinking or changing l*), Fisher
        # scoring no longer converges in the strict sense: the steps stop shrinking while l*
        # stays the same to the last bits. That is the estimate, as logistf's criterion on the
        # change of the log-likelihood would say; a slowly converging fit still gains and shrinks.
        if size < 1e-6 and size > 0.5 * last and abs(gain) <= 1e-15 * max(1.0, abs(value)):
            return beta, value, True, iteration
        last = size
    return beta, value, False, max_iter


def _design(y, X, offset):
    yy = np.asarray(y, dtype=float)
    XX = np.asarray(X, dtype=float)
    if XX.ndim == 1:
        XX = XX[:, None]
    if yy.ndim != 1 or XX.shape[0] != yy.size or yy.size == 0:
        raise ValueError(f"y {yy.shape} and X {XX.shape}: expected n outcomes and an n x k design")
    if not np.isin(yy, (0, 1)).all():
        raise ValueError("y: expected only 0 and 1")
    off = np.zeros(yy.size) if offset is None else np.asarray(offset, dtype=float)
    if off.shape != yy.shape or not np.isfinite(off).all() or not np.isfinite(XX).all():
        raise ValueError("X and offset: expected finite values, one offset per outcome")
    if np.linalg.matrix_rank(XX) < XX.shape[1]:
        raise ValueError(f"X {XX.shape}: the columns are collinear; expected full column rank")
    return yy, XX, off


def firth_logistic(
    y: ArrayLike,
    X: ArrayLike,
    offset: ArrayLike | None = None,
    tol: float = 1e-10,
    max_iter: int = 200,
) -> FirthFit:
    """Fit logit P(y=1) = offset + X b by Firth's penalised likelihood (Firth 1993).

    `X` holds every column, the intercept's column of ones included.
    """
    yy, XX, off = _design(y, X, offset)
    k = XX.shape[1]
    beta, value, converged, iterations = _maximise(
        yy, XX, off, np.zeros(k), np.arange(k), tol, max_iter
    )
    _, _, info = _penalised(yy, XX, off, beta)
    se = np.sqrt(np.diag(np.linalg.inv(info)))
    return FirthFit(beta, se, value, converged, iterations)


def firth_profile_ci(
    y: ArrayLike,
    X: ArrayLike,
    fit: FirthFit,
    which: int,
    offset: ArrayLike | None = None,
    level: float = 0.95,
    limit: float = 1e3,
) -> tuple[float, float]:
    """Profile penalised-likelihood interval of coefficient `which` (Heinze & Schemper 2002).

    The search for each bound widens the step from the estimate by doubling, up to `limit`
    standard errors; a bound not found there is reported as -inf or +inf (the penalised profile
    never reaches the cut-off on that side).
    """
    yy, XX, off = _design(y, X, offset)
    k = XX.shape[1]
    free = np.array([i for i in range(k) if i != which], dtype=int)
    cut = fit.penalised_loglik - sps.chi2.ppf(level, 1) / 2
    start = fit.coef.copy()

    def profile(value: float) -> float:
        beta = start.copy()
        beta[which] = value
        if free.size:
            beta, best, _, _ = _maximise(yy, XX, off, beta, free, 1e-9, 200)
        else:
            best = _penalised(yy, XX, off, beta)[0]
        return max(best - cut, -1e10)  # finite for brentq where l* underflows to -inf

    bounds = []
    centre, scale = float(fit.coef[which]), float(max(fit.se[which], 1e-3))
    for sign in (-1.0, 1.0):
        inner, width = centre, scale
        bound = sign * math.inf
        while width <= limit * scale:
            outer = centre + sign * width
            if profile(outer) < 0:
                bound = optimize.brentq(profile, min(inner, outer), max(inner, outer), xtol=1e-10)
                break
            inner, width = outer, width * 2
        bounds.append(float(bound))
    return bounds[0], bounds[1]
