"""Recompute the two papers' summary numbers from their own printed counts; flag what disagrees.

`paper_check` returns one row per recomputation (see `mskdx.evaluate.papers.common.CheckRows`),
the gout paper's rows first (`gout`: Table I, cohort, claims, Grad-CAM; `gout_patients`:
Table III and the text's diagnosis), then the OLT paper's (`olt`); `write_paper_check` writes
them as CSV and Markdown (rule check_papers).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from mskdx.evaluate.papers.common import COLUMNS, CheckRows
from mskdx.evaluate.papers.gout import (
    check_gout_claims,
    check_gout_cohort,
    check_gout_gradcam,
    check_gout_table1_counts,
    check_gout_table1_rates,
    check_gout_test_images,
)
from mskdx.evaluate.papers.gout_patients import (
    check_gout_diagnosis,
    check_gout_table3,
    check_gout_thresholds,
)
from mskdx.evaluate.papers.olt import (
    check_olt_auc,
    check_olt_confusion,
    check_olt_identical_cis,
    check_olt_misplaced_cells,
    check_olt_table1,
    check_olt_table2,
    check_olt_text_statements,
)

log = logging.getLogger(__name__)

__all__ = ["CHECKS", "paper_check", "write_paper_check"]


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
    """Write `paper_check` to `csv` and its Markdown rendering to `md`; log the count of flags."""
    from mskdx.evaluate.markdown import write_table_pair

    table = paper_check()
    bad = int((~table["consistent"].astype(bool)).sum())
    log.info("paper check: %d of %d printed values cannot be reproduced", bad, len(table))
    write_table_pair(table, csv, md, "Printed numbers of the two papers, recomputed")
