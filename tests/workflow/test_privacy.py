"""Privacy: no PHI of the input headers in any output, log or report of a real run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mskdx.ingest.deid import phi_values

pytestmark = pytest.mark.workflow


def input_phi(workdir: Path) -> set[str]:
    values: set[str] = set()
    for path in (workdir / "data/synthetic").rglob("*.dcm"):
        values |= phi_values(path)
    return values


TEXT_SUFFIXES = {".csv", ".md", ".log", ".tsv", ".txt", ".html", ".json", ".yaml", ".rst", ".svg"}
BASE64_RUN = re.compile(rb"[A-Za-z0-9+/=]{200,}")
TOKEN = re.compile(rb"[A-Za-z0-9_]+")  # words as \\w knows them: CHAR_EXCLAMATION_MARK is one


def phi_hits(data: bytes, values: list[str]) -> list[str]:
    """The PHI values found in `data` as whole words.

    One tokenizing pass per file: a value of one word is a token lookup (a name part of under
    8 characters as the header spells it, a longer value in any case); a value of several words
    is searched for as a phrase where all its words occur. A number only counts when it is not
    part of a decimal number (a probability's digits are no date, nor is a benchmark's memory
    figure, max_pss 1243.34, a StudyID).
    """
    tokens = set(TOKEN.findall(data))
    lowered = {t.lower() for t in tokens}
    text_lower = None
    hits = []
    for value in values:
        raw = value.encode()
        words = TOKEN.findall(raw)
        if not words:
            continue
        if words == [raw]:
            found = raw in tokens if len(value) < 8 else raw.lower() in lowered
            if found and value.isdigit():
                found = re.search(rb"(?<![0-9.])" + raw + rb"(?![0-9]|\.[0-9])", data) is not None
        else:
            if not all(w.lower() in lowered for w in words):
                continue
            text_lower = data.lower() if text_lower is None else text_lower
            phrase = rb"(?<![a-z0-9_])" + re.escape(raw.lower()) + rb"(?![a-z0-9_])"
            found = re.search(phrase, text_lower) is not None
        if found:
            hits.append(value)
    return hits


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_TEXT_CHUNKS = {b"tEXt", b"zTXt", b"iTXt"}


def png_text(data: bytes) -> bytes:
    """The text chunks of a PNG (keywords and values, zTXt inflated), joined by newlines."""
    import struct
    import zlib

    parts, i = [], len(PNG_SIGNATURE)
    while i + 8 <= len(data):
        (n,) = struct.unpack(">I", data[i : i + 4])
        kind, body = data[i + 4 : i + 8], data[i + 8 : i + 8 + n]
        if kind == b"zTXt":
            key, _, rest = body.partition(b"\0")
            body = key + b"\0" + zlib.decompress(rest[1:])
        if kind in PNG_TEXT_CHUNKS:
            parts.append(body.replace(b"\0", b" "))
        i += 12 + n
    return b"\n".join(parts)


def leaks(root: Path, files: list[Path], values: list[str], text_values=None) -> list[str]:
    """'path: value' for each PHI value found in `files`, the one scan every privacy test uses.

    A text file is searched for every value (runs of base64 blanked first: embedded images are
    scanned as files of their own, and random base64 holds short name parts by chance). A
    binary file's bytes are searched for values of 8 characters or more only, since compressed
    pixels hold any 4-digit number by chance (a PNG held a StudyID's '5444' in its IDAT); a
    PNG's text chunks, where a writer would put words, are searched for every value.
    `text_values(path)` may narrow the values for one text file (the report).
    """
    long_values = [v for v in values if len(v) >= 8]
    hits = []
    for path in files:
        data = path.read_bytes()
        if path.suffix in TEXT_SUFFIXES:
            wanted = text_values(path) if text_values else values
            found = phi_hits(BASE64_RUN.sub(b" ", data), wanted)
        else:
            found = phi_hits(data, long_values)
            if data.startswith(PNG_SIGNATURE):
                found += [v for v in phi_hits(png_text(data), values) if v not in found]
        hits += [f"{path.relative_to(root)}: {v!r}" for v in found]
    return hits


def snakemake_asset_tokens() -> set[bytes]:
    """Words of the code Snakemake ships into every report (Vega, React, ...), not our data."""
    import snakemake

    root = Path(snakemake.__file__).parent
    tokens: set[bytes] = set()
    for folder in (root / "assets", root / "report"):
        for path in folder.rglob("*"):
            if path.suffix in {".js", ".css", ".html", ".jinja2", ".txt"} and path.is_file():
                tokens |= set(TOKEN.findall(path.read_bytes()))
    return tokens


def scanned_files(workdir: Path) -> list[Path]:
    files = [p for p in (workdir / "results").rglob("*") if p.is_file()]
    files += [p for p in (workdir / ".snakemake/log").rglob("*") if p.is_file()]
    return files


def test_phi_scan_finds_planted_values():
    values = ["OZTURK", "MRN16576697", "19640312", "Luh Hospital", "ann"]
    text = b"x OZTURK; id=MRN16576697, born 19640312 at LUH HOSPITAL; p=0.19640312, Ozturk"
    assert phi_hits(text, values) == ["OZTURK", "MRN16576697", "19640312", "Luh Hospital"]
    assert phi_hits(b"p=0.19640312 OZTURKS", values) == []
    assert phi_hits(b"max_pss\t19640312.34\tmean_load 99.90", values) == []
    assert phi_hits(b"StudyID 19640312.", values) == ["19640312"]


def test_leak_scan_of_a_png_reads_its_text_not_its_pixels(tmp_path):
    """A short value in a PNG's compressed pixels is chance; in its text chunks it is a leak."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(1, 1))
    fig.savefig(tmp_path / "clean.png", metadata={"Title": "localisation"})
    fig.savefig(tmp_path / "named.png", metadata={"Author": "OZTURK", "Title": "MRN16576697"})
    plt.close(fig)
    clean = (tmp_path / "clean.png").read_bytes()
    # the pixels of the figure CI saw held '5444', a StudyID, inside its compressed IDAT
    (tmp_path / "chance.png").write_bytes(clean[:-12] + b"\xb55444`" + clean[-12:])
    (tmp_path / "notes.txt").write_text("reader: OZTURK")
    files = sorted(tmp_path.iterdir())
    hits = leaks(tmp_path, files, ["OZTURK", "MRN16576697", "5444"])
    assert sorted(hits) == [
        "named.png: 'MRN16576697'",
        "named.png: 'OZTURK'",
        "notes.txt: 'OZTURK'",
    ]


def test_no_phi_in_results_logs_or_report(tiny_run, tiny_report):
    phi = sorted(input_phi(tiny_run))
    # the inputs do carry PHI: names, IDs, birth dates, accession numbers, institutions
    assert len(phi) > 20
    files = scanned_files(tiny_run) + [tiny_report]
    assert len(files) > 50
    # the run's RO-Crate and the report pages of the tables and model cards are scanned too
    scanned = {p.relative_to(tiny_run).as_posix() for p in files}
    assert {
        "results/ro-crate-metadata.json",
        "results/gout/tables/table1_image_level.html",
        "results/gout/model_card_blocks3.html",
        "results/olt/tables/subgroups.html",
    } <= scanned
    # a name part that is a word of the report's bundled libraries (e.g. "MARK" in Vega's
    # comments) is no leak there; everywhere else it is looked for
    in_assets = snakemake_asset_tokens()
    report_phi = [v for v in phi if v.encode() not in in_assets]
    hits = leaks(
        tiny_run, files, phi, text_values=lambda p: report_phi if p == tiny_report else phi
    )
    assert not hits, "PHI found in outputs:\n" + "\n".join(hits[:20])


def test_the_crate_names_no_input_path(tiny_run):
    """The crate knows each input DICOM tree by its inventory digest: no folder or file name of
    the input, nor the run's absolute location, is in it."""
    crate = (tiny_run / "results/ro-crate-metadata.json").read_text()
    assert "data/synthetic" not in crate and str(tiny_run) not in crate
    names = {p.name for p in (tiny_run / "data/synthetic").rglob("*") if p.suffix != ".csv"}
    # folder names that are ours, and Snakemake's marker of a folder output
    names -= {"dicom", "gout", "olt", "external", "site_b", ".snakemake_timestamp"}
    found = sorted(n for n in names if f'"{n}"' in crate or f"/{n}" in crate)
    assert not found, f"input names in the crate: {found[:10]}"


def test_manifest_knows_patients_by_keyed_pseudonym_only(tiny_run):
    manifest = (tiny_run / "results/gout/cache/manifest.csv").read_text()
    assert re.search(r"\bP-[0-9a-f]{10}\b", manifest)
    assert "MRN" not in manifest


def test_no_phi_in_results_or_logs_of_runs_with_refusals(tmp_path):
    """A user's folder with refused files and an unlabelled patient, under stop and skip: the
    paths (folder names are PatientIDs and dates) and IDs reach only the private file map."""
    import pandas as pd

    from .test_user_data import MANIFEST, deep_file, extract, set_on_error, user_workdir

    workdir = user_workdir(tmp_path)
    dicom = workdir / "mydata/gout/dicom"
    phi = sorted(phi_values_of(dicom))
    folder_names = {p.name for p in dicom.rglob("*") if p.is_dir()}
    bad = deep_file(workdir).with_name("notes.dcm")
    bad.write_text("not an image")
    (bad.parent / "empty.dcm").write_bytes(b"")
    # a patient whose row is missing from the label sheet
    sheet = pd.read_csv(workdir / "mydata/gout/labels.csv", dtype=str)
    sheet.iloc[1:].to_csv(workdir / "mydata/gout/labels.csv", index=False)
    stop = extract(workdir, check=False)
    assert stop.returncode != 0 and str(bad) in stop.stderr
    set_on_error(workdir, "skip")
    skip = extract(workdir, check=False)
    assert skip.returncode != 0 and "label sheet" in skip.stderr  # unlabelled patient
    sheet.to_csv(workdir / "mydata/gout/labels.csv", index=False)
    extract(workdir)
    assert (workdir / MANIFEST).exists()
    assert len(pd.read_csv(workdir / "results/gout/extract/refused.csv")) == 2

    private = (workdir / "private/gout/file_map.csv").read_text()
    assert str(bad) in private  # the way back exists, and the scan below would see such text
    values = phi + sorted(folder_names - {"dicom"})
    hits = leaks(workdir, scanned_files(workdir), values)
    assert not hits, "PHI found in results or logs:\n" + "\n".join(hits[:20])


def phi_values_of(folder: Path) -> set[str]:
    values: set[str] = set()
    for path in folder.rglob("*.dcm"):
        values |= phi_values(path)
    return values
