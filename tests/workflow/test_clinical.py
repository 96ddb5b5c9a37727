"""Beyond the papers on the tiny run: external validation, calibration, decision curves, predict."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mskdx.io import read_table

from .conftest import snakemake
from .test_reruns import overlay, planned_jobs

pytestmark = pytest.mark.workflow
MSKDX = Path(sys.executable).parent / "mskdx"


def test_external_calibration_and_decision_outputs(tiny_run):
    results = tiny_run / "results"
    for study, arms in (
        ("gout", ["blocks2", "blocks3", "blocks4", "blocks6"]),
        ("olt", ["T1", "T2"]),
    ):
        external = pd.read_csv(results / f"{study}/tables/external_site_b.csv")
        assert set(external["arm"]) == set(arms)
        assert {"ensemble", "fold 0"} <= set(external["model"])
        assert not [c for c in external.columns if c.startswith("paper_")]
        manifest = read_table(results / f"{study}/external/site_b/cache/manifest.csv", "manifest")
        # another device: the external cohort's patients are its own
        development = read_table(results / f"{study}/cache/manifest.csv", "manifest")
        assert not set(manifest["patient"]) & set(development["patient"])
        calibration = pd.read_csv(results / f"{study}/tables/calibration.csv")
        assert set(calibration["cohort"]) == {"development", "site_b"}
        assert set(calibration["arm"]) == set(arms)
        assert calibration["brier"].between(0, 1).all()
        # clustered by patient (issue 37), the image-independent CIs beside
        for name in ("brier_ci", "intercept_ci", "slope_ci"):
            assert f"{name}_independent" in calibration.columns
        image = calibration[calibration["level"] == "image"]
        assert (image["patients"] <= image["n"]).all()
        several = image[image["patients"] < image["n"]]  # OLT's tiny holdout: 1 image each
        # a clustered CI may round to the independent one where the squared errors do not
        # cluster (design effect ~1: the tiny gout blocks2 does), but not on every row
        assert len(several) and (several["brier_ci"] != several["brier_ci_independent"]).any()
        single = image[image["patients"] == image["n"]]
        assert (single["brier_ci"] == single["brier_ci_independent"]).all()
        precision = pd.read_csv(results / f"{study}/tables/precision.csv")
        assert set(zip(precision["cohort"], precision["arm"], strict=True)) == {
            (c, a) for c in ("development", "site_b") for a in arms
        }
        assert precision.loc[precision["cohort"] == "site_b", "external"].all()
        # 3 + 3 external patients: far from the 100 events external validation needs
        assert not precision.loc[precision["cohort"] == "site_b", "events_reach_100"].any()
        assert {"deff_positive", "icc_positive", "deff_auc", "n_eff_positive"} <= set(precision)
        assert "ICC" in (results / f"{study}/tables/precision.md").read_text()
        checklist = pd.read_csv(results / f"{study}/tables/claim_checklist.csv", dtype=str)
        items = checklist.set_index(["guideline", "item"])
        for key in (("CLAIM 2024", "21"), ("TRIPOD+AI", "10")):
            assert items.loc[key, "status"] == "partly"
            assert f"results/{study}/tables/precision.csv" in items.loc[key, "where"]
            assert "does not reach the 100 events" in items.loc[key, "evidence"]
            assert "overall-risk criterion needs " in items.loc[key, "evidence"]
            assert ".0 patients" not in items.loc[key, "evidence"]
        curve = pd.read_csv(results / f"{study}/tables/decision_curve.csv")
        assert set(curve["cohort"]) == {"development", "site_b"}
        for name in ["roc_external", "decision_curve", *[f"calibration_{a}" for a in arms]]:
            assert (results / f"{study}/figures/{name}.png").stat().st_size > 1000
    patients = pd.read_csv(results / "gout/tables/external_site_b_patients.csv")
    assert set(patients["arm"]) == {"blocks2", "blocks3", "blocks4", "blocks6"}
    assert (patients["patients"] == 6).all()


def test_a_calibration_setting_reruns_only_its_output(tiny_run):
    bins = overlay(tiny_run, "bins.yaml", "studies:\n  olt:\n    calibration:\n      bins: 5\n")
    # and the run's RO-Crate, which reads every output and the config: any change reruns it
    assert Counter(rule for rule, _ in planned_jobs(tiny_run, bins)) == {
        "plot_calibration": 2,
        "write_crate": 1,
    }
    step = overlay(
        tiny_run, "dca.yaml", "studies:\n  gout:\n    decision_curve:\n      step: 0.05\n"
    )
    assert Counter(rule for rule, _ in planned_jobs(tiny_run, step)) == {
        "plot_decision_curve": 1,
        "write_crate": 1,
    }


def _predict(tiny_run: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MSKDX_PSEUDONYM_KEY": "tests-key"}
    cmd = [
        str(MSKDX),
        "predict",
        "--configfile",
        "config/config.yaml",
        "--configfile",
        "config/test.yaml",
        "--out",
        str(out),
        *args,
    ]
    return subprocess.run(cmd, cwd=tiny_run, capture_output=True, text=True, env=env, timeout=600)


def test_predict_reproduces_the_workflow_predictions(tiny_run, tmp_path):
    proc = _predict(
        tiny_run,
        tmp_path / "new",
        "--study",
        "gout",
        "--arm",
        "blocks3",
        "--dicom",
        "data/synthetic/gout/dicom",
        "--gradcam",
        "2",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    images = pd.read_csv(tmp_path / "new/images.csv")
    for fold in (0, 1):
        workflow = read_table(
            tiny_run / f"results/gout/models/blocks3/fold_{fold}/predictions.csv", "predictions"
        ).set_index("image_id")
        ours = images.set_index("image_id").loc[workflow.index, f"prob_fold{fold}"]
        np.testing.assert_array_equal(ours.to_numpy(), workflow["prob"].to_numpy())
    patients = pd.read_csv(tmp_path / "new/patients.csv")
    assert set(patients["patient"]) == set(images["patient"])
    assert set(patients["call"]) <= {0, 1} and "threshold" in patients
    assert (tmp_path / "new/gradcam.png").stat().st_size > 1000
    assert not list((tmp_path / "new").glob(".cache-*")), "the temporary cache is removed"


def test_predict_refuses_images_the_model_was_not_trained_for(tiny_run, tmp_path):
    proc = _predict(
        tiny_run,
        tmp_path / "wrong",
        "--study",
        "olt",
        "--arm",
        "T1",
        "--dicom",
        "data/synthetic/gout/dicom",
    )
    assert proc.returncode == 2
    assert "trained on MR images" in proc.stderr
    missing = _predict(
        tiny_run,
        tmp_path / "none",
        "--study",
        "gout",
        "--arm",
        "blocks9",
        "--dicom",
        "data/synthetic/gout/dicom",
    )
    assert missing.returncode == 2 and "not an arm of gout" in missing.stderr


def test_predict_as_a_workflow_target(tiny_run, tmp_path):
    # a copy with the run's metadata: the shared tiny run must not gain outputs
    run = Path(shutil.copytree(tiny_run, tmp_path / "run", symlinks=True))
    target = "results/olt/predict/T2/images.csv"
    proc = snakemake(run, target, "--config", "predict={'dicom_dir': 'data/synthetic/olt/dicom'}")
    assert "rule train_fold" not in proc.stdout  # the trained models are reused
    table = pd.read_csv(run / target)
    workflow = read_table(run / "results/olt/models/T2/fold_0/predictions.csv", "predictions")
    assert set(table["image_id"]) == set(workflow["image_id"])
