"""Rule tabulate_precision's step and the checklist it feeds (issue 37): the precision table
from prediction files, its design effects from the clustered engine, Riley's plan from the
config, and the checklist's sample-size items filled from the written CSV."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from test_train import GOUT_ARM, GOUT_TRAIN, make_cohort

from mskdx.errors import ConfigError
from mskdx.evaluate.checklist import fill
from mskdx.evaluate.precision import design_effect, precision_table, tabulate_precision_step
from mskdx.evaluate.stats.clustered_binary import clustered_proportion
from mskdx.io import write_table

THRESHOLD = 0.5


def _predictions(patients: int, images: int, seed: int, arms=("a", "b"), folds=2):
    """Prediction tables (schema `predictions`) of every arm and fold: each patient tested once,
    a shared patient effect on its images' scores."""
    rng = np.random.default_rng(seed)
    rows = []
    effect = rng.normal(0, 1.5, patients)
    for arm in arms:
        for g in range(patients):
            label = g % 2
            for k in range(images):
                logit = -1 + 2 * label + effect[g] + rng.normal(0, 0.5)
                rows.append(
                    {
                        "study": "gout",
                        "arm": arm,
                        "fold": g % folds,
                        "subset": "test",
                        "patient": f"P-{g:04d}",
                        "image_id": f"I-{g:04d}{k:02d}",
                        "label": label,
                        "prob": round(1 / (1 + math.exp(-logit)), 6),
                    }
                )
    frame = pd.DataFrame(rows)
    # a training row the table must not count (each image is scored once, by its test fold)
    train = frame.iloc[:3].assign(subset="train", fold=1)
    return pd.concat([frame, train], ignore_index=True)


def _write(frame: pd.DataFrame, folder, name) -> list:
    paths = []
    for (arm, fold), part in frame.groupby(["arm", "fold"]):
        path = folder / f"{name}_{arm}_{fold}.csv"
        write_table(part, path, "predictions")
        paths.append(path)
    return paths


@pytest.fixture()
def files(tmp_path):
    development = _write(_predictions(40, 4, seed=1), tmp_path, "dev")
    site = tmp_path / "external" / "site_b"
    site.mkdir(parents=True)
    external = []
    for arm, part in _predictions(12, 3, seed=2, folds=1).groupby("arm"):
        path = site / f"ensemble_{arm}.csv"
        write_table(part[part.subset == "test"], path, "predictions")
        external.append(path)
    return development, external


def test_step_writes_one_row_per_cohort_and_arm(files, tmp_path):
    development, external = files
    out = {"csv": tmp_path / "precision.csv", "md": tmp_path / "precision.md"}
    table = tabulate_precision_step(
        development, study="gout", image_threshold=THRESHOLD, external=external, **out
    )
    written = pd.read_csv(out["csv"])
    assert list(zip(written.cohort, written.arm, strict=True)) == [
        ("development", "a"), ("development", "b"), ("site_b", "a"), ("site_b", "b"),
    ]  # fmt: skip
    assert written.external.tolist() == [False, False, True, True]
    dev = written[(written.cohort == "development") & (written.arm == "a")].iloc[0]
    assert (dev.n_images, dev.n_patients, dev.events, dev.non_events) == (160, 40, 20, 20)
    # the calls are prob > image_threshold on the test rows only, as in the paper tables
    pooled = pd.concat(pd.read_csv(p) for p in development)
    test = pooled[(pooled.subset == "test") & (pooled.arm == "a")]
    positives = test[test.label == 1]
    assert dev.sen == pytest.approx((positives.prob > THRESHOLD).mean())
    correct = (positives.prob > THRESHOLD).astype(float)
    assert dev.deff_positive == pytest.approx(design_effect(positives.patient, correct))
    assert dev.deff_positive > 1.2  # the shared patient effect clusters the calls
    assert dev.icc_positive == pytest.approx(
        clustered_proportion(correct.astype(bool), positives.patient).icc
    )
    assert dev.deff_auc > 1 and dev.deff_source == "clustered (patients)"
    assert not written.events_reach_100.dropna().any()  # 6 events at site_b
    assert pd.isna(dev.n_required_riley)  # no plan stated: off
    text = out["md"].read_text()
    assert "Precision and sample size" in text and "Riley et al. (2020)" not in text
    assert "ICC" in text
    assert list(table.columns) == list(written.columns) and len(table) == len(written)


def test_riley_plan_from_the_config(files, tmp_path):
    development, _ = files
    out = {"csv": tmp_path / "p.csv", "md": tmp_path / "p.md"}
    riley = {"r2_cs": 0.288, "parameters": 24, "prevalence": 0.174}
    tabulate_precision_step(
        development, study="gout", image_threshold=THRESHOLD, riley=riley, **out
    )
    written = pd.read_csv(out["csv"])
    assert set(written.cohort) == {"development"}
    assert (written.n_required_riley == 662).all() and not written.riley_met.any()
    text = out["md"].read_text()
    assert "Riley et al. (2020) minimum development sample size" in text and "| 662 |" in text
    bad = {"r2_cs": 0.7, "parameters": 3, "prevalence": 0.1}
    with pytest.raises(ConfigError, match=r"studies.olt.precision.riley: r2_cs=0.7"):
        tabulate_precision_step(
            development, study="olt", image_threshold=THRESHOLD, riley=bad, **out
        )


def test_one_image_per_patient_has_no_design_effect(files, tmp_path):
    frame = _predictions(30, 1, seed=4)
    frame = frame[frame.subset == "test"].assign(call=lambda f: (f.prob > THRESHOLD).astype(int))
    row = precision_table({"development": frame}).iloc[0]
    assert row.deff_positive == pytest.approx(1) and row.deff_negative == pytest.approx(1)
    assert row.deff_auc == pytest.approx(1)
    assert math.isnan(row.icc_positive)  # no patient holds two images


def test_image_labels_count_events_by_the_diagnosis():
    frame = _predictions(20, 4, seed=5, arms=("a",))
    frame = frame[frame.subset == "test"].copy()
    frame["patient_label"] = frame["label"]
    # a positive patient's first image shows nothing: its image label is 0
    first = frame.groupby("patient").head(1).index
    frame.loc[first[frame.loc[first, "patient_label"] == 1], "label"] = 0
    frame["call"] = (frame.prob > THRESHOLD).astype(int)
    row = precision_table({"development": frame}).iloc[0]
    assert (row.events, row.non_events) == (10, 10)
    assert (row.positive_images, row.negative_images) == (30, 50)
    with pytest.raises(ValueError, match="has images of both labels"):
        precision_table({"development": frame.drop(columns="patient_label")})


def test_checklist_sample_size_items_come_from_the_precision_csv(files, tmp_path):
    development, external = files
    precision = tmp_path / "precision.csv"
    tabulate_precision_step(
        development,
        study="gout",
        image_threshold=THRESHOLD,
        external=external,
        csv=precision,
        md=tmp_path / "precision.md",
    )
    cohort = make_cohort(tmp_path / "cohort")
    refused = tmp_path / "refused.csv"
    write_table(pd.DataFrame(columns=["file_key", "reason", "message"]), refused)
    settings = {
        "source": "synthetic", "on_error": "stop", "seed": 1, "modalities": ["US"],
        "preprocess": {"kind": "ultrasound", "crop_width": 700, "crop_height": 320},
        "splits": {"method": "kfold", "folds": 2}, "arms": {"blocks3": GOUT_ARM},
        "train": GOUT_TRAIN,
        "external": ["site_b"],
    }  # fmt: skip
    common = {
        "study": "gout",
        "manifest": cohort["manifest"],
        "refused": refused,
        "splits": cohort["splits"],
        "settings": settings,
    }
    fill.write_checklist(**common, csv=tmp_path / "plain.csv", md=tmp_path / "plain.md")
    fill.write_checklist(
        **common, csv=tmp_path / "c.csv", md=tmp_path / "c.md", precision=precision
    )
    plain = pd.read_csv(tmp_path / "plain.csv", dtype=str, keep_default_na=False)
    filled = pd.read_csv(tmp_path / "c.csv", dtype=str, keep_default_na=False)
    changed = filled[(filled != plain).any(axis=1)]
    assert set(zip(changed.guideline, changed.item, strict=True)) == {
        ("CLAIM 2024", "21"), ("TRIPOD+AI", "10"),
    }  # fmt: skip
    for row in changed.itertuples():
        assert row.status == "partly" and "results/gout/tables/precision.csv" in row.where
        assert "development: 160 images of 40 patients (20 positive, 20 negative)" in row.evidence
        assert "overall-risk criterion needs 385 patients (40 here)" in row.evidence
        assert "site_b: 36 images of 12 patients" in row.evidence
        assert "does not reach the 100 events" in row.evidence


def test_the_riley_block_is_optional_and_checked(tmp_path):
    from mskdx.config import load
    from mskdx.config.layout import Layout

    layout = Layout(load.load_config())
    assert layout.riley_plan("gout") is None and layout.riley_plan("olt") is None
    assert "results/gout/tables/precision.csv" in layout.final_outputs()
    overlay = tmp_path / "riley.yaml"
    overlay.write_text(
        "studies:\n  gout:\n    precision:\n      riley: {r2_cs: 0.1, parameters: 1, "
        "prevalence: 0.4}\n"
    )
    planned = Layout(load.load_config([overlay]))
    assert planned.riley_plan("gout") == {"r2_cs": 0.1, "parameters": 1, "prevalence": 0.4}
    assert planned.riley_plan("olt") is None
    overlay.write_text("studies:\n  gout:\n    precision:\n      riley: {r2_cs: 0.1}\n")
    with pytest.raises(ConfigError, match="riley"):
        load.load_config([overlay])
