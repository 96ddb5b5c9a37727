"""Why a DICOM file or folder is refused: the `Reason` values, the error, the record.

Every file the pipeline cannot turn into a correct image is refused with a `DicomError` whose
message starts with the file path and whose `reason` attribute is one of the `Reason` values, so
callers can table refusals. A `Refusal` is that verdict as a record, keyed by a hash of the
relative path (folder names may hold PatientIDs), for logs, tables and the private file map.
"""

from __future__ import annotations

import enum
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mskdx.errors import DicomError


class Reason(enum.StrEnum):
    """Why a file or folder was refused (the `reason` attribute of a `DicomError`)."""

    # one file
    NOT_DICOM = "not_dicom"
    EMPTY_FILE = "empty_file"
    TRUNCATED = "truncated"
    NO_PIXEL_DATA = "no_pixel_data"
    UNDECODABLE = "undecodable"
    UNSUPPORTED_PHOTOMETRIC = "unsupported_photometric"
    PIXEL_LENGTH_MISMATCH = "pixel_length_mismatch"
    NOT_AN_IMAGE = "not_an_image"
    BAD_HEADER = "bad_header"
    UNREADABLE = "unreadable"  # the operating system refused to read it (permissions, I/O)
    DUPLICATE_INSTANCE = "duplicate_instance"  # a second file with the same SOPInstanceUID
    # a whole folder (walk_dicom)
    MISSING_FOLDER = "missing_folder"
    NO_IMAGES = "no_images"
    REFUSED_FILES = "refused_files"


FILE_REASONS = frozenset(
    r for r in Reason if r not in {"missing_folder", "no_images", "refused_files"}
)


def dicom_error(path: str | os.PathLike[str], reason: Reason, detail: str) -> DicomError:
    """Return a DicomError '<path>: <detail>' carrying `reason`, `path` and `detail`."""
    err = DicomError(f"{path}: {detail}")
    err.reason = Reason(reason)  # type: ignore[attr-defined]
    err.path = Path(path)  # type: ignore[attr-defined]
    err.detail = detail  # type: ignore[attr-defined]
    return err


def path_key(relpath: str) -> str:
    """The file key of `relpath` (F-<key> in logs): the first 12 hex digits of its SHA-256."""
    return hashlib.sha256(relpath.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class Refusal:
    """A file walk_dicom refused.

    `message` is the reason in words WITHOUT the path; `relpath` is the path relative to the
    input root (it may contain identifiers: folder names); `key` = first 12 hex digits of
    SHA-256 of `relpath`, safe for logs and tables.
    """

    path: Path
    reason: str
    message: str
    relpath: str = ""
    key: str = field(default="")

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", path_key(self.relpath or str(self.path)))


def refusal_listing(refusals: Sequence[Refusal]) -> str:
    """One line per refusal, by key (F-...), reason and message: safe for logs (no paths)."""
    return "\n".join(f"  F-{r.key}: {r.reason}: {r.message}" for r in refusals)
