"""Out-of-distribution flags: pydicom-data's real vendor captures (GE, Philips, SonoSite's
120-frame colour clip, Aloka; no first-MTPJ scan among them), extracted as predict extracts a
folder, against tiny gout models trained on a synthetic cohort: every capture is flagged, new
images of the training distribution are not; reasons, npz round trip, bad input."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
import torch
from study_specs import GOUT
from test_train import GOUT_TRAIN, make_cohort, run

from mskdx.deploy import ood
from mskdx.errors import ConfigError
from mskdx.ingest.extract import extract_study
from mskdx.io import read_table

pydicom_data = pytest.importorskip("pydicom.data")
REAL = ["US1_UNCR.dcm", "OBXXXX1A.dcm", "color3d_jpeg_baseline.dcm", "gdcm-US-ALOKA-16.dcm"]
SPEC = dataclasses.replace(GOUT, preprocess={**GOUT.preprocess, "scale": 0.1})  # 70x32


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two 2-epoch fold models and the arm's reference from the 24 development images."""
    torch.set_num_threads(1)
    cohort = make_cohort(tmp_path_factory.mktemp("dev"))
    base = tmp_path_factory.mktemp("models")
    spec = {**GOUT_TRAIN, "epochs": 2}
    ckpts = {
        f: run(cohort, base / f"fold_{f}", fold=f, train_spec=spec)["checkpoint"] for f in (0, 1)
    }
    out = base / "ood.npz"
    ood.reference_step(
        ckpts,
        images=cohort["images"],
        manifest=cohort["manifest"],
        splits=cohort["splits"],
        out=out,
    )
    return ckpts, ood.load_reference(out), base


@pytest.fixture(scope="module")
def real_captures(tmp_path_factory):
    """The four captures through the gout extraction predict runs (crop, resize to 70x32)."""
    folder = tmp_path_factory.mktemp("real")
    for name in REAL:
        path = pydicom_data.get_testdata_file(name)
        if path is None:
            pytest.skip(f"{name} not installed (pip install pydicom-data)")
        shutil.copy(path, folder / name)
    mp = pytest.MonkeyPatch()
    mp.setenv("MSKDX_OOD_TEST_KEY", "ood-test")
    out = tmp_path_factory.mktemp("real_cache")
    paths = {k: out / f"{k}.{e}" for k, e in (("images", "npy"), ("masks", "npy"))}
    extract_study(
        folder,
        None,
        spec=SPEC,
        masks_path=None,
        on_error="skip",
        key_env="MSKDX_OOD_TEST_KEY",
        manifest=out / "manifest.csv",
        refused=out / "refused.csv",
        **paths,
    )
    mp.undo()
    manifest = read_table(out / "manifest.csv").sort_values("index")
    return np.load(paths["images"]), manifest


def _probs(ckpts, images):
    from mskdx.learn.inference import fold_models

    return np.stack([m.probabilities(images) for m in fold_models(ckpts)], axis=1)


def test_every_real_vendor_capture_is_flagged(trained, real_captures):
    ckpts, reference, _ = trained
    images, manifest = real_captures
    assert manifest["patient"].nunique() == 4 and len(images) == 123  # 3 stills + 120 frames
    flags = ood.check_images(
        reference,
        ckpts,
        images,
        manifest["image_id"],
        _probs(ckpts, images),
        manifest["region_flags"].tolist(),
    )
    flags["patient"] = manifest["patient"].to_numpy()
    # every capture (patient) is flagged, and on every one of its images, by the feature
    # distance itself (the crop QC finds these crops plausible: it adds nothing here)
    assert flags.groupby("patient")["ood"].min().eq(1).all(), flags
    assert flags["ood_reasons"].str.contains("feature_distance").all()
    assert (flags["ood_distance"] > 1.0).all()


def test_new_images_of_the_training_distribution_are_not_flagged(trained):
    ckpts, reference, base = trained
    new = np.load(make_cohort(base / "fresh", seed=11)["images"])
    ids = [f"I-{k}" for k in range(len(new))]
    flags = ood.check_images(reference, ckpts, new, ids, _probs(ckpts, new))
    # 24 new images: the thresholds are 99th percentiles of the development images, so at most
    # a chance flag or two is expected; the distances stay well below the real captures'
    assert flags["ood"].sum() <= 2, flags
    assert flags["ood_distance"].median() < 0.8


def test_flags_name_every_reason_and_the_reference_round_trips(trained, tmp_path):
    ckpts, reference, _ = trained
    ood.save_reference(reference, tmp_path / "ood.npz")
    back = ood.load_reference(tmp_path / "ood.npz")
    assert set(back) == set(reference)
    assert float(back["threshold"]) == float(reference["threshold"]) >= 1.0
    assert "head" in set(back["layers"]) and len(back["layers"]) >= 3
    probs = np.array([[0.5, 0.52], [0.1, 0.9], [0.4, 0.45]])
    sd_threshold = ood.disagreement_threshold(np.array([[0.5, 0.5], [0.4, 0.45], [0.2, 0.3]]))
    table = ood.flag_images(
        ["I-a", "I-b", "I-c"], np.array([0.2, 0.4, 7.0]), probs, sd_threshold,
        [None, "", "edge_hugging"],
    )  # fmt: skip
    assert list(table["ood_reasons"]) == [
        "",
        "fold_disagreement",
        "feature_distance;crop_qc:edge_hugging",
    ]
    assert list(table["ood"]) == [0, 1, 1]
    np.testing.assert_allclose(table["ood_sd"], np.round(np.std(probs, axis=1), 4))


def test_bad_reference_inputs_are_refused(tmp_path):
    features = {"head": np.zeros((12, 3))}
    with pytest.raises(ConfigError, match="expected as many"):
        ood.fit_features(features, np.zeros(11))
    with pytest.raises(ConfigError, match="expected in"):
        ood.fit_features(features, np.zeros(12), quantile=0.3)
    np.savez(tmp_path / "x.npz", means=np.zeros(1))
    with pytest.raises(ConfigError, match="not an ood reference"):
        ood.load_reference(tmp_path / "x.npz")
    (tmp_path / "y.npz").write_text("no")
    with pytest.raises(ConfigError, match="not readable"):
        ood.load_reference(tmp_path / "y.npz")
