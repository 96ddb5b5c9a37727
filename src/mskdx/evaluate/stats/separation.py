"""Separation of two classes by one predictor: when a logistic slope has no maximum likelihood.

Albert A, Anderson JA (1984) "On the existence of maximum likelihood estimates in logistic
regression models", Biometrika 71:1-10: the ML estimate of logit P(y=1) = a + b x is finite iff
the classes overlap. For one predictor the check is exact and needs no fitter:

- complete separation: every event's x lies above every non-event's (or every one below): the
  likelihood rises towards 1 as b runs to +infinity (or -infinity);
- quasi-complete separation: the two classes' ranges touch only at ties at the boundary
  (max x of the non-events == min x of the events, or the mirror): the likelihood rises towards
  a supremum below 1 as b runs to infinity; no finite maximum either;
- constant: every x is the same, so the slope is not identified at all (collinear with the
  intercept).

This is what the linear program of Konis (2007, "Linear programming algorithms for detecting
separated data in binary logistic regression models", DPhil thesis, Oxford; R's
`detectseparation`) decides for a design with an intercept and one column; the property tests
check the two against each other. A fitter's warning is no substitute: statsmodels warns only on
complete separation, and R's `glm` returns a finite but meaningless slope under both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["Separation", "detect_separation"]


@dataclass(frozen=True)
class Separation:
    """How the classes sit on the predictor: kind in "none", "complete", "quasi-complete",
    "constant", "one class"; `direction` +1 when the events lie above, -1 below, else 0."""

    kind: str
    direction: int = 0

    @property
    def estimable(self) -> bool:
        """Whether a finite ML slope exists."""
        return self.kind == "none"

    def reason(self, predictor: str = "logit(p)") -> str:
        """Why there is no ML slope, as a phrase for a table note ("" when there is one)."""
        side = "above" if self.direction > 0 else "below"
        if self.kind == "complete":
            return (
                f"complete separation: every event's {predictor} lies {side} every non-event's, "
                "so the ML slope is infinite"
            )
        if self.kind == "quasi-complete":
            return (
                f"quasi-complete separation: events lie {side} non-events on {predictor} but for "
                "ties at the boundary, so the ML slope is infinite"
            )
        if self.kind == "constant":
            return f"constant {predictor}: the slope is not identified"
        if self.kind == "one class":
            return "one class only: no slope to fit"
        return ""


def detect_separation(y: ArrayLike, x: ArrayLike) -> Separation:
    """Classify the 0/1 outcomes `y` against one predictor `x` (exact order check).

    Infinite x (a logit of exactly 0 or 1) are ordered like any other value.
    """
    yy = np.asarray(y).astype(bool)
    xx = np.asarray(x, dtype=float)
    if yy.shape != xx.shape or yy.ndim != 1:
        raise ValueError(f"y {yy.shape} and x {xx.shape}: expected two 1-D arrays of one length")
    if np.isnan(xx).any():
        raise ValueError("x contains NaN; expected numbers (infinite values are allowed)")
    if yy.all() or not yy.any():
        return Separation("one class")
    if xx.min() == xx.max():
        return Separation("constant")
    events, others = xx[yy], xx[~yy]
    for direction, low, high in ((1, others, events), (-1, events, others)):
        if low.max() < high.min():
            return Separation("complete", direction)
        if low.max() == high.min():
            return Separation("quasi-complete", direction)
    return Separation("none")
