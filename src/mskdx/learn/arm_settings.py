"""arm.json: the settings a trained arm is run with again (predict, export), beside its models.

Written by rule describe_arm from `mskdx.config.layout.Layout.arm_settings`, read by
`mskdx.deploy.predict` and `mskdx.deploy.export`, like a MONAI bundle's or nnU-Net's plans file:
a user need not remember which overlays trained the arm. No torch here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from mskdx.errors import ConfigError

PathLike = str | os.PathLike[str]

ARM_FORMAT = "mskdx.arm/1"


def write_arm_settings(path: PathLike, settings: Mapping) -> None:
    """Rule describe_arm: the arm's settings (`mskdx.config.layout.Layout.arm_settings`) beside
    its fold models, so that predict and export run it as it was trained."""
    from mskdx.io import write_text

    if settings.get("format") != ARM_FORMAT:
        raise ValueError(
            f"arm settings of format {settings.get('format')!r}; expected {ARM_FORMAT}"
        )
    write_text(path, json.dumps(dict(settings), indent=2, sort_keys=True) + "\n")


def read_arm_settings(path: PathLike) -> dict:
    """The arm.json of a trained arm; a clear error where there is none (not trained yet, or
    trained before arm.json was written: rerun the workflow for the arm)."""
    try:
        settings = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: missing; it is written with the arm's fold models: run the workflow for "
            "this study (e.g. `snakemake <same configs> --cores all`) before predict or export"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not readable as the arm's settings ({exc})") from None
    if settings.get("format") != ARM_FORMAT:
        raise ConfigError(f"{path}: format {settings.get('format')!r}; expected {ARM_FORMAT}")
    return settings
