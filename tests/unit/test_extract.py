"""Extraction on a tiny synthetic cohort: crops hold every lesion, no PHI, bad files refused."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from study_specs import GOUT, OLT

from mskdx.errors import ConfigError, DicomError, LabelError, MskdxError
from mskdx.ingest import deid
from mskdx.ingest.extract import MAX_DECODE_CHUNK, StudySpec, decode_chunksize, extract_study
from mskdx.io import read_table
from mskdx.synth import synthesize_gout, synthesize_olt


@pytest.fixture(scope="module")
def gout_cohort(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gout") / "cohort"
    synthesize_gout(out, patients_gout=5, patients_control=4, images=30, seed=3)
    return out


@pytest.fixture(scope="module")
def olt_cohort(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("olt") / "cohort"
    synthesize_olt(
        out,
        subjects_patient=4,
        subjects_healthy=4,
        images={"T1": {"patient": 6, "healthy": 6}, "T2": {"patient": 6, "healthy": 6}},
        size=128,
        seed=3,
    )
    return out


def outputs(base: Path) -> dict[str, Path]:
    return {
        name: base / f"{name}.{ext}"
        for name, ext in (
            ("images", "npy"),
            ("masks", "npy"),
            ("manifest", "csv"),
            ("refused", "csv"),
        )
    }


def run(
    cohort: Path,
    spec: StudySpec,
    out: Path,
    on_error="stop",
    truth=True,
    threads=1,
    dicom=None,
    **kwargs,
):
    return extract_study(
        dicom or cohort / "dicom",
        cohort / "labels.csv",
        spec=spec,
        masks_path=cohort / "masks.npz" if truth else None,
        on_error=on_error,
        key_env="MSKDX_TEST_KEY",
        threads=threads,
        **outputs(out),
        **kwargs,
    )


def test_gout_crops_contain_every_lesion(gout_cohort, tmp_path):
    table = run(gout_cohort, GOUT, tmp_path, threads=2)
    images = np.load(tmp_path / "images.npy")
    assert images.shape == (30, 320, 700) and images.dtype == np.uint8
    with np.load(gout_cohort / "masks.npz") as truth:
        for row in table.itertuples():
            full = truth[f"{row.checksum}_{row.frame}"]
            inside = full[row.crop_y0 : row.crop_y1, row.crop_x0 : row.crop_x1].sum()
            assert inside == full.sum(), f"crop of image {row.image_id} cuts its lesion"
    assert table.lesion.sum() > 0 and (~table.lesion.astype(bool) & (table.label == 1)).sum() > 0
    assert set(table.series) <= {"dorsal", "medial", "plantar"}
    # a multi-frame file gives one row per frame
    assert (table.frame > 0).any()


def test_manifest_has_no_phi_and_is_stable(gout_cohort, tmp_path):
    a = run(gout_cohort, GOUT, tmp_path / "a")
    b = run(gout_cohort, GOUT, tmp_path / "b", threads=2)
    for name in ("images.npy", "manifest.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    labels = pd.read_csv(gout_cohort / "labels.csv", dtype=str)
    text = (tmp_path / "a/manifest.csv").read_text()
    for pid in labels.patient_id:
        assert pid not in text
    assert a.patient.str.fullmatch(r"P-[0-9a-f]{10}").all()
    assert b.label.groupby(b.patient).nunique().max() == 1


def test_olt_sequences_and_resize(olt_cohort, tmp_path):
    table = run(olt_cohort, OLT, tmp_path)
    assert np.load(tmp_path / "images.npy").shape == (len(table), 64, 64)
    counts = table.groupby(["series", "label"]).size().to_dict()
    assert counts == {("T1", 0): 6, ("T1", 1): 6, ("T2", 0): 6, ("T2", 1): 6}
    assert table[table.label == 1].lesion.all() and not table[table.label == 0].lesion.any()


def with_extra_files(cohort: Path, dest: Path, extra: dict[str, bytes]) -> Path:
    shutil.copytree(cohort / "dicom", dest)
    for name, data in extra.items():
        (dest / name).write_bytes(data)
    return dest


def test_bad_files_stop_the_run_listing_each_by_key_and_leave_nothing(gout_cohort, tmp_path):
    dicom = with_extra_files(
        gout_cohort, tmp_path / "in", {"empty.dcm": b"", "notes.dcm": b"hello"}
    )
    private = tmp_path / "private/gout/file_map.csv"
    with pytest.raises(DicomError) as err:
        run(gout_cohort, GOUT, tmp_path / "out", dicom=dicom, private_map=private)
    message = str(err.value)
    keys = [f"F-{hashlib.sha256(n.encode()).hexdigest()[:12]}" for n in ("empty.dcm", "notes.dcm")]
    assert all(k in message for k in keys)
    # the message goes to logs under results/: keys only, no file names (folders hold IDs)
    assert "empty.dcm" not in message.split("\n", 1)[1] and "notes.dcm" not in message
    # the way back: the terminal text and the private map give the real paths
    assert str(dicom / "empty.dcm") in err.value.terminal and str(private) in err.value.terminal
    mapped = pd.read_csv(private, dtype=str).set_index("key")
    assert mapped.loc[keys[1], "path"] == str(dicom / "notes.dcm")
    assert set(mapped.kind) == {"refused file"}
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_skip_policy_tables_refused_files(gout_cohort, tmp_path):
    dicom = with_extra_files(
        gout_cohort, tmp_path / "in", {"empty.dcm": b"", "notes.dcm": b"hello"}
    )
    table = run(gout_cohort, GOUT, tmp_path / "out", on_error="skip", dicom=dicom)
    refused = read_table(tmp_path / "out/refused.csv")
    assert len(refused) == 2 and len(table) == 30
    assert refused.file_key.str.fullmatch(r"F-[0-9a-f]{12}").all()
    assert "notes.dcm" not in (tmp_path / "out/refused.csv").read_text()


def test_patient_without_label_is_refused_and_mapped_privately(gout_cohort, tmp_path):
    full = pd.read_csv(gout_cohort / "labels.csv", dtype=str)
    sheet = full.iloc[1:]
    cohort = tmp_path / "cohort"
    shutil.copytree(gout_cohort, cohort)
    sheet.to_csv(cohort / "labels.csv", index=False)
    private = tmp_path / "private/gout/file_map.csv"
    with pytest.raises(LabelError) as err:
        run(cohort, GOUT, tmp_path / "out", private_map=private)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    missing = full.patient_id.iloc[0]
    assert missing not in str(err.value)
    pseudonym = deid.patient_pseudonym(missing, deid.DEMO_KEY)
    mapped = pd.read_csv(private, dtype=str)
    assert mapped[["key", "kind", "patient_id"]].values.tolist() == [
        [pseudonym, "unlabelled patient", missing]
    ]
    assert mapped.path[0].startswith(str(cohort / "dicom")) and pseudonym in err.value.terminal


def test_private_map_is_rewritten_and_outside_the_tables(gout_cohort, tmp_path):
    dicom = with_extra_files(gout_cohort, tmp_path / "in", {"notes.dcm": b"hello"})
    private = tmp_path / "private/file_map.csv"
    run(gout_cohort, GOUT, tmp_path / "out", on_error="skip", dicom=dicom, private_map=private)
    assert len(pd.read_csv(private)) == 1
    assert str(dicom) not in (tmp_path / "out/refused.csv").read_text()
    (dicom / "notes.dcm").unlink()
    run(gout_cohort, GOUT, tmp_path / "out", dicom=dicom, private_map=private)
    assert len(pd.read_csv(private)) == 0  # no stale entries from the earlier run


def test_desktop_files_do_not_stop_a_default_run(gout_cohort, tmp_path):
    from dicom_factory import bundled

    dicom = with_extra_files(
        gout_cohort,
        tmp_path / "in",
        {".DS_Store": b"\0\0\0\1Bud1" + bytes(64), "Thumbs.db": b"\xd0\xcf\x11\xe0" + bytes(64)},
    )
    (dicom / "DICOMDIR").write_bytes(bundled("DICOMDIR").read_bytes())
    table = run(gout_cohort, GOUT, tmp_path / "out", dicom=dicom)
    assert len(table) == 30 and len(read_table(tmp_path / "out/refused.csv")) == 0


def test_extraction_refuses_a_key_other_than_the_scheduled_one(gout_cohort, tmp_path, monkeypatch):
    from mskdx.ingest.inputs import key_fingerprint

    monkeypatch.setenv("MSKDX_TEST_KEY", "the key now")
    with pytest.raises(ConfigError, match="MSKDX_TEST_KEY"):
        run(gout_cohort, GOUT, tmp_path / "out", key_fingerprint=key_fingerprint("MSKDX_OTHER"))
    assert not (tmp_path / "out").exists()


def test_empty_input_folder(gout_cohort, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DicomError, match="no DICOM"):
        run(gout_cohort, GOUT, tmp_path / "out", dicom=tmp_path / "empty")


def test_found_region_leaves_out_text_rulers_and_bars(gout_cohort):
    """The scanner's own region record (SequenceOfUltrasoundRegions) is the truth here."""
    import pydicom

    from mskdx.ingest import dicom
    from mskdx.ingest.preprocess import find_bmode_region

    checked, outside = 0, []
    for path in sorted((gout_cohort / "dicom").rglob("*.dcm")):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if "SequenceOfUltrasoundRegions" not in ds:
            continue
        r = ds.SequenceOfUltrasoundRegions[0]  # the first (of a dual view: left) tissue region
        if r.RegionLocationMaxX1 >= ds.Columns:
            continue  # the stale record of the smaller device
        box = find_bmode_region(dicom.read_frames(path)[0], path.name)  # the largest view
        checked += 1
        # above the region lies burned-in text, beside it the ruler and grey bar
        if (
            box.y0 < r.RegionLocationMinY0 - 8
            or box.x0 < r.RegionLocationMinX0 - 20
            or box.x1 > r.RegionLocationMaxX1 + 20
        ):
            outside.append(path.name)
    assert checked >= 12  # files of the devices that write a usable record
    assert len(outside) <= 0.05 * checked, f"regions reaching into the annotations: {outside}"


def test_blank_image_is_refused_by_the_crop_and_tabled_without_its_path(gout_cohort, tmp_path):
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    dicom_dir = with_extra_files(gout_cohort, tmp_path / "in", {})
    source = next(
        p
        for p in sorted(dicom_dir.rglob("*.dcm"))
        if pydicom.dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID
        == ExplicitVRLittleEndian
        and "NumberOfFrames" not in pydicom.dcmread(p, stop_before_pixels=True)
    )
    ds = pydicom.dcmread(source)
    ds.PixelData = bytes(len(ds.PixelData))  # an all-black capture of the same patient
    ds.SOPInstanceUID = generate_uid(entropy_srcs=["blank"])
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    blank = source.with_name("BLANK.dcm")
    ds.save_as(blank)

    with pytest.raises(DicomError, match="F-[0-9a-f]{12}: PreprocessError: .*blank"):
        run(gout_cohort, GOUT, tmp_path / "stop", dicom=dicom_dir)
    table = run(gout_cohort, GOUT, tmp_path / "skip", on_error="skip", dicom=dicom_dir)
    refused = read_table(tmp_path / "skip/refused.csv")
    assert len(table) == 30 and list(refused.reason) == ["PreprocessError"]
    assert "blank" in refused.message[0] and "BLANK" not in refused.message[0]


@pytest.mark.parametrize(
    ("description", "protocol", "series"),
    [
        ("t1_tse_sag", "", "T1"),
        ("T2 FSE FS", "", "T2"),
        ("PD_SPAIR", "", "unknown"),
        ("t2_de3d_we", "", "T2"),
        ("", "T1W/SE/1024", "T1"),  # pydicom-data MR2_* (ProtocolName only)
        ("marked lesion<MPR Collection>", "t1_vibe_fs_tra_bh_dyn", "T1"),  # Siemens overlays
        ("T2* GRE cor", "", "unknown"),
        ("t2star_me2d", "", "unknown"),
        ("STIR cor", "ankle_stir_cor", "unknown"),
        ("COR T1 FSE", "ANKLE COR T1 FSE", "T1"),
        ("T2W_SPAIR_SAG", "ankle_t2_tse_fs_sag", "T2"),
        ("localizer", "st1x", "unknown"),
    ],
)
def test_config_sequence_patterns_classify_realistic_descriptions(description, protocol, series):
    import yaml

    from mskdx.ingest.dicom import DicomHeader
    from mskdx.ingest.extract import _series

    config = yaml.safe_load((Path(__file__).parents[2] / "config/config.yaml").read_text())
    spec = StudySpec(
        study="olt",
        modalities=["MR"],
        preprocess={"kind": "mri", "size": 64},
        labels={},
        sequences=config["studies"]["olt"]["sequences"],
    )
    header = DicomHeader(
        Path("x.dcm"),
        "p",
        "1.2",
        "MR",
        "1.2",
        description,
        protocol,
        "1.3",
        1,
        8,
        8,
        "MONOCHROME2",
        "1.2.840.10008.1.2.1",
    )
    assert _series(header, spec) == series


def test_implausible_region_stops_skips_or_is_kept_by_on_flag(gout_cohort, tmp_path):
    """A capture whose region record points at the black surround: flagged, never silent."""
    import dataclasses

    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    dicom_dir = with_extra_files(gout_cohort, tmp_path / "in", {})
    source = next(
        p
        for p in sorted(dicom_dir.rglob("*.dcm"))
        if (h := pydicom.dcmread(p, stop_before_pixels=True)).file_meta.TransferSyntaxUID
        == ExplicitVRLittleEndian
        and "NumberOfFrames" not in h
        and h.Rows == 768
    )
    ds = pydicom.dcmread(source)
    item = Dataset()
    item.RegionSpatialFormat, item.RegionDataType = 1, 1
    item.RegionLocationMinX0, item.RegionLocationMinY0 = 0, 740
    item.RegionLocationMaxX1, item.RegionLocationMaxY1 = 1023, 767
    ds.SequenceOfUltrasoundRegions = [item]
    ds.SOPInstanceUID = generate_uid(entropy_srcs=["flagged"])
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(source.with_name("WRONG.dcm"))

    with pytest.raises(MskdxError, match=r"1 images have an implausible") as err:
        run(gout_cohort, GOUT, tmp_path / "stop", dicom=dicom_dir)
    assert "frame 0 region 0 (record): " in str(err.value) and "record_mismatch" in str(err.value)
    assert (
        "WRONG" not in str(err.value) and "WRONG.dcm" in err.value.terminal
    )  # path: terminal only
    assert not (tmp_path / "stop").exists() or not any((tmp_path / "stop").iterdir())

    skip = dataclasses.replace(GOUT, preprocess={**GOUT.preprocess, "on_flag": "skip"})
    table = run(gout_cohort, skip, tmp_path / "skip", dicom=dicom_dir)
    refused = read_table(tmp_path / "skip/refused.csv")
    assert len(table) == 30 and list(refused.reason) == ["flagged_region"]
    assert "record_mismatch" in refused.message[0] and "WRONG" not in refused.message[0]

    keep = dataclasses.replace(GOUT, preprocess={**GOUT.preprocess, "on_flag": "keep"})
    table = run(gout_cohort, keep, tmp_path / "keep", dicom=dicom_dir)
    manifest = read_table(tmp_path / "keep/manifest.csv", "manifest")
    assert len(table) == 31
    flagged = manifest[manifest.region_flags.fillna("") != ""]
    assert len(flagged) == 1 and "record_mismatch" in flagged.region_flags.iloc[0]
    assert set(manifest.region_method) == {"record", "image"}


def test_decoder_chunks_do_not_grow_with_the_cohort():
    # a chunk's crops come back together: at files / 16 a 24,010-capture cohort sent 1,500
    # files' crops (about 340 MB at 700x320) at once, so the extraction's peak grew with it
    assert decode_chunksize(24_010, 2) == decode_chunksize(2_401, 2) == MAX_DECODE_CHUNK == 8
    assert decode_chunksize(40, 2) == 2 and decode_chunksize(3, 2) == 1
    assert decode_chunksize(10, 0) == 1
