"""Table I's companion: the arms over repeated k-fold CV, with the corrected resampled t-test.

The tests of Table I (clustered by patient) treat the trained models as fixed. This table sees
the variation of training, from two sources:

- `splits.repeats` R: every arm is trained on R independent k-fold splits (fold id = repeat x
  k + fold; each fold also has its own initialisation and augmentation stream);
- `train.repeats` T: every fold of every split is trained T times (training repeat t >= 1 from
  `training_seed(seed, t)`: same split and data, another initialisation and augmentation), the
  spread that comes from training alone.

Per arm: the pooled test AUC and accuracy of each of the R T runs, their mean and SD over runs,
the SD over training repeats within a split (training alone), the mean per-fold AUC, and in how
many runs the arm had the highest pooled AUC. For each arm against the reference (named in
advance by `comparison.reference`, or with ``auto`` the highest mean pooled AUC), the corrected
resampled t-test (Nadeau & Bengio 2003; Bouckaert & Frank 2004; `mskdx.evaluate.stats.resampled`)
of the k R per-fold AUC differences, each averaged over the fold's T training repeats first: runs
on one split share their training sets entirely, a correlation the test's n2/n1 term (made for
the overlap of different splits' training sets) does not cover, so they enter as one, less
noisy, difference. With R = T = 1 it is the test over the k folds of the paper's split. Each
difference (arm minus reference) gets the CI of its mean from the same corrected variance, and
the p-values are Holm-adjusted (``p_corrected_adjusted``) over the k - 1 comparisons with a
named reference, or over all pairs of arms with ``auto`` (`mskdx.evaluate.stats.multiplicity`);
the verdicts use the adjusted p.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

from mskdx.evaluate.stats.multiplicity import holm, pairwise_holm
from mskdx.evaluate.stats.resampled import ResampledTTest, corrected_resampled_ttest
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


def _pair_test(per_split_fold: pd.DataFrame, arm: str, ref: str) -> ResampledTTest | None:
    """The corrected resampled t-test of `arm` minus `ref` over their common folds (None with
    fewer than 2 per-fold differences)."""
    ref_rows, mine = per_split_fold.loc[ref], per_split_fold.loc[arm]
    common = ref_rows.index.intersection(mine.index)
    d = (mine.loc[common, "auc"] - ref_rows.loc[common, "auc"]).dropna()
    if len(d) < 2:
        log.warning("%s vs %s: %d per-fold AUC differences; no test", arm, ref, len(d))
        return None
    ratio = float((ref_rows.loc[common, "n_test"] / ref_rows.loc[common, "n_train"]).mean())
    return corrected_resampled_ttest(d.to_numpy(), test_train_ratio=ratio)


def _adjusted(per_split_fold: pd.DataFrame, arms: list[str], ref: str, auto: bool) -> dict:
    """Per other arm, (its test against `ref`, Holm-adjusted p): Holm over the k - 1 tests
    with a named reference, over all k (k - 1) / 2 pairs with ``auto`` (`stats.multiplicity`)."""
    others = [a for a in arms if a != ref]
    tests = {a: _pair_test(per_split_fold, a, ref) for a in others}
    raw = [t.p_value if t else math.nan for t in tests.values()]
    if auto:

        def p_of(a: str, b: str) -> float:
            test = _pair_test(per_split_fold, a, b)
            return test.p_value if test else math.nan

        pairs = pairwise_holm(arms, ref, p_of)
        adjusted = [pairs[a][1] for a in others]
    else:
        adjusted = list(holm(raw))
    return {a: (tests[a], float(q)) for a, q in zip(others, adjusted, strict=True)}


def repeats_table(
    predictions: pd.DataFrame, *, folds: int, image_threshold: float = 0.5, reference: str = "auto"
) -> pd.DataFrame:
    """One row per arm (see the module docstring); the reference arm first. `predictions` has a
    `train_repeat` column when train.repeats > 1 (absent: one training run per fold).

    `reference`: the arm named in advance (``comparison.reference``) or "auto" (the highest
    mean pooled AUC; the adjusted p-values are then Holm over all pairs of arms)."""
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
    if reference == "auto":
        ref = str(summary["auc_mean"].idxmax())
    elif reference in summary.index:
        ref = reference
    else:
        raise ValueError(
            f"reference={reference!r} (comparison.reference) is not an arm; expected 'auto' or "
            f"{list(summary.index)}"
        )
    # one difference per fold of each split: the mean over the fold's training repeats
    per_split_fold = per_fold.groupby(["arm", "fold"]).agg(
        auc=("auc", "mean"), n_test=("n_test", "first"), n_train=("n_train", "first")
    )
    arms = [str(a) for a in summary.index]
    tests = _adjusted(per_split_fold, arms, ref, reference == "auto")
    rule = "auto: highest mean pooled AUC" if reference == "auto" else "named in advance"
    rows = []
    for arm in [ref, *[a for a in arms if a != ref]]:
        row = {"arm": arm, "is_reference": arm == ref, "reference_rule": rule}
        row |= summary.loc[arm].to_dict()
        test, adjusted = tests.get(arm, (None, math.nan))
        if test is not None:
            row |= {
                "auc_diff_mean": test.mean,
                "auc_diff_sd": test.sd,
                "auc_diff_low": test.ci_low,
                "auc_diff_high": test.ci_high,
                "t": test.statistic,
                "df": test.df,
                "p_corrected": test.p_value,
                "p_corrected_adjusted": adjusted,
                "test_train_ratio": test.test_train_ratio,
            }
        row["verdict"] = _verdict(row)
        rows.append(row)
    table = pd.DataFrame(rows)
    return table[[c for c in table.columns if c != "verdict"] + ["verdict"]]


def _standing(p: float, diff: float, alpha: float) -> str:
    """'untested', 'below', 'above' or 'tied': an arm's place against the reference by its
    Holm-adjusted corrected p and the sign of its mean AUC difference."""
    if not math.isfinite(p):
        return "untested"
    if p >= alpha:
        return "tied"
    return "below" if diff < 0 else "above"


def _verdict(row: dict, alpha: float = 0.05) -> str:
    """What the runs say of one arm's place (the report shows this column)."""
    runs = int(row["runs"])
    if runs == 1:
        return "one split, one training run: its place is not a finding"
    if row["is_reference"]:
        best = int(row["best_in_runs"])
        return f"reference ({row['reference_rule']}); best in {best} of {runs} runs"
    p = row.get("p_corrected_adjusted", math.nan)
    return {
        "untested": "not tested (fewer than 2 per-fold differences)",
        "below": f"below the reference (adjusted corrected p < {alpha:g})",
        "above": f"above the reference (adjusted corrected p < {alpha:g})",
        "tied": f"not distinguishable from the reference (adjusted corrected p >= {alpha:g})",
    }[_standing(p, row.get("auc_diff_mean", math.nan), alpha)]


def supported_claim(table: pd.DataFrame, *, alpha: float = 0.05) -> str:
    """What the runs support about the arms against the reference, in a sentence or two; by
    the same rule as each arm's verdict (Holm-adjusted corrected p)."""
    ref = table[table.is_reference].iloc[0]
    runs = int(ref.runs)
    if runs == 1:
        return (
            "One split and one training run: nothing here shows whether the order of the arms "
            "would survive another split or training seed, so it is not a finding (Table I's "
            "tests treat the trained models as fixed). Set splits.repeats and train.repeats > 1."
        )
    others = table[~table.is_reference]
    column = "p_corrected_adjusted"
    p = others[column] if column in others else pd.Series(math.nan, others.index)
    diff = others["auc_diff_mean"] if "auc_diff_mean" in others else p * math.nan
    standing = pd.Series(
        [_standing(float(v), float(d), alpha) for v, d in zip(p, diff, strict=True)],
        index=others.index,
    )
    head = (
        f"Reference {ref.arm} ({ref.reference_rule}) had the highest pooled AUC in "
        f"{int(ref.best_in_runs)} of {runs} runs."
    )
    parts = []
    for kind, text in (
        ("below", f"below it (adjusted corrected p < {alpha:g})"),
        ("above", f"above it (adjusted corrected p < {alpha:g})"),
        ("tied", f"not distinguishable from it (adjusted corrected p >= {alpha:g})"),
        ("untested", "not tested (fewer than 2 per-fold differences)"),
    ):
        names = others.arm[standing == kind]
        if not names.empty:
            parts.append(f"{text.capitalize()}: {', '.join(names)}.")
    if (standing == "tied").any():
        parts.append("The runs support no order between these arms and the reference.")
    return " ".join([head, *parts])


def _fmt(value: object, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _diff_cell(r) -> str:
    """'-0.041 (0.012) [-0.07, -0.01]': mean AUC difference vs the reference, SD, CI."""
    if r.is_reference:
        return "-"
    mean = getattr(r, "auc_diff_mean", math.nan)
    text = f"{_fmt(mean)} ({_fmt(getattr(r, 'auc_diff_sd', math.nan))})"
    low, high = getattr(r, "auc_diff_low", math.nan), getattr(r, "auc_diff_high", math.nan)
    return text + (f" [{_fmt(low)}, {_fmt(high)}]" if math.isfinite(low) else "")


def repeats_markdown(table: pd.DataFrame, *, folds: int) -> str:
    repeats, train_repeats = int(table["repeats"].max()), int(table["train_repeats"].max())
    k = len(table)
    ref = table[table.is_reference].iloc[0]
    family = (
        f"Holm over all {k * (k - 1) // 2} pairs of arms (the reference was picked on the data)"
        if str(ref.reference_rule).startswith("auto")
        else f"Holm over the {k - 1} comparisons with the reference"
    )
    lines = [
        f"### Table I companion: {repeats} x {folds}-fold CV x {train_repeats} training "
        f"run{'s' if train_repeats > 1 else ''} per fold (mean and SD over runs), corrected "
        f"resampled t-test vs the reference arm {ref.arm} ({ref.reference_rule})",
        "",
        "**What the runs support:** " + supported_claim(table),
        "",
        "The t-test (Nadeau & Bengio 2003; Bouckaert & Frank 2004) is on the per-fold AUC "
        "differences (each averaged over the fold's training runs), with the variance corrected "
        "for overlapping training sets: it sees the variation of training that the clustered "
        "tests of Table I do not. The difference is this arm minus the reference, with the 95% "
        f"CI of its mean from the same corrected variance; adjusted p: {family}. SD (training) "
        "is the spread over training runs of one split (train.repeats), training alone.",
        "",
        "| arm | splits x training runs | AUC mean (SD) | SD (training) | accuracy mean (SD) "
        "| per-fold AUC mean (SD) | best in runs | AUC difference vs reference (SD) [95% CI] "
        "| t (df) | p (corrected) | p (adjusted) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples(index=False):
        name = f"{r.arm} (reference)" if r.is_reference else r.arm
        test = (
            "-"
            if r.is_reference or not math.isfinite(getattr(r, "df", math.nan))
            else f"{_fmt(r.t, 2)} ({int(r.df)})"
        )
        p = "-" if r.is_reference else _fmt(getattr(r, "p_corrected", math.nan), 4)
        q = "-" if r.is_reference else _fmt(getattr(r, "p_corrected_adjusted", math.nan), 4)
        lines.append(
            f"| {name} | {int(r.repeats)} x {int(r.train_repeats)} "
            f"| {_fmt(r.auc_mean)} ({_fmt(r.auc_sd)}) | {_fmt(r.auc_train_sd)} "
            f"| {_fmt(r.accuracy_mean)} ({_fmt(r.accuracy_sd)}) "
            f"| {_fmt(r.fold_auc_mean)} ({_fmt(r.fold_auc_sd)}) "
            f"| {int(r.best_in_runs)} of {int(r.runs)} | {_diff_cell(r)} | {test} | {p} | {q} |"
        )
    return "\n".join(lines) + "\n"


def tabulate_repeats_step(
    predictions: Sequence[PathLike],
    *,
    folds: int,
    image_threshold: float,
    reference: str,
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
    table = repeats_table(preds, folds=folds, image_threshold=image_threshold, reference=reference)
    write_table(table, csv)
    write_text(md, repeats_markdown(table, folds=folds))
    return table
