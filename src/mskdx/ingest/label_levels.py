"""Which label a table's rows carry: the image's own (an image label sheet) or the patient's.

Pure pandas, no DICOM stack: later stages (splits, tables, calibration, subgroups, the checklist,
model cards) import it to take the patient's diagnosis (`patient_label`) for patient-level
analyses while image-level ones keep `label` (`mskdx.ingest.image_labels` writes both).
"""

from __future__ import annotations

import pandas as pd


def label_note(table: pd.DataFrame) -> str:
    """What an image's `label` is in `table` (manifest or predictions), for a table's notes."""
    if "patient_label" in table.columns and (table["label"] != table["patient_label"]).any():
        return "image labels from the image label sheet; patients by their diagnosis"
    return (
        "image labels are the patient's diagnosis (no image label sheet, or one that agrees "
        "with the patient sheet on every image)"
    )


def patient_level(table: pd.DataFrame) -> pd.DataFrame:
    """`table` with `label` = the patient's diagnosis (`patient_label`, where present): the
    label of patient-level analyses (Table III, splits). Tables without `patient_label` (written
    before image labels, or without an image sheet) already hold the patient's diagnosis."""
    if "patient_label" not in table.columns or table["patient_label"].isna().all():
        return table
    return table.assign(label=table["patient_label"])
