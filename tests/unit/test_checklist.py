"""The reporting checklist is filled from the run's own files and settings."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_train import GOUT_ARM, GOUT_TRAIN, make_cohort

from mskdx.evaluate.checklist import facts, fill
from mskdx.io import read_table, write_table

ROOT = Path(__file__).resolve().parents[2]
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
# The numbers as the guidelines print them: CLAIM 2024 (Radiol Artif Intell 2024;6:e240300) and
# TRIPOD+AI (BMJ 2024;385:e078378), 27 items with their subitems.
CLAIM_ITEMS = [str(i) for i in range(1, 45)]
TRIPOD_ITEMS = (
    "1 2 3a 3b 3c 4 5a 5b 6a 6b 6c 7 8a 8b 8c 9a 9b 9c 10 11 12a 12b 12c 12d 12e 12f 12g 13 14 15 "
    "16 17 18a 18b 18c 18d 18e 18f 19 20a 20b 20c 21 22 23a 23b 24 25 26 27a 27b 27c"
).split()


@pytest.fixture()
def run_files(tmp_path):
    paths = make_cohort(tmp_path)
    refused = tmp_path / "refused.csv"
    write_table(
        pd.DataFrame([{"file_key": "F-0", "reason": "not_dicom", "message": "no preamble"}]),
        refused,
    )
    return {"manifest": paths["manifest"], "splits": paths["splits"], "refused": refused}


def _item(table: pd.DataFrame, guideline: str, number: str) -> pd.Series:
    return table[(table["guideline"] == guideline) & (table["item"] == number)].iloc[0]


def test_facts_come_from_the_run(run_files):
    found = facts.study_facts(study="gout", settings=SETTINGS, **run_files)
    assert found["images"].startswith("24 images of 8 patients (4 positive, 4 negative")
    assert found["refused"].startswith("1 files refused")
    assert "fold 0: test 2 patients/6 images" in found["splits"]
    assert found["leakage"] == "each patient is in one test fold only"
    assert "torch" in found["versions"]
    assert found["repeats"].startswith("1 split x 1 training run per fold")
    repeated = {**SETTINGS, "splits": {**SETTINGS["splits"], "repeats": 3},
                "train": {**SETTINGS["train"], "repeats": 2}}  # fmt: skip
    found = facts.study_facts(study="gout", settings=repeated, **run_files)
    assert found["repeats"].startswith("3 splits x 2 training runs per fold")
    holdout = {**SETTINGS, "splits": {"method": "holdout", "fractions": [0.6, 0.2, 0.2]}}
    assert facts._repeats(holdout["splits"], {}).startswith("one holdout split")
    assert found["image_labels"].startswith("image label = patient label")


def test_the_reference_standard_says_where_the_image_labels_came_from(run_files, tmp_path):
    manifest = read_table(run_files["manifest"], "manifest")
    manifest = manifest.assign(patient_label=manifest["label"])
    first = manifest.groupby("patient").cumcount() == 0
    manifest.loc[first & (manifest["label"] == 1), "label"] = 0  # a normal image per gout patient
    write_table(manifest, tmp_path / "manifest.csv", schema="manifest")
    found = facts.study_facts(
        study="gout", settings=SETTINGS, **{**run_files, "manifest": tmp_path / "manifest.csv"}
    )
    assert found["images"].startswith("24 images of 8 patients (4 positive, 4 negative")
    assert found["images"].endswith("8 positive images)")
    assert found["image_labels"].startswith(
        "image label (abnormal/normal) from the image label sheet: 4 of 12 images of positive "
        "patients normal, 0 of 12 images of negative patients abnormal"
    )
    table = fill.checklist_table(found, "gout")
    assert (
        "4 of 12 images of positive patients normal" in _item(table, "CLAIM 2024", "14")["evidence"]
    )
    assert "from the image label sheet" in _item(table, "TRIPOD+AI", "8a")["evidence"]


def test_items_are_marked_and_external_validation_follows_the_config(run_files, tmp_path):
    table = fill.checklist_table(
        facts.study_facts(study="gout", settings=SETTINGS, **run_files), "gout"
    )
    # "not applicable": TRIPOD+AI 24 (no model updating), 20c (no external cohort)
    assert set(table["status"]) == {"reported", "partly", "authors", "not applicable"}
    assert set(table["guideline"]) == {"CLAIM 2024", "TRIPOD+AI"}
    external = _item(table, "CLAIM 2024", "33")  # testing on external data
    assert external["status"] == "partly"
    with_site = {**SETTINGS, "external": ["site_b"]}
    table = fill.checklist_table(
        facts.study_facts(study="gout", settings=with_site, **run_files), "gout"
    )
    assert _item(table, "CLAIM 2024", "33")["status"] == "reported"
    assert "site_b" in _item(table, "CLAIM 2024", "33")["evidence"]
    assert _item(table, "TRIPOD+AI", "20c")["status"] == "partly"
    # reported items say where to look; items only authors can answer are marked as such
    assert (table.loc[table["status"] == "reported", "where"] != "").all()
    assert _item(table, "CLAIM 2024", "44")["status"] == "authors"  # funding
    fill.write_checklist(
        study="gout",
        settings=with_site,
        csv=tmp_path / "c.csv",
        md=tmp_path / "c.md",
        **run_files,
    )
    assert "CLAIM 2024" in (tmp_path / "c.md").read_text()


def test_both_guidelines_are_complete_and_every_item_is_in_the_output_once(run_files):
    items = fill.load_items()
    assert [i["item"] for i in items["CLAIM 2024"]] == CLAIM_ITEMS
    assert [i["item"] for i in items["TRIPOD+AI"]] == TRIPOD_ITEMS
    assert len({re.match(r"\d+", n)[0] for n in TRIPOD_ITEMS}) == 27
    for study in ("gout", "olt"):
        table = fill.checklist_table(
            facts.study_facts(study=study, settings=SETTINGS, **run_files), study
        )
        assert table["item"].ne("").all() and table["topic"].ne("").all()
        keys = list(zip(table["guideline"], table["item"], strict=True))
        assert keys == [("CLAIM 2024", n) for n in CLAIM_ITEMS] + [
            ("TRIPOD+AI", n) for n in TRIPOD_ITEMS
        ]
        assert set(table["status"]) <= set(fill.STATUSES)


def _rule_outputs() -> set[str]:
    """Every results/{study}/... path the rule files name (figures by their stem)."""
    text = "".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk"))
    return set(re.findall(r'"(results/\{study\}/[^"]+)"', text))


def _config_has(key: str) -> bool:
    node = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _resolves(entry: str, outputs: set[str]) -> bool:
    if entry.startswith("config: "):
        return all(_config_has(entry[8:].replace("{study}", s)) for s in ("gout", "olt"))
    if entry.startswith("results/"):
        return entry.removesuffix(".{format}") in outputs
    return bool(list(ROOT.glob(entry)))  # a file of this repository


def test_run_items_point_at_outputs_the_run_writes_or_config_keys():
    items = fill.load_items()
    outputs = _rule_outputs()
    assert "results/{study}/tables/calibration.csv" in outputs  # the parse finds the outputs
    for guideline in fill.GUIDELINES:
        for item in items[guideline]:
            for variant in (item, item.get("with_external", {})):
                if item["answers"] == "authors" or not variant:
                    continue
                entries = []
                for entry in variant.get("where", []):
                    named = items["outputs"][entry[1:]] if entry.startswith("@") else None
                    entries += [p for ps in named.values() for p in ps] if named else [entry]
                assert entries, f"{guideline} {item['item']}: a run item names no file"
                bad = [e for e in entries if not _resolves(e, outputs)]
                assert not bad, f"{guideline} {item['item']}: {bad} not written by the run"


def test_output_has_item_numbers_and_no_phi(run_files, tmp_path):
    fill.write_checklist(
        study="gout", settings=SETTINGS, csv=tmp_path / "c.csv", md=tmp_path / "c.md", **run_files
    )
    table = pd.read_csv(tmp_path / "c.csv", dtype=str, keep_default_na=False)
    assert list(table.columns) == fill.COLUMNS
    assert len(table) == len(CLAIM_ITEMS) + len(TRIPOD_ITEMS)
    assert "| TRIPOD+AI | 12e |" in (tmp_path / "c.md").read_text()
    manifest = read_table(run_files["manifest"], "manifest")
    text = (tmp_path / "c.csv").read_text() + (tmp_path / "c.md").read_text()
    for value in [*manifest["patient"], *manifest["image_id"], *manifest["checksum"]]:
        assert value not in text
    assert str(tmp_path) not in text
    assert not re.search(r"\b(19|20)\d\d-\d\d-\d\d\b", text)  # no dates


def test_items_file_is_shipped_with_the_package():
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]
    assert any(fnmatch.fnmatch("items.yaml", p) for p in package_data["mskdx.evaluate.checklist"])
