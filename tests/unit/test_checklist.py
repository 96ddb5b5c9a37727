"""The reporting checklist is filled from the run's own files and settings."""

from __future__ import annotations

import pandas as pd
import pytest
from test_train import GOUT_ARM, GOUT_TRAIN, make_cohort

from mskdx.evaluate import checklist
from mskdx.io import write_table

SETTINGS = {
    "source": "synthetic",
    "on_error": "stop",
    "seed": 11,
    "modalities": ["US"],
    "preprocess": {"kind": "ultrasound", "crop_width": 700, "crop_height": 320},
    "splits": {"method": "kfold", "folds": 2},
    "arms": {"blocks3": GOUT_ARM},
    "train": GOUT_TRAIN,
    "external": [],
}


@pytest.fixture()
def run_files(tmp_path):
    paths = make_cohort(tmp_path)
    refused = tmp_path / "refused.csv"
    write_table(
        pd.DataFrame([{"file_key": "F-0", "reason": "not_dicom", "message": "no preamble"}]),
        refused,
    )
    return {"manifest": paths["manifest"], "splits": paths["splits"], "refused": refused}


def test_facts_come_from_the_run(run_files):
    facts = checklist.study_facts(study="gout", settings=SETTINGS, **run_files)
    assert facts["images"].startswith("24 images of 8 patients (4 positive, 4 negative")
    assert facts["refused"].startswith("1 files refused")
    assert "fold 0: test 2 patients/6 images" in facts["splits"]
    assert facts["leakage"] == "each patient is in one test fold only"
    assert "torch" in facts["versions"]


def test_items_are_marked_and_external_validation_follows_the_config(run_files, tmp_path):
    table = checklist.checklist_table(
        checklist.study_facts(study="gout", settings=SETTINGS, **run_files), "gout"
    )
    assert set(table["status"]) == {"reported", "partly", "authors"}
    assert set(table["guideline"]) == {"CLAIM 2024", "TRIPOD+AI"}
    external = table[table["topic"] == "validation on external data"].iloc[0]
    assert external["status"] == "partly"
    with_site = {**SETTINGS, "external": ["site_b"]}
    table = checklist.checklist_table(
        checklist.study_facts(study="gout", settings=with_site, **run_files), "gout"
    )
    assert table.loc[table["topic"] == "validation on external data", "status"].item() == "reported"
    # reported items say where to look; items only authors can answer are marked as such
    assert (table.loc[table["status"] == "reported", "where"] != "").all()
    assert table.loc[table["topic"] == "funding and role of funders", "status"].item() == "authors"
    checklist.write_checklist(
        study="gout",
        settings=with_site,
        csv=tmp_path / "c.csv",
        md=tmp_path / "c.md",
        **run_files,
    )
    assert "CLAIM 2024" in (tmp_path / "c.md").read_text()
