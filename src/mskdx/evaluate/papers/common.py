"""What every paper check shares: the row type, number formatting and the binomial CIs tried.

A check row holds the printed text, what the paper's own counts give (rounded to the printed
precision), how it was recomputed, whether the two agree, and a note that says, for a
disagreement, from which printed numbers and by how much (`CheckRows`).

Confidence intervals of proportions are recomputed with the standard binomial intervals of
statsmodels' `proportion_confint` (Wilson score, Wald = normal approximation, Clopper-Pearson =
exact); each CI row says which of them reproduces the printed bounds at the printed precision,
and for a miss which bound misses and by how much.

Every row is graded (`GRADES`): ``consistent`` (reproduced, or the claim holds),
``unexplained`` (not reproduced, but a plausible method the paper does not name would give it;
the note says which) or ``inconsistent`` (no method can give it: an interval narrower than every
binomial interval of its printed counts, parts that do not add up, a claim its own table
contradicts). docs/paper_check.md says how each kind of row is graded.
"""

from __future__ import annotations

import math

from scipy.stats import norm
from statsmodels.stats.proportion import proportion_confint

from mskdx.evaluate.papers.printed import Cell

__all__ = [
    "CI_METHODS",
    "COLUMNS",
    "CONSISTENT",
    "GOUT",
    "GRADES",
    "INCONSISTENT",
    "METHOD_SCOPE",
    "OLT",
    "UNEXPLAINED",
    "Z95",
    "CheckRows",
    "binomial_intervals",
    "bound_misses",
    "difference",
    "finer",
    "identical_rows",
    "interval_text",
    "near_miss",
    "reproduces",
    "rounded",
    "truncates_to",
]

#: Columns of the paper check table; ``consistent`` is True exactly when ``grade`` is consistent.
COLUMNS = ["paper", "quantity", "printed", "recomputed", "method", "grade", "consistent", "note"]

#: The grades of a row, best first (see the module docstring).
CONSISTENT, UNEXPLAINED, INCONSISTENT = "consistent", "unexplained", "inconsistent"
GRADES = (CONSISTENT, UNEXPLAINED, INCONSISTENT)

#: Why an interval wider than every binomial interval of its counts is only unexplained.
WIDER_THAN_BINOMIAL = (
    "a method the paper does not name that allows for images clustered by patient (a "
    "patient-level bootstrap, say) gives wider intervals than the binomial ones"
)

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


def truncates_to(cell: Cell, value: float) -> bool:
    """True if `value` (>= 0) cut, not rounded, to the printed digits of `cell` gives `cell`."""
    scale = 10**cell.decimals
    return math.floor(value * scale + 1e-9) == round(cell.value * scale)


def near_miss(cell: Cell, value: float) -> str:
    """A note when `value` misses `cell` by less than one unit of its last digit, else "".

    The note asks "truncated rather than rounded?" only where truncation gives the printed
    digits, that is where the printed value is the lower one.
    """
    if cell.agrees(value) or abs(value - cell.value) >= 2 * cell.half_unit:
        return ""
    text = (
        f"{value:.{cell.decimals + 2}f} rounds to {rounded(value, cell)}, not {cell}: off by one "
        "in the last digit"
    )
    return f"{text} (truncated rather than rounded?)" if truncates_to(cell, value) else text


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


def identical_rows(table: dict[str, dict[str, object]]) -> list[tuple[str, str]]:
    """Pairs of row names (in table order) whose printed cells are all equal."""
    names = list(table)
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1 :] if table[a] == table[b]]


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
        note_if_flagged: str = "",
        flag: str = INCONSISTENT,
    ) -> None:
        """Add a row, graded `flag` (inconsistent or unexplained) unless `consistent`.

        `note_if_flagged` is appended to the note only when the check fails; for an unexplained
        row it names the method the paper does not, which would give the printed value.
        """
        if flag not in (UNEXPLAINED, INCONSISTENT):
            raise ValueError(f"flag {flag!r}: expected {UNEXPLAINED!r} or {INCONSISTENT!r}")
        if not consistent and note_if_flagged:
            note = f"{note}; {note_if_flagged}" if note else note_if_flagged
        grade = CONSISTENT if consistent else flag
        self.rows.append(
            {
                "paper": paper,
                "quantity": quantity,
                "printed": printed,
                "recomputed": recomputed,
                "method": method,
                "grade": grade,
                "consistent": grade == CONSISTENT,
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
            note_if_flagged=f"{miss} ({hint})" if hint else miss,
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
        counts_printed: bool = True,
        wider_because: str = WIDER_THAN_BINOMIAL,
    ) -> list[str]:
        """Which 95% CI method reproduces a printed CI of `successes`/`n`; return their labels.

        With `stated` (the method the paper names) the row is consistent iff that method
        reproduces the printed bounds; without, iff any tried method does. Misses are measured
        against the stated method, else Wilson, and graded by `grade_interval_miss`
        (`counts_printed` False: the counts are reconstructed, not printed; `wider_because`:
        why an interval wider than the binomial ones is plausible). `extra` adds candidate
        intervals that are not binomial (label -> bounds, in the printed unit); `explain`
        (label -> text) is added to the note when that method reproduces the printed CI.
        """
        scale = 100.0 if percent else 1.0
        binomial = binomial_intervals(successes, n, scale)
        intervals = {**binomial, **(extra or {})}
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
        grade, why = (
            (CONSISTENT, "")
            if consistent
            else grade_interval_miss(
                low,
                high,
                binomial,
                reproduced,
                successes / n,
                scale,
                counts_printed=counts_printed,
                wider_because=wider_because,
            )
        )
        misses = bound_misses(reference, low, high, intervals[reference])
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
            note_if_flagged="; ".join(part for part in (misses, why) if part),
            flag=grade if grade != CONSISTENT else INCONSISTENT,
        )
        return reproduced


def grade_interval_miss(
    low: Cell,
    high: Cell,
    binomial: dict[str, tuple[float, float]],
    reproduced: list[str],
    proportion: float,
    scale: float,
    counts_printed: bool = True,
    wider_because: str = WIDER_THAN_BINOMIAL,
) -> tuple[str, str]:
    """Grade a printed CI that its stated (or every tried) method misses; return (grade, why).

    `binomial` holds the binomial intervals of the counts (in the printed unit, `scale` times
    the proportion) and `reproduced` the tried methods that give the printed bounds.

    Unexplained where another tried method reproduces it, where a binomial interval cut (not
    rounded) to the printed digits does, where it is wider than every binomial interval of its
    counts (`wider_because`), or where it is as wide but placed elsewhere. Inconsistent where it
    excludes its own counts' rate, or is narrower than every binomial interval of its printed
    counts (no interval of those counts is that narrow; with reconstructed counts,
    `counts_printed` False, only unexplained).
    """
    if reproduced:
        return UNEXPLAINED, ""
    for label, (lo, hi) in binomial.items():
        if truncates_to(low, lo) and truncates_to(high, hi):
            return UNEXPLAINED, (
                f"{label} cut (not rounded) to the printed digits gives {interval_text(low, high)}"
            )
    rate = scale * proportion
    if not low.value - low.half_unit <= rate <= high.value + high.half_unit:
        return INCONSISTENT, f"the interval excludes its own counts' rate {finer(rate, low)}"
    widest = (high.value + high.half_unit) - (low.value - low.half_unit)
    narrowest = (high.value - high.half_unit) - (low.value + low.half_unit)
    widths = {label: hi - lo for label, (lo, hi) in binomial.items()}
    listing = ", ".join(f"{label} {finer(w, low)}" for label, w in widths.items())
    if widest < min(widths.values()):
        half = widest / 2 / scale
        n_needed = proportion * (1 - proportion) * (Z95 / half) ** 2
        why = (
            f"narrower than every binomial interval of these counts: at most "
            f"{finer(widest, low)} wide against {listing}; a normal-approximation interval this "
            f"narrow needs about {n_needed:.0f} trials"
        )
        if counts_printed:
            return INCONSISTENT, why
        return UNEXPLAINED, (
            f"{why}; but the counts are reconstructed, not printed: the interval may rest on "
            "counts the paper does not give"
        )
    if narrowest > max(widths.values()):
        ratio = narrowest / widths["Wilson"]
        return UNEXPLAINED, (
            f"wider than every binomial interval of these counts: at least "
            f"{finer(narrowest, low)} wide against {listing} ({ratio:.1f} times Wilson's): "
            f"{wider_because}"
        )
    return UNEXPLAINED, (
        "as wide as a binomial interval of these counts but placed elsewhere: a method the paper "
        "does not name (a bootstrap, say) might give it"
    )
