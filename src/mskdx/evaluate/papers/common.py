"""What every paper check shares: the row type, number formatting and the binomial CIs tried.

A check row holds the printed text, what the paper's own counts give (rounded to the printed
precision), how it was recomputed, whether the two agree, and a note that says, for a
disagreement, from which printed numbers and by how much (`CheckRows`).

Confidence intervals of proportions are recomputed with the standard binomial intervals of
statsmodels' `proportion_confint` (Wilson score, Wald = normal approximation, Clopper-Pearson =
exact); each CI row says which of them reproduces the printed bounds at the printed precision,
and for a miss which bound misses and by how much.
"""

from __future__ import annotations

from scipy.stats import norm
from statsmodels.stats.proportion import proportion_confint

from mskdx.evaluate.papers.printed import Cell

__all__ = [
    "CI_METHODS",
    "COLUMNS",
    "GOUT",
    "METHOD_SCOPE",
    "OLT",
    "Z95",
    "CheckRows",
    "binomial_intervals",
    "bound_misses",
    "difference",
    "finer",
    "interval_text",
    "near_miss",
    "reproduces",
    "rounded",
]

#: Columns of the paper check table.
COLUMNS = ["paper", "quantity", "printed", "recomputed", "method", "consistent", "note"]

#: The binomial 95% CIs tried on every printed CI of a proportion: label -> statsmodels method.
CI_METHODS = {"Wilson": "wilson", "Wald": "normal", "Clopper-Pearson": "beta"}

#: What each CI method applies to (for the "method fits the quantity" checks).
METHOD_SCOPE = {
    "Wilson score interval": "binomial proportion",
    "DeLong": "AUC",
    "Hanley-McNeil": "AUC",
}

GOUT, OLT = "gout", "olt"
Z95 = float(norm.ppf(0.975))


def rounded(value: float, cell: Cell) -> str:
    """Format a recomputed value to the printed precision of `cell`."""
    return f"{value:.{cell.decimals}f}"


def finer(value: float, cell: Cell) -> str:
    """Format a recomputed value one digit finer than `cell`, so that a near miss shows."""
    return f"{value:.{cell.decimals + 1}f}"


def interval_text(low: object, high: object) -> str:
    """'[low, high]'."""
    return f"[{low}, {high}]"


def difference(cell: Cell, value: float) -> str:
    """'0.90 lower' / '1.87 higher': how the printed `cell` differs from `value`."""
    gap = cell.value - value
    return f"{finer(abs(gap), cell)} {'higher' if gap > 0 else 'lower'}"


def near_miss(cell: Cell, value: float) -> str:
    """A note when `value` misses `cell` by less than one unit of its last digit, else ""."""
    if cell.agrees(value) or abs(value - cell.value) >= 2 * cell.half_unit:
        return ""
    return (
        f"{value:.{cell.decimals + 2}f} rounds to {rounded(value, cell)}, not {cell}: off by one "
        "in the last digit (truncated rather than rounded?)"
    )


def bound_misses(method: str, low: Cell, high: Cell, interval: tuple[float, float]) -> str:
    """Which printed bound `interval` misses, by how much; "" if it reproduces both."""
    misses = []
    for name, cell, value in (("lower", low, interval[0]), ("upper", high, interval[1])):
        if not cell.agrees(value):
            text = (
                f"{name} bound misses: printed {cell}, {method} {finer(value, cell)}, printed "
                f"is {difference(cell, value)}"
            )
            hint = near_miss(cell, value)
            misses.append(f"{text} ({hint})" if hint else text)
    return "; ".join(misses)


def binomial_intervals(successes: int, n: int, scale: float) -> dict[str, tuple[float, float]]:
    """The 95% CIs of `successes`/`n` by each of `CI_METHODS`, clipped to [0, 1], times `scale`."""
    out = {}
    for label, method in CI_METHODS.items():
        low, high = proportion_confint(successes, n, alpha=0.05, method=method)
        out[label] = (scale * max(0.0, float(low)), scale * min(1.0, float(high)))
    return out


def reproduces(low: Cell, high: Cell, interval: tuple[float, float]) -> bool:
    """True if `interval` rounds to the printed bounds."""
    return low.agrees(interval[0]) and high.agrees(interval[1])


class CheckRows:
    """Accumulate paper check rows."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(
        self,
        paper: str,
        quantity: str,
        printed: str,
        recomputed: str,
        method: str,
        consistent: bool,
        note: str = "",
        note_if_inconsistent: str = "",
    ) -> None:
        """Add a row; `note_if_inconsistent` is appended to the note only when the check fails."""
        if not consistent and note_if_inconsistent:
            note = f"{note}; {note_if_inconsistent}" if note else note_if_inconsistent
        self.rows.append(
            {
                "paper": paper,
                "quantity": quantity,
                "printed": printed,
                "recomputed": recomputed,
                "method": method,
                "consistent": bool(consistent),
                "note": note,
            }
        )

    def percentage(
        self,
        paper: str,
        quantity: str,
        cell: Cell,
        successes: int,
        n: int,
        percent: bool,
        note: str = "",
    ) -> float:
        """Recompute a printed rate from its count; return the unrounded value."""
        scale = 100.0 if percent else 1.0
        value = scale * successes / n
        miss = f"{successes}/{n} = {finer(value, cell)}; printed {cell} is " + difference(
            cell, value
        )
        hint = near_miss(cell, value)
        self.add(
            paper,
            quantity,
            f"{cell} ({successes}/{n})" if percent else f"{cell}",
            f"{rounded(value, cell)} ({successes}/{n})",
            f"k/n{' x 100' if percent else ''}",
            cell.agrees(value),
            note,
            note_if_inconsistent=f"{miss} ({hint})" if hint else miss,
        )
        return value

    def interval(
        self,
        paper: str,
        quantity: str,
        low: Cell,
        high: Cell,
        successes: int,
        n: int,
        percent: bool,
        stated: str | None = None,
        counts_from: str = "",
        extra: dict[str, tuple[float, float]] | None = None,
        explain: dict[str, str] | None = None,
    ) -> list[str]:
        """Which 95% CI method reproduces a printed CI of `successes`/`n`; return their labels.

        With `stated` (the method the paper names) the row is consistent iff that method
        reproduces the printed bounds; without, iff any tried method does. Misses are measured
        against the stated method, else Wilson. `extra` adds candidate intervals that are not
        binomial (label -> bounds, in the printed unit); `explain` (label -> text) is added to
        the note when that method reproduces the printed CI.
        """
        intervals = binomial_intervals(successes, n, 100.0 if percent else 1.0)
        intervals.update(extra or {})
        reproduced = [label for label, bounds in intervals.items() if reproduces(low, high, bounds)]
        reference = stated or "Wilson"
        consistent = reference in reproduced if stated else bool(reproduced)
        tried = ", ".join(intervals)
        method = f"95% CI of {successes}/{n}{f' ({counts_from})' if counts_from else ''} by {tried}"
        method += f"; the paper states {stated}" if stated else "; the paper names no CI method"
        if reproduced:
            note = f"reproduced by {', '.join(reproduced)}"
            note += "".join(
                f" ({(explain or {})[label]})" for label in reproduced if label in (explain or {})
            )
            if stated and not consistent:
                note += f", not by the stated {stated}"
        else:
            note = f"reproduced by none of {tried}"
        self.add(
            paper,
            quantity,
            interval_text(low, high),
            "; ".join(
                f"{label} {interval_text(rounded(lo, low), rounded(hi, high))}"
                for label, (lo, hi) in intervals.items()
            )
            + f" ({successes}/{n})",
            method,
            consistent,
            note,
            note_if_inconsistent=bound_misses(reference, low, high, intervals[reference]),
        )
        return reproduced
