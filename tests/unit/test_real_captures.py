"""Real scanner files that nobody here made: pydicom-data's and pydicom's ultrasound captures and
MR files (the dev extra installs pydicom-data).

The expected boxes were labelled by hand from the images (rendered to PNG and looked at, then
compared with each file's region record), in pixels of the frame, [x0, x1) x [y0, y1): `field`
is the tissue (B-mode) field, `outside` the header/footer bars, text panels, grey bars and other
overlays that a region must stay out of. Every capture is tested with its region record and with
the record removed.
"""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pandas as pd
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut

from mskdx.ingest import dicom, us_regions
from mskdx.ingest.extract import StudySpec, extract_study
from mskdx.ingest.preprocess import Box, crop_regions, find_regions, record_regions, resize_mri

pydicom_data = pytest.importorskip("pydicom.data")


def real(name: str) -> str:
    path = pydicom_data.get_testdata_file(name)
    if path is None:
        pytest.skip(f"{name} not installed (pip install pydicom-data)")
    return path


# name: (field, [outside...], how the record is expected to be used)
CAPTURES = {
    # GE linear, lymph node with power Doppler boxes; no region record
    "US1_UNCR.dcm": (
        Box(14, 108, 626, 338),
        [
            Box(15, 25, 175, 100),
            Box(495, 25, 625, 100),
            Box(248, 360, 360, 378),
            Box(78, 440, 252, 458),
            Box(400, 455, 620, 475),
        ],
        "none",
    ),
    # Philips curvilinear OB: the echo is the top of the fan, the rest anechoic fluid; record's
    # MaxX1 = 800 on an 800-wide frame (one past the last pixel: tolerated)
    "OBXXXX1A.dcm": (
        Box(330, 65, 595, 158),
        [Box(0, 0, 800, 60), Box(0, 65, 110, 260), Box(778, 85, 792, 215), Box(125, 85, 305, 103)],
        "record",
    ),
    # Philips sector (echo): text panels, greyscale bar, ECG trace
    "JPGLosslessP14SV1_1s_1f_8b.dcm": (
        Box(140, 165, 905, 655),
        [
            Box(0, 20, 340, 115),
            Box(0, 140, 80, 245),
            Box(825, 20, 985, 50),
            Box(960, 120, 990, 330),
            Box(60, 700, 380, 750),
            Box(925, 728, 995, 750),
        ],
        "record",
    ),
    # SonoSite sector, 120-frame cine, footer button bar
    "color3d_jpeg_baseline.dcm": (
        Box(85, 45, 600, 405),
        [Box(0, 0, 80, 60), Box(590, 25, 640, 420), Box(75, 452, 565, 480)],
        "record",
    ),
    # Aloka dual view: two 2D tissue regions side by side, a grey bar region, header and footer
    "gdcm-US-ALOKA-16.dcm": (
        Box(32, 28, 632, 415),
        [Box(0, 0, 640, 22), Box(0, 425, 640, 480)],
        "record",
    ),
    # pydicom's copies: OBXXXX1A cropped to 350 rows and color3d resized to 320x240, their
    # region records left as they were (out of the frame: stale)
    "examples_palette.dcm": (
        Box(330, 65, 595, 158),
        [Box(0, 0, 800, 60), Box(0, 65, 110, 260), Box(778, 85, 792, 215)],
        "stale",
    ),
    "examples_ybr_color.dcm": (
        Box(60, 25, 235, 200),  # frame 0: the lateral fan is near black at this size
        [Box(0, 0, 40, 30), Box(295, 12, 320, 210), Box(38, 226, 283, 240)],
        "stale",
    ),
}


def covered(box: Box, field: Box) -> float:
    return box.intersection(field) / field.area


def check_region(box: Box, field: Box, outside: list[Box], what: str) -> None:
    assert covered(box, field) >= 0.85, f"{what}: {box} covers {covered(box, field):.0%} of {field}"
    for bar in outside:
        share = box.intersection(bar) / bar.area
        assert share <= 0.05, f"{what}: {box} takes {share:.0%} of overlay {bar}"


@pytest.mark.parametrize("name", sorted(CAPTURES))
@pytest.mark.parametrize("with_record", [True, False])
def test_region_covers_the_field_and_stays_out_of_bars_and_text(name, with_record, tmp_path):
    field, outside, use = CAPTURES[name]
    path = real(name)
    if not with_record:  # delete the tag, as an export without it would
        ds = pydicom.dcmread(path)
        if "SequenceOfUltrasoundRegions" in ds:
            del ds.SequenceOfUltrasoundRegions
        path = tmp_path / name
        ds.save_as(path)
    frame = dicom.read_frames(path)[0]
    records = us_regions.read_ultrasound_regions(path)
    regions = find_regions(frame, records, multi="largest", source=name)
    assert len(regions) == 1
    region = regions[0]
    if with_record and use == "record":
        assert region.method == "record" and region.iou is not None and not region.note
    else:
        assert region.method == "image" and region.iou is None
        assert ("outside the" in region.note) == (with_record and use == "stale")
    if name == "gdcm-US-ALOKA-16.dcm" and region.method == "record":
        field = Box(32, 28, 336, 415)  # largest view: the left one (the record lists it first)
    check_region(region.box, field, outside, f"{name} ({region.method})")
    assert region.flags == ()


def test_dual_view_each_gives_both_views_and_first_the_left():
    path = real("gdcm-US-ALOKA-16.dcm")
    frame = dicom.read_frames(path)[0]
    records = us_regions.read_ultrasound_regions(path)
    assert [(r.spatial_format, r.data_type) for r in records] == [(1, 1), (1, 1), (0, 13)]
    each = find_regions(frame, records, multi="each")
    assert [r.method for r in each] == ["record", "record"]
    left, right = (r.box for r in each)
    check_region(left, Box(32, 28, 336, 415), [Box(0, 0, 640, 22)], "left view")
    check_region(right, Box(336, 28, 632, 415), [Box(0, 0, 640, 22)], "right view")
    assert left.x1 <= 340 and right.x0 >= 330
    assert find_regions(frame, records, multi="first")[0].box == left


def test_stale_record_is_refused_under_region_record():
    path = real("examples_ybr_color.dcm")
    frame = dicom.read_frames(path)[0]
    records = us_regions.read_ultrasound_regions(path)
    boxes, why = record_regions(records, frame.shape)
    assert boxes == [] and "outside the 320x240 frame" in why
    with pytest.raises(Exception, match="preprocess.region is 'record' but its tissue region"):
        find_regions(frame, records, mode="record", source="ybr.dcm")


def test_small_capture_fit_or_refuse():
    path = real("US1_UNCR.dcm")  # 640x480, smaller than the paper's 700x320 crop
    frame = dicom.read_frames(path)[0]
    (crop,) = crop_regions(frame, width=700, height=320, small_capture="fit", source="us1")
    assert crop.fitted and crop.image.shape == (320, 700)
    box = crop.box
    assert abs(box.width / box.height - 700 / 320) < 0.02
    assert box.x0 <= crop.region.box.x0 and box.x1 >= crop.region.box.x1
    assert covered(box, Box(14, 108, 626, 338)) >= 0.9
    with pytest.raises(Exception, match="smaller than the 700x320 crop"):
        crop_regions(frame, width=700, height=320, small_capture="refuse", source="us1")


def test_real_capture_folder_end_to_end(tmp_path):
    """A folder of real captures (four patients) through extract_study, dual view as 'each'."""
    names = {
        "A/us1.dcm": "US1_UNCR.dcm",
        "B/ob.dcm": "OBXXXX1A.dcm",
        "C/cine.dcm": "color3d_jpeg_baseline.dcm",
        "D/dual.dcm": "gdcm-US-ALOKA-16.dcm",
    }
    root = tmp_path / "dicom"
    ids = []
    for rel, name in names.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(real(name), root / rel)
        ids.append(str(pydicom.dcmread(root / rel, stop_before_pixels=True).PatientID))
    with open(tmp_path / "labels.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["patient_id", "diagnosis"])
        writer.writerows([pid, "gout" if i % 2 else "control"] for i, pid in enumerate(ids))
    spec = StudySpec(
        study="gout",
        modalities=["US"],
        frames="first",
        preprocess={
            "kind": "ultrasound",
            "crop_width": 700,
            "crop_height": 320,
            "scale": 0.25,
            "region": "auto",
            "multi_region": "each",
            "small_capture": "fit",
            "on_flag": "stop",
        },
        labels={
            "patient_column": "patient_id",
            "label_column": "diagnosis",
            "positive": "gout",
            "negative": "control",
        },
    )
    out = tmp_path / "cache"
    table = extract_study(
        root,
        tmp_path / "labels.csv",
        spec=spec,
        masks_path=None,
        on_error="stop",
        key_env="MSKDX_TEST_KEY_UNSET",
        images=out / "images.npy",
        masks=out / "masks.npy",
        manifest=out / "manifest.csv",
        refused=out / "refused.csv",
    )
    assert len(table) == 5  # the dual view gives two images
    assert np.load(out / "images.npy").shape == (5, 80, 175)
    manifest = pd.read_csv(out / "manifest.csv")
    assert sorted(manifest.region_method) == ["image", "record", "record", "record", "record"]
    assert manifest.region_flags.isna().all()  # plausible: no flags
    assert manifest.image_id.is_unique and sorted(manifest.region) == [0, 0, 0, 0, 1]
    assert manifest.crop_fitted.sum() == 4  # the 640x480 captures (dual view: two images)
    text = (out / "manifest.csv").read_text()
    for pid in ids:
        assert pid not in text


# -- MR ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["MR2_UNCR.dcm", "MR2_UNCI.dcm", "MR2_J2KR.dcm", "MR2_J2KI.dcm"])
def test_real_mr_reads_windows_and_resizes(name):
    ds = pydicom.dcmread(real(name))
    frames = dicom.read_frames(real(name))
    assert frames.shape == (1, 1024, 1024)
    np.testing.assert_allclose(frames[0], apply_modality_lut(ds.pixel_array, ds), rtol=1e-6)
    if name.endswith("R.dcm"):  # lossless J2K: the same pixels as the uncompressed file
        np.testing.assert_array_equal(frames, dicom.read_frames(real("MR2_UNCR.dcm")))
    out = resize_mri(frames[0], 224, name)
    assert out.shape == (224, 224) and out.dtype == np.uint8
    assert out.min() == 0 and out.max() == 255 and 5 < out.mean() < 250  # windowed, not blank


def test_real_mr_with_overlays_and_multiframe():
    frames = dicom.read_frames(real("MR-SIEMENS-DICOM-WithOverlays.dcm"))
    ds = pydicom.dcmread(real("MR-SIEMENS-DICOM-WithOverlays.dcm"))
    assert frames.shape == (1, 484, 484)
    assert np.array_equal(frames[0], ds.pixel_array.astype(np.float32))  # overlays not burned in
    variants = [
        "emri_small.dcm",
        "emri_small_big_endian.dcm",
        "emri_small_RLE.dcm",
        "emri_small_jpeg_2k_lossless.dcm",
    ]
    stacks = [dicom.read_frames(real(v)) for v in variants]
    assert all(s.shape == (10, 64, 64) for s in stacks)
    assert all(np.array_equal(stacks[0], s) for s in stacks[1:])
    assert resize_mri(stacks[0][5], 224).shape == (224, 224)


def test_mr_small_padded_is_read_with_a_warning(caplog):
    path = real("MR_small_padded.dcm")
    with caplog.at_level("WARNING", logger="mskdx.ingest.pixels"):
        frames = dicom.read_frames(path)
    assert np.array_equal(frames[0], pydicom.dcmread(path).pixel_array.astype(np.float32))
    assert "128 bytes" in caplog.text and "trailing padding ignored" in caplog.text
