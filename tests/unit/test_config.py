"""The config and its overlays validate; a bad value fails before any job runs, naming the key."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.utils import update_config, validate

REPO = Path(__file__).resolve().parents[2]
SCHEMA = str(REPO / "workflow/schemas/config.schema.yaml")


def load(*names: str) -> dict:
    config: dict = {}
    for name in names:
        update_config(config, yaml.safe_load((REPO / "config" / name).read_text()))
    return config


@pytest.mark.parametrize("overlay", [None, "quick.yaml", "test.yaml", "rehearsal.yaml"])
def test_config_and_overlays_are_valid(overlay):
    config = load("config.yaml", *([overlay] if overlay else []))
    validate(config, SCHEMA)
    # the paper's settings stay the default
    gout, olt = config["studies"]["gout"], config["studies"]["olt"]
    if overlay is None:
        assert (gout["preprocess"]["crop_width"], gout["preprocess"]["crop_height"]) == (700, 320)
        assert gout["splits"]["folds"] == 5 and gout["evaluate"]["threshold_step"] == 0.02
        assert olt["splits"]["fractions"] == [0.6, 0.2, 0.2]
        assert olt["train"]["lr"] == 0.001 and olt["train"]["epochs"] == 60
        assert sorted(gout["arms"]) == ["blocks2", "blocks3", "blocks4", "blocks6"]


def flatten(tree: object, prefix: str = "") -> dict[str, object]:
    """{"a.b.c": leaf} of a nested mapping (lists are leaves)."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, object] = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


# What the rehearsal may change: how many patients and images, epochs, Grad-CAM samples.
REHEARSAL_KEYS = re.compile(
    r"synthetic\.(gout|olt)\.(patients_gout|patients_control|images|subjects_patient|"
    r"subjects_healthy|images\.T[12]\.(patient|healthy))"
    r"|synthetic\.external\.(gout|olt)\.\w+\.(patients_gout|patients_control|images|"
    r"subjects_patient|subjects_healthy|images\.T[12]\.(patient|healthy))"
    r"|studies\.(gout|olt)\.(train\.epochs|gradcam\.samples)"
)


def test_rehearsal_changes_only_cohort_sizes_and_epochs():
    """Key by key: the merged rehearsal config equals the paper preset but for the sizes."""
    paper, rehearsal = flatten(load("config.yaml")), flatten(load("config.yaml", "rehearsal.yaml"))
    assert set(rehearsal) == set(paper), sorted(set(rehearsal) ^ set(paper))
    changed = {key for key in paper if rehearsal[key] != paper[key]}
    drift = sorted(key for key in changed if not REHEARSAL_KEYS.fullmatch(key))
    assert not drift, f"config/rehearsal.yaml changes more than sizes and epochs: {drift}"
    # and it does cut what it is for
    assert {"synthetic.gout.images", "studies.gout.train.epochs", "studies.olt.train.epochs"} <= (
        changed
    )
    assert rehearsal["studies.gout.preprocess.scale"] == 1.0
    assert rehearsal["studies.olt.arms.T1.weights"] == "imagenet"


def test_the_drift_check_sees_a_changed_setting():
    """The check above is not vacuous: an overlay that also changes the crop is caught."""
    paper = flatten(load("config.yaml"))
    doctored = dict(flatten(load("config.yaml", "rehearsal.yaml")))
    doctored["studies.gout.preprocess.scale"] = 0.2
    changed = {key for key in paper if doctored[key] != paper[key]}
    assert [key for key in changed if not REHEARSAL_KEYS.fullmatch(key)] == [
        "studies.gout.preprocess.scale"
    ]


@pytest.mark.parametrize(
    ("path", "value", "key"),
    [
        (("studies", "gout", "train", "lr"), "fast", "lr"),
        (("studies", "gout", "splits", "folds"), 1, "folds"),
        (("studies", "olt", "preprocess", "size"), 4, "size"),
        (("data", "on_error"), "ignore", "on_error"),
        (("studies", "olt", "calibration", "method"), "bayes", "method"),
        (("studies", "gout", "train", "epochs_typo"), 3, "epochs_typo"),
    ],
)
def test_bad_value_is_refused_naming_the_key(path, value, key):
    config = copy.deepcopy(load("config.yaml"))
    node = config
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    with pytest.raises(Exception, match=key):
        validate(config, SCHEMA)


def test_workflow_stops_before_any_job_on_a_bad_value(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("studies:\n  gout:\n    train:\n      batch_size: -3\n")
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "snakemake"),
            "-n",
            "--cores",
            "1",
            "--configfile",
            "config/config.yaml",
            str(bad),
            "--directory",
            str(tmp_path / "run"),
            "--snakefile",
            str(REPO / "Snakefile"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert proc.returncode != 0
    assert "batch_size" in proc.stderr + proc.stdout
    assert not (tmp_path / "run" / "results").exists()


def test_comparison_reference_is_named_in_advance_and_best_arm_is_renamed(tmp_path):
    """Issue 37: the paper preset names the gout paper's reference arm; an old config's
    evaluate.best_arm gets one line that names the new key; a reference that is not an arm is
    refused naming the key and the arms."""
    from mskdx.config.layout import Layout
    from mskdx.config.load import load_config
    from mskdx.errors import ConfigError

    paper = load_config([])
    assert paper["studies"]["gout"]["comparison"]["reference"] == "blocks3"
    assert paper["studies"]["olt"]["comparison"]["reference"] == "auto"
    quick = load_config([REPO / "config/quick.yaml"])
    assert quick["studies"]["gout"]["comparison"]["reference"] == "auto"
    bare = tmp_path / "bare.yaml"  # a study without the section: the schema's default
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    del config["studies"]["olt"]["comparison"]
    bare.write_text(yaml.safe_dump(config))
    assert load_config([], base=bare)["studies"]["olt"]["comparison"] == {"reference": "auto"}
    old = tmp_path / "old.yaml"
    old.write_text("studies:\n  gout:\n    evaluate:\n      best_arm: blocks4\n")
    with pytest.raises(ConfigError) as err:
        load_config([old])
    assert str(err.value) == (
        f"config: studies.gout.evaluate.best_arm: renamed to studies.gout.comparison.reference "
        f"(set in {old}); set studies.gout.comparison.reference (an arm named in advance, or "
        "auto) instead"
    )
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("studies:\n  gout:\n    comparison:\n      reference: blocks5\n")
    layout = Layout(load_config([wrong]))
    with pytest.raises(ConfigError, match=r"studies.gout.comparison.reference='blocks5' is not"):
        layout.comparison_reference("gout")
    assert Layout(paper).comparison_reference("gout") == "blocks3"
