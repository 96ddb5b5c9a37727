"""The same trained models whatever --cores says: a job computes with `train.threads` threads,
not with the cores the scheduler grants (issue 25)."""

from __future__ import annotations

import pytest
import yaml

from .conftest import copy_workflow, snakemake

pytestmark = pytest.mark.workflow

FOLDS = (0, 1)  # config/test.yaml: 2 folds
ARMS = ("blocks2", "blocks3", "blocks4", "blocks6")


def predictions(workdir) -> dict[str, bytes]:
    return {
        f"{arm}/{fold}": (
            workdir / f"results/gout/models/{arm}/fold_{fold}/predictions.csv"
        ).read_bytes()
        for arm in ARMS
        for fold in FOLDS
    }


def test_cores_do_not_change_predictions(tmp_path):
    workdir = copy_workflow(tmp_path / "mskdx")
    targets = [
        f"results/gout/models/{arm}/fold_{fold}/predictions.csv" for arm in ARMS for fold in FOLDS
    ]
    snakemake(workdir, "--cores", "2", *targets)
    two = predictions(workdir)
    snakemake(
        workdir, *targets, "--cores", "1", "--forcerun", "train_fold"
    )  # targets first: --forcerun takes a list
    one = predictions(workdir)
    differ = sorted(k for k in two if one[k] != two[k])
    assert not differ, f"--cores 1 and --cores 2 trained different models: {differ}"
    # the setting itself is a method setting: one intra-op thread instead of two retrains
    # (params), which is why it lives in the config and not in --cores
    config = workdir / "config/test.yaml"
    tiny = yaml.safe_load(config.read_text())
    tiny["studies"]["gout"]["train"]["threads"] = 1
    config.write_text(yaml.safe_dump(tiny, sort_keys=False))  # same order: same params
    dry = snakemake(workdir, *targets, "-n")
    assert "train_fold" in dry.stdout + dry.stderr
