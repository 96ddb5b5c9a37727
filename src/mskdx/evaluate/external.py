"""External validation: score another site's cohort with the development models of every arm.

An external cohort is extracted by the development cohort's own stage (`mskdx.ingest.extract`, the
same rule script, spec, region, crop and label-sheet rules), into its own cache. Each arm's fold
models score every image of it (`score_cohort`), with the very functions that wrote the development
predictions (`mskdx.learn.loop.predict` on a `DeviceImages` bank with the checkpoint's
normalization and batch size). The cohort's probability of an image is the MEAN probability of the
fold models (an ensemble of the k cross-validation models; OLT has one model, so mean = that model);
each fold model's scores are kept as well.

Tables: the development tables' own builders (`mskdx.evaluate.tables.gout_image_table`, `olt_table`)
on the ensemble and on each fold model, so clustered by patient with the image-independent values
beside them and the tests against the configured reference (`mskdx.evaluate.comparisons`); the
patient level of gout applies the development threshold: the mean over folds of the threshold each
fold searched on its training patients (Table III), to the share of a patient's images called
abnormal.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mskdx.errors import PreprocessError
from mskdx.ingest.label_levels import label_note, patient_level
from mskdx.io import read_table, table_columns, write_table, write_text

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]

#: the columns of predictions.csv, as workflow/schemas/predictions.schema.yaml lists them
PREDICTION_COLUMNS = table_columns("predictions")
#: paper columns make no sense for a cohort the paper never saw
_PAPER_PREFIX = "paper_"


def score_cohort(
    checkpoints: Mapping[int, PathLike],
    images: PathLike,
    manifest: PathLike,
    *,
    study: str,
    arm: str,
    sequence: str | None = None,
    device: str = "cpu",
    threads: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Probabilities of every image of a cache from each fold model, and their mean.

    `checkpoints` maps each fold to its `checkpoint_final.pt` (`mskdx.config.layout`). Returns
    (per_fold, ensemble), both with the `predictions` columns and subset "test"; in the ensemble
    table `fold` is 0 and `prob` the mean over the fold models.
    """
    from mskdx.learn.device import resolve_device
    from mskdx.learn.inference import fold_models
    from mskdx.learn.loop import PROB_DECIMALS

    bank_np = np.load(images, mmap_mode="r")
    table = read_table(manifest, schema="manifest")
    if sequence is not None:
        table = table[table["series"].astype(str) == str(sequence)]
    if table.empty:
        raise PreprocessError(
            f"{manifest}: no images{f' of sequence {sequence!r}' if sequence else ''} to score"
        )
    if "patient_label" not in table.columns:  # a cache written before image labels
        table = table.assign(patient_label=table["label"])
    table = table.sort_values(["patient", "image_id"], kind="stable").reset_index(drop=True)
    pixels = np.asarray(bank_np[table["index"].to_numpy(np.int64)])
    parts = []
    for model in fold_models(checkpoints, resolve_device(device), threads):
        prob = model.probabilities(pixels, source=images)
        parts.append(
            table.assign(
                study=study,
                arm=arm,
                fold=model.fold,
                subset="test",
                prob=np.round(prob, PROB_DECIMALS),
            )[PREDICTION_COLUMNS]
        )
        log.info("%s %s fold %d: scored %d images", study, arm, model.fold, len(table))
    per_fold = pd.concat(parts, ignore_index=True)
    ensemble = (
        per_fold.groupby(["patient", "image_id"], sort=True)
        .agg(
            label=("label", "first"),
            patient_label=("patient_label", "first"),
            prob=("prob", "mean"),
        )
        .reset_index()
        .assign(study=study, arm=arm, fold=0, subset="test")
    )
    ensemble["prob"] = ensemble["prob"].round(PROB_DECIMALS)
    return per_fold, ensemble[PREDICTION_COLUMNS]


def _without_paper(table: pd.DataFrame) -> pd.DataFrame:
    return table.loc[:, [c for c in table.columns if not c.startswith(_PAPER_PREFIX)]]


def image_table(
    study: str,
    per_fold: pd.DataFrame,
    ensemble: pd.DataFrame,
    *,
    image_threshold: float,
    reference: str = "auto",
) -> pd.DataFrame:
    """The development image-level table on an external cohort: ensemble rows, then each fold's.

    Gout: Table I's columns per model (CIs clustered by patient with the image-independent ones
    beside them, the clustered tests against `reference` on the same images, Holm-adjusted;
    `mskdx.evaluate.comparisons`); OLT: Table II's per-class rows per model.
    """
    from mskdx.evaluate import tables

    def build(preds: pd.DataFrame) -> pd.DataFrame:
        if study == "gout":
            out = tables.gout_image_table(
                preds, reference=reference, image_threshold=image_threshold
            )
            return out[out["fold"] == "pooled"].drop(columns="fold")
        return tables.olt_table(preds, image_threshold=image_threshold)

    parts = [build(ensemble).assign(model="ensemble")]
    for fold, preds in per_fold.groupby("fold", sort=True):
        parts.append(build(preds.assign(fold=0)).assign(model=f"fold {fold}"))
    out = _without_paper(pd.concat(parts, ignore_index=True))
    return out[["model", *[c for c in out.columns if c != "model"]]]


def development_threshold(curves: PathLike) -> float:
    """Mean over folds of the patient threshold chosen on each fold's training patients."""
    table = read_table(curves)
    chosen = table[table["chosen"].astype(bool)]
    if chosen.empty or chosen["fold"].duplicated().any():
        raise ValueError(f"{curves}: expected one chosen threshold per fold")
    return float(chosen["threshold"].mean())


def patient_table(
    ensemble: pd.DataFrame, thresholds: Mapping[str, float], *, image_threshold: float
) -> pd.DataFrame:
    """Gout patient diagnosis on an external cohort with each arm's development threshold: a
    patient is scored against its diagnosis (`patient_label`), not its images' labels."""
    from mskdx.evaluate.stats.metrics import binary_metrics
    from mskdx.evaluate.stats.threshold import diagnose

    rows = []
    for arm, preds in patient_level(ensemble).groupby("arm", sort=True):
        per_patient = (
            preds.assign(abnormal=preds["prob"] > image_threshold)
            .groupby("patient", sort=True)
            .agg(label=("label", "first"), images=("image_id", "size"), share=("abnormal", "mean"))
        )
        threshold = float(thresholds[arm])
        called = diagnose(per_patient["share"].to_numpy(), threshold).astype(int)
        m = binary_metrics(per_patient["label"], called, per_patient["share"])
        row = {
            "arm": arm,
            "threshold": round(threshold, 4),
            "patients": m.n,
            "images": int(per_patient["images"].sum()),
            "tp": m.tp,
            "fn": m.fn,
            "tn": m.tn,
            "fp": m.fp,
        }
        for name, est in (
            ("acc", m.accuracy),
            ("sen", m.sensitivity),
            ("spe", m.specificity),
        ):
            row.update(
                {
                    name: 100 * est.value,
                    f"{name}_low": 100 * est.low,
                    f"{name}_high": 100 * est.high,
                }
            )
        auc = m.auc
        row.update(
            {
                "auc_share": auc.auc if auc else math.nan,
                "auc_share_low": auc.ci_low if auc else math.nan,
                "auc_share_high": auc.ci_high if auc else math.nan,
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)


# ---- workflow steps ---------------------------------------------------------------------------


def score_cohort_step(
    checkpoints: Mapping[int, PathLike],
    images: PathLike,
    manifest: PathLike,
    *,
    study: str,
    arm: str,
    sequence: str | None,
    device: str,
    threads: int,
    per_fold: PathLike,
    ensemble: PathLike,
) -> None:
    folds, mean = score_cohort(
        checkpoints,
        images,
        manifest,
        study=study,
        arm=arm,
        sequence=sequence,
        device=device,
        threads=threads,
    )
    write_table(folds, per_fold, schema="predictions")
    write_table(mean, ensemble, schema="predictions")


def write_external_tables(
    per_fold: Sequence[PathLike],
    ensemble: Sequence[PathLike],
    *,
    study: str,
    cohort: str,
    image_threshold: float,
    reference: str,
    curves: Sequence[PathLike],
    csv: PathLike,
    md: PathLike,
    patient_csv: PathLike,
    patient_md: PathLike,
) -> None:
    """Image-level (and, for gout, patient-level) tables of one external cohort."""
    from mskdx.evaluate.comparisons import markdown_view, table_notes
    from mskdx.evaluate.markdown import to_markdown, write_table_pair

    folds = pd.concat([read_table(p, "predictions") for p in per_fold], ignore_index=True)
    mean = pd.concat([read_table(p, "predictions") for p in ensemble], ignore_index=True)
    images = image_table(study, folds, mean, image_threshold=image_threshold, reference=reference)
    note = label_note(mean)
    title = f"External cohort {cohort}: image level ({note})"
    write_table_pair(images, csv, md, title, view=markdown_view, notes=table_notes(images))
    if study == "gout":
        thresholds = {
            Path(p).stem.removeprefix("threshold_curves_"): development_threshold(p) for p in curves
        }
        patients = patient_table(mean, thresholds, image_threshold=image_threshold)
        title = f"External cohort {cohort}: patient level (development thresholds; {note})"
    else:
        patients = pd.DataFrame({"note": ["OLT is diagnosed per image; no patient level"]})
        title = f"External cohort {cohort}: patient level"
    write_table(patients, patient_csv)
    write_text(patient_md, to_markdown(patients, title))


def plot_roc_external_step(
    development: Sequence[PathLike], external: Sequence[PathLike], *, outputs: list, style: dict
) -> None:
    """Development ROC (pooled test folds) beside each external cohort's (ensemble)."""
    from mskdx.evaluate.clinical import read_cohorts, scored_rows
    from mskdx.evaluate.figures.roc import plot_roc_panels

    panels = {}
    for name, predictions in read_cohorts(development, external).items():
        test = scored_rows(predictions)
        title = "development (pooled test folds)" if name == "development" else f"external: {name}"
        panels[title] = {
            arm: (part["label"].to_numpy(), part["prob"].to_numpy(), part["patient"].to_numpy())
            for arm, part in test.groupby("arm", sort=True)
        }
    plot_roc_panels(panels, outputs, style)
