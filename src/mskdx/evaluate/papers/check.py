"""Recompute the two papers' summary numbers from their own printed counts; flag what disagrees.

`paper_check` returns one row per recomputation: the printed text, what the paper's own counts
give (rounded to the printed precision), how it was recomputed, whether the two agree, and a
note that says, for a disagreement, from which printed numbers and by how much. Each
``check_*`` function below covers one printed table or claim.

Confidence intervals of proportions are recomputed with the standard binomial intervals of
statsmodels' `proportion_confint` (Wilson score, Wald = normal approximation, Clopper-Pearson =
exact); each CI row says which of them reproduces the printed bounds at the printed precision,
and for a miss which bound misses and by how much.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm
from statsmodels.stats.proportion import proportion_confint

from mskdx.evaluate.papers import printed as papers
from mskdx.evaluate.papers.printed import Cell, PrintedAuc, PrintedProportion
from mskdx.evaluate.stats.hanley import hanley_mcneil_se

log = logging.getLogger(__name__)

__all__ = ["COLUMNS", "CI_METHODS", "fold_compositions", "paper_check"]

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


# ---------------------------------------------------------------------------------------------
# Formatting and comparison helpers
# ---------------------------------------------------------------------------------------------


def _rounded(value: float, cell: Cell) -> str:
    """Format a recomputed value to the printed precision of `cell`."""
    return f"{value:.{cell.decimals}f}"


def _finer(value: float, cell: Cell) -> str:
    """Format a recomputed value one digit finer than `cell`, so that a near miss shows."""
    return f"{value:.{cell.decimals + 1}f}"


def _interval_text(low: object, high: object) -> str:
    return f"[{low}, {high}]"


def _difference(cell: Cell, value: float) -> str:
    """'0.90 lower' / '1.87 higher': how the printed `cell` differs from `value`."""
    gap = cell.value - value
    return f"{_finer(abs(gap), cell)} {'higher' if gap > 0 else 'lower'}"


def _near_miss(cell: Cell, value: float) -> str:
    """A note when `value` misses `cell` by less than one unit of its last digit, else ""."""
    if cell.agrees(value) or abs(value - cell.value) >= 2 * cell.half_unit:
        return ""
    return (
        f"{value:.{cell.decimals + 2}f} rounds to {_rounded(value, cell)}, not {cell}: off by one "
        "in the last digit (truncated rather than rounded?)"
    )


def _bound_misses(method: str, low: Cell, high: Cell, interval: tuple[float, float]) -> str:
    """Which printed bound `interval` misses, by how much; "" if it reproduces both."""
    misses = []
    for name, cell, value in (("lower", low, interval[0]), ("upper", high, interval[1])):
        if not cell.agrees(value):
            text = (
                f"{name} bound misses: printed {cell}, {method} {_finer(value, cell)}, printed "
                f"is {_difference(cell, value)}"
            )
            hint = _near_miss(cell, value)
            misses.append(f"{text} ({hint})" if hint else text)
    return "; ".join(misses)


def binomial_intervals(successes: int, n: int, scale: float) -> dict[str, tuple[float, float]]:
    """The 95% CIs of `successes`/`n` by each of `CI_METHODS`, clipped to [0, 1], times `scale`."""
    out = {}
    for label, method in CI_METHODS.items():
        low, high = proportion_confint(successes, n, alpha=0.05, method=method)
        out[label] = (scale * max(0.0, float(low)), scale * min(1.0, float(high)))
    return out


def _reproduces(low: Cell, high: Cell, interval: tuple[float, float]) -> bool:
    return low.agrees(interval[0]) and high.agrees(interval[1])


# ---------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------


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
        miss = f"{successes}/{n} = {_finer(value, cell)}; printed {cell} is " + _difference(
            cell, value
        )
        hint = _near_miss(cell, value)
        self.add(
            paper,
            quantity,
            f"{cell} ({successes}/{n})" if percent else f"{cell}",
            f"{_rounded(value, cell)} ({successes}/{n})",
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
        reproduced = [
            label for label, bounds in intervals.items() if _reproduces(low, high, bounds)
        ]
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
            _interval_text(low, high),
            "; ".join(
                f"{label} {_interval_text(_rounded(lo, low), _rounded(hi, high))}"
                for label, (lo, hi) in intervals.items()
            )
            + f" ({successes}/{n})",
            method,
            consistent,
            note,
            note_if_inconsistent=_bound_misses(reference, low, high, intervals[reference]),
        )
        return reproduced


# ---------------------------------------------------------------------------------------------
# Table III fold compositions
# ---------------------------------------------------------------------------------------------


def fold_compositions(
    accuracy: Cell, sensitivity: Cell, specificity: Cell, max_positive: int, max_negative: int
) -> list[tuple[int, int, int, int]]:
    """All (positives, negatives, true positives, true negatives) of one fold, with at most
    `max_positive`/`max_negative` patients, whose ACC, SEN and SPE (%) round to the cells.

    Exhaustive: a count that rounds to a printed rate lies within half a unit of the rate times
    the total, so it is the floor or the ceiling of that product.
    """
    positives = [
        (total, hits)
        for total in range(1, max_positive + 1)
        for hits in {
            math.floor(sensitivity.value * total / 100),
            math.ceil(sensitivity.value * total / 100),
        }
        if 0 <= hits <= total and sensitivity.agrees(100 * hits / total)
    ]
    negatives = [
        (total, hits)
        for total in range(1, max_negative + 1)
        for hits in {
            math.floor(specificity.value * total / 100),
            math.ceil(specificity.value * total / 100),
        }
        if 0 <= hits <= total and specificity.agrees(100 * hits / total)
    ]
    return sorted(
        (n_pos, n_neg, tp, tn)
        for n_pos, tp in positives
        for n_neg, tn in negatives
        if accuracy.agrees(100 * (tp + tn) / (n_pos + n_neg))
    )


def _reachable_totals(
    per_fold: Iterable[set[tuple[int, int]]], limit: tuple[int, int]
) -> set[tuple[int, int]]:
    """All (sum of positives, sum of negatives) from one (positives, negatives) per fold."""
    reach = {(0, 0)}
    for options in per_fold:
        reach = {
            (pos_sum + n_pos, neg_sum + n_neg)
            for pos_sum, neg_sum in reach
            for n_pos, n_neg in options
            if pos_sum + n_pos <= limit[0] and neg_sum + n_neg <= limit[1]
        }
    return reach


def _table3_folds() -> list[tuple[str, dict[str, Cell]]]:
    """Table III's fold rows (without the average) as (name, cells)."""
    return [(name, row) for name, row in papers.GOUT_TABLE3.items() if name != "average"]


def _pooled_smallest(
    smallest: list[tuple[int, int, int, int] | None],
) -> dict[str, tuple[int, int]]:
    """(successes, n) of ACC, SEN, SPE over all folds' smallest compositions; {} if one lacks."""
    if not smallest or None in smallest:
        return {}
    n_pos, n_neg, tp, tn = (sum(c[i] for c in smallest) for i in range(4))
    return {"acc": (tp + tn, n_pos + n_neg), "sen": (tp, n_pos), "spe": (tn, n_neg)}


def _smallest_compositions() -> list[tuple[int, int, int, int] | None]:
    """Per Table III fold, the composition with the fewest patients (None if there is none)."""
    gout = papers.GOUT
    out = []
    for _, row in _table3_folds():
        options = fold_compositions(
            row["acc"], row["sen"], row["spe"], gout["patients_gout"], gout["patients_control"]
        )
        out.append(min(options, key=lambda c: (c[0] + c[1], c)) if options else None)
    return out


# ---------------------------------------------------------------------------------------------
# Gout (Xiao et al. 2025)
# ---------------------------------------------------------------------------------------------


def check_gout_table1_rates(rows: CheckRows) -> None:
    """Table I: each ACC/SEN/SPE from its printed count, each CI against the binomial CIs."""
    for arm, printed in papers.GOUT_TABLE1.items():
        label = papers.GOUT_ARM_LABELS[arm]
        for name, title in (("acc", "ACC"), ("sen", "SEN"), ("spe", "SPE")):
            rate: PrintedProportion = printed[name]
            rows.percentage(GOUT, f"Table I {label} {title} %", rate.value, rate.k, rate.n, True)
            rows.interval(
                GOUT, f"Table I {label} {title} 95% CI", rate.low, rate.high, rate.k, rate.n, True
            )


def check_gout_table1_counts(rows: CheckRows) -> None:
    """Table I: SEN and SPE counts against ACC's, and ACC recomputed from them."""
    gout, table1 = papers.GOUT, papers.GOUT_TABLE1
    n_images = {(r["sen"].n, r["spe"].n, r["acc"].n) for r in table1.values()}
    for n_gout, n_control, n_all in sorted(n_images):
        rows.add(
            GOUT,
            "Table I: SEN n + SPE n = ACC n (test images)",
            f"{n_gout} + {n_control} vs {n_all}",
            f"{n_gout + n_control}",
            "every test image is gout (SEN) or control (SPE); the same n in every arm",
            n_gout + n_control == n_all,
            note_if_inconsistent=f"{n_gout + n_control} images is about one fold "
            f"({gout['images']} / {gout['folds']} = {gout['images'] / gout['folds']:.1f}), "
            f"{n_gout + n_control - n_all} more than ACC's {n_all}",
        )
    for arm, printed in table1.items():
        acc, sen, spe = printed["acc"], printed["sen"], printed["spe"]
        correct, total = sen.k + spe.k, sen.n + spe.n
        value = 100 * correct / total
        counts_note = (
            f"counts differ: TP + TN = {sen.k} + {spe.k} = {correct} correct vs ACC's {acc.k}, "
            f"{total} images vs ACC's {acc.n}"
            if (correct, total) != (acc.k, acc.n)
            else ""
        )
        rows.add(
            GOUT,
            f"Table I {papers.GOUT_ARM_LABELS[arm]} ACC from its SEN and SPE counts",
            f"{acc.value} ({acc.k}/{acc.n})",
            f"{_rounded(value, acc.value)} (({sen.k} + {spe.k}) / ({sen.n} + {spe.n}) = "
            f"{correct}/{total})",
            "ACC = (TP + TN) / (gout + control images), TP and TN from the SEN and SPE counts",
            acc.value.agrees(value),
            note=counts_note if acc.value.agrees(value) else "",
            note_if_inconsistent=f"{correct}/{total} = {_finer(value, acc.value)}; printed "
            f"{acc.value} is {_difference(acc.value, value)}"
            + (f"; {counts_note}" if counts_note else ""),
        )


def check_gout_test_images(rows: CheckRows) -> None:
    """Table I's test set: its size against five-fold CV, its class mix against the dataset's."""
    gout, reference = papers.GOUT, papers.GOUT_TABLE1["blocks3"]
    n_all = reference["acc"].n
    per_fold = gout["images"] / gout["folds"]
    rows.add(
        GOUT,
        "Table I test images (ACC n)",
        f"{n_all}",
        f"{gout['images']} pooled over folds; {per_fold:.1f} per fold",
        f"five-fold CV: each of the {gout['images']} images is tested once",
        n_all in (gout["images"], round(per_fold)),
        note_if_inconsistent=f"{n_all} is neither the pooled test set nor one fold: "
        f"{gout['images'] - n_all} fewer than {gout['images']}, {per_fold - n_all:.1f} fewer "
        f"than {per_fold:.1f}",
    )
    n_gout, n_control = reference["sen"].n, reference["spe"].n
    group_gout, group_control = gout["images_gout"], gout["images_control"]
    fifth_gout, fifth_control = group_gout / gout["folds"], group_control / gout["folds"]
    share_test = 100 * n_gout / (n_gout + n_control)
    share_data = 100 * group_gout / (group_gout + group_control)
    tolerance = 0.10
    within = (
        abs(n_gout - fifth_gout) <= tolerance * fifth_gout
        and abs(n_control - fifth_control) <= tolerance * fifth_control
    )
    rows.add(
        GOUT,
        "Table I test images: class mix vs the dataset's",
        f"{n_gout} gout + {n_control} control images ({share_test:.1f}% gout)",
        f"a fifth of each group: {fifth_gout:.1f} gout + {fifth_control:.1f} control "
        f"({share_data:.1f}% gout, as {group_gout} gout + {group_control} control images)",
        "'Gout group' and 'Control group' patients are divided into 5 subgroups of "
        "'approximately equal size', so a test fold holds about a fifth of each group's images "
        f"(taken as within {100 * tolerance:.0f}%)",
        within,
        note_if_inconsistent=(
            f"SEN n {n_gout} is {abs(n_gout - fifth_gout):.1f} images "
            f"({100 * abs(n_gout - fifth_gout) / fifth_gout:.1f}%) "
            f"{'fewer' if n_gout < fifth_gout else 'more'} than a fifth of {group_gout}; SPE n "
            f"{n_control} is {abs(n_control - fifth_control):.1f} "
            f"({100 * abs(n_control - fifth_control) / fifth_control:.1f}%) "
            f"{'fewer' if n_control < fifth_control else 'more'} than a fifth of {group_control}; "
            f"the test set is {share_test:.1f}% gout vs {share_data:.1f}% in the dataset, "
            f"{abs(share_data - share_test):.1f} points apart"
        ),
    )


def check_gout_cohort(rows: CheckRows) -> None:
    """Cohort counts of the text: images and patients per group, images per patient, folds."""
    gout = papers.GOUT
    for quantity, parts, total in (
        (
            "gout images + control images = all images",
            (gout["images_gout"], gout["images_control"]),
            gout["images"],
        ),
        (
            "gout patients + control patients = all patients",
            (gout["patients_gout"], gout["patients_control"]),
            gout["patients"],
        ),
        (
            "training + testing patients = all patients",
            (gout["train_patients"], gout["test_patients"]),
            gout["patients"],
        ),
    ):
        rows.add(
            GOUT,
            quantity,
            f"{parts[0]} + {parts[1]} vs {total}",
            f"{sum(parts)}",
            "sum",
            sum(parts) == total,
            note_if_inconsistent=f"the parts add up to {sum(parts) - total:+d} images",
        )
    minimum = gout["min_images_per_patient"]
    per_patient = gout["images"] / gout["patients"]
    per_gout = gout["images_gout"] / gout["patients_gout"]
    per_control = gout["images_control"] / gout["patients_control"]
    needed = minimum * gout["patients"]
    rows.add(
        GOUT,
        "images per patient vs 'at least 10 static images ... from each patient'",
        f"at least {minimum} per patient",
        f"{gout['images']} / {gout['patients']} = {per_patient:.2f} (gout "
        f"{gout['images_gout']} / {gout['patients_gout']} = {per_gout:.2f}, control "
        f"{gout['images_control']} / {gout['patients_control']} = {per_control:.2f})",
        "images analysed / patients",
        per_patient >= minimum,
        note_if_inconsistent=f"{minimum} per patient needs at least {needed} images, "
        f"{needed - gout['images']} more than the {gout['images']} analysed; only an unreported "
        "exclusion of captured images (Fig 1 mentions 'inclusion and exclusion of images') "
        "would reconcile them",
    )
    per_fold = gout["patients"] / gout["folds"]
    rows.add(
        GOUT,
        "testing patients per fold",
        f"{gout['test_patients']}",
        f"{per_fold:g}",
        f"{gout['patients']} patients / {gout['folds']} folds of 'approximately equal size'",
        abs(gout["test_patients"] - per_fold) <= 1,
        note=f"{gout['train_patients']} + {gout['test_patients']} = {gout['patients']}; a fold "
        f"within one patient of {per_fold:g} is 'approximately equal'",
    )


def check_gout_diagnosis(rows: CheckRows) -> None:
    """The text's and abstract's diagnostic accuracy, sensitivity, specificity and their CIs."""
    gout = papers.GOUT
    text: PrintedProportion = gout["diagnostic_accuracy"]
    abstract: PrintedProportion = gout["abstract_accuracy"]
    rows.percentage(
        GOUT,
        f"diagnostic accuracy (text, {text.k}/{text.n})",
        text.value,
        text.k,
        text.n,
        True,
        note=f"{text.value} is Table III's 'average' row; {text.n} patients is about one fold",
    )
    rows.add(
        GOUT,
        "diagnostic accuracy: abstract vs text",
        f"abstract {abstract.value} [{abstract.low}, {abstract.high}]",
        f"text {text.value} [{text.low}, {text.high}]",
        "the text's value and CI at the abstract's precision",
        abstract.value.agrees(text.value.value)
        and (abstract.low, abstract.high) == (text.low, text.high),
    )
    folds = [row for _, row in _table3_folds()]
    pooled = _pooled_smallest(_smallest_compositions())
    for name, title, key in (
        ("diagnostic_accuracy", "accuracy", "acc"),
        ("diagnostic_sensitivity", "SEN", "sen"),
        ("diagnostic_specificity", "SPE", "spe"),
    ):
        printed: PrintedProportion = gout[name]
        values = np.array([row[key].value for row in folds])
        mean, spread = float(values.mean()), float(values.std(ddof=1))
        spread_label = "mean +- 1.96 SD of the folds"
        extra = {spread_label: (mean - Z95 * spread, mean + Z95 * spread)}
        if key == "acc":
            successes, n, source = printed.k, printed.n, "the text's count"
        elif pooled:
            successes, n = pooled[key]
            source = "pooled from the smallest counts behind Table III's folds"
        else:
            continue
        rows.interval(
            GOUT,
            f"diagnostic {title} 95% CI (text)",
            printed.low,
            printed.high,
            successes,
            n,
            True,
            counts_from=source,
            extra=extra,
            explain={
                spread_label: f"Table III's five fold {key.upper()} values, sample SD: a range of "
                "the fold values, not a CI of their mean, which would be sqrt(5) = 2.2 times "
                "narrower"
            },
        )


def check_gout_table3(rows: CheckRows) -> None:
    """Table III: its 'average' row, the patient counts behind each fold, the folds' totals."""
    gout, table3 = papers.GOUT, papers.GOUT_TABLE3
    folds = _table3_folds()
    average = table3["average"]
    max_gout, max_control = gout["patients_gout"], gout["patients_control"]
    options, smallest = [], []
    for fold_name, row in folds:
        compositions = fold_compositions(row["acc"], row["sen"], row["spe"], max_gout, max_control)
        options.append({(n_pos, n_neg) for n_pos, n_neg, _, _ in compositions})
        if compositions:
            n_pos, n_neg, tp, tn = min(compositions, key=lambda c: (c[0] + c[1], c))
            smallest.append((n_pos, n_neg, tp, tn))
            sizes = sorted({p + n for p, n, _, _ in compositions})
            text = (
                f"{tp}/{n_pos} gout + {tn}/{n_neg} control = {tp + tn}/{n_pos + n_neg}; "
                f"all admissible: multiples of it ({', '.join(map(str, sizes))} patients)"
                if all((p + n) % (n_pos + n_neg) == 0 for p, n, _, _ in compositions)
                else f"{tp}/{n_pos} gout + {tn}/{n_neg} control = {tp + tn}/{n_pos + n_neg}; "
                f"admissible fold sizes {', '.join(map(str, sizes))}"
            )
        else:
            smallest.append(None)
            text = "none"
        rows.add(
            GOUT,
            f"Table III {fold_name}: patient counts behind ACC/SEN/SPE",
            f"{row['acc']} / {row['sen']} / {row['spe']}",
            text,
            f"every gout count <= {max_gout} and control count <= {max_control} whose ACC, SEN, "
            "SPE round to the printed values (exhaustive)",
            bool(compositions),
        )
    # The 'average' row: mean of the fold values, or the rates pooled over the folds' patients.
    metrics = (("acc", "ACC"), ("sen", "SEN"), ("spe", "SPE"))
    means = {key: float(np.mean([row[key].value for _, row in folds])) for key, _ in metrics}
    pooled = _pooled_smallest(smallest)
    is_mean = all(average[key].agrees(means[key]) for key, _ in metrics)
    is_pooled = bool(pooled) and all(
        average[key].agrees(100 * k / n) for key, (k, n) in pooled.items()
    )
    mean_text = " / ".join(_rounded(means[key], average[key]) for key, _ in metrics)
    pooled_text = (
        " / ".join(
            f"{_rounded(100 * k / n, average[key])} ({k}/{n})" for key, (k, n) in pooled.items()
        )
        if pooled
        else "no counts"
    )
    rows.add(
        GOUT,
        "Table III 'average' row (ACC / SEN / SPE)",
        " / ".join(str(average[key]) for key, _ in metrics),
        f"mean of the folds {mean_text}; pooled over the folds' patients {pooled_text}",
        "mean of the five printed fold values, and the rates of all folds' test patients counted "
        "together (smallest counts that reproduce each fold)",
        is_mean or is_pooled,
        note="a wording issue, not a wrong number: the 'average' row is the pooled rate over the "
        "folds' test patients, not the mean of the fold values"
        if is_pooled and not is_mean
        else "",
        note_if_inconsistent="neither the mean of the folds nor the pooled rates",
    )
    threshold = average["threshold"]
    threshold_mean = float(np.mean([row["threshold"].value for _, row in folds]))
    rows.add(
        GOUT,
        "Table III average threshold = mean of folds",
        f"{threshold}",
        _rounded(threshold_mean, threshold),
        "mean of the five printed fold thresholds",
        threshold.agrees(threshold_mean),
    )
    # Do the folds' admissible compositions add up to the cohort, in folds of about 52?
    target = (gout["patients_gout"], gout["patients_control"])
    per_fold = gout["patients"] / gout["folds"]
    reach = _reachable_totals(options, target)
    fitting_folds = [
        name
        for (name, _), sizes in zip(folds, options, strict=True)
        if any(abs(p + n - per_fold) <= 1 for p, n in sizes)
    ]
    totals = ", ".join(f"{p} + {n} = {p + n}" for p, n in sorted(reach, key=sum)) or "none"
    unit = "; ".join(
        f"{name}: {c[0]} + {c[1]}" for (name, _), c in zip(folds, smallest, strict=True) if c
    )
    rows.add(
        GOUT,
        f"Table III folds vs {target[0]} gout + {target[1]} control patients in folds of about "
        f"{per_fold:g}",
        f"{gout['patients']} patients ({target[0]} + {target[1]}) in {gout['folds']} test folds "
        f"of 'approximately equal size'; {gout['test_patients']} test patients",
        f"each fold's rates need multiples of ({unit}) gout + control patients; five folds can "
        f"total {totals} within the cohort; "
        f"{len(fitting_folds)} of {len(folds)} folds can hold {per_fold - 1:g} to "
        f"{per_fold + 1:g} patients",
        "exhaustive search of every fold composition (gout count, control count, true positives, "
        "true negatives) whose ACC, SEN, SPE round to Table III, then of every combination of "
        "one composition per fold",
        target in reach and len(fitting_folds) == len(folds),
        note_if_inconsistent="no fold composition reproduces Table III's per-fold percentages "
        f"with the stated totals: the folds cannot add up to {target[0]} + {target[1]} = "
        f"{sum(target)} patients"
        + (
            f", and no fold can have {per_fold - 1:g} to {per_fold + 1:g} patients"
            if not fitting_folds
            else ""
        ),
    )


def check_gout_thresholds(rows: CheckRows) -> None:
    """The text's list of fold thresholds against Table III, and the averages."""
    gout = papers.GOUT
    folds = _table3_folds()
    for (fold_name, row), text in zip(folds, gout["text_thresholds"], strict=True):
        rows.add(
            GOUT,
            f"threshold {fold_name}: text vs Table III",
            f"text {text}, table {row['threshold']}",
            f"{row['threshold'].value - text.value:+.2f}",
            "difference",
            row["threshold"].value == text.value,
            note_if_inconsistent="the text's list and Table III disagree",
        )
    average = gout["text_threshold_average"]
    text_mean = float(np.mean([c.value for c in gout["text_thresholds"]]))
    table_mean = float(np.mean([row["threshold"].value for _, row in folds]))
    rows.add(
        GOUT,
        "text threshold average = mean of the text's thresholds",
        f"{average}",
        _rounded(text_mean, average),
        "mean",
        average.agrees(text_mean),
        note_if_inconsistent=f"mean {text_mean:.3f}; {average} is the mean of Table III's "
        f"thresholds ({table_mean:.3f}), which differ from the text's list in one fold"
        if average.agrees(table_mean)
        else f"mean {text_mean:.3f}",
    )
    rows.add(
        GOUT,
        "abstract threshold = mean of Table III thresholds",
        f"{gout['abstract_threshold']}",
        _rounded(table_mean, gout["abstract_threshold"]),
        "mean",
        gout["abstract_threshold"].agrees(table_mean),
    )


def check_gout_claims(rows: CheckRows) -> None:
    """The text's claims about Table I (significance, best arm) and Table II (complexity)."""
    gout, table1 = papers.GOUT, papers.GOUT_TABLE1
    alpha = gout["alpha"]
    keys = ("p_acc", "p_sen", "p_spe", "p_auc")
    for arm in gout["claim_significant_vs"]:
        pvalues = {k: table1[arm][k].value for k in keys}
        smallest = min(pvalues, key=pvalues.get)
        rows.add(
            GOUT,
            f"text: 3 blocks differs significantly from {papers.GOUT_ARM_LABELS[arm]}",
            "significant",
            f"smallest printed p = {pvalues[smallest]:.2f} ({smallest})",
            f"any Table I p < {alpha}",
            pvalues[smallest] < alpha,
            note_if_inconsistent=f"no printed p against {papers.GOUT_ARM_LABELS[arm]} is below "
            f"{alpha}: " + ", ".join(f"{k} {table1[arm][k]}" for k in keys),
        )
    for arm in gout["claim_not_significant_vs"]:
        pvalues = {k: table1[arm][k].value for k in keys}
        smallest = min(pvalues, key=pvalues.get)
        rows.add(
            GOUT,
            f"text: no significant difference from {papers.GOUT_ARM_LABELS[arm]}",
            "not significant",
            f"smallest printed p = {pvalues[smallest]:.2f} ({smallest})",
            f"all Table I p >= {alpha}",
            pvalues[smallest] >= alpha,
            note_if_inconsistent=f"Table I prints p < {alpha} against "
            f"{papers.GOUT_ARM_LABELS[arm]}: "
            + ", ".join(f"{k} {table1[arm][k]}" for k in keys if table1[arm][k].value < alpha),
        )
    for name, title in (("auc", "AUC"), ("acc", "ACC")):
        values = {arm: row[name].value.value for arm, row in table1.items()}
        top = max(values, key=values.get)
        rows.add(
            GOUT,
            f"text: 3 blocks has the highest {title}",
            "3 blocks",
            f"{papers.GOUT_ARM_LABELS[top]} ({values[top]:g})",
            "maximum over Table I",
            top == "blocks3" and sorted(values.values())[-2] < values[top],
        )
    flops = {arm: v["flops_m"].value for arm, v in papers.GOUT_TABLE2.items()}
    params = {arm: v["params_m"].value for arm, v in papers.GOUT_TABLE2.items()}
    for quantity, values, pick, expected in (
        ("text: 3 blocks has the fewest FLOPs", flops, min, "blocks3"),
        ("text: 2 blocks has the most FLOPs", flops, max, "blocks2"),
        ("text: 2 blocks has the fewest parameters", params, min, "blocks2"),
    ):
        arm = pick(values, key=values.get)
        rows.add(
            GOUT,
            quantity,
            papers.GOUT_ARM_LABELS[expected],
            f"{papers.GOUT_ARM_LABELS[arm]} ({values[arm]:g})",
            "Table II",
            arm == expected,
        )


def check_gout_gradcam(rows: CheckRows) -> None:
    """Grad-CAM counts of the text: agreement, error types and their reasons."""
    gout = papers.GOUT
    rows.add(
        GOUT,
        "Grad-CAM: agreeing + disagreeing images = all images",
        f"{gout['gradcam_agree']} + {gout['gradcam_disagree']} vs {gout['images']}",
        f"{gout['gradcam_agree'] + gout['gradcam_disagree']}",
        "sum",
        gout["gradcam_agree"] + gout["gradcam_disagree"] == gout["images"],
    )
    rows.add(
        GOUT,
        "Grad-CAM: false negatives + false positives = disagreeing images",
        f"{gout['gradcam_fn']} + {gout['gradcam_fp']} vs {gout['gradcam_disagree']}",
        f"{gout['gradcam_fn'] + gout['gradcam_fp']}",
        "sum",
        gout["gradcam_fn"] + gout["gradcam_fp"] == gout["gradcam_disagree"],
    )
    for total_key, reasons_key in (
        ("gradcam_fn", "gradcam_fn_reasons"),
        ("gradcam_fp", "gradcam_fp_reasons"),
        ("gradcam_focus_errors", "gradcam_focus_reasons"),
    ):
        total = gout[total_key]
        for reason, (count, cell) in gout[reasons_key].items():
            rows.percentage(GOUT, f"Grad-CAM {reason} (of {total})", cell, count, total, True)
    fn_counts = [count for count, _ in gout["gradcam_fn_reasons"].values()]
    rows.add(
        GOUT,
        "Grad-CAM: false-negative reasons add up to at most the false negatives",
        f"{' + '.join(map(str, fn_counts))} of {gout['gradcam_fn']}",
        f"{sum(fn_counts)}",
        "sum",
        sum(fn_counts) <= gout["gradcam_fn"],
        note_if_inconsistent=f"{sum(fn_counts) - gout['gradcam_fn']} more reasons than images: "
        "the categories overlap or a count is wrong",
    )


# ---------------------------------------------------------------------------------------------
# OLT (Dabiry et al. 2026)
# ---------------------------------------------------------------------------------------------


def _images_per_class(sequence: str) -> dict[str, int]:
    subsets = papers.OLT_TABLE1[sequence]
    return {cls: sum(subsets[s][cls] for s in subsets) for cls in ("patient", "healthy")}


def check_olt_table1(rows: CheckRows) -> None:
    """Table I: image totals, the 60/20/20 split, images per scan."""
    olt = papers.OLT
    for sequence, subsets in papers.OLT_TABLE1.items():
        total = sum(sum(counts.values()) for counts in subsets.values())
        rows.add(
            OLT,
            f"Table I {sequence}: images add up",
            f"{olt['images'][sequence]}",
            f"{total}",
            "sum over subsets and classes",
            total == olt["images"][sequence],
        )
        shares = [sum(subsets[s].values()) / total for s in ("train", "val", "test")]
        rows.add(
            OLT,
            f"Table I {sequence}: 60/20/20 split",
            "60:20:20",
            "/".join(f"{100 * s:.1f}" for s in shares),
            "share of images per subset",
            all(abs(s - f) <= 0.01 for s, f in zip(shares, olt["fractions"], strict=True)),
            "within 1 point of 60/20/20 at the image level, although the split is said to be "
            "by patient",
        )
        per_class = _images_per_class(sequence)
        scans = {"patient": olt["scans_olt"], "healthy": olt["scans_healthy"]}
        planes = len(olt["planes_methods"])
        ratios = {cls: per_class[cls] / scans[cls] for cls in per_class}
        rows.add(
            OLT,
            f"Table I {sequence}: images per scan",
            f"{total} images, {olt['scans']} scans",
            f"{total / olt['scans']:.2f} per scan (OLT {per_class['patient']} / "
            f"{scans['patient']} = {ratios['patient']:.2f}, healthy {per_class['healthy']} / "
            f"{scans['healthy']} = {ratios['healthy']:.2f})",
            f"Table I images / scans; Methods: {' and '.join(olt['planes_methods'])} images "
            f"per case, so at least {planes} per scan",
            all(r >= planes for r in ratios.values()),
            note=f"healthy scans give {ratios['healthy'] / ratios['patient']:.2f} times as many "
            "images as OLT scans; the paper does not say how many slices were taken per scan",
            note_if_inconsistent=f"fewer than {planes} images per scan",
        )


def check_olt_text_statements(rows: CheckRows) -> None:
    """Text statements about the images: augmentation, planes, subfolders, scans."""
    olt = papers.OLT
    totals = {seq: sum(_images_per_class(seq).values()) for seq in papers.OLT_TABLE1}
    test_val = {
        seq: sum(sum(papers.OLT_TABLE1[seq][s].values()) for s in ("val", "test"))
        for seq in papers.OLT_TABLE1
    }
    augmented = olt["images_after_augmentation"] and olt["augmentation_on_the_fly"]
    rows.add(
        OLT,
        "'Following data augmentation, 595 images (T1) and 665 (T2)' vs on-the-fly augmentation",
        ", ".join(f"{seq} {olt['images'][seq]} after augmentation" for seq in olt["images"]),
        ", ".join(
            f"{seq}: Table I total {totals[seq]}, of which {test_val[seq]} validation and test "
            f"images, {totals[seq] / olt['scans']:.2f} per scan"
            for seq in totals
        ),
        "on-the-fly augmentation ('without artificially expanding the dataset size') leaves the "
        "number of images unchanged, and only the training set is augmented",
        not augmented,
        note_if_inconsistent="the counts are Table I's original images (including the "
        "unaugmented validation and test sets), not a result of augmentation",
    )
    rows.add(
        OLT,
        "image planes: Methods vs Limitations",
        f"Methods: {' and '.join(olt['planes_methods'])}; Limitations: only "
        f"{' and '.join(olt['planes_limitations'])}",
        "common planes: "
        + (
            ", ".join(sorted(set(olt["planes_methods"]) & set(olt["planes_limitations"]))) or "none"
        ),
        "the two statements of which 2D slices were used",
        set(olt["planes_limitations"]) <= set(olt["planes_methods"]),
        note_if_inconsistent="the Methods select coronal and sagittal images; the Limitations "
        "say only axial slices were used",
    )
    rows.add(
        OLT,
        "scans with OLT + without = all scans",
        f"{olt['scans_olt']} + {olt['scans_healthy']} vs {olt['scans']}",
        f"{olt['scans_olt'] + olt['scans_healthy']}",
        "sum",
        olt["scans_olt"] + olt["scans_healthy"] == olt["scans"],
    )
    subfolders = (olt["subjects_patient"], olt["subjects_healthy"])
    scans = (olt["scans_olt"], olt["scans_healthy"])
    rows.add(
        OLT,
        "patient + healthy subject subfolders vs included scans",
        f"{subfolders[0]} patient + {subfolders[1]} healthy subfolders",
        f"{scans[0]} OLT + {scans[1]} healthy scans",
        "the same cohort counted twice",
        subfolders == scans,
        note_if_inconsistent=f"{subfolders[0] - scans[0]:+d} patient and "
        f"{subfolders[1] - scans[1]:+d} healthy; the paper does not say what a subfolder "
        f"holds ({sum(subfolders)} subfolders, {olt['screened_scans']} scans screened)",
    )


def _olt_counts(sequence: str) -> dict[str, dict[str, tuple[int, int]]]:
    """(successes, n) of each Table II cell from the text's confusion counts."""
    cm = papers.OLT_CONFUSION[sequence]
    tp, fn, tn, fp = cm["tp"], cm["fn"], cm["tn"], cm["fp"]
    return {
        "patient": {
            "precision": (tp, tp + fp),
            "recall": (tp, tp + fn),
            "f1": (2 * tp, 2 * tp + fp + fn),
        },
        "healthy": {
            "precision": (tn, tn + fn),
            "recall": (tn, tn + fp),
            "f1": (2 * tn, 2 * tn + fn + fp),
        },
    }


def check_olt_confusion(rows: CheckRows) -> None:
    """The text's confusion counts against Table I; accuracy, sensitivity, specificity."""
    olt = papers.OLT
    stated = "Wilson" if olt["ci_method"] == "Wilson score interval" else None
    for sequence, cm in papers.OLT_CONFUSION.items():
        tp, fn, tn, fp = cm["tp"], cm["fn"], cm["tn"], cm["fp"]
        test = papers.OLT_TABLE1[sequence]["test"]
        rows.add(
            OLT,
            f"{sequence}: text confusion counts vs Table I test set",
            f"{test['patient']} patient + {test['healthy']} healthy",
            f"{tp + fn} + {tn + fp}",
            "TP + FN, TN + FP",
            (tp + fn, tn + fp) == (test["patient"], test["healthy"]),
        )
        n = tp + fn + tn + fp
        accuracy: PrintedProportion = olt[sequence]["accuracy"]
        rows.percentage(OLT, f"{sequence} accuracy %", accuracy.value, tp + tn, n, True)
        rows.interval(
            OLT,
            f"{sequence} accuracy 95% CI",
            accuracy.low,
            accuracy.high,
            tp + tn,
            n,
            True,
            stated=stated,
        )
        if "sensitivity" in olt[sequence]:
            rows.percentage(
                OLT, f"{sequence} sensitivity %", olt[sequence]["sensitivity"], tp, tp + fn, True
            )
        if "specificity" in olt[sequence]:
            rows.percentage(
                OLT, f"{sequence} specificity %", olt[sequence]["specificity"], tn, tn + fp, True
            )


def check_olt_table2(rows: CheckRows) -> None:
    """Table II: precision, recall (with CIs) and F1 per class from the text's counts."""
    stated = "Wilson" if papers.OLT["ci_method"] == "Wilson score interval" else None
    for (sequence, cls), printed in papers.OLT_TABLE2_PRINTED.items():
        counts = _olt_counts(sequence)[cls]
        for metric in ("precision", "recall"):
            rate: PrintedProportion = printed[metric]
            successes, n = counts[metric]
            rows.percentage(
                OLT, f"Table II ({sequence}) {cls} {metric}", rate.value, successes, n, False
            )
            rows.interval(
                OLT,
                f"Table II ({sequence}) {cls} {metric} 95% CI",
                rate.low,
                rate.high,
                successes,
                n,
                False,
                stated=stated,
            )
        successes, n = counts["f1"]
        f1: Cell = printed["f1"]
        rows.add(
            OLT,
            f"Table II ({sequence}) {cls} F1",
            f"{f1}",
            f"{_rounded(successes / n, f1)} ({successes}/{n})",
            "F1 = 2 TP / (2 TP + FP + FN) from the text's confusion counts",
            f1.agrees(successes / n),
            note_if_inconsistent=f"printed {f1} is {_difference(f1, successes / n)}",
        )


def _listing(intervals: dict[str, tuple[float, float]], low: Cell, high: Cell) -> str:
    """'Wilson [0.88, 0.98], Wald [0.90, 0.99], ...' at the printed precision."""
    return ", ".join(
        f"{m} {_interval_text(_rounded(lo, low), _rounded(hi, high))}"
        for m, (lo, hi) in intervals.items()
    )


def check_olt_identical_cis(rows: CheckRows) -> None:
    """Table II CIs printed identically for different counts: can one method give both?"""
    cells = []
    for (sequence, cls), printed in papers.OLT_TABLE2_PRINTED.items():
        for metric in ("precision", "recall"):
            rate: PrintedProportion = printed[metric]
            successes, n = _olt_counts(sequence)[cls][metric]
            cells.append((f"({sequence}) {cls} {metric}", rate, successes, n))
    for i, (name_a, rate_a, k_a, n_a) in enumerate(cells):
        for name_b, rate_b, k_b, n_b in cells[i + 1 :]:
            same_ci = (rate_a.low, rate_a.high) == (rate_b.low, rate_b.high)
            if not same_ci or (k_a, n_a) == (k_b, n_b):
                continue
            low, high = rate_a.low, rate_a.high
            by_a = binomial_intervals(k_a, n_a, 1.0)
            by_b = binomial_intervals(k_b, n_b, 1.0)
            both = [
                m
                for m in CI_METHODS
                if _reproduces(low, high, by_a[m]) and _reproduces(low, high, by_b[m])
            ]
            only_a = [m for m in CI_METHODS if _reproduces(low, high, by_a[m]) and m not in both]
            only_b = [m for m in CI_METHODS if _reproduces(low, high, by_b[m]) and m not in both]

            misses = []
            for name, by, fits_other in ((name_a, by_a, only_b), (name_b, by_b, only_a)):
                for method in fits_other:
                    misses.append(
                        f"{name} by {method}: {_bound_misses(method, low, high, by[method])}"
                    )
            rows.add(
                OLT,
                f"Table II {name_a} and {name_b}: identical 95% CIs from different counts",
                f"both {_interval_text(low, high)}",
                f"{k_a}/{n_a}: {_listing(by_a, low, high)}; "
                f"{k_b}/{n_b}: {_listing(by_b, low, high)}",
                f"95% CIs of both counts by {', '.join(CI_METHODS)}: is there one method that "
                "gives the printed CI for both?",
                bool(both),
                note=f"reproduced for both by {', '.join(both)}" if both else "",
                note_if_inconsistent=(
                    "no method gives the same CI for both counts"
                    + (f"; only {name_a} is reproduced ({', '.join(only_a)})" if only_a else "")
                    + (f"; only {name_b} is reproduced ({', '.join(only_b)})" if only_b else "")
                    + (": the other cell looks copied; " + "; ".join(misses) if misses else "")
                ),
            )


def check_olt_misplaced_cells(rows: CheckRows) -> None:
    """Table II's '(T1) Healthy' row: its AUC and accuracy cells against T1's and T2's."""
    olt = papers.OLT
    cm1, cm2 = papers.OLT_CONFUSION["T1"], papers.OLT_CONFUSION["T2"]
    printed = papers.OLT_TABLE2_PRINTED[("T1", "healthy")]
    accuracy_cell: PrintedProportion = printed["accuracy"]
    n_t1, n_t2 = sum(cm1.values()), sum(cm2.values())
    accuracy_t1 = 100 * (cm1["tp"] + cm1["tn"]) / n_t1
    accuracy_t2 = 100 * (cm2["tp"] + cm2["tn"]) / n_t2
    low_t2, high_t2 = binomial_intervals(cm2["tp"] + cm2["tn"], n_t2, 100.0)["Wilson"]
    t2_interval = _interval_text(
        _rounded(low_t2, accuracy_cell.low), _rounded(high_t2, accuracy_cell.high)
    )
    rows.add(
        OLT,
        "Table II (T1) Healthy row: accuracy cell = T1 accuracy",
        f"{accuracy_cell.value}% {_interval_text(accuracy_cell.low, accuracy_cell.high)}",
        f"{_rounded(accuracy_t1, accuracy_cell.value)}",
        "T1 (TP + TN) / n from the text's counts",
        accuracy_cell.value.agrees(accuracy_t1),
        f"the cell equals T2's accuracy {_rounded(accuracy_t2, accuracy_cell.value)}% {t2_interval}"
        if accuracy_cell.value.agrees(accuracy_t2)
        else "",
        note_if_inconsistent=f"printed {accuracy_cell.value} is "
        f"{_difference(accuracy_cell.value, accuracy_t1)} than T1's accuracy",
    )
    auc_cell: PrintedAuc = printed["auc"]
    auc_t1, auc_t2 = olt["T1"]["auc"], olt["T2"]["auc"]
    rows.add(
        OLT,
        "Table II (T1) Healthy row: AUC cell = T1 AUC",
        f"{auc_cell.value} {_interval_text(auc_cell.low, auc_cell.high)}",
        f"{auc_t1.value} {_interval_text(auc_t1.low, auc_t1.high)}",
        "T1 AUC as printed on the (T1) Patient row and in the text (one AUC per model)",
        auc_cell.value.value == auc_t1.value.value,
        "the cell holds T2's AUC from the text"
        if (auc_cell.value, auc_cell.low, auc_cell.high) == (auc_t2.value, auc_t2.low, auc_t2.high)
        else "",
        note_if_inconsistent=f"printed {auc_cell.value} is "
        f"{_difference(auc_cell.value, auc_t1.value.value)} than T1's {auc_t1.value}",
    )


def check_olt_auc(rows: CheckRows) -> None:
    """AUC CIs 'using the Wilson score interval method', and the claim that T2 trails T1."""
    olt = papers.OLT
    standard_errors = {}
    for sequence, cm in papers.OLT_CONFUSION.items():
        auc: PrintedAuc = olt[sequence]["auc"]
        n_pos, n_neg = cm["tp"] + cm["fn"], cm["tn"] + cm["fp"]
        n_images = n_pos + n_neg
        se = hanley_mcneil_se(auc.value.value, n_pos, n_neg)
        standard_errors[sequence] = (auc.value.value, se, n_images)
        hm_low, hm_high = auc.value.value - Z95 * se, min(1.0, auc.value.value + Z95 * se)
        rows.add(
            OLT,
            f"{sequence} AUC 95% CI method",
            olt["ci_method"],
            f"{olt['ci_method']} applies to a {METHOD_SCOPE[olt['ci_method']]}",
            "scope of the named method",
            METHOD_SCOPE[olt["ci_method"]] == "AUC",
            note_if_inconsistent="an AUC is not a proportion of independent trials; a CI made "
            f"for an AUC from these counts (Hanley & McNeil 1982: {n_pos} positives, {n_neg} "
            f"negatives, AUC +- 1.96 SE) is "
            f"{_interval_text(_rounded(hm_low, auc.low), _rounded(hm_high, auc.high))}, "
            f"{(hm_high - hm_low) / (auc.high.value - auc.low.value):.1f} times as wide as the "
            "printed one; DeLong would need the scores",
        )
        # AUC = U / (n_pos n_neg), U a multiple of 1/2; keep those that round to the printed AUC.
        attainable = np.arange(0, 2 * n_pos * n_neg + 1) / (2.0 * n_pos * n_neg)
        attainable = attainable[np.abs(attainable - auc.value.value) <= auc.value.half_unit + 1e-12]
        lows, highs = proportion_confint(attainable * n_images, n_images, method="wilson")
        fits = attainable[
            (np.abs(lows - auc.low.value) <= auc.low.half_unit + 1e-9)
            & (np.abs(highs - auc.high.value) <= auc.high.half_unit + 1e-9)
        ]
        low_at, high_at = proportion_confint(auc.value.value * n_images, n_images, method="wilson")
        rows.add(
            OLT,
            f"{sequence} AUC 95% CI: reproduced by Wilson on the AUC (n = {n_images} images)",
            _interval_text(auc.low, auc.high),
            _interval_text(_rounded(low_at, auc.low), _rounded(high_at, auc.high))
            + (
                f" at AUC {auc.value}; printed CI reached for AUC {fits.min():.4f}-{fits.max():.4f}"
                if fits.size
                else f" at AUC {auc.value}; no AUC that rounds to {auc.value} gives the printed CI"
            ),
            f"Wilson score interval of AUC x {n_images} successes in {n_images} test images, for "
            f"every attainable AUC (U / ({n_pos} x {n_neg})) that rounds to the printed one",
            bool(fits.size),
            "the stated method was used as stated (its validity for an AUC is the row above)"
            if fits.size
            else "",
        )
    (auc_t1, se_t1, n_t1), (auc_t2, se_t2, n_t2) = standard_errors["T1"], standard_errors["T2"]
    z = (auc_t1 - auc_t2) / math.hypot(se_t1, se_t2)
    pvalue = 2 * float(norm.sf(abs(z)))
    rows.add(
        OLT,
        "text: T2 AUC 'statistically trails' T1",
        f"T1 {auc_t1:g} > T2 {auc_t2:g}, significant",
        f"z = {z:.2f}, p = {pvalue:.2f}",
        "two independent AUCs, Hanley-McNeil SEs (the paper names no test)",
        pvalue < 0.05,
        note_if_inconsistent=f"a {auc_t1 - auc_t2:.2f} difference on {n_t1} and {n_t2} test "
        "images is not significant",
    )


#: The checks in the order of the output table.
CHECKS = (
    check_gout_table1_rates,
    check_gout_table1_counts,
    check_gout_test_images,
    check_gout_cohort,
    check_gout_diagnosis,
    check_gout_table3,
    check_gout_thresholds,
    check_gout_claims,
    check_gout_gradcam,
    check_olt_table1,
    check_olt_text_statements,
    check_olt_confusion,
    check_olt_table2,
    check_olt_identical_cis,
    check_olt_misplaced_cells,
    check_olt_auc,
)


def paper_check() -> pd.DataFrame:
    """Recompute the papers' summary numbers from their printed counts; flag what disagrees.

    Each row is one computation: ``printed`` (the paper's text), ``recomputed`` (ours, rounded
    to the printed precision), ``method`` (how), ``consistent`` (True if the printed value is
    reproduced to its printed precision, or the printed claim holds), ``note`` (for a
    disagreement: from which printed numbers, by how much, which bound misses).
    """
    rows = CheckRows()
    for check in CHECKS:
        check(rows)
    return pd.DataFrame(rows.rows, columns=COLUMNS)


def write_paper_check(csv: str | Path, md: str | Path) -> None:
    from mskdx.evaluate.markdown import write_table_pair

    table = paper_check()
    bad = int((~table["consistent"].astype(bool)).sum())
    log.info("paper check: %d of %d printed values cannot be reproduced", bad, len(table))
    write_table_pair(table, csv, md, "Printed numbers of the two papers, recomputed")
