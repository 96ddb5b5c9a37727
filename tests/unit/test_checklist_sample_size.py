"""The checklist's sample-size items are filled from the precision table (issue 37)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mskdx.evaluate.checklist import fill
from mskdx.evaluate.checklist.sample_size import fill_sample_size_items, sample_size_evidence
from mskdx.evaluate.precision import precision_table, riley_sample_size

FACTS = {
    key: f"<{key}>"
    for key in (
        "source images refused modalities preprocess splits leakage arms initialisation "
        "training select normalization class_weights repeats versions image_labels"
    ).split()
} | {"external": "site B"}


def _cohort(patients: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for arm in ("a", "b"):
        for g in range(patients):
            label, u = g % 2, rng.normal()
            for _ in range(3):
                prob = 1 / (1 + np.exp(-(-1 + 2 * label + u + rng.normal(0, 0.5))))
                rows.append({"arm": arm, "patient": f"P-{g:04d}", "label": label, "prob": prob})
    frame = pd.DataFrame(rows)
    frame["call"] = (frame["prob"] > 0.5).astype(int)
    return frame


@pytest.fixture(scope="module")
def precision():
    cohorts = {"site B": _cohort(240, 2), "development": _cohort(60, 1)}
    plan = riley_sample_size(0.288, 24, 0.174)
    return precision_table(cohorts, external=["site B"], riley=plan)


def test_evidence_names_the_numbers_of_each_cohort(precision):
    text = sample_size_evidence(precision)
    dev, ext = text.split("; site B: ")
    assert dev.startswith("development: 180 images of 60 patients (30 positive, 30 negative)")
    assert "criterion needs 385 patients (60 here), their full minimum 662 (not met)" in dev
    assert ext.startswith("720 images of 240 patients (120 positive, 120 negative)")
    assert "reaches the 100 events and non-events commonly required" in ext
    row = precision[(precision.cohort == "development") & (precision.arm == "a")].iloc[0]
    assert f"{row.auc_half_width:.3f}" in dev


def test_only_the_sample_size_items_change(precision):
    table = fill.checklist_table(FACTS, "gout")
    filled = fill_sample_size_items(table, precision, "gout")
    changed = (filled != table).any(axis=1)
    items = set(zip(filled[changed].guideline, filled[changed].item, strict=True))
    assert items == {("CLAIM 2024", "21"), ("TRIPOD+AI", "10")}
    for _, row in filled[changed].iterrows():
        assert row.status == "partly"
        assert row.evidence.startswith("<images>; development: ")
        assert row["where"] == "results/gout/tables/precision.csv"


def test_a_checklist_without_the_items_is_refused(precision):
    table = fill.checklist_table(FACTS, "gout")
    table = table[table.item != "10"]
    with pytest.raises(ValueError, match="TRIPOD\\+AI item 10 found 0 times"):
        fill_sample_size_items(table, precision, "gout")
