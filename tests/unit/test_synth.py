"""Synthetic DICOM cohorts: counts, headers, codecs, masks, determinism, atomic output, CLI."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)
from scipy import ndimage

from mskdx import cli
from mskdx.config import load as config_load
from mskdx.errors import ConfigError
from mskdx.synth import (
    plan_gout,
    plan_olt,
    synthesize,
    synthesize_gout,
    synthesize_olt,
)
from mskdx.synth.ultrasound import CROP_H, CROP_W, render_gout_file

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "config.yaml"
TEST_OVERLAY = ROOT / "config" / "test.yaml"
QUICK_OVERLAY = ROOT / "config" / "quick.yaml"
ALL_SYNTAXES = {ExplicitVRLittleEndian, RLELossless, JPEGLSLossless, JPEG2000Lossless}


def _synthetic(*overlays: Path) -> dict:
    return config_load.load_config(overlays)["synthetic"]


@pytest.fixture(scope="module")
def tiny() -> dict:
    return _synthetic(TEST_OVERLAY)


def _gout_args(cfg: dict) -> dict:
    g = cfg["gout"]
    return dict(
        patients_gout=g["patients_gout"],
        patients_control=g["patients_control"],
        images=g["images"],
        lesion_fraction=g["lesion_fraction"],
        width=g["width"],
        height=g["height"],
        difficulty=cfg["difficulty"],
        seed=cfg["seed"],
    )


def _olt_args(cfg: dict) -> dict:
    o = cfg["olt"]
    return dict(
        subjects_patient=o["subjects_patient"],
        subjects_healthy=o["subjects_healthy"],
        images=o["images"],
        size=o["size"],
        difficulty=cfg["difficulty"],
        seed=cfg["seed"],
    )


def _read_cohort(out: Path) -> dict:
    """Read every file of a cohort: datasets, decoded pixels, sha256 and path."""
    files = []
    for path in sorted((out / "dicom").rglob("*.dcm")):
        data = path.read_bytes()
        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array
        frames = int(ds.get("NumberOfFrames", 1))
        if frames == 1:
            pixels = pixels[None]
        files.append(
            dict(
                path=path, ds=ds, pixels=pixels, frames=frames, sha=hashlib.sha256(data).hexdigest()
            )
        )
    with np.load(out / "masks.npz") as npz:
        masks = {k: npz[k] for k in npz.files}
    labels = pd.read_csv(out / "labels.csv", dtype=str)
    return dict(files=files, masks=masks, labels=labels)


def _tree_bytes(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def gout_dir(tmp_path_factory, tiny) -> Path:
    out = tmp_path_factory.mktemp("gout") / "cohort"
    synthesize_gout(out, **_gout_args(tiny))
    return out


@pytest.fixture(scope="module")
def gout(gout_dir) -> dict:
    return _read_cohort(gout_dir)


@pytest.fixture(scope="module")
def olt_dir(tmp_path_factory, tiny) -> Path:
    out = tmp_path_factory.mktemp("olt") / "cohort"
    synthesize("olt", out, tiny)
    return out


@pytest.fixture(scope="module")
def olt(olt_dir) -> dict:
    return _read_cohort(olt_dir)


# ------------------------------------------------------------------------------------------
# Plans (no files): paper, quick and tiny scales
# ------------------------------------------------------------------------------------------


def test_paper_preset_plans_match_the_papers():
    cfg = _synthetic()
    g = plan_gout(
        patients_gout=cfg["gout"]["patients_gout"],
        patients_control=cfg["gout"]["patients_control"],
        images=cfg["gout"]["images"],
        lesion_fraction=cfg["gout"]["lesion_fraction"],
        seed=cfg["seed"],
    )
    assert g.images == 2401
    assert len(g.patients) == 260
    assert (g.count("gout"), g.count("control")) == (149, 111)
    per_patient = [p.images for p in g.patients]
    assert min(per_patient) >= 1 and 9 <= np.mean(per_patient) <= 10
    gout_images = sum(p.images for p in g.patients if p.diagnosis == "gout")
    lesion_images = sum(p.lesion_images for p in g.patients)
    assert abs(lesion_images / gout_images - 0.62) < 0.04
    assert all(p.lesion_images >= 1 for p in g.patients if p.diagnosis == "gout")
    assert all(p.lesion_images == 0 for p in g.patients if p.diagnosis == "control")
    assert len({p.patient_id for p in g.patients}) == 260

    o = plan_olt(
        subjects_patient=cfg["olt"]["subjects_patient"],
        subjects_healthy=cfg["olt"]["subjects_healthy"],
        images=cfg["olt"]["images"],
        seed=cfg["seed"],
    )
    assert len(o.subjects) == 389
    assert sum(s.diagnosis == "patient" for s in o.subjects) == 87
    assert (o.count("T1", "patient"), o.count("T1", "healthy")) == (120, 475)
    assert (o.count("T2", "patient"), o.count("T2", "healthy")) == (127, 538)
    assert o.images == 1260
    assert all(s.images("T1") >= 1 and s.images("T2") >= 1 for s in o.subjects)


@pytest.mark.parametrize(
    "overlays", [(), (QUICK_OVERLAY,), (TEST_OVERLAY,)], ids=["paper", "quick", "tiny"]
)
def test_every_scale_has_all_syntaxes_multiframe_and_both_classes(overlays):
    cfg = _synthetic(*overlays)
    g = plan_gout(
        **{k: v for k, v in _gout_args(cfg).items() if k not in ("width", "height", "difficulty")}
    )
    files = [f for p in g.patients for f in p.files]
    assert g.images == cfg["gout"]["images"]
    assert {str(f.transfer_syntax) for f in files} == {str(s) for s in ALL_SYNTAXES}
    assert any(f.frames > 1 for f in files)
    assert {"RGB", "YBR_FULL", "YBR_FULL_422"} <= {f.photometric for f in files}
    assert any(f.secondary_capture for f in files)
    assert g.count("gout") == cfg["gout"]["patients_gout"] and g.count("control") >= 1

    o = plan_olt(**{k: v for k, v in _olt_args(cfg).items() if k not in ("size", "difficulty")})
    ofiles = [f for s in o.subjects for f in s.files]
    for seq, counts in cfg["olt"]["images"].items():
        for diagnosis, n in counts.items():
            assert o.count(seq, diagnosis) == n
    assert {str(f.transfer_syntax) for f in ofiles} == {str(s) for s in ALL_SYNTAXES}
    assert any(f.frames > 1 for f in ofiles)
    assert {"u12", "u12_scaled", "s12", "u16", "s16"} == {f.representation for f in ofiles}


def test_plans_are_seeded():
    a = plan_gout(patients_gout=5, patients_control=5, images=40, seed=3)
    assert a == plan_gout(patients_gout=5, patients_control=5, images=40, seed=3)
    assert a != plan_gout(patients_gout=5, patients_control=5, images=40, seed=4)


# ------------------------------------------------------------------------------------------
# Gout cohort (tiny scale)
# ------------------------------------------------------------------------------------------


def test_gout_files_decode_with_realistic_headers(gout, tiny):
    g = tiny["gout"]
    assert sum(f["frames"] for f in gout["files"]) == g["images"]
    for f in gout["files"]:
        ds = f["ds"]
        full = (f["frames"], g["height"], g["width"], 3)
        small = (f["frames"], round(g["height"] * 0.625), round(g["width"] * 0.625), 3)
        dual = (f["frames"], g["height"], 2 * g["width"], 3)  # two views side by side
        # the smaller device: 640x480 from 1024x768
        assert f["pixels"].shape in (full, small, dual)
        assert f["pixels"].dtype == np.uint8
        assert ds.Modality in ("US", "OT")
        for key in (
            "PatientName",
            "PatientID",
            "PatientBirthDate",
            "PatientSex",
            "AccessionNumber",
            "InstitutionName",
            "InstitutionAddress",
            "ReferringPhysicianName",
            "PerformingPhysicianName",
            "OperatorsName",
            "StudyDate",
            "SeriesDate",
            "AcquisitionDate",
            "ContentDate",
            "StudyTime",
            "StudyID",
            "StationName",
            "StudyInstanceUID",
            "SeriesInstanceUID",
            "SOPInstanceUID",
            "Manufacturer",
            "InstanceNumber",
            "SeriesDescription",
        ):
            assert str(ds.get(key, "")).strip(), key
        assert re.fullmatch(r"1st MTPJ (dorsal|medial|plantar)", ds.SeriesDescription)
        assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
        assert ds.BurnedInAnnotation == "YES"
    assert len({f["ds"].SOPInstanceUID for f in gout["files"]}) == len(gout["files"])


def test_gout_mix_of_syntaxes_photometrics_sop_classes(gout):
    syntaxes = {f["ds"].file_meta.TransferSyntaxUID for f in gout["files"]}
    assert syntaxes == ALL_SYNTAXES
    photometric = {f["ds"].PhotometricInterpretation for f in gout["files"]}
    assert {"RGB", "YBR_FULL", "YBR_FULL_422"} <= photometric
    classes = {f["ds"].SOPClassUID.name for f in gout["files"]}
    assert {
        "Ultrasound Image Storage",
        "Ultrasound Multi-frame Image Storage",
        "Secondary Capture Image Storage",
    } <= classes
    multi = [f for f in gout["files"] if f["frames"] > 1]
    assert multi and all(
        f["ds"].SOPClassUID.name.endswith("Multi-frame Image Storage") for f in multi
    )
    assert any(f["ds"].Modality == "OT" for f in gout["files"])


def test_gout_compressed_files_are_lossless(gout, tiny):
    # Re-render the compressed RGB files and compare with what the codecs give back.
    args = _gout_args(tiny)
    plan = plan_gout(
        **{k: v for k, v in args.items() if k not in ("width", "height", "difficulty")}
    )
    by_uid = {f["ds"].SOPInstanceUID: f for f in gout["files"]}
    checked = set()
    index = 0
    for patient in plan.patients:
        for gf in patient.files:
            if gf.transfer_syntax != ExplicitVRLittleEndian and gf.photometric == "RGB":
                frames, _, _ = render_gout_file(
                    gf,
                    patient,
                    width=args["width"],
                    height=args["height"],
                    difficulty=args["difficulty"],
                    seed=args["seed"],
                    file_index=index,
                )
                match = [f for f in by_uid.values() if np.array_equal(f["pixels"], frames)]
                assert len(match) == 1
                assert match[0]["ds"].file_meta.TransferSyntaxUID == gf.transfer_syntax
                checked.add(gf.transfer_syntax)
            index += 1
    assert checked == {str(s) for s in ALL_SYNTAXES - {ExplicitVRLittleEndian}}


def test_gout_phi_is_consistent_per_patient(gout):
    seen: dict[str, tuple] = {}
    for f in gout["files"]:
        ds = f["ds"]
        assert re.fullmatch(r"MRN\d{8}", ds.PatientID)
        assert re.fullmatch(r"[A-Z]+\^[A-Z]+", str(ds.PatientName))
        assert re.fullmatch(r"\d{8}", ds.PatientBirthDate)
        who = (
            str(ds.PatientName),
            ds.PatientBirthDate,
            ds.PatientSex,
            ds.AccessionNumber,
            ds.StudyInstanceUID,
            ds.StudyDate,
        )
        assert seen.setdefault(ds.PatientID, who) == who
    assert len({w[0] for w in seen.values()}) == len(seen)
    assert len({w[4] for w in seen.values()}) == len(seen)


def test_gout_labels_match_headers(gout, tiny):
    labels = gout["labels"]
    assert list(labels.columns) == ["patient_id", "diagnosis"]
    assert list(labels.patient_id) == sorted(labels.patient_id)
    assert labels.patient_id.is_unique
    assert set(labels.patient_id) == {f["ds"].PatientID for f in gout["files"]}
    counts = labels.diagnosis.value_counts().to_dict()
    assert counts == {
        "gout": tiny["gout"]["patients_gout"],
        "control": tiny["gout"]["patients_control"],
    }


def _image_sheet_rows(out: Path, cohort: dict, key: str) -> list[tuple]:
    """What the image sheet must hold: per frame its key, frame (blank if single-frame) and
    label from its mask."""
    rows = []
    for f in cohort["files"]:
        name = (
            str(f["ds"].SOPInstanceUID)
            if key == "uid"
            else f["path"].relative_to(out / "dicom").as_posix()
        )
        for k in range(f["frames"]):
            lesion = cohort["masks"][f"{f['sha']}_{k}"].any()
            rows.append(
                (name, str(k + 1) if f["frames"] > 1 else "", "abnormal" if lesion else "normal")
            )
    return sorted(rows)


def test_gout_image_sheet_is_keyed_by_uid_and_labelled_by_the_masks(gout_dir, gout):
    sheet = pd.read_csv(gout_dir / "image_labels.csv", dtype=str, keep_default_na=False)
    assert list(sheet.columns) == ["SOPInstanceUID", "frame", "image_label", "DCs", "tophus",
                                   "aggregates", "erosion"]  # fmt: skip
    got = sorted(
        sheet[["SOPInstanceUID", "frame", "image_label"]].itertuples(index=False, name=None)
    )
    assert got == _image_sheet_rows(gout_dir, gout, "uid")
    findings = sheet[["DCs", "tophus", "aggregates", "erosion"]].astype(int).sum(axis=1)
    assert ((findings > 0) == (sheet.image_label == "abnormal")).all()
    # gout patients' images without a lesion are normal images: the sheet has both kinds
    of = {str(f["ds"].SOPInstanceUID): f["ds"].PatientID for f in gout["files"]}
    diagnosis = gout["labels"].set_index("patient_id").diagnosis
    patient = sheet.SOPInstanceUID.map(of).map(diagnosis)
    assert set(sheet.image_label[patient == "gout"]) == {"abnormal", "normal"}
    assert set(sheet.image_label[patient == "control"]) == {"normal"}


def test_olt_image_sheet_is_keyed_by_relative_path(olt_dir, olt):
    sheet = pd.read_csv(olt_dir / "image_labels.csv", dtype=str, keep_default_na=False)
    assert list(sheet.columns) == ["path", "frame", "image_label"]
    assert sorted(sheet.itertuples(index=False, name=None)) == _image_sheet_rows(
        olt_dir, olt, "path"
    )


def _check_mask_keys(cohort: dict) -> None:
    expected = {f"{f['sha']}_{k}" for f in cohort["files"] for k in range(f["frames"])}
    assert set(cohort["masks"]) == expected
    for f in cohort["files"]:
        rows, cols = f["ds"].Rows, f["ds"].Columns
        for k in range(f["frames"]):
            mask = cohort["masks"][f"{f['sha']}_{k}"]
            assert mask.dtype == np.uint8 and mask.shape == (rows, cols)
            assert set(np.unique(mask)) <= {0, 1}


def test_gout_mask_keys_are_file_hashes_and_frames(gout):
    _check_mask_keys(gout)


def _bmode_box(rgb: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box (y0, y1, x0, x1) of the largest non-black connected region."""
    lit = rgb.max(axis=-1) > 0
    labelled, n = ndimage.label(lit)
    sizes = ndimage.sum_labels(lit, labelled, index=np.arange(1, n + 1))
    ys, xs = np.nonzero(labelled == 1 + int(np.argmax(sizes)))
    return int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1


def test_gout_lesions_only_in_gout_inside_the_bmode_crop(gout, tiny):
    diagnosis = dict(zip(gout["labels"].patient_id, gout["labels"].diagnosis, strict=True))
    lesion_patients = set()
    for f in gout["files"]:
        pid = f["ds"].PatientID
        for k in range(f["frames"]):
            mask = gout["masks"][f"{f['sha']}_{k}"].astype(bool)
            if diagnosis[pid] == "control":
                assert not mask.any()
                continue
            if not mask.any():
                continue
            lesion_patients.add(pid)
            rgb = f["pixels"][k]
            assert (rgb.max(axis=-1)[mask] > 0).all()  # lesions are drawn, not in the black
            z = rgb.shape[0] / tiny["gout"]["height"]  # the smaller device's screen: 0.625
            views = round(rgb.shape[1] / (z * tiny["gout"]["width"]))  # 2: a dual view
            panes = np.split(np.arange(rgb.shape[1]), views)
            for pane in panes:  # each view shows the scene with its lesions
                y0, y1, x0, x1 = _bmode_box(rgb[:, pane])
                w, h = round(CROP_W * z), round(CROP_H * z)
                assert x1 - x0 >= w and y1 - y0 >= h
                cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
                ys, xs = np.nonzero(mask[:, pane])
                assert ys.min() >= cy - h // 2 - 1 and ys.max() < cy + h // 2 + 1
                assert xs.min() >= cx - w // 2 - 1 and xs.max() < cx + w // 2 + 1
                assert ys.max() < cy + h // 2 - 20 * z  # upper-middle part of the crop
    assert lesion_patients == {p for p, d in diagnosis.items() if d == "gout"}


def _tissue_and_flow(ds) -> tuple[list, list]:
    regions = ds.get("SequenceOfUltrasoundRegions") or []
    return (
        [r for r in regions if r.RegionDataType == 1],
        [r for r in regions if r.RegionDataType == 2],
    )


def test_gout_bmode_region_header_matches_pixels(gout):
    for f in gout["files"]:
        ds = f["ds"]
        tissue, flow = _tissue_and_flow(ds)
        pixels = f["pixels"][0]
        if not tissue or tissue[0].RegionLocationMaxX1 >= pixels.shape[1]:
            continue  # no record, or the stale record of the smaller device (tested below)
        panes = np.split(np.arange(pixels.shape[1]), len(tissue))  # one pane per view
        for region, pane in zip(tissue, panes, strict=True):
            y0, y1, x0, x1 = _bmode_box(pixels[:, pane])
            x0, x1 = x0 + pane[0], x1 + pane[0]
            tol = 2  # resized screen, curvilinear top, sector sides: edges within 2 px
            assert abs(region.RegionLocationMinX0 - x0) <= tol
            assert abs(region.RegionLocationMinY0 - y0) <= tol
            assert abs(region.RegionLocationMaxX1 - (x1 - 1)) <= tol
            assert abs(region.RegionLocationMaxY1 - (y1 - 1)) <= tol
        for region in flow:  # a colour-flow box inside the first view, coloured pixels in it
            box = pixels[
                region.RegionLocationMinY0 : region.RegionLocationMaxY1 + 1,
                region.RegionLocationMinX0 : region.RegionLocationMaxX1 + 1,
            ].astype(int)
            assert region.RegionLocationMinX0 > tissue[0].RegionLocationMinX0
            assert region.RegionLocationMaxY1 < tissue[0].RegionLocationMaxY1
            assert (np.abs(box[..., 0] - box[..., 2]) > 100).mean() > 0.05


def test_gout_devices_vary_size_region_record_and_overlays(gout, tiny):
    """Every capture variant the extraction must handle is in the tiny cohort: 640x480, region
    record present (inside the frame), absent, stale (outside the frame), header/footer bars,
    a dual view (two tissue regions), a colour-flow box in the field, a sector fan."""
    g = tiny["gout"]
    kinds = set()
    for f in gout["files"]:
        ds, pixels = f["ds"], f["pixels"]
        rows, cols = pixels.shape[1:3]
        tissue, flow = _tissue_and_flow(ds)
        if ds.Modality == "OT":
            assert "SequenceOfUltrasoundRegions" not in ds  # secondary captures: no record
            continue
        grey = pixels[0, ..., 0].astype(float)
        if ds.TransducerData == "P42":  # sector: the field's top corners are black
            y0, y1, x0, x1 = _bmode_box(pixels[0])
            assert grey[y0 + 2, x0 + 2] == 0 and grey[y0 + 2, x1 - 3] == 0
            assert grey[y0 + 2, (x0 + x1) // 2] > 0
            kinds.add("sector")
        if not tissue:
            kinds.add("absent")
            continue
        r = tissue[0]
        inside = r.RegionLocationMaxX1 < cols and r.RegionLocationMaxY1 < rows
        kinds.add("present" if inside else "stale")
        if inside:  # the record frames the field: speckle inside, black just outside
            for r in tissue:
                field = grey[
                    r.RegionLocationMinY0 : r.RegionLocationMaxY1,
                    r.RegionLocationMinX0 : r.RegionLocationMaxX1,
                ]
                assert field.std() > 10
        if len(tissue) == 2:
            assert cols == 2 * g["width"]
            kinds.add("dual view")
        if flow:
            kinds.add("colour flow")
        if rows < g["height"]:
            kinds.add("small")
        if (pixels[0, :20, :, 0] > 40).mean() > 0.5:
            kinds.add("header bar")
    assert kinds == {
        "present",
        "absent",
        "stale",
        "small",
        "header bar",
        "dual view",
        "colour flow",
        "sector",
    }


def test_gout_is_deterministic_and_seeded(gout_dir, tiny, tmp_path):
    again = tmp_path / "again"
    synthesize_gout(again, **_gout_args(tiny))
    assert _tree_bytes(again) == _tree_bytes(gout_dir)

    small = dict(patients_gout=1, patients_control=1, images=3, difficulty=0.5)
    synthesize_gout(tmp_path / "s1", **small, seed=1)
    synthesize_gout(tmp_path / "s2", **small, seed=2)
    one, two = _tree_bytes(tmp_path / "s1"), _tree_bytes(tmp_path / "s2")
    dicoms_one = {v for k, v in one.items() if k.endswith(".dcm")}
    dicoms_two = {v for k, v in two.items() if k.endswith(".dcm")}
    assert dicoms_one.isdisjoint(dicoms_two)
    assert one["labels.csv"] != two["labels.csv"]


# ------------------------------------------------------------------------------------------
# OLT cohort (tiny scale)
# ------------------------------------------------------------------------------------------


def _sequence(ds, patterns: dict[str, str]) -> str:
    text = f"{ds.SeriesDescription} {ds.ProtocolName}"
    hits = [seq for seq, pattern in patterns.items() if re.search(pattern, text)]
    assert len(hits) == 1, text
    return hits[0]


def test_olt_counts_per_sequence_and_class(olt, tiny):
    patterns = config_load.load_config()["studies"]["olt"]["sequences"]
    diagnosis = dict(zip(olt["labels"].patient_id, olt["labels"].diagnosis, strict=True))
    counts: dict[tuple[str, str], int] = {}
    per_subject: dict[str, set] = {}
    for f in olt["files"]:
        seq = _sequence(f["ds"], patterns)
        key = (seq, diagnosis[f["ds"].PatientID])
        counts[key] = counts.get(key, 0) + f["frames"]
        per_subject.setdefault(f["ds"].PatientID, set()).add(seq)
    expected = {(s, d): n for s, c in tiny["olt"]["images"].items() for d, n in c.items()}
    assert counts == expected
    assert all(v == {"T1", "T2"} for v in per_subject.values())
    assert len(per_subject) == tiny["olt"]["subjects_patient"] + tiny["olt"]["subjects_healthy"]


def test_olt_headers_pixels_and_rescale(olt, tiny):
    size = tiny["olt"]["size"]
    seen = set()
    for f in olt["files"]:
        ds = f["ds"]
        assert ds.Modality == "MR" and ds.PhotometricInterpretation == "MONOCHROME2"
        assert f["pixels"].shape == (f["frames"], size, size)
        assert ds.BitsStored in (12, 16) and ds.BitsAllocated == 16
        assert "RescaleSlope" in ds and "RescaleIntercept" in ds
        assert "WindowCenter" in ds and "WindowWidth" in ds
        assert re.search(r"(?i)(cor|sag)", ds.SeriesDescription)
        for key in (
            "PatientName",
            "PatientID",
            "PatientBirthDate",
            "AccessionNumber",
            "InstitutionName",
            "ReferringPhysicianName",
            "StudyDate",
            "StationName",
        ):
            assert str(ds.get(key, "")).strip(), key
        values = apply_modality_lut(f["pixels"], ds)
        # Every encoding decodes to the same MR intensity scale: air ~0, tissue up to a few 1000.
        assert values.min() >= -50 and 200 < np.percentile(values, 99.5) < 4500
        assert np.percentile(values, 5) < 100
        seen.add(
            (
                int(ds.PixelRepresentation),
                int(ds.BitsStored),
                float(ds.RescaleSlope),
                float(ds.RescaleIntercept),
            )
        )
        if f["frames"] > 1:
            assert ds.SOPClassUID.name == "Enhanced MR Image Storage"
            assert len(ds.PerFrameFunctionalGroupsSequence) == f["frames"]
        else:
            assert ds.SOPClassUID.name == "MR Image Storage"
            assert len(ds.PixelSpacing) == 2
    assert any(pr == 1 for pr, *_ in seen)
    assert any(slope != 1 or intercept != 0 for *_, slope, intercept in seen)
    assert {bits for _, bits, *_ in seen} == {12, 16}
    assert {f["ds"].file_meta.TransferSyntaxUID for f in olt["files"]} == ALL_SYNTAXES
    assert any(f["frames"] > 1 for f in olt["files"])


def test_olt_masks_and_lesion_signal(olt):
    _check_mask_keys(olt)
    diagnosis = dict(zip(olt["labels"].patient_id, olt["labels"].diagnosis, strict=True))
    patterns = {"T1": "(?i)t1", "T2": "(?i)t2"}
    contrast = {"T1": [], "T2": []}
    for f in olt["files"]:
        values = apply_modality_lut(f["pixels"], f["ds"]).reshape(f["pixels"].shape)
        for k in range(f["frames"]):
            mask = olt["masks"][f"{f['sha']}_{k}"].astype(bool)
            if diagnosis[f["ds"].PatientID] == "healthy":
                assert not mask.any()
                continue
            assert mask.sum() >= 10  # every patient slice shows the lesion
            ring = ndimage.binary_dilation(mask, iterations=6) & ~mask
            seq = _sequence(f["ds"], patterns)
            contrast[seq].append(values[k][mask].mean() / values[k][ring].mean())
    assert np.mean(contrast["T1"]) < 0.9  # low signal on T1
    assert np.mean(contrast["T2"]) > 1.1  # fluid-bright on T2


def test_olt_labels(olt, tiny):
    labels = olt["labels"]
    assert list(labels.patient_id) == sorted(labels.patient_id)
    assert set(labels.patient_id) == {f["ds"].PatientID for f in olt["files"]}
    assert labels.diagnosis.value_counts().to_dict() == {
        "patient": tiny["olt"]["subjects_patient"],
        "healthy": tiny["olt"]["subjects_healthy"],
    }


def test_cli_merges_overlays_and_matches_the_api(olt_dir, tmp_path):
    out = tmp_path / "cli"
    rc = cli.main(
        [
            "synth",
            "--study",
            "olt",
            "--out",
            str(out),
            "--configfile",
            str(CONFIG),
            "--configfile",
            str(TEST_OVERLAY),
        ]
    )
    assert rc == 0
    assert _tree_bytes(out) == _tree_bytes(olt_dir)


def test_cli_reads_the_workflow_config_then_an_overlay(tmp_path, monkeypatch):
    """As Snakemake: the workflow's config/config.yaml first, then the overlay, wherever the
    command runs; a missing overlay is a short error, not a traceback."""
    (tmp_path / "tiny.yaml").write_text(
        "synthetic:\n  seed: 5\n  difficulty: 0.2\n  olt:\n"
        "    subjects_patient: 1\n    subjects_healthy: 1\n    size: 64\n"
        "    images: {T1: {patient: 1, healthy: 1}, T2: {patient: 1, healthy: 1}}\n"
    )
    monkeypatch.chdir(tmp_path)
    assert cli.main(["synth", "--study", "olt", "--out", "out", "--configfile", "tiny.yaml"]) == 0
    assert len(list((tmp_path / "out" / "dicom").rglob("*.dcm"))) == 4
    assert cli.main(["synth", "--study", "olt", "--out", "x", "--configfile", "nope.yaml"]) == 2


def test_deep_merge_is_recursive():
    base = {"a": {"b": 1, "c": {"d": 2, "e": 3}}, "f": [1, 2]}
    merged = config_load.deep_merge(base, {"a": {"c": {"d": 9}}, "f": [3]})
    assert merged == {"a": {"b": 1, "c": {"d": 9, "e": 3}}, "f": [3]}
    assert base["a"]["c"]["d"] == 2


# ------------------------------------------------------------------------------------------
# Atomic output and errors
# ------------------------------------------------------------------------------------------


def test_killed_run_leaves_no_cohort_and_rerun_replaces(tmp_path, monkeypatch):
    from mskdx.synth import mri

    images = {"T1": {"patient": 2, "healthy": 1}, "T2": {"patient": 1, "healthy": 1}}
    args = dict(subjects_patient=1, subjects_healthy=1, images=images, size=64)
    out = tmp_path / "cohort"
    calls = {"n": 0}
    real = mri.render_olt_file

    def dying(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(mri, "render_olt_file", dying)
    with pytest.raises(KeyboardInterrupt):
        synthesize_olt(out, **args)
    assert not (out / "labels.csv").exists() and not (out / "masks.npz").exists()
    assert not (out / "image_labels.csv").exists()
    assert not any(tmp_path.glob(".cohort.synth-*"))
    monkeypatch.undo()

    synthesize_olt(out, **args, seed=1)
    first = _tree_bytes(out)
    synthesize_olt(out, **args, seed=2)
    second = _tree_bytes(out)
    assert set(first).isdisjoint({k for k in second if k.startswith("dicom/")})
    assert sum(k.endswith(".dcm") for k in second) == sum(k.endswith(".dcm") for k in first)
    assert [p.name for p in tmp_path.iterdir()] == ["cohort"]


def test_config_errors_name_the_key(tmp_path, tiny):
    with pytest.raises(ConfigError, match="study"):
        synthesize("knee", tmp_path / "x", tiny)
    broken = {**tiny, "gout": {k: v for k, v in tiny["gout"].items() if k != "images"}}
    with pytest.raises(ConfigError, match="images"):
        synthesize("gout", tmp_path / "x", broken)
    with pytest.raises(ConfigError, match="width x height"):
        synthesize_gout(
            tmp_path / "x", patients_gout=1, patients_control=1, images=2, width=640, height=480
        )
    with pytest.raises(ConfigError, match="T1.patient"):
        plan_olt(
            subjects_patient=3,
            subjects_healthy=1,
            images={"T1": {"patient": 2, "healthy": 1}, "T2": {"patient": 3, "healthy": 1}},
        )
    with pytest.raises(ConfigError, match="images"):
        plan_gout(patients_gout=3, patients_control=3, images=5)
    with pytest.raises(ConfigError, match="synovitis"):
        synthesize_gout(
            tmp_path / "x", patients_gout=1, patients_control=1, images=2, synovitis={"gout": 1}
        )
    with pytest.raises(ConfigError, match="synovitis.control"):
        synthesize_gout(
            tmp_path / "x",
            patients_gout=1,
            patients_control=1,
            images=2,
            synovitis={"gout": 0.5, "control": 1.5},
        )
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("p_gout, p_control", [(1.0, 0.0), (0.0, 1.0)])
def test_gout_synovitis_share_is_set_by_the_config(p_gout, p_control):
    plan = plan_gout(patients_gout=2, patients_control=2, images=8, seed=5)
    shares = {"gout": p_gout, "control": p_control}
    for i, patient in enumerate(plan.patients):
        _, _, scene = render_gout_file(
            patient.files[0], patient, seed=5, file_index=i, synovitis=shares
        )
        assert scene.synovitis is (shares[patient.diagnosis] == 1.0)
        assert (scene.recess >= 16) is scene.synovitis  # a distended recess, 16-34 px deep
