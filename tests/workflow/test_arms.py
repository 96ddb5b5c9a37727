"""An arm added by config alone (a torchvision network and a user's own builder) reruns only its
own jobs and the tables and figures that compare arms, and appears in every one of them; a bad
arm stops the run before any job."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from .conftest import REPO, snakemake
from .test_reruns import overlay, planned_jobs

pytestmark = pytest.mark.workflow

NEW_ARMS = {"tvresnet18", "mynet"}
ARMS_OVERLAY = """\
studies:
  gout:
    arms:
      tvresnet18:
        architecture: torchvision
        name: resnet18
        weights: none
        gradcam: {layer: layer3}
      mynet:
        architecture: python
        builder: "user_nets:tiny_net"
        options: {width: 8}
"""
# the user's module (tests/unit/user_nets.py) is importable in the run's environment
ENV = {
    "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO / "tests" / "unit"), os.environ.get("PYTHONPATH")) if p
    )
}
# rules that compare the arms of a study: rerun when an arm is added
COMPARING = {
    "tabulate_image_level",
    "tabulate_complexity",
    "summarise_localisation",
    "plot_roc",
    "plot_localisation",
    "tabulate_calibration",
    "tabulate_precision",  # every arm's design effects and CI half-widths
    "plot_decision_curve",
    "tabulate_checklist",
    "tabulate_external",
    "plot_roc_external",
    "tabulate_subgroups",  # every arm per site, scanner, sex and age band
    "plot_failures",  # every arm's most confident errors
    "tabulate_repeats",  # every arm over the CV repeats, tested against the best
    "write_crate",  # the run's RO-Crate reads every output: any change reruns it
}


@pytest.fixture(scope="module")
def with_arms(tiny_run, tmp_path_factory) -> tuple[Path, str, list]:
    """A copy of the tiny run, the arms overlay, and the jobs its dry run planned."""
    run = Path(shutil.copytree(tiny_run, tmp_path_factory.mktemp("arms") / "run", symlinks=True))
    extra = overlay(run, "arms.yaml", ARMS_OVERLAY)
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = ENV["PYTHONPATH"]  # planned_jobs runs snakemake with this env
    try:
        jobs = planned_jobs(run, extra)
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = before
    return run, extra, jobs


def test_adding_arms_reruns_only_their_jobs_and_the_comparisons(with_arms):
    _, _, jobs = with_arms
    rules = Counter(rule for rule, _ in jobs)
    assert rules["train_fold"] == 4  # 2 new arms x 2 folds, no other arm retrained
    # every arm's model card compares it with the best arm (its Table I row and tests): the one
    # per-arm output that reruns for the old arms too
    assert {w["arm"] for r, w in jobs if "arm" in w and r != "write_model_card"} == NEW_ARMS
    assert all(w.get("study", "gout") == "gout" for _, w in jobs)
    assert not {"synthesize_cohort", "extract_images", "make_splits"} & set(rules)
    # a job of no arm compares the arms
    assert {rule for rule, w in jobs if "arm" not in w} <= COMPARING
    assert {"tabulate_image_level", "tabulate_complexity", "plot_roc"} <= set(rules)
    assert rules["compute_gradcam"] == 2 and rules["score_external"] == 2


def test_new_arms_appear_in_every_table_and_figure(with_arms):
    run, extra, _ = with_arms
    snakemake(run, "--configfile", "config/test.yaml", extra, env=ENV)
    tables, figures = run / "results/gout/tables", run / "results/gout/figures"
    for name in ("table1_image_level", "table2_complexity", "localisation", "calibration"):
        table = pd.read_csv(tables / f"{name}.csv")
        assert NEW_ARMS <= set(table.astype(str).stack()), name
    complexity = pd.read_csv(tables / "table2_complexity.csv").set_index("arm")
    assert complexity.loc["tvresnet18", "architecture"] == "torchvision resnet18"
    assert complexity.loc["tvresnet18", "params_m"] == pytest.approx(11.1775, abs=1e-3)
    assert complexity.loc["mynet", "input"] == "3x320x700"
    checklist = (tables / "claim_checklist.csv").read_text()
    assert "tvresnet18: architecture=torchvision" in checklist and "mynet:" in checklist
    assert NEW_ARMS <= set(pd.read_csv(tables / "external_site_b.csv").astype(str).stack())
    for arm in NEW_ARMS:
        assert (tables / f"table3_patient_level_{arm}.csv").is_file()
        for stem in ("confusion", "gradcam", "calibration", "threshold", "curves"):
            name = f"{stem}_{arm}_fold0.png" if stem == "curves" else f"{stem}_{arm}.png"
            assert (figures / name).stat().st_size > 1000, name
        for fold in (0, 1):
            events = run / f"results/gout/models/{arm}/fold_{fold}/tensorboard"
            assert any(p.name.startswith("events.out.tfevents") for p in events.iterdir())
    # the comparing figures were redrawn after the new arms' predictions
    newest = max(
        (run / f"results/gout/models/{a}/fold_1/predictions.csv").stat().st_mtime for a in NEW_ARMS
    )
    for name in ("roc.png", "localisation.png", "decision_curve.png"):
        assert (figures / name).stat().st_mtime >= newest, name


@pytest.mark.parametrize(
    "arm, message",
    [
        ("{architecture: torchvision, name: resnet_18}", "close matches: resnet18"),
        ("{architecture: python, builder: 'no_such:net'}", "'no_such' cannot be imported"),
        ("{architecture: python, builder: 'user_nets:three_logits'}", "expected (1, 2)"),
    ],
)
def test_a_bad_arm_stops_before_any_job(tiny_run, arm, message):
    extra = overlay(tiny_run, "bad_arm.yaml", f"studies:\n  gout:\n    arms:\n      bad: {arm}\n")
    proc = snakemake(
        tiny_run, "--configfile", "config/test.yaml", extra, "-n", check=False, env=ENV
    )
    said = proc.stdout + proc.stderr  # Snakemake prints a WorkflowError on stdout
    assert proc.returncode != 0
    assert "studies.gout.arms.bad" in said and message in said, said[-3000:]
    assert "rule train_fold" not in said
