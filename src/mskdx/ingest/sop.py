"""What counts as an image: SOP class and Modality policy, DICOMDIR detection.

`classify` refuses (not_an_image, bad_header) what is not an image storage object of the study's
modalities: structured reports, key object selections, segmentations, presentation states,
DICOMDIR indexes, and images of another modality.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from pydicom import uid as dcm_uid
from pydicom.dataset import Dataset

from mskdx.ingest.refusals import Reason, dicom_error

# Default accepted Modality values per kind of study (config `studies.*.modalities`).
DEFAULT_MODALITIES = {"ultrasound": ("US", "SC", "OT"), "mri": ("MR",)}


_IMAGE_SOP_CLASSES = frozenset(
    "1.2.840.10008.5.1.4.1.1." + s
    for s in (
        # ultrasound (3 and 6 are the retired pre-1993 classes)
        "6.1 3.1 6 3 6.2 6.3 "
        # secondary capture, single and multi-frame
        "7 7.1 7.2 7.3 7.4 "
        # MR, enhanced MR, enhanced MR colour, legacy converted enhanced MR
        "4 4.1 4.3 4.4 "
        # CT
        "2 2.1 2.2 "
        # CR, DX, mammography, intra-oral, breast tomosynthesis / projection
        "1 1.1 1.1.1 1.2 1.2.1 1.3 1.3.1 13.1.3 13.1.4 13.1.5 "
        # XA, XRF, NM, PET
        "12.1 12.1.1 12.2 12.2.1 20 128 128.1 130 "
        # visible light (photographs, endoscopy, microscopy, ophthalmic, slides) and video
        "77.1.1 77.1.1.1 77.1.2 77.1.2.1 77.1.3 77.1.4 77.1.4.1 77.1.5.1 77.1.5.2 77.1.5.4 "
        "77.1.6"
    ).split()
)

_DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
#: The refusal detail of a DICOMDIR: `scan_tree` skips and counts such files instead.
DICOMDIR_DETAIL = "is a DICOMDIR (media storage directory), not an image"

# (words matched in the SOP class name, what to call it) for refusals; first match wins.
_REFUSED_KINDS = (
    ("Key Object Selection", "a key object selection document (KO)"),
    ("SR Storage", "a structured report (SR)"),
    ("Segmentation", "a segmentation object (SEG)"),
    ("RT ", "a radiotherapy object (RTSTRUCT, RTPLAN, RTDOSE, ...)"),
    ("Presentation State", "a presentation state"),
    ("Waveform", "a waveform"),
    ("Encapsulated", "an encapsulated document (PDF, CDA, STL, ...)"),
    ("Raw Data", "raw data"),
    ("Spectroscopy", "spectroscopy data"),
    ("Registration", "a spatial registration object"),
    ("Fiducials", "a spatial fiducials object"),
    ("Parametric Map", "a parametric map"),
    ("Surface", "a surface object"),
)


def sop_class(ds: Dataset) -> str:
    """The SOP Class UID of `ds` (else its file meta's MediaStorageSOPClassUID); "" if none."""
    value = ds.get("SOPClassUID") or getattr(ds, "file_meta", Dataset()).get(
        "MediaStorageSOPClassUID"
    )
    return str(value or "").strip()


def _sop_name(sop: str) -> str:
    name = dcm_uid.UID(sop).name
    return name if name != sop else "an unknown SOP class"


def _modality_list(modalities: Iterable[str]) -> list[str]:
    return [str(m).strip().upper() for m in modalities]


def classify(ds: Dataset, path: str | os.PathLike[str], modalities: Sequence[str]) -> None:
    """Raise DicomError(not_an_image) unless `ds` is an image storage object of `modalities`.

    Decided by SOP Class UID (image storage classes only: US, SC, MR, CT, CR/DX, ...) and by
    Modality, which must be one of `modalities` (config `studies.*.modalities`, e.g. US/SC/OT).
    """
    allowed = _modality_list(modalities)
    sop = sop_class(ds)
    if sop == _DICOMDIR_SOP_CLASS or (not sop and "DirectoryRecordSequence" in ds):
        raise dicom_error(path, Reason.NOT_AN_IMAGE, DICOMDIR_DETAIL)
    if not sop:
        raise dicom_error(
            path,
            Reason.BAD_HEADER,
            "has no SOPClassUID (0008,0016); cannot tell whether it is an image",
        )
    if sop not in _IMAGE_SOP_CLASSES:
        name = _sop_name(sop)
        kind = next((words for key, words in _REFUSED_KINDS if key in name), None)
        what = kind or "not an image storage SOP class"
        raise dicom_error(
            path,
            Reason.NOT_AN_IMAGE,
            f"not an image: SOP class {sop} ({name}) is {what}; expected an image storage class "
            f"(ultrasound, secondary capture, MR, ...)",
        )
    modality = str(ds.get("Modality", "") or "").strip().upper()
    if not modality:
        raise dicom_error(
            path, Reason.BAD_HEADER, f"has no Modality (0008,0060); expected one of {allowed}"
        )
    if modality not in allowed:
        raise dicom_error(
            path,
            Reason.NOT_AN_IMAGE,
            f"not an image for this study: Modality {modality} ({_sop_name(sop)}) is not one of "
            f"{allowed} (config studies.*.modalities)",
        )
