"""The two papers: their printed numbers (`printed`) and a check of those numbers (`check`).

`mskdx.papers.printed` holds the transcribed tables and text numbers; they are re-exported here,
so ``from mskdx.papers import GOUT_TABLE1`` works. `mskdx.papers.check.paper_check` recomputes
the papers' summary numbers from their own counts; it is not imported here, so reading the
printed numbers (the tables, `mskdx.models.complexity_table`) does not load the statistics.
"""

from mskdx.papers.printed import (
    GOUT,
    GOUT_ARM_LABELS,
    GOUT_TABLE1,
    GOUT_TABLE2,
    GOUT_TABLE3,
    OLT,
    OLT_CONFUSION,
    OLT_TABLE1,
    OLT_TABLE2,
    OLT_TABLE2_PRINTED,
    Cell,
    PrintedAuc,
    PrintedProportion,
    gout_table2,
)

__all__ = [
    "Cell",
    "GOUT",
    "GOUT_ARM_LABELS",
    "GOUT_TABLE1",
    "GOUT_TABLE2",
    "gout_table2",
    "GOUT_TABLE3",
    "OLT",
    "OLT_CONFUSION",
    "OLT_TABLE1",
    "OLT_TABLE2",
    "OLT_TABLE2_PRINTED",
    "PrintedAuc",
    "PrintedProportion",
]
