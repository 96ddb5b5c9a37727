"""Table I's companion: the arms over repeated k-fold CV, with the corrected resampled t-test.

DeLong and McNemar in Table I treat the trained models as fixed. This table sees the variation
of training, from two sources:

- `splits.repeats` R: every arm is trained on R independent k-fold splits (fold id = repeat x
  k + fold; each fold also has its own initialisation and augmentation stream);
- `train.repeats` T: every fold of every split is trained T times (training repeat t >= 1 from
  `training_seed(seed, t)`: same split and data, another initialisation and augmentation), the
  spread that comes from training alone.

Per arm: the pooled test AUC and accuracy of each of the R T runs, their mean and SD over runs,
the SD over training repeats within a split (training alone), the mean per-fold AUC, and in how
many runs the arm had the highest pooled AUC. For each arm against the best (highest mean pooled
AUC, or `best_arm`), the corrected resampled t-test (Nadeau & Bengio 2003; Bouckaert & Frank
2004; `mskdx.evaluate.stats.resampled`) of the k R per-fold AUC differences, each averaged over
the fold's T training repeats first: runs on one split share their training sets entirely, a
correlation the test's n2/n1 term (made for the overlap of different splits' training sets)
does not cover, so they enter as one, less noisy, difference. With R = T = 1 it is the test
over the k folds of the paper's split.
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


def _accuracy(rows: pd.DataFrame, threshold: float) -> float:
    return float(((rows.prob > threshold) == (rows.label == 1)).mean())


def fold_metrics(predictions: pd.DataFrame, *, folds: int, image_threshold: float) -> pd.DataFrame:
    """Per arm, training repeat and fold: split repeat, test AUC, accuracy, test and training
    image counts. `predictions` may lack `train_repeat` (all 0)."""
    predictions = _with_train_repeat(predictions)
    rows = []
    keys = ["arm", "train_repeat", "fold"]
    for (arm, train_repeat, fold), part in predictions.groupby(keys, sort=True):
        test = part[part.subset == "test"]
        rows.append(
            {
                "arm": arm,
                "repeat": int(fold) // folds,
                "train_repeat": int(train_repeat),
                "fold": int(fold),
                "auc": _auc(test),
                "accuracy": _accuracy(test, image_threshold),
                "n_test": len(test),
                "n_train": int((part.subset == "train").sum()),
            }
        )
    return pd.DataFrame(rows)


def repeat_metrics(
    predictions: pd.DataFrame, *, folds: int, image_threshold: float
) -> pd.DataFrame:
    """Per arm and run (split repeat, training repeat): the pooled test AUC and accuracy over
    the run's k folds."""
    test = _with_train_repeat(predictions)
    test = test[test.subset == "test"].assign(repeat=lambda d: d.fold // folds)
    rows = []
    keys = ["arm", "repeat", "train_repeat"]
    for (arm, repeat, train_repeat), part in test.groupby(keys, sort=True):
        rows.append(
            {
                "arm": arm,
                "repeat": int(repeat),
                "train_repeat": int(train_repeat),
                "auc": _auc(part),
                "accuracy": _accuracy(part, image_threshold),
            }
        )
    return pd.DataFrame(rows)


def _with_train_repeat(predictions: pd.DataFrame) -> pd.DataFrame:
    if "train_repeat" in predictions:
        return predictions
    return predictions.assign(train_repeat=0)


def best_counts(per_run: pd.DataFrame) -> pd.Series:
    """Per arm, the number of runs in which it had the highest pooled AUC (ties count for each
    arm tied; a run where some arm's AUC is undefined counts for none)."""
    wide = per_run.pivot_table(index=["repeat", "train_repeat"], columns="arm", values="auc")
    wide = wide.dropna()
    top = wide.eq(wide.max(axis=1), axis=0)
    return top.sum().reindex(per_run.arm.unique(), fill_value=0).astype(int)


def _train_sd(per_run: pd.DataFrame) -> pd.Series:
    """Per arm, the SD of the pooled AUC over training repeats within a split, pooled over the
    splits (root of the mean within-split variance); NaN with one training repeat."""

    def pooled(rows: pd.DataFrame) -> float:
        var = rows.groupby("repeat")["auc"].var(ddof=1).dropna()
        return float(math.sqrt(var.mean())) if len(var) else math.nan

    return per_run.groupby("arm")[["repeat", "auc"]].apply(pooled)


def _sd(values: pd.Series) -> float:
    return float(values.std(ddof=1)) if len(values) > 1 else math.nan


def repeats_table(
    predictions: pd.DataFrame, *, folds: int, image_threshold: float = 0.5, best_arm: str = "auto"
) -> pd.DataFrame:
    """One row per arm (see the module docstring); the best arm first. `predictions` has a
    `train_repeat` column when train.repeats > 1 (absent: one training run per fold)."""
    per_fold = fold_metrics(predictions, folds=folds, image_threshold=image_threshold)
    per_run = repeat_metrics(predictions, folds=folds, image_threshold=image_threshold)
    summary = per_run.groupby("arm").agg(
        repeats=("repeat", "nunique"),
        train_repeats=("train_repeat", "nunique"),
        runs=("auc", "size"),
        auc_mean=("auc", "mean"),
        auc_sd=("auc", _sd),
        accuracy_mean=("accuracy", "mean"),
        accuracy_sd=("accuracy", _sd),
    )
    summary["auc_train_sd"] = _train_sd(per_run)
    summary["best_in_runs"] = best_counts(per_run)
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
    # one difference per fold of each split: the mean over the fold's training repeats
    per_split_fold = per_fold.groupby(["arm", "fold"]).agg(
        auc=("auc", "mean"), n_test=("n_test", "first"), n_train=("n_train", "first")
    )
    ref = per_split_fold.loc[best]
    rows = []
    for arm in [best, *[a for a in summary.index if a != best]]:
        row = {"arm": arm, "best": arm == best, **summary.loc[arm].to_dict()}
        if arm != best:
            mine = per_split_fold.loc[arm]
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
        row["verdict"] = _verdict(row)
        rows.append(row)
    return pd.DataFrame(rows)


def _standing(p: float, alpha: float) -> str:
    """'untested', 'below' or 'tied': an arm's place against the best by its corrected p."""
    if not math.isfinite(p):
        return "untested"
    return "below" if p < alpha else "tied"


def _verdict(row: dict, alpha: float = 0.05) -> str:
    """What the runs say of one arm's place (the report shows this column)."""
    runs = int(row["runs"])
    if runs == 1:
        return "one split, one training run: its place is not a finding"
    if row["best"]:
        return f"best in {int(row['best_in_runs'])} of {runs} runs"
    return {
        "untested": "not tested (fewer than 2 per-fold differences)",
        "below": f"below the best (corrected p < {alpha:g})",
        "tied": f"not distinguishable from the best (corrected p >= {alpha:g})",
    }[_standing(row.get("p_corrected", math.nan), alpha)]


def supported_claim(table: pd.DataFrame, *, alpha: float = 0.05) -> str:
    """What the runs support about the ranking of the arms, in one sentence or two; by the
    same rule as each arm's verdict."""
    best = table[table.best].iloc[0]
    runs = int(best.runs)
    if runs == 1:
        return (
            "One split and one training run: nothing here shows whether the order of the arms "
            "would survive another split or training seed, so it is not a finding (Table I's "
            "tests treat the trained models as fixed). Set splits.repeats and train.repeats > 1."
        )
    others = table[~table.best]
    p = others["p_corrected"] if "p_corrected" in others else pd.Series(math.nan, others.index)
    standing = p.map(lambda v: _standing(float(v), alpha))
    tied, untested = others[standing == "tied"], others[standing == "untested"]
    head = f"{best.arm} had the highest pooled AUC in {int(best.best_in_runs)} of {runs} runs."
    tail = ""
    if not untested.empty:
        tail = f" Not tested (fewer than 2 per-fold differences): {', '.join(untested.arm)}."
    if tied.empty and untested.empty:
        everywhere = "" if int(best.best_in_runs) == runs else " on average"
        return head + f" Every other arm is below it{everywhere} (corrected p < {alpha:g})."
    if tied.empty:
        return head + tail
    names = ", ".join(tied.arm)
    return (
        head + f" Not distinguishable from it (corrected p >= {alpha:g}): {names}; "
        "the runs support no order among these arms." + tail
    )


def _fmt(value: object, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def repeats_markdown(table: pd.DataFrame, *, folds: int) -> str:
    repeats, train_repeats = int(table["repeats"].max()), int(table["train_repeats"].max())
    lines = [
        f"### Table I companion: {repeats} x {folds}-fold CV x {train_repeats} training "
        f"run{'s' if train_repeats > 1 else ''} per fold (mean and SD over runs), corrected "
        "resampled t-test vs the best arm",
        "",
        "**What the runs support:** " + supported_claim(table),
        "",
        "The t-test (Nadeau & Bengio 2003; Bouckaert & Frank 2004) is on the per-fold AUC "
        "differences (each averaged over the fold's training runs), with the variance corrected "
        "for overlapping training sets: it sees the variation of training that DeLong and "
        "McNemar (Table I) do not. SD (training) is the spread over training runs of one split "
        "(train.repeats), training alone.",
        "",
        "| arm | splits x training runs | AUC mean (SD) | SD (training) | accuracy mean (SD) "
        "| per-fold AUC mean (SD) | best in runs | AUC difference vs best (SD) | t (df) "
        "| p (corrected) |",
        "|---|---|---|---|---|---|---|---|---|---|",
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
            f"| {name} | {int(r.repeats)} x {int(r.train_repeats)} "
            f"| {_fmt(r.auc_mean)} ({_fmt(r.auc_sd)}) | {_fmt(r.auc_train_sd)} "
            f"| {_fmt(r.accuracy_mean)} ({_fmt(r.accuracy_sd)}) "
            f"| {_fmt(r.fold_auc_mean)} ({_fmt(r.fold_auc_sd)}) "
            f"| {int(r.best_in_runs)} of {int(r.runs)} "
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
    train_repeats: Sequence[int] | None = None,
) -> pd.DataFrame:
    """`train_repeats`: the training repeat of each predictions file (default: all 0)."""
    train_repeats = list(train_repeats) if train_repeats is not None else [0] * len(predictions)
    if len(train_repeats) != len(predictions):
        raise ValueError(
            f"{len(predictions)} prediction files but {len(train_repeats)} training repeats"
        )
    preds = pd.concat(
        [
            read_predictions([path]).assign(train_repeat=int(t))
            for path, t in zip(predictions, train_repeats, strict=True)
        ],
        ignore_index=True,
    )
    table = repeats_table(preds, folds=folds, image_threshold=image_threshold, best_arm=best_arm)
    write_table(table, csv)
    write_text(md, repeats_markdown(table, folds=folds))
    return table
