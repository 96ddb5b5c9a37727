"""Build small DICOM files (good and broken) for the unit tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom import uid
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset

US_IMAGE = "1.2.840.10008.5.1.4.1.1.6.1"
US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"
SC_IMAGE = "1.2.840.10008.5.1.4.1.1.7"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
SEGMENTATION = "1.2.840.10008.5.1.4.1.1.66.4"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
KEY_OBJECT_SELECTION = "1.2.840.10008.5.1.4.1.1.88.59"
GRAYSCALE_PS = "1.2.840.10008.5.1.4.1.1.11.1"
RT_STRUCT = "1.2.840.10008.5.1.4.1.1.481.3"
RT_PLAN = "1.2.840.10008.5.1.4.1.1.481.5"
RT_DOSE = "1.2.840.10008.5.1.4.1.1.481.2"
ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
ECG_WAVEFORM = "1.2.840.10008.5.1.4.1.1.9.1.1"
RAW_DATA = "1.2.840.10008.5.1.4.1.1.66"
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"

# fake PHI, recognisable in outputs
PATIENT_ID = "PAT-000123"
PATIENT_NAME = "Doe^Johnathan"


def bundled(name: str) -> Path:
    """Path of a test file shipped inside the pydicom package (never downloads)."""
    found = get_testdata_file(name, download=False)
    if found is None:
        raise FileNotFoundError(f"{name} is not bundled with this pydicom")
    return Path(found)


def base_dataset(
    sop_class: str = US_IMAGE,
    modality: str = "US",
    *,
    patient_id: str = PATIENT_ID,
    sop_instance: str | None = None,
    syntax: str = uid.ExplicitVRLittleEndian,
) -> FileDataset:
    """A header without pixel data: patient, study, series and instance identification."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance or uid.generate_uid()
    meta.TransferSyntaxUID = syntax
    meta.ImplementationClassUID = uid.PYDICOM_IMPLEMENTATION_UID
    ds = FileDataset("", Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.PatientID = patient_id
    ds.PatientName = PATIENT_NAME
    ds.PatientBirthDate = "19700215"
    ds.StudyDate = "20240131"
    ds.AccessionNumber = "ACC998877"
    ds.InstitutionName = "Springfield General Hospital"
    ds.StudyInstanceUID = uid.generate_uid()
    ds.SeriesInstanceUID = uid.generate_uid()
    ds.SeriesDescription = "MTP1 dorsal"
    ds.ProtocolName = "foot"
    ds.InstanceNumber = 1
    return ds


def image_dataset(
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    sop_class: str = US_IMAGE,
    modality: str = "US",
    **kwargs,
) -> FileDataset:
    """An image: `pixels` is (rows, cols), (frames, rows, cols) or with a trailing colour axis."""
    ds = base_dataset(sop_class, modality, **kwargs)
    ds.set_pixel_data(
        np.ascontiguousarray(pixels), photometric, bits_stored or pixels.dtype.itemsize * 8
    )
    return ds


def write(ds: Dataset, path: Path) -> Path:
    """Write `ds` as a DICOM Part 10 file (little endian unless its meta says otherwise)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def grey_image(
    rows: int = 16, cols: int = 20, frames: int | None = None, dtype=np.uint8, seed: int = 0
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    hi = min(info.max, 4000)
    shape = (rows, cols) if frames is None else (frames, rows, cols)
    return rng.integers(max(info.min, -2000), hi, size=shape, endpoint=True).astype(dtype)


def rgb_image(rows: int = 16, cols: int = 20, seed: int = 1) -> np.ndarray:
    """A colour image made of 2x2-pixel blocks (so chroma subsampling loses nothing)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(rows // 2, cols // 2, 3)).astype(np.uint8)
    return np.repeat(np.repeat(blocks, 2, axis=0), 2, axis=1)


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
