"""Binomial proportions with Wilson score intervals.

Wilson EB (1927) "Probable inference, the law of succession, and statistical inference",
J Am Stat Assoc 22:209-212. Computed by statsmodels' ``proportion_confint(method="wilson")``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from statsmodels.stats.proportion import proportion_confint

__all__ = ["Estimate", "proportion", "wilson_ci"]


def _check_counts(successes: int, n: int) -> tuple[int, int]:
    for name, value in (("successes", successes), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            if isinstance(value, numbers.Real) and float(value).is_integer():
                continue
            raise ValueError(f"{name}={value!r}: expected a whole number")
    successes, n = int(successes), int(n)
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"successes={successes}, n={n}: expected 0 <= successes <= n")
    return successes, n


def _check_level(level: float) -> float:
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level={level!r}: expected a confidence level strictly between 0 and 1")
    return float(level)


def wilson_ci(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Return the Wilson score interval (Wilson 1927) for `successes` out of `n`.

    Bounds are proportions in [0, 1], exactly 0 at successes = 0 and 1 at successes = n. With
    n = 0 there is no information and the result is (nan, nan) rather than an error, so that
    empty strata (e.g. a fold without controls) show up as blanks in a table.
    """
    successes, n = _check_counts(successes, n)
    level = _check_level(level)
    if n == 0:
        return (math.nan, math.nan)
    low, high = proportion_confint(successes, n, alpha=1.0 - level, method="wilson")
    # The Wilson bounds are exactly 0 at successes = 0 and 1 at successes = n; the floating-point
    # formula can land a hair inside (0.9999999999999999), so set them.
    low = 0.0 if successes == 0 else max(0.0, float(low))
    high = 1.0 if successes == n else min(1.0, float(high))
    return (low, high)


@dataclass(frozen=True)
class Estimate:
    """A proportion `successes / n` with its Wilson score interval (all on the 0-1 scale)."""

    value: float
    low: float
    high: float
    successes: int
    n: int
    level: float = 0.95

    @property
    def note(self) -> str:
        """The reason there is no value: "not estimable: no cases" when n = 0, else ""."""
        return "not estimable: no cases" if self.n == 0 else ""

    def percent(self, digits: int = 1) -> str:
        """Format as ``"82.5% (184/223) [77.0, 86.9]"`` (percent, Wilson CI in brackets)."""
        if self.n == 0:
            return "- (0/0)"
        return (
            f"{100 * self.value:.{digits}f}% ({self.successes}/{self.n}) "
            f"[{100 * self.low:.{digits}f}, {100 * self.high:.{digits}f}]"
        )


def proportion(successes: int, n: int, level: float = 0.95) -> Estimate:
    """Return `successes / n` with its Wilson score interval as an `Estimate` (nan when n = 0)."""
    successes, n = _check_counts(successes, n)
    low, high = wilson_ci(successes, n, level)
    value = successes / n if n else math.nan
    return Estimate(value=value, low=low, high=high, successes=successes, n=n, level=level)
