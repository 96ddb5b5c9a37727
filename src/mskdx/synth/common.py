"""Shared machinery of the synthetic cohorts: seeded streams, UIDs, DICOM encoding, atomic output.

Everything here is deterministic: random draws come from `numpy.random.SeedSequence` streams keyed
by the cohort seed and string/integer keys, UIDs are name-based UUIDs of the same keys, and the
mask archive is a zip with fixed member timestamps, so the same arguments give byte-identical files.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

from mskdx.errors import ConfigError, DicomError

log = logging.getLogger(__name__)

#: Transfer syntax of the i-th file of a cohort: i % 10 picks one; 6 in 10 stay uncompressed.
SYNTAX_CYCLE: tuple[UID, ...] = (
    ExplicitVRLittleEndian,
    JPEGLSLossless,
    ExplicitVRLittleEndian,
    RLELossless,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    ExplicitVRLittleEndian,
    JPEGLSLossless,
    ExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
)
ALL_SYNTAXES: tuple[UID, ...] = (
    ExplicitVRLittleEndian,
    RLELossless,
    JPEGLSLossless,
    JPEG2000Lossless,
)

# Namespace of the name-based (version 5) UUIDs behind every UID we write ("2.25." + UUID integer,
# DICOM PS3.5 B.2). pydicom's generate_uid(prefix=None) ignores its entropy sources (uuid4).
_UID_NAMESPACE = uuid.UUID("5f0c1a52-6a0e-4d59-9a55-6d736b647831")
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def _key_word(key: str | int) -> int:
    return int.from_bytes(hashlib.sha256(str(key).encode()).digest()[:4], "little")


def rng_for(seed: int, *keys: str | int) -> np.random.Generator:
    """Return an independent random stream for `seed` and the given keys."""
    return np.random.default_rng(
        np.random.SeedSequence(entropy=int(seed), spawn_key=tuple(_key_word(k) for k in keys))
    )


def make_uid(seed: int, *keys: str | int) -> UID:
    """Return a deterministic `2.25.<uuid>` UID for `seed` and the given keys."""
    name = "/".join(["mskdx-synth", str(int(seed)), *map(str, keys)])
    return UID(f"2.25.{uuid.uuid5(_UID_NAMESPACE, name).int}")


def spread_counts(
    total: int, n: int, rng: np.random.Generator, *, minimum: int = 1, jitter: int = 2
) -> NDArray[np.int64]:
    """Split `total` items over `n` owners: near-even, each >= `minimum`, random +-`jitter`."""
    if n < 1 or total < n * minimum:
        raise ConfigError(f"cannot spread {total} images over {n} owners with >= {minimum} each")
    base, extra = divmod(total, n)
    counts = np.full(n, base, dtype=np.int64)
    counts[rng.permutation(n)[:extra]] += 1
    lo, hi = max(minimum, base - jitter), base + jitter + 1
    for _ in range(n):
        a, b = rng.integers(0, n, size=2)
        if a != b and counts[a] > lo and counts[b] < hi:
            counts[a] -= 1
            counts[b] += 1
    return counts


def check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ConfigError(f"synthetic.{name} = {value!r}; expected an integer >= {minimum}")
    return int(value)


def check_fraction(name: str, value: object, *, open_low: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"synthetic.{name} = {value!r}; expected a number in [0, 1]")
    v = float(value)
    if not (0.0 < v <= 1.0 if open_low else 0.0 <= v <= 1.0):
        raise ConfigError(f"synthetic.{name} = {value!r}; expected a number in [0, 1]")
    return v


def new_file_dataset(sop_class: str, sop_instance: str) -> Dataset:
    """Return an empty dataset with file meta for `sop_class` / `sop_instance`."""
    ds = Dataset()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = UID(sop_class)
    ds.SOPInstanceUID = UID(sop_instance)
    return ds


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    # The JPEG 2000 plugin logs every tile at INFO; keep a paper-size run's log readable.
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


class Encoder:
    """Turn a dataset with native PixelData into file bytes in a given transfer syntax.

    The first file of every (syntax, pixel format) kind is decoded again and compared with the
    native pixels, so a codec that is not lossless fails the run rather than the ground truth.
    """

    def __init__(self) -> None:
        self._verified: set[tuple] = set()

    def encode(self, ds: Dataset, syntax: UID, expected: NDArray | None = None) -> bytes:
        kind = (
            str(syntax),
            str(ds.PhotometricInterpretation),
            int(ds.BitsStored),
            int(ds.PixelRepresentation),
            int(ds.get("NumberOfFrames", 1)) > 1,
        )
        if syntax != ExplicitVRLittleEndian:
            with _quiet("openjpeg"):
                ds.compress(syntax, generate_instance_uid=False)
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        data = buffer.getvalue()
        if kind not in self._verified and expected is not None:
            decoded = pydicom.dcmread(io.BytesIO(data)).pixel_array
            if decoded.shape != expected.shape or not np.array_equal(decoded, expected):
                raise DicomError(
                    f"{ds.SOPInstanceUID}: {syntax.name} round trip changed the pixels; "
                    "expected a lossless encoding"
                )
            self._verified.add(kind)
        return data


#: the image label sheet's label column and values (abnormal iff the frame's mask has a lesion)
IMAGE_LABEL_COLUMN = "image_label"
IMAGE_LABEL_VALUES = ("abnormal", "normal")


class CohortWriter:
    """Build `dicom/`, `masks.npz`, `labels.csv` and `image_labels.csv` in a temporary sibling
    folder.

    `commit()` moves them into `out_dir`: the old label sheets and masks go first, the new ones
    last, so a run killed at any point leaves no label sheet beside a half-written tree.

    The image sheet has one row per image: `image_key` names it by "SOPInstanceUID" or by
    "path" (relative to `dicom/`), `frame` is 1-based (blank for a single-frame file: the row
    covers the file), `image_label` is abnormal iff the frame's mask is not empty, and each of
    `findings` is 1 where an abnormal frame shows it (else 0).
    """

    def __init__(
        self, out_dir: Path, image_key: str = "SOPInstanceUID", findings: Sequence[str] = ()
    ) -> None:
        if image_key not in ("SOPInstanceUID", "path"):
            raise ConfigError(f"image_key={image_key!r}; expected SOPInstanceUID or path")
        self.image_key = image_key
        self.findings = tuple(findings)
        self.image_rows: list[tuple] = []
        self.out_dir = Path(out_dir)
        self.out_dir.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(
            tempfile.mkdtemp(prefix=f".{self.out_dir.name}.synth-", dir=self.out_dir.parent)
        )
        (self.tmp / "dicom").mkdir()
        self._zip = zipfile.ZipFile(self.tmp / "masks.npz", "w", allowZip64=True)
        self._keys: set[str] = set()
        self.files = 0
        self.frames = 0

    def add(
        self,
        relpath: str,
        data: bytes,
        masks: Sequence[NDArray[np.uint8]],
        *,
        uid: str = "",
        shown: Sequence[str] = (),
    ) -> str:
        """Write one DICOM file (path relative to `dicom/`) and its per-frame masks; add its
        frames to the image sheet (`uid`: its SOPInstanceUID; `shown`: the findings its lesion
        frames show)."""
        key = relpath if self.image_key == "path" else uid
        if not key:
            raise DicomError(f"{relpath}: no SOPInstanceUID given for the image label sheet")
        for frame, mask in enumerate(masks):
            abnormal = bool(np.any(mask))
            self.image_rows.append(
                (
                    key,
                    str(frame + 1) if len(masks) > 1 else "",
                    IMAGE_LABEL_VALUES[0] if abnormal else IMAGE_LABEL_VALUES[1],
                    *(int(abnormal and f in shown) for f in self.findings),
                )
            )
        path = self.tmp / "dicom" / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        for frame, mask in enumerate(masks):
            key = f"{digest}_{frame}"
            if key in self._keys:
                raise DicomError(f"{relpath}: mask key {key} written twice; expected unique files")
            self._keys.add(key)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with self._zip.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(
                    fh, np.ascontiguousarray(mask, dtype=np.uint8), allow_pickle=False
                )
        self.files += 1
        self.frames += len(masks)
        return digest

    def commit(self, labels: Sequence[tuple[str, str]]) -> None:
        """Write the label sheet and move the cohort into `out_dir`."""
        self._zip.close()
        rows = sorted(labels)
        text = "patient_id,diagnosis\n" + "".join(f"{p},{d}\n" for p, d in rows)
        (self.tmp / "labels.csv").write_text(text)
        header = [self.image_key, "frame", IMAGE_LABEL_COLUMN, *self.findings]
        (self.tmp / "image_labels.csv").write_text(
            "".join(",".join(map(str, r)) + "\n" for r in [header, *self.image_rows])
        )
        out = self.out_dir
        out.mkdir(parents=True, exist_ok=True)
        (out / "labels.csv").unlink(missing_ok=True)
        (out / "image_labels.csv").unlink(missing_ok=True)
        (out / "masks.npz").unlink(missing_ok=True)
        old = None
        if (out / "dicom").exists():
            old = Path(tempfile.mkdtemp(prefix=".dicom.old-", dir=out))
            os.replace(out / "dicom", old / "dicom")
        os.replace(self.tmp / "dicom", out / "dicom")
        os.replace(self.tmp / "masks.npz", out / "masks.npz")
        os.replace(self.tmp / "labels.csv", out / "labels.csv")
        os.replace(self.tmp / "image_labels.csv", out / "image_labels.csv")
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(self.tmp, ignore_errors=True)
        log.info("wrote %d files (%d frames) to %s", self.files, self.frames, out)

    def abort(self) -> None:
        self._zip.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> CohortWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


def safe_name(text: str) -> str:
    """Return `text` as a folder name (letters, digits, underscores)."""
    out = "".join(c if c.isalnum() else "_" for c in text)
    return "_".join(part for part in out.split("_") if part)
