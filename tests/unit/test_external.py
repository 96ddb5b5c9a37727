"""External validation: scoring a cohort with the fold models, the tables and the figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_train import GOUT_TRAIN, make_cohort, run

from mskdx.errors import PreprocessError
from mskdx.evaluate import external
from mskdx.io import read_table, write_table


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two fold models of one arm on the small cohort of test_train, and a second 'site'."""
    cohort = make_cohort(tmp_path_factory.mktemp("dev"))
    spec = {**GOUT_TRAIN, "epochs": 1}
    checkpoints = {}
    for fold in (0, 1):
        out = run(
            cohort,
            tmp_path_factory.mktemp(f"fold_{fold}") / f"fold_{fold}",
            fold=fold,
            train_spec=spec,
        )
        checkpoints[fold] = out["checkpoint"]
    site = make_cohort(tmp_path_factory.mktemp("site"), seed=5)
    return cohort, checkpoints, site


def test_scoring_the_development_images_reproduces_the_training_predictions(trained):
    cohort, checkpoints, _ = trained
    per_fold, ensemble = external.score_cohort(
        checkpoints, cohort["images"], cohort["manifest"], study="gout", arm="blocks3"
    )
    for fold, checkpoint in checkpoints.items():
        written = read_table(checkpoint.parent / "predictions.csv", "predictions")
        ours = per_fold[per_fold["fold"] == fold].set_index("image_id").loc[written["image_id"]]
        np.testing.assert_array_equal(ours["prob"].to_numpy(), written["prob"].to_numpy())
    mean = per_fold.groupby("image_id")["prob"].mean()
    np.testing.assert_allclose(
        ensemble.set_index("image_id")["prob"], mean.loc[ensemble["image_id"]], atol=1e-8
    )
    assert set(ensemble["subset"]) == {"test"} and set(ensemble["fold"]) == {0}


def test_a_cache_of_another_size_is_refused(trained, tmp_path):
    _, checkpoints, _ = trained
    other = make_cohort(tmp_path, height=40, width=80)
    with pytest.raises(PreprocessError, match="trained on 70x32"):
        external.score_cohort(
            checkpoints, other["images"], other["manifest"], study="gout", arm="blocks3"
        )


def test_external_tables(trained, tmp_path):
    _, checkpoints, site = trained
    per_fold, ensemble = external.score_cohort(
        checkpoints, site["images"], site["manifest"], study="gout", arm="blocks3"
    )
    table = external.image_table("gout", per_fold, ensemble, image_threshold=0.5)
    assert list(table["model"]) == ["ensemble", "fold 0", "fold 1"]
    assert not [c for c in table.columns if c.startswith("paper_")]
    assert (table["n_images"] == len(ensemble)).all()
    curves = pd.DataFrame(
        {
            "fold": [0, 0, 1, 1],
            "threshold": [0.2, 0.4, 0.3, 0.5],
            "chosen": [True, False, False, True],
        }
    )
    write_table(curves, tmp_path / "threshold_curves_blocks3.csv")
    threshold = external.development_threshold(tmp_path / "threshold_curves_blocks3.csv")
    assert threshold == pytest.approx(0.35)
    patients = external.patient_table(ensemble, {"blocks3": threshold}, image_threshold=0.5)
    share = ensemble.assign(a=ensemble.prob > 0.5).groupby("patient")["a"].mean()
    labels = ensemble.groupby("patient")["label"].first()
    called = (share > threshold).astype(int)
    assert patients.loc[0, "tp"] == int(((called == 1) & (labels == 1)).sum())
    assert patients.loc[0, "patients"] == len(share)


def test_external_image_labels_score_images_and_diagnoses_score_patients(trained, tmp_path):
    """A cohort with an image sheet: its images keep their own labels, its patients their
    diagnosis, even a gout patient none of whose images shows a lesion."""
    _, checkpoints, site = trained
    manifest = read_table(site["manifest"], "manifest")
    manifest = manifest.assign(patient_label=manifest["label"])
    positive = sorted(manifest.loc[manifest["label"] == 1, "patient"].unique())
    first = manifest.groupby("patient").cumcount() == 0
    normal = (manifest["label"] == 1) & (first | (manifest["patient"] == positive[0]))
    manifest.loc[normal, "label"] = 0  # one normal image per gout patient; all of the first's
    write_table(manifest, tmp_path / "manifest.csv", schema="manifest")
    per_fold, ensemble = external.score_cohort(
        checkpoints, site["images"], tmp_path / "manifest.csv", study="gout", arm="blocks3"
    )
    truth = manifest.set_index("image_id")
    for scored in (per_fold, ensemble):
        assert list(scored.columns) == external.PREDICTION_COLUMNS
        rows = truth.loc[scored["image_id"]]
        np.testing.assert_array_equal(scored["label"], rows["label"])
        np.testing.assert_array_equal(scored["patient_label"], rows["patient_label"])
    table = external.image_table("gout", per_fold, ensemble, image_threshold=0.5)
    assert table.loc[0, "n_images"] == len(ensemble)
    patients = external.patient_table(ensemble, {"blocks3": 0.5}, image_threshold=0.5)
    assert patients.loc[0, "tp"] + patients.loc[0, "fn"] == len(positive)
    assert patients.loc[0, "tn"] + patients.loc[0, "fp"] == manifest["patient"].nunique() - len(
        positive
    )
