"""Parse the header of one file: is it DICOM at all, is it whole.

`read_dataset` reads the header with large values deferred and refuses (unreadable,
empty_file, not_dicom, truncated, bad_header) what is not a whole DICOM dataset, with or without
the Part 10 preamble. Every public reader runs inside `quiet_pydicom` and `no_bare_errors`, so
pydicom's own logs (which may name the file) stay out and nothing but a DicomError escapes.
"""

from __future__ import annotations

import contextlib
import logging
import re
import struct
import warnings
from collections.abc import Iterator
from pathlib import Path

import pydicom
from pydicom import uid as dcm_uid
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from mskdx.errors import DicomError
from mskdx.ingest.refusals import Reason, dicom_error

log = logging.getLogger(__name__)

# Elements larger than this are not read when the header is parsed (their declared length and
# position are kept, which is what the truncation and pixel-length checks need).
_DEFER_SIZE = 1024


@contextlib.contextmanager
def quiet_pydicom() -> Iterator[None]:
    """Keep pydicom's own log records (which may name the input file) out of the caller's logs.

    pydicom logs warnings and decoder failures, some with the file path, and input paths may
    hold patient identifiers. What matters reaches the caller as a DicomError instead.
    """
    logger = logging.getLogger("pydicom")
    before = logger.propagate
    logger.propagate = False
    try:
        with warnings.catch_warnings():
            # pydicom's UserWarnings would reach stderr (the rule's log); our checks report
            # what matters, and code that needs a warning records it in an inner block
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.propagate = before


@contextlib.contextmanager
def no_bare_errors(path: Path) -> Iterator[None]:
    """Turn an exception no check foresaw (a corrupt value deep in a header) into a DicomError."""
    try:
        yield
    except (DicomError, MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise dicom_error(
            path, Reason.BAD_HEADER, f"cannot be read as an image ({type(exc).__name__}: {exc})"
        ) from exc


_UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)+$")


def read_dataset(path: Path) -> tuple[Dataset, int]:
    """Parse the header of `path` (large values deferred); return it and the file size.

    Raises DicomError: unreadable, empty_file, not_dicom, truncated, bad_header.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise dicom_error(path, Reason.UNREADABLE, "file not found") from None
    except OSError as exc:
        raise dicom_error(
            path, Reason.UNREADABLE, f"cannot be read: {exc.strerror or exc}"
        ) from None
    if not path.is_file():
        raise dicom_error(path, Reason.NOT_DICOM, "is not a regular file")
    if size == 0:
        raise dicom_error(path, Reason.EMPTY_FILE, "is empty (0 bytes)")
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError as exc:
        raise dicom_error(
            path, Reason.UNREADABLE, f"cannot be read: {exc.strerror or exc}"
        ) from None

    if len(head) == 132 and head[128:132] == b"DICM":
        ds = _parse(path, force=False)
        syntax = getattr(ds, "file_meta", Dataset()).get("TransferSyntaxUID")
        if syntax == dcm_uid.DeflatedExplicitVRLittleEndian:
            # element positions refer to the inflated stream, so deferred reads and the
            # file-size checks do not apply: read everything, check the value lengths only
            ds = _parse(path, force=False, defer=False)
            _check_truncation(ds, path, None)
            return ds, size
    elif _looks_like_raw_dataset(head):
        # A dataset without the Part 10 preamble (old ACR-NEMA style export). pydicom reads
        # anything with force=True, so accept it only if it yields a plausible image header.
        ds = _parse(path, force=True)
        sop = str(ds.get("SOPClassUID", "") or "")
        if not _UID_RE.match(sop) or "Modality" not in ds:
            raise dicom_error(
                path,
                Reason.NOT_DICOM,
                "is not a DICOM file: no 'DICM' marker at byte 128, and it does not parse as a "
                "raw DICOM dataset with a SOPClassUID and Modality",
            )
        meta = getattr(ds, "file_meta", None)
        if meta is None or not meta.get("TransferSyntaxUID"):
            # no file meta: the syntax is the (native) encoding pydicom found while parsing
            implicit, little = ds.original_encoding
            ds.file_meta = meta if meta is not None else pydicom.dataset.FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = (
                dcm_uid.ImplicitVRLittleEndian
                if implicit
                else dcm_uid.ExplicitVRLittleEndian
                if little
                else dcm_uid.ExplicitVRBigEndian
            )
    elif len(head) < 132 and head.startswith(b"\0" * len(head)):
        raise dicom_error(
            path,
            Reason.TRUNCATED,
            f"is truncated: {size} bytes, shorter than the 132-byte DICOM preamble",
        )
    else:
        raise dicom_error(
            path,
            Reason.NOT_DICOM,
            f"is not a DICOM file (no 'DICM' marker at byte 128; looks like {_sniff(head)})",
        )
    _check_truncation(ds, path, size)
    return ds, size


_SIGNATURES = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\xd0\xcf\x11\xe0", "an old Office document (or Thumbs.db)"),
)


def _sniff(head: bytes) -> str:
    """Name the kind of a non-DICOM file from its first bytes (never quote them: PHI)."""
    for magic, kind in _SIGNATURES:
        if head.startswith(magic):
            return kind
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "binary data"
    printable = all(c.isprintable() or c in "\r\n\t" for c in text)
    return "a text file" if printable else "binary data"


def _looks_like_raw_dataset(head: bytes) -> bool:
    """True if `head` starts with a group 0x0002 or 0x0008 tag (either byte order)."""
    if len(head) < 8:
        return False
    little = struct.unpack("<H", head[:2])[0]
    big = struct.unpack(">H", head[:2])[0]
    return little in (0x0002, 0x0008) or big in (0x0002, 0x0008)


def _parse(path: Path, *, force: bool, defer: bool = True) -> Dataset:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(str(path), defer_size=_DEFER_SIZE if defer else None, force=force)
        except InvalidDicomError as exc:
            raise dicom_error(path, Reason.NOT_DICOM, f"is not a DICOM file ({exc})") from None
        except (EOFError, struct.error) as exc:
            raise dicom_error(
                path, Reason.TRUNCATED, f"is truncated: the header ends mid-element ({exc})"
            ) from None
        except OSError as exc:
            raise dicom_error(
                path, Reason.UNREADABLE, f"cannot be read: {exc.strerror or exc}"
            ) from None
        except Exception as exc:  # pydicom raises many types on corrupt headers
            raise dicom_error(
                path, Reason.BAD_HEADER, f"has a corrupt DICOM header ({type(exc).__name__}: {exc})"
            ) from None
    for w in caught:
        text = str(w.message)
        if "End of file reached" in text or "unexpected end" in text.lower():
            raise dicom_error(
                path, Reason.TRUNCATED, f"is truncated: {text.replace(str(path), '').strip()}"
            )
        log.debug("pydicom warning while reading a header: %s", text.replace(str(path), "<file>"))
    return ds


def _check_truncation(ds: Dataset, path: Path, size: int | None) -> None:
    """Raise truncated if the file ends before an element it declares.

    pydicom reads a short value or stops at a partial element header without complaint, so
    compare the declared lengths of the top-level elements with the values read and the file
    size (`size` None: positions are not file positions, as in a deflated dataset).
    """
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "FileMetaInformationGroupLength" in meta:
        try:
            meta_end = 132 + 12 + int(meta.FileMetaInformationGroupLength)
        except (TypeError, ValueError):
            meta_end = 0
        if size is not None and meta_end > size:
            raise dicom_error(
                path,
                Reason.TRUNCATED,
                f"is truncated: the file meta information ends at byte {meta_end} but the file "
                f"has {size} bytes",
            )
    if len(ds) == 0:
        raise dicom_error(
            path, Reason.TRUNCATED, "is truncated: no data elements after the file meta information"
        )
    last_end: int | None = None
    for tag in ds.keys():
        elem = ds.get_item(tag, keep_deferred=True)
        length = getattr(elem, "length", None)
        tell = getattr(elem, "value_tell", None)
        if length is None or tell is None or length == 0xFFFFFFFF:
            last_end = None  # sequences and encapsulated values: end unknown here
            continue
        value = getattr(elem, "value", None)
        end = tell + length
        if value is None:
            short = size is not None and end > size
        else:
            short = isinstance(value, bytes) and len(value) < length
        if short:
            name = pydicom.datadict.keyword_for_tag(tag) or str(tag)
            have = len(value) if value is not None else max(0, (size or 0) - tell)
            raise dicom_error(
                path,
                Reason.TRUNCATED,
                f"is truncated: {name} declares {length} bytes but the file holds only {have}",
            )
        last_end = end
    if size is not None and last_end is not None and 0 < size - last_end < 12:
        # fewer bytes than an element header after the last element: pydicom dropped them
        raise dicom_error(
            path,
            Reason.TRUNCATED,
            f"is truncated: {size - last_end} stray bytes after the last complete element",
        )
