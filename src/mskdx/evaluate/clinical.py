"""What a reviewer asks after the paper tables: calibration and clinical usefulness.

Works on prediction tables (schema `predictions`) of the development cohort (the test subsets of
every fold, pooled: each image is predicted once, by the model that did not see its patient) and
of external cohorts (the same columns, `subset` = "test").

Levels:
- image: one row per image, its probability.
- patient: one row per patient, the MEAN probability of its images. The papers diagnose a patient
  by the share of images called abnormal against a searched threshold; that share is a count, not
  a risk, so the calibration and decision-curve analyses use the mean image probability, a
  probability on the same scale as the images' (documented in docs/architecture.md).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from mskdx.evaluate.stats.calibration import (
    brier_score,
    calibration_fit,
    reliability_bins,
    smoothed_calibration,
)
from mskdx.evaluate.stats.decision import net_benefit, threshold_grid_dca
from mskdx.ingest.label_levels import patient_level
from mskdx.io import write_table, write_text

log = logging.getLogger(__name__)

LEVELS = ("image", "patient")


def scored_rows(predictions: pd.DataFrame) -> pd.DataFrame:
    """The rows scored by a model that did not train on them (subset test)."""
    return predictions[predictions["subset"] == "test"].reset_index(drop=True)


def at_level(test: pd.DataFrame, level: str) -> pd.DataFrame:
    """One row per image (its image label), or per patient (its diagnosis, `patient_label`
    where present; mean image probability), with columns label, prob."""
    if level == "image":
        return test[["arm", "patient", "image_id", "label", "prob"]].copy()
    if level != "patient":
        raise ValueError(f"level={level!r}: expected one of {LEVELS}")
    test = patient_level(test)  # a patient is scored against its diagnosis, not image labels
    labels = test.groupby(["arm", "patient"])["label"].nunique()
    if (labels > 1).any():
        raise ValueError("a patient has images of both labels; expected one diagnosis per patient")
    grouped = test.groupby(["arm", "patient"], sort=True)
    return grouped.agg(label=("label", "first"), prob=("prob", "mean")).reset_index()


def _ci(low: float, high: float, digits: int = 3) -> str:
    if math.isnan(low) and math.isnan(high):
        return "not estimable"
    # a profile bound that never reaches the cut-off is infinite: print it as such
    return f"[{low:.{digits}f}, {high:.{digits}f}]".replace("inf", "∞")


def _calibration_row(part: pd.DataFrame, method: str, clustered: bool) -> dict:
    y, p = part["label"].to_numpy(), part["prob"].to_numpy()
    brier = brier_score(y, p)
    fit = calibration_fit(y, p, method=method)
    row = {
        "n": fit.n,
        "positives": fit.events,
        "brier": round(brier.value, 4),
        "brier_ci": _ci(brier.low, brier.high, 4),
        "brier_prevalence_only": round(brier.reference, 4),
        "intercept": round(fit.intercept, 3),
        "intercept_ci": _ci(fit.intercept_low, fit.intercept_high),
        "slope": round(fit.slope, 3),
        "slope_ci": _ci(fit.slope_low, fit.slope_high),
        "method": fit.method,
        "note": "; ".join(x for x in (fit.note, brier.note) if x),
    }
    if not clustered:
        return row
    from mskdx.evaluate.stats.calibration_clustered import (
        brier_score_clustered,
        calibration_fit_clustered,
    )

    groups = part["patient"].to_numpy()
    c_brier = brier_score_clustered(y, p, groups)
    c_fit = calibration_fit_clustered(y, p, groups, method=method)
    for name in ("brier_ci", "intercept_ci", "slope_ci"):
        row[f"{name}_independent"] = row[name]
    row["brier_ci"] = _ci(c_brier.low, c_brier.high, 4)
    row["intercept_ci"] = _ci(c_fit.intercept_low, c_fit.intercept_high)
    row["slope_ci"] = _ci(c_fit.slope_low, c_fit.slope_high)
    row["patients"] = c_fit.clusters
    clustered_notes = [f"clustered: {x}" for x in (c_fit.note, c_brier.note) if x]
    row["note"] = "; ".join(x for x in (row["note"], *clustered_notes) if x)
    return {key: row[key] for key in CLUSTERED_COLUMNS}


#: columns of the clustered table: each independent CI beside its clustered one, note last
CLUSTERED_COLUMNS = (
    "n",
    "patients",
    "positives",
    "brier",
    "brier_ci",
    "brier_ci_independent",
    "brier_prevalence_only",
    "intercept",
    "intercept_ci",
    "intercept_ci_independent",
    "slope",
    "slope_ci",
    "slope_ci_independent",
    "method",
    "note",
)


def calibration_table(
    cohorts: dict[str, pd.DataFrame],
    levels: Sequence[str] = ("image",),
    method: str = "ml",
    clustered: bool = False,
) -> pd.DataFrame:
    """Brier score, calibration intercept and slope with 95% CIs per cohort, arm and level.

    `cohorts` maps a cohort name ("development", an external cohort's name) to its predictions;
    `method` is the recalibration fit, "ml" or "firth" (`calibration_fit`). A value that does not
    exist (e.g. the ML slope under separation) is NaN, its CI "not estimable", and `note` says
    why. With `clustered` (issue 37) brier_ci, intercept_ci and slope_ci are patient-clustered
    (`stats.calibration_clustered`: sandwich Wald CIs, the Brier ratio estimator), the
    image-independent CIs move to `*_ci_independent`, and `patients` counts the clusters; at
    the patient level every cluster is one row (robust HC1 and plain Brier CIs).
    """
    rows = []
    for cohort, predictions in cohorts.items():
        test = scored_rows(predictions)
        for level in levels:
            table = at_level(test, level)
            for arm, part in table.groupby("arm", sort=True):
                row = {"cohort": cohort, "arm": arm, "level": level}
                rows.append(row | _calibration_row(part, method, clustered))
    return pd.DataFrame(rows)


def reliability_table(
    cohorts: dict[str, pd.DataFrame], level: str, n_bins: int, strategy: str
) -> pd.DataFrame:
    """Reliability bins (observed vs predicted, Wilson CIs) per cohort and arm at one level."""
    parts = []
    for cohort, predictions in cohorts.items():
        table = at_level(scored_rows(predictions), level)
        for arm, part in table.groupby("arm", sort=True):
            bins = reliability_bins(part["label"], part["prob"], n_bins, strategy)
            bins.insert(0, "level", level)
            bins.insert(0, "arm", arm)
            bins.insert(0, "cohort", cohort)
            parts.append(bins)
    return pd.concat(parts, ignore_index=True)


def decision_curve_table(
    cohorts: dict[str, pd.DataFrame], level: str, low: float, high: float, step: float
) -> pd.DataFrame:
    """Net benefit of every arm, treat-all and treat-none per cohort over the threshold grid."""
    grid = threshold_grid_dca(low, high, step)
    parts = []
    for cohort, predictions in cohorts.items():
        table = at_level(scored_rows(predictions), level)
        for arm, part in table.groupby("arm", sort=True):
            curve = net_benefit(part["label"].to_numpy(), part["prob"].to_numpy(), grid)
            curve.insert(0, "level", level)
            curve.insert(0, "arm", arm)
            curve.insert(0, "cohort", cohort)
            parts.append(curve)
    out = pd.concat(parts, ignore_index=True)
    for (cohort, arm), part in out.groupby(["cohort", "arm"], sort=True):
        useful = part.loc[part["useful"], "threshold"]
        span = f"{useful.min():.2f}-{useful.max():.2f}" if len(useful) else "none"
        log.info(
            "%s %s (%s level): net benefit above both defaults at %s", cohort, arm, level, span
        )
    return out


# ---- workflow steps (rules tabulate_calibration, plot_calibration, plot_decision_curve) ---------

PathLike = str | Path


def _read_all(paths: Sequence[PathLike]) -> pd.DataFrame:
    from mskdx.io import read_table

    return pd.concat([read_table(p, "predictions") for p in paths], ignore_index=True)


def read_cohorts(
    development: Sequence[PathLike], external: Sequence[PathLike] | dict | None = None
) -> dict[str, pd.DataFrame]:
    """Prediction tables by cohort: the development folds pooled, then each external cohort.

    `external` is a mapping cohort -> ensemble files, or a list of ensemble files
    `results/<study>/external/<cohort>/ensemble_<arm>.csv` (the cohort is their folder's name).
    """
    if external is None:
        external = {}
    if not isinstance(external, dict):
        grouped: dict[str, list[PathLike]] = {}
        for path in external:
            grouped.setdefault(Path(path).parent.name, []).append(path)
        external = grouped
    cohorts = {"development": _read_all(development)}
    for name, paths in external.items():
        cohorts[name] = _read_all([paths] if isinstance(paths, (str, Path)) else paths)
    return cohorts


def write_calibration_table(
    predictions: Sequence[PathLike],
    *,
    levels: Sequence[str],
    csv: PathLike,
    md: PathLike,
    external: Sequence[PathLike] | None = None,
    method: str = "ml",
    clustered: bool = False,
) -> None:
    from mskdx.evaluate.markdown import to_markdown

    table = calibration_table(read_cohorts(predictions, external), levels, method, clustered)
    for row in table[table["note"] != ""].itertuples():
        log.info("calibration %s %s (%s level): %s", row.cohort, row.arm, row.level, row.note)
    write_table(table, csv)
    title = "Calibration: Brier score, intercept and slope (95% CIs)"
    if clustered:
        title = (
            "Calibration: Brier score, intercept and slope (95% CIs clustered by patient; "
            "*_ci_independent: images taken as independent)"
        )
    write_text(md, to_markdown(table, title))


def plot_calibration_step(
    predictions: Sequence[PathLike],
    *,
    arm: str,
    level: str,
    bins: int,
    strategy: str,
    lowess_frac: float,
    table: PathLike,
    outputs: list,
    style: dict,
    external: Sequence[PathLike] | None = None,
) -> None:
    """Reliability diagram of one arm, development and external cohorts together."""
    from mskdx.evaluate.figures.calibration import plot_calibration

    cohorts = {
        name: frame[frame["arm"] == arm]
        for name, frame in read_cohorts(predictions, external).items()
    }
    reliability = reliability_table(cohorts, level, bins, strategy)
    smooth = {}
    for name, frame in cohorts.items():
        rows = at_level(scored_rows(frame), level)
        smooth[name] = smoothed_calibration(rows["label"], rows["prob"], lowess_frac)
    write_table(reliability, table)
    plot_calibration(reliability, smooth, f"{arm}: calibration ({level} level)", outputs, style)


def plot_decision_curve_step(
    predictions: Sequence[PathLike],
    *,
    level: str,
    low: float,
    high: float,
    step: float,
    title: str,
    table: PathLike,
    outputs: list,
    style: dict,
    external: Sequence[PathLike] | None = None,
) -> None:
    from mskdx.evaluate.figures.calibration import plot_decision_curve

    curves = decision_curve_table(read_cohorts(predictions, external), level, low, high, step)
    write_table(curves, table)
    plot_decision_curve(curves, f"{title}: decision curve ({level} level)", outputs, style)
