"""Synthetic DICOM cohorts for both studies (the real cohorts are private).

`synthesize(study, out_dir, config["synthetic"])` writes into `out_dir`:

- `dicom/<PatientID>/<StudyDate>/<NNN_series>/IM_<n>.dcm`: the DICOM tree, with fake PHI;
- `labels.csv`: `patient_id,diagnosis` (gout/control or patient/healthy), one row per patient;
- `image_labels.csv`: one row per image (frame), abnormal iff its lesion mask is not empty; gout
  keyed by `SOPInstanceUID` with the findings shown (DCs, tophus, aggregates, erosion), OLT by
  `path` relative to `dicom/` (see `mskdx.synth.common.CohortWriter`);
- `masks.npz`: `<sha256 of the file bytes>_<frame>` -> uint8 lesion mask (Rows, Columns) of every
  frame of every file (frames numbered from 0; all zeros where no lesion is shown).

Images are counted in frames: a multi-frame file of k frames counts as k images. The same
arguments give byte-identical output; the cohort appears in `out_dir` only once complete.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from mskdx.errors import ConfigError
from mskdx.synth.mri import OltPlan, plan_olt, synthesize_olt
from mskdx.synth.ultrasound import GoutPlan, plan_gout, synthesize_gout

__all__ = [
    "GoutPlan",
    "OltPlan",
    "plan_gout",
    "plan_olt",
    "synthesize",
    "synthesize_gout",
    "synthesize_olt",
]

_GOUT_KEYS = ("patients_gout", "patients_control", "images")
_GOUT_OPTIONAL = ("lesion_fraction", "width", "height", "synovitis")
_OLT_KEYS = ("subjects_patient", "subjects_healthy", "images")
_OLT_OPTIONAL = ("size",)


def _section(config: Mapping, key: str, required: tuple[str, ...], optional: tuple[str, ...]):
    section = config.get(key)
    if not isinstance(section, Mapping):
        raise ConfigError(f"synthetic.{key}: missing or not a mapping; expected the {key} cohort")
    missing = [k for k in required if k not in section]
    if missing:
        raise ConfigError(f"synthetic.{key}: missing {missing}; expected {list(required)}")
    unknown = sorted(set(section) - set(required) - set(optional))
    if unknown:
        raise ConfigError(
            f"synthetic.{key}: unknown keys {unknown}; expected {list(required + optional)}"
        )
    return dict(section)


def synthesize(study: str, out_dir: Path, synthetic_config: Mapping) -> None:
    """Write the synthetic cohort of `study` (gout | olt) as `config["synthetic"]` describes."""
    if not isinstance(synthetic_config, Mapping):
        raise ConfigError(f"synthetic = {synthetic_config!r}; expected a mapping")
    for key in ("seed", "difficulty"):
        if key not in synthetic_config:
            raise ConfigError(f"synthetic.{key}: missing; expected seed and difficulty")
    seed = synthetic_config["seed"]
    difficulty = synthetic_config["difficulty"]
    if study == "gout":
        cfg = _section(synthetic_config, "gout", _GOUT_KEYS, _GOUT_OPTIONAL)
        synthesize_gout(Path(out_dir), **cfg, difficulty=difficulty, seed=seed)
    elif study == "olt":
        cfg = _section(synthetic_config, "olt", _OLT_KEYS, _OLT_OPTIONAL)
        synthesize_olt(Path(out_dir), **cfg, difficulty=difficulty, seed=seed)
    else:
        raise ConfigError(f"study {study!r}: unknown; expected 'gout' or 'olt'")
