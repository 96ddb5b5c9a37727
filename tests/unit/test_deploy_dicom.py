"""predict's DICOM results: SR, Grad-CAM maps (Segmentation for these screen captures) and the
optional Secondary Capture checked by dciodvfy, dsrdump, pydicom and highdicom against the CSV
(the OOD flags included); the private map names every scored patient and image; sent to a real
Orthanc; PHI only in the DICOM folder and the private map; bad input."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import highdicom as hd
import numpy as np
import pandas as pd
import pydicom
import pytest
from dicom_tools import dciodvfy_errors, dsrdump, orthanc
from study_specs import GOUT
from test_train import GOUT_ARM, GOUT_TRAIN, make_cohort, run

from mskdx.deploy import dicom_out, ood, predict, send, sources
from mskdx.errors import ConfigError, DicomError
from mskdx.ingest import deid
from mskdx.io import read_table
from mskdx.synth import synthesize

KEY_ENV = "MSKDX_DEPLOY_TEST_KEY"
SPEC = dataclasses.replace(GOUT, preprocess={**GOUT.preprocess, "scale": 0.1})  # 70x32
SYNTH = {
    "seed": 3,
    "difficulty": 0.3,
    "gout": {"patients_gout": 2, "patients_control": 2, "images": 8},
}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two 1-epoch fold models of blocks3 at 70x32 and the arm's patient threshold curves."""
    cohort = make_cohort(tmp_path_factory.mktemp("dev"))
    base = tmp_path_factory.mktemp("models")
    checkpoints = {
        f: run(cohort, base / f"fold_{f}", fold=f, train_spec={**GOUT_TRAIN, "epochs": 1})[
            "checkpoint"
        ]
        for f in (0, 1)
    }
    curves = base / "threshold_curves_blocks3.csv"
    pd.DataFrame({"fold": [0, 1], "threshold": [0.3, 0.4], "chosen": [True, True]}).to_csv(
        curves, index=False
    )
    ood.reference_step(
        checkpoints,
        images=cohort["images"],
        manifest=cohort["manifest"],
        splits=cohort["splits"],
        out=base / "ood.npz",
    )
    return checkpoints, curves


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    folder = tmp_path_factory.mktemp("new")
    synthesize("gout", folder, SYNTH)
    return folder / "dicom"


def _predict(dicom, out, models, dicom_out=None, **kw):
    checkpoints, curves = models
    kw.setdefault("ood_reference", curves.parent / "ood.npz")
    return predict.predict_folder(
        dicom,
        out,
        spec=SPEC,
        arm="blocks3",
        arm_spec=GOUT_ARM,
        checkpoints=checkpoints,
        curves=curves,
        image_threshold=0.5,
        key_env=KEY_ENV,
        private_map=out.parent / "private" / "file_map.csv",
        dicom_out=dicom_out,
        **kw,
    )


@pytest.fixture(scope="module")
def scored(models, cohort, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv(KEY_ENV, "deploy-tests-key")
    base = tmp_path_factory.mktemp("run")
    out, private = base / "results" / "predict", base / "private" / "dicom"
    _predict(cohort, out, models, dicom_out=private, gradcam=3, dicom_sc=True)
    yield {
        "out": out,
        "dicom": private,
        "map": read_table(out.parent / "private" / "file_map.csv"),
        "cohort": cohort,
        "images": read_table(out / "images.csv"),
        "patients": read_table(out / "patients.csv"),
        "index": read_table(private / "index.csv"),
    }
    mp.undo()


def _groups(path: Path) -> dict[str, hd.sr.MeasurementsAndQualitativeEvaluations]:
    sr = hd.sr.srread(path)
    return {str(g.tracking_identifier): g for g in sr.content.get_image_measurement_groups()} | {
        str(g.tracking_identifier): g for g in _patient_groups(sr)
    }


def _patient_groups(sr):
    groups = sr.content.get_image_measurement_groups()
    return [g for g in groups if str(g.tracking_identifier).startswith("P-")]


def test_one_sr_per_patient_one_map_per_image_and_one_overlay_per_gradcam_image(scored):
    index = scored["index"]
    assert sorted(index.loc[index["kind"] == "sr", "patient"]) == sorted(
        scored["patients"]["patient"]
    )
    assert (index["kind"] == "sc").sum() == 3
    # one map per image: ultrasound captures have no patient coordinates (their
    # FrameOfReferenceUID notwithstanding): a Segmentation each, no Parametric Map
    maps = index[index["kind"] == "seg"]
    assert sorted(maps["image_id"]) == sorted(scored["images"]["image_id"])
    assert not (index["kind"] == "pm").any()
    for name in index["file"]:
        assert (scored["dicom"] / name).is_file()
    assert not list(scored["dicom"].rglob("*.part"))


def test_every_object_passes_dciodvfy(scored):
    for name in scored["index"]["file"]:
        assert dciodvfy_errors(scored["dicom"] / name) == [], name


def test_dsrdump_reads_every_sr(scored):
    index = scored["index"]
    for row in index[index["kind"] == "sr"].itertuples():
        text = dsrdump(scored["dicom"] / row.file)
        assert "Comprehensive SR" in text and "Imaging Measurement Report" in text
        assert row.patient in text and "mskdx gout/blocks3" in text


def test_sr_values_equal_the_csv(scored):
    images, patients = scored["images"], scored["patients"]
    index = scored["index"]
    for row in index[index["kind"] == "sr"].itertuples():
        groups = _groups(scored["dicom"] / row.file)
        mine = images[images["patient"] == row.patient]
        assert set(groups) == set(mine["image_id"]) | {row.patient}
        for image in mine.itertuples():
            group = groups[image.image_id]
            (prob,) = group.get_measurements()
            assert float(prob.value) == pytest.approx(image.prob, abs=1e-12)
            evaluations = {e.name.value: e.value for e in group.get_qualitative_evaluations()}
            assert evaluations["IMAGECALL"].value == ("GOUT" if image.call else "CONTROL")
            assert evaluations["OOD"].meaning == ("Yes" if image.ood else "No")
        summary = patients.set_index("patient").loc[row.patient]
        values = {m.name.value: float(m.value) for m in groups[row.patient].get_measurements()}
        assert values["OODCOUNT"] == summary["ood_images"]
        assert values["MEANPROB"] == pytest.approx(summary["mean_prob"], abs=1e-12)
        assert values["SHARE"] == pytest.approx(summary["share"], abs=1e-12)
        assert values["PTHRESH"] == pytest.approx(summary["threshold"], abs=1e-12)
        (call,) = groups[row.patient].get_qualitative_evaluations()
        assert call.value.value == ("GOUT" if summary["call"] else "CONTROL")


def test_the_sr_lists_its_patients_maps_and_each_map_references_its_source(scored, cohort):
    by_image = _source_by_image(cohort)
    index = scored["index"]
    for row in index[index["kind"] == "sr"].itertuples():
        sr = pydicom.dcmread(scored["dicom"] / row.file)
        listed = {
            item.ReferencedSOPInstanceUID
            for key in (
                "CurrentRequestedProcedureEvidenceSequence",
                "PertinentOtherEvidenceSequence",
            )
            for study in sr.get(key, [])
            for series in study.ReferencedSeriesSequence
            for item in series.ReferencedSOPSequence
        }
        mine = index[(index["patient"] == row.patient) & index["kind"].isin(["pm", "seg"])]
        assert len(mine) and set(mine["sop_instance_uid"]) <= listed
    for row in index[index["kind"].isin(["pm", "seg"])].itertuples():
        obj = pydicom.dcmread(scored["dicom"] / row.file)
        source = by_image[row.image_id]
        assert obj.StudyInstanceUID == source.StudyInstanceUID
        assert obj.SeriesInstanceUID != source.SeriesInstanceUID
        assert _referenced(obj) == {source.SOPInstanceUID}
        assert obj.pixel_array.shape[-2:] == (source.Rows, source.Columns)


def _referenced(ds) -> set[str]:
    """Every ReferencedSOPInstanceUID anywhere in a dataset."""
    found = set()
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                if "ReferencedSOPInstanceUID" in item:
                    found.add(str(item.ReferencedSOPInstanceUID))
                found |= _referenced(item)
    return found


def test_the_private_map_names_every_scored_patient_and_image(scored, cohort):
    table = scored["map"].astype(str)
    by_image = _source_by_image(cohort)
    images = table[table["kind"] == "scored image"].set_index("key")
    assert sorted(images.index) == sorted(scored["images"]["image_id"])
    for image_id, row in images.iterrows():
        source = by_image[image_id]
        assert row["patient_id"] == source.PatientID
        assert row["study_instance_uid"] == source.StudyInstanceUID
        assert row["accession_number"] == str(source.get("AccessionNumber", "") or "")
        assert row["sop_instance_uid"] == source.SOPInstanceUID
        assert Path(row["path"]).is_file() and Path(row["path"]).is_relative_to(cohort)
    patients = table[table["kind"] == "scored patient"].set_index("key")
    assert sorted(patients.index) == sorted(scored["patients"]["patient"])
    for patient, row in patients.iterrows():
        mine = images[images["message"].str.startswith(f"patient {patient}")]
        assert row["patient_id"] == ";".join(sorted(set(mine["patient_id"])))


def test_images_csv_has_the_ood_columns_and_patients_the_count(scored):
    images, patients = scored["images"], scored["patients"]
    assert {"ood", "ood_reasons", "ood_distance", "ood_sd"} <= set(images.columns)
    assert set(images["ood"]) <= {0, 1}
    counts = images.groupby("patient")["ood"].sum()
    assert patients.set_index("patient")["ood_images"].to_dict() == counts.to_dict()


def _source_by_image(cohort: Path) -> dict[str, pydicom.Dataset]:
    """Independently of mskdx.deploy.sources: each image key -> its source header."""
    out = {}
    for path in cohort.rglob("*.dcm"):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        for frame in range(int(ds.get("NumberOfFrames", 1))):
            out[deid.image_pseudonym(ds.SOPInstanceUID, frame, b"deploy-tests-key")] = ds
    return out


def test_each_item_references_its_source_instance_in_its_study(scored, cohort):
    by_image = _source_by_image(cohort)
    index = scored["index"]
    for row in index[index["kind"] == "sr"].itertuples():
        sr = pydicom.dcmread(scored["dicom"] / row.file)
        for image_id, group in _groups(scored["dicom"] / row.file).items():
            if image_id.startswith("P-"):
                continue
            (ref,) = group.source_images
            assert ref.referenced_sop_instance_uid == by_image[image_id].SOPInstanceUID
            assert ref.referenced_sop_class_uid == by_image[image_id].SOPClassUID
        first_image = next(i for i in _groups(scored["dicom"] / row.file) if i.startswith("I-"))
        source = by_image[first_image]
        assert sr.StudyInstanceUID == source.StudyInstanceUID
        assert sr.PatientID == source.PatientID  # filed with the patient: it holds PHI
        assert sr.SeriesInstanceUID != source.SeriesInstanceUID
        assert "not for diagnosis alone" in sr.SeriesDescription


def test_overlays_are_secondary_captures_in_the_source_study(scored, cohort):
    by_image = _source_by_image(cohort)
    index = scored["index"]
    for row in index[index["kind"] == "sc"].itertuples():
        sc = pydicom.dcmread(scored["dicom"] / row.file)
        source = by_image[row.image_id]
        assert sc.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
        assert sc.StudyInstanceUID == source.StudyInstanceUID
        assert sc.SeriesInstanceUID != source.SeriesInstanceUID
        assert sc.SOPInstanceUID != source.SOPInstanceUID
        assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
        assert "AI result" in sc.SeriesDescription
        assert "not for diagnosis alone" in sc.SeriesDescription
        pixels = sc.pixel_array
        assert pixels.shape == (32, 70, 3) and sc.PhotometricInterpretation == "RGB"
        assert np.ptp(pixels[..., 0].astype(int) - pixels[..., 2].astype(int)) > 0  # colour


def test_a_rerun_writes_the_same_instances(scored, models, cohort, tmp_path):
    images, patients = scored["images"], scored["patients"]
    frames = _frames(cohort)
    manifest = images[["image_id", "patient"]].assign(
        frame=images["image_id"].map(frames), region=0
    )
    found = sources.find_sources(cohort, manifest, SPEC.modalities, b"deploy-tests-key")
    model = dicom_out.ModelInfo(
        study="gout",
        arm="blocks3",
        version=dicom_out.model_version(list(models[0].values())),
        folds=(0, 1),
        positive="gout",
        negative="control",
        image_threshold=0.5,
        patient_threshold=float(patients["threshold"].iloc[0]),
    )
    again = dicom_out.write_dicom_results(tmp_path, found, images, patients, model)
    first = scored["index"][scored["index"]["kind"] == "sr"]
    assert sorted(again["sop_instance_uid"]) == sorted(first["sop_instance_uid"])


def _frames(cohort: Path) -> dict[str, int]:
    frames = {}
    for path in cohort.rglob("*.dcm"):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        for frame in range(int(ds.get("NumberOfFrames", 1))):
            frames[deid.image_pseudonym(ds.SOPInstanceUID, frame, b"deploy-tests-key")] = frame
    return frames


def test_results_hold_no_phi_and_the_dicom_folder_does(scored, cohort):
    """The PHI scan of tests/workflow/test_privacy.py, on predict's outputs: the input headers'
    PHI values, the source UIDs and the input paths are in the DICOM folder and nowhere else."""
    values: set[str] = set()
    for path in cohort.rglob("*.dcm"):
        values |= deid.phi_values(path)
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        values |= {ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID}
        values |= {part for part in path.relative_to(cohort).parts[:-1]}
    values = {v for v in values if len(v) >= 6}
    assert len(values) > 10
    hits = []
    for path in scored["out"].rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits += [f"{path.name}: {v}" for v in values if v.encode() in data]
    assert not hits, hits[:10]
    in_dicom = b"".join(p.read_bytes() for p in scored["dicom"].rglob("*.dcm"))
    assert any(v.encode() in in_dicom for v in values)  # the scan would see a leak


def test_objects_arrive_in_a_real_orthanc_and_a_rerun_sends_only_the_rest(scored, tmp_path):
    folder = tmp_path / "dicom"
    shutil.copytree(scored["dicom"], folder)
    index = scored["index"]
    with orthanc(tmp_path / "pacs") as pacs:
        assert send.send_folder(folder, pacs.peer) == len(index)
        stored = {
            pacs.json(f"/instances/{i}/simplified-tags")["SOPInstanceUID"]: i
            for i in pacs.json("/instances")
        }
        assert set(stored) == set(index["sop_instance_uid"])
        ledger = send.read_ledger(folder)
        assert sorted(ledger["sop_instance_uid"]) == sorted(index["sop_instance_uid"])
        # the SR's values, read back from the archive
        sr_row = index[index["kind"] == "sr"].iloc[0]
        (tmp_path / "back.dcm").write_bytes(
            pacs.get(f"/instances/{stored[sr_row.sop_instance_uid]}/file")
        )
        back = _groups(tmp_path / "back.dcm")
        images = scored["images"].set_index("image_id")
        for image_id, group in back.items():
            if image_id.startswith("I-"):
                assert float(group.get_measurements()[0].value) == pytest.approx(
                    images.loc[image_id, "prob"], abs=1e-12
                )
        assert send.send_folder(folder, pacs.peer) == 0  # all stored: nothing again
        ledger.iloc[1:].to_csv(folder / send.LEDGER, index=False)
        assert send.send_folder(folder, pacs.peer) == 1  # only what the ledger lacks
        assert len(pacs.json("/instances")) == len(index)
        wrong = pacs.peer.replace(pacs.aet, "NOTTHEPACS")
        with pytest.raises(
            send.SendError, match=r"NOTTHEPACS@127\.0\.0\.1.*rejected.*Called AE title"
        ):
            send.send_folder(folder, wrong)
    with pytest.raises(send.SendError, match="cannot be reached"):
        send.send_folder(folder, pacs.peer.replace(pacs.aet, "GONE"))
    assert all((folder / name).is_file() for name in index["file"])


def test_a_bad_peer_or_folder_is_refused_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="expected AET@host:port"):
        send.parse_peer("ORTHANC:4242")
    with pytest.raises(ConfigError, match="no index.csv"):
        send.send_folder(tmp_path, "PACS@127.0.0.1:4242")


def test_dicom_out_inside_results_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="inside the results folder"):
        predict.refuse_under_results(tmp_path / "results" / "x" / "dicom", tmp_path / "results")
    predict.refuse_under_results(tmp_path / "private" / "dicom", tmp_path / "results")


def test_an_unwritable_dicom_out_names_the_folder_and_writes_nothing(
    models, cohort, tmp_path, monkeypatch
):
    monkeypatch.setenv(KEY_ENV, "deploy-tests-key")
    (tmp_path / "a_file").write_text("")
    target = tmp_path / "a_file" / "dicom"
    with pytest.raises(ConfigError, match=f"{target}: cannot write there"):
        _predict(cohort, tmp_path / "out", models, dicom_out=target)
    assert not (tmp_path / "out" / "images.csv").exists()


def test_a_source_without_study_uid_names_the_file_and_writes_nothing(
    models, cohort, tmp_path, monkeypatch
):
    monkeypatch.setenv(KEY_ENV, "deploy-tests-key")
    folder = tmp_path / "dicom"
    shutil.copytree(cohort, folder)
    victim = sorted(folder.rglob("*.dcm"))[0]
    ds = pydicom.dcmread(victim)
    del ds.StudyInstanceUID
    ds.save_as(victim)
    with pytest.raises(
        DicomError, match="F-[0-9a-f]{12}: the source file has no StudyInstanceUID"
    ) as err:
        _predict(folder, tmp_path / "out", models, dicom_out=tmp_path / "dicom_out")
    assert str(victim) in err.value.terminal and str(victim) not in str(err.value)
    assert not list((tmp_path / "dicom_out").rglob("*.dcm"))
    assert not (tmp_path / "out" / "images.csv").exists()


def test_a_folder_of_another_modality_is_refused_and_nothing_written(models, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "deploy-tests-key")
    synthesize(
        "olt",
        tmp_path / "mri",
        {
            "seed": 1,
            "difficulty": 0.3,
            "olt": {
                "subjects_patient": 1,
                "subjects_healthy": 1,
                "images": {"T1": {"patient": 1, "healthy": 1}, "T2": {"patient": 1, "healthy": 1}},
                "size": 64,
            },
        },
    )
    with pytest.raises(DicomError, match="trained on US/SC/OT images"):
        _predict(
            tmp_path / "mri" / "dicom", tmp_path / "out", models, dicom_out=tmp_path / "dicom_out"
        )
    assert not list((tmp_path / "dicom_out").rglob("*.dcm"))


def test_the_cli_refuses_dicom_out_under_results_before_any_work(tmp_path, caplog):
    from mskdx import cli

    (tmp_path / "config.yaml").write_text("studies: {}\n")
    code = cli.main(
        [
            "predict",
            "--study",
            "gout",
            "--arm",
            "blocks3",
            "--dicom",
            str(tmp_path / "nowhere"),
            "--out",
            str(tmp_path / "out"),
            "--configfile",
            str(tmp_path / "config.yaml"),
            "--results",
            str(tmp_path / "results"),
            "--dicom-out",
            str(tmp_path / "results" / "gout" / "dicom"),
        ]
    )
    assert code == 2 and "inside the results folder" in caplog.text
    assert not (tmp_path / "out").exists() and not (tmp_path / "results").exists()
