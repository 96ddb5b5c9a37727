"""Ultrasound B-mode crop and MRI resize on constructed frames (the synthetic cohort is tested in
test_extract.py)."""

import numpy as np
import pytest

from mskdx.errors import PreprocessError
from mskdx.preprocess import (
    Box,
    crop_box,
    crop_mask,
    crop_ultrasound,
    find_bmode_region,
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
