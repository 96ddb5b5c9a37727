"""The clinical loop end to end with the `mskdx predict` command against a real Orthanc with its
DICOMweb plugin: a synthetic gout study stored in the PACS is predicted by StudyInstanceUID over
DICOMweb (results back by STOW-RS) and by AccessionNumber over DIMSE (results back by C-STORE);
QIDO-RS then finds the SR and the Grad-CAM maps in the source study, every reference resolves,
the SR's values equal images.csv, nothing is stored twice, the retrieved files are removed
unless kept, and the query's identifiers reach neither the tables nor the log."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import highdicom as hd
import pandas as pd
import pydicom
import pytest
from dicom_tools import dciodvfy_errors, orthanc
from study_specs import GOUT
from test_train import GOUT_ARM, GOUT_TRAIN, make_cohort, run

from mskdx import cli
from mskdx.config.layout import Layout
from mskdx.deploy import ood
from mskdx.io import read_table
from mskdx.learn.arm_settings import ARM_FORMAT, write_arm_settings
from mskdx.synth import synthesize

dicomweb_client = pytest.importorskip("dicomweb_client")

KEY_ENV = "MSKDX_LOOP_TEST_KEY"
SPEC = dataclasses.replace(GOUT, preprocess={**GOUT.preprocess, "scale": 0.1})  # 70x32
SYNTH = {
    "seed": 5,
    "difficulty": 0.3,
    "gout": {"patients_gout": 1, "patients_control": 1, "images": 3},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A results/ tree as the workflow leaves it for gout/blocks3: two 1-epoch fold models,
    arm.json, the threshold curves and ood.npz."""
    root = tmp_path_factory.mktemp("run")
    layout = Layout({}, results=root / "results", private=root / "private")
    cohort = make_cohort(root / "cache")
    checkpoints = {}
    for fold in (0, 1):
        folder = layout.model_dir("gout", "blocks3", fold)
        spec = {**GOUT_TRAIN, "epochs": 1}
        checkpoints[fold] = run(cohort, folder, fold=fold, train_spec=spec)["checkpoint"]
    write_arm_settings(
        layout.arm_settings_file("gout", "blocks3"),
        {
            "format": ARM_FORMAT,
            "study": "gout",
            "arm": "blocks3",
            "folds": [0, 1],
            "extract": dataclasses.asdict(SPEC),
            "model": GOUT_ARM,
            "image_threshold": 0.5,
            "threads": 1,
            "key_env": KEY_ENV,
        },
    )
    curves = layout.threshold_curves("gout", "blocks3")
    curves.parent.mkdir(parents=True)
    pd.DataFrame({"fold": [0, 1], "threshold": [0.3, 0.4], "chosen": [True, True]}).to_csv(
        curves, index=False
    )
    ood.reference_step(
        checkpoints,
        images=cohort["images"],
        manifest=cohort["manifest"],
        splits=cohort["splits"],
        out=layout.ood_reference("gout", "blocks3"),
    )
    return root, layout


@pytest.fixture(scope="module")
def pacs(tmp_path_factory):
    """Orthanc (DICOMweb + DIMSE) holding a synthetic gout cohort: one study per patient."""
    base = tmp_path_factory.mktemp("pacs")
    synthesize("gout", base / "cohort", SYNTH)
    files = sorted((base / "cohort" / "dicom").rglob("*.dcm"))
    with orthanc(base / "orthanc", dicomweb=True) as server:
        for path in files:
            server.upload(path)
        first = pydicom.dcmread(files[0], stop_before_pixels=True)
        study = [f for f in files if pydicom.dcmread(f).StudyInstanceUID == first.StudyInstanceUID]
        yield server, first, study


def _predict(root: Path, out: str, *args: str) -> int:
    return cli.main(
        [
            "predict",
            "--study",
            "gout",
            "--arm",
            "blocks3",
            "--results",
            str(root / "results"),
            "--private",
            str(root / "private"),
            "--out",
            str(root / out),
            *args,
        ]
    )


@pytest.fixture(scope="module")
def looped(trained, pacs, tmp_path_factory):
    """Both ways round: DICOMweb by UID + STOW-RS, then DIMSE by accession + C-STORE (kept)."""
    root, layout = trained
    server, first, _ = pacs
    mp = pytest.MonkeyPatch()
    mp.setenv(KEY_ENV, "loop-test-key")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("mskdx").addHandler(handler)
    try:
        web = _predict(
            root, "out_web", "--from-pacs", server.dicomweb, "--study-uid",
            str(first.StudyInstanceUID), "--dicom-out", str(root / "private" / "dicom_web"),
            "--dicom-send", server.dicomweb,
        )  # fmt: skip
        dimse = _predict(
            root, "out_dimse", "--from-pacs", f"dimse://{server.peer}", "--accession",
            str(first.AccessionNumber), "--keep-retrieved", "--dicom-out",
            str(root / "private" / "dicom_dimse"), "--dicom-send", server.peer,
        )  # fmt: skip
    finally:
        logging.getLogger("mskdx").removeHandler(handler)
        mp.undo()
    assert (web, dimse) == (0, 0)
    log_text = "\n".join(r.getMessage() for r in records)
    return root, layout, log_text


def test_the_predictions_are_the_same_both_ways(looped, pacs):
    root, _, _ = looped
    _, _, study = pacs
    web = read_table(root / "out_web" / "images.csv")
    dimse = read_table(root / "out_dimse" / "images.csv")
    assert len(web) == len(study) and web["patient"].nunique() == 1
    pd.testing.assert_frame_equal(web, dimse)
    assert {"ood", "ood_reasons", "ood_distance", "ood_sd"} <= set(web.columns)


def test_results_and_maps_are_in_the_source_study_once(looped, pacs):
    root, _, _ = looped
    server, first, study = pacs
    client = dicomweb_client.DICOMwebClient(server.dicomweb)
    uid = str(first.StudyInstanceUID)
    instances = client.search_for_instances(uid)
    found = {i["00080018"]["Value"][0]: i["00080016"]["Value"][0] for i in instances}
    index = read_table(root / "private" / "dicom_web" / "index.csv")
    # the source images, one SR, one Grad-CAM map per image (Segmentation: ultrasound has no
    # patient coordinates): each exactly once, though both runs sent them
    assert len(instances) == len(study) + 1 + len(study)
    assert set(index["sop_instance_uid"]) <= set(found)
    assert sorted(index["kind"]) == ["seg"] * len(study) + ["sr"]
    dimse_index = read_table(root / "private" / "dicom_dimse" / "index.csv")
    assert set(dimse_index["sop_instance_uid"]) == set(index["sop_instance_uid"])
    for folder in ("dicom_web", "dicom_dimse"):
        ledger = read_table(root / "private" / folder / "sent.csv")
        assert sorted(ledger["sop_instance_uid"]) == sorted(index["sop_instance_uid"])


def test_the_sr_read_back_by_wado_equals_images_csv_and_its_references_resolve(looped, pacs):
    root, _, _ = looped
    server, first, _ = pacs
    client = dicomweb_client.DICOMwebClient(server.dicomweb)
    uid = str(first.StudyInstanceUID)
    series = client.search_for_series(uid, search_filters={"Modality": "SR"})
    assert len(series) == 1
    (sr,) = client.retrieve_series(uid, series[0]["0020000E"]["Value"][0])
    in_study = {i["00080018"]["Value"][0] for i in client.search_for_instances(uid)}
    evidence = {
        item.ReferencedSOPInstanceUID
        for study in sr.CurrentRequestedProcedureEvidenceSequence
        for s in study.ReferencedSeriesSequence
        for item in s.ReferencedSOPSequence
    }
    # the SR lists the source images and the maps, all of them in the study
    assert evidence == in_study - {sr.SOPInstanceUID}
    report = hd.sr.ComprehensiveSR.from_dataset(sr)
    images = read_table(root / "out_web" / "images.csv").set_index("image_id")
    groups = {str(g.tracking_identifier): g for g in report.content.get_image_measurement_groups()}
    for image_id, row in images.iterrows():
        group = groups[image_id]
        assert float(group.get_measurements()[0].value) == pytest.approx(row["prob"], abs=1e-12)
        (ref,) = group.source_images
        assert ref.referenced_sop_instance_uid in in_study
        evaluations = {e.name.value: e.value for e in group.get_qualitative_evaluations()}
        assert evaluations["OOD"].meaning == ("Yes" if row["ood"] else "No")


def test_every_object_sent_passes_dciodvfy(looped):
    root, _, _ = looped
    index = read_table(root / "private" / "dicom_web" / "index.csv")
    for name in index["file"]:
        assert dciodvfy_errors(root / "private" / "dicom_web" / name) == [], name


def test_retrieved_files_are_removed_unless_kept_and_identifiers_stay_private(looped, pacs):
    root, layout, log_text = looped
    _, first, study = pacs
    retrieved = layout.predict_retrieved("gout", "blocks3")
    kept = list(retrieved.iterdir())
    assert len(kept) == 1  # the DIMSE run's (--keep-retrieved); the DICOMweb run's is gone
    # the study as the second run found it: its images and the first run's results (which
    # the extraction refused: not images)
    got = {
        str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in kept[0].iterdir()
    }
    sources = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in study}
    assert sources < got
    secrets = [str(first.StudyInstanceUID), str(first.AccessionNumber), str(first.PatientID)]
    assert all(len(s) >= 4 for s in secrets)
    for out in ("out_web", "out_dimse"):
        for path in (root / out).rglob("*"):
            if path.is_file():
                assert not any(s.encode() in path.read_bytes() for s in secrets), path
    assert not any(s in log_text for s in secrets)
    # the private map is where a result is traced back to the patient
    table = read_table(layout.predict_private_map("gout", "blocks3")).astype(str)
    scored = table[table["kind"] == "scored patient"]
    assert list(scored["patient_id"]) == [str(first.PatientID)]
    assert list(scored["accession_number"]) == [str(first.AccessionNumber)]
    assert list(scored["study_instance_uid"]) == [str(first.StudyInstanceUID)]


def test_a_pacs_query_without_a_study_is_refused_before_any_work(trained, caplog):
    root, _ = trained
    code = _predict(root, "out_bad", "--from-pacs", "http://127.0.0.1:1/dicom-web")
    assert code == 2 and "exactly one of --study-uid and --accession" in caplog.text
    code = _predict(root, "out_bad", "--dicom", str(root), "--study-uid", "1.2.3")
    assert code == 2 and "go with --from-pacs" in caplog.text
    assert not (root / "out_bad").exists()
