"""Read DICOM files into grey images, classify them and walk an input folder.

Every file the pipeline cannot turn into a correct image is refused with a `DicomError` whose
message starts with the file path and whose `reason` attribute is one of the `Reason` values, so
callers can table refusals. Nothing here writes a file or logs PHI: `DicomHeader` holds PHI (the
PatientID) in memory only, and logs carry counts, never paths or identifiers.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import logging
import os
import re
import struct
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom import uid as dcm_uid
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_color_lut, apply_modality_lut, get_decoder

from mskdx.errors import DicomError
from mskdx.ingest.inputs import walk_tree
from mskdx.ingest.preprocess import RegionRecord

log = logging.getLogger(__name__)

# Elements larger than this are not read when the header is parsed (their declared length and
# position are kept, which is what the truncation and pixel-length checks need).
_DEFER_SIZE = 1024

# ITU-R BT.601 luma weights; identical to the Y row of DICOM YBR_FULL.
BT601 = (0.299, 0.587, 0.114)


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

# Default accepted Modality values per kind of study (config `studies.*.modalities`).
DEFAULT_MODALITIES = {"ultrasound": ("US", "SC", "OT"), "mri": ("MR",)}


@contextlib.contextmanager
def _quiet_pydicom() -> Iterator[None]:
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
def _no_bare_errors(path: Path) -> Iterator[None]:
    """Turn an exception no check foresaw (a corrupt value deep in a header) into a DicomError."""
    try:
        yield
    except (DicomError, MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise _error(
            path, Reason.BAD_HEADER, f"cannot be read as an image ({type(exc).__name__}: {exc})"
        ) from exc


def _error(path: str | os.PathLike[str], reason: Reason, detail: str) -> DicomError:
    """Return a DicomError '<path>: <detail>' carrying `reason`, `path` and `detail`."""
    err = DicomError(f"{path}: {detail}")
    err.reason = Reason(reason)  # type: ignore[attr-defined]
    err.path = Path(path)  # type: ignore[attr-defined]
    err.detail = detail  # type: ignore[attr-defined]
    return err


# --------------------------------------------------------------------------------------------
# SOP classes
# --------------------------------------------------------------------------------------------

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
_DICOMDIR_DETAIL = "is a DICOMDIR (media storage directory), not an image"

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


def _sop_class(ds: Dataset) -> str:
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
    sop = _sop_class(ds)
    if sop == _DICOMDIR_SOP_CLASS or (not sop and "DirectoryRecordSequence" in ds):
        raise _error(path, Reason.NOT_AN_IMAGE, _DICOMDIR_DETAIL)
    if not sop:
        raise _error(
            path,
            Reason.BAD_HEADER,
            "has no SOPClassUID (0008,0016); cannot tell whether it is an image",
        )
    if sop not in _IMAGE_SOP_CLASSES:
        name = _sop_name(sop)
        kind = next((words for key, words in _REFUSED_KINDS if key in name), None)
        what = kind or "not an image storage SOP class"
        raise _error(
            path,
            Reason.NOT_AN_IMAGE,
            f"not an image: SOP class {sop} ({name}) is {what}; expected an image storage class "
            f"(ultrasound, secondary capture, MR, ...)",
        )
    modality = str(ds.get("Modality", "") or "").strip().upper()
    if not modality:
        raise _error(
            path, Reason.BAD_HEADER, f"has no Modality (0008,0060); expected one of {allowed}"
        )
    if modality not in allowed:
        raise _error(
            path,
            Reason.NOT_AN_IMAGE,
            f"not an image for this study: Modality {modality} ({_sop_name(sop)}) is not one of "
            f"{allowed} (config studies.*.modalities)",
        )


# --------------------------------------------------------------------------------------------
# Reading the header
# --------------------------------------------------------------------------------------------

_UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)+$")


def _read_dataset(path: Path) -> tuple[Dataset, int]:
    """Parse the header of `path` (large values deferred); return it and the file size.

    Raises DicomError: unreadable, empty_file, not_dicom, truncated, bad_header.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise _error(path, Reason.UNREADABLE, "file not found") from None
    except OSError as exc:
        raise _error(path, Reason.UNREADABLE, f"cannot be read: {exc.strerror or exc}") from None
    if not path.is_file():
        raise _error(path, Reason.NOT_DICOM, "is not a regular file")
    if size == 0:
        raise _error(path, Reason.EMPTY_FILE, "is empty (0 bytes)")
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError as exc:
        raise _error(path, Reason.UNREADABLE, f"cannot be read: {exc.strerror or exc}") from None

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
            raise _error(
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
        raise _error(
            path,
            Reason.TRUNCATED,
            f"is truncated: {size} bytes, shorter than the 132-byte DICOM preamble",
        )
    else:
        raise _error(
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
            raise _error(path, Reason.NOT_DICOM, f"is not a DICOM file ({exc})") from None
        except (EOFError, struct.error) as exc:
            raise _error(
                path, Reason.TRUNCATED, f"is truncated: the header ends mid-element ({exc})"
            ) from None
        except OSError as exc:
            raise _error(
                path, Reason.UNREADABLE, f"cannot be read: {exc.strerror or exc}"
            ) from None
        except Exception as exc:  # pydicom raises many types on corrupt headers
            raise _error(
                path, Reason.BAD_HEADER, f"has a corrupt DICOM header ({type(exc).__name__}: {exc})"
            ) from None
    for w in caught:
        text = str(w.message)
        if "End of file reached" in text or "unexpected end" in text.lower():
            raise _error(
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
            raise _error(
                path,
                Reason.TRUNCATED,
                f"is truncated: the file meta information ends at byte {meta_end} but the file "
                f"has {size} bytes",
            )
    if len(ds) == 0:
        raise _error(
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
            raise _error(
                path,
                Reason.TRUNCATED,
                f"is truncated: {name} declares {length} bytes but the file holds only {have}",
            )
        last_end = end
    if size is not None and last_end is not None and 0 < size - last_end < 12:
        # fewer bytes than an element header after the last element: pydicom dropped them
        raise _error(
            path,
            Reason.TRUNCATED,
            f"is truncated: {size - last_end} stray bytes after the last complete element",
        )


# --------------------------------------------------------------------------------------------
# Image pixel module checks
# --------------------------------------------------------------------------------------------

_MONO = ("MONOCHROME1", "MONOCHROME2")
_COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420")
_PHOTOMETRICS = (*_MONO, "PALETTE COLOR", *_COLOUR)

# plugin hints for compressed syntaxes, by transfer syntax UID
_PLUGIN_HINT = {
    dcm_uid.JPEGBaseline8Bit: "install pylibjpeg-libjpeg (with pylibjpeg) or pillow",
    dcm_uid.JPEGExtended12Bit: "install pylibjpeg-libjpeg (with pylibjpeg) or pillow",
    dcm_uid.JPEGLossless: "install pylibjpeg-libjpeg (with pylibjpeg)",
    dcm_uid.JPEGLosslessSV1: "install pylibjpeg-libjpeg (with pylibjpeg)",
    dcm_uid.JPEGLSLossless: "install pyjpegls, or pylibjpeg-libjpeg (with pylibjpeg)",
    dcm_uid.JPEGLSNearLossless: "install pyjpegls, or pylibjpeg-libjpeg (with pylibjpeg)",
    dcm_uid.JPEG2000Lossless: "install pylibjpeg-openjpeg (with pylibjpeg)",
    dcm_uid.JPEG2000: "install pylibjpeg-openjpeg (with pylibjpeg)",
    dcm_uid.HTJ2KLossless: "install pylibjpeg-openjpeg (with pylibjpeg)",
    dcm_uid.HTJ2KLosslessRPCL: "install pylibjpeg-openjpeg (with pylibjpeg)",
    dcm_uid.HTJ2K: "install pylibjpeg-openjpeg (with pylibjpeg)",
    dcm_uid.RLELossless: "RLE is built into pydicom; reinstall pydicom",
}
_NO_PLUGIN_HINT = (
    "pydicom has no decoder for it; re-export the study uncompressed or as JPEG / JPEG 2000 "
    "(e.g. `dcmconv +te` from dcmtk, `gdcmconv --raw`, or ffmpeg for video)"
)


@dataclass(frozen=True)
class _Pixels:
    """Validated Image Pixel module values."""

    rows: int
    columns: int
    samples: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    photometric: str
    planar: int | None
    frames: int
    syntax: dcm_uid.UID


def _int(
    ds: Dataset, keyword: str, path: Path, *, required: bool = True, default: int | None = None
) -> int | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns on invalid IS/DS strings; we report them
        value = ds.get(keyword)
    if value is None or value == "":
        if required:
            raise _error(
                path, Reason.BAD_HEADER, f"has no {keyword}; it is required to read the pixel data"
            )
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _error(
            path, Reason.BAD_HEADER, f"has an invalid {keyword} {value!r}; expected an integer"
        ) from None


def _transfer_syntax(ds: Dataset, path: Path) -> dcm_uid.UID:
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if not syntax:
        raise _error(
            path,
            Reason.BAD_HEADER,
            "has no TransferSyntaxUID (0002,0010) in its file meta information",
        )
    return dcm_uid.UID(str(syntax).strip())


def _check_pixels(ds: Dataset, path: Path) -> _Pixels:
    """Validate the Image Pixel module, the decoder and the pixel data length (no decoding)."""
    if "PixelData" not in ds:
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            raise _error(
                path,
                Reason.NO_PIXEL_DATA,
                "has only Float/Double Float Pixel Data (a parametric map); expected integer "
                "Pixel Data (7FE0,0010)",
            )
        raise _error(path, Reason.NO_PIXEL_DATA, "has no Pixel Data (7FE0,0010)")

    photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    if not photometric:
        raise _error(path, Reason.BAD_HEADER, "has no PhotometricInterpretation")
    if photometric not in _PHOTOMETRICS:
        raise _error(
            path,
            Reason.UNSUPPORTED_PHOTOMETRIC,
            f"has PhotometricInterpretation {photometric!r}; supported: {', '.join(_PHOTOMETRICS)}",
        )
    rows = _int(ds, "Rows", path)
    columns = _int(ds, "Columns", path)
    samples = _int(ds, "SamplesPerPixel", path)
    bits_allocated = _int(ds, "BitsAllocated", path)
    bits_stored = _int(ds, "BitsStored", path)
    representation = _int(ds, "PixelRepresentation", path)
    frames = (
        _int(ds, "NumberOfFrames", path, required=False, default=1) or 1
    )  # 0/empty: 1 (as pydicom)
    assert None not in (rows, columns, samples, bits_allocated, bits_stored, representation)
    if rows <= 0 or columns <= 0:  # type: ignore[operator]
        raise _error(
            path, Reason.BAD_HEADER, f"has Rows {rows} x Columns {columns}; expected positive sizes"
        )
    if frames < 0:
        raise _error(path, Reason.BAD_HEADER, f"has NumberOfFrames {frames}; expected >= 1")
    if bits_allocated not in (1, 8, 16, 32, 64):
        raise _error(
            path,
            Reason.BAD_HEADER,
            f"has BitsAllocated {bits_allocated}; expected 1, 8, 16, 32 or 64",
        )
    if not 0 < bits_stored <= bits_allocated:  # type: ignore[operator]
        raise _error(
            path,
            Reason.BAD_HEADER,
            f"has BitsStored {bits_stored} with BitsAllocated {bits_allocated}; expected "
            "1..BitsAllocated",
        )
    if representation not in (0, 1):
        raise _error(
            path,
            Reason.BAD_HEADER,
            f"has PixelRepresentation {representation}; expected 0 (unsigned) or 1 (signed)",
        )
    expected_samples = 3 if photometric in _COLOUR else 1
    if samples != expected_samples:
        raise _error(
            path,
            Reason.BAD_HEADER,
            f"has SamplesPerPixel {samples} with PhotometricInterpretation {photometric}; "
            f"expected {expected_samples}",
        )
    if bits_allocated == 1 and samples != 1:
        raise _error(path, Reason.BAD_HEADER, "has BitsAllocated 1 with colour samples")

    syntax = _transfer_syntax(ds, path)
    planar = _int(ds, "PlanarConfiguration", path, required=False)
    if samples == 3 and not syntax.is_compressed and planar is None:
        raise _error(
            path,
            Reason.BAD_HEADER,
            "has colour pixels but no PlanarConfiguration; cannot tell how the samples are ordered",
        )
    if planar not in (None, 0, 1):
        raise _error(path, Reason.BAD_HEADER, f"has PlanarConfiguration {planar}; expected 0 or 1")

    _check_decoder(syntax, path)
    info = _Pixels(
        rows,
        columns,
        samples,
        bits_allocated,
        bits_stored,
        bool(representation),
        photometric,
        planar,
        frames,
        syntax,
    )  # type: ignore[arg-type]
    if syntax.is_compressed:
        _check_encapsulated(ds, path, info)
    else:
        _check_native_length(ds, path, info)
    return info


def _check_decoder(syntax: dcm_uid.UID, path: Path) -> None:
    label = f"{syntax.name} ({syntax})" if syntax.name != syntax else f"transfer syntax {syntax}"
    if not syntax.is_transfer_syntax:
        raise _error(
            path,
            Reason.UNDECODABLE,
            f"uses {label}, which pydicom does not know; {_NO_PLUGIN_HINT}",
        )
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise _error(path, Reason.UNDECODABLE, f"uses {label}; {_NO_PLUGIN_HINT}") from None
    if not decoder.is_available:
        hint = _PLUGIN_HINT.get(syntax, "install a pydicom decoding plugin for it")
        missing = "; ".join(decoder.missing_dependencies)
        raise _error(
            path,
            Reason.UNDECODABLE,
            f"uses {label} but no decoder for it is installed: {hint}"
            + (f" (pydicom: {missing})" if missing else ""),
        )


def _expected_native_bytes(info: _Pixels) -> int:
    pixels = info.rows * info.columns * info.frames
    if info.bits_allocated == 1:
        return (pixels + 7) // 8
    samples = 2 if info.photometric == "YBR_FULL_422" else info.samples  # 4:2:2 subsampled
    return pixels * samples * info.bits_allocated // 8


def _pixel_length(ds: Dataset) -> int:
    elem = ds.get_item("PixelData", keep_deferred=True)
    length = getattr(elem, "length", None)
    if length is not None and length != 0xFFFFFFFF and getattr(elem, "value", None) is None:
        return int(length)
    return len(ds.PixelData)


def _check_native_length(ds: Dataset, path: Path, info: _Pixels) -> None:
    expected = _expected_native_bytes(info)
    actual = _pixel_length(ds)
    if actual == expected or (expected % 2 == 1 and actual == expected + 1):
        return
    frame_bytes = expected // max(info.frames, 1)
    if expected < actual < expected + frame_bytes:
        # trailing padding shorter than one frame (pydicom's MR_small_padded.dcm): the frames
        # are all there and decode correctly; a frame or more of surplus stays a refusal below
        log.warning(
            "Pixel Data holds %d bytes after the %d expected (less than one frame of %d bytes): "
            "trailing padding ignored",
            actual - expected,
            expected,
            frame_bytes,
        )
        return
    formula = (
        f"Rows {info.rows} x Columns {info.columns} x SamplesPerPixel {info.samples} x "
        f"BitsAllocated {info.bits_allocated}/8 x NumberOfFrames {info.frames}"
    )
    if info.photometric == "YBR_FULL_422":
        formula += " (YBR_FULL_422: 2 samples per pixel stored)"
    hint = ""
    if expected and actual > expected and actual % expected == 0:
        hint = f"; it would hold {actual // expected} times the frames: is NumberOfFrames wrong?"
    raise _error(
        path,
        Reason.PIXEL_LENGTH_MISMATCH,
        f"Pixel Data holds {actual} bytes but {formula} = {expected} bytes are expected{hint}",
    )


def _fragments(data: bytes, path: Path) -> tuple[list[int], list[tuple[int, int]]]:
    """Parse encapsulated Pixel Data: return (Basic Offset Table, [(offset, length)] fragments)."""
    pos, n = 0, len(data)
    offsets: list[int] = []
    fragments: list[tuple[int, int]] = []
    first = True
    while pos + 8 <= n:
        group, elem, length = struct.unpack_from("<HHL", data, pos)
        tag = group << 16 | elem
        if tag == 0xFFFEE0DD:
            break
        if tag != 0xFFFEE000:
            raise _error(
                path,
                Reason.UNDECODABLE,
                f"has corrupt encapsulated Pixel Data: unexpected tag ({group:04X},{elem:04X}) "
                f"at byte {pos} of the pixel data",
            )
        if length == 0xFFFFFFFF:
            raise _error(
                path,
                Reason.UNDECODABLE,
                "has corrupt encapsulated Pixel Data: an item of undefined length",
            )
        pos += 8
        if pos + length > n:
            raise _error(
                path,
                Reason.TRUNCATED,
                f"is truncated: a Pixel Data fragment declares {length} bytes but only "
                f"{n - pos} remain",
            )
        if first:
            if length % 4:
                raise _error(
                    path,
                    Reason.UNDECODABLE,
                    "has corrupt encapsulated Pixel Data: Basic Offset Table length is not a "
                    "multiple of 4",
                )
            offsets = list(struct.unpack_from(f"<{length // 4}L", data, pos))
            first = False
        else:
            fragments.append((pos, length))
        pos += length
    if 0 < n - pos < 8:
        raise _error(path, Reason.TRUNCATED, "is truncated: encapsulated Pixel Data ends mid-item")
    if first:
        raise _error(
            path,
            Reason.UNDECODABLE,
            "has corrupt encapsulated Pixel Data: no Basic Offset Table item",
        )
    return offsets, fragments


def _check_encapsulated(ds: Dataset, path: Path, info: _Pixels) -> None:
    elem = ds.get_item("PixelData", keep_deferred=True)
    if getattr(elem, "length", 0xFFFFFFFF) != 0xFFFFFFFF:
        raise _error(
            path,
            Reason.PIXEL_LENGTH_MISMATCH,
            f"declares compressed {info.syntax.name} but its Pixel Data is not encapsulated "
            f"(defined length {elem.length})",
        )
    offsets, fragments = _fragments(bytes(ds.PixelData), path)
    if not fragments or all(length == 0 for _, length in fragments):
        raise _error(path, Reason.NO_PIXEL_DATA, "has encapsulated Pixel Data with no fragments")
    if len(fragments) < info.frames:
        raise _error(
            path,
            Reason.PIXEL_LENGTH_MISMATCH,
            f"declares NumberOfFrames {info.frames} but its encapsulated Pixel Data holds only "
            f"{len(fragments)} fragment(s)",
        )
    if offsets and len(offsets) != info.frames:
        raise _error(
            path,
            Reason.PIXEL_LENGTH_MISMATCH,
            f"declares NumberOfFrames {info.frames} but its Basic Offset Table lists "
            f"{len(offsets)} frame(s)",
        )
    if "ExtendedOffsetTable" in ds:
        n_ext = len(bytes(ds.ExtendedOffsetTable)) // 8
        if n_ext != info.frames:
            raise _error(
                path,
                Reason.PIXEL_LENGTH_MISMATCH,
                f"declares NumberOfFrames {info.frames} but its Extended Offset Table lists "
                f"{n_ext} frame(s)",
            )


# --------------------------------------------------------------------------------------------
# Public API: headers
# --------------------------------------------------------------------------------------------


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


def _header(ds: Dataset, path: Path, info: _Pixels) -> DicomHeader:
    patient_id = _text(ds, "PatientID")
    if not patient_id:
        raise _error(
            path,
            Reason.BAD_HEADER,
            "has no PatientID; its images cannot be matched to the label sheet",
        )
    sop_instance = _text(ds, "SOPInstanceUID")
    if not sop_instance:
        raise _error(path, Reason.BAD_HEADER, "has no SOPInstanceUID; its images cannot be named")
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
        sop_class_uid=_sop_class(ds),
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
    with _quiet_pydicom(), _no_bare_errors(path):
        ds, _ = _read_dataset(path)
        classify(ds, path, modalities)
        info = _check_pixels(ds, path)
        return _header(ds, path, info)


# --------------------------------------------------------------------------------------------
# Public API: pixels
# --------------------------------------------------------------------------------------------


def _frame_rescale(ds: Dataset, frames: int) -> list[Dataset] | None:
    """Per-frame datasets holding RescaleSlope/Intercept from the functional groups, if any."""
    shared = (ds.get("SharedFunctionalGroupsSequence") or [Dataset()])[0]
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    out: list[Dataset] = []
    found = False
    for i in range(frames):
        groups = [per_frame[i]] if i < len(per_frame) else []
        groups.append(shared)
        item = Dataset()
        for group in groups:
            seq = group.get("PixelValueTransformationSequence") or []
            if seq and "RescaleSlope" in seq[0] and "RescaleIntercept" in seq[0]:
                item.RescaleSlope = seq[0].RescaleSlope
                item.RescaleIntercept = seq[0].RescaleIntercept
                found = True
                break
        out.append(item)
    return out if found else None


def _stored_range(info: _Pixels) -> tuple[int, int]:
    if info.signed:
        return -(2 ** (info.bits_stored - 1)), 2 ** (info.bits_stored - 1) - 1
    return 0, 2**info.bits_stored - 1


def _to_grey(arr: np.ndarray, ds: Dataset, info: _Pixels, decoded_pi: str) -> NDArray[np.float32]:
    """Turn decoded pixels (frames, rows, cols[, 3]) into float32 grey (frames, rows, cols)."""
    out = np.empty((info.frames, info.rows, info.columns), dtype=np.float32)
    if info.photometric == "PALETTE COLOR":
        for i in range(info.frames):
            rgb = apply_color_lut(arr[i], ds).astype(np.float64)
            out[i] = rgb @ np.asarray(BT601)
        return out
    if info.samples == 3:
        if decoded_pi.startswith("YBR_FULL"):
            # not converted to RGB by pydicom: Y is already the BT.601 luminance
            out[:] = arr[..., 0]
        elif decoded_pi in ("RGB", "YBR_ICT", "YBR_RCT"):
            # pydicom/decoders return RGB for the JPEG 2000 colour transforms
            for i in range(info.frames):
                out[i] = arr[i].astype(np.float64) @ np.asarray(BT601)
        else:
            raise DicomError(f"decoded photometric {decoded_pi} not handled")
        return out
    # grey: modality LUT (rescale) then MONOCHROME1 inversion
    per_frame = _frame_rescale(ds, info.frames)
    lo, hi = _stored_range(info)
    for i in range(info.frames):
        lut_ds = per_frame[i] if per_frame is not None else ds
        frame = apply_modality_lut(arr[i], lut_ds)
        if info.photometric == "MONOCHROME1":
            bounds = apply_modality_lut(np.array([lo, hi], dtype=np.int64), lut_ds).astype(
                np.float64
            )
            frame = (bounds.min() + bounds.max()) - frame.astype(np.float64)
        out[i] = frame
    return out


#: Plugins that check a compressed stream while decoding it, by transfer syntax: CharLS
#: (pyjpegls) refuses a JPEG-LS scan whose bytes do not decode to exactly the declared image
#: (it checks markers and that the decoder ends where the data ends), where libjpeg returns
#: wrong pixels without an error. See docs/architecture.md, "Damaged compressed data".
_CHECKING_PLUGINS = {
    dcm_uid.JPEGLSLossless: "pyjpegls",
    dcm_uid.JPEGLSNearLossless: "pyjpegls",
}


def _checking_plugin(syntax: dcm_uid.UID, decoder: Any) -> str:
    """The plugin to decode `syntax` with alone, if a checking one is installed; else ""."""
    plugin = _CHECKING_PLUGINS.get(syntax, "")
    return plugin if plugin in decoder.available_plugins else ""


def read_frames(path: str | os.PathLike[str]) -> NDArray[np.float32]:
    """Decode every frame of a DICOM file to float32 grey, shape (frames, rows, cols).

    Applies the modality LUT / rescale slope and intercept (also per frame from enhanced
    functional groups), inverts MONOCHROME1 so that high = bright, and turns RGB, YBR and
    PALETTE COLOR into BT.601 luminance. Raises DicomError (with `reason`) for anything that
    cannot become a correct image.
    """
    path = Path(path)
    with _quiet_pydicom(), _no_bare_errors(path):
        return _read_frames(path)


def _read_frames(path: Path) -> NDArray[np.float32]:
    ds, _ = _read_dataset(path)
    info = _check_pixels(ds, path)
    decoder = get_decoder(info.syntax)
    opts: dict[str, Any] = {
        "rows": info.rows,
        "columns": info.columns,
        "samples_per_pixel": info.samples,
        "bits_allocated": info.bits_allocated,
        "bits_stored": info.bits_stored,
        "pixel_representation": int(info.signed),
        "photometric_interpretation": info.photometric,
        "number_of_frames": info.frames,
        "planar_configuration": info.planar or 0,
    }
    strict = _checking_plugin(info.syntax, decoder)
    if strict:
        # pydicom tries the next plugin when one fails: a stream CharLS refuses as damaged
        # would then be decoded by libjpeg, which returns garbage without an error
        opts["decoding_plugin"] = strict
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            arr, props = decoder.as_array(ds, **opts)
        except MemoryError:
            raise
        except Exception as exc:  # decoder plugins raise many types on corrupt data
            plugins = ", ".join(decoder.available_plugins) or "pydicom"
            raise _error(
                path,
                Reason.UNDECODABLE,
                f"{info.syntax.name} pixel data could not be decoded ({plugins}): "
                f"{type(exc).__name__}: {exc}",
            ) from None
    for w in caught:
        log.debug("pydicom warning while decoding: %s", str(w.message).replace(str(path), "<file>"))
    expected = (info.frames, info.rows, info.columns) + ((3,) if info.samples == 3 else ())
    if info.frames == 1 and arr.shape == expected[1:]:
        arr = arr[np.newaxis]
    if arr.shape != expected:
        raise _error(
            path,
            Reason.PIXEL_LENGTH_MISMATCH,
            f"decoded to shape {arr.shape}; the header describes {expected}",
        )
    decoded_pi = str(props.get("photometric_interpretation", info.photometric))
    try:
        out = _to_grey(arr, ds, info, decoded_pi)
    except DicomError:
        raise _error(
            path,
            Reason.UNSUPPORTED_PHOTOMETRIC,
            f"decoded to photometric {decoded_pi}, which cannot be turned into grey",
        ) from None
    except Exception as exc:  # bad LUT descriptors, palette data, ...
        raise _error(
            path,
            Reason.BAD_HEADER,
            f"its LUT/palette cannot be applied ({type(exc).__name__}: {exc})",
        ) from None
    if not np.all(np.isfinite(out)):
        raise _error(
            path,
            Reason.BAD_HEADER,
            "pixel values are not finite after the modality LUT (check RescaleSlope/Intercept)",
        )
    return out


def read_ultrasound_regions(path: str | os.PathLike[str]) -> list[RegionRecord]:
    """The items of the file's SequenceOfUltrasoundRegions (0018,6011), [] if it has none.

    Values are returned as written; whether they are usable for the pixels is decided by
    `mskdx.ingest.preprocess.record_regions`. An item missing a location is left out.
    """
    path = Path(path)
    with _quiet_pydicom(), _no_bare_errors(path):
        ds, _ = _read_dataset(path)
        out = []
        for item in ds.get("SequenceOfUltrasoundRegions") or []:
            try:
                x0, y0, x1, y1 = (
                    int(item[k].value)
                    for k in (
                        "RegionLocationMinX0",
                        "RegionLocationMinY0",
                        "RegionLocationMaxX1",
                        "RegionLocationMaxY1",
                    )
                )
            except (KeyError, TypeError, ValueError):
                continue
            fmt, kind = item.get("RegionSpatialFormat"), item.get("RegionDataType")
            out.append(
                RegionRecord(
                    None if fmt is None else int(fmt),
                    None if kind is None else int(kind),
                    x0,
                    y0,
                    x1,
                    y1,
                )
            )
        return out


# --------------------------------------------------------------------------------------------
# Public API: folders
# --------------------------------------------------------------------------------------------


def _path_key(relpath: str) -> str:
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
            object.__setattr__(self, "key", _path_key(self.relpath or str(self.path)))


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
    if not root.exists():
        raise _error(
            root,
            Reason.MISSING_FOLDER,
            "input folder does not exist (config studies.*.input.dicom_dir)",
        )
    if not root.is_dir():
        raise _error(
            root, Reason.MISSING_FOLDER, "is not a folder; expected the folder of DICOM studies"
        )
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
            if detail == _DICOMDIR_DETAIL:
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
                    f"has the same SOPInstanceUID as file F-{_path_key(first)}; each image must "
                    "be exported once",
                    rel,
                )
            )
            continue
        seen[header.sop_instance_uid] = rel
        scan.headers.append(header)
    scan.refusals.sort(key=lambda r: r.relpath)
    log.info(
        "scanned %d files: %d images accepted, %d refused, %d not images skipped",
        scan.files,
        len(scan.headers),
        len(scan.refusals),
        sum(scan.skipped.values()),
    )
    if tree.repeated:
        log.info("%d files or folders reached twice through links were read once", tree.repeated)
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
    return scan


def refusal_listing(refusals: Sequence[Refusal]) -> str:
    """One line per refusal, by key (F-...), reason and message: safe for logs (no paths)."""
    return "\n".join(f"  F-{r.key}: {r.reason}: {r.message}" for r in refusals)


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
        err = _error(
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
        err = _error(root, Reason.NO_IMAGES, detail)
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
        raise _error(path, Reason.UNREADABLE, f"cannot be read: {exc.strerror or exc}") from None
    return digest.hexdigest()
