"""Keyed pseudonyms for patients and images, and the PHI values of a DICOM header.

Patients are known only by "P-" + 10 hex digits of HMAC-SHA256(key, PatientID), images by
"I-" + 12 hex digits of HMAC-SHA256(key, SOPInstanceUID + "/" + frame). Without the key the
pseudonyms cannot be linked back to the IDs (short of guessing IDs and the key together).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.valuerep import PersonName

from mskdx.errors import DicomError, LabelError

log = logging.getLogger(__name__)

DEFAULT_KEY_ENV = "MSKDX_PSEUDONYM_KEY"
# Public, so pseudonyms made with it are not secret: fine for synthetic data and tests only.
DEMO_KEY = b"mskdx-public-demo-key: pseudonyms made with this key are not secret"

# Values shorter than this are not reported: they would match unrelated output text.
MIN_PHI_LENGTH = 4

# Attributes whose values identify a patient, a clinician, a site or a date (cf. DICOM PS3.15
# Annex E basic profile). Searched at every nesting level of the dataset.
PHI_KEYWORDS = (
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "OtherPatientIDs",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
    "PatientBirthDate",
    "PatientBirthTime",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "MedicalRecordLocator",
    "AccessionNumber",
    "StudyID",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "ReferringPhysicianName",
    "ReferringPhysicianAddress",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "PhysiciansOfRecord",
    "RequestingPhysician",
    "OperatorsName",
    "StationName",
    "DeviceSerialNumber",
    "StudyDate",
    "SeriesDate",
    "AcquisitionDate",
    "ContentDate",
    "AcquisitionDateTime",
    "InstanceCreationDate",
)


def get_key(env_var: str = DEFAULT_KEY_ENV) -> bytes:
    """Return the pseudonym key from `env_var`, or the public demo key with a warning."""
    value = os.environ.get(env_var, "")
    if value.strip():
        return value.encode("utf-8")
    log.warning(
        "%s is not set: using the public demo key, so pseudonyms are not secret "
        "(anyone can recompute them from a PatientID); set it for real data",
        env_var,
    )
    return DEMO_KEY


def _hmac_hex(key: bytes | str, message: str) -> str:
    if isinstance(key, str):
        key = key.encode("utf-8")
    if not key:
        raise ValueError("pseudonym key is empty")
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


def patient_pseudonym(patient_id: str, key: bytes) -> str:
    """Return "P-" + the first 10 hex digits of HMAC-SHA256(key, PatientID).

    Leading/trailing spaces are removed first (DICOM pads LO values; sheets add spaces).
    """
    pid = str(patient_id).strip()
    if not pid:
        raise LabelError("cannot pseudonymise an empty PatientID")
    return "P-" + _hmac_hex(key, pid)[:10]


def image_pseudonym(sop_instance_uid: str, frame: int, key: bytes) -> str:
    """Return "I-" + the first 12 hex digits of HMAC-SHA256(key, f"{uid}/{frame}")."""
    uid = str(sop_instance_uid).strip()
    if not uid:
        raise DicomError("cannot pseudonymise an empty SOPInstanceUID")
    if int(frame) != frame or frame < 0:
        raise ValueError(f"frame must be an integer >= 0, got {frame!r}")
    return "I-" + _hmac_hex(key, f"{uid}/{int(frame)}")[:12]


#: lower edges of the coarse age bands (years at the study) the manifest keeps instead of dates
AGE_BAND_EDGES = (0, 20, 40, 60, 80)


def age_band(birth_date: str, study_date: str, patient_age: str = "") -> str:
    """The coarse age band at the study ("40-59", "80+"), never the age or a date.

    From PatientBirthDate and StudyDate (DA, YYYYMMDD) when both parse, else from PatientAge
    (AS, e.g. "045Y"; months, weeks and days are under 20 years); "" when neither is usable.
    """
    years = _years_between(birth_date, study_date)
    if years is None:
        years = _age_string_years(patient_age)
    if years is None or years < 0 or years > 130:
        return ""
    lower = max(e for e in AGE_BAND_EDGES if e <= years)
    upper = [e for e in AGE_BAND_EDGES if e > lower]
    return f"{lower}-{upper[0] - 1}" if upper else f"{lower}+"


def _years_between(birth: str, at: str) -> int | None:
    import datetime as dt

    try:
        b = dt.datetime.strptime(str(birth).strip()[:8], "%Y%m%d").date()
        d = dt.datetime.strptime(str(at).strip()[:8], "%Y%m%d").date()
    except ValueError:
        return None
    return d.year - b.year - ((d.month, d.day) < (b.month, b.day))


def _age_string_years(value: str) -> int | None:
    text = str(value).strip().upper()
    if len(text) != 4 or not text[:3].isdigit() or text[3] not in "DWMY":
        return None
    return int(text[:3]) if text[3] == "Y" else 0


def coarse_sex(value: str) -> str:
    """PatientSex as M, F or O; "" when absent or anything else."""
    text = str(value).strip().upper()
    return text if text in ("M", "F", "O") else ""


def _person_name_values(value: object) -> set[str]:
    """The name as written and its components ("Doe^John" -> "Doe", "John", "John Doe")."""
    text = str(value).strip()
    out = {text}
    for group in text.split("="):  # alphabetic=ideographic=phonetic
        parts = [p.strip() for p in group.split("^")]
        out.update(parts)
        family, given = (parts + ["", ""])[:2]
        if family and given:
            out.update({f"{given} {family}", f"{family} {given}", f"{family}, {given}"})
    return out


def _date_values(text: str) -> set[str]:
    out = {text}
    digits = text[:8]
    if len(digits) == 8 and digits.isdigit():
        out.update({digits, f"{digits[:4]}-{digits[4:6]}-{digits[6:8]}"})
    return out


def _values(elem) -> set[str]:
    raw = elem.value
    items = raw if isinstance(raw, list | tuple | MultiValue) else [raw]
    out: set[str] = set()
    for item in items:
        if item is None:
            continue
        if isinstance(item, bytes):
            item = item.decode("latin-1", "replace")
        if elem.VR == "PN" or isinstance(item, PersonName):
            out |= _person_name_values(item)
        elif elem.VR in ("DA", "DT"):
            out |= _date_values(str(item).strip())
        else:
            text = str(item).strip()
            out.add(text)
            if "\n" in text or "\r" in text:  # multi-line addresses: each line too
                out.update(line.strip() for line in text.splitlines())
    return out


def phi_values(ds_or_path: Dataset | str | os.PathLike[str]) -> set[str]:
    """Return the PHI strings of a header (names and their parts, IDs, dates, institution).

    Values shorter than MIN_PHI_LENGTH characters and empty ones are left out. Used by the
    privacy tests to scan outputs and logs for leaks.
    """
    if isinstance(ds_or_path, Dataset):
        ds = ds_or_path
    else:
        path = Path(ds_or_path)
        try:
            ds = pydicom.dcmread(str(path), stop_before_pixels=True)
        except (InvalidDicomError, OSError, EOFError) as exc:
            raise DicomError(
                f"{path}: cannot read the DICOM header to list its PHI ({exc})"
            ) from None
    wanted = set(PHI_KEYWORDS)
    found: set[str] = set()
    for elem in ds.iterall():
        if elem.keyword in wanted and elem.value not in (None, "", b""):
            found |= _values(elem)
    return {v for v in found if len(v) >= MIN_PHI_LENGTH}
