"""Image preprocessing: ultrasound region and crop (gout) and MRI resize (OLT).

Both produce uint8 grey images for the tensor cache; intensity normalization (per-image z-score,
training-fold statistics or ImageNet) happens at training time, so that statistics can be taken
from the training fold only.

Ultrasound region (docs/architecture.md, "Ultrasound region"): the scanner's own record
(SequenceOfUltrasoundRegions) when it is usable, else the image finder; every region is checked
for plausibility and flagged, so that a wrong crop never passes silently.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi
from skimage import transform

from mskdx.errors import PreprocessError

log = logging.getLogger(__name__)

#: the image finder works on BLOCK x BLOCK pixel blocks (their mean and speckle spread)
BLOCK = 8
#: kept for callers of the earlier finder: boxes are multiples of the block size
SEGMENT_FACTOR = BLOCK
#: a block is textured (speckle, not flat surround or bar) above this spread, in 1/255 of the
#: frame's bright level (99.5th percentile)
TEXTURE_LEVEL = 1.5
#: ... and at most this coefficient of variation: speckle spreads around its mean (CV 0.2-0.8 on
#: real captures), burned-in text is a few bright strokes on black (CV mostly above 1.2)
MAX_CV = 1.0

REGION_MODES = ("auto", "record", "image")
MULTI_REGION = ("largest", "each", "first")
SMALL_CAPTURE = ("refuse", "fit")
FLAG_POLICIES = ("stop", "skip", "keep")

#: plausibility limits of a region (see `region_flags`)
MIN_SHARE = 0.03  # region area / frame area
ASPECT_RANGE = (0.4, 6.0)  # width / height
MIN_TEXTURED = 0.2  # share of textured blocks inside the region
MIN_INSIDE_RECORD = 0.5  # share of the image finder's box inside the record's box

# DICOM PS3.3 C.8.5.5.1: RegionSpatialFormat 1 = 2D, RegionDataType 1 = tissue
SPATIAL_2D = 1
DATA_TISSUE = 1


@dataclass(frozen=True)
class Box:
    """A box in pixel coordinates of the source frame: [x0, x1) x [y0, y1)."""

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

    @property
    def area(self) -> int:
        return max(0, self.width) * max(0, self.height)

    def intersection(self, other: Box) -> int:
        w = min(self.x1, other.x1) - max(self.x0, other.x0)
        h = min(self.y1, other.y1) - max(self.y0, other.y0)
        return max(0, w) * max(0, h)

    def iou(self, other: Box) -> float:
        inter = self.intersection(other)
        union = self.area + other.area - inter
        return inter / union if union else 0.0


@dataclass(frozen=True)
class RegionRecord:
    """One item of the scanner's SequenceOfUltrasoundRegions (0018,6011).

    x1/y1 are RegionLocationMaxX1/MaxY1 as written: inclusive pixel coordinates.
    """

    spatial_format: int | None
    data_type: int | None
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def box(self) -> Box:
        return Box(self.x0, self.y0, self.x1 + 1, self.y1 + 1)


@dataclass(frozen=True)
class Region:
    """The tissue region of one frame (or of one view of a dual view) and how it was found.

    method: "record" (the scanner's region, tightened to the speckled field inside it) or "image"
    (the image finder). iou: agreement of the image finder with the record where both exist.
    flags: plausibility flags (`region_flags`); note: why a record was not used, if one existed.
    """

    box: Box
    method: str
    iou: float | None
    flags: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True)
class Crop:
    """A cropped (and scaled) uint8 image, its box in the source frame and its region."""

    image: NDArray[np.uint8]
    box: Box
    region: Region
    fitted: bool = False


# --------------------------------------------------------------------------------------------
# The scanner's region record
# --------------------------------------------------------------------------------------------


def record_regions(records: list[RegionRecord], shape: tuple[int, int]) -> tuple[list[Box], str]:
    """The usable 2D tissue regions of a record, in its order, or ([], why none is usable).

    Usable: spatial format 2D and data type tissue (colour flow, Doppler, grey bars and text
    areas are not), inside the frame and at least 16 x 16 pixels. Any tissue region outside
    the frame makes the whole record unusable: it was not written for these pixels (a resized
    or cropped copy whose record was not updated).
    """
    if not records:
        return [], "no SequenceOfUltrasoundRegions"
    rows, cols = shape
    tissue = [r for r in records if r.spatial_format == SPATIAL_2D and r.data_type == DATA_TISSUE]
    if not tissue:
        return [], f"none of its {len(records)} regions is a 2D tissue region"
    boxes = []
    for r in tissue:
        # scanners often write MaxX1/MaxY1 one past the last pixel: one pixel is tolerated
        if r.x0 < 0 or r.y0 < 0 or r.x1 > cols or r.y1 > rows:
            return [], (
                f"its tissue region ({r.x0},{r.y0})-({r.x1},{r.y1}) lies outside the "
                f"{cols}x{rows} frame (stale record of a resized or cropped image)"
            )
        if r.x1 - r.x0 < 16 or r.y1 - r.y0 < 16:
            return [], f"its tissue region ({r.x0},{r.y0})-({r.x1},{r.y1}) is degenerate"
        box = r.box
        boxes.append(Box(box.x0, box.y0, min(box.x1, cols), min(box.y1, rows)))
    return boxes, ""


# --------------------------------------------------------------------------------------------
# The image finder
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Texture:
    """Block statistics of a frame: mean and spread per BLOCK x BLOCK block, in 0..255."""

    mean: NDArray[np.float32]
    spread: NDArray[np.float32]
    shape: tuple[int, int]

    @property
    def textured(self) -> NDArray[np.bool_]:
        return (self.spread > TEXTURE_LEVEL) & (self.spread <= MAX_CV * self.mean)


def _texture(frame: NDArray, source: str) -> _Texture:
    rows, cols = (s // BLOCK * BLOCK for s in frame.shape)
    if rows < 4 * BLOCK or cols < 4 * BLOCK:
        raise PreprocessError(f"{source}: image of {frame.shape[1]}x{frame.shape[0]} is too small")
    view = np.asarray(frame[:rows, :cols], dtype=np.float32)
    if not np.isfinite(view).all():
        raise PreprocessError(f"{source}: image has non-finite pixels")
    mean = _block_mean(view)
    square = _block_mean(np.square(view))
    bright = float(np.percentile(mean, 99.5))
    low = float(mean.min())
    if bright - low < 1e-6:
        raise PreprocessError(f"{source}: image is blank (constant intensity); no B-mode region")
    gain = 255.0 / (bright - low)
    spread = np.sqrt(np.maximum(square - np.square(mean), 0.0)) * gain
    return _Texture(
        ((mean - low) * gain).astype(np.float32), spread.astype(np.float32), frame.shape[:2]
    )


def _block_mean(view: NDArray[np.float32]) -> NDArray[np.float32]:
    """Mean of each BLOCK x BLOCK block (rows summed first: contiguous adds, the fast order)."""
    rows, cols = view.shape
    summed = view.reshape(rows // BLOCK, BLOCK, cols).sum(axis=1)
    return summed.reshape(rows // BLOCK, cols // BLOCK, BLOCK).sum(axis=2) / (BLOCK * BLOCK)


def _field_mask(tex: _Texture, within: Box | None = None) -> NDArray[np.bool_]:
    """Blocks of the speckled field: textured, joined, without thin text, bars and rulers."""
    mask = tex.textured & ~_bars(tex)
    if within is None:
        return _join_and_open(mask)
    # the same as zeroing the mask outside `within`, on a window 4 blocks wider (the reach of
    # the closing and opening): faster than the whole frame
    rows, cols = _block_slices(within)
    keep = np.zeros_like(mask)
    keep[rows, cols] = True
    pad_r = slice(max(rows.start - 4, 0), rows.stop + 4)
    pad_c = slice(max(cols.start - 4, 0), cols.stop + 4)
    out = np.zeros_like(mask)
    out[pad_r, pad_c] = _join_and_open(mask[pad_r, pad_c] & keep[pad_r, pad_c])
    return out


def _join_and_open(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    # speckle holes and dim patches join; thin strokes (text, ticks, rulers) then open away
    mask = ndi.binary_closing(mask, _DISK1, border_value=0)
    mask = ndi.binary_opening(mask, _DISK3)
    return ndi.binary_fill_holes(mask)


def _bars(tex: _Texture) -> NDArray[np.bool_]:
    """Header and footer bars (and side panels): block rows (columns) that are mostly flat grey.

    A bar is uniform, not black and spans the frame; the text written on it is textured but
    belongs to the bar. Rows and columns of such blocks are excluded.
    """
    flat = ~tex.textured & (tex.mean > 8.0)
    rows = flat.mean(axis=1) >= 0.5
    cols = flat.mean(axis=0) >= 0.5
    return rows[:, None] | cols[None, :]


def _block_slices(box: Box) -> tuple[slice, slice]:
    return (
        slice(-(-box.y0 // BLOCK), box.y1 // BLOCK),
        slice(-(-box.x0 // BLOCK), box.x1 // BLOCK),
    )


_DISK1 = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)
_DISK3 = np.hypot(*np.mgrid[-3:4, -3:4]) <= 3.0


def _pick_views(tex: _Texture, mask: NDArray[np.bool_]) -> list[Box]:
    """The speckled field(s) among the mask's components, as boxes in frame pixels, left to right.

    Components are scored by their textured area (textured blocks before the closing): a text
    panel closed into a blob has few, a uniform bar none. The best component is a view; a large
    component (at least half the best's score) beside it, in other columns and the same rows (both
    at least 80% of the taller one's height), is a view of its own (dual or quad views separated by
    a gap; views that touch stay one component). Other large components (at least a quarter of the
    best's score) are joined: to the view whose columns they share (the field split by an anechoic
    band or shadow), else to the best view if they lie in its rows.
    """
    labels, n = ndi.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return []
    textured = tex.textured
    score = ndi.sum_labels(textured, labels, index=np.arange(1, n + 1))
    best = int(np.argmax(score))
    if score[best] < 24:  # fewer than 24 blocks (about 40 x 40 px at BLOCK 8): no field
        return []
    slices = ndi.find_objects(labels)
    views: dict[int, list[int]] = {best: [best]}
    for k in np.argsort(score)[::-1]:
        k = int(k)
        if k == best or score[k] < 0.25 * score[best]:
            continue
        rk, ck = slices[k]
        if score[k] >= 0.5 * score[best] and all(
            _overlap(ck, slices[v][1]) <= 0
            and _overlap(rk, slices[v][0])
            >= 0.8 * max(rk.stop - rk.start, slices[v][0].stop - slices[v][0].start)
            for v in views
        ):
            views[k] = [k]
            continue
        stacked = [v for v in views if _overlap(ck, slices[v][1]) >= 0.8 * (ck.stop - ck.start)]
        if stacked:
            views[stacked[0]].append(k)
        elif _overlap(rk, slices[best][0]) >= 0.8 * (rk.stop - rk.start):
            views[best].append(k)
    boxes = [_view_box(tex, np.isin(labels, [k + 1 for k in parts])) for parts in views.values()]
    return sorted(boxes, key=lambda b: b.x0)


def _overlap(a: slice, b: slice) -> int:
    return min(a.stop, b.stop) - max(a.start, b.start)


def _view_box(tex: _Texture, part: NDArray[np.bool_]) -> Box:
    # a bar or text block that the closing joined to the field is separated from it by a
    # column (row) without any textured block: keep the run of columns (rows) with most texture
    raw = tex.textured & part
    part = part & _main_run(raw.sum(axis=0))[None, :]
    part &= _main_run(raw.sum(axis=1))[:, None]
    r0, r1 = _trim(part.sum(axis=1), 0.05)
    c0, c1 = _trim(part.sum(axis=0), 0.03)
    rows_px, cols_px = tex.shape
    return Box(c0 * BLOCK, r0 * BLOCK, min(c1 * BLOCK, cols_px), min(r1 * BLOCK, rows_px))


def _largest(boxes: list[Box]) -> Box:
    """The largest box; of boxes within 5% of the largest area the first (views of a dual
    view are the same size, give or take the finder's few blocks: the left one, consistently)."""
    most = max(b.area for b in boxes)
    return next(b for b in boxes if b.area >= 0.95 * most)


def _main_run(count: NDArray) -> NDArray[np.bool_]:
    """The run of consecutive non-zero entries of `count` with the largest sum, as a mask."""
    runs, n = ndi.label(count > 0)
    if n <= 1:
        return count > 0 if n else np.ones(count.shape, bool)
    sums = ndi.sum_labels(count, runs, index=np.arange(1, n + 1))
    return runs == 1 + int(np.argmax(sums))


def find_bmode_region(frame: NDArray, source: str = "") -> Box:
    """Find the B-mode (tissue) field of an ultrasound screen capture by image analysis.

    The paper's thresholding + morphology, on texture rather than brightness: the frame is cut
    into BLOCK x BLOCK blocks and a block is tissue-like when its pixels spread (speckle) above a
    low threshold; a closing joins speckle, dim and anechoic patches, an opening (disk of 3
    blocks) removes burned-in text, ruler ticks, colour and grey bars and thin lines; uniform
    header and footer bars have no spread at all. Of the remaining components the one with the
    most textured blocks is the field (`_pick_views`). Linear, curvilinear and sector fields,
    dim images and large anechoic areas are found alike. Returns its bounding box (of a dual
    view with a gap between the views: the largest view, of equal ones the left).
    """
    return _largest(find_bmode_views(frame, source))


def find_bmode_views(frame: NDArray, source: str = "") -> list[Box]:
    """The B-mode field(s) found by image analysis, left to right (one, or one per view)."""
    tex = _texture(frame, source)
    views = _found_views(tex)
    if not views:
        raise PreprocessError(
            f"{source}: no B-mode region found (no speckled field of at least 2% of the image)"
        )
    return views


def _found_views(tex: _Texture, within: Box | None = None) -> list[Box]:
    """`_pick_views` of the frame (or inside `within`), without views under 2% of the frame."""
    least = 0.02 * tex.shape[0] * tex.shape[1]
    return [b for b in _pick_views(tex, _field_mask(tex, within)) if b.area >= least]


# --------------------------------------------------------------------------------------------
# Region choice and plausibility
# --------------------------------------------------------------------------------------------


def region_flags(tex: _Texture, box: Box, finder: Box | None, record: Box | None) -> list[str]:
    """Plausibility flags of a region (empty when plausible).

    small_region: it covers less than MIN_SHARE of the frame; extreme_aspect: width/height
    outside ASPECT_RANGE; uniform: fewer than MIN_TEXTURED of its blocks have speckle;
    record_mismatch: the image finder's field lies mostly (more than half) outside the record.
    """
    rows, cols = tex.shape
    flags = []
    if box.area < MIN_SHARE * rows * cols:
        flags.append("small_region")
    aspect = box.width / max(box.height, 1)
    if not ASPECT_RANGE[0] <= aspect <= ASPECT_RANGE[1]:
        flags.append("extreme_aspect")
    inside = tex.textured[_block_slices(box)]
    if inside.size == 0 or inside.mean() < MIN_TEXTURED:
        flags.append("uniform")
    if finder is not None and record is not None:
        if finder.intersection(record) < MIN_INSIDE_RECORD * finder.area:
            flags.append("record_mismatch")
    return flags


def find_regions(
    frame: NDArray,
    records: list[RegionRecord] | None = None,
    *,
    mode: str = "auto",
    multi: str = "largest",
    source: str = "",
) -> list[Region]:
    """The tissue region(s) of one frame: from the record, the image finder or both.

    mode: "auto" = the record when usable, else the image finder; "record" = the record only
    (an unusable or missing record is an error); "image" = the image finder only (the record,
    if usable, is still compared). A record region is tightened to the speckled field inside it
    (the scanner's region often holds its own overlay text); where none is found there, the
    record's box is used as written. multi (several 2D tissue regions of the record, or views the
    image finder found side by side with a gap between them: dual or quad views): the "largest"
    one, "each" as separate images, or the "first" as listed (the finder's: from the left).
    """
    if mode not in REGION_MODES or multi not in MULTI_REGION:
        raise PreprocessError(f"{source}: region mode {mode!r} / multi-region {multi!r} unknown")
    tex = _texture(frame, source)
    boxes, why = record_regions(records or [], tex.shape)
    if mode == "record" and not boxes:
        raise PreprocessError(f"{source}: preprocess.region is 'record' but {why}")
    views = _found_views(tex)
    finder = _union(views) if views else None
    record_box = _union(boxes) if boxes else None
    iou = round(finder.iou(record_box), 3) if finder and record_box else None
    if mode == "image" or not boxes:
        if finder is None:
            raise PreprocessError(
                f"{source}: no B-mode region found (no speckled field of at least 2% of the "
                "image" + (f"; region record not used: {why})" if records else ")")
            )
        note = why if records else ""
        return [
            Region(box, "image", iou, tuple(region_flags(tex, box, finder, record_box)), note)
            for box in _choose(views, multi)
        ]
    regions = []
    for rec in _choose(boxes, multi):
        inner = _found_views(tex, within=rec)
        box = _largest(inner) if inner else rec
        flags = region_flags(tex, box, finder, record_box)
        regions.append(Region(box, "record", iou, tuple(flags)))
    return regions


def _choose(views: list[Box], multi: str) -> list[Box]:
    """The views a multi_region policy keeps: the largest, the first, or each."""
    if multi == "largest":
        return [_largest(views)]
    return views[:1] if multi == "first" else views


def _union(boxes: list[Box]) -> Box:
    return Box(
        min(b.x0 for b in boxes),
        min(b.y0 for b in boxes),
        max(b.x1 for b in boxes),
        max(b.y1 for b in boxes),
    )


# --------------------------------------------------------------------------------------------
# Crops
# --------------------------------------------------------------------------------------------


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


def fit_box(region: Box, frame_shape: tuple[int, int], width: int, height: int) -> Box:
    """A box of the crop's aspect (width:height) around the region, inside a smaller frame.

    For captures smaller than the crop (policy small_capture: fit): the box spans the region's
    width (or the height-matched width, whichever is larger) up to the frame's width, starts at
    the region's top like `crop_box`, and is later resized to width x height.
    """
    rows, cols = frame_shape
    w = min(cols, max(region.width, round(region.height * width / height)))
    h = round(w * height / width)
    if h > rows:
        h = rows
        w = min(cols, round(h * width / height))
    cx = (region.x0 + region.x1) // 2
    x0 = int(np.clip(cx - w // 2, 0, cols - w))
    y0 = int(np.clip(region.y0, 0, rows - h))
    return Box(x0, y0, x0 + w, y0 + h)


def crop_regions(
    frame: NDArray,
    *,
    width: int,
    height: int,
    scale: float = 1.0,
    records: list[RegionRecord] | None = None,
    region: str = "auto",
    multi: str = "largest",
    small_capture: str = "refuse",
    source: str = "",
) -> list[Crop]:
    """Find the region(s) of one frame and crop each (see `find_regions`, `crop_box`).

    A frame smaller than width x height is refused (small_capture "refuse") or cropped with
    `fit_box` and resized to width x height ("fit").
    """
    if small_capture not in SMALL_CAPTURE:
        raise PreprocessError(f"{source}: small_capture {small_capture!r} unknown")
    small = frame.shape[1] < width or frame.shape[0] < height
    if small and small_capture == "refuse":
        _check_size(frame.shape, width, height, source)
    out = []
    for found in find_regions(frame, records, mode=region, multi=multi, source=source):
        if small:
            box = fit_box(found.box, frame.shape[:2], width, height)
        else:
            box = crop_box(found.box, frame.shape[:2], width, height, source)
        crop = frame[box.y0 : box.y1, box.x0 : box.x1]
        image = to_uint8(resize(crop, scale_shape(width, height, scale)))
        out.append(Crop(image, box, found, fitted=small))
    return out


def crop_ultrasound(
    frame: NDArray, *, width: int, height: int, scale: float = 1.0, source: str = ""
) -> tuple[NDArray[np.uint8], Box]:
    """Crop the width x height box of the image finder's region, resized by `scale` (uint8)."""
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
