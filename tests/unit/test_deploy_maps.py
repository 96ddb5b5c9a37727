"""Grad-CAM maps as Parametric Map / Segmentation: geometry, values, references, derived UIDs,
dciodvfy; the SR lists them as evidence (dsrdump reads it)."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pandas as pd
import pydicom
import pytest
from dicom_factory import MR_IMAGE, US_IMAGE, image_dataset, rgb_image, write
from dicom_tools import dciodvfy_errors, dsrdump
from skimage.transform import resize

from mskdx.deploy import dicom_out, maps
from mskdx.deploy.sources import Source
from mskdx.errors import ConfigError

MODEL = dicom_out.ModelInfo(
    study="gout",
    arm="blocks3",
    version="0.0+abcdef123456",
    folds=(0, 1),
    positive="gout",
    negative="control",
    image_threshold=0.5,
    patient_threshold=0.3,
)
CAM = np.linspace(0, 1, 8 * 17, dtype=np.float32).reshape(8, 17)


def _source(path: Path, image_id: str, frame: int = 0) -> tuple[Source, pydicom.Dataset]:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    source = Source(
        image_id=image_id,
        patient="P-0000000001",
        path=Path(path),
        file_key="F-000000000001",
        frame=frame,
        sop_class_uid=str(ds.SOPClassUID),
        sop_instance_uid=str(ds.SOPInstanceUID),
        study_instance_uid=str(ds.StudyInstanceUID),
        series_instance_uid=str(ds.SeriesInstanceUID),
        number_of_frames=int(ds.get("NumberOfFrames", 1)),
    )
    return source, ds


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """An RGB US capture (no frame of reference), a real 120-frame cine (frame 3) and an MR."""
    folder = tmp_path_factory.mktemp("src")
    us = image_dataset(rgb_image(40, 60), photometric="RGB", sop_class=US_IMAGE)
    mr = image_dataset(np.zeros((32, 32), np.uint16), sop_class=MR_IMAGE, modality="MR")
    mr.StudyInstanceUID = us.StudyInstanceUID  # the same patient's study
    for ds in (us, mr):  # what the SR copies of the patient and study (Type 2)
        ds.PatientSex, ds.StudyID, ds.StudyTime, ds.ReferringPhysicianName = "O", "1", "1200", ""
    mr.FrameOfReferenceUID = pydicom.uid.generate_uid()
    mr.ImagePositionPatient = [0, 0, 0]
    mr.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    mr.PixelSpacing = [0.5, 0.5]
    mr.SliceThickness = 3
    cine = pydicom.data.get_testdata_file("color3d_jpeg_baseline.dcm")
    found = {
        "I-us": _source(write(us, folder / "us.dcm"), "I-us"),
        "I-cine": _source(Path(cine), "I-cine", frame=3),
        "I-mr": _source(write(mr, folder / "mr.dcm"), "I-mr"),
    }
    boxes = {"I-us": (10, 5, 44, 21), "I-cine": (85, 45, 600, 405), "I-mr": None}
    return found, boxes


@pytest.fixture(scope="module")
def built(inputs):
    found, boxes = inputs
    sources = {k: v[0] for k, v in found.items()}
    datasets = {k: v[1] for k, v in found.items()}
    cams = dict.fromkeys(found, CAM)
    return maps.build_maps(cams, sources, datasets, boxes, MODEL, kinds=("pm", "seg"))


def test_pm_where_there_is_a_frame_of_reference_seg_everywhere(built):
    kinds = sorted((image_id, kind) for _, image_id, kind, _ in built)
    assert kinds == [("I-cine", "seg"), ("I-mr", "pm"), ("I-mr", "seg"), ("I-us", "seg")]


def test_every_map_object_passes_dciodvfy(built, tmp_path):
    for _, image_id, kind, ds in built:
        path = tmp_path / f"{kind}_{image_id}.dcm"
        ds.save_as(path, enforce_file_format=True)
        assert dciodvfy_errors(path) == [], (image_id, kind)


def test_map_values_sit_on_the_crop_box_of_the_source_frame(built, inputs, tmp_path):
    found, boxes = inputs
    by_key = {(i, k): ds for _, i, k, ds in built}
    pm = by_key[("I-mr", "pm")]
    pm.save_as(tmp_path / "pm.dcm", enforce_file_format=True)
    back = hd.pm.ParametricMap.from_dataset(pydicom.dcmread(tmp_path / "pm.dcm"))
    values = back.pixel_array.reshape(32, 32).astype(np.float64)
    expected = resize(CAM, (32, 32), order=1, preserve_range=True)  # MR: the whole frame
    np.testing.assert_allclose(values, expected, atol=1e-6)
    (rwvm,) = back.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence
    assert rwvm.LUTExplanation == "Grad-CAM activation"
    assert rwvm.DoubleFloatRealWorldValueFirstValueMapped == 0
    assert rwvm.DoubleFloatRealWorldValueLastValueMapped == 1
    seg = by_key[("I-us", "seg")]
    mask = seg.pixel_array.reshape(40, 60)
    x0, y0, x1, y1 = boxes["I-us"]
    inside = resize(CAM, (y1 - y0, x1 - x0), order=1, preserve_range=True) >= 0.5
    np.testing.assert_array_equal(mask[y0:y1, x0:x1], inside.astype(np.uint8))
    assert mask.sum() == inside.sum()  # nothing outside the crop box
    assert "crop box" in seg.DerivationDescription and "whole frame" in pm.DerivationDescription


def test_each_object_references_its_source_and_frame_in_the_source_study(built, inputs):
    found, _ = inputs
    for _, image_id, _, ds in built:
        source = found[image_id][0]
        assert ds.StudyInstanceUID == source.study_instance_uid
        assert ds.SeriesInstanceUID != source.series_instance_uid
        assert "not for diagnosis alone" in ds.SeriesDescription
        derivation = ds.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0]
        (ref,) = derivation.SourceImageSequence
        assert ref.ReferencedSOPInstanceUID == source.sop_instance_uid
        assert ref.ReferencedSOPClassUID == source.sop_class_uid
        if source.number_of_frames > 1:
            assert int(ref.ReferencedFrameNumber) == 4  # frame 3, 1-based
            (series,) = ds.ReferencedSeriesSequence
            assert series.ReferencedInstanceSequence[0].ReferencedSOPClassUID == (
                source.sop_class_uid
            )


def test_uids_are_derived_from_source_and_model_version(built, inputs):
    found, boxes = inputs
    sources = {k: v[0] for k, v in found.items()}
    datasets = {k: v[1] for k, v in found.items()}
    again = maps.build_maps({"I-us": CAM}, sources, datasets, boxes, MODEL, kinds=("seg",))
    first = {(i, k): ds.SOPInstanceUID for _, i, k, ds in built}
    assert again[0][3].SOPInstanceUID == first[("I-us", "seg")]
    other = dict(MODEL.__dict__, version="0.0+000000000000")
    moved = maps.build_maps(
        {"I-us": CAM}, sources, datasets, boxes, dicom_out.ModelInfo(**other), kinds=("seg",)
    )
    assert moved[0][3].SOPInstanceUID != first[("I-us", "seg")]
    # "pm" alone on a screen capture: the Segmentation instead, not nothing
    fallback = maps.build_maps({"I-us": CAM}, sources, datasets, boxes, MODEL, kinds=("pm",))
    assert [k for _, _, k, _ in fallback] == ["seg"]


def test_bad_box_or_kind_is_refused(inputs):
    with pytest.raises(ConfigError, match="not inside the 60x40 source frame"):
        maps.place_map(CAM, (40, 60), (0, 0, 61, 10))
    found, boxes = inputs
    with pytest.raises(ConfigError, match="map kinds"):
        maps.build_maps({}, {}, {}, {}, MODEL, kinds=("png",))


def test_sr_lists_the_map_objects_as_evidence(built, inputs, tmp_path):
    found, _ = inputs
    ids = ["I-mr", "I-us"]  # one study: the cine is another patient's
    sources = {k: found[k][0] for k in ids}
    images = pd.DataFrame(
        {"patient": "P-0000000001", "image_id": ids, "prob": [0.2, 0.9], "call": [0, 1]}
    )
    patients = pd.DataFrame(
        {"patient": ["P-0000000001"], "mean_prob": [0.55], "share": [0.5], "threshold": [0.3]}
    )
    patients["call"] = 1
    mine = [m for m in built if m[1] in ids]
    index = dicom_out.write_dicom_results(tmp_path, sources, images, patients, MODEL, maps=mine)
    assert sorted(index["kind"]) == ["pm", "seg", "seg", "sr"]
    for name in index["file"]:
        assert dciodvfy_errors(tmp_path / name) == [], name
    sr_file = tmp_path / index.loc[index["kind"] == "sr", "file"].iloc[0]
    sr = pydicom.dcmread(sr_file)
    listed = {
        item.ReferencedSOPInstanceUID
        for study in sr.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for item in series.ReferencedSOPSequence
    }
    assert set(index.loc[index["kind"] != "sr", "sop_instance_uid"]) <= listed
    assert {s.sop_instance_uid for s in sources.values()} <= listed
    assert "Imaging Measurement Report" in dsrdump(sr_file)


def test_a_frame_of_an_enhanced_multiframe_image_gets_its_own_geometry(tmp_path):
    """A real Enhanced CT (pydicom's eCT_Supplemental, geometry only in its functional groups):
    the map of frame 1 is a Parametric Map at that frame's plane position, referencing the
    frame; the synthetic cohort's Enhanced MR slices take the same path."""
    path = Path(pydicom.data.get_testdata_file("eCT_Supplemental.dcm"))
    source, ds = _source(path, "I-ect", frame=1)
    (pm,) = maps.build_maps({"I-ect": CAM}, {"I-ect": source}, {"I-ect": ds}, {}, MODEL)
    assert pm[2] == "pm"
    frame = pm[3].PerFrameFunctionalGroupsSequence[0]
    expected = ds.PerFrameFunctionalGroupsSequence[1].PlanePositionSequence[0]
    assert list(frame.PlanePositionSequence[0].ImagePositionPatient) == list(
        expected.ImagePositionPatient
    )
    assert pm[3].FrameOfReferenceUID == ds.FrameOfReferenceUID
    (ref,) = frame.DerivationImageSequence[0].SourceImageSequence
    assert int(ref.ReferencedFrameNumber) == 2 and ref.ReferencedSOPClassUID == ds.SOPClassUID
    pm[3].save_as(tmp_path / "pm.dcm", enforce_file_format=True)
    assert dciodvfy_errors(tmp_path / "pm.dcm") == []
