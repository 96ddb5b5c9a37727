"""Table I's companion: the arms over repeated k-fold CV, with the corrected resampled t-test.

DeLong and McNemar in Table I treat the trained models as fixed. This table sees the variation
of training: with `splits.repeats` R, every arm is trained on R independent k-fold splits (fold
id = repeat x k + fold; each fold also has its own initialisation and augmentation stream). Per
arm: the pooled test AUC and accuracy of each repeat, their mean and SD over repeats, the mean
per-fold AUC; for each arm against the best (highest mean pooled AUC, or `best_arm`), the
corrected resampled t-test of the k R per-fold AUC differences (Nadeau & Bengio 2003;
Bouckaert & Frank 2004; `mskdx.evaluate.stats.resampled`). With R = 1 it is the test over the k
folds of the paper's split.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

from mskdx.evaluate.stats.resampled import corrected_resampled_ttest
from mskdx.io import read_predictions, write_table, write_text

log = logging.getLogger(__name__)

PathLike = str | Path


def _auc(rows: pd.DataFrame) -> float:
    if rows.label.nunique() < 2:
        return math.nan
    return float(roc_auc_score(rows.label, rows.prob))


def fold_metrics(predictions: pd.DataFrame, *, folds: int, image_threshold: float) -> pd.DataFrame:
    """Per arm and fold: repeat, test AUC, accuracy, and test and training image counts."""
    rows = []
    for (arm, fold), part in predictions.groupby(["arm", "fold"], sort=True):
        test = part[part.subset == "test"]
        rows.append(
            {
                "arm": arm,
                "repeat": int(fold) // folds,
                "fold": int(fold),
                "auc": _auc(test),
                "accuracy": float(((test.prob > image_threshold) == (test.label == 1)).mean()),
                "n_test": len(test),
                "n_train": int((part.subset == "train").sum()),
            }
        )
    return pd.DataFrame(rows)


def repeat_metrics(
    predictions: pd.DataFrame, *, folds: int, image_threshold: float
) -> pd.DataFrame:
    """Per arm and repeat: the pooled test AUC and accuracy over the repeat's k folds."""
    test = predictions[predictions.subset == "test"].assign(repeat=lambda d: d.fold // folds)
    rows = []
    for (arm, repeat), part in test.groupby(["arm", "repeat"], sort=True):
        rows.append(
            {
                "arm": arm,
                "repeat": int(repeat),
                "auc": _auc(part),
                "accuracy": float(((part.prob > image_threshold) == (part.label == 1)).mean()),
            }
        )
    return pd.DataFrame(rows)


def _sd(values: pd.Series) -> float:
    return float(values.std(ddof=1)) if len(values) > 1 else math.nan


def repeats_table(
    predictions: pd.DataFrame, *, folds: int, image_threshold: float = 0.5, best_arm: str = "auto"
) -> pd.DataFrame:
    """One row per arm (see the module docstring); the best arm first."""
    per_fold = fold_metrics(predictions, folds=folds, image_threshold=image_threshold)
    per_repeat = repeat_metrics(predictions, folds=folds, image_threshold=image_threshold)
    summary = per_repeat.groupby("arm").agg(
        repeats=("repeat", "nunique"),
        auc_mean=("auc", "mean"),
        auc_sd=("auc", _sd),
        accuracy_mean=("accuracy", "mean"),
        accuracy_sd=("accuracy", _sd),
    )
    summary["fold_auc_mean"] = per_fold.groupby("arm")["auc"].mean()
    summary["fold_auc_sd"] = per_fold.groupby("arm")["auc"].agg(_sd)
    if best_arm == "auto":
        best = str(summary["auc_mean"].idxmax())
    elif best_arm in summary.index:
        best = best_arm
    else:
        raise ValueError(
            f"best_arm={best_arm!r} is not an arm; expected 'auto' or {list(summary.index)}"
        )
    ref = per_fold[per_fold.arm == best].set_index("fold")
    rows = []
    for arm in [best, *[a for a in summary.index if a != best]]:
        row = {"arm": arm, "best": arm == best, **summary.loc[arm].to_dict()}
        if arm != best:
            mine = per_fold[per_fold.arm == arm].set_index("fold")
            common = ref.index.intersection(mine.index)
            d = (mine.loc[common, "auc"] - ref.loc[common, "auc"]).dropna()
            ratio = float((ref.loc[common, "n_test"] / ref.loc[common, "n_train"]).mean())
            if len(d) >= 2:
                test = corrected_resampled_ttest(d.to_numpy(), test_train_ratio=ratio)
                row |= {
                    "auc_diff_mean": test.mean,
                    "auc_diff_sd": test.sd,
                    "t": test.statistic,
                    "df": test.df,
                    "p_corrected": test.p_value,
                    "test_train_ratio": test.test_train_ratio,
                }
            else:
                log.warning("%s vs %s: %d per-fold AUC differences; no test", arm, best, len(d))
        rows.append(row)
    return pd.DataFrame(rows)


def _fmt(value: object, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def repeats_markdown(table: pd.DataFrame, *, folds: int) -> str:
    repeats = int(table["repeats"].max())
    lines = [
        f"### Table I companion: {repeats} x {folds}-fold CV (mean and SD over repeats), "
        "corrected resampled t-test vs the best arm",
        "",
        "The t-test (Nadeau & Bengio 2003; Bouckaert & Frank 2004) is on the per-fold AUC "
        "differences, with the variance corrected for overlapping training sets: it sees the "
        "variation of training that DeLong and McNemar (Table I) do not."
        + (
            " One repeat: SD over repeats undefined; rerun with splits.repeats > 1."
            if repeats == 1
            else ""
        ),
        "",
        "| arm | repeats | AUC mean (SD) | accuracy mean (SD) | per-fold AUC mean (SD) "
        "| AUC difference vs best (SD) | t (df) | p (corrected) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples(index=False):
        name = f"{r.arm} (best)" if r.best else r.arm
        diff = "-" if r.best else _fmt(getattr(r, "auc_diff_mean", math.nan))
        diff_sd = "-" if r.best else _fmt(getattr(r, "auc_diff_sd", math.nan))
        test = (
            "-"
            if r.best or not math.isfinite(getattr(r, "df", math.nan))
            else f"{_fmt(r.t, 2)} ({int(r.df)})"
        )
        lines.append(
            f"| {name} | {int(r.repeats)} | {_fmt(r.auc_mean)} ({_fmt(r.auc_sd)}) "
            f"| {_fmt(r.accuracy_mean)} ({_fmt(r.accuracy_sd)}) "
            f"| {_fmt(r.fold_auc_mean)} ({_fmt(r.fold_auc_sd)}) "
            f"| {diff} ({diff_sd}) "
            f"| {test} | {'-' if r.best else _fmt(getattr(r, 'p_corrected', math.nan), 4)} |"
        )
    return "\n".join(lines) + "\n"


def tabulate_repeats_step(
    predictions: Sequence[PathLike],
    *,
    folds: int,
    image_threshold: float,
    best_arm: str,
    csv: PathLike,
    md: PathLike,
) -> pd.DataFrame:
    preds = read_predictions(predictions)
    table = repeats_table(preds, folds=folds, image_threshold=image_threshold, best_arm=best_arm)
    write_table(table, csv)
    write_text(md, repeats_markdown(table, folds=folds))
    return table
