"""Image preprocessing: ultrasound B-mode crop (gout) and MRI resize (OLT).

Both produce uint8 grey images for the tensor cache; intensity normalization (per-image z-score,
training-fold statistics or ImageNet) happens at training time, so that statistics can be taken
from the training fold only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi
from skimage import filters, measure, morphology, transform

from mskdx.errors import PreprocessError

#: segmentation runs on the image downsampled by this factor (speed; the box is scaled back)
SEGMENT_FACTOR = 4


@dataclass(frozen=True)
class Box:
    """A crop box in pixel coordinates of the source frame: [x0, x1) x [y0, y1)."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


def find_bmode_region(frame: NDArray, source: str = "") -> Box:
    """Find the B-mode image region of an ultrasound screen capture.

    Thresholding (Otsu on the downsampled frame) separates the speckled image region from the
    black surround; an opening removes burned-in text, ruler ticks and thin bars; closing and hole
    filling join the region across dark (anechoic, shadowed) areas; the largest connected component
    is the B-mode region. Returns its bounding box in full-resolution pixels.
    """
    small = _downsample(frame.astype(np.float32), SEGMENT_FACTOR)
    if not np.isfinite(small).all() or small.max() - small.min() < 1e-6:
        raise PreprocessError(f"{source}: image is blank (constant intensity); no B-mode region")
    level = filters.threshold_otsu(small)
    # speckle has dark pixels inside the region: threshold a smoothed copy
    smooth = ndi.uniform_filter(small, size=3)
    mask = smooth > 0.5 * level
    # the opening removes what is thinner than ~40 px: burned-in text lines, ruler ticks, bars
    mask = ndi.binary_opening(mask, morphology.disk(5))
    mask = ndi.binary_closing(mask, morphology.disk(4), border_value=0)
    mask = ndi.binary_fill_holes(mask)
    labels = measure.label(mask, connectivity=2)
    if labels.max() == 0:
        raise PreprocessError(f"{source}: no B-mode region found (nothing above the background)")
    regions = sorted(measure.regionprops(labels), key=lambda r: r.area, reverse=True)
    region = regions[0]
    if region.area < 0.05 * mask.size:
        raise PreprocessError(
            f"{source}: no B-mode region found (largest bright region covers "
            f"{region.area / mask.size:.1%} of the image; expected >= 5%)"
        )
    # an anechoic band or an acoustic shadow across the whole width splits the region in two:
    # join the large parts that lie in the same columns
    part = labels == region.label
    for other in regions[1:]:
        o0, oc0, o1, oc1 = other.bbox
        r0, c0, r1, c1 = region.bbox
        overlap = min(c1, oc1) - max(c0, oc0)
        if other.area >= 0.1 * region.area and overlap >= 0.8 * (oc1 - oc0):
            part |= labels == other.label
    r0, r1 = _trim(part.sum(axis=1), 0.5)  # rows: a text block joined at the top is narrow
    c0, c1 = _trim(part.sum(axis=0), 0.25)  # columns: a bar or ruler joined at a side is short
    f = SEGMENT_FACTOR
    return Box(x0=c0 * f, y0=r0 * f, x1=min(c1 * f, frame.shape[1]), y1=min(r1 * f, frame.shape[0]))


def crop_box(
    region: Box, frame_shape: tuple[int, int], width: int, height: int, source: str = ""
) -> Box:
    """Place a width x height crop on the region: centred horizontally, at its top (near field).

    The paper keeps the region of interest within the near two thirds of the field, so the crop
    starts at the skin line (the region's top edge). The box is shifted, never shrunk, to stay
    inside the frame.
    """
    _check_size(frame_shape, width, height, source)
    rows, cols = frame_shape
    cx = (region.x0 + region.x1) // 2
    x0 = int(np.clip(cx - width // 2, 0, cols - width))
    y0 = int(np.clip(region.y0, 0, rows - height))
    return Box(x0=x0, y0=y0, x1=x0 + width, y1=y0 + height)


def crop_ultrasound(
    frame: NDArray, *, width: int, height: int, scale: float = 1.0, source: str = ""
) -> tuple[NDArray[np.uint8], Box]:
    """Crop the width x height box of the B-mode region and resize it by `scale` (uint8)."""
    _check_size(frame.shape, width, height, source)
    box = crop_box(find_bmode_region(frame, source), frame.shape, width, height, source)
    crop = frame[box.y0 : box.y1, box.x0 : box.x1]
    return to_uint8(resize(crop, scale_shape(width, height, scale))), box


def crop_mask(mask: NDArray, box: Box, width: int, height: int, scale: float) -> NDArray[np.uint8]:
    """Apply a crop box to a lesion mask; a pixel is lesion if any covered source pixel was."""
    crop = mask[box.y0 : box.y1, box.x0 : box.x1].astype(np.float32)
    return (resize(crop, scale_shape(width, height, scale)) > 0.01).astype(np.uint8)


def scale_shape(width: int, height: int, scale: float) -> tuple[int, int]:
    """(rows, cols) of a width x height crop resized by `scale`."""
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_mri(frame: NDArray, size: int, source: str = "") -> NDArray[np.uint8]:
    """Window an MR slice to its 0.5-99.5th percentiles and resize it to size x size (uint8)."""
    lo, hi = np.percentile(frame, [0.5, 99.5])
    if not np.isfinite([lo, hi]).all() or hi - lo < 1e-6:
        raise PreprocessError(f"{source}: image is blank (constant intensity)")
    scaled = (frame.astype(np.float32) - lo) * (255.0 / (hi - lo))
    return to_uint8(resize(scaled, (size, size)))


def resize_mask(mask: NDArray, shape: tuple[int, int]) -> NDArray[np.uint8]:
    return (resize(mask.astype(np.float32), shape) > 0.01).astype(np.uint8)


def resize(image: NDArray, shape: tuple[int, int]) -> NDArray[np.float32]:
    """Resize with anti-aliasing (area-like) unless the shape is unchanged."""
    if image.shape == tuple(shape):
        return image.astype(np.float32, copy=False)
    out = transform.resize(
        image.astype(np.float32), shape, order=1, anti_aliasing=True, preserve_range=True
    )
    return out.astype(np.float32)


def to_uint8(image: NDArray) -> NDArray[np.uint8]:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _downsample(image: NDArray[np.float32], factor: int) -> NDArray[np.float32]:
    rows, cols = (s // factor * factor for s in image.shape)
    if rows == 0 or cols == 0:
        return image
    view = image[:rows, :cols].reshape(rows // factor, factor, cols // factor, factor)
    return view.mean(axis=(1, 3))


def _check_size(shape: tuple[int, ...], width: int, height: int, source: str) -> None:
    rows, cols = shape[:2]
    if cols < width or rows < height:
        raise PreprocessError(
            f"{source}: image is {cols}x{rows} pixels, smaller than the {width}x{height} crop"
        )


def _trim(coverage: NDArray, fraction: float) -> tuple[int, int]:
    """First and one-past-last index where `coverage` reaches `fraction` of its maximum."""
    keep = np.flatnonzero(coverage >= fraction * coverage.max())
    return int(keep[0]), int(keep[-1]) + 1
