"""Gout paper (Xiao et al. 2025), patient level: Table III's folds and the text's diagnosis.

Table III prints, per test fold, the 3-block model's patient-level ACC, SEN and SPE (%) and its
threshold. `fold_compositions` finds every patient count behind a fold's rates (exhaustively),
from which the checks ask whether the folds can add up to the cohort, whether the 'average' row
is the mean of the folds or their pooled rate, and whether the text's diagnostic CIs are
binomial intervals of those counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from mskdx.evaluate.papers import printed as papers
from mskdx.evaluate.papers.common import GOUT, Z95, CheckRows, identical_rows, rounded
from mskdx.evaluate.papers.printed import Cell, PrintedProportion

__all__ = [
    "check_gout_copied_folds",
    "check_gout_diagnosis",
    "check_gout_diagnosis_vs_table3",
    "check_gout_table3",
    "check_gout_threshold_grid",
    "check_gout_thresholds",
    "fold_compositions",
]

#: (gout patients, control patients, true positives, true negatives) of one test fold.
Composition = tuple[int, int, int, int]
#: Table III's fold rows as (name, cells).
Folds = list[tuple[str, dict[str, Cell]]]


def fold_compositions(
    accuracy: Cell, sensitivity: Cell, specificity: Cell, max_positive: int, max_negative: int
) -> list[Composition]:
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


def _table3_folds() -> Folds:
    """Table III's fold rows (without the average) as (name, cells)."""
    return [(name, row) for name, row in papers.GOUT_TABLE3.items() if name != "average"]


def _pooled_smallest(
    smallest: list[Composition | None],
) -> dict[str, tuple[int, int]]:
    """(successes, n) of ACC, SEN, SPE over all folds' smallest compositions; {} if one lacks."""
    if not smallest or None in smallest:
        return {}
    n_pos, n_neg, tp, tn = (sum(c[i] for c in smallest) for i in range(4))
    return {"acc": (tp + tn, n_pos + n_neg), "sen": (tp, n_pos), "spe": (tn, n_neg)}


def _smallest_compositions() -> list[Composition | None]:
    """Per Table III fold, the composition with the fewest patients (None if there is none)."""
    gout = papers.GOUT
    out = []
    for _, row in _table3_folds():
        options = fold_compositions(
            row["acc"], row["sen"], row["spe"], gout["patients_gout"], gout["patients_control"]
        )
        out.append(min(options, key=lambda c: (c[0] + c[1], c)) if options else None)
    return out


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
        counts_printed = key == "acc"
        if counts_printed:
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
            counts_printed=counts_printed,
            extra=extra,
            explain={
                spread_label: f"Table III's five fold {key.upper()} values, sample SD: a range of "
                "the fold values, not a CI of their mean, which would be sqrt(5) = 2.2 times "
                "narrower"
            },
        )


def check_gout_table3(rows: CheckRows) -> None:
    """Table III: the patient counts behind each fold, its 'average' row, the folds' totals."""
    folds = _table3_folds()
    options, smallest = _check_fold_counts(rows, folds)
    _check_average_row(rows, folds, smallest)
    _check_average_threshold(rows, folds)
    _check_folds_add_up(rows, folds, options, smallest)


def _check_fold_counts(
    rows: CheckRows, folds: Folds
) -> tuple[list[set[tuple[int, int]]], list[Composition | None]]:
    """One row per fold: the patient counts whose rates round to the fold's ACC/SEN/SPE.

    Returns, per fold, the admissible (gout, control) patient counts and the smallest
    composition (None where there is none).
    """
    gout = papers.GOUT
    max_gout, max_control = gout["patients_gout"], gout["patients_control"]
    options: list[set[tuple[int, int]]] = []
    smallest: list[Composition | None] = []
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
    return options, smallest


def _check_average_row(rows: CheckRows, folds: Folds, smallest: list[Composition | None]) -> None:
    """The 'average' row: the mean of the fold values, or the rates pooled over the folds."""
    average = papers.GOUT_TABLE3["average"]
    metrics = (("acc", "ACC"), ("sen", "SEN"), ("spe", "SPE"))
    means = {key: float(np.mean([row[key].value for _, row in folds])) for key, _ in metrics}
    pooled = _pooled_smallest(smallest)
    is_mean = all(average[key].agrees(means[key]) for key, _ in metrics)
    is_pooled = bool(pooled) and all(
        average[key].agrees(100 * k / n) for key, (k, n) in pooled.items()
    )
    mean_text = " / ".join(rounded(means[key], average[key]) for key, _ in metrics)
    pooled_text = (
        " / ".join(
            f"{rounded(100 * k / n, average[key])} ({k}/{n})" for key, (k, n) in pooled.items()
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
        note_if_flagged="neither the mean of the folds nor the pooled rates",
    )


def _check_average_threshold(rows: CheckRows, folds: Folds) -> None:
    """The 'average' threshold against the mean of the fold thresholds."""
    threshold = papers.GOUT_TABLE3["average"]["threshold"]
    threshold_mean = float(np.mean([row["threshold"].value for _, row in folds]))
    rows.add(
        GOUT,
        "Table III average threshold = mean of folds",
        f"{threshold}",
        rounded(threshold_mean, threshold),
        "mean of the five printed fold thresholds",
        threshold.agrees(threshold_mean),
    )


def _check_folds_add_up(
    rows: CheckRows,
    folds: Folds,
    options: list[set[tuple[int, int]]],
    smallest: list[Composition | None],
) -> None:
    """Can one admissible composition per fold add up to the cohort, in folds of about 52?"""
    gout = papers.GOUT
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
        note_if_flagged="no fold composition reproduces Table III's per-fold percentages "
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
            note_if_flagged="the text's list and Table III disagree",
        )
    average = gout["text_threshold_average"]
    text_mean = float(np.mean([c.value for c in gout["text_thresholds"]]))
    table_mean = float(np.mean([row["threshold"].value for _, row in folds]))
    rows.add(
        GOUT,
        "text threshold average = mean of the text's thresholds",
        f"{average}",
        rounded(text_mean, average),
        "mean",
        average.agrees(text_mean),
        note_if_flagged=f"mean {text_mean:.3f}; {average} is the mean of Table III's "
        f"thresholds ({table_mean:.3f}), which differ from the text's list in one fold"
        if average.agrees(table_mean)
        else f"mean {text_mean:.3f}",
    )
    rows.add(
        GOUT,
        "abstract threshold = mean of Table III thresholds",
        f"{gout['abstract_threshold']}",
        rounded(table_mean, gout["abstract_threshold"]),
        "mean",
        gout["abstract_threshold"].agrees(table_mean),
    )


def check_gout_copied_folds(rows: CheckRows) -> None:
    """Table III rows identical in every cell, against the text's own value for each fold.

    Two folds of the same size can share their rates and threshold by chance, so identical
    rows alone are no flag; they are inconsistent where the text gives the two folds different
    values (its list of fold thresholds): then one row repeats the other in place of its own.
    """
    folds = _table3_folds()
    table = dict(folds)
    text = dict(zip(table, papers.GOUT["text_thresholds"], strict=True))
    pairs = identical_rows(table)
    contradicted = [(a, b) for a, b in pairs if text[a] != text[b]]
    cells = ("acc", "sen", "spe", "threshold")
    rows.add(
        GOUT,
        "Table III: fold rows identical in every cell",
        "; ".join(f"{a} = {b}: " + " / ".join(str(table[a][c]) for c in cells) for a, b in pairs)
        or "no two folds identical",
        "; ".join(f"text thresholds: {a} {text[a]}, {b} {text[b]}" for a, b in pairs) or "-",
        "every pair of fold rows compared cell by cell (ACC, SEN, SPE, threshold), then with "
        "the text's list of fold thresholds",
        not contradicted,
        note="identical rows are possible for two folds of the same size; the text gives them "
        "the same threshold"
        if pairs and not contradicted
        else "",
        note_if_flagged="; ".join(
            f"{b} repeats {a} in every cell, but the text's thresholds differ ({a} {text[a]}, "
            f"{b} {text[b]}): {b}'s row looks copied from {a}'s"
            for a, b in contradicted
        ),
    )


def check_gout_threshold_grid(rows: CheckRows) -> None:
    """Every fold threshold, in Table III and in the text, on the searched grid (0 to 1 by 0.02)."""
    step = papers.GOUT["threshold_step"]
    values = [(f"Table III {name}", row["threshold"]) for name, row in _table3_folds()] + [
        (f"text fold {i}", cell) for i, cell in enumerate(papers.GOUT["text_thresholds"], 1)
    ]
    off = [
        (name, cell)
        for name, cell in values
        if abs(cell.value / step - round(cell.value / step)) > 1e-6
    ]
    rows.add(
        GOUT,
        f"fold thresholds on the searched grid (0 to 1 by {step:g})",
        ", ".join(str(cell) for _, cell in values),
        "all on the grid" if not off else "off the grid: " + ", ".join(f"{n} {c}" for n, c in off),
        f"'Set the threshold from 0 to 1 (interval of {step:g})': each threshold a multiple of "
        f"{step:g}",
        not off,
    )


def check_gout_diagnosis_vs_table3(rows: CheckRows) -> None:
    """The text's diagnostic accuracy, sensitivity and specificity against Table III's average."""
    gout, average = papers.GOUT, papers.GOUT_TABLE3["average"]
    keys = (("diagnostic_accuracy", "acc"), ("diagnostic_sensitivity", "sen"))
    keys += (("diagnostic_specificity", "spe"),)
    text = [gout[name].value for name, _ in keys]
    table = [average[key] for _, key in keys]
    rows.add(
        GOUT,
        "text diagnostic ACC / SEN / SPE = Table III average",
        " / ".join(map(str, text)),
        " / ".join(map(str, table)),
        "the same cells (the text cites Table III)",
        text == table,
    )
