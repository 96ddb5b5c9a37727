"""Decode checked Pixel Data into float32 grey frames.

`decode_frames` runs pydicom's decoder (alone with a plugin that checks the compressed stream,
where one is installed), checks the decoded shape, and turns the pixels into grey: the modality
LUT (per frame from enhanced functional groups too), MONOCHROME1 inverted, colour as BT.601
luminance.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom import uid as dcm_uid
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, get_decoder

from mskdx.errors import DicomError
from mskdx.ingest.pixels import PixelInfo
from mskdx.ingest.refusals import Reason, dicom_error

log = logging.getLogger(__name__)

# ITU-R BT.601 luma weights; identical to the Y row of DICOM YBR_FULL.
BT601 = (0.299, 0.587, 0.114)


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


def _stored_range(info: PixelInfo) -> tuple[int, int]:
    if info.signed:
        return -(2 ** (info.bits_stored - 1)), 2 ** (info.bits_stored - 1) - 1
    return 0, 2**info.bits_stored - 1


def _to_grey(arr: np.ndarray, ds: Dataset, info: PixelInfo, decoded_pi: str) -> NDArray[np.float32]:
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


def decode_frames(ds: Dataset, path: Path, info: PixelInfo) -> NDArray[np.float32]:
    """Decode the Pixel Data of `ds` (checked by `check_pixels` into `info`) to grey frames."""
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
            raise dicom_error(
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
        raise dicom_error(
            path,
            Reason.PIXEL_LENGTH_MISMATCH,
            f"decoded to shape {arr.shape}; the header describes {expected}",
        )
    decoded_pi = str(props.get("photometric_interpretation", info.photometric))
    try:
        out = _to_grey(arr, ds, info, decoded_pi)
    except DicomError:
        raise dicom_error(
            path,
            Reason.UNSUPPORTED_PHOTOMETRIC,
            f"decoded to photometric {decoded_pi}, which cannot be turned into grey",
        ) from None
    except Exception as exc:  # bad LUT descriptors, palette data, ...
        raise dicom_error(
            path,
            Reason.BAD_HEADER,
            f"its LUT/palette cannot be applied ({type(exc).__name__}: {exc})",
        ) from None
    if not np.all(np.isfinite(out)):
        raise dicom_error(
            path,
            Reason.BAD_HEADER,
            "pixel values are not finite after the modality LUT (check RescaleSlope/Intercept)",
        )
    return out
