"""Ultrasound B-mode crop and MRI resize on constructed frames (the synthetic cohort is tested in
test_extract.py)."""

import numpy as np
import pytest

from mskdx.errors import PreprocessError
from mskdx.ingest.preprocess import (
    Box,
    RegionRecord,
    crop_box,
    crop_mask,
    crop_regions,
    crop_ultrasound,
    find_bmode_region,
    find_regions,
    fit_box,
    record_regions,
    resize_mri,
)


def screen_capture(rng, region=(150, 100, 950, 560), shape=(768, 1024)):
    """Black screen, speckled B-mode region, burned-in text, a ruler and a grey bar around it."""
    frame = np.zeros(shape, np.float32)
    x0, y0, x1, y1 = region
    frame[y0:y1, x0:x1] = rng.rayleigh(40, size=(y1 - y0, x1 - x0))
    frame[y0 + 200 : y0 + 260, x0:x1] *= 0.1  # anechoic band inside the region
    for k in range(12):  # text glyphs along the top
        frame[20:34, 30 + 40 * k : 30 + 40 * k + 4] = 255
        frame[20:22, 30 + 40 * k : 30 + 40 * k + 12] = 255
    frame[y0:y1:20, x1 + 15 : x1 + 25] = 230  # ruler ticks
    frame[600:740, 980:1000] = np.linspace(0, 255, 140)[:, None]  # grey bar
    return frame


def test_region_found_despite_text_ruler_and_bar():
    rng = np.random.default_rng(0)
    box = find_bmode_region(screen_capture(rng), "f.dcm")
    assert abs(box.x0 - 150) <= 8 and abs(box.x1 - 950) <= 8
    assert abs(box.y0 - 100) <= 8 and abs(box.y1 - 560) <= 8


def test_crop_is_700x320_at_the_top_of_the_region_and_scaled():
    rng = np.random.default_rng(1)
    frame = screen_capture(rng)
    crop, box = crop_ultrasound(frame, width=700, height=320, scale=0.5, source="f.dcm")
    assert crop.dtype == np.uint8 and crop.shape == (160, 350)
    assert box.width == 700 and box.height == 320
    assert abs(box.y0 - 100) <= 8 and abs((box.x0 + box.x1) / 2 - 550) <= 8


def test_crop_is_shifted_not_shrunk_at_the_border():
    box = crop_box(Box(0, 500, 300, 760), (768, 1024), 700, 320)
    assert (box.x0, box.y0, box.width, box.height) == (0, 448, 700, 320)


def test_mask_follows_the_crop():
    mask = np.zeros((768, 1024), np.uint8)
    mask[200:210, 400:410] = 1
    cropped = crop_mask(mask, Box(300, 100, 1000, 420), 700, 320, 0.25)
    ys, xs = np.nonzero(cropped)
    assert cropped.shape == (80, 175)
    assert abs(ys.min() - 25) <= 1 and abs(xs.min() - 25) <= 1


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros((768, 1024)), "blank"),
        (np.full((300, 600), 80.0), "smaller than the 700x320 crop"),
    ],
)
def test_bad_images_are_refused_with_the_file_named(frame, message):
    with pytest.raises(PreprocessError, match=message) as err:
        crop_ultrasound(frame, width=700, height=320, source="bad.dcm")
    assert "bad.dcm" in str(err.value)


def test_no_region_when_only_text_is_bright():
    frame = np.zeros((768, 1024), np.float32)
    frame[20:30, 20:200] = 255
    with pytest.raises(PreprocessError, match="no B-mode region"):
        find_bmode_region(frame, "text.dcm")


def test_mri_resize_windows_and_resizes():
    rng = np.random.default_rng(2)
    frame = rng.normal(1000, 200, size=(256, 256)).astype(np.float32)
    out = resize_mri(frame, 224)
    assert out.shape == (224, 224) and out.dtype == np.uint8
    assert out.min() <= 5 and out.max() >= 250
    with pytest.raises(PreprocessError, match="blank"):
        resize_mri(np.ones((64, 64)), 32, "flat.dcm")


# -- region: record, image finder, flags -------------------------------------------------------


def speckle(rng, shape, level=60.0):
    return rng.rayleigh(level, size=shape).astype(np.float32)


def fan(shape, apex, half_angle_deg, r0, r1):
    """Mask of a sector (r0 = 0) or curvilinear (r0 > 0) field with its apex at `apex` (x, y)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    dx, dy = xx - apex[0], yy - apex[1]
    r = np.hypot(dx, dy)
    angle = np.degrees(np.arctan2(np.abs(dx), dy))
    return (r >= r0) & (r <= r1) & (angle <= half_angle_deg) & (dy > 0)


def with_header_bar(frame):
    frame[:60] = 90.0  # flat grey header bar across the frame, with text written on it
    for k in range(20):
        frame[20:40, 20 + 45 * k : 24 + 45 * k] = 255
        frame[20:23, 20 + 45 * k : 34 + 45 * k] = 255
    return frame


def test_header_bar_with_text_is_not_the_field():
    """The Philips OB failure: a small bright field below a wide grey header bar with text."""
    rng = np.random.default_rng(3)
    frame = with_header_bar(np.zeros((600, 800), np.float32))
    field = fan((600, 800), (460, -400), 20, 500, 580)  # top of a curvilinear fan
    frame[field] = speckle(rng, (600, 800))[field]
    ys, xs = np.nonzero(field)
    box = find_bmode_region(frame, "ob.dcm")
    assert box.y0 >= 56 and box.y0 <= ys.min() + 16  # the thin tips of the arc may be trimmed
    assert field[box.y0 : box.y1, box.x0 : box.x1].sum() >= 0.95 * field.sum()


@pytest.mark.parametrize("kind", ["sector", "curvilinear"])
def test_fan_fields_are_found_whole(kind):
    rng = np.random.default_rng(4)
    shape = (768, 1024)
    mask = (
        fan(shape, (512, 150), 40, 0, 520)
        if kind == "sector"
        else fan(shape, (512, -250), 30, 330, 800)
    )
    frame = np.where(mask, speckle(rng, shape, 25), 0).astype(np.float32)
    frame[mask & (np.arange(shape[0])[:, None] > 500)] *= 0.15  # dim far field
    frame[20:34, 20:300:6] = 255  # text
    frame[100:400, 980:992] = np.linspace(0, 255, 300)[:, None]  # grey bar
    ys, xs = np.nonzero(mask)
    box = find_bmode_region(frame, kind)
    inter = Box(xs.min(), ys.min(), xs.max() + 1, ys.max() + 1).intersection(box)
    assert inter >= 0.85 * (np.ptp(xs) + 1) * (np.ptp(ys) + 1)
    assert box.x1 <= 980 and box.y0 >= 40


def test_dim_field_with_a_large_anechoic_area():
    rng = np.random.default_rng(5)
    frame = np.zeros((768, 1024), np.float32)
    frame[100:600, 100:900] = speckle(rng, (500, 800), 6)  # dim
    frame[150:450, 250:750] *= 0.02  # fluid: nearly black, most of the field's middle
    frame[700:720, 400:640] = 250  # footer text
    box = find_bmode_region(frame)
    assert abs(box.x0 - 100) <= 8 and abs(box.x1 - 900) <= 8
    assert abs(box.y0 - 100) <= 8 and abs(box.y1 - 600) <= 8


def test_record_used_when_plausible_and_stale_record_ignored_with_its_reason():
    rng = np.random.default_rng(6)
    frame = screen_capture(rng)
    tissue = RegionRecord(1, 1, 150, 100, 949, 559)
    doppler = RegionRecord(3, 3, 0, 600, 1023, 767)  # spectral Doppler strip: not tissue
    (region,) = find_regions(frame, [doppler, tissue])
    assert region.method == "record" and region.iou > 0.9 and region.flags == ()
    assert abs(region.box.x0 - 150) <= 8 and abs(region.box.y1 - 560) <= 8
    assert record_regions([RegionRecord(1, 1, 0, 0, 1024, 768)], (768, 1024))[0]  # one past
    stale = RegionRecord(1, 1, 300, 200, 1900, 1400)  # written for a larger screen
    (region,) = find_regions(frame, [stale])
    assert region.method == "image" and "outside the 1024x768 frame" in region.note
    with pytest.raises(PreprocessError, match="'record' but its tissue region"):
        find_regions(frame, [stale], mode="record", source="f.dcm")
    with pytest.raises(PreprocessError, match="no SequenceOfUltrasoundRegions"):
        find_regions(frame, [], mode="record")
    assert record_regions([doppler], (768, 1024)) == (
        [],
        "none of its 1 regions is a 2D tissue region",
    )


def test_implausible_regions_are_flagged():
    rng = np.random.default_rng(7)
    frame = screen_capture(rng)
    # a record pointing at the black surround: the finder's field lies outside it
    (wrong,) = find_regions(frame, [RegionRecord(1, 1, 0, 580, 1023, 767)])
    assert {"uniform", "record_mismatch"} <= set(wrong.flags)
    assert wrong.iou == 0.0
    small = np.zeros((768, 1024), np.float32)
    small[304:416, 400:600] = speckle(rng, (112, 200))  # 2.8% of the frame
    (tiny,) = find_regions(small)
    assert "small_region" in tiny.flags
    strip = np.zeros((768, 1024), np.float32)
    strip[300:360, 20:1000] = speckle(rng, (60, 980))
    assert "extreme_aspect" in find_regions(strip)[0].flags


def test_small_capture_fit_keeps_the_paper_aspect():
    rng = np.random.default_rng(8)
    frame = np.zeros((480, 640), np.float32)
    frame[60:420, 40:600] = speckle(rng, (360, 560))
    (crop,) = crop_regions(frame, width=700, height=320, scale=0.5, small_capture="fit")
    assert crop.fitted and crop.image.shape == (160, 350)
    assert crop.box.width == 640 and abs(crop.box.height - 640 * 320 / 700) <= 1
    assert crop.box.y0 == 56 or abs(crop.box.y0 - 60) <= 8
    assert fit_box(Box(0, 0, 100, 400), (480, 640), 700, 320).width == 640  # tall: widened
    with pytest.raises(PreprocessError, match="smaller than the 700x320 crop"):
        crop_regions(frame, width=700, height=320, small_capture="refuse", source="s.dcm")


def test_views_side_by_side_are_found_as_views_without_a_record():
    """A dual view (two speckled fields with a black gap, no record): the finder finds each view,
    and the multi-region policy applies as it does to a record's regions."""
    rng = np.random.default_rng(7)
    frame = np.zeros((600, 1600), np.float32)
    frame[100:500, 60:760] = rng.rayleigh(40, size=(400, 700))
    frame[100:500, 840:1540] = rng.rayleigh(40, size=(400, 700))
    frame[20:34, 30:400] = 255  # a text line across the top
    left, right = Box(60, 100, 760, 500), Box(840, 100, 1540, 500)
    each = find_regions(frame, None, multi="each", source="dual.dcm")
    assert [r.method for r in each] == ["image", "image"]
    for region, view in zip(each, (left, right), strict=True):
        assert region.box.iou(view) > 0.95 and region.flags == ()
    (largest,) = find_regions(frame, None, multi="largest", source="dual.dcm")
    assert largest.box == each[0].box  # equal views: the left one
    assert find_bmode_region(frame) == each[0].box
    (first,) = find_regions(frame, None, multi="first", source="dual.dcm")
    assert first.box == each[0].box
    # a smaller right view: "largest" is the larger one whichever side it is on
    frame[100:300, 60:760] = 0
    (largest,) = find_regions(frame, None, multi="largest", source="dual.dcm")
    assert largest.box.iou(right) > 0.95
    # one field split by an anechoic band across it stays one region
    band = np.zeros((600, 900), np.float32)
    band[100:500, 100:800] = rng.rayleigh(40, size=(400, 700))
    band[256:320, 100:800] *= 0.1  # anechoic: dark, still a little speckle
    (whole,) = find_regions(band, None, multi="each")
    assert whole.box.iou(Box(100, 100, 800, 500)) > 0.95
