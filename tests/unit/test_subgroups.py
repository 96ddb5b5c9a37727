"""Subgroup table; the manifest's non-identifying columns (sex, age band, scanner); threads."""

import math

import numpy as np
import pandas as pd
import pytest

from mskdx.errors import ConfigError
from mskdx.evaluate import subgroups
from mskdx.ingest.deid import age_band, coarse_sex
from mskdx.learn.settings import TrainSettings
from mskdx.synth.ultrasound import DEVICE_MODELS, DEVICES

BASE_TRAIN = {"optimizer": "adam", "lr": 0.001, "epochs": 1, "batch_size": 4}


@pytest.mark.parametrize(
    ("birth", "study", "age", "band"),
    [
        ("19600315", "20200314", "", "40-59"),  # the day before the 60th birthday
        ("19600315", "20200315", "", "60-79"),
        ("19300101", "20250101", "", "80+"),
        ("20100101", "20250101", "", "0-19"),
        ("", "20250101", "045Y", "40-59"),  # no birth date: PatientAge
        ("", "", "006M", "0-19"),
        ("garbage", "20250101", "", ""),
        ("", "", "", ""),
    ],
)
def test_age_band_is_coarse_and_keeps_no_date(birth, study, age, band):
    assert age_band(birth, study, age) == band


def test_sex_is_m_f_o_or_empty():
    assert [coarse_sex(v) for v in ("M", "f ", "O", "", "X", "unknown")] == [
        "M",
        "F",
        "O",
        "",
        "",
        "",
    ]


def test_every_synthetic_device_names_its_scanner():
    models = {DEVICE_MODELS[d["name"]] for d in DEVICES}
    assert len(models) == len(DEVICES)  # one Manufacturer + ManufacturerModelName per device


def test_train_threads_default_and_bounds(tmp_path):
    assert TrainSettings.from_config(BASE_TRAIN).threads == 2
    assert TrainSettings.from_config({**BASE_TRAIN, "threads": 1}).threads == 1
    # the bound is the schema's, checked when the config is loaded (not again in TrainSettings)
    from mskdx.config.load import load_config

    bad = tmp_path / "threads.yaml"
    bad.write_text("studies:\n  gout:\n    train: {threads: 0}\n")
    with pytest.raises(ConfigError, match=r"studies\.gout\.train\.threads=0"):
        load_config([bad])


def test_train_fold_computes_with_the_config_threads_not_the_scheduler(monkeypatch):
    """train_fold without `threads` uses train.threads; snakemake.threads is not passed."""
    import torch

    from mskdx.learn import train

    seen = []

    class Stop(Exception):
        pass

    def fake_train(job, *args):
        seen.append(torch.get_num_threads())
        raise Stop

    monkeypatch.setattr(train, "_train_fold", fake_train)
    for threads in (1, 3):
        with pytest.raises(Stop):
            train.train_fold(
                "i", "m", "s", study="gout", arm="a", fold=0, arm_spec={}, seed=1,
                train_spec={**BASE_TRAIN, "device": "cpu", "threads": threads},
                checkpoint="c/checkpoint_final.pt", history="h", predictions="p",
            )  # fmt: skip
    assert seen == [1, 3]
    script = (subgroups.Path(__file__).parents[2] / "workflow/scripts/train_fold.py").read_text()
    assert "snakemake.threads" not in script


def scored(rng, n_patients=12, per_patient=4, cohort="development"):
    rows = []
    for p in range(n_patients):
        label = p % 2
        for k in range(per_patient):
            rows.append(
                {
                    "arm": "blocks2",
                    "cohort": cohort,
                    "site": cohort,
                    "patient": f"P-{p:010x}",
                    "image_id": f"I-{p * 100 + k:012x}",
                    "label": label,
                    "prob": float(np.clip(0.3 * label + rng.uniform(0, 0.7), 0, 1)),
                    "scanner": "A X1" if p < 10 else "B Y2",  # B: 2 patients only
                    "sex": "F" if p % 3 else "M",
                    "age_band": "40-59" if p < 6 else "60-79",
                }
            )
    return pd.DataFrame(rows)


def test_small_subgroups_are_suppressed_and_counted():
    table = subgroups.subgroup_table(scored(np.random.default_rng(0)), min_patients=5)
    scanners = table[table.variable == "scanner"]
    assert set(scanners.group) == {"A X1", subgroups.SUPPRESSED}
    hidden = scanners[scanners.group == subgroups.SUPPRESSED]
    assert hidden.n.tolist() == [1]
    shown = table[table.group != subgroups.SUPPRESSED]
    assert (shown.patients >= 5).all()
    assert set(shown.level) == {"image", "patient"}


def test_subgroup_metrics_match_a_direct_computation():
    from sklearn.metrics import roc_auc_score

    data = scored(np.random.default_rng(1))
    table = subgroups.subgroup_table(data, image_threshold=0.5, min_patients=1)
    row = table[(table.variable == "sex") & (table.group == "F") & (table.level == "image")].iloc[0]
    cell = data[data.sex == "F"]
    assert row.n == len(cell) and row.patients == cell.patient.nunique()
    assert math.isclose(row.auc, roc_auc_score(cell.label, cell.prob))
    pos = cell[cell.label == 1]
    assert math.isclose(row.sensitivity, (pos.prob > 0.5).mean())
    assert row.sensitivity_low <= row.sensitivity <= row.sensitivity_high
    patient = table[(table.variable == "sex") & (table.group == "F") & (table.level == "patient")]
    means = cell.groupby("patient").agg(label=("label", "first"), prob=("prob", "mean"))
    assert math.isclose(patient.iloc[0].auc, roc_auc_score(means.label, means.prob))


def test_markdown_says_what_was_suppressed():
    table = subgroups.subgroup_table(scored(np.random.default_rng(0)), min_patients=5)
    text = subgroups.subgroup_markdown(table, min_patients=5)
    assert "1 groups with fewer than 5 patients not shown" in text
    assert "B Y2" not in text
