"""Privacy: no PHI of the input headers in any output, log or report of a real run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mskdx.deid import phi_values

pytestmark = pytest.mark.workflow


def input_phi(workdir: Path) -> set[str]:
    values: set[str] = set()
    for path in (workdir / "data/synthetic").rglob("*.dcm"):
        values |= phi_values(path)
    return values


TEXT_SUFFIXES = {".csv", ".md", ".log", ".tsv", ".txt", ".html", ".json", ".yaml", ".rst", ".svg"}
BASE64_RUN = re.compile(rb"[A-Za-z0-9+/=]{200,}")


def phi_pattern(value: str) -> re.Pattern[bytes]:
    """Match a PHI value as a whole word: a number not inside a longer number, a name part
    (as the header spells it) not inside a longer word, a longer text in any case."""
    text = re.escape(value.encode())
    if value.isdigit():
        return re.compile(rb"(?<![0-9.])" + text + rb"(?![0-9])")
    if len(value) < 8:
        return re.compile(rb"(?<![A-Za-z])" + text + rb"(?![A-Za-z])")
    return re.compile(rb"(?<![A-Za-z0-9])" + text + rb"(?![A-Za-z0-9])", re.IGNORECASE)


def scanned_files(workdir: Path) -> list[Path]:
    files = [p for p in (workdir / "results").rglob("*") if p.is_file()]
    files += [p for p in (workdir / ".snakemake/log").rglob("*") if p.is_file()]
    return files


def test_no_phi_in_results_logs_or_report(tiny_run, tiny_report):
    phi = input_phi(tiny_run)
    # the inputs do carry PHI: names, IDs, birth dates, accession numbers, institutions
    assert len(phi) > 20
    patterns = {v: phi_pattern(v) for v in sorted(phi)}
    files = scanned_files(tiny_run) + [tiny_report]
    assert len(files) > 50
    hits = []
    for path in files:
        data = path.read_bytes()
        if path.suffix in TEXT_SUFFIXES:
            # embedded images are scanned as files of their own; random base64 text would
            # match short name parts by chance
            data = BASE64_RUN.sub(b" ", data)
            values = patterns
        else:  # binary: only values long enough not to occur by chance
            values = {v: p for v, p in patterns.items() if len(v) >= 8}
        hits += [
            f"{path.relative_to(tiny_run)}: {v!r}" for v, p in values.items() if p.search(data)
        ]
    assert not hits, "PHI found in outputs:\n" + "\n".join(hits[:20])


def test_manifest_knows_patients_by_keyed_pseudonym_only(tiny_run):
    manifest = (tiny_run / "results/gout/cache/manifest.csv").read_text()
    assert re.search(r"\bP-[0-9a-f]{10}\b", manifest)
    assert "MRN" not in manifest
