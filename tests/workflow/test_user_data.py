"""A user's own DICOM folder (data.source: dicom), extraction stage only, as a new user runs it:
what reruns the extraction, what the terminal shows when it fails, which config key is missing.
The user's folder comes with both label sheets: the patients' and an image sheet keyed by each
file's path relative to the DICOM folder (issue 38)."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import pandas as pd
import pydicom
import pytest

from mskdx.synth import synthesize_gout

from .conftest import copy_workflow, snakemake

pytestmark = pytest.mark.workflow

MANIFEST = "results/gout/cache/manifest.csv"
USER_CONFIG = """\
data:
  source: dicom
  on_error: {on_error}
studies:
  gout:
    input:
      dicom_dir: mydata/gout/dicom
      labels: mydata/gout/labels.csv
      image_labels: mydata/gout/image_labels.csv
    labels:
      images: {{key: path, key_column: path}}
"""


def user_workdir(base: Path, on_error: str = "stop") -> Path:
    """A workflow copy whose gout study reads a small synthetic cohort as the user's folder."""
    workdir = copy_workflow(base / "mskdx")
    synthesize_gout(workdir / "mydata/gout", patients_gout=3, patients_control=3, images=12, seed=4)
    key_image_sheet_by_path(workdir / "mydata/gout")
    set_on_error(workdir, on_error)
    return workdir


def key_image_sheet_by_path(folder: Path) -> None:
    """The synthetic image sheet (keyed by SOPInstanceUID) keyed instead by each file's path
    relative to dicom/, as a user who has only the folder would write it."""
    dicom = folder / "dicom"
    where = {
        str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID): f.relative_to(dicom)
        for f in dicom.rglob("*.dcm")
    }
    with open(folder / "image_labels.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][0] == "SOPInstanceUID"
    rows = [["path", *rows[0][1:]]] + [[where[r[0]].as_posix(), *r[1:]] for r in rows[1:]]
    with open(folder / "image_labels.csv", "w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


def set_on_error(workdir: Path, on_error: str) -> None:
    (workdir / "config/user.yaml").write_text(USER_CONFIG.format(on_error=on_error))


def extract(workdir: Path, *args: str, **kwargs):
    """Run (or with "-n" plan) the extraction of the gout study with the user's config."""
    return snakemake(
        workdir, MANIFEST, *args, "--configfile", "config/test.yaml", "config/user.yaml", **kwargs
    )


def planned(proc) -> list[str]:
    return re.findall(r"^(?:local)?rule (\w+):", proc.stdout, re.MULTILINE)


def deep_file(workdir: Path) -> Path:
    return sorted((workdir / "mydata/gout/dicom").rglob("*.dcm"))[-1]


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> Path:
    workdir = user_workdir(tmp_path_factory.mktemp("user"))
    extract(workdir, env={"MSKDX_PSEUDONYM_KEY": "key one"})
    return workdir


def test_nothing_to_do_after_a_run(extracted):
    assert planned(extract(extracted, "-n", env={"MSKDX_PSEUDONYM_KEY": "key one"})) == []


def test_a_new_pseudonym_key_reruns_the_extraction(extracted):
    proc = extract(extracted, "-n", env={"MSKDX_PSEUDONYM_KEY": "key two"})
    assert "extract_images" in planned(proc)
    assert "key one" not in proc.stdout + proc.stderr  # the params show a fingerprint only


def test_no_key_warns_on_the_terminal_and_reruns(extracted):
    proc = extract(extracted, "-n", env={"MSKDX_PSEUDONYM_KEY": ""})
    assert "MSKDX_PSEUDONYM_KEY is not set" in proc.stderr and "demo key" in proc.stderr
    assert "extract_images" in planned(proc)


def test_the_image_sheet_gives_each_image_its_label_and_no_path_leaves_the_private_map(extracted):
    """Image labels by relative path: a gout patient's lesion-free images are normal images,
    the patient keeps its diagnosis; the sheet's paths and UIDs reach no file of results/."""
    sheet = pd.read_csv(extracted / "mydata/gout/image_labels.csv", dtype=str)
    manifest = pd.read_csv(extracted / MANIFEST)
    assert len(manifest) == len(sheet)  # one row per frame, every frame extracted
    assert manifest["label"].sum() == (sheet["image_label"] == "abnormal").sum() > 0
    gout = manifest[manifest["patient_label"] == 1]
    assert (gout["label"] == 0).any()  # images of a gout patient without a lesion
    assert (manifest.loc[manifest["patient_label"] == 0, "label"] == 0).all()
    assert manifest["finding_dcs"].sum() == sheet["DCs"].astype(int).sum()
    keys = set(sheet["path"]) | {Path(p).parts[0] for p in sheet["path"]}
    uids = {
        str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID)
        for f in (extracted / "mydata/gout/dicom").rglob("*.dcm")
    }
    for path in (extracted / "results").rglob("*"):
        if path.is_file() and path.suffix in (".csv", ".json", ".log", ".tsv", ".txt"):
            text = path.read_text()
            leaked = [k for k in keys | uids if k in text]
            assert not leaked, f"{path.relative_to(extracted)} holds {leaked[:3]}"


def test_a_changed_image_sheet_reruns_the_extraction(extracted):
    """The image sheet is an input file of the extraction: an image relabelled reruns it
    (Snakemake compares a newer input's checksum: touching it alone does not)."""
    sheet = extracted / "mydata/gout/image_labels.csv"
    text, before = sheet.read_text(), sheet.stat()
    header, first, rest = text.split("\n", 2)
    swap = {"abnormal": "normal", "normal": "abnormal"}
    cells = first.split(",")
    cells[2] = swap[cells[2]]
    try:
        sheet.write_text("\n".join([header, ",".join(cells), rest]))
        proc = extract(extracted, "-n", env={"MSKDX_PSEUDONYM_KEY": "key one"})
        assert "extract_images" in planned(proc)
    finally:
        sheet.write_text(text)
        os.utime(sheet, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert planned(extract(extracted, "-n", env={"MSKDX_PSEUDONYM_KEY": "key one"})) == []


def test_a_file_changed_deep_in_the_tree_reruns_the_extraction(extracted):
    path = deep_file(extracted)
    before = path.stat()
    try:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
        proc = extract(extracted, "-n", env={"MSKDX_PSEUDONYM_KEY": "key one"})
        assert "extract_images" in planned(proc)
    finally:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert planned(extract(extracted, "-n", env={"MSKDX_PSEUDONYM_KEY": "key one"})) == []


def test_a_refused_file_fails_visibly_with_its_real_path_on_the_terminal_only(tmp_path):
    workdir = user_workdir(tmp_path)
    bad = deep_file(workdir).with_name("notes.dcm")
    bad.write_text("not an image")
    proc = extract(workdir, check=False)
    assert proc.returncode != 0
    # the cause, not just "message: None" and a log path
    assert "mskdx: DicomError:" in proc.stderr and "1 of " in proc.stderr
    assert str(bad.relative_to(workdir / "mydata/gout/dicom")) in proc.stderr
    assert "private/gout/file_map.csv" in proc.stderr
    log = (workdir / "results/logs/extract_images/gout.log").read_text()
    assert re.search(r"F-[0-9a-f]{12}: not_dicom", log)
    patient_folder = bad.relative_to(workdir / "mydata/gout/dicom").parts[0]
    assert patient_folder not in log
    assert str(bad) in (workdir / "private/gout/file_map.csv").read_text()
    assert not (workdir / MANIFEST).exists()


def test_unset_input_names_the_config_key(tmp_path):
    workdir = copy_workflow(tmp_path / "mskdx")
    (workdir / "config/user.yaml").write_text("data:\n  source: dicom\n  on_error: stop\n")
    proc = extract(workdir, "-n", check=False)
    assert proc.returncode != 0
    shown = proc.stdout + proc.stderr  # Snakemake prints its errors to stdout
    assert "studies.gout.input.dicom_dir" in shown and "studies.gout.input.labels" in shown
    assert "Empty file path" not in shown


@pytest.mark.parametrize(
    ("text", "expected"),
    [(None, "split file cannot be read"), ("Fold,patient,subset\n0,P-x,train\n", "no column")],
)
def test_split_file_problems_name_the_file_and_columns(tmp_path, text, expected):
    workdir = copy_workflow(tmp_path / "mskdx")
    if text is not None:
        (workdir / "my_splits.csv").write_text(text)
    (workdir / "config/user.yaml").write_text(
        "studies:\n  gout:\n    splits:\n      file: my_splits.csv\n"
    )
    proc = snakemake(
        workdir, "-n", "--configfile", "config/test.yaml", "config/user.yaml", check=False
    )
    assert proc.returncode != 0
    shown = proc.stdout + proc.stderr
    assert "my_splits.csv" in shown and expected in shown
    assert "fold,patient,subset" in shown
    assert "KeyError" not in shown
