"""Subgroups, the failure gallery and Table I's companion in the tiny run (issue 25)."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from .conftest import copy_workflow, snakemake
from .test_reruns import overlay, planned_jobs

pytestmark = pytest.mark.workflow


def test_subgroup_tables_cover_scanner_site_sex_and_age(tiny_run):
    for study in ("gout", "olt"):
        table = pd.read_csv(tiny_run / f"results/{study}/tables/subgroups.csv")
        assert set(table.variable) == {"site", "scanner", "sex", "age_band"}
        assert {"development", "site_b"} <= set(table.cohort)
        shown = table[table.group != "suppressed"]
        assert (shown.patients >= 5).all()  # evaluate.subgroups.min_patients default
        text = (tiny_run / f"results/{study}/tables/subgroups.md").read_text()
        assert "not shown" in text and "MRN" not in text
    manifest = pd.read_csv(tiny_run / "results/gout/cache/manifest.csv")
    assert manifest.model.nunique() >= 2  # the synthetic devices name their scanners
    assert set(manifest.age_band.dropna()) and not manifest.age_band.str.contains("/").any()


def test_failure_gallery_and_repeats_table(tiny_run):
    for study in ("gout", "olt"):
        assert (tiny_run / f"results/{study}/figures/failures.png").stat().st_size > 1000
        failures = pd.read_csv(tiny_run / f"results/{study}/tables/failures.csv")
        assert set(failures.kind) <= {"FP", "FN"}
        assert failures.image_id.str.fullmatch(r"I-[0-9a-f]{12}").all()
    repeats = pd.read_csv(tiny_run / "results/gout/tables/table1_repeats.csv")
    assert repeats.is_reference.sum() == 1 and len(repeats) == 4
    # the reference named in advance by the preset (the gout paper's), not the best of the data
    assert repeats.loc[repeats.is_reference, "arm"].item() == "blocks3"
    assert repeats.p_corrected_adjusted.notna().sum() <= 3


@pytest.fixture(scope="module")
def training_repeats(tiny_run, tmp_path_factory) -> tuple[Path, list]:
    """A copy of the tiny run with train.repeats 2: the jobs it plans, then its companion table."""
    run = Path(shutil.copytree(tiny_run, tmp_path_factory.mktemp("repeats") / "run", symlinks=True))
    extra = overlay(run, "train_repeats.yaml", "studies:\n  gout:\n    train: {repeats: 2}\n")
    jobs = planned_jobs(run, extra)
    snakemake(run, "--configfile", "config/test.yaml", extra,
              "--", "results/gout/tables/table1_repeats.csv")  # fmt: skip
    return run, jobs


def test_training_repeats_retrain_nothing_that_exists(training_repeats):
    _, jobs = training_repeats
    rules = Counter(rule for rule, _ in jobs)
    # one more run of each gout arm's 2 folds; the checklist reports the setting; the run's
    # RO-Crate reads every output and the config
    assert rules == {
        "train_fold_repeat": 8,
        "tabulate_repeats": 1,
        "tabulate_checklist": 1,
        "write_crate": 1,
    }
    runs = {(w["arm"], w["fold"], w["train_repeat"]) for r, w in jobs if r == "train_fold_repeat"}
    assert {t for _, _, t in runs} == {"1"} and len(runs) == 8


def test_training_repeats_in_the_companion_table(training_repeats):
    run, _ = training_repeats
    table = pd.read_csv(run / "results/gout/tables/table1_repeats.csv")
    assert (table.train_repeats == 2).all() and (table.runs == 2).all() and len(table) == 4
    assert table.auc_train_sd.notna().all() and (table.best_in_runs <= 2).all()
    assert table.df.dropna().eq(1).all()  # k r - 1 = 2 - 1: the runs of a fold enter as one
    models = run / "results/gout/models/blocks3"
    first = pd.read_csv(models / "fold_0/predictions.csv")
    again = pd.read_csv(models / "seed_1/fold_0/predictions.csv")
    assert first.image_id.tolist() == again.image_id.tolist()  # the same split and images
    assert not first.prob.equals(again.prob)  # another model
    text = (run / "results/gout/tables/table1_repeats.md").read_text()
    assert "1 x 2-fold CV x 2 training runs per fold" in text
    assert "What the runs support:" in text


def test_repeats_on_a_holdout_study_stop_before_any_job(tmp_path):
    work = copy_workflow(tmp_path / "mskdx")
    extra = overlay(work, "olt_repeats.yaml", "studies:\n  olt:\n    train: {repeats: 3}\n")
    proc = snakemake(work, "--configfile", "config/test.yaml", extra, "-n", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "studies.olt: train.repeats: 3 asked, but its splits.method is 'holdout'" in out
    assert not (work / "results").exists()
