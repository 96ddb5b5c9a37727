"""mskdx export: ONNX and TorchScript fold models that reproduce the workflow's probabilities."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from test_train import GOUT_ARM, GOUT_TRAIN, make_cohort, run

from mskdx import cli
from mskdx.deploy import export
from mskdx.io import read_table
from mskdx.learn.arm_settings import ARM_FORMAT, write_arm_settings

PREPROCESS = {"kind": "ultrasound", "crop_width": 700, "crop_height": 320, "scale": 0.1}
ARMS = {
    "blocks3": (GOUT_ARM, {**GOUT_TRAIN, "epochs": 1}),
    "blocks2": (
        {"architecture": "resnet_blocks", "blocks": 2},
        {**GOUT_TRAIN, "epochs": 1, "normalization": "train_stats"},
    ),
    "resnet": (
        {"architecture": "resnet50", "weights": "none"},
        {**GOUT_TRAIN, "epochs": 1, "normalization": "imagenet"},
    ),
}
#: the ResNet50 (ImageNet normalization) with one fold only: it trains slowly on a CPU
FOLDS = {"blocks3": (0, 1), "blocks2": (0, 1), "resnet": (0,)}


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    """A results/ tree as the workflow leaves it: two arms, two folds each, and the cache."""
    root = tmp_path_factory.mktemp("wf")
    cohort = make_cohort(root / "cache")
    for arm, (arm_spec, train_spec) in ARMS.items():
        for fold in FOLDS[arm]:
            folder = root / "results" / "gout" / "models" / arm / f"fold_{fold}"
            run(cohort, folder, arm=arm, arm_spec=arm_spec, train_spec=train_spec, fold=fold)
        # what rule describe_arm writes beside the fold models: export reads the arm from it
        write_arm_settings(
            root / "results" / "gout" / "models" / arm / "arm.json",
            {
                "format": ARM_FORMAT,
                "study": "gout",
                "arm": arm,
                "folds": list(FOLDS[arm]),
                "extract": {"study": "gout", "preprocess": PREPROCESS},
                "model": arm_spec,
            },
        )
    return root, cohort


@pytest.fixture(scope="module")
def exported(workflow):
    root, _ = workflow
    for arm in ARMS:
        code = cli.main(
            [
                "export",
                "--study",
                "gout",
                "--arm",
                arm,
                "--results",
                str(root / "results"),
            ]
        )
        assert code == 0
    return root / "results" / "gout" / "export"


def _test_images(workflow, arm: str, fold: int):
    root, cohort = workflow
    preds = read_table(
        root / "results" / "gout" / "models" / arm / f"fold_{fold}" / "predictions.csv",
        "predictions",
    )
    preds = preds[preds["subset"] == "test"]
    manifest = read_table(cohort["manifest"], "manifest").set_index("image_id")
    rows = manifest.loc[preds["image_id"], "index"].to_numpy()
    return np.load(cohort["images"])[rows], preds["prob"].to_numpy()


@pytest.mark.parametrize(("arm", "fold"), [(a, f) for a in sorted(FOLDS) for f in FOLDS[a]])
def test_onnx_reproduces_the_workflow_probabilities(workflow, exported, arm, fold):
    meta = json.loads((exported / arm / f"fold_{fold}.json").read_text())
    images, expected = _test_images(workflow, arm, fold)
    assert len(expected) >= 4
    session = ort.InferenceSession(
        str(exported / arm / meta["files"]["onnx"]["name"]), providers=["CPUExecutionProvider"]
    )
    x = export.prepare_input(images, meta)
    assert x.shape[1:] == tuple(meta["input"]["shape"][1:])
    (prob,) = session.run([meta["output"]["name"]], {meta["input"]["name"]: x})
    np.testing.assert_allclose(prob, expected, atol=1e-5, rtol=0)


def test_torchscript_reproduces_the_workflow_probabilities(workflow, exported):
    meta = json.loads((exported / "blocks3" / "fold_0.json").read_text())
    images, expected = _test_images(workflow, "blocks3", 0)
    model = torch.jit.load(str(exported / "blocks3" / meta["files"]["pt"]["name"]))
    with torch.no_grad():
        prob = model(torch.from_numpy(export.prepare_input(images, meta))).numpy()
    np.testing.assert_allclose(prob, expected, atol=1e-5, rtol=0)


def test_the_json_describes_the_preprocessing_from_the_checkpoint(exported):
    zscore = json.loads((exported / "blocks3" / "fold_0.json").read_text())
    assert zscore["input"]["shape"] == ["N", 3, 32, 70]
    assert "grey repeated 3 times" in zscore["input"]["channel_order"]
    assert zscore["normalization"]["kind"] == "image_zscore"
    assert "700x320" in zscore["preprocessing"]["rule"] and zscore["preprocessing"]["scale"] == 0.1
    stats = json.loads((exported / "blocks2" / "fold_1.json").read_text())
    assert stats["normalization"]["kind"] == "train_stats"
    assert len(stats["normalization"]["mean"]) == 1 and stats["normalization"]["std"][0] > 0
    for name in ("onnx", "pt"):
        assert len(stats["files"][name]["sha256"]) == 64


def test_an_arm_without_models_is_a_clear_error(workflow, capsys, caplog):
    root, _ = workflow
    code = cli.main(
        ["export", "--study", "gout", "--arm", "blocks9", "--results", str(root / "results")]
    )
    assert code == 2
    assert "gout/blocks9: not a trained arm" in caplog.text
    assert "trained arms of gout" in caplog.text and "'blocks3'" in caplog.text
    assert not (root / "results" / "gout" / "export" / "blocks9").exists()
