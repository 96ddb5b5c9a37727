"""Model cards generated from the tables the workflow's own builders write."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mskdx.deploy import model_card
from mskdx.evaluate import clinical, external, tables
from mskdx.io import read_table, write_table

SETTINGS = {
    "source": "synthetic",
    "arm_spec": {"architecture": "resnet_blocks", "blocks": 3},
    "train": {"epochs": 8, "optimizer": "adam", "lr": 0.001, "batch_size": 16},
    "preprocess": {"kind": "ultrasound", "crop_width": 700, "crop_height": 320, "scale": 0.2},
    "labels": {"positive": "gout", "negative": "control"},
    "folds": 2,
    "split": "kfold",
    "image_threshold": 0.5,
}


def predictions(arms=("blocks2", "blocks3"), seed=0) -> pd.DataFrame:
    """Two folds of 20 patients x 4 images; each patient is train in one fold, test in the other."""
    rng = np.random.default_rng(seed)
    rows = []
    for arm in arms:
        for fold in (0, 1):
            for p in range(20):
                label = p % 2
                subset = "test" if (p < 10) == (fold == 0) else "train"
                for k in range(4):
                    prob = float(np.clip(0.5 * label + 0.25 + rng.normal(0, 0.2), 0.001, 0.999))
                    rows.append(
                        {
                            "study": "gout",
                            "arm": arm,
                            "fold": fold,
                            "subset": subset,
                            "patient": f"P-{p:010x}",
                            "image_id": f"I-{p * 4 + k:012x}",
                            "label": label,
                            "prob": round(prob, 8),
                        }
                    )
    return pd.DataFrame(rows)


def manifest(preds: pd.DataFrame) -> pd.DataFrame:
    images = preds.drop_duplicates("image_id").reset_index(drop=True)
    return pd.DataFrame(
        {
            "index": range(len(images)),
            "image_id": images["image_id"],
            "patient": images["patient"],
            "study": "gout",
            "series": ["dorsal", "medial"] * (len(images) // 2),
            "frame": 0,
            "label": images["label"],
            "checksum": "0" * 64,
        }
    )


@pytest.fixture(scope="module")
def run_tables(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tables")
    preds = predictions()
    test = preds[preds["subset"] == "test"]
    paths = {
        "manifest": folder / "manifest.csv",
        "performance": folder / "table1_image_level.csv",
        "patients": folder / "table3_patient_level_blocks3.csv",
        "calibration": folder / "calibration.csv",
        "external": [folder / "external_site_b.csv"],
        "localisation": folder / "localisation.csv",
    }
    write_table(manifest(preds), paths["manifest"], "manifest")
    write_table(tables.gout_image_table(preds, reference="blocks3"), paths["performance"])
    table3, _ = tables.gout_patient_table(preds[preds["arm"] == "blocks3"])
    write_table(table3, paths["patients"])
    site = predictions(seed=5)
    site = site[site["subset"] == "test"].assign(subset="test")
    ensemble = site.groupby(["arm", "patient", "image_id"], as_index=False).agg(
        label=("label", "first"), prob=("prob", "mean")
    )
    ensemble = ensemble.assign(study="gout", fold=0, subset="test")
    write_table(
        external.image_table("gout", site, ensemble, image_threshold=0.5, reference="blocks3"),
        paths["external"][0],
    )
    calib = clinical.calibration_table(
        {"development": test, "site_b": ensemble}, levels=("image", "patient")
    )
    write_table(calib, paths["calibration"])
    loc = pd.DataFrame(
        [
            {
                "arm": "blocks3",
                "n": 12,
                "pointing_hit_rate": 0.25,
                "pointing_ci_low": 0.09,
                "pointing_ci_high": 0.53,
                "pointing_chance_mean": 0.21,
                "tolerance_px": 15,
            }
        ]
    )
    write_table(loc, paths["localisation"])
    return paths


@pytest.fixture(scope="module")
def card(run_tables, tmp_path_factory):
    path = tmp_path_factory.mktemp("card") / "model_card_blocks3.md"
    text = model_card.write_model_card(
        path, study="gout", arm="blocks3", settings=SETTINGS, **run_tables
    )
    assert path.read_text() == text
    return text


def test_the_card_has_every_section(card):
    for title in (
        "# Model card: gout/blocks3",
        "## Model details",
        "## Intended use",
        "## Training data",
        "## Development performance",
        "## External performance",
        "## Calibration",
        "## Subgroups",
        "## Localisation",
        "## Known limits",
    ):
        assert title in card
    assert "not for diagnosis alone" in card


def test_its_numbers_are_the_tables_numbers(card, run_tables):
    table1 = pd.read_csv(run_tables["performance"])
    row = table1[(table1["arm"] == "blocks3") & (table1["fold"] == "pooled")].iloc[0]
    assert f"{row['auc']:.3f} ({row['auc_low']:.3f}-{row['auc_high']:.3f})" in card
    assert f"{row['acc']:.1f} ({row['acc_low']:.1f}-{row['acc_high']:.1f})" in card
    table3 = pd.read_csv(run_tables["patients"])
    pooled = table3[table3["fold"].astype(str) == "pooled"].iloc[0]
    assert f"{pooled['acc']:.1f} ({pooled['acc_low']:.1f}-{pooled['acc_high']:.1f})" in card
    ext = pd.read_csv(run_tables["external"][0])
    ens = ext[(ext["arm"] == "blocks3") & (ext["model"] == "ensemble")].iloc[0]
    assert "**site_b**" in card and f"{ens['auc']:.3f}" in card
    calib = pd.read_csv(run_tables["calibration"])
    for r in calib[calib["arm"] == "blocks3"].itertuples():
        assert f"{r.brier:.4f} {r.brier_ci}" in card
    assert "blocks2" not in card.split("## Known limits")[0].split("## Model details")[1]
    assert "| reference (named in advance) |" in card  # blocks3 is the reference


def test_the_card_tests_its_arm_against_the_reference(run_tables, tmp_path):
    """Another arm's card prints its clustered, Holm-adjusted tests against the reference and
    says in its limits what they support."""
    text = model_card.write_model_card(
        tmp_path / "card.md", study="gout", arm="blocks2", settings=SETTINGS, **run_tables
    )
    table1 = pd.read_csv(run_tables["performance"])
    row = table1[(table1["arm"] == "blocks2") & (table1["fold"] == "pooled")].iloc[0]
    assert (
        f"vs blocks3: AUC difference {row['auc_diff']:.3f} (reference minus this arm), adjusted "
        f"p {row['p_auc_adjusted']:.3g}; ACC adjusted p {row['p_acc_adjusted']:.3g}" in text
    )
    limits = text.split("## Known limits")[1]
    verdict = "not distinguishable from" if row["p_auc_adjusted"] >= 0.05 else "the reference"
    assert "reference arm blocks3's (test clustered by patient" in limits and verdict in limits


def test_training_data_counts_and_class_mix(card):
    assert "- 80 images of 20 patients" in card
    assert "10 gout / 10 control patients; 40 / 40 images" in card
    assert "dorsal 40, medial 40" in card
    assert "devices: not recorded" in card


def test_known_limits_come_from_the_run(card):
    limits = card.split("## Known limits")[1]
    assert "synthetic cohort" in limits
    assert "20 patients in all" in limits
    assert "0.2 of the paper's crop size" in limits
    assert "pointing game 0.25" in limits  # its CI reaches the chance level
    assert "No subgroup" in limits
    assert "flags an image outside them" in limits  # the OOD check of predict (issue 40)


def test_an_olt_card_uses_table_ii(tmp_path, run_tables):
    preds = predictions(arms=("T1", "T2")).assign(study="olt")
    test = preds[preds["subset"] == "test"]
    write_table(tables.olt_table(test), tmp_path / "table2_performance.csv")
    write_table(clinical.calibration_table({"development": test}), tmp_path / "calibration.csv")
    settings = {
        **SETTINGS,
        "arm_spec": {"architecture": "resnet50", "weights": "imagenet", "sequence": "dorsal"},
        "labels": {"positive": "patient", "negative": "healthy"},
        "preprocess": {"kind": "mri", "size": 224},
    }
    text = model_card.write_model_card(
        tmp_path / "card.md",
        study="olt",
        arm="T1",
        settings=settings,
        manifest=run_tables["manifest"],
        performance=tmp_path / "table2_performance.csv",
        calibration=tmp_path / "calibration.csv",
    )
    assert "| patient |" in text and "| healthy |" in text
    assert "(sequence dorsal)" in text and "_no external cohort in this run_" in text


def test_devices_and_subgroups_come_from_the_run(run_tables, tmp_path):
    """With the manifest's scanner columns and the subgroup table (evaluate.subgroups), the card
    lists the devices and the arm's subgroup rows, and names the groups too small to show."""
    from mskdx.evaluate.subgroups import subgroup_table

    table = read_table(run_tables["manifest"], "manifest")
    table["manufacturer"] = np.where(table.index % 2 == 0, "Hitachi", "Esaote")
    table["model"] = np.where(table.index % 2 == 0, "ARIETTA 70", "MyLab")
    manifest_path = tmp_path / "manifest.csv"
    write_table(table, manifest_path, "manifest")
    preds = predictions()
    test = preds[preds["subset"] == "test"].merge(
        table[["image_id", "manufacturer", "model"]], on="image_id"
    )
    scored = test.assign(
        cohort="development",
        scanner=test["manufacturer"] + " " + test["model"],
        site="development",
        sex="F",
        age_band=np.where(test["patient"].rank(method="dense") % 5 == 0, "80-99", "40-59"),
    )
    sub = subgroup_table(scored, min_patients=3)
    sub_path = tmp_path / "subgroups.csv"
    write_table(sub, sub_path)
    text = model_card.write_model_card(
        tmp_path / "card.md",
        study="gout",
        arm="blocks3",
        settings=SETTINGS,
        **{**run_tables, "manifest": manifest_path, "subgroups": sub_path},
    )
    assert "devices: Hitachi ARIETTA 70 (" in text and "Esaote MyLab (" in text
    section = text.split("## Subgroups")[1].split("## Localisation")[0]
    mine = sub[(sub["arm"] == "blocks3") & (sub["level"] == "image")]
    mine = mine[mine["group"] != "suppressed"]
    assert len(mine) and all(f"{r.variable} {r.group} (" in section for r in mine.itertuples())
    assert "blocks2" not in section
    limits = text.split("## Known limits")[1]
    assert "No subgroup" not in limits
    hidden = sub[(sub["arm"] == "blocks3") & (sub["group"] == "suppressed")]["n"].sum()
    assert (f"{int(hidden)} subgroups had too few patients" in limits) == bool(hidden)
