"""The DAG is precise: a figure setting reruns that figure, a training setting that arm, a library
edit the stages that run it; a no-op rerun has nothing to do.

The run's RO-Crate (rule write_crate) reads every final output and the whole configuration, so
every change reruns it too (once, cheap: hashes and job records): each test names it."""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from pathlib import Path

import pytest

from .conftest import snakemake

pytestmark = pytest.mark.workflow


def planned_jobs(workdir: Path, *extra_config: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job a dry run of the tiny config would run."""
    args = ["-n"]
    if extra_config:
        args = ["--configfile", "config/test.yaml", *extra_config, "-n"]
    out = snakemake(workdir, *args).stdout
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", out):
        head = re.match(r"(?:local)?rule (\w+):", block)
        if not head:
            continue
        wild = re.search(r"^\s+wildcards: (.*)$", block, re.MULTILINE)
        pairs = dict(p.split("=", 1) for p in wild.group(1).split(", ")) if wild else {}
        jobs.append((head.group(1), pairs))
    return [j for j in jobs if j[0] != "all"]


def overlay(workdir: Path, name: str, text: str) -> str:
    path = workdir / "config" / name
    path.write_text(text)
    return f"config/{name}"


def test_noop_rerun_has_nothing_to_do_quickly(tiny_run):
    start = time.perf_counter()
    proc = snakemake(tiny_run, "-n")
    elapsed = time.perf_counter() - start
    assert "Nothing to be done" in proc.stdout + proc.stderr
    assert elapsed < 5, f"a no-op dry run took {elapsed:.1f} s; expected under 5 s"


def test_figure_setting_reruns_only_that_figure(tiny_run):
    extra = overlay(tiny_run, "roc_width.yaml", "figures:\n  roc:\n    linewidth: 2.75\n")
    jobs = planned_jobs(tiny_run, extra)
    # the ROC figures of both studies: the papers' and development vs external cohorts
    assert Counter(rule for rule, _ in jobs) == {
        "plot_roc": 2,
        "plot_roc_external": 2,
        "write_crate": 1,
    }


def test_montage_setting_reruns_only_montages(tiny_run):
    extra = overlay(
        tiny_run, "montage.yaml", "figures:\n  montage:\n    images: 9\n    columns: 3\n"
    )
    rules = Counter(rule for rule, _ in planned_jobs(tiny_run, extra))
    assert set(rules) <= {"plot_montage", "plot_crop_qc", "plot_gradcam", "write_crate"}
    assert "plot_montage" in rules and rules["write_crate"] == 1


def test_training_setting_retrains_only_that_arm(tiny_run):
    extra = overlay(
        tiny_run,
        "arm_lr.yaml",
        "studies:\n  gout:\n    arms:\n      blocks3:\n"
        "        architecture: resnet_blocks\n        blocks: 3\n        train: {lr: 0.0005}\n",
    )
    jobs = planned_jobs(tiny_run, extra)
    rules = Counter(rule for rule, _ in jobs)
    assert rules["train_fold"] == 2  # both folds of blocks3, nothing else
    assert rules["write_crate"] == 1
    # every arm's model card shows its Table I row and test against the best arm, which the
    # retrained arm changes: the one per-arm output that reruns for the other arms too
    assert {w.get("arm") for r, w in jobs if "arm" in w and r != "write_model_card"} == {"blocks3"}
    assert not {"synthesize_cohort", "extract_images", "make_splits", "tabulate_complexity"} & set(
        rules
    )
    assert {"tabulate_image_level", "plot_roc", "tabulate_patient_level"} <= set(rules)
    assert all(w.get("study", "gout") == "gout" for _, w in jobs)


def edited_plan(workdir: Path, module: str) -> set[str]:
    """Rules a dry run would rerun after an edit of a library module (then undone)."""
    path = workdir / "src/mskdx" / module
    text, stat = path.read_text(), path.stat()
    try:
        # a real edit: Snakemake compares checksums of small inputs, so a touch is no change
        path.write_text(text + "\n# edited\n")
        return {rule for rule, _ in planned_jobs(workdir)}
    finally:
        path.write_text(text)
        os.utime(path, (stat.st_atime, stat.st_mtime))


def test_library_edit_reruns_the_stages_that_run_it(tiny_run):
    figures = edited_plan(tiny_run, "evaluate/figures/common.py")
    assert "write_crate" in figures
    assert all(r.startswith("plot_") for r in figures - {"write_crate"}), figures
    stats = edited_plan(tiny_run, "evaluate/stats/delong.py")
    assert {"tabulate_image_level", "plot_roc", "summarise_localisation", "write_crate"} <= stats
    assert not {"train_fold", "extract_images", "plot_training_curves"} & stats


def test_precision_reruns_exactly_when_its_inputs_change(tiny_run):
    """The precision table (issue 37) and the checklist that quotes it, nothing else."""
    riley = overlay(
        tiny_run,
        "riley.yaml",
        "studies:\n  olt:\n    precision:\n      riley: {r2_cs: 0.1, parameters: 1, "
        "prevalence: 0.5}\n",
    )
    jobs = planned_jobs(tiny_run, riley)
    assert Counter(rule for rule, _ in jobs) == {
        "tabulate_precision": 1,
        "tabulate_checklist": 1,
        "write_crate": 1,  # the crate records the config: any change rebuilds it
    }
    assert {w["study"] for rule, w in jobs if rule != "write_crate"} == {"olt"}
    assert edited_plan(tiny_run, "evaluate/precision.py") == {
        "tabulate_precision",
        "tabulate_checklist",
        "write_crate",
    }


def test_provenance_edits_rerun_the_crate_and_the_pages(tiny_run):
    """The crate's code reruns the crate alone; the page writer reruns the rules that write a
    table's or model card's page beside it, the two figures drawn from those rules' other
    outputs (threshold curves, localisation scores) and the crate; never training, Grad-CAM or
    another figure."""
    assert edited_plan(tiny_run, "provenance/crate.py") == {"write_crate"}
    pages = edited_plan(tiny_run, "provenance/pages.py")
    assert {"tabulate_image_level", "check_papers", "write_model_card", "write_crate"} <= pages
    writers = {r for r in pages if r.startswith(("tabulate_", "summarise_", "check_"))}
    assert pages - writers == {
        "write_model_card",
        "plot_threshold",
        "plot_localisation",
        "write_crate",
    }
