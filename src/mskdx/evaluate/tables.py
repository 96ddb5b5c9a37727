"""Paper tables from prediction tables, with the papers' printed values beside ours.

Inputs are prediction DataFrames with the columns of ``workflow/schemas/predictions.schema.yaml``
(study, arm, fold, subset, patient, image_id, label, prob), concatenated over arms and folds. An
image is called positive iff ``prob > image_threshold`` (at 0.5 the argmax of the two classes,
as in training and the montage).

Units: ACC/SEN/SPE and OLT accuracy are in percent (as the papers print them); precision,
recall, F1 and AUC on the 0-1 scale. A metric ``m`` comes as columns ``m`` (value), ``m_k`` and
``m_n`` (count), ``m_low``/``m_high`` (95% CI); the paper's printed value as ``paper_m`` (and
``paper_m_low``/``paper_m_high`` where it prints a CI). The ``fold`` column is text: "0", "1",
... and "pooled" / "mean". In the image-level tables (Table I, OLT Table II) the plain ``m_low``,
``m_high`` and ``p_m`` are clustered by patient and ``m_low_independent`` ... hold the
image-independent values the papers used (`mskdx.evaluate.comparisons`); Table III's units are
patients, one per diagnosis: Wilson and DeLong there.

`compact_view` turns such a table into one text cell per metric ("83.3 (334/401) [81.2, 85.4]")
and `to_markdown` renders any DataFrame as a GitHub table. The papers' printed numbers are in
`mskdx.evaluate.papers`; the check of those numbers against each other is
`mskdx.evaluate.papers.check`.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from mskdx.errors import SplitError
from mskdx.evaluate.comparisons import (
    AUTO,
    auc_columns,
    comparison_columns,
    family_text,
    markdown_view,
    proportion_columns,
    resolve_reference,
    table_notes,
)
from mskdx.evaluate.markdown import write_table_pair
from mskdx.evaluate.papers import printed as papers
from mskdx.evaluate.papers.printed import Cell, PrintedAuc, PrintedProportion
from mskdx.evaluate.stats.metrics import BinaryMetrics, binary_metrics
from mskdx.evaluate.stats.proportions import Estimate, proportion
from mskdx.evaluate.stats.threshold import search_threshold
from mskdx.ingest.label_levels import label_note, patient_level
from mskdx.io import load_schema, read_predictions, write_table

__all__ = [
    "gout_image_table",
    "gout_patient_table",
    "olt_table",
]

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Input handling
# ---------------------------------------------------------------------------------------------


def _natural_key(text: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(text))]


def _sorted_arms(arms: Iterable[str]) -> list[str]:
    return sorted({str(a) for a in arms}, key=_natural_key)


def _prepare(predictions: pd.DataFrame, image_threshold: float, what: str) -> pd.DataFrame:
    """Check the prediction columns and values; add ``pred`` (prob > image_threshold)."""
    required = load_schema("predictions")["required"]
    missing = [c for c in required if c not in predictions.columns]
    if missing:
        raise ValueError(f"{what}: predictions lack columns {missing}; expected {required}")
    if not 0.0 <= float(image_threshold) <= 1.0:
        raise ValueError(f"image_threshold={image_threshold!r}: expected a probability in [0, 1]")
    df = predictions.loc[:, required].copy()
    df["arm"] = df["arm"].astype(str)
    df["patient"] = df["patient"].astype(str)
    df["image_id"] = df["image_id"].astype(str)
    df["subset"] = df["subset"].astype(str)
    bad_subset = sorted(set(df["subset"]) - {"train", "val", "test"})
    if bad_subset:
        raise ValueError(f"{what}: subset values {bad_subset}; expected train, val or test")
    if not df["label"].isin([0, 1]).all():
        raise ValueError(f"{what}: label values other than 0/1: {sorted(set(df['label']))[:5]}")
    prob = pd.to_numeric(df["prob"], errors="coerce")
    if prob.isna().any() or not prob.between(0.0, 1.0).all():
        raise ValueError(f"{what}: prob must be a number in [0, 1] on every row")
    df["label"] = df["label"].astype(np.int64)
    df["prob"] = prob.astype(np.float64)
    df["fold"] = df["fold"].astype(np.int64)
    df["pred"] = (df["prob"] > float(image_threshold)).astype(np.int64)
    return df


def _test_subset(df: pd.DataFrame, what: str) -> pd.DataFrame:
    test = df[df["subset"] == "test"]
    if test.empty:
        raise ValueError(f"{what}: no rows with subset == 'test'; expected test predictions")
    dup = test.duplicated(["arm", "image_id"], keep=False)
    if dup.any():
        row = test[dup].iloc[0]
        same = test[(test["arm"] == row["arm"]) & (test["image_id"] == row["image_id"])]
        raise ValueError(
            f"{what}: image {row['image_id']} of arm {row['arm']} is in the test subset "
            f"{len(same)} times (folds {sorted(int(f) for f in same['fold'])}); expected each "
            "image once in one test fold"
        )
    return test


def _aligned(test: pd.DataFrame, arms: Sequence[str], what: str) -> dict[str, pd.DataFrame]:
    """Index each arm's test rows by image_id; raise unless all arms have the same images."""
    by_arm = {arm: test[test["arm"] == arm].set_index("image_id").sort_index() for arm in arms}
    ref = arms[0]
    for arm in arms[1:]:
        a, b = by_arm[ref].index, by_arm[arm].index
        if not a.equals(b):
            only_a, only_b = a.difference(b), b.difference(a)
            example = list(only_a[:2]) + list(only_b[:2])
            raise ValueError(
                f"{what}: arms {ref} and {arm} have different test images ({len(only_a)} only in "
                f"{ref}, {len(only_b)} only in {arm}, e.g. {example}); paired tests need the "
                "same images in every arm"
            )
        for column in ("label", "fold"):
            differ = by_arm[ref][column].to_numpy() != by_arm[arm][column].to_numpy()
            if differ.any():
                image = by_arm[ref].index[np.flatnonzero(differ)[0]]
                raise ValueError(
                    f"{what}: image {image} has a different {column} in arms {ref} and {arm}; "
                    "expected the same labels and test folds in every arm"
                )
    return by_arm


# ---------------------------------------------------------------------------------------------
# Row helpers
# ---------------------------------------------------------------------------------------------


def _estimate_cols(name: str, est: Estimate, percent: bool) -> dict:
    scale = 100.0 if percent else 1.0
    return {
        name: scale * est.value,
        f"{name}_k": est.successes,
        f"{name}_n": est.n,
        f"{name}_low": scale * est.low,
        f"{name}_high": scale * est.high,
    }


def _auc_cols(name: str, m: BinaryMetrics) -> dict:
    if m.auc is None:
        return {name: math.nan, f"{name}_low": math.nan, f"{name}_high": math.nan}
    return {name: m.auc.auc, f"{name}_low": m.auc.ci_low, f"{name}_high": m.auc.ci_high}


def _metric_notes(m: BinaryMetrics, names: dict[str, Estimate]) -> list[str]:
    """Why a value or CI of the row is blank: "<metric>: not estimable: <reason>"."""
    notes = [f"{name}: {est.note}" for name, est in names.items() if est.note]
    auc_note = m.auc.note if m.auc is not None else m.auc_note
    if auc_note:
        notes.append(f"auc: {auc_note}")
    return notes


def _join(notes: Iterable[str]) -> str:
    return "; ".join(n for n in notes if n)


def _counts(m: BinaryMetrics) -> dict:
    return {"tp": m.tp, "fn": m.fn, "tn": m.tn, "fp": m.fp}


def _paper_prop(name: str, printed: PrintedProportion | None, counts: bool = False) -> dict:
    """The paper's value and CI (and, with `counts`, its k and n) as ``paper_<name>*`` columns."""
    out: dict = {f"paper_{name}": printed.value.value if printed else math.nan}
    if counts:
        out[f"paper_{name}_k"] = printed.k if printed and printed.k is not None else pd.NA
        out[f"paper_{name}_n"] = printed.n if printed and printed.n is not None else pd.NA
    out[f"paper_{name}_low"] = printed.low.value if printed and printed.low else math.nan
    out[f"paper_{name}_high"] = printed.high.value if printed and printed.high else math.nan
    return out


def _paper_auc(name: str, printed: PrintedAuc | None) -> dict:
    if printed is None:
        return {
            f"paper_{name}": math.nan,
            f"paper_{name}_low": math.nan,
            f"paper_{name}_high": math.nan,
        }
    return {
        f"paper_{name}": printed.value.value,
        f"paper_{name}_low": printed.low.value if printed.low else math.nan,
        f"paper_{name}_high": printed.high.value if printed.high else math.nan,
    }


_INT_COLUMN = re.compile(r"n_\w+|tp|fn|tn|fp|\w+_[kn]|[bc]_\w+|paper_(tp|fn|tn|fp)")


def _frame(rows: list[dict]) -> pd.DataFrame:
    """Build a table; count columns become nullable integers (blank where not applicable)."""
    df = pd.DataFrame(rows)
    for column in df.columns:
        if _INT_COLUMN.fullmatch(column):
            df[column] = pd.array(
                [pd.NA if pd.isna(v) else int(v) for v in df[column]], dtype="Int64"
            )
    return df


def _cell(value: Cell | None) -> float:
    return value.value if value is not None else math.nan


# ---------------------------------------------------------------------------------------------
# Gout Table I: image-level comparison of the arms
# ---------------------------------------------------------------------------------------------


def _arm_columns(t: pd.DataFrame, level: float) -> tuple[dict, str]:
    """One arm's counts, ACC/SEN/SPE (percent) and AUC on the images of `t`, clustered by
    patient with the image-independent intervals beside them (`mskdx.evaluate.comparisons`)."""
    y, pred, pid = t["label"].to_numpy(), t["pred"].to_numpy(), t["patient"].to_numpy()
    right = pred == y
    tp, fn = int(((y == 1) & (pred == 1)).sum()), int(((y == 1) & (pred == 0)).sum())
    tn, fp = int(((y == 0) & (pred == 0)).sum()), int(((y == 0) & (pred == 1)).sum())
    out = {
        "n_images": len(t),
        "n_patients": int(pd.unique(pid).size),
        "n_positive": tp + fn,
        "n_negative": tn + fp,
        "tp": tp,
        "fn": fn,
        "tn": tn,
        "fp": fp,
    }
    notes = []
    for name, mask in (("acc", np.ones_like(y, bool)), ("sen", y == 1), ("spe", y == 0)):
        columns, note = proportion_columns(name, right[mask], pid[mask], True, level)
        out |= columns
        notes.append(note)
    columns, note = auc_columns(y, t["prob"].to_numpy(), pid, level)
    return out | columns, _join([*notes, note])


def gout_image_table(
    predictions: pd.DataFrame,
    reference: str = AUTO,
    image_threshold: float = 0.5,
    level: float = 0.95,
) -> pd.DataFrame:
    """Build gout Table I: per arm ACC, SEN, SPE, AUC on the test images, tests against the
    reference arm, every statistic clustered by patient.

    Rows: one per (fold, arm), folds "0".."k" and "pooled" (all test folds together; each image
    is in exactly one test fold). Per arm: counts TP/FN/TN/FP; ``acc``, ``sen``, ``spe`` in
    percent with k, n and the CI clustered by patient; ``auc`` with its clustered SE and CI; the
    image-independent intervals (Wilson, DeLong) as ``*_independent``; design effects and ICCs.
    Arms other than the reference carry its tests against them on the same images (``p_*``
    clustered, ``p_*_independent`` the paper's McNemar/DeLong, ``p_*_adjusted`` Holm), within
    each fold and pooled; the columns are described in `mskdx.evaluate.comparisons`. Pooled rows
    also carry the paper's Table I values (``paper_*``; the paper tested against its own best,
    3 blocks: ``paper_reference``), like-for-like with our ``*_independent`` columns.

    Args:
        reference: an arm named in advance (``comparison.reference``), or "auto" = the arm with
            the highest pooled AUC (first in natural arm order on a tie), whose adjusted
            p-values then account for the selection (all-pairs Holm).
    Raises:
        ValueError: missing columns or bad values, an image twice in the test subsets of an
            arm, arms with different test images (paired tests need the same images), or a
            reference that is not an arm.
    """
    what = "gout_image_table"
    df = _prepare(predictions, image_threshold, what)
    test = _test_subset(df, what)
    arms = _sorted_arms(test["arm"].unique())
    by_arm = _aligned(test, arms, what)
    groups: list[tuple[str, dict[str, pd.DataFrame]]] = [("pooled", by_arm)]
    for fold in sorted(test["fold"].unique()):
        groups.append((str(fold), {arm: t[t["fold"] == fold] for arm, t in by_arm.items()}))
    estimates = {
        fold: {arm: _arm_columns(frames[arm], level) for arm in arms} for fold, frames in groups
    }
    aucs = {arm: float(estimates["pooled"][arm][0]["auc"]) for arm in arms}
    ref = resolve_reference(reference, arms, aucs, what)
    rule = "auto: highest pooled AUC" if reference == AUTO else "named in advance"
    log.info("gout Table I: reference arm %s (%s) of %s", ref, rule, arms)

    rows = []
    for fold, frames in groups:
        tests = comparison_columns(frames, arms, ref, auto=reference == AUTO, level=level)
        for arm in arms:
            columns, note = estimates[fold][arm]
            test_cols = tests[arm]
            row = {
                "fold": fold,
                "arm": arm,
                "paper_arm": papers.GOUT_ARM_LABELS.get(arm, ""),
                **columns,
                "is_reference": arm == ref,
                "reference_arm": ref,
                "reference_rule": rule,
                "adjustment": family_text(reference, len(arms)),
                **{k: v for k, v in test_cols.items() if k != "_note"},
            }
            printed = papers.GOUT_TABLE1.get(arm) if fold == "pooled" else None
            for name in ("acc", "sen", "spe"):
                row.update(_paper_prop(name, printed[name] if printed else None, counts=True))
            row.update(_paper_auc("auc", printed["auc"] if printed else None))
            for name in ("acc", "sen", "spe", "auc"):
                row[f"paper_p_{name}"] = _cell(printed[f"p_{name}"]) if printed else math.nan
            row["paper_reference"] = papers.GOUT_ARM_LABELS["blocks3"] if printed else ""
            row["note"] = _join([note, test_cols["_note"]])
            rows.append(row)
    return _frame(rows)


# ---------------------------------------------------------------------------------------------
# Gout Table III: patient-level diagnosis by the abnormal-image fraction
# ---------------------------------------------------------------------------------------------


def _patient_fractions(df: pd.DataFrame, what: str) -> pd.DataFrame:
    """One row per (fold, subset, patient): label, number of images, fraction called abnormal."""
    grouped = df.groupby(["fold", "subset", "patient"], sort=True)
    out = grouped.agg(
        label=("label", "first"),
        label_max=("label", "max"),
        label_min=("label", "min"),
        n_images=("image_id", "size"),
        fraction=("pred", "mean"),
    ).reset_index()
    mixed = out[out["label_max"] != out["label_min"]]
    if not mixed.empty:
        raise ValueError(
            f"{what}: patient {mixed['patient'].iloc[0]} has images labelled both 0 and 1; "
            "expected one diagnosis per patient"
        )
    return out.drop(columns=["label_max", "label_min"])


def gout_patient_table(
    predictions: pd.DataFrame,
    step: float = 0.02,
    image_threshold: float = 0.5,
    level: float = 0.95,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Build gout Table III for one arm: per-fold patient diagnosis by abnormal-image fraction.

    Per fold, each patient's fraction of images called abnormal (prob > image_threshold) is
    computed; the threshold is searched (`mskdx.evaluate.stats.threshold.search_threshold`, diagnose
    gout iff fraction > threshold, grid step `step`) on that fold's **train** patients using their
    training-set predictions, and applied to that fold's test patients.

    Returns:
        table: rows "0".."k" (per fold: ``threshold``, ``train_accuracy``, ``n_train``; test
            ``acc``/``sen``/``spe`` in percent with k, n, Wilson CI; ``auc`` of the fraction with
            DeLong CI), "mean" (mean of the fold values, as the paper's "average") and "pooled"
            (test patients of all folds counted together, Wilson CI). ``paper_*``: Table III
            ("Fold 1" = fold "0"; "average" on the "mean" row).
        curves: long DataFrame (fold as int, threshold, train_accuracy, chosen) for the figure.
    Raises:
        ValueError: several arms, a fold without train or test predictions, a patient with
            mixed labels or in two test folds.
    """
    what = "gout_patient_table"
    predictions = patient_level(predictions)  # patients: their diagnosis, not image labels
    df = _prepare(predictions, image_threshold, what)
    arms = _sorted_arms(df["arm"].unique())
    if len(arms) != 1:
        raise ValueError(f"{what}: predictions hold arms {arms}; expected those of one arm")
    patients = _patient_fractions(df, what)
    test_patients = patients[patients["subset"] == "test"]
    twice = test_patients["patient"].duplicated(keep=False)
    if twice.any():
        raise ValueError(
            f"{what}: patient {test_patients[twice]['patient'].iloc[0]} is in more than one "
            "test fold; expected each patient tested once"
        )
    folds = sorted(df["fold"].unique())
    paper_rows = list(papers.GOUT_TABLE3.values())
    rows, curves = [], []
    totals = {"tp": 0, "fn": 0, "tn": 0, "fp": 0}
    for i, fold in enumerate(folds):
        train = patients[(patients["fold"] == fold) & (patients["subset"] == "train")]
        test = patients[(patients["fold"] == fold) & (patients["subset"] == "test")]
        if train.empty:
            raise ValueError(
                f"{what}: fold {fold} of arm {arms[0]} has no train predictions; the threshold "
                "is searched on the training patients"
            )
        if test.empty:
            raise ValueError(f"{what}: fold {fold} of arm {arms[0]} has no test predictions")
        leaked = set(train["patient"]) & set(test["patient"])
        if leaked:  # the threshold must never see a test patient
            raise SplitError(
                f"{what}: fold {fold}: {len(leaked)} patients are in both the training and the "
                f"test predictions, e.g. {sorted(leaked)[0]}; the threshold is searched on "
                "training patients only"
            )
        search = search_threshold(train["fraction"], train["label"], step=step)
        called = (test["fraction"].to_numpy() > search.threshold).astype(np.int64)
        m = binary_metrics(test["label"], called, test["fraction"], level=level)
        for key in totals:
            totals[key] += getattr(m, key)
        printed = paper_rows[i] if i < len(paper_rows) - 1 else None
        rows.append(
            {
                "fold": str(fold),
                "threshold": search.threshold,
                "train_accuracy": search.accuracy,
                "n_train": search.n,
                "n_patients": m.n,
                **_counts(m),
                **_estimate_cols("acc", m.accuracy, True),
                **_estimate_cols("sen", m.sensitivity, True),
                **_estimate_cols("spe", m.specificity, True),
                **_auc_cols("auc", m),
                **_paper_table3(printed),
                "note": _join(
                    [
                        f"threshold: {search.note}" if search.note else "",
                        *_metric_notes(
                            m, {"acc": m.accuracy, "sen": m.sensitivity, "spe": m.specificity}
                        ),
                    ]
                ),
            }
        )
        curves.append(
            pd.DataFrame(
                {
                    "fold": int(fold),
                    "threshold": search.grid,
                    "train_accuracy": search.accuracies,
                    "chosen": search.grid == search.threshold,
                }
            )
        )
    table = pd.DataFrame(rows)  # fold rows only, for the means
    mean = {"fold": "mean"}
    for column in ("threshold", "train_accuracy", "acc", "sen", "spe", "auc"):
        mean[column] = float(table[column].mean())
    mean.update(_paper_table3(papers.GOUT_TABLE3["average"]))
    mean["note"] = ""
    tp, fn, tn, fp = totals["tp"], totals["fn"], totals["tn"], totals["fp"]
    pooled = {
        "fold": "pooled",
        "n_patients": tp + fn + tn + fp,
        **totals,
        **_estimate_cols("acc", proportion(tp + tn, tp + fn + tn + fp, level), True),
        **_estimate_cols("sen", proportion(tp, tp + fn, level), True),
        **_estimate_cols("spe", proportion(tn, tn + fp, level), True),
        "note": "",
    }
    table = _frame([*rows, mean, pooled])
    return table, pd.concat(curves, ignore_index=True)


def _paper_table3(printed: dict[str, Cell] | None) -> dict:
    names = ("acc", "sen", "spe", "threshold")
    if printed is None:
        return {f"paper_{n}": math.nan for n in names}
    return {f"paper_{n}": printed[n].value for n in names}


# ---------------------------------------------------------------------------------------------
# OLT Table II: per sequence and class
# ---------------------------------------------------------------------------------------------


def olt_table(
    predictions: pd.DataFrame, image_threshold: float = 0.5, level: float = 0.95
) -> pd.DataFrame:
    """Build OLT Table II: per sequence arm (T1, T2) and class, on the test images.

    Rows: one per (arm, class) with class "patient" (positive, label 1) and "healthy".
    Per class: ``precision``, ``recall`` (0-1, with k, n and CI) and ``f1`` (no CI). Per arm
    (repeated on both rows): ``accuracy`` in percent with CI, ``auc`` with SE and CI, confusion
    counts ``tp``, ``fn``, ``tn``, ``fp`` (positive = patient), ``n_images``, ``n_patients``.
    CIs are clustered by patient, the image-independent ones (Wilson, DeLong) beside them as
    ``*_independent``, with design effects and ICCs (`mskdx.evaluate.comparisons`). No test
    between the arms: they score different images (`comparisons.OLT_NO_TEST`). ``paper_*``:
    the paper's Table II, AUC and accuracy assigned to the sequence they belong to (the printed
    "(T1) Healthy" row holds T2's; see `mskdx.evaluate.papers.OLT_TABLE2_PRINTED`), and the
    confusion counts from its text (``paper_tp`` ...).
    """
    what = "olt_table"
    df = _prepare(predictions, image_threshold, what)
    test = _test_subset(df, what)
    rows = []
    for arm in _sorted_arms(test["arm"].unique()):
        t = test[test["arm"] == arm]
        y, pred, pid = t["label"].to_numpy(), t["pred"].to_numpy(), t["patient"].to_numpy()
        m = binary_metrics(y, pred, t["prob"], level=level)
        accuracy, acc_note = proportion_columns("accuracy", pred == y, pid, True, level)
        auc, auc_note = auc_columns(y, t["prob"].to_numpy(), pid, level)
        shared = {"n_images": m.n, "n_patients": int(pd.unique(pid).size), **_counts(m)}
        shared |= accuracy | auc
        confusion = papers.OLT_CONFUSION.get(arm)
        for cls, positive, f1 in (("patient", 1, m.f1_positive), ("healthy", 0, m.f1_negative)):
            called, truth = pred == positive, y == positive
            precision, p_note = proportion_columns("precision", truth[called], pid[called],
                                                   False, level)  # fmt: skip
            recall, r_note = proportion_columns("recall", called[truth], pid[truth], False, level)
            printed = papers.OLT_TABLE2.get((arm, cls))
            row = {
                "arm": arm,
                "class": cls,
                **precision,
                **recall,
                "f1": f1,
                **shared,
                **_paper_prop("precision", printed["precision"] if printed else None),
                **_paper_prop("recall", printed["recall"] if printed else None),
                "paper_f1": _cell(printed["f1"]) if printed else math.nan,
                **_paper_prop("accuracy", printed["accuracy"] if printed else None),
                **_paper_auc("auc", printed["auc"] if printed else None),
            }
            for key in ("tp", "fn", "tn", "fp"):
                row[f"paper_{key}"] = confusion[key] if confusion else pd.NA
            row["note"] = _join([p_note, r_note, acc_note, auc_note])
            rows.append(row)
    return _frame(rows)


# ---------------------------------------------------------------------------------------------
# What the table rules call: read the jobs' tables, build, write CSV + Markdown
# ---------------------------------------------------------------------------------------------

PathLike = str | os.PathLike


def write_image_level_table(
    predictions: Sequence[PathLike],
    *,
    reference: str,
    image_threshold: float,
    csv: PathLike,
    md: PathLike,
) -> None:
    scored = read_predictions(predictions)
    table = gout_image_table(scored, reference=reference, image_threshold=image_threshold)
    title = f"Gout Table I: image-level performance on the test folds ({label_note(scored)})"
    write_table_pair(table, csv, md, title, view=markdown_view, notes=table_notes(table))


def write_patient_level_table(
    predictions: Sequence[PathLike],
    *,
    step: float,
    image_threshold: float,
    csv: PathLike,
    md: PathLike,
    curves: PathLike,
) -> None:
    scored = read_predictions(predictions)
    table, curve_table = gout_patient_table(scored, step=step, image_threshold=image_threshold)
    write_table(curve_table, curves)
    title = f"Gout Table III: patient-level diagnosis per fold ({label_note(scored)})"
    write_table_pair(table, csv, md, title)


def write_sequence_table(
    predictions: Sequence[PathLike], *, image_threshold: float, csv: PathLike, md: PathLike
) -> None:
    scored = read_predictions(predictions)
    title = f"OLT Table II: performance per MRI sequence on the test set ({label_note(scored)})"
    table = olt_table(scored, image_threshold=image_threshold)
    write_table_pair(table, csv, md, title, view=markdown_view, notes=table_notes(table))
