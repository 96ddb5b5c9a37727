"""Recompute the two papers' summary numbers from their own printed counts; grade what disagrees.

`paper_check` returns one graded row per recomputation (see `mskdx.evaluate.papers.common`),
the gout paper's rows first (`gout`: Table I, cohort, claims, Grad-CAM; `gout_pvalues`:
Table I's McNemar p-values; `gout_patients`: Table III and the text's diagnosis), then the OLT
paper's (`olt`); `write_paper_check` writes them as CSV and Markdown under a summary of the
grades (rule check_papers).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from mskdx.evaluate.papers.common import (
    COLUMNS,
    GRADES,
    INCONSISTENT,
    UNEXPLAINED,
    CheckRows,
)
from mskdx.evaluate.papers.gout import (
    check_gout_abstract,
    check_gout_claims,
    check_gout_cohort,
    check_gout_gradcam,
    check_gout_gradcam_vs_table1,
    check_gout_table1_counts,
    check_gout_table1_rates,
    check_gout_test_images,
)
from mskdx.evaluate.papers.gout_patients import (
    check_gout_copied_folds,
    check_gout_diagnosis,
    check_gout_diagnosis_vs_table3,
    check_gout_table3,
    check_gout_threshold_grid,
    check_gout_thresholds,
)
from mskdx.evaluate.papers.gout_pvalues import check_gout_mcnemar
from mskdx.evaluate.papers.olt import (
    check_olt_auc,
    check_olt_confusion,
    check_olt_identical_cis,
    check_olt_misplaced_cells,
    check_olt_rates_vs_table2,
    check_olt_split_unit,
    check_olt_table1,
    check_olt_table2,
    check_olt_text_statements,
)

log = logging.getLogger(__name__)

__all__ = ["CHECKS", "paper_check", "summarise_grades", "write_paper_check"]


#: The checks in the order of the output table.
CHECKS = (
    check_gout_table1_rates,
    check_gout_table1_counts,
    check_gout_mcnemar,
    check_gout_test_images,
    check_gout_cohort,
    check_gout_diagnosis,
    check_gout_diagnosis_vs_table3,
    check_gout_table3,
    check_gout_copied_folds,
    check_gout_thresholds,
    check_gout_threshold_grid,
    check_gout_claims,
    check_gout_abstract,
    check_gout_gradcam,
    check_gout_gradcam_vs_table1,
    check_olt_table1,
    check_olt_split_unit,
    check_olt_text_statements,
    check_olt_confusion,
    check_olt_rates_vs_table2,
    check_olt_table2,
    check_olt_identical_cis,
    check_olt_misplaced_cells,
    check_olt_auc,
)


def paper_check() -> pd.DataFrame:
    """Recompute the papers' summary numbers from their printed counts; grade what disagrees.

    Each row is one computation: ``printed`` (the paper's text), ``recomputed`` (ours, rounded
    to the printed precision), ``method`` (how), ``grade`` (consistent, unexplained or
    inconsistent; see `mskdx.evaluate.papers.common`), ``consistent`` (True exactly when the
    grade is consistent: the printed value is reproduced to its printed precision, or the
    printed claim holds), ``note`` (for a flag: from which printed numbers, by how much, which
    bound misses; for an unexplained row the method the paper does not name that would give it).
    """
    rows = CheckRows()
    for check in CHECKS:
        check(rows)
    return pd.DataFrame(rows.rows, columns=COLUMNS)


def summarise_grades(table: pd.DataFrame) -> str:
    """'138 rows: 87 consistent, 21 unexplained, 30 inconsistent (gout: 20 inconsistent, ...)'."""
    counts = table["grade"].value_counts()
    text = f"{len(table)} rows: " + ", ".join(f"{int(counts.get(g, 0))} {g}" for g in GRADES)
    per_paper = "; ".join(
        f"{paper}: {int((part['grade'] == INCONSISTENT).sum())} inconsistent, "
        f"{int((part['grade'] == UNEXPLAINED).sum())} unexplained"
        for paper, part in table.groupby("paper", sort=False)
    )
    return f"{text} ({per_paper})"


#: The legend under the Markdown summary.
GRADE_LEGEND = (
    "**consistent**: reproduced from the paper's own numbers, or the claim holds. "
    "**unexplained**: not reproduced, but a plausible method the paper does not name would give "
    "it (the note says which). **inconsistent**: no method can give it (an interval narrower "
    "than every binomial interval of its printed counts, parts that do not add up, a claim its "
    "own table contradicts)."
)


def write_paper_check(csv: str | Path, md: str | Path) -> None:
    """Write `paper_check` to `csv`, and to `md` under a summary of the grades; log the summary."""
    from mskdx.evaluate.markdown import to_markdown
    from mskdx.io import write_table, write_text

    table = paper_check()
    summary = summarise_grades(table)
    log.info("paper check: %s", summary)
    write_table(table, csv)
    write_text(
        md,
        "### Printed numbers of the two papers, recomputed\n\n"
        f"{summary}.\n\n{GRADE_LEGEND}\n\n" + to_markdown(table),
    )
