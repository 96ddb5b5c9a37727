"""Glue for the workflow's table, figure and Grad-CAM rules: read inputs, call the library, write.

Each function here is what one rule's script calls; the statistics, plotting and Grad-CAM logic
live in `mskdx.stats`, `mskdx.tables`, `mskdx.figures` and `mskdx.gradcam`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mskdx.io import atomic_path, read_table, write_table, write_text

log = logging.getLogger(__name__)
PathLike = str | Path


def read_predictions(paths: Sequence[PathLike]) -> pd.DataFrame:
    """Concatenate prediction tables (schema `predictions`) of several jobs."""
    return pd.concat([read_table(p, "predictions") for p in paths], ignore_index=True)


def write_table_pair(df: pd.DataFrame, csv: PathLike, md: PathLike, title: str) -> None:
    """Write a result table as CSV (machine-readable) and Markdown (for people)."""
    from mskdx.tables import to_markdown

    write_table(df, csv)
    write_text(md, to_markdown(df, title))


# ---- tables ---------------------------------------------------------------------------------


def write_complexity_table(arms: dict, input_shape: tuple[int, int, int], csv: PathLike, md: PathLike) -> None:
    from mskdx.models import complexity_table

    table = complexity_table(arms, input_shape)
    write_table_pair(table, csv, md, "Gout Table II: parameters and MACs per arm (ours vs paper)")


def write_image_level_table(
    predictions: Sequence[PathLike], *, best_arm: str, image_threshold: float, csv: PathLike, md: PathLike
) -> None:
    from mskdx.tables import gout_image_table

    table = gout_image_table(read_predictions(predictions), best_arm=best_arm, image_threshold=image_threshold)
    write_table_pair(table, csv, md, "Gout Table I: image-level performance on the test folds")


def write_patient_level_table(
    predictions: Sequence[PathLike], *, step: float, image_threshold: float, csv: PathLike, md: PathLike,
    curves: PathLike,
) -> None:
    from mskdx.tables import gout_patient_table

    table, curve_table = gout_patient_table(
        read_predictions(predictions), step=step, image_threshold=image_threshold
    )
    write_table(curve_table, curves)
    write_table_pair(table, csv, md, "Gout Table III: patient-level diagnosis per fold")


def write_sequence_table(
    predictions: Sequence[PathLike], *, image_threshold: float, csv: PathLike, md: PathLike
) -> None:
    from mskdx.tables import olt_table

    table = olt_table(read_predictions(predictions), image_threshold=image_threshold)
    write_table_pair(table, csv, md, "OLT Table II: performance per MRI sequence on the test set")


def write_paper_check(csv: PathLike, md: PathLike) -> None:
    from mskdx.tables import paper_check

    table = paper_check()
    bad = int((~table["consistent"].astype(bool)).sum())
    log.info("paper check: %d of %d printed values cannot be reproduced", bad, len(table))
    write_table_pair(table, csv, md, "Printed numbers of the two papers, recomputed")
