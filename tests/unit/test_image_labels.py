"""mskdx.ingest.image_labels: the image label sheet read, checked by line number and matched to
the files without echoing its identifiers; extraction with an image sheet (issue 38)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest
from study_specs import GOUT, OLT

from mskdx.errors import ConfigError, LabelError
from mskdx.ingest import deid
from mskdx.ingest.dicom import DicomHeader
from mskdx.ingest.extract import StudySpec, extract_study
from mskdx.ingest.image_labels import (
    ImageLabelSpec,
    check_agreement,
    check_coverage,
    finding_column,
    match_image_sheet,
    read_image_sheet,
)
from mskdx.ingest.label_levels import patient_level
from mskdx.io import read_table
from mskdx.synth import synthesize_gout, synthesize_olt

UID_SPEC = {
    "key": "uid",
    "key_column": "SOPInstanceUID",
    "frame_column": "frame",
    "label_column": "image_label",
    "positive": "abnormal",
    "negative": "normal",
    "findings": ["DCs", "tophus", "aggregates", "erosion"],
}
PATH_SPEC = {
    "key": "path",
    "key_column": "path",
    "frame_column": "frame",
    "label_column": "image_label",
    "positive": "abnormal",
    "negative": "normal",
}
KEY = b"image-label-test-key"
UID = "1.2.826.0.1.3680043.8.498.99"  # an identifier that must never reach a message


def spec(**overrides) -> ImageLabelSpec:
    return ImageLabelSpec.from_config({**UID_SPEC, **overrides})


def sheet(tmp_path: Path, text: str, name: str = "image_labels.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def sheet_error(path: Path, image_spec: ImageLabelSpec) -> str:
    with pytest.raises(LabelError) as info:
        read_image_sheet(path, image_spec)
    message = str(info.value)
    assert message.startswith(str(path)) and UID not in message, message
    return message


def header(patient: str, n: int, frames: int = 1) -> DicomHeader:
    return DicomHeader(
        path=Path(f"/data/{patient}/img{n}.dcm"),
        patient_id=patient,
        sop_instance_uid=f"{UID}.{n}",
        modality="US",
        sop_class_uid="1.2.840.10008.5.1.4.1.1.6.1",
        series_description="",
        protocol_name="",
        series_instance_uid="1.2.3",
        number_of_frames=frames,
        rows=8,
        columns=8,
        photometric="MONOCHROME2",
        transfer_syntax="1.2.840.10008.1.2.1",
    )


HEADER = "SOPInstanceUID,frame,image_label,DCs,tophus,aggregates,erosion\n"


def test_sheet_is_read_with_frames_and_findings(tmp_path):
    path = sheet(
        tmp_path,
        HEADER
        + f"{UID}.1,,Abnormal,yes,0,,2\n\n"
        + f"{UID}.2,2, normal ,no,no,no,no\n{UID}.2,1,abnormal,x,,,\n",
    )
    rows = read_image_sheet(path, spec()).rows
    assert [(r.line, r.key, r.frame, r.label) for r in rows] == [
        (2, f"{UID}.1", None, 1),
        (4, f"{UID}.2", 1, 0),
        (5, f"{UID}.2", 0, 1),
    ]
    assert rows[0].findings == {
        "finding_dcs": 1,
        "finding_tophus": 0,
        "finding_aggregates": None,
        "finding_erosion": 2,
    }
    assert finding_column("Double contour ") == "finding_double_contour"


def test_path_keys_are_normalised(tmp_path):
    path = sheet(tmp_path, "path,frame,image_label\n./P1\\2020\\IM_1.dcm,,normal\n")
    rows = read_image_sheet(path, ImageLabelSpec.from_config(PATH_SPEC)).rows
    assert rows[0].key == "P1/2020/IM_1.dcm"


def test_bad_rows_are_named_by_line_number_never_by_key(tmp_path):
    path = sheet(
        tmp_path,
        HEADER
        + f"{UID}.1,,abnormal,1,0,0,0\n"
        + ",,normal,0,0,0,0\n"  # line 3: no key
        + f"{UID}.2,0,normal,0,0,0,0\n"  # line 4: frame 0 (frames count from 1)
        + f"{UID}.3,,abnrmal,0,0,0,0\n"  # line 5: typo
        + f"{UID}.4,,normal,maybe,0,0,0\n",  # line 6: a finding that is no yes/no or count
    )
    message = sheet_error(path, spec())
    assert "no 'SOPInstanceUID': lines 3" in message
    assert "'frame' is not a frame number" in message and "lines 4" in message
    assert "'image_label' must be 'abnormal' or 'normal': lines 5" in message
    assert "unknown label values: ['abnrmal']" in message
    assert "finding 'DCs'" in message and "lines 6" in message


def test_label_column_of_identifiers_is_not_shown(tmp_path):
    rows = "".join(f"{UID}.{n},,{UID}.{n + 50},0,0,0,0\n" for n in range(6))
    message = sheet_error(sheet(tmp_path, HEADER + rows), spec())
    assert "values not shown" in message and "lines 2, 3, 4, 5, 6, 7" in message


def test_duplicated_images_are_refused(tmp_path):
    path = sheet(
        tmp_path,
        HEADER
        + f"{UID}.1,1,abnormal,1,0,0,0\n"
        + f"{UID}.1,1,normal,0,0,0,0\n"  # same frame again
        + f"{UID}.2,,normal,0,0,0,0\n"
        + f"{UID}.2,3,abnormal,1,0,0,0\n"  # a frame of a file already labelled as a whole
        + f"{UID}.1,2,normal,0,0,0,0\n",  # another frame: fine
    )
    message = sheet_error(path, spec())
    assert "the same image appears in lines 2 and 3; 4 and 5" in message


def test_missing_columns_file_and_header(tmp_path):
    message = sheet_error(sheet(tmp_path, "uid,frame,image_label\n1,,normal\n"), spec())
    assert "missing column(s) ['SOPInstanceUID', 'DCs', 'tophus', 'aggregates', 'erosion']" in (
        message
    )
    message = sheet_error(sheet(tmp_path, f"{UID},,normal,0,0,0,0\n", "x.csv"), spec())
    assert "line 1 holds a label value" in message
    with pytest.raises(LabelError, match="image label sheet not found"):
        read_image_sheet(tmp_path / "absent.csv", spec())


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"key": "accession"}, "key = 'accession'"),
        ({"on_missing": "ignore"}, "on_missing"),
        ({"on_control_abnormal": "skip"}, "on_control_abnormal"),
        ({"negative": "Abnormal"}, "two different values"),
        ({"label_column": ""}, r"missing \['label_column'\]"),
        ({"findings": ["frame"]}, "named twice"),
        ({"findings": ["DC s", "DC-s"]}, "give columns"),
    ],
)
def test_config_errors(overrides, match):
    with pytest.raises(ConfigError, match=match):
        spec(**overrides)


def test_rows_without_an_image_and_frames_beyond_the_file(tmp_path):
    headers = [header("A", 1), header("A", 2, frames=3)]
    path = sheet(
        tmp_path,
        HEADER
        + f"{UID}.1,,normal,0,0,0,0\n"
        + f"{UID}.9,,normal,0,0,0,0\n"  # line 3: no such file
        + f"{UID}.2,4,normal,0,0,0,0\n",  # line 4: the file has 3 frames
    )
    with pytest.raises(LabelError) as info:
        match_image_sheet(read_image_sheet(path, spec()), headers, "/data")
    message = str(info.value)
    assert "1 of 3 rows name no image" in message and "lines 3" in message
    assert "1 rows give a frame beyond" in message and "lines 4" in message
    assert UID not in message
    assert f"line 3: {UID}.9" in info.value.terminal and f"line 4: {UID}.2" in info.value.terminal


def test_rows_of_refused_files_are_left_out_with_a_warning(tmp_path, caplog):
    headers = [header("A", 1)]
    path = sheet(tmp_path, "path,frame,image_label\nA/img1.dcm,,normal\nA/bad.dcm,,abnormal\n")
    with caplog.at_level(logging.WARNING):
        matched = match_image_sheet(
            read_image_sheet(path, ImageLabelSpec.from_config(PATH_SPEC)),
            headers,
            "/data",
            refused=["A/bad.dcm"],
        )
    assert matched.row(0, 0).line == 2
    assert "1 rows name files that were refused" in caplog.text


def test_images_without_a_row_stop_or_are_skipped(tmp_path, caplog):
    headers = [header("A", 1), header("A", 2, frames=3), header("B", 3)]
    path = sheet(
        tmp_path,
        HEADER + f"{UID}.1,,normal,0,0,0,0\n{UID}.2,2,abnormal,1,0,0,0\n",
    )
    image_sheet = read_image_sheet(path, spec())
    kept = [[0], [0, 1, 2], [0]]
    with pytest.raises(LabelError) as info:
        check_coverage(match_image_sheet(image_sheet, headers, "/data"), headers, kept, "s", KEY)
    message = str(info.value)
    assert "3 of 5 images (of 2 patients) have no row" in message and UID not in message
    assert deid.image_pseudonym(f"{UID}.3", 0, KEY) in message
    assert f"{UID}.2 frame 3" in info.value.terminal
    skip = spec(on_missing="skip")
    matched = match_image_sheet(read_image_sheet(path, skip), headers, "/data")
    with caplog.at_level(logging.WARNING):
        missing = check_coverage(matched, headers, kept, "s", KEY)
    assert matched.skipped == set(missing) == {(1, 0), (1, 2), (2, 0)}
    assert "3 of 5 images (of 2 patients) have no row" in caplog.text


def test_abnormal_images_of_a_control_warn_or_stop(tmp_path, caplog):
    headers = [header("CTRL-7", 1), header("GOUT-1", 2)]
    path = sheet(tmp_path, HEADER + f"{UID}.1,,abnormal,1,0,0,0\n{UID}.2,,normal,0,0,0,0\n")
    patients = {"CTRL-7": 0, "GOUT-1": 1}
    matched = match_image_sheet(read_image_sheet(path, spec()), headers, "/data")
    with caplog.at_level(logging.WARNING):
        check_agreement(matched, headers, patients, "s", KEY)
    assert "1 patients labelled negative" in caplog.text and "lines 2" in caplog.text
    assert "1 positive patients have no abnormal image" in caplog.text
    assert "CTRL-7" not in caplog.text and deid.patient_pseudonym("CTRL-7", KEY) in caplog.text
    matched = match_image_sheet(
        read_image_sheet(path, spec(on_control_abnormal="stop")), headers, "/data"
    )
    with pytest.raises(LabelError, match="lines 2") as info:
        check_agreement(matched, headers, patients, "s", KEY)
    assert "CTRL-7" not in str(info.value)


def test_patient_level_takes_the_patient_label():
    table = pd.DataFrame({"patient": ["P-1", "P-1"], "label": [1, 0], "patient_label": [1, 1]})
    assert patient_level(table)["label"].tolist() == [1, 1]
    older = table.drop(columns="patient_label")
    assert patient_level(older)["label"].tolist() == [1, 0]


# --- extraction with the synthetic cohorts' image sheets -------------------------------------


@pytest.fixture(scope="module")
def gout_cohort(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gout") / "cohort"
    synthesize_gout(out, patients_gout=3, patients_control=2, images=14, seed=5)
    return out


def extract(cohort: Path, spec: StudySpec, out: Path, image_sheet: Path | None, **kw):
    names = {"images": "npy", "masks": "npy", "manifest": "csv", "refused": "csv"}
    return extract_study(
        cohort / "dicom",
        cohort / "labels.csv",
        spec=spec,
        masks_path=cohort / "masks.npz",
        on_error="stop",
        key_env="MSKDX_TEST_KEY",
        image_labels_path=image_sheet,
        **{name: out / f"{name}.{ext}" for name, ext in names.items()},
        **kw,
    )


def with_images(base: StudySpec, image_spec: dict, **overrides) -> StudySpec:
    return StudySpec(
        study=base.study,
        modalities=base.modalities,
        preprocess=base.preprocess,
        labels={**base.labels, "images": {**image_spec, **overrides}},
        sequences=base.sequences,
    )


def test_gout_extraction_with_the_image_sheet(gout_cohort, tmp_path):
    spec_ = with_images(GOUT, UID_SPEC)
    table = extract(gout_cohort, spec_, tmp_path, gout_cohort / "image_labels.csv")
    written = read_table(tmp_path / "manifest.csv", "manifest")
    assert written["label"].tolist() == table["label"].tolist()
    # image label: abnormal iff the frame's mask shows a lesion (the crops keep every lesion)
    assert (table["label"] == table["lesion"].astype(int)).all()
    # the patient's diagnosis stays beside it; gout patients have normal images, controls none
    assert ((table.patient_label == 1) & (table.label == 0)).any()
    assert not ((table.patient_label == 0) & (table.label == 1)).any()
    assert (table.groupby("patient").patient_label.nunique() == 1).all()
    findings = ["finding_dcs", "finding_tophus", "finding_aggregates", "finding_erosion"]
    assert (table.loc[table.label == 1, findings].sum(axis=1) >= 1).all()
    assert (table.loc[table.label == 0, findings].sum(axis=1) == 0).all()
    text = (tmp_path / "manifest.csv").read_text()
    uids = pd.read_csv(gout_cohort / "image_labels.csv", dtype=str).SOPInstanceUID
    assert not any(uid in text for uid in uids)
    # without the image sheet: the patient's diagnosis on every image, as before
    plain = extract(gout_cohort, GOUT, tmp_path / "plain", None)
    assert (plain.label == plain.patient_label).all()
    assert plain.image_id.tolist() == table.image_id.tolist()


def test_gout_image_without_a_row_stops_or_is_skipped(gout_cohort, tmp_path):
    cohort = tmp_path / "cohort"
    shutil.copytree(gout_cohort, cohort)
    rows = pd.read_csv(gout_cohort / "image_labels.csv", dtype=str, keep_default_na=False)
    single = rows.index[rows.frame == ""][0]
    rows.drop(index=single).to_csv(cohort / "image_labels.csv", index=False)
    with pytest.raises(LabelError, match="1 of 14 images"):
        extract(cohort, with_images(GOUT, UID_SPEC), tmp_path / "a", cohort / "image_labels.csv")
    assert not (tmp_path / "a" / "manifest.csv").exists()
    spec_ = with_images(GOUT, UID_SPEC, on_missing="skip")
    table = extract(cohort, spec_, tmp_path / "b", cohort / "image_labels.csv")
    assert len(table) == 13  # one frame (two crops if a dual view) fewer


def test_olt_extraction_with_a_sheet_keyed_by_path(tmp_path):
    cohort = tmp_path / "olt"
    synthesize_olt(
        cohort,
        subjects_patient=2,
        subjects_healthy=2,
        images={"T1": {"patient": 3, "healthy": 3}, "T2": {"patient": 3, "healthy": 3}},
        size=64,
        seed=4,
    )
    rows = pd.read_csv(cohort / "image_labels.csv", dtype=str, keep_default_na=False)
    assert list(rows.columns) == ["path", "frame", "image_label"]
    # a patient's slices may differ: mark one of a patient's images normal
    labels = pd.read_csv(cohort / "labels.csv", dtype=str)
    patient = labels.patient_id[labels.diagnosis == "patient"].iloc[0]
    first = rows.index[rows.path.str.startswith(patient + "/")][0]
    rows.loc[first, "image_label"] = "normal"
    rows.to_csv(cohort / "image_labels.csv", index=False)
    table = extract(
        cohort, with_images(OLT, PATH_SPEC), tmp_path / "out", cohort / "image_labels.csv"
    )
    mixed = table[table.patient == deid.patient_pseudonym(patient, deid.DEMO_KEY)]
    assert set(mixed.label) == {0, 1} and set(mixed.patient_label) == {1}
    assert patient not in (tmp_path / "out" / "manifest.csv").read_text()
