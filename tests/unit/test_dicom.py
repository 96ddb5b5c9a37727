"""mskdx.ingest.dicom and its checks (parse, sop, pixels, decode, refusals): every refusal category,
every decode feature, folder walking."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import struct
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_factory import (
    BASIC_TEXT_SR,
    COMPREHENSIVE_SR,
    CT_IMAGE,
    ECG_WAVEFORM,
    ENCAPSULATED_PDF,
    ENHANCED_MR,
    GRAYSCALE_PS,
    KEY_OBJECT_SELECTION,
    MEDIA_STORAGE_DIRECTORY,
    MR_IMAGE,
    PATIENT_ID,
    RAW_DATA,
    RT_DOSE,
    RT_PLAN,
    RT_STRUCT,
    SC_IMAGE,
    SEGMENTATION,
    US_MULTIFRAME,
    base_dataset,
    bundled,
    grey_image,
    image_dataset,
    luminance,
    rgb_image,
    write,
)
from pydicom import uid
from pydicom.data.data_manager import DATA_ROOT
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.pixels import convert_color_space, get_decoder

from mskdx.errors import DicomError
from mskdx.ingest.dicom import DicomHeader, file_sha256, read_frames, scan_file, walk_dicom
from mskdx.ingest.refusals import FILE_REASONS, Reason, Refusal
from mskdx.ingest.sop import classify

US = ["US", "SC", "OT"]


def refused(path, reason: str, *, fn=read_frames, match: str | None = None) -> DicomError:
    """Assert `fn(path)` raises DicomError with `reason`; the message starts with the path."""
    with pytest.raises(DicomError) as info:
        fn(path)
    err = info.value
    assert err.reason == reason, f"expected {reason}, got {err.reason}: {err}"
    assert str(err).startswith(f"{path}: "), str(err)
    if match is not None:
        assert match.lower() in str(err).lower(), str(err)
    return err


@pytest.fixture
def mono_file(tmp_path) -> tuple[Path, np.ndarray]:
    pixels = grey_image(16, 20, dtype=np.uint16)
    return write(image_dataset(pixels, bits_stored=12), tmp_path / "mono.dcm"), pixels


# --------------------------------------------------------------------------------------------
# refusal categories
# --------------------------------------------------------------------------------------------


def test_reason_values_are_the_documented_strings():
    assert {str(r) for r in FILE_REASONS} >= {
        "not_dicom",
        "empty_file",
        "truncated",
        "no_pixel_data",
        "undecodable",
        "unsupported_photometric",
        "pixel_length_mismatch",
        "not_an_image",
        "bad_header",
    }
    assert Reason.NOT_DICOM == "not_dicom" and f"{Reason.TRUNCATED}" == "truncated"


def test_empty_file(tmp_path):
    path = tmp_path / "empty.dcm"
    path.write_bytes(b"")
    refused(path, "empty_file", match="0 bytes")


@pytest.mark.parametrize(
    "name, content, kind",
    [
        ("notes.dcm", b"MRN1234567,gout\nnot an image at all, just text " * 10, "a text file"),
        ("image.dcm", b"\x89PNG\r\n\x1a\n" + b"\0\0\0\rIHDR" + bytes(200), "a PNG image"),
        ("archive.dcm", b"\x1f\x8b\x08\x08" + bytes(300), "a gzip archive"),
        ("Thumbs.db", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "Thumbs.db"),
        ("tiny.dcm", b"hi", "a text file"),
    ],
)
def test_not_dicom(tmp_path, name, content, kind):
    path = tmp_path / name
    path.write_bytes(content)
    err = refused(path, "not_dicom", match="not a DICOM file")
    assert kind in str(err)
    assert "MRN" not in str(err)  # the content is never quoted: it may be PHI
    refused(path, "not_dicom", fn=lambda p: scan_file(p, US))


def test_not_dicom_bundled_non_dicom_files():
    for name in ("README.txt", "crayons.icc", "zipMR.gz", "test1.json"):
        refused(bundled(name), "not_dicom")


def test_truncated_in_pixel_data(mono_file, tmp_path):
    path, _ = mono_file
    data = path.read_bytes()
    for cut in (len(data) // 2 + 200, len(data) - 2):
        cut_path = tmp_path / f"cut_{cut}.dcm"
        cut_path.write_bytes(data[:cut])
        err = refused(cut_path, "truncated", match="PixelData declares")
        assert "holds only" in str(err)


def test_truncated_in_half_and_in_header(mono_file, tmp_path):
    path, _ = mono_file
    data = path.read_bytes()
    ds = pydicom.dcmread(path, defer_size=64)
    value_tell = ds.get_item("PixelData", keep_deferred=True).value_tell
    cuts = {
        "preamble": 100,
        "meta": 160,
        "dataset": 400,
        "pixel_header": value_tell - 6,  # inside the (7FE0,0010) element header
        "half": len(data) // 2,
    }
    for label, cut in cuts.items():
        cut_path = tmp_path / f"{label}.dcm"
        cut_path.write_bytes(data[:cut])
        with pytest.raises(DicomError) as info:
            read_frames(cut_path)
        # a cut inside the preamble is indistinguishable from a non-DICOM file
        expected = {"not_dicom", "truncated"} if label == "preamble" else {"truncated"}
        assert info.value.reason in expected, (label, str(info.value))


def test_truncated_encapsulated(tmp_path):
    data = bundled("MR_small_RLE.dcm").read_bytes()
    for cut in (len(data) // 2, len(data) - 100):
        path = tmp_path / f"rle_{cut}.dcm"
        path.write_bytes(data[:cut])
        refused(path, "truncated")


def test_truncated_bundled():
    refused(bundled("MR_truncated.dcm"), "truncated")
    refused(bundled("rtplan_truncated.dcm"), "truncated")


def test_no_pixel_data(tmp_path):
    path = write(base_dataset(), tmp_path / "header_only.dcm")
    refused(path, "no_pixel_data", match="no Pixel Data")
    refused(path, "no_pixel_data", fn=lambda p: scan_file(p, US))


@pytest.mark.parametrize("delta", [-7, -2, 640, 680])
def test_pixel_length_mismatch(tmp_path, delta):
    ds = image_dataset(grey_image(16, 20, dtype=np.uint16), bits_stored=12)
    data = bytes(ds.PixelData)
    ds.PixelData = data[:delta] if delta < 0 else data + bytes(delta)
    path = write(ds, tmp_path / "mismatch.dcm")
    err = refused(path, "pixel_length_mismatch", match="640 bytes are expected")
    assert f"holds {640 + delta + (delta % 2)} bytes" in str(err)  # pydicom pads odd values
    refused(path, "pixel_length_mismatch", fn=lambda p: scan_file(p, US))


@pytest.mark.parametrize("delta", [2, 40, 638])
def test_trailing_padding_shorter_than_a_frame_is_read_with_a_warning(tmp_path, caplog, delta):
    image = grey_image(16, 20, dtype=np.uint16)
    ds = image_dataset(image, bits_stored=12)
    ds.PixelData = bytes(ds.PixelData) + bytes(delta)
    path = write(ds, tmp_path / "padded.dcm")
    with caplog.at_level("WARNING", logger="mskdx.ingest.pixels"):
        frames = read_frames(path)
    assert np.array_equal(frames[0], image.astype(np.float32))
    assert "trailing padding ignored" in caplog.text and str(path) not in caplog.text


def test_pixel_length_mismatch_too_many_frames_declared(tmp_path):
    ds = image_dataset(grey_image(8, 8, frames=3), sop_class=US_MULTIFRAME)
    ds.NumberOfFrames = 4
    refused(write(ds, tmp_path / "frames.dcm"), "pixel_length_mismatch", match="NumberOfFrames 4")
    ds.NumberOfFrames = 1  # surplus bytes: pydicom would silently make extra frames of them
    refused(write(ds, tmp_path / "surplus.dcm"), "pixel_length_mismatch", match="times the frames")


def test_pixel_length_mismatch_encapsulated_frames(tmp_path):
    frames = grey_image(8, 8, frames=3)
    ds = image_dataset(frames, sop_class=US_MULTIFRAME)
    ds.compress(uid.RLELossless)
    ds.NumberOfFrames = 5
    refused(write(ds, tmp_path / "rle_frames.dcm"), "pixel_length_mismatch", match="5")


def test_odd_length_pad_byte_accepted(tmp_path):
    pixels = grey_image(3, 3)  # 9 bytes, padded to 10 on writing
    path = write(image_dataset(pixels), tmp_path / "odd.dcm")
    assert pydicom.dcmread(path).PixelData.__len__() == 10
    np.testing.assert_array_equal(read_frames(path)[0], pixels)


def _jpeg_ls_file(tmp_path) -> Path:
    ds = image_dataset(grey_image(16, 16))
    ds.compress(uid.JPEGLSLossless)
    return write(ds, tmp_path / "jls.dcm")


def test_undecodable_missing_plugin(tmp_path, monkeypatch):
    path = _jpeg_ls_file(tmp_path)
    decoder = get_decoder(uid.JPEGLSLossless)
    monkeypatch.setattr(decoder, "_available", {})
    monkeypatch.setattr(decoder, "_unavailable", {"pyjpegls": ("numpy", "pyjpegls")})
    err = refused(path, "undecodable", match="JPEG-LS Lossless")
    assert "install pyjpegls" in str(err)
    refused(path, "undecodable", fn=lambda p: scan_file(p, US))


def test_undecodable_missing_libjpeg_for_jpeg(monkeypatch):
    decoder = get_decoder(uid.JPEGBaseline8Bit)
    monkeypatch.setattr(decoder, "_available", {})
    monkeypatch.setattr(decoder, "_unavailable", {"pylibjpeg": ("pylibjpeg", "pylibjpeg-libjpeg")})
    err = refused(bundled("SC_rgb_jpeg_dcmtk.dcm"), "undecodable", match="JPEG Baseline")
    assert "pylibjpeg-libjpeg" in str(err)


@pytest.mark.parametrize(
    "syntax, words",
    [
        ("1.2.840.10008.1.2.4.102", "MPEG-4 AVC/H.264"),  # no pydicom decoder at all
        ("1.2.840.10008.1.2.4.110", "1.2.840.10008.1.2.4.110"),  # JPEG XL: unknown to pydicom 3.0
    ],
)
def test_undecodable_no_decoder(tmp_path, syntax, words):
    ds = image_dataset(grey_image(16, 16))
    ds.PixelData = encapsulate([b"\0\0\0\1fake-video-bitstream"])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = uid.MPEG4HP41  # 1.2.840.10008.1.2.4.102
    path = write(ds, tmp_path / "video.dcm")
    # pydicom will not write a UID it does not know as a syntax: patch it (same length)
    path.write_bytes(path.read_bytes().replace(b"1.2.840.10008.1.2.4.102", syntax.encode()))
    err = refused(path, "undecodable", match=words)
    assert "re-export" in str(err)


def test_undecodable_corrupt_stream(tmp_path):
    ds = image_dataset(grey_image(16, 16))
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xe0 this is not a jpeg stream \xff\xd9"])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = uid.JPEGBaseline8Bit
    refused(write(ds, tmp_path / "bad.dcm"), "undecodable", match="could not be decoded")


@pytest.mark.parametrize(
    "photometric, samples", [("HSV", 3), ("ARGB", 4), ("CMYK", 4), ("YBR_PARTIAL_422", 3)]
)
def test_unsupported_photometric(tmp_path, photometric, samples):
    ds = image_dataset(grey_image(8, 8))
    ds.PhotometricInterpretation = photometric
    ds.SamplesPerPixel = samples
    ds.PlanarConfiguration = 0
    ds.PixelData = bytes(8 * 8 * samples)
    err = refused(write(ds, tmp_path / "p.dcm"), "unsupported_photometric", match=photometric)
    assert "MONOCHROME2" in str(err)  # says what is supported


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda ds: delattr(ds, "Rows"), "Rows"),
        (lambda ds: delattr(ds, "BitsAllocated"), "BitsAllocated"),
        (lambda ds: setattr(ds, "Columns", 0), "Columns 0"),
        (lambda ds: setattr(ds, "SamplesPerPixel", 3), "SamplesPerPixel 3"),
        (lambda ds: setattr(ds, "BitsStored", 12), "BitsStored 12"),
        (lambda ds: delattr(ds, "PhotometricInterpretation"), "PhotometricInterpretation"),
    ],
)
def test_bad_header(tmp_path, change, words):
    ds = image_dataset(grey_image(8, 8))
    change(ds)
    refused(write(ds, tmp_path / "bad.dcm"), "bad_header", match=words)


def test_bad_header_invalid_number_of_frames():
    refused(bundled("badVR.dcm"), "bad_header", match="NumberOfFrames")


def test_bad_header_scan_needs_patient_and_instance(tmp_path):
    ds = image_dataset(grey_image(8, 8))
    ds.PatientID = ""
    path = write(ds, tmp_path / "nopid.dcm")
    refused(path, "bad_header", fn=lambda p: scan_file(p, US), match="PatientID")
    assert read_frames(path).shape == (1, 8, 8)  # the pixels themselves are fine


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads unreadable files")
def test_unreadable(mono_file):
    path, _ = mono_file
    path.chmod(0)
    try:
        refused(path, "unreadable")
    finally:
        path.chmod(0o644)


def test_missing_file(tmp_path):
    refused(tmp_path / "nowhere.dcm", "unreadable", match="not found")


# --------------------------------------------------------------------------------------------
# classify
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sop_class, modality, words",
    [
        (COMPREHENSIVE_SR, "SR", "structured report"),
        (BASIC_TEXT_SR, "SR", "structured report"),
        (SEGMENTATION, "SEG", "segmentation"),
        (GRAYSCALE_PS, "PR", "presentation state"),
        (KEY_OBJECT_SELECTION, "KO", "key object selection"),
        (RT_STRUCT, "RTSTRUCT", "radiotherapy"),
        (RT_PLAN, "RTPLAN", "radiotherapy"),
        (RT_DOSE, "RTDOSE", "radiotherapy"),
        (ENCAPSULATED_PDF, "DOC", "encapsulated document"),
        (ECG_WAVEFORM, "ECG", "waveform"),
        (RAW_DATA, "US", "raw data"),
        ("1.2.3.4.5.6.7", "US", "not an image storage SOP class"),
    ],
)
def test_classify_refuses_non_images(tmp_path, sop_class, modality, words):
    ds = base_dataset(sop_class, modality)
    err = refused(tmp_path / "x.dcm", "not_an_image", fn=lambda p: classify(ds, p, US), match=words)
    assert sop_class in str(err)
    # scan_file says not_an_image too, not no_pixel_data
    path = write(ds, tmp_path / "y.dcm")
    refused(path, "not_an_image", fn=lambda p: scan_file(p, US), match=words)


def test_classify_refuses_dicomdir(tmp_path):
    refused(bundled("DICOMDIR"), "not_an_image", fn=lambda p: scan_file(p, US), match="DICOMDIR")
    ds = Dataset()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = MEDIA_STORAGE_DIRECTORY
    refused(
        tmp_path / "DICOMDIR", "not_an_image", fn=lambda p: classify(ds, p, US), match="DICOMDIR"
    )


def test_classify_modality(tmp_path):
    path = tmp_path / "x.dcm"
    for sop_class, modality in [(US_MULTIFRAME, "US"), (SC_IMAGE, "OT"), (SC_IMAGE, "SC")]:
        classify(base_dataset(sop_class, modality), path, US)  # accepted
    classify(base_dataset(MR_IMAGE, "MR"), path, ["MR"])
    classify(base_dataset(ENHANCED_MR, "MR"), path, ["mr"])  # config case does not matter
    err = refused(path, "not_an_image", fn=lambda p: classify(base_dataset(MR_IMAGE, "MR"), p, US))
    assert "Modality MR" in str(err) and "'US'" in str(err)
    refused(
        path,
        "not_an_image",
        fn=lambda p: classify(base_dataset(CT_IMAGE, "CT"), p, ["MR"]),
        match="Modality CT",
    )
    refused(
        path, "not_an_image", fn=lambda p: classify(base_dataset(SEGMENTATION, "SEG"), p, ["SEG"])
    )


def test_classify_missing_identification(tmp_path):
    ds = base_dataset(MR_IMAGE, "MR")
    del ds.Modality
    refused(
        tmp_path / "x.dcm", "bad_header", fn=lambda p: classify(ds, p, ["MR"]), match="Modality"
    )
    ds = base_dataset(MR_IMAGE, "MR")
    del ds.SOPClassUID
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    refused(
        tmp_path / "x.dcm", "bad_header", fn=lambda p: classify(ds, p, ["MR"]), match="SOPClassUID"
    )


# --------------------------------------------------------------------------------------------
# decoding features
# --------------------------------------------------------------------------------------------


def test_plain_grey_exact(mono_file):
    path, pixels = mono_file
    frames = read_frames(path)
    assert frames.dtype == np.float32 and frames.shape == (1, 16, 20)
    np.testing.assert_array_equal(frames[0], pixels)


def test_monochrome1_inverted(tmp_path):
    pixels = grey_image(16, 20, dtype=np.uint16)  # 0..4000 in 12 bits
    ds = image_dataset(pixels, photometric="MONOCHROME1", bits_stored=12)
    frames = read_frames(write(ds, tmp_path / "m1.dcm"))
    np.testing.assert_array_equal(frames[0], 4095 - pixels.astype(np.float32))
    # the brightest stored value is the darkest output
    assert frames[0][pixels == pixels.max()].max() == frames[0].min()


def test_monochrome1_with_rescale(tmp_path):
    pixels = grey_image(8, 8, dtype=np.uint16)
    ds = image_dataset(pixels, photometric="MONOCHROME1", bits_stored=12)
    ds.RescaleSlope, ds.RescaleIntercept = 2, -1000
    frames = read_frames(write(ds, tmp_path / "m1r.dcm"))
    # range of the rescaled values is [-1000, 7190]; inversion maps v -> 6190 - v
    np.testing.assert_allclose(frames[0], 6190 - (2.0 * pixels - 1000))


def test_rescale_slope_intercept(tmp_path):
    pixels = grey_image(16, 20, dtype=np.uint16)
    ds = image_dataset(pixels, sop_class=CT_IMAGE, modality="CT", bits_stored=12)
    ds.RescaleSlope, ds.RescaleIntercept = "0.5", "-1024"
    frames = read_frames(write(ds, tmp_path / "ct.dcm"))
    np.testing.assert_allclose(frames[0], pixels * 0.5 - 1024)


def test_modality_lut_sequence(tmp_path):
    pixels = np.arange(16, dtype=np.uint16).reshape(4, 4)
    ds = image_dataset(pixels, bits_stored=4)
    item = Dataset()
    item.LUTDescriptor = [16, 0, 16]
    item.LUTData = [1000 + 10 * i for i in range(16)]
    item["LUTData"].VR = "US"
    ds.ModalityLUTSequence = [item]
    frames = read_frames(write(ds, tmp_path / "lut.dcm"))
    np.testing.assert_array_equal(frames[0], 1000 + 10 * pixels)


def test_signed_pixels(tmp_path):
    pixels = np.array([[-2048, -1, 0], [1, 100, 2047]], dtype=np.int16)
    ds = image_dataset(pixels, bits_stored=12, sop_class=CT_IMAGE, modality="CT")
    assert ds.PixelRepresentation == 1
    frames = read_frames(write(ds, tmp_path / "signed.dcm"))
    np.testing.assert_array_equal(frames[0], pixels)


def test_signed_pixels_with_rescale_and_monochrome1(tmp_path):
    pixels = np.array([[-2048, 0, 2047]], dtype=np.int16)
    ds = image_dataset(pixels, bits_stored=12, photometric="MONOCHROME1")
    ds.RescaleSlope, ds.RescaleIntercept = 1, 100
    frames = read_frames(write(ds, tmp_path / "s1.dcm"))
    # stored range -2048..2047 -> rescaled -1948..2147; inverted: 199 - v
    np.testing.assert_allclose(frames[0], 199 - (pixels + 100.0))


def test_rgb_to_luminance(tmp_path):
    rgb = rgb_image()
    frames = read_frames(write(image_dataset(rgb, photometric="RGB"), tmp_path / "rgb.dcm"))
    assert frames.shape == (1, 16, 20)
    np.testing.assert_allclose(frames[0], luminance(rgb), atol=1e-3)


def test_rgb_planar_configuration_1(tmp_path):
    rgb = rgb_image()
    ds = image_dataset(rgb, photometric="RGB")
    ds.PlanarConfiguration = 1
    ds.PixelData = np.ascontiguousarray(rgb.transpose(2, 0, 1)).tobytes()
    frames = read_frames(write(ds, tmp_path / "planar.dcm"))
    np.testing.assert_allclose(frames[0], luminance(rgb), atol=1e-3)


def test_ybr_full_matches_rgb_source(tmp_path):
    rgb = rgb_image()
    ybr = convert_color_space(rgb, "RGB", "YBR_FULL")
    ds = image_dataset(ybr, photometric="YBR_FULL")
    frames = read_frames(write(ds, tmp_path / "ybr.dcm"))
    expected = read_frames(write(image_dataset(rgb, photometric="RGB"), tmp_path / "rgb.dcm"))
    np.testing.assert_allclose(frames, expected, atol=1.5)
    # a second YBR->RGB conversion would be far off
    wrong = luminance(
        convert_color_space(convert_color_space(ybr, "YBR_FULL", "RGB"), "YBR_FULL", "RGB")
    )
    assert np.abs(wrong - expected[0]).max() > 10


def test_ybr_full_422_native_matches_rgb_source(tmp_path):
    rgb = rgb_image()  # 2x2 blocks: 4:2:2 subsampling is lossless
    ybr = convert_color_space(rgb, "RGB", "YBR_FULL")
    rows, cols = ybr.shape[:2]
    packed = np.empty((rows, cols // 2, 4), dtype=np.uint8)  # Y1 Y2 Cb Cr per pixel pair
    packed[..., 0] = ybr[:, 0::2, 0]
    packed[..., 1] = ybr[:, 1::2, 0]
    packed[..., 2] = ybr[:, 0::2, 1]
    packed[..., 3] = ybr[:, 0::2, 2]
    ds = image_dataset(rgb, photometric="RGB")
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.PixelData = packed.tobytes()
    frames = read_frames(write(ds, tmp_path / "ybr422.dcm"))
    np.testing.assert_allclose(frames[0], luminance(rgb), atol=1.5)


@pytest.mark.parametrize(
    "name",
    [
        "SC_ybr_full_422_uncompressed.dcm",  # native YBR_FULL_422
        "SC_rgb_jpeg_dcmtk.dcm",  # JPEG baseline, YBR_FULL
        "SC_rgb_dcmtk_+eb+cy+np.dcm",  # JPEG baseline, YBR_FULL_422
        "SC_rgb_dcmtk_+eb+cr.dcm",  # JPEG baseline, RGB
        "SC_rgb_jpeg_gdcm.dcm",  # JPEG lossless SV1
        "SC_rgb_gdcm_KY.dcm",  # JPEG 2000
        "SC_rgb_jls_lossy_line.dcm",  # JPEG-LS near-lossless
    ],
)
def test_bundled_colour_files_match_lossless_rgb(name):
    reference = read_frames(bundled("SC_rgb_rle.dcm"))  # the same picture, RLE RGB
    frames = read_frames(bundled(name))
    diff = np.abs(frames - reference)
    assert diff.mean() < 1.0 and diff.max() < 10, (diff.mean(), diff.max())


def test_palette_color(tmp_path):
    index = np.arange(64, dtype=np.uint8).reshape(8, 8)
    ds = image_dataset(index)
    ds.PhotometricInterpretation = "PALETTE COLOR"
    ramp = [i * 256 for i in range(256)]
    for colour, scale in (("Red", 1), ("Green", 0), ("Blue", 0)):
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 16])
        setattr(
            ds,
            f"{colour}PaletteColorLookupTableData",
            np.array([v * scale for v in ramp], dtype="<u2").tobytes(),
        )
    frames = read_frames(write(ds, tmp_path / "palette.dcm"))
    np.testing.assert_allclose(frames[0], 0.299 * index.astype(np.float64) * 256, rtol=1e-6)


def test_palette_color_bundled():
    path = bundled("examples_palette.dcm")
    ds = pydicom.dcmread(path)
    rgb = pydicom.pixels.apply_color_lut(ds.pixel_array, ds)
    np.testing.assert_allclose(read_frames(path)[0], luminance(rgb), rtol=1e-5)


def test_multiframe(tmp_path):
    frames_in = grey_image(8, 10, frames=4)
    frames_in[2] = 7  # distinct frames stay in order
    ds = image_dataset(frames_in, sop_class=US_MULTIFRAME)
    frames = read_frames(write(ds, tmp_path / "cine.dcm"))
    assert frames.shape == (4, 8, 10)
    np.testing.assert_array_equal(frames, frames_in)


def test_multiframe_colour_bundled():
    frames = read_frames(bundled("examples_ybr_color.dcm"))
    assert frames.shape == (30, 240, 320) and np.isfinite(frames).all()


def test_enhanced_mr_per_frame_rescale(tmp_path):
    frames_in = grey_image(4, 4, frames=2, dtype=np.uint16)
    ds = image_dataset(frames_in, sop_class=ENHANCED_MR, modality="MR", bits_stored=12)
    per_frame = []
    for slope, intercept in ((1.0, 0.0), (2.0, -5.0)):
        transform = Dataset()
        transform.RescaleSlope, transform.RescaleIntercept = slope, intercept
        transform.RescaleType = "US"
        group = Dataset()
        group.PixelValueTransformationSequence = [transform]
        per_frame.append(group)
    ds.PerFrameFunctionalGroupsSequence = per_frame
    frames = read_frames(write(ds, tmp_path / "emr.dcm"))
    np.testing.assert_allclose(frames[0], frames_in[0])
    np.testing.assert_allclose(frames[1], 2.0 * frames_in[1] - 5)


@pytest.mark.parametrize("syntax", [uid.RLELossless, uid.JPEGLSLossless, uid.JPEG2000Lossless])
def test_compressed_roundtrip_exact(tmp_path, syntax):
    pixels = grey_image(64, 48, frames=2, dtype=np.uint16)  # J2K needs >= 32 px per side
    ds = image_dataset(pixels, sop_class=US_MULTIFRAME, bits_stored=12)
    ds.compress(syntax)
    path = write(ds, tmp_path / "c.dcm")
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == syntax
    np.testing.assert_array_equal(read_frames(path), pixels)


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_RLE.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_expb.dcm",
        "MR_small_implicit.dcm",
    ],
)
def test_bundled_syntaxes_equal_native(name):
    np.testing.assert_array_equal(read_frames(bundled(name)), read_frames(bundled("MR_small.dcm")))


def test_bundled_lossy_syntaxes_decode():
    ds = pydicom.dcmread(bundled("JPGExtended.dcm"))  # JPEG extended 12 bit
    np.testing.assert_allclose(read_frames(bundled("JPGExtended.dcm"))[0], ds.pixel_array)
    assert read_frames(bundled("JPEG2000.dcm")).shape == (1, 1024, 256)
    assert read_frames(bundled("JPEGLSNearLossless_16.dcm")).shape == (1, 50, 10)
    ds = pydicom.dcmread(bundled("image_dfl.dcm"))  # deflated explicit little endian
    np.testing.assert_array_equal(read_frames(bundled("image_dfl.dcm"))[0], ds.pixel_array)


def test_raw_dataset_without_preamble(tmp_path):
    pixels = grey_image(8, 8)
    ds = image_dataset(pixels)
    path = tmp_path / "raw.dcm"
    ds.preamble = None
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.save_as(path, enforce_file_format=False, implicit_vr=True, little_endian=True)
    raw = path.read_bytes()
    assert raw[128:132] != b"DICM"
    np.testing.assert_array_equal(read_frames(path)[0], pixels)
    assert scan_file(path, US).patient_id == PATIENT_ID


def _all_bundled_files() -> list[Path]:
    root = Path(DATA_ROOT) / "test_files"
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_every_bundled_file_decodes_or_is_refused():
    outcomes = {"ok": 0, "refused": 0}
    for path in _all_bundled_files():
        try:
            frames = read_frames(path)
        except DicomError as err:
            assert err.reason in FILE_REASONS, (path, err)
            assert str(err).startswith(str(path)), err
            outcomes["refused"] += 1
            continue
        assert frames.dtype == np.float32 and frames.ndim == 3, path
        assert np.isfinite(frames).all(), path
        outcomes["ok"] += 1
    assert outcomes["ok"] > 50 and outcomes["refused"] > 20, outcomes


def test_every_bundled_file_scans_or_is_refused():
    for path in _all_bundled_files():
        for modalities in (US, ["MR"], ["CT", "CR"]):
            try:
                header = scan_file(path, modalities)
            except DicomError as err:
                assert err.reason in FILE_REASONS, (path, err)
                continue
            assert header.modality in modalities and header.patient_id


# --------------------------------------------------------------------------------------------
# scan_file, walk_dicom, file_sha256
# --------------------------------------------------------------------------------------------


def test_scan_file_header(tmp_path):
    ds = image_dataset(grey_image(8, 10, frames=3), sop_class=US_MULTIFRAME)
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    path = write(ds, tmp_path / "cine.dcm")
    header = scan_file(path, US)
    assert isinstance(header, DicomHeader)
    assert header.path == path
    assert header.patient_id == PATIENT_ID
    assert header.sop_instance_uid == ds.SOPInstanceUID
    assert header.series_instance_uid == ds.SeriesInstanceUID
    assert header.modality == "US" and header.sop_class_uid == US_MULTIFRAME
    assert header.series_description == "MTP1 dorsal" and header.protocol_name == "foot"
    assert (header.number_of_frames, header.rows, header.columns) == (3, 8, 10)
    assert header.photometric == "MONOCHROME2"
    assert header.transfer_syntax == uid.ExplicitVRLittleEndian
    assert header.image_orientation == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    with pytest.raises(AttributeError):
        header.patient_id = "x"  # frozen


def _tree(root: Path) -> dict[str, str]:
    """A realistic export: good images, and what else lands in such folders."""
    good = {}
    for i, (patient, view) in enumerate(
        [("PAT-1", "dorsal"), ("PAT-2", "plantar"), ("PAT-1", "medial")]
    ):
        ds = image_dataset(grey_image(8, 8, seed=i), patient_id=patient)
        rel = f"{patient}/study/{view}/IMG{i:04d}"
        write(ds, root / rel)
        good[rel] = ds.SOPInstanceUID
    (root / "PAT-1" / "notes.txt").write_text("scanned by the night shift")
    (root / "labels.csv").write_text("patient_id,diagnosis\n")
    (root / "PAT-2" / "Thumbs.db").write_bytes(bytes(range(256)) * 4)
    (root / ".DS_Store").write_bytes(b"\0\0\0\1Bud1" + bytes(100))
    (root / "PAT-2" / "empty.dcm").write_bytes(b"")
    write(base_dataset(COMPREHENSIVE_SR, "SR"), root / "PAT-2" / "report.dcm")
    (root / "DICOMDIR").write_bytes(bundled("DICOMDIR").read_bytes())
    whole = (root / "PAT-1/study/dorsal/IMG0000").read_bytes()
    (root / "PAT-1" / "cut.dcm").write_bytes(whole[: len(whole) - 10])
    return good


EXPECTED_REFUSED = {
    "PAT-1/cut.dcm": "truncated",
    "PAT-1/notes.txt": "not_dicom",
    "PAT-2/empty.dcm": "empty_file",
    "PAT-2/report.dcm": "not_an_image",
    "labels.csv": "not_dicom",
}
# DICOMDIR, .DS_Store and Thumbs.db are not images: skipped and counted, not refused
EXPECTED_SKIPPED = 3


def test_walk_dicom_skip(tmp_path):
    good = _tree(tmp_path)
    headers, refusals = walk_dicom(tmp_path, US, on_error="skip")
    assert [h.path.relative_to(tmp_path).as_posix() for h in headers] == sorted(good)
    assert [h.sop_instance_uid for h in headers] == [good[k] for k in sorted(good)]
    assert {r.relpath: r.reason for r in refusals} == EXPECTED_REFUSED
    assert [r.relpath for r in refusals] == sorted(EXPECTED_REFUSED)  # deterministic order
    for r in refusals:
        assert isinstance(r, Refusal)
        assert r.key == hashlib.sha256(r.relpath.encode()).hexdigest()[:12]
        assert r.path == tmp_path / r.relpath
        assert str(tmp_path) not in r.message and "PAT-" not in r.message  # safe for logs
    # same result twice
    assert walk_dicom(tmp_path, US, on_error="skip") == (headers, refusals)


def test_walk_dicom_stop_lists_every_refused_file_by_key(tmp_path):
    _tree(tmp_path)
    with pytest.raises(DicomError) as info:
        walk_dicom(tmp_path, US, on_error="stop")
    message = str(info.value)
    assert info.value.reason == "refused_files"
    assert message.startswith(str(tmp_path))
    assert f"{len(EXPECTED_REFUSED)} of {len(EXPECTED_REFUSED) + 3} files refused" in message
    body = message.split("\n", 1)[1]
    for rel, reason in EXPECTED_REFUSED.items():
        key = hashlib.sha256(rel.encode()).hexdigest()[:12]
        assert f"F-{key}: {reason}" in body
    # folder names of real exports hold PatientIDs and dates: no path in the message
    assert "PAT-" not in message and "cut.dcm" not in message
    # the real paths travel with the error, for the terminal and the private map
    assert {r.relpath for r in info.value.refusals} == set(EXPECTED_REFUSED)


def test_desktop_and_dicomdir_files_are_skipped_and_counted_not_refused(tmp_path, caplog):
    for i in range(2):
        write(image_dataset(grey_image(8, 8, seed=i)), tmp_path / "PAT-1" / f"IMG{i}")
    (tmp_path / "PAT-1" / "Thumbs.db").write_bytes(bytes(range(256)) * 4)
    (tmp_path / ".DS_Store").write_bytes(b"\0\0\0\1Bud1" + bytes(100))
    (tmp_path / "DICOMDIR").write_bytes(bundled("DICOMDIR").read_bytes())
    # a DICOMDIR under another name is known by its SOP class
    (tmp_path / "PAT-1" / "INDEX").write_bytes(bundled("DICOMDIR").read_bytes())
    with caplog.at_level(logging.INFO, logger="mskdx.ingest.dicom"):
        headers, refusals = walk_dicom(tmp_path, US, on_error="stop")
    assert len(headers) == 2 and refusals == []
    text = caplog.text
    assert "4 not images skipped" in text
    assert "DICOMDIR index 2" in text and "(.DS_Store) 1" in text and "(Thumbs.db) 1" in text


def test_walk_follows_linked_folders_once(tmp_path):
    export = tmp_path / "export"
    store = tmp_path / "store"
    for i, patient in enumerate(("PAT-1", "PAT-2")):
        write(image_dataset(grey_image(8, 8, seed=i), patient_id=patient), store / patient / "I")
    (export / "PAT-1").mkdir(parents=True)
    write(image_dataset(grey_image(8, 8, seed=5), patient_id="PAT-1"), export / "PAT-1" / "J")
    # a patient folder that is a link (as exports assembled from several disks have)
    os.symlink(store / "PAT-2", export / "PAT-2")
    headers, _ = walk_dicom(export, US, on_error="stop")
    assert sorted(h.patient_id for h in headers) == ["PAT-1", "PAT-2"]
    # a second link to the same folder, a link to a file already seen, and a loop
    os.symlink(store / "PAT-2", export / "again")
    os.symlink(export / "PAT-1" / "J", export / "PAT-1" / "J-link")
    os.symlink(export, export / "PAT-1" / "loop")
    os.symlink(tmp_path / "nowhere", export / "broken")
    headers, refusals = walk_dicom(export, US, on_error="stop")
    assert sorted(h.patient_id for h in headers) == ["PAT-1", "PAT-2"]
    assert refusals == []


_UNREADABLE_CHECK = """
import json, sys
from mskdx.ingest.dicom import walk_dicom
headers, refusals = walk_dicom(sys.argv[1], ["US"], on_error="skip")
print(json.dumps([[h.patient_id for h in headers], [[r.relpath, r.reason] for r in refusals]]))
"""


def _without_root_powers(cmd: list[str]) -> list[str]:
    """`cmd` run without the capabilities that let root read any folder (as a user is)."""
    if os.geteuid() != 0:
        return cmd
    import shutil

    if shutil.which("setpriv"):
        return ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--", *cmd]
    drop = "--drop=cap_dac_override,cap_dac_read_search"
    return ["capsh", drop, "--", "-c", " ".join(f"'{c}'" for c in cmd)]


def test_unreadable_folder_is_refused_not_skipped(tmp_path):
    import json
    import subprocess
    import sys

    for i, patient in enumerate(("PAT-1", "PAT-2")):
        write(image_dataset(grey_image(8, 8, seed=i), patient_id=patient), tmp_path / patient / "I")
    locked = tmp_path / "PAT-2"
    locked.chmod(0)
    try:
        cmd = _without_root_powers([sys.executable, "-c", _UNREADABLE_CHECK, str(tmp_path)])
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=os.environ)
    finally:
        locked.chmod(0o755)
    assert proc.returncode == 0, proc.stderr
    patients, refusals = json.loads(proc.stdout)
    assert patients == ["PAT-1"]
    assert refusals == [["PAT-2", "unreadable"]]


def test_walk_dicom_only_modalities_of_the_study(tmp_path):
    write(
        image_dataset(grey_image(8, 8), sop_class=MR_IMAGE, modality="MR"),
        tmp_path / "a" / "mr.dcm",
    )
    write(image_dataset(grey_image(8, 8)), tmp_path / "a" / "us.dcm")
    headers, refusals = walk_dicom(tmp_path, ["MR"], on_error="skip")
    assert [h.modality for h in headers] == ["MR"]
    assert [(r.relpath, r.reason) for r in refusals] == [("a/us.dcm", "not_an_image")]


def test_walk_dicom_duplicate_instance(tmp_path):
    ds = image_dataset(grey_image(8, 8))
    write(ds, tmp_path / "a.dcm")
    write(ds, tmp_path / "copy" / "a.dcm")
    headers, refusals = walk_dicom(tmp_path, US, on_error="skip")
    assert len(headers) == 1 and headers[0].path == tmp_path / "a.dcm"
    assert [(r.relpath, r.reason) for r in refusals] == [("copy/a.dcm", "duplicate_instance")]
    # names the first copy by its key: paths may hold PatientIDs
    assert f"F-{hashlib.sha256(b'a.dcm').hexdigest()[:12]}" in refusals[0].message
    with pytest.raises(DicomError, match="duplicate_instance"):
        walk_dicom(tmp_path, US, on_error="stop")


def test_walk_dicom_empty_and_missing_folders(tmp_path):
    err = refused(tmp_path, "no_images", fn=lambda p: walk_dicom(p, US), match="no DICOM images")
    assert "no files" in str(err)
    (tmp_path / "readme.txt").write_text("nothing here")
    refused(
        tmp_path, "no_images", fn=lambda p: walk_dicom(p, US, on_error="skip"), match="not_dicom 1"
    )
    refused(
        tmp_path / "absent",
        "missing_folder",
        fn=lambda p: walk_dicom(p, US),
        match="does not exist",
    )
    refused(
        tmp_path / "readme.txt",
        "missing_folder",
        fn=lambda p: walk_dicom(p, US),
        match="not a folder",
    )


def test_walk_dicom_rejects_bad_on_error(tmp_path):
    with pytest.raises(ValueError, match="on_error"):
        walk_dicom(tmp_path, US, on_error="ignore")


def test_file_sha256(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc" * 1000)
    assert file_sha256(path) == hashlib.sha256(b"abc" * 1000).hexdigest()
    refused(tmp_path / "missing", "unreadable", fn=file_sha256)


def test_truncated_element_header_is_detected(tmp_path):
    # a file that ends 4 bytes into the next element's header (pydicom drops them silently)
    ds = image_dataset(grey_image(4, 4))
    path = write(ds, tmp_path / "ok.dcm")
    data = path.read_bytes() + struct.pack("<HH", 0x7FE1, 0x0010)
    (tmp_path / "partial.dcm").write_bytes(data)
    refused(tmp_path / "partial.dcm", "truncated", match="stray bytes")


def test_no_paths_in_logs_and_no_stray_warnings(tmp_path, caplog):
    # input paths may hold patient identifiers: neither pydicom's records nor ours may carry them
    folder = tmp_path / "SECRET-PATIENT-42"
    data = bundled("MR_small_RLE.dcm").read_bytes()
    cut = folder / "cut.dcm"
    folder.mkdir()
    cut.write_bytes(data[: len(data) // 2])
    (folder / "bad_jpeg.dcm").write_bytes(bundled("JPEG-lossy.dcm").read_bytes())
    (folder / "badvr.dcm").write_bytes(bundled("badVR.dcm").read_bytes())
    write(image_dataset(grey_image(8, 8)), folder / "ok.dcm")
    with caplog.at_level(logging.DEBUG), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for path in sorted(folder.iterdir()):
            try:
                read_frames(path)
            except DicomError:
                pass
        walk_dicom(tmp_path, US, on_error="skip")
    assert not caught, [str(w.message) for w in caught]
    assert not [r for r in caplog.records if r.name.startswith("pydicom")]
    assert not [r for r in caplog.records if "SECRET-PATIENT" in r.getMessage()]


def test_errors_survive_pickling(tmp_path):
    # extraction runs read_frames in worker processes and gets the errors back pickled
    path = tmp_path / "empty.dcm"
    path.write_bytes(b"")
    with pytest.raises(DicomError) as info:
        read_frames(path)
    again = pickle.loads(pickle.dumps(info.value))
    assert isinstance(again, DicomError) and again.reason == "empty_file"
    assert str(again) == str(info.value) and again.path == path


def test_unforeseen_exceptions_become_dicom_errors(tmp_path, monkeypatch):
    path = write(image_dataset(grey_image(4, 4)), tmp_path / "ok.dcm")

    def broken(*args, **kwargs):
        raise KeyError("deep inside pydicom")

    monkeypatch.setattr("mskdx.ingest.dicom._orientation", broken)
    refused(path, "bad_header", fn=lambda p: scan_file(p, US), match="KeyError")


def test_corrupted_jpeg_ls_scan_is_refused_not_decoded_to_garbage(tmp_path):
    """Bytes flipped inside the entropy-coded scan (not truncated): CharLS flags the stream;
    libjpeg, which pydicom falls back to, would return wrong pixels without an error."""
    y, x = np.mgrid[0:64, 0:96]
    pixels = ((np.sin(x / 7) + np.cos(y / 5)) * 60 + 128).astype(np.uint8)
    pixels = (pixels + grey_image(64, 96, seed=3) % 16).astype(np.uint8)
    ds = image_dataset(pixels)
    ds.compress(uid.JPEGLSLossless)
    data = bytearray(write(ds, tmp_path / "good.dcm").read_bytes())
    frame = bytes(next(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=1)))
    start = data.index(frame)
    scan = (
        start
        + frame.index(b"\xff\xda")
        + 2
        + int.from_bytes(frame[frame.index(b"\xff\xda") + 2 :][:2])
    )
    for offset in (len(frame) // 3, len(frame) // 2):
        bad = bytearray(data)
        bad[scan + offset] ^= 0x5A
        path = tmp_path / f"bad{offset}.dcm"
        path.write_bytes(bytes(bad))
        assert np.array_equal(read_frames(tmp_path / "good.dcm")[0], pixels)
        refused(path, "undecodable", match="JPEG-LS")
        # what the fallback decoder makes of it: the reason for decoding with CharLS alone
        damaged = pydicom.dcmread(path)
        arr, _ = get_decoder(uid.JPEGLSLossless).as_array(damaged, decoding_plugin="pylibjpeg")
        assert not np.array_equal(arr, pixels)
