"""The way back from an image's pseudonym to its source DICOM instance (holds PHI: memory only).

`mskdx predict` knows images by `I-` keys. The DICOM results it writes for the PACS must name
the source instance (SOP Class / Instance UID, frame) and carry the source study's patient and
study modules, so this module re-reads the headers of the folder that was scored and matches
each manifest row to its file: the key is recomputed from the file's SOPInstanceUID, frame and
view exactly as the extraction computed it (`mskdx.ingest.deid.image_pseudonym`), so a match
is a proof, not a guess. Nothing here is written to disk; errors name files by key (`F-...`),
with the real path in the error's `terminal` text only.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mskdx.errors import DicomError

PathLike = str | os.PathLike[str]

#: what a derived object needs of its source to be filed beside it in the PACS
REQUIRED_UIDS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")


@dataclass(frozen=True)
class Source:
    """One scored image's source instance. Holds PHI (the path, the UIDs)."""

    image_id: str
    patient: str
    path: Path
    file_key: str
    frame: int  # 0-based, as in the manifest
    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    number_of_frames: int


def file_key(path: PathLike, root: PathLike) -> str:
    """The `F-` key of a file, as the extraction's refusals name it (SHA-256 of the relpath)."""
    try:
        rel = str(Path(path).relative_to(root))
    except ValueError:
        rel = str(path)
    return "F-" + hashlib.sha256(rel.encode("utf-8")).hexdigest()[:12]


def missing_uid_error(path: PathLike, root: PathLike, keyword: str) -> DicomError:
    err = DicomError(
        f"{file_key(path, root)}: the source file has no {keyword}; a DICOM result must "
        "reference its source instance to be filed in the PACS (fix the export, or leave "
        "--dicom-out off)"
    )
    err.terminal = f"real path of {file_key(path, root)}: {path}"  # type: ignore[attr-defined]
    return err


def find_sources(
    dicom_dir: PathLike, manifest: pd.DataFrame, modalities: list[str], key: bytes
) -> dict[str, Source]:
    """Map every image_id of `manifest` to its source instance under `dicom_dir`.

    Raises DicomError naming the file (by key) when a source lacks a UID the DICOM results
    need, and naming the image when no file gives its key (the folder changed since scoring).
    """
    import pydicom

    from mskdx.ingest import deid, dicom

    root = Path(dicom_dir)
    wanted = _wanted_keys(manifest)
    found: dict[str, Source] = {}
    for header in dicom.scan_tree(root, modalities).headers:
        ds = pydicom.dcmread(header.path, stop_before_pixels=True)
        for keyword in REQUIRED_UIDS:
            if not str(ds.get(keyword, "")).strip():
                if _is_scored(header, wanted, key):
                    raise missing_uid_error(header.path, root, keyword)
        for (frame, view), patient_of in wanted.items():
            if frame >= header.number_of_frames:
                continue
            uid = header.sop_instance_uid + (f".{view}" if view else "")
            image_id = deid.image_pseudonym(uid, frame, key)
            if image_id in patient_of:
                found[image_id] = Source(
                    image_id=image_id,
                    patient=patient_of[image_id],
                    path=Path(header.path),
                    file_key=file_key(header.path, root),
                    frame=frame,
                    sop_class_uid=str(ds.SOPClassUID),
                    sop_instance_uid=str(ds.SOPInstanceUID),
                    study_instance_uid=str(ds.StudyInstanceUID),
                    series_instance_uid=str(ds.SeriesInstanceUID),
                    number_of_frames=header.number_of_frames,
                )
    lost = sorted(set(manifest["image_id"]) - set(found))
    if lost:
        raise DicomError(
            f"{len(lost)} scored images have no source file under the DICOM folder any more "
            f"(first: {lost[0]}); the folder changed while predict ran"
        )
    return found


def _wanted_keys(manifest: pd.DataFrame) -> dict[tuple[int, int], dict[str, str]]:
    """(frame, view) -> {image_id: patient} of the manifest's rows."""
    views = manifest["region"] if "region" in manifest else pd.Series(0, index=manifest.index)
    wanted: dict[tuple[int, int], dict[str, str]] = {}
    for image_id, patient, frame, view in zip(
        manifest["image_id"], manifest["patient"], manifest["frame"], views.fillna(0), strict=True
    ):
        wanted.setdefault((int(frame), int(view)), {})[str(image_id)] = str(patient)
    return wanted


def _is_scored(header, wanted: Mapping[tuple[int, int], Mapping[str, str]], key: bytes) -> bool:
    from mskdx.ingest import deid

    for frame, view in wanted:
        if frame < header.number_of_frames:
            uid = header.sop_instance_uid + (f".{view}" if view else "")
            if deid.image_pseudonym(uid, frame, key) in wanted[(frame, view)]:
                return True
    return False
