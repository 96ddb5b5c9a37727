"""Checks of a config that need more than its schema, made before any job starts.

- a user's split file must be readable and hold integer folds (`user_split_folds`);
- with `data.source: dicom` a study's inputs must be set (`study_input_paths`);
- repeats are for k-fold CV only (`check_repeats`);
- outputs made from one data source are never reused under another (`check_data_source`):
  each extraction records its source beside its cache (`write_source`, `cache/source.json`),
  and a config whose source differs from what a study's existing results were made from stops
  the run, naming the folder to move away.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from mskdx.errors import ConfigError
from mskdx.io import write_text

PathLike = str | os.PathLike[str]


@cache
def user_split_folds(path: str, study: str) -> list[int]:
    """The folds of a user's split file; a clear error for a missing file or column."""
    expected = "expected a CSV with columns fold,patient,subset (optional label)"
    key = f"studies.{study}.splits.file"
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise ConfigError(
            f"{path} ({key}): split file cannot be read ({exc.strerror}); {expected}"
        ) from None
    columns = list(rows[0]) if rows else []
    if "fold" not in columns:
        raise ConfigError(
            f"{path} ({key}): no column 'fold' (the header has {columns}); {expected}"
        )
    try:
        return sorted({int(row["fold"]) for row in rows})
    except (TypeError, ValueError):
        raise ConfigError(f"{path} ({key}): column 'fold' must hold integers; {expected}") from None


def study_input_paths(study_config: Mapping, study: str) -> dict[str, str]:
    """{dicom, labels[, truth]} of a study's own data; names a config key left unset."""
    given = study_config.get("input") or {}
    missing = [k for k in ("dicom_dir", "labels") if not given.get(k)]
    if missing:
        keys = ", ".join(f"studies.{study}.input.{k}" for k in missing)
        raise ConfigError(
            f"data.source is dicom but {keys} {'is' if len(missing) == 1 else 'are'} not set: "
            "give the study's DICOM folder and label sheet, or leave "
            f"{study} out of the run by asking for the other study's results only (see README, "
            "Your own data)"
        )
    paths = {"dicom": given["dicom_dir"], "labels": given["labels"]}
    if given.get("masks"):
        paths["truth"] = given["masks"]
    return paths


def check_repeats(config: Mapping) -> None:
    """splits.repeats and train.repeats feed the companion table of k-fold CV: on a holdout study
    they would train jobs that no table reads, so they stop the run instead."""
    for study, cfg in config["studies"].items():
        asked = {
            key: value
            for key, value in (
                ("splits.repeats", cfg["splits"].get("repeats", 1)),
                ("train.repeats", cfg["train"].get("repeats", 1)),
            )
            if value > 1
        }
        kfold = cfg["splits"]["method"] == "kfold" or bool(cfg["splits"].get("file"))
        if asked and not kfold:
            raise ConfigError(
                f"studies.{study}: {', '.join(f'{k}: {v}' for k, v in asked.items())} asked, "
                f"but its splits.method is {cfg['splits']['method']!r}: repeats are for k-fold "
                "CV (the companion table of Table I); remove them or use method: kfold"
            )


SOURCE_FORMAT = "mskdx.source/1"


def write_source(path: PathLike, source: str) -> None:
    """Record beside a cache which data source it was extracted from."""
    write_text(path, json.dumps({"format": SOURCE_FORMAT, "source": source}) + "\n")


def recorded_source(path: PathLike) -> str | None:
    """The data source a cache records, or None (no cache, or one from before the record)."""
    try:
        return str(json.loads(Path(path).read_text())["source"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_data_source(config: Mapping, results: PathLike = "results") -> None:
    """Stop before the DAG is built when a study's existing results were made from another data
    source than the config names: Snakemake would otherwise keep them (nothing it tracks says
    they are stale) and mix, e.g., synthetic OLT tables with a real gout cohort."""
    wanted = config["data"]["source"]
    for study in config["studies"]:
        caches = [Path(results, study, "cache", "source.json")]
        caches += sorted(Path(results, study, "external").glob("*/cache/source.json"))
        for marker in caches:
            found = recorded_source(marker)
            if found is not None and found != wanted:
                folder = marker.parent.parent
                raise ConfigError(
                    f"data.source is {wanted!r} but {folder}/ was made from {found!r} data "
                    f"({marker}); outputs of one data source are never reused under another: "
                    f"move {Path(results, study)}/ away (or delete it) before this run, or set "
                    f"data.source back to {found!r}"
                )
