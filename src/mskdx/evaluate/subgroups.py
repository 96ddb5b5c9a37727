"""Subgroup tables: each arm's AUC, sensitivity and specificity per scanner, site, sex and age band.

A model that works on average may fail on one scanner or in one age group (CLAIM 2024 item 37,
TRIPOD+AI 23a). For every arm, cohort (development: the pooled test folds; each external site:
the ensemble of the fold models) and subgroup, at image and patient level: the AUC and
sensitivity and specificity at `evaluate.image_threshold` with CIs clustered by patient (the
Obuchowski AUC, Wilson on the design-effect n; `mskdx.evaluate.comparisons`) and the
image-independent ones (DeLong, Wilson) as ``*_independent``; a patient's probability is the
mean over their images in the subgroup (as in the calibration table). The subgroups come from
the manifest's non-identifying columns: scanner = Manufacturer + ManufacturerModelName, sex,
and a coarse age band at the study (`mskdx.ingest.deid.age_band`). A subgroup with fewer than
`min_patients` patients is not shown (small cells can identify people, and their intervals say
nothing); the table says how many were left out.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mskdx.evaluate.comparisons import auc_columns, proportion_columns
from mskdx.ingest.label_levels import patient_level
from mskdx.io import read_table, write_table, write_text

log = logging.getLogger(__name__)

PathLike = str | Path
#: the subgroup variables, in table order: name -> how a manifest row names its group
VARIABLES = ("site", "scanner", "sex", "age_band")
LEVELS = ("image", "patient")
SUPPRESSED = "suppressed"
MIN_PATIENTS = 5


def _scanner(table: pd.DataFrame) -> pd.Series:
    maker = table.get("manufacturer", pd.Series("", index=table.index)).fillna("").astype(str)
    model = table.get("model", pd.Series("", index=table.index)).fillna("").astype(str)
    joined = (maker.str.strip() + " " + model.str.strip()).str.strip()
    return joined.where(joined != "", "unknown")


def _column(table: pd.DataFrame, name: str) -> pd.Series:
    values = table.get(name, pd.Series("", index=table.index)).fillna("").astype(str)
    return values.where(values.str.strip() != "", "unknown")


def scored_with_groups(
    predictions: pd.DataFrame, manifest: pd.DataFrame, cohort: str
) -> pd.DataFrame:
    """The test rows of `predictions` with the subgroup columns of their manifest rows."""
    test = predictions[predictions["subset"] == "test"]
    missing = set(test["image_id"]) - set(manifest["image_id"])
    if missing:
        raise ValueError(
            f"cohort {cohort}: {len(missing)} scored images are not in its manifest; expected "
            "the manifest of the cache the models scored"
        )
    info = manifest.drop_duplicates("image_id").set_index("image_id")
    info = pd.DataFrame(
        {
            "scanner": _scanner(info),
            "sex": _column(info, "sex"),
            "age_band": _column(info, "age_band"),
        }
    )
    columns = ["arm", "patient", "image_id", "label", "prob"]
    columns += ["patient_label"] if "patient_label" in test.columns else []
    out = test[columns].join(info, on="image_id")
    return out.assign(cohort=cohort, site=cohort)


def _metrics_row(rows: pd.DataFrame, level: str, threshold: float) -> dict:
    """AUC, sensitivity and specificity of one group: clustered by patient at image level (a
    patient is one row at patient level, where clustered = independent), the image-independent
    intervals (DeLong, Wilson) beside them as ``*_independent``."""
    if level == "patient":
        rows = (
            patient_level(rows)
            .groupby("patient", sort=True)
            .agg(label=("label", "first"), prob=("prob", "mean"))
            .reset_index()
        )
    y = rows["label"].to_numpy(np.int64)
    prob = rows["prob"].to_numpy(np.float64)
    pid = rows["patient"].astype(str).to_numpy()
    right = (prob > threshold) == (y == 1)
    auc, _ = auc_columns(y, prob, pid)
    out = {"n": len(rows), "positives": int(y.sum()), "negatives": int(len(y) - y.sum())}
    out |= {k: auc[k] for k in ("auc", "auc_low", "auc_high", "auc_low_independent",
                                "auc_high_independent", "auc_deff")}  # fmt: skip
    for name, mask in (("sensitivity", y == 1), ("specificity", y == 0)):
        cols, _ = proportion_columns(name, right[mask], pid[mask], False)
        keep = ("", "_low", "_high", "_low_independent", "_high_independent")
        out |= {f"{name}{k}": cols[f"{name}{k}"] for k in keep}
    return out


def subgroup_table(
    scored: pd.DataFrame, *, image_threshold: float = 0.5, min_patients: int = MIN_PATIENTS
) -> pd.DataFrame:
    """One row per arm, cohort, variable, group and level (see the module docstring).

    `scored` holds columns arm, cohort, patient, image_id, label, prob and one per variable.
    Groups with fewer than `min_patients` patients are replaced by one row per arm, cohort,
    variable and level whose group is "suppressed" and `n` the number of groups left out.
    """
    if min_patients < 1:
        raise ValueError(f"min_patients={min_patients}; expected >= 1")
    rows = []
    for (arm, cohort), part in scored.groupby(["arm", "cohort"], sort=False):
        for variable in VARIABLES:
            hidden = 0
            for group, cell in part.groupby(variable, sort=True):
                patients = cell["patient"].nunique()
                if patients < min_patients:
                    hidden += 1
                    continue
                for level in LEVELS:
                    rows.append(
                        {
                            "arm": arm,
                            "cohort": cohort,
                            "variable": variable,
                            "group": group,
                            "level": level,
                            "patients": patients,
                            **_metrics_row(cell, level, image_threshold),
                        }
                    )
            if hidden:
                rows.append(
                    {
                        "arm": arm,
                        "cohort": cohort,
                        "variable": variable,
                        "group": SUPPRESSED,
                        "level": "",
                        "patients": math.nan,
                        "n": hidden,
                    }
                )
                log.info(
                    "%s/%s %s: %d groups with fewer than %d patients not shown",
                    arm,
                    cohort,
                    variable,
                    hidden,
                    min_patients,
                )
    columns = [
        "arm", "cohort", "variable", "group", "level", "patients", "n", "positives",
        "negatives", "auc", "auc_low", "auc_high", "auc_low_independent", "auc_high_independent",
        "auc_deff", "sensitivity", "sensitivity_low", "sensitivity_high",
        "sensitivity_low_independent", "sensitivity_high_independent", "specificity",
        "specificity_low", "specificity_high", "specificity_low_independent",
        "specificity_high_independent",
    ]  # fmt: skip
    return pd.DataFrame(rows).reindex(columns=columns)


def _ci(value: float, low: float, high: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{value:.3f}"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def subgroup_markdown(table: pd.DataFrame, *, min_patients: int) -> str:
    """The table for people: one line per group, CIs in brackets, the suppressed groups said."""
    lines = [
        "### Subgroups: AUC, sensitivity and specificity (95% CIs clustered by patient)",
        "",
        f"Groups with fewer than {min_patients} patients are not shown (their number is given).",
        "Patient level: the mean probability of the patient's images in the group.",
        "Image level: CIs clustered by patient (AUC: Obuchowski 1997; proportions: Wilson on the "
        "design-effect n); the CSV's `_independent` columns treat the images as independent "
        "(DeLong, Wilson). At patient level the two are the same.",
        "",
        "| arm | cohort | variable | group | level | patients | n (pos/neg) | AUC | sensitivity "
        "| specificity |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples(index=False):
        if r.group == SUPPRESSED:
            lines.append(
                f"| {r.arm} | {r.cohort} | {r.variable} | {int(r.n)} groups with fewer than "
                f"{min_patients} patients not shown | | | | | | |"
            )
            continue
        lines.append(
            f"| {r.arm} | {r.cohort} | {r.variable} | {str(r.group).replace('|', '/')} | "
            f"{r.level} | {int(r.patients)} | {int(r.n)} ({int(r.positives)}/{int(r.negatives)}) "
            f"| {_ci(r.auc, r.auc_low, r.auc_high)} "
            f"| {_ci(r.sensitivity, r.sensitivity_low, r.sensitivity_high)} "
            f"| {_ci(r.specificity, r.specificity_low, r.specificity_high)} |"
        )
    return "\n".join(lines) + "\n"


def _read_predictions(paths: Sequence[PathLike]) -> pd.DataFrame:
    return pd.concat([read_table(p, "predictions") for p in paths], ignore_index=True)


def tabulate_subgroups_step(
    predictions: Sequence[PathLike],
    manifest: PathLike,
    *,
    external: Sequence[PathLike] = (),
    external_manifests: Sequence[PathLike] = (),
    image_threshold: float,
    min_patients: int,
    csv: PathLike,
    md: PathLike,
) -> pd.DataFrame:
    """Write the subgroup table (CSV and Markdown) of the development predictions (pooled test
    folds, with `manifest`) and the external cohorts: `external` are the ensemble files
    `.../external/<cohort>/ensemble_<arm>.csv`, `external_manifests` their caches'
    `.../external/<cohort>/cache/manifest.csv` (the cohort is the folder's name)."""
    parts = [
        scored_with_groups(
            _read_predictions(predictions), read_table(manifest, "manifest"), "development"
        )
    ]
    manifests = {Path(m).parent.parent.name: m for m in external_manifests}
    ensembles: dict[str, list[PathLike]] = {}
    for path in external:
        ensembles.setdefault(Path(path).parent.name, []).append(path)
    for cohort, paths in ensembles.items():
        if cohort not in manifests:
            raise ValueError(f"external cohort {cohort}: ensemble scores but no manifest given")
        parts.append(
            scored_with_groups(
                _read_predictions(paths), read_table(manifests[cohort], "manifest"), cohort
            )
        )
    table = subgroup_table(
        pd.concat(parts, ignore_index=True),
        image_threshold=image_threshold,
        min_patients=min_patients,
    )
    write_table(table, csv)
    write_text(md, subgroup_markdown(table, min_patients=min_patients))
    return table
