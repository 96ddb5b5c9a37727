"""The report's front page, written from the run's own configuration (arms, data source, input
size, split, training, external cohorts, what was not run, departures from the paper preset, the
crate); the tables and model cards as pages of their own are `mskdx.provenance.pages`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mskdx.io import write_text
from mskdx.provenance.crate import flatten_config, redact_config

log = logging.getLogger(__name__)


# ---- the front page --------------------------------------------------------------------------

STUDY_TITLES = {
    "gout": "Gout on first-MTPJ ultrasound",
    "olt": "Osteochondral lesions of the talus on MRI",
}


def describe_arm(spec: Mapping[str, Any]) -> str:
    """One line for an arm of the configuration: what network, from which weights."""
    kind = spec.get("architecture")
    if kind == "resnet_blocks":
        text = (
            f"ResNet18-style CNN with {spec.get('blocks')} residual blocks, random initial weights"
        )
    elif kind == "resnet50":
        weights = spec.get("weights", "imagenet")
        text = "ResNet50 " + (
            "from ImageNet weights, fully fine-tuned"
            if weights == "imagenet"
            else "from random initial weights"
            if weights == "none"
            else "from a local weights file"
        )
    elif kind == "torchvision":
        text = f"torchvision {spec.get('name')}, weights {spec.get('weights', 'none')}"
    else:
        text = f"the builder {spec.get('builder')}"
    if spec.get("sequence"):
        text += f", sequence {spec['sequence']}"
    return text


def _input_size(pre: Mapping[str, Any]) -> str:
    if pre.get("kind") == "ultrasound":
        w, h, scale = pre.get("crop_width"), pre.get("crop_height"), pre.get("scale", 1.0)
        text = f"B-mode crop {w}x{h}"
        if scale != 1.0:
            text += f" stored at scale {scale} ({round(w * scale)}x{round(h * scale)} pixels)"
        return text
    return f"images resized to {pre.get('size')}x{pre.get('size')}"


def _splits(splits: Mapping[str, Any]) -> str:
    if splits.get("file"):
        return "the user's split file"
    if splits.get("method") == "kfold":
        text = f"{splits.get('folds')}-fold patient-level cross-validation"
        if splits.get("repeats", 1) > 1:
            text += f", repeated {splits['repeats']} times"
        return text
    fractions = "/".join(str(round(f * 100)) for f in splits.get("fractions", []))
    return f"patient-level holdout split {fractions} (train/validation/test, %)"


def _study_lines(study: str, cfg: Mapping[str, Any], external: list[str]) -> list[str]:
    train = cfg.get("train", {})
    lines = [STUDY_TITLES.get(study, study), "~" * len(STUDY_TITLES.get(study, study)), ""]
    lines += [f"- arm **{arm}**: {describe_arm(spec)}" for arm, spec in sorted(cfg["arms"].items())]
    lines += [
        f"- input: {_input_size(cfg.get('preprocess', {}))}",
        f"- split: {_splits(cfg.get('splits', {}))}",
        f"- training: {train.get('epochs')} epochs, batch {train.get('batch_size')}, "
        f"{train.get('optimizer', 'adam')} lr {train.get('lr')}, "
        f"device {train.get('device', 'auto')}"
        + (f", {train['repeats']} training runs per fold" if train.get("repeats", 1) > 1 else ""),
        f"- external validation: {', '.join(external) if external else 'none configured'}",
        "",
    ]
    return lines


def _departures(config: Mapping, paper: Mapping) -> list[str]:
    """`studies.*` settings of the run that differ from the paper preset, one line each."""
    run = flatten_config(redact_config({"studies": config.get("studies", {})}))
    ref = flatten_config(redact_config({"studies": paper.get("studies", {})}))
    out = []
    for key in sorted(run.keys() | ref.keys()):
        if run.get(key) != ref.get(key):
            out.append(f"- ``{key}``: {_show(run.get(key))} (paper preset: {_show(ref.get(key))})")
    return out


def _show(value: Any) -> str:
    return "unset" if value is None else f"``{json.dumps(value, sort_keys=True)}``"


def front_page_rst(
    config: Mapping[str, Any],
    *,
    external: Mapping[str, list[str]] | None = None,
    paper_config: Mapping[str, Any] | None = None,
) -> str:
    """The report's front page (reStructuredText) written from the run's configuration: data
    source, arms, input size, split and training of each study, external cohorts, the settings
    that depart from the paper preset (`paper_config`, config/config.yaml) and what was not run.
    """
    source = config.get("data", {}).get("source")
    name = (config.get("provenance") or {}).get("name") or "mskdx run"
    if source == "synthetic":
        data = (
            f"the synthetic DICOM cohort the pipeline generates (seed {config.get('seed')}, "
            "fake PHI in the headers, lesions with known masks)"
        )
    else:
        data = "the user's DICOM studies and label sheets (paths withheld)"
    lines = [
        name,
        "=" * len(name),
        "",
        "mskdx reproduces two published deep-learning diagnosis studies on " + data + ". Every "
        "table shows the paper's printed values beside ours; the paper check recomputes the "
        "papers' own numbers from their counts. Patients and images appear only under keyed "
        "pseudonyms.",
        "",
        "What this run trained",
        "---------------------",
        "",
    ]
    external = external or {}
    for study in sorted(config.get("studies", {})):
        lines += _study_lines(study, config["studies"][study], external.get(study, []))
    not_run = []
    for study, cfg in sorted(config.get("studies", {}).items()):
        if cfg.get("splits", {}).get("method") == "kfold" and cfg["splits"].get("repeats", 1) == 1:
            if cfg.get("train", {}).get("repeats", 1) == 1:
                not_run.append(
                    f"- {study}: one split and one training run (``splits.repeats`` and "
                    "``train.repeats`` 1): the order of the arms is not a finding"
                )
        if not external.get(study):
            not_run.append(f"- {study}: no external validation cohort")
    not_run.append("- deployment (``mskdx predict`` on new patients) is not part of a run")
    lines += ["Not run", "-------", "", *not_run, ""]
    if paper_config is not None:
        departures = _departures(config, paper_config)
        lines += ["Departures from the paper preset", "--------------------------------", ""]
        lines += departures or ["None: this run uses the paper preset."]
        lines.append("")
    lines += [
        "Provenance",
        "----------",
        "",
        "``results/ro-crate-metadata.json`` is the run's Workflow Run RO-Crate (Provenance Run "
        "Crate 0.5): commit, lock, configuration, every job and every file with its SHA-256. "
        "``mskdx verify results/ro-crate-metadata.json`` checks a results folder against it "
        "(docs/provenance.md).",
        "",
    ]
    # Snakemake renders the front page with Jinja: nothing in it is a template
    return "{% raw %}\n" + "\n".join(lines) + "{% endraw %}\n"


def write_front_page(
    config: Mapping[str, Any],
    path: str | os.PathLike[str],
    *,
    external: Mapping[str, list[str]] | None = None,
    paper_config: Mapping[str, Any] | None = None,
) -> str:
    """Write `front_page_rst` to `path` when its text changed; the absolute path (for the
    Snakefile's `report:`)."""
    path = Path(path).resolve()
    text = front_page_rst(config, external=external, paper_config=paper_config)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        write_text(path, text)
    return str(path)
