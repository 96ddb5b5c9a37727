"""The tiny run's provenance: its RO-Crate passes rocrate-validator offline at REQUIRED severity
for the Provenance Run Crate profile and lists every file of results/ with its hash and every
job; `mskdx verify` passes on the untouched run and names each edited, deleted or added file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mskdx.provenance.records import (
    list_results,
    not_reproducible_reason,
    read_job_records,
    sha256_file,
)
from mskdx.provenance.validate import validate_offline

pytestmark = pytest.mark.workflow

MSKDX = Path(sys.executable).parent / "mskdx"
CRATE = "results/ro-crate-metadata.json"


def graph(run: Path) -> dict[str, dict]:
    return {e["@id"]: e for e in json.loads((run / CRATE).read_text())["@graph"]}


def verify(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MSKDX_PSEUDONYM_KEY": "tests-key"}
    cmd = [str(MSKDX), "verify", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, timeout=600)


def test_the_crate_passes_the_validator_offline(tiny_run, tmp_path):
    report = validate_offline(tiny_run / "results", tmp_path / "http_cache", tmp_path / "rv.json")
    issues = [i.get("message", i) for i in report.get("issues", [])]
    assert report["passed"], f"rocrate-validator (REQUIRED, offline): {issues[:10]}"


def test_every_file_with_its_hash_and_every_job_is_in_the_crate(tiny_run):
    entities = graph(tiny_run)
    files = list_results(tiny_run / "results")
    assert len(files) > 100
    unlisted = [f for f in files if f not in entities]
    assert not unlisted, f"files under results/ not in the crate: {unlisted[:10]}"
    changed = [
        f
        for f in files
        if not not_reproducible_reason(f)
        and entities[f]["sha256"] != sha256_file(tiny_run / "results" / f)
    ]
    assert not changed, f"files whose hash differs from the crate's: {changed[:10]}"
    # the copies of the workflow files the crate describes (the Snakefile is the main workflow)
    copies = {"workflow/Snakefile", "workflow/workflow/rules/provenance.smk"}
    assert copies | {"workflow/envs/constraints.txt"} <= set(files)
    assert "ComputationalWorkflow" in entities["workflow/Snakefile"]["@type"]
    # every job of the run is an action of the crate, with its rule as the instrument (the
    # crate's own job finished after the crate was written)
    jobs = [
        j for j in read_job_records(tiny_run / ".snakemake/metadata") if j.rule != "write_crate"
    ]
    actions = [e for i, e in entities.items() if i.startswith("#job-")]
    assert len(actions) == len(jobs) > 100
    assert sorted(a["instrument"]["@id"] for a in actions) == sorted(
        f"#rule-{j.rule}" for j in jobs
    )
    trees = {i for i in entities if i.startswith("#input-")}
    assert trees == {"#input-gout", "#input-olt", "#input-gout-site_b", "#input-olt-site_b"}


def test_verify_passes_the_untouched_run_and_names_each_difference(tiny_run, tmp_path):
    proc = verify(tiny_run)  # results/ro-crate-metadata.json of this checkout
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.splitlines()[-1].startswith("OK: "), proc.stdout[-2000:]

    # a copy of results/ (hard links: each file touched below is replaced, never written)
    copy = tmp_path / "results"
    shutil.copytree(tiny_run / "results", copy, copy_function=os.link)
    edited = copy / "gout/tables/table1_image_level.csv"
    data = edited.read_bytes()
    edited.unlink()
    edited.write_bytes(data.replace(b"blocks2", b"blocks9", 1))
    (copy / "olt/tables/calibration.md").unlink()
    (copy / "gout/tables/notes.txt").write_text("added after the run\n")
    proc = verify(tiny_run, str(copy / "ro-crate-metadata.json"))
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert "changed: gout/tables/table1_image_level.csv" in lines
    assert "missing: olt/tables/calibration.md" in lines
    assert "unlisted: gout/tables/notes.txt" in lines
    assert lines[-1].startswith("FAILED: ") and "1 changed, 1 missing, 1 unlisted" in lines[-1]
    assert (tiny_run / "results/olt/tables/calibration.md").is_file()  # the run is untouched
