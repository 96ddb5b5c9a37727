"""Check the Image Pixel module before decoding: attributes, decoder, pixel data length.

`check_pixels` refuses, without decoding, what cannot become a correct image: an unsupported
photometric interpretation, inconsistent sizes, a transfer syntax without an installed decoder,
native Pixel Data of the wrong length (trailing padding under one frame is accepted with a
warning) and encapsulated Pixel Data whose items and offset tables do not match the frames.
"""

from __future__ import annotations

import logging
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

from pydicom import uid as dcm_uid
from pydicom.dataset import Dataset
from pydicom.pixels import get_decoder

from mskdx.ingest.refusals import Reason, dicom_error

log = logging.getLogger(__name__)

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
class PixelInfo:
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
            raise dicom_error(
                path, Reason.BAD_HEADER, f"has no {keyword}; it is required to read the pixel data"
            )
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise dicom_error(
            path, Reason.BAD_HEADER, f"has an invalid {keyword} {value!r}; expected an integer"
        ) from None


def _transfer_syntax(ds: Dataset, path: Path) -> dcm_uid.UID:
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if not syntax:
        raise dicom_error(
            path,
            Reason.BAD_HEADER,
            "has no TransferSyntaxUID (0002,0010) in its file meta information",
        )
    return dcm_uid.UID(str(syntax).strip())


def check_pixels(ds: Dataset, path: Path) -> PixelInfo:
    """Validate the Image Pixel module, the decoder and the pixel data length (no decoding)."""
    _check_pixel_data_present(ds, path)
    info = _pixel_module(ds, path)
    _check_decoder(info.syntax, path)
    if info.syntax.is_compressed:
        _check_encapsulated(ds, path, info)
    else:
        _check_native_length(ds, path, info)
    return info


def _check_pixel_data_present(ds: Dataset, path: Path) -> None:
    if "PixelData" not in ds:
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            raise dicom_error(
                path,
                Reason.NO_PIXEL_DATA,
                "has only Float/Double Float Pixel Data (a parametric map); expected integer "
                "Pixel Data (7FE0,0010)",
            )
        raise dicom_error(path, Reason.NO_PIXEL_DATA, "has no Pixel Data (7FE0,0010)")


def _photometric(ds: Dataset, path: Path) -> str:
    photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    if not photometric:
        raise dicom_error(path, Reason.BAD_HEADER, "has no PhotometricInterpretation")
    if photometric not in _PHOTOMETRICS:
        raise dicom_error(
            path,
            Reason.UNSUPPORTED_PHOTOMETRIC,
            f"has PhotometricInterpretation {photometric!r}; supported: {', '.join(_PHOTOMETRICS)}",
        )
    return photometric


def _pixel_module(ds: Dataset, path: Path) -> PixelInfo:
    """Read and cross-check the Image Pixel module attributes and the transfer syntax."""
    photometric = _photometric(ds, path)
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
        raise dicom_error(
            path, Reason.BAD_HEADER, f"has Rows {rows} x Columns {columns}; expected positive sizes"
        )
    if frames < 0:
        raise dicom_error(path, Reason.BAD_HEADER, f"has NumberOfFrames {frames}; expected >= 1")
    if bits_allocated not in (1, 8, 16, 32, 64):
        raise dicom_error(
            path,
            Reason.BAD_HEADER,
            f"has BitsAllocated {bits_allocated}; expected 1, 8, 16, 32 or 64",
        )
    if not 0 < bits_stored <= bits_allocated:  # type: ignore[operator]
        raise dicom_error(
            path,
            Reason.BAD_HEADER,
            f"has BitsStored {bits_stored} with BitsAllocated {bits_allocated}; expected "
            "1..BitsAllocated",
        )
    if representation not in (0, 1):
        raise dicom_error(
            path,
            Reason.BAD_HEADER,
            f"has PixelRepresentation {representation}; expected 0 (unsigned) or 1 (signed)",
        )
    expected_samples = 3 if photometric in _COLOUR else 1
    if samples != expected_samples:
        raise dicom_error(
            path,
            Reason.BAD_HEADER,
            f"has SamplesPerPixel {samples} with PhotometricInterpretation {photometric}; "
            f"expected {expected_samples}",
        )
    if bits_allocated == 1 and samples != 1:
        raise dicom_error(path, Reason.BAD_HEADER, "has BitsAllocated 1 with colour samples")

    syntax = _transfer_syntax(ds, path)
    planar = _int(ds, "PlanarConfiguration", path, required=False)
    if samples == 3 and not syntax.is_compressed and planar is None:
        raise dicom_error(
            path,
            Reason.BAD_HEADER,
            "has colour pixels but no PlanarConfiguration; cannot tell how the samples are ordered",
        )
    if planar not in (None, 0, 1):
        raise dicom_error(
            path, Reason.BAD_HEADER, f"has PlanarConfiguration {planar}; expected 0 or 1"
        )
    return PixelInfo(
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


def _check_decoder(syntax: dcm_uid.UID, path: Path) -> None:
    label = f"{syntax.name} ({syntax})" if syntax.name != syntax else f"transfer syntax {syntax}"
    if not syntax.is_transfer_syntax:
        raise dicom_error(
            path,
            Reason.UNDECODABLE,
            f"uses {label}, which pydicom does not know; {_NO_PLUGIN_HINT}",
        )
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise dicom_error(path, Reason.UNDECODABLE, f"uses {label}; {_NO_PLUGIN_HINT}") from None
    if not decoder.is_available:
        hint = _PLUGIN_HINT.get(syntax, "install a pydicom decoding plugin for it")
        missing = "; ".join(decoder.missing_dependencies)
        raise dicom_error(
            path,
            Reason.UNDECODABLE,
            f"uses {label} but no decoder for it is installed: {hint}"
            + (f" (pydicom: {missing})" if missing else ""),
        )


def _expected_native_bytes(info: PixelInfo) -> int:
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


def _check_native_length(ds: Dataset, path: Path, info: PixelInfo) -> None:
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
    raise dicom_error(
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
            raise dicom_error(
                path,
                Reason.UNDECODABLE,
                f"has corrupt encapsulated Pixel Data: unexpected tag ({group:04X},{elem:04X}) "
                f"at byte {pos} of the pixel data",
            )
        if length == 0xFFFFFFFF:
            raise dicom_error(
                path,
                Reason.UNDECODABLE,
                "has corrupt encapsulated Pixel Data: an item of undefined length",
            )
        pos += 8
        if pos + length > n:
            raise dicom_error(
                path,
                Reason.TRUNCATED,
                f"is truncated: a Pixel Data fragment declares {length} bytes but only "
                f"{n - pos} remain",
            )
        if first:
            if length % 4:
                raise dicom_error(
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
        raise dicom_error(
            path, Reason.TRUNCATED, "is truncated: encapsulated Pixel Data ends mid-item"
        )
    if first:
        raise dicom_error(
            path,
            Reason.UNDECODABLE,
            "has corrupt encapsulated Pixel Data: no Basic Offset Table item",
        )
    return offsets, fragments


def _check_encapsulated(ds: Dataset, path: Path, info: PixelInfo) -> None:
    elem = ds.get_item("PixelData", keep_deferred=True)
    if getattr(elem, "length", 0xFFFFFFFF) != 0xFFFFFFFF:
        raise dicom_error(
            path,
            Reason.PIXEL_LENGTH_MISMATCH,
            f"declares compressed {info.syntax.name} but its Pixel Data is not encapsulated "
            f"(defined length {elem.length})",
        )
    offsets, fragments = _fragments(bytes(ds.PixelData), path)
    if not fragments or all(length == 0 for _, length in fragments):
        raise dicom_error(
            path, Reason.NO_PIXEL_DATA, "has encapsulated Pixel Data with no fragments"
        )
    if len(fragments) < info.frames:
        raise dicom_error(
            path,
            Reason.PIXEL_LENGTH_MISMATCH,
            f"declares NumberOfFrames {info.frames} but its encapsulated Pixel Data holds only "
            f"{len(fragments)} fragment(s)",
        )
    if offsets and len(offsets) != info.frames:
        raise dicom_error(
            path,
            Reason.PIXEL_LENGTH_MISMATCH,
            f"declares NumberOfFrames {info.frames} but its Basic Offset Table lists "
            f"{len(offsets)} frame(s)",
        )
    if "ExtendedOffsetTable" in ds:
        n_ext = len(bytes(ds.ExtendedOffsetTable)) // 8
        if n_ext != info.frames:
            raise dicom_error(
                path,
                Reason.PIXEL_LENGTH_MISMATCH,
                f"declares NumberOfFrames {info.frames} but its Extended Offset Table lists "
                f"{n_ext} frame(s)",
            )
