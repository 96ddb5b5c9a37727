"""mskdx.ingest.deid: keyed pseudonyms and the PHI of a header."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re

import pydicom
import pytest
from dicom_factory import PATIENT_ID, base_dataset, bundled, write
from pydicom.dataset import Dataset

from mskdx.errors import DicomError
from mskdx.ingest.deid import (
    DEMO_KEY,
    get_key,
    image_pseudonym,
    patient_pseudonym,
    phi_values,
)

KEY = b"test-key-1"


def test_get_key_from_environment(monkeypatch, caplog):
    monkeypatch.setenv("MSKDX_PSEUDONYM_KEY", "s3cret")
    with caplog.at_level(logging.WARNING):
        assert get_key() == b"s3cret"
    assert not caplog.records
    monkeypatch.setenv("OTHER_KEY", "other")
    assert get_key("OTHER_KEY") == b"other"


@pytest.mark.parametrize("value", [None, "", "   "])
def test_get_key_demo_key_warns(monkeypatch, caplog, value):
    if value is None:
        monkeypatch.delenv("MSKDX_PSEUDONYM_KEY", raising=False)
    else:
        monkeypatch.setenv("MSKDX_PSEUDONYM_KEY", value)
    with caplog.at_level(logging.WARNING, logger="mskdx.ingest.deid"):
        assert get_key() == DEMO_KEY
    assert any("not secret" in r.getMessage() for r in caplog.records)
    assert all(r.levelno == logging.WARNING for r in caplog.records)


def test_patient_pseudonym_format_and_definition():
    pseudonym = patient_pseudonym("12345", KEY)
    assert re.fullmatch(r"P-[0-9a-f]{10}", pseudonym)
    assert pseudonym == "P-" + hmac.new(KEY, b"12345", hashlib.sha256).hexdigest()[:10]


def test_patient_pseudonym_stable_and_keyed():
    assert patient_pseudonym("12345", KEY) == patient_pseudonym("12345", KEY)
    assert patient_pseudonym(" 12345 ", KEY) == patient_pseudonym("12345", KEY)  # DICOM padding
    assert patient_pseudonym("12345", KEY) != patient_pseudonym("12345", b"test-key-2")
    assert patient_pseudonym("12345", KEY) != patient_pseudonym("12346", KEY)
    assert "12345" not in patient_pseudonym("12345", KEY)


def test_image_pseudonym_format_and_definition():
    uid = "1.2.826.0.1.3680043.8.498.1"
    pseudonym = image_pseudonym(uid, 3, KEY)
    assert re.fullmatch(r"I-[0-9a-f]{12}", pseudonym)
    assert pseudonym == "I-" + hmac.new(KEY, f"{uid}/3".encode(), hashlib.sha256).hexdigest()[:12]


def test_image_pseudonym_stable_and_keyed():
    uid = "1.2.826.0.1.3680043.8.498.1"
    assert image_pseudonym(uid, 0, KEY) == image_pseudonym(uid, 0, KEY)
    assert image_pseudonym(uid, 0, KEY) != image_pseudonym(uid, 1, KEY)
    assert image_pseudonym(uid, 0, KEY) != image_pseudonym(uid, 0, b"another key")
    assert len({image_pseudonym(uid, f, KEY) for f in range(200)}) == 200


def test_pseudonyms_refuse_empty_input():
    with pytest.raises(ValueError):
        patient_pseudonym("  ", KEY)
    with pytest.raises(ValueError):
        image_pseudonym("", 0, KEY)
    with pytest.raises(ValueError):
        image_pseudonym("1.2.3", -1, KEY)
    with pytest.raises(ValueError, match="key"):
        patient_pseudonym("123", b"")


def test_phi_values_of_a_dataset():
    ds = base_dataset()
    ds.ReferringPhysicianName = "House^Gregory^M^Dr"
    ds.OperatorsName = ["Smith^Anna", "Lee^Bo"]
    ds.StationName = "US-ROOM-3"
    ds.InstitutionAddress = "1 Main Street\nSpringfield"
    ds.Modality = "US"
    other = Dataset()
    other.PatientID = "OTHER-ID-77"
    ds.OtherPatientIDsSequence = [other]
    values = phi_values(ds)
    expected = {
        PATIENT_ID,
        "Doe^Johnathan",
        "Johnathan",  # name components
        "Johnathan Doe",
        "19700215",
        "1970-02-15",
        "20240131",
        "ACC998877",
        "Springfield General Hospital",
        "House^Gregory^M^Dr",
        "House",
        "Gregory",
        "Smith^Anna",
        "Smith",
        "Anna",
        "US-ROOM-3",
        "1 Main Street",
        "Springfield",
        "OTHER-ID-77",  # nested in a sequence
    }
    assert expected <= values
    # short values would match anything: left out
    assert not {"Doe", "Lee", "Bo", "M", "Dr", "US"} & values
    assert all(len(v) >= 4 for v in values)
    # not PHI
    assert "MTP1 dorsal" not in values and ds.SOPInstanceUID not in values


def test_phi_values_from_a_path(tmp_path):
    path = write(base_dataset(), tmp_path / "x.dcm")
    assert PATIENT_ID in phi_values(path) and "Johnathan" in phi_values(str(path))


def test_phi_values_ignores_empty_values():
    ds = base_dataset()
    ds.PatientName = ""
    ds.AccessionNumber = None
    ds.InstitutionName = ""
    values = phi_values(ds)
    assert "" not in values and PATIENT_ID in values


def test_phi_values_bundled_file():
    ds = pydicom.dcmread(bundled("CT_small.dcm"))
    values = phi_values(ds)
    assert str(ds.PatientName) in values and ds.PatientID in values


def test_phi_values_not_dicom(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(DicomError, match="notes.txt"):
        phi_values(path)
