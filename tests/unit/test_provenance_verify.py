"""`mskdx verify`: an untouched run passes; an edited, missing or unlisted file, another commit,
lock or configuration fails and is named; files that differ from run to run never fail."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from provenance_run import CONFIG, build, git, make_run

from mskdx.provenance.records import ProvenanceError
from mskdx.provenance.verify import verify, verify_command


@pytest.fixture
def run(tmp_path) -> Path:
    repo = make_run(tmp_path)
    build(repo)
    return repo


def check(repo: Path) -> tuple[int, list[str]]:
    lines: list[str] = []
    status = verify_command(
        repo / "results/ro-crate-metadata.json", repo_root=repo, write=lines.append
    )
    return status, lines


def test_an_untouched_run_verifies(run):
    status, lines = check(run)
    assert status == 0, lines
    assert lines[-1].startswith("OK: 9 files checked, 0 changed, 0 missing, 0 unlisted")


def test_an_edited_file_is_named(run):
    (run / "results/gout/tables/table1_image_level.csv").write_text("arm,auc\nblocks2,0.9\n")
    status, lines = check(run)
    assert status == 1
    assert "changed: gout/tables/table1_image_level.csv" in lines
    assert lines[-1].startswith("FAILED: 9 files checked, 1 changed, 0 missing, 0 unlisted")


def test_a_missing_and_an_unlisted_file_are_named(run):
    (run / "results/gout/figures/roc.png").unlink()
    (run / "results/gout/tables/extra.csv").write_text("x\n1\n")
    report = verify(run / "results/ro-crate-metadata.json", repo_root=run)
    assert report.missing == ("gout/figures/roc.png",)
    assert report.unlisted == ("gout/tables/extra.csv",)
    assert not report.changed and not report.ok


def test_files_that_differ_between_runs_are_reported_apart(run):
    results = run / "results"
    (results / "gout/models/blocks2/fold_0/history.csv").write_text("epoch,seconds\n1,3.9\n")
    (results / "logs/extract/gout.log").unlink()
    (results / "benchmarks/make_crate").mkdir(parents=True)
    (results / "benchmarks/make_crate/crate.tsv").write_text("s\n0.5\n")
    report = verify(results / "ro-crate-metadata.json", repo_root=run)
    assert report.ok, report.lines()
    assert report.not_reproducible == (
        ("benchmarks/make_crate/crate.tsv", "unlisted",
         "Snakemake benchmark: wall-clock seconds and memory of the job"),
        ("gout/models/blocks2/fold_0/history.csv", "changed",
         "training history: column 'seconds' is the wall-clock time per epoch"),
        ("logs/extract/gout.log", "missing",
         "job log: every line starts with the time it was written"),
        ("logs/tabulate/gout.log", "unchanged",
         "job log: every line starts with the time it was written"),
    )  # fmt: skip
    assert any(
        line.startswith("not byte-reproducible, changed: gout/models") for line in report.lines()
    )


def test_another_commit_lock_or_configuration_is_named(run):
    (run / "envs/constraints.txt").write_text("numpy==2.4.7\n")
    changed = {**CONFIG, "seed": 1}
    (run / "config/config.yaml").write_text(yaml.safe_dump(changed))
    status, lines = check(run)
    assert status == 1
    assert "commit: tracked files of the checkout differ from its commit" in lines
    assert any(line.startswith("lock: envs/constraints.txt sha256 ") for line in lines)
    assert "configuration: config/config.yaml differs from the run's (sha256)" in lines
    assert "configuration: seed was 0 in the run, 1 now" in lines
    git(run, "commit", "-qam", "new lock and seed")
    status, lines = check(run)
    assert any(line.startswith("commit: ") and " in the run, " in line for line in lines)
    assert "commit: tracked files of the checkout differ from its commit" not in lines


def test_a_file_that_is_no_crate_is_a_clear_error(tmp_path):
    bad = tmp_path / "ro-crate-metadata.json"
    bad.write_text("{}")
    with pytest.raises(ProvenanceError, match="cannot read an RO-Crate metadata file"):
        verify(bad, repo_root=tmp_path)
