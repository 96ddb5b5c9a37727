"""Read DICOM files and folders: the entry points of the DICOM checks.

`scan_file` checks one file's header without decoding it, `read_frames` decodes it to grey
frames, `scan_tree` and `walk_dicom` do the header pass over a whole input folder. The checks
live beside this module: `parse` (is it a whole DICOM file), `sop` (is it an image of the
study's modalities), `pixels` (can its Pixel Data be decoded), `decode` (to grey), and
`refusals` (the `Reason` of every refusal). Nothing here writes a file or logs PHI:
`DicomHeader` holds PHI (the PatientID) in memory only, and logs carry counts, never paths or
identifiers.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from mskdx.errors import DicomError
from mskdx.ingest.decode import decode_frames
from mskdx.ingest.inputs import walk_tree
from mskdx.ingest.parse import no_bare_errors, quiet_pydicom, read_dataset
from mskdx.ingest.pixels import PixelInfo, check_pixels
from mskdx.ingest.refusals import Reason, Refusal, dicom_error, path_key, refusal_listing
from mskdx.ingest.sop import DICOMDIR_DETAIL, classify, sop_class

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DicomHeader:
    """What later stages need from a file. Holds PHI (patient_id): keep in memory, never write."""

    path: Path
    patient_id: str
    sop_instance_uid: str
    modality: str
    sop_class_uid: str
    series_description: str
    protocol_name: str
    series_instance_uid: str
    number_of_frames: int
    rows: int
    columns: int
    photometric: str
    transfer_syntax: str
    study_instance_uid: str = ""
    # ImageOrientationPatient (6 direction cosines) or None, for the MRI plane
    image_orientation: tuple[float, ...] | None = None
    instance_number: int | None = None


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    return str(value).strip()


def _orientation(ds: Dataset) -> tuple[float, ...] | None:
    candidates = [ds.get("ImageOrientationPatient")]
    for group in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        items = ds.get(group) or []
        if items:
            planes = items[0].get("PlaneOrientationSequence") or []
            if planes:
                candidates.append(planes[0].get("ImageOrientationPatient"))
    for value in candidates:
        try:
            if value is not None and len(value) == 6:
                return tuple(float(v) for v in value)
        except (TypeError, ValueError):
            continue
    return None


def _header(ds: Dataset, path: Path, info: PixelInfo) -> DicomHeader:
    patient_id = _text(ds, "PatientID")
    if not patient_id:
        raise dicom_error(
            path,
            Reason.BAD_HEADER,
            "has no PatientID; its images cannot be matched to the label sheet",
        )
    sop_instance = _text(ds, "SOPInstanceUID")
    if not sop_instance:
        raise dicom_error(
            path, Reason.BAD_HEADER, "has no SOPInstanceUID; its images cannot be named"
        )
    try:
        instance_number = (
            int(ds.get("InstanceNumber")) if ds.get("InstanceNumber") not in (None, "") else None
        )
    except (TypeError, ValueError):
        instance_number = None
    return DicomHeader(
        path=path,
        patient_id=patient_id,
        sop_instance_uid=sop_instance,
        modality=_text(ds, "Modality").upper(),
        sop_class_uid=sop_class(ds),
        series_description=_text(ds, "SeriesDescription"),
        protocol_name=_text(ds, "ProtocolName"),
        series_instance_uid=_text(ds, "SeriesInstanceUID"),
        number_of_frames=info.frames,
        rows=info.rows,
        columns=info.columns,
        photometric=info.photometric,
        transfer_syntax=str(info.syntax),
        study_instance_uid=_text(ds, "StudyInstanceUID"),
        image_orientation=_orientation(ds),
        instance_number=instance_number,
    )


def scan_file(path: str | os.PathLike[str], modalities: Sequence[str]) -> DicomHeader:
    """Read and check the header of one file without decoding its pixels.

    Refuses (DicomError with `reason`) everything `read_frames` would refuse before decoding:
    not DICOM, empty, truncated, not an image of `modalities`, bad header, no pixel data,
    unsupported photometric, no decoder, pixel data length not matching the header.
    """
    path = Path(path)
    with quiet_pydicom(), no_bare_errors(path):
        ds, _ = read_dataset(path)
        classify(ds, path, modalities)
        info = check_pixels(ds, path)
        return _header(ds, path, info)


def read_frames(path: str | os.PathLike[str]) -> NDArray[np.float32]:
    """Decode every frame of a DICOM file to float32 grey, shape (frames, rows, cols).

    Applies the modality LUT / rescale slope and intercept (also per frame from enhanced
    functional groups), inverts MONOCHROME1 so that high = bright, and turns RGB, YBR and
    PALETTE COLOR into BT.601 luminance. Raises DicomError (with `reason`) for anything that
    cannot become a correct image.
    """
    path = Path(path)
    with quiet_pydicom(), no_bare_errors(path):
        ds, _ = read_dataset(path)
        info = check_pixels(ds, path)
        return decode_frames(ds, path, info)


# --------------------------------------------------------------------------------------------
# Folders
# --------------------------------------------------------------------------------------------


#: Names of files that exports and desktops put beside the images (a DICOMDIR index, macOS
#: and Windows folder metadata): never images, so a walk skips and counts them (no refusal).
NOT_IMAGE_NAMES = {
    "dicomdir": "DICOMDIR index",
    ".ds_store": "macOS folder metadata (.DS_Store)",
    "thumbs.db": "Windows thumbnail cache (Thumbs.db)",
    "ehthumbs.db": "Windows thumbnail cache (ehthumbs.db)",
    "desktop.ini": "Windows folder settings (desktop.ini)",
}


@dataclass
class Scan:
    """What `scan_tree` found: accepted images, refused files, and skipped non-image files."""

    headers: list[DicomHeader]
    refusals: list[Refusal]
    skipped: Counter = field(default_factory=Counter)  # kind -> count

    @property
    def files(self) -> int:
        return len(self.headers) + len(self.refusals) + sum(self.skipped.values())


def scan_tree(root: str | os.PathLike[str], modalities: Sequence[str]) -> Scan:
    """Scan every regular file under `root` (any name, hidden files too, links followed),
    sorted by relative path; refusals are returned, never raised.

    DICOMDIR indexes and desktop metadata files (NOT_IMAGE_NAMES, or a DICOMDIR by SOP class)
    are skipped and counted. A folder that cannot be listed is refused as `unreadable`, like a
    file. A second file with an already seen SOPInstanceUID is refused (duplicate_instance).
    Raises DicomError if `root` is missing or not a folder.
    """
    root = Path(root)
    _check_root(root)
    tree = walk_tree(root)
    scan = Scan([], [])
    for rel, why in tree.unreadable:
        scan.refusals.append(
            Refusal(root / rel, str(Reason.UNREADABLE), f"folder cannot be listed: {why}", rel)
        )
    seen: dict[str, str] = {}
    for rel, _ in tree.files:
        path = root / rel
        kind = NOT_IMAGE_NAMES.get(path.name.casefold())
        if kind is not None:
            scan.skipped[kind] += 1
            continue
        try:
            header = scan_file(path, modalities)
        except DicomError as exc:
            reason = getattr(exc, "reason", Reason.BAD_HEADER)
            detail = getattr(exc, "detail", str(exc))
            if detail == DICOMDIR_DETAIL:
                scan.skipped[NOT_IMAGE_NAMES["dicomdir"]] += 1
                continue
            scan.refusals.append(Refusal(path, str(reason), detail, rel))
            continue
        first = seen.get(header.sop_instance_uid)
        if first is not None:
            scan.refusals.append(
                Refusal(
                    path,
                    str(Reason.DUPLICATE_INSTANCE),
                    f"has the same SOPInstanceUID as file F-{path_key(first)}; each image must "
                    "be exported once",
                    rel,
                )
            )
            continue
        seen[header.sop_instance_uid] = rel
        scan.headers.append(header)
    scan.refusals.sort(key=lambda r: r.relpath)
    _log_scan(scan, tree.repeated)
    return scan


def _check_root(root: Path) -> None:
    """Raise missing_folder unless `root` is an existing folder."""
    if not root.exists():
        raise dicom_error(
            root,
            Reason.MISSING_FOLDER,
            "input folder does not exist (config studies.*.input.dicom_dir)",
        )
    if not root.is_dir():
        raise dicom_error(
            root, Reason.MISSING_FOLDER, "is not a folder; expected the folder of DICOM studies"
        )


def _log_scan(scan: Scan, repeated: int) -> None:
    """Log what a scan found, by count and reason (never a path)."""
    log.info(
        "scanned %d files: %d images accepted, %d refused, %d not images skipped",
        scan.files,
        len(scan.headers),
        len(scan.refusals),
        sum(scan.skipped.values()),
    )
    if repeated:
        log.info("%d files or folders reached twice through links were read once", repeated)
    if scan.skipped:
        log.info(
            "skipped files that are not images: %s",
            ", ".join(f"{k} {v}" for k, v in sorted(scan.skipped.items())),
        )
    if scan.refusals:
        counts = Counter(r.reason for r in scan.refusals)
        log.warning(
            "refused files by reason: %s", ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
        )


def walk_dicom(
    root: str | os.PathLike[str],
    modalities: Sequence[str],
    on_error: Literal["stop", "skip"] = "stop",
) -> tuple[list[DicomHeader], list[Refusal]]:
    """`scan_tree` with a refusal policy: returns (headers of accepted images, refused files).

    With on_error="stop" any refusal raises one DicomError listing every refused file by key
    (F-<12 hex digits>, the `Refusal.key`; never by path: folder names hold PatientIDs); its
    `refusals` attribute holds the Refusals, real paths included, for the terminal and the
    private file map. With "skip" they are returned. Raises DicomError if `root` is missing or
    holds no image.
    """
    if on_error not in ("stop", "skip"):
        raise ValueError(f"on_error must be 'stop' or 'skip', got {on_error!r}")
    scan = scan_tree(root, modalities)
    check_scan(scan, root, on_error)
    return scan.headers, scan.refusals


def check_scan(scan: Scan, root: str | os.PathLike[str], on_error: str) -> None:
    """Raise the DicomError of `walk_dicom` for refusals under "stop" or for no images."""
    headers, refusals = scan.headers, scan.refusals
    if refusals and on_error == "stop":
        err = dicom_error(
            root,
            Reason.REFUSED_FILES,
            f"{len(refusals)} of {len(headers) + len(refusals)} files refused (by file key; "
            f"set data.on_error: skip to go on without them):\n{refusal_listing(refusals)}",
        )
        err.refusals = list(refusals)  # type: ignore[attr-defined]
        raise err
    if not headers:
        detail = "has no DICOM images"
        if refusals:
            counts = Counter(r.reason for r in refusals)
            detail += (
                f" ({len(refusals)} files refused: "
                + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
                + ")"
            )
        elif scan.skipped:
            detail += f" (only {sum(scan.skipped.values())} files that are not images)"
        else:
            detail += " (no files)"
        err = dicom_error(root, Reason.NO_IMAGES, detail)
        err.refusals = list(refusals)  # type: ignore[attr-defined]
        raise err


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Return the SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise dicom_error(
            path, Reason.UNREADABLE, f"cannot be read: {exc.strerror or exc}"
        ) from None
    return digest.hexdigest()
