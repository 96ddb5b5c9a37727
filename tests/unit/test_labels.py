"""mskdx.ingest.labels: reading the label sheet and joining it to the images, without leaking
IDs."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from mskdx.errors import ConfigError, LabelError
from mskdx.ingest.deid import patient_pseudonym
from mskdx.ingest.dicom import DicomHeader
from mskdx.ingest.labels import join_labels, read_label_sheet

ARGS = {
    "patient_column": "patient_id",
    "label_column": "diagnosis",
    "positive": "gout",
    "negative": "control",
}
KEY = b"label-test-key"


def sheet(tmp_path: Path, text: str, name: str = "labels.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def label_error(path: Path, **overrides) -> str:
    with pytest.raises(LabelError) as info:
        read_label_sheet(path, **{**ARGS, **overrides})
    message = str(info.value)
    assert message.startswith(str(path)), message
    return message


def header(patient: str, n: int) -> DicomHeader:
    return DicomHeader(
        path=Path(f"/data/{patient}/img{n}.dcm"),
        patient_id=patient,
        sop_instance_uid=f"1.2.3.{n}",
        modality="US",
        sop_class_uid="1.2.840.10008.5.1.4.1.1.6.1",
        series_description="",
        protocol_name="",
        series_instance_uid="1.2.3",
        number_of_frames=1,
        rows=8,
        columns=8,
        photometric="MONOCHROME2",
        transfer_syntax="1.2.840.10008.1.2.1",
    )


def test_read_label_sheet(tmp_path):
    path = sheet(
        tmp_path, "patient_id,diagnosis,age\nA-001,gout,50\nA-002,control,61\n007,Gout ,40\n"
    )
    assert read_label_sheet(path, **ARGS) == {"A-001": 1, "A-002": 0, "007": 1}


def test_read_label_sheet_tolerates_bom_semicolons_blank_rows_and_spaces(tmp_path):
    text = "\ufeff Patient_ID ;Diagnosis\r\n A-001 ; gout\r\n;\r\n\r\nA-002;CONTROL\r\n"
    path = sheet(tmp_path, text)
    assert read_label_sheet(path, **ARGS) == {"A-001": 1, "A-002": 0}


def test_missing_file(tmp_path):
    with pytest.raises(LabelError, match="not found"):
        read_label_sheet(tmp_path / "absent.csv", **ARGS)


def test_missing_columns_lists_what_was_found(tmp_path):
    path = sheet(tmp_path, "id,label\nA-001,gout\n")
    message = label_error(path)
    assert "'patient_id'" in message and "'diagnosis'" in message
    assert "['id', 'label']" in message


def test_missing_one_column(tmp_path):
    message = label_error(sheet(tmp_path, "patient_id,dx\nA-001,gout\n"))
    assert "['diagnosis']" in message and "['patient_id', 'dx']" in message


@pytest.mark.parametrize(
    "text", ["", "\n\n", "patient_id,diagnosis\n", "patient_id,diagnosis\n,\n\n"]
)
def test_empty_sheet(tmp_path, text):
    message = label_error(sheet(tmp_path, text))
    assert "empty" in message or "no patient rows" in message


def test_duplicated_patient_names_rows_not_the_patient(tmp_path):
    rows = [
        "A-001,gout",
        "SECRET-42,gout",
        "A-002,control",
        "B-1,gout",
        "A-003,gout",
        "SECRET-42,control",
    ]
    text = "patient_id,diagnosis\n" + "\n".join(rows) + "\nB-1,gout\n"
    message = label_error(sheet(tmp_path, text))
    # the header is row 1: SECRET-42 is on rows 3 and 7, B-1 on rows 5 and 8
    assert "rows 3 and 7" in message and "5 and 8" in message
    assert "SECRET-42" not in message and "B-1" not in message


def test_bad_label_value_names_row_and_value(tmp_path):
    text = "patient_id,diagnosis\nA-001,gout\nSECRET-42,pseudogout\nA-003,\n"
    message = label_error(sheet(tmp_path, text))
    assert "row 3: 'pseudogout'" in message
    assert "row 4: empty" in message
    assert "'gout' or 'control'" in message
    assert "SECRET-42" not in message


def test_many_bad_values_are_summarised(tmp_path):
    text = "patient_id,diagnosis\n" + "".join(f"P{i},x\n" for i in range(30))
    message = label_error(sheet(tmp_path, text))
    assert "row 2: 'x'" in message and "and 10 more" in message


def test_empty_patient_id(tmp_path):
    message = label_error(sheet(tmp_path, "patient_id,diagnosis\nA-001,gout\n ,control\n"))
    assert "row 3" in message and "'patient_id'" in message


def test_positive_equal_to_negative_is_a_config_error(tmp_path):
    path = sheet(tmp_path, "patient_id,diagnosis\nA,gout\n")
    with pytest.raises(ConfigError):
        read_label_sheet(path, **{**ARGS, "negative": "GOUT"})


def test_xlsx_without_openpyxl_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "openpyxl", None)  # `import openpyxl` fails
    path = tmp_path / "labels.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a workbook")
    message = label_error(path)
    assert "openpyxl" in message and "CSV" in message


def test_join_labels():
    headers = [header("A-001", 0), header("A-002", 1), header("A-001", 2)]
    assert join_labels(headers, {"A-001": 1, "A-002": 0}, "labels.csv", key=KEY) == {
        "A-001": 1,
        "A-002": 0,
    }


def test_join_labels_patient_with_images_but_no_label():
    headers = [header("A-001", 0), header("SECRET-42", 1), header("SECRET-42", 2), header("Z-9", 3)]
    with pytest.raises(LabelError) as info:
        join_labels(headers, {"A-001": 1}, "labels.csv", key=KEY)
    message = str(info.value)
    assert message.startswith("labels.csv: 2 of 3 patients with images have no row")
    assert "(3 files)" in message
    assert patient_pseudonym("SECRET-42", KEY) + " (2 files)" in message
    assert patient_pseudonym("Z-9", KEY) in message
    assert "SECRET-42" not in message and "Z-9 " not in message and "/data/" not in message


def test_join_labels_warns_for_sheet_patients_without_images(caplog):
    with caplog.at_level(logging.WARNING, logger="mskdx.ingest.labels"):
        joined = join_labels(
            [header("A-001", 0)], {"A-001": 1, "SECRET-42": 0, "B": 0}, "labels.csv", key=KEY
        )
    assert joined == {"A-001": 1}
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "2 of 3 label-sheet patients have no images" in text
    assert "no negative patient has images" in text
    assert "SECRET-42" not in text


def test_join_labels_uses_environment_key(monkeypatch):
    monkeypatch.setenv("MSKDX_PSEUDONYM_KEY", "env-key")
    with pytest.raises(LabelError) as info:
        join_labels([header("SECRET-42", 0)], {"A": 1}, "labels.csv")
    assert patient_pseudonym("SECRET-42", b"env-key") in str(info.value)


def test_sheet_without_header_row_does_not_print_the_first_patient(tmp_path):
    message = label_error(sheet(tmp_path, "SECRET-42,gout\nA-002,control\n"))
    assert "header row" in message and "SECRET-42" not in message


def test_old_excel_format_refused(tmp_path):
    path = tmp_path / "labels.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0" + bytes(100))
    assert "save the sheet as CSV" in label_error(path)


def test_join_labels_hints_at_lost_leading_zeros():
    headers = [header("00123", 0), header("ABC", 1)]
    with pytest.raises(LabelError) as info:
        join_labels(headers, {"123": 1, "abc": 0}, "labels.csv", key=KEY)
    message = str(info.value)
    assert "leading zeros" in message and "upper/lower case" in message
    assert "00123" not in message and "ABC" not in message


def test_swapped_column_names_do_not_print_patient_ids(tmp_path):
    """A sheet whose two header names are swapped: the label column holds the PatientIDs."""
    ids = [f"MRN{i:08d}" for i in range(6)]
    rows = "".join(f"{pid},{'gout' if i % 2 else 'control'}\n" for i, pid in enumerate(ids))
    message = label_error(sheet(tmp_path, "diagnosis,patient_id\n" + rows))
    assert "labels.csv" in message and "swapped" in message
    assert "row 2" in message
    for pid in ids:
        assert pid not in message
