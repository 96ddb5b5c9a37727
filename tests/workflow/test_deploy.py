"""Deployment on the tiny run: model cards in the report, predict's DICOM results as a workflow
target (under private/, valid, results/ still free of PHI), exported models."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mskdx.io import read_table

from .conftest import snakemake
from .test_privacy import input_phi, leaks, scanned_files
from .test_report import embedded

pytestmark = pytest.mark.workflow

MSKDX = Path(sys.executable).parent / "mskdx"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from dicom_tools import dciodvfy_errors, dsrdump  # noqa: E402


def test_every_arm_has_a_model_card_in_the_report(tiny_run, tiny_report):
    results = embedded(tiny_report, "results")
    for study, arms in (
        ("gout", ["blocks2", "blocks3", "blocks4", "blocks6"]),
        ("olt", ["T1", "T2"]),
    ):
        for arm in arms:
            # the report holds the card as a page (issue 39); the Markdown stays in results/
            page = f"results/{study}/model_card_{arm}.html"
            assert page in results, f"{page} not in the report"
            assert f"Model card: {study}/{arm}" in (tiny_run / page).read_text()
            text = (tiny_run / f"results/{study}/model_card_{arm}.md").read_text()
            assert f"# Model card: {study}/{arm}" in text and "## Known limits" in text
            assert "n/a (n/a-n/a)" not in text.split("## Development performance")[1][:400]


def test_predict_writes_dicom_results_under_private_only(tiny_run, tmp_path):
    run = Path(shutil.copytree(tiny_run, tmp_path / "run", symlinks=True))
    (run / "predict.yaml").write_text(
        "predict:\n  dicom_dir: data/synthetic/olt/dicom\n  dicom_out: true\n  gradcam: 2\n"
        "  dicom_sc: true\n"
    )
    target = "results/olt/predict/T2/images.csv"
    proc = snakemake(run, target, "--configfile", "config/test.yaml", "predict.yaml")
    assert "rule train_fold" not in proc.stdout
    folder = run / "private/olt/predict/T2/dicom"
    index = read_table(folder / "index.csv")
    patients = read_table(run / "results/olt/predict/T2/patients.csv")
    assert sorted(index.loc[index["kind"] == "sr", "patient"]) == sorted(patients["patient"])
    assert (index["kind"] == "sc").sum() == 2
    # the Grad-CAM of every scored image as a map object (MR: patient coordinates, so a
    # Parametric Map), and the OOD check from the arm's ood.npz (issue 40)
    images = read_table(run / "results/olt/predict/T2/images.csv")
    maps = index[index["kind"].isin(["pm", "seg"])]
    assert sorted(maps["image_id"]) == sorted(images["image_id"])
    assert {"ood", "ood_reasons", "ood_distance", "ood_sd"} <= set(images.columns)
    assert "ood_images" in patients.columns
    for name in index["file"]:
        assert dciodvfy_errors(folder / name) == [], name
    sr = index.loc[index["kind"] == "sr", "file"].iloc[0]
    assert "Imaging Measurement Report" in dsrdump(folder / sr)
    phi = sorted(input_phi(run))
    hits = leaks(run, scanned_files(run), phi)
    assert not hits, "PHI found in results or logs:\n" + "\n".join(hits[:20])


def test_exported_models_reproduce_the_workflow(tiny_run, tmp_path):
    import onnxruntime as ort

    from mskdx.deploy.export import prepare_input

    env = {**os.environ, "MSKDX_PSEUDONYM_KEY": "tests-key"}
    cmd = [str(MSKDX), "export", "--study", "gout", "--arm", "blocks3", "--out", str(tmp_path)]
    cmd += ["--configfile", "config/config.yaml", "--configfile", "config/test.yaml"]
    proc = subprocess.run(cmd, cwd=tiny_run, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = read_table(tiny_run / "results/gout/cache/manifest.csv", "manifest")
    images = np.load(tiny_run / "results/gout/cache/images.npy")
    rows = manifest.set_index("image_id")["index"]
    for meta_path in sorted(tmp_path.glob("fold_*.json")):
        meta = json.loads(meta_path.read_text())
        preds = read_table(
            tiny_run / f"results/gout/models/blocks3/fold_{meta['fold']}/predictions.csv",
            "predictions",
        )
        preds = preds[preds["subset"] == "test"]
        x = prepare_input(images[rows.loc[preds["image_id"]].to_numpy()], meta)
        session = ort.InferenceSession(str(tmp_path / meta["files"]["onnx"]["name"]))
        (prob,) = session.run(None, {meta["input"]["name"]: x})
        np.testing.assert_allclose(prob, preds["prob"].to_numpy(), atol=1e-5, rtol=0)
