"""Paper tables from prediction tables, with the papers' printed values beside ours.

Inputs are prediction DataFrames with the columns of ``workflow/schemas/predictions.schema.yaml``
(study, arm, fold, subset, patient, image_id, label, prob), concatenated over arms and folds. An
image is called positive iff ``prob > image_threshold`` (at 0.5 the argmax of the two classes,
as in training and the montage).

Units: ACC/SEN/SPE and OLT accuracy are in percent (as the papers print them); precision,
recall, F1 and AUC on the 0-1 scale. A metric ``m`` comes as columns ``m`` (value), ``m_k`` and
``m_n`` (count), ``m_low``/``m_high`` (95% Wilson CI; DeLong for AUC); the paper's printed value
as ``paper_m`` (and ``paper_m_low``/``paper_m_high`` where it prints a CI). The ``fold`` column
is text: "0", "1", ... and "pooled" / "mean".

`compact_view` turns such a table into one text cell per metric ("83.3 (334/401) [81.2, 85.4]")
and `to_markdown` renders any DataFrame as a GitHub table. `paper_check` recomputes the papers'
own summary numbers from their printed counts and flags what it cannot reproduce.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm
from statsmodels.stats.proportion import proportion_confint

from mskdx import papers
from mskdx.errors import SplitError
from mskdx.io import load_schema
from mskdx.papers import Cell, PrintedAuc, PrintedProportion
from mskdx.stats import (
    BinaryMetrics,
    Estimate,
    binary_metrics,
    delong_test,
    hanley_mcneil_se,
    mcnemar,
    proportion,
    search_threshold,
    wilson_ci,
)

__all__ = [
    "compact_view",
    "gout_image_table",
    "gout_patient_table",
    "olt_table",
    "paper_check",
    "to_markdown",
]

log = logging.getLogger(__name__)

#: Metrics stored in percent; all other metrics are on the 0-1 scale.
PERCENT_METRICS = ("acc", "sen", "spe", "accuracy")


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


def _paired_tests(best: pd.DataFrame, other: pd.DataFrame) -> dict:
    """McNemar (ACC; SEN on positives; SPE on negatives) and DeLong (AUC), best vs other."""
    if not best.index.equals(other.index):  # _aligned guarantees this; pairing is by image_id
        raise ValueError("paired tests need the same images in the same order in both arms")
    y = best["label"].to_numpy()
    right_best = best["pred"].to_numpy() == y
    right_other = other["pred"].to_numpy() == y
    out: dict = {}
    for name, mask in (("acc", np.ones_like(y, bool)), ("sen", y == 1), ("spe", y == 0)):
        res = mcnemar(right_best[mask], right_other[mask])
        out[f"p_{name}"] = res.pvalue
        out[f"b_{name}"] = res.b
        out[f"c_{name}"] = res.c
    if (y == 1).any() and (y == 0).any():
        res = delong_test(y, best["prob"].to_numpy(), other["prob"].to_numpy())
        out["p_auc"], out["z_auc"] = res.pvalue, res.z
    else:
        out["p_auc"] = out["z_auc"] = math.nan
    return out


def _no_tests() -> dict:
    out: dict = {}
    for name in ("acc", "sen", "spe"):
        out[f"p_{name}"], out[f"b_{name}"], out[f"c_{name}"] = math.nan, pd.NA, pd.NA
    out["p_auc"] = out["z_auc"] = math.nan
    return out


def gout_image_table(
    predictions: pd.DataFrame,
    best_arm: str = "auto",
    image_threshold: float = 0.5,
    level: float = 0.95,
) -> pd.DataFrame:
    """Build gout Table I: per arm ACC, SEN, SPE, AUC on the test images, tests against the best.

    Rows: one per (fold, arm), folds "0".."k" and "pooled" (all test folds together; each image
    is in exactly one test fold). Per arm: counts TP/FN/TN/FP; ``acc``, ``sen``, ``spe`` in
    percent with k, n and Wilson CI; ``auc`` with DeLong CI. Arms other than the best carry
    p-values against the best arm on the same images: McNemar (continuity-corrected) on
    per-image correctness for ``p_acc`` (all images), ``p_sen`` (positives only), ``p_spe``
    (negatives only), with the discordant counts ``b_*`` (best right, this arm wrong) and
    ``c_*``; the paired DeLong test for ``p_auc`` (``z_auc`` > 0: the best arm's AUC is higher).
    Pooled rows also carry the paper's Table I values (``paper_*``; the paper tested against
    its own best, 3 blocks: ``paper_reference``).

    Args:
        best_arm: "auto" = the arm with the highest pooled AUC (first in natural arm order on a
            tie), or an arm name.
    Raises:
        ValueError: missing columns or bad values, an image twice in the test subsets of an
            arm, or arms with different test images (paired tests need the same images).
    """
    what = "gout_image_table"
    df = _prepare(predictions, image_threshold, what)
    test = _test_subset(df, what)
    arms = _sorted_arms(test["arm"].unique())
    by_arm = _aligned(test, arms, what)

    pooled = {
        arm: binary_metrics(t["label"], t["pred"], t["prob"], level=level)
        for arm, t in by_arm.items()
    }
    if best_arm == "auto":
        aucs = {arm: (m.auc.auc if m.auc else -math.inf) for arm, m in pooled.items()}
        best = max(arms, key=lambda a: aucs[a])  # max keeps the first of equal AUCs
    elif best_arm in by_arm:
        best = best_arm
    else:
        raise ValueError(f"{what}: best_arm={best_arm!r} is not an arm; expected 'auto' or {arms}")
    log.info("gout Table I: best arm %s (of %s)", best, arms)

    groups: list[tuple[str, dict[str, pd.DataFrame]]] = [("pooled", by_arm)]
    for fold in sorted(test["fold"].unique()):
        groups.append((str(fold), {arm: t[t["fold"] == fold] for arm, t in by_arm.items()}))

    rows = []
    for fold, frames in groups:
        for arm in arms:
            t = frames[arm]
            m = (
                pooled[arm]
                if fold == "pooled"
                else binary_metrics(t["label"], t["pred"], t["prob"], level=level)
            )
            row = {
                "fold": fold,
                "arm": arm,
                "paper_arm": papers.GOUT_ARM_LABELS.get(arm, ""),
                "n_images": m.n,
                "n_positive": m.tp + m.fn,
                "n_negative": m.tn + m.fp,
                **_counts(m),
                **_estimate_cols("acc", m.accuracy, True),
                **_estimate_cols("sen", m.sensitivity, True),
                **_estimate_cols("spe", m.specificity, True),
                **_auc_cols("auc", m),
                "is_best": arm == best,
                "reference_arm": best,
                **(_no_tests() if arm == best else _paired_tests(frames[best], t)),
            }
            printed = papers.GOUT_TABLE1.get(arm) if fold == "pooled" else None
            for name in ("acc", "sen", "spe"):
                row.update(_paper_prop(name, printed[name] if printed else None, counts=True))
            row.update(_paper_auc("auc", printed["auc"] if printed else None))
            for name in ("acc", "sen", "spe", "auc"):
                row[f"paper_p_{name}"] = _cell(printed[f"p_{name}"]) if printed else math.nan
            row["paper_reference"] = papers.GOUT_ARM_LABELS["blocks3"] if printed else ""
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
    computed; the threshold is searched (`mskdx.stats.search_threshold`, diagnose gout iff
    fraction > threshold, grid step `step`) on that fold's **train** patients using their
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
    tp, fn, tn, fp = totals["tp"], totals["fn"], totals["tn"], totals["fp"]
    pooled = {
        "fold": "pooled",
        "n_patients": tp + fn + tn + fp,
        **totals,
        **_estimate_cols("acc", proportion(tp + tn, tp + fn + tn + fp, level), True),
        **_estimate_cols("sen", proportion(tp, tp + fn, level), True),
        **_estimate_cols("spe", proportion(tn, tn + fp, level), True),
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
    Per class: ``precision``, ``recall`` (0-1, with k, n and Wilson CI) and ``f1`` (no CI).
    Per arm (repeated on both rows): ``accuracy`` in percent with Wilson CI, ``auc`` with
    DeLong CI, confusion counts ``tp``, ``fn``, ``tn``, ``fp`` (positive = patient). ``paper_*``:
    the paper's Table II, AUC and accuracy assigned to the sequence they belong to (the printed
    "(T1) Healthy" row holds T2's; see `mskdx.papers.OLT_TABLE2_PRINTED`), and the confusion
    counts from its text (``paper_tp`` ...).
    """
    what = "olt_table"
    df = _prepare(predictions, image_threshold, what)
    test = _test_subset(df, what)
    rows = []
    for arm in _sorted_arms(test["arm"].unique()):
        t = test[test["arm"] == arm]
        m = binary_metrics(t["label"], t["pred"], t["prob"], level=level)
        shared = {
            "n_images": m.n,
            **_counts(m),
            **_estimate_cols("accuracy", m.accuracy, True),
            **_auc_cols("auc", m),
        }
        confusion = papers.OLT_CONFUSION.get(arm)
        for cls, prec, rec, f1 in (
            ("patient", m.precision_positive, m.recall_positive, m.f1_positive),
            ("healthy", m.precision_negative, m.recall_negative, m.f1_negative),
        ):
            printed = papers.OLT_TABLE2.get((arm, cls))
            row = {
                "arm": arm,
                "class": cls,
                **_estimate_cols("precision", prec, False),
                **_estimate_cols("recall", rec, False),
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
            rows.append(row)
    return _frame(rows)


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


def _fmt(x: object, digits: int) -> str:
    if x is None or x is pd.NA:
        return ""
    if isinstance(x, float | np.floating):
        if math.isnan(x):
            return ""
        text = f"{x:.{digits}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    if isinstance(x, np.integer):
        return str(int(x))
    if isinstance(x, np.bool_):
        return str(bool(x))
    return str(x)


def _fmt_p(p: float) -> str:
    if p is None or p is pd.NA or (isinstance(p, float) and math.isnan(p)):
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def compact_view(table: pd.DataFrame) -> pd.DataFrame:
    """Merge each metric's value, count and CI columns into one text cell for display.

    ``acc`` + ``acc_k``/``acc_n`` + ``acc_low``/``acc_high`` -> "83.3 (334/401) [81.2, 85.4]"
    (percent metrics with 1 decimal, others with 3); ``p_*`` columns as "0.032" / "<0.001";
    discordant counts and z are dropped. Other columns are kept as they are.
    """
    out = pd.DataFrame(index=table.index)
    used: set[str] = set()
    columns = list(table.columns)
    drop = {c for c in columns if re.fullmatch(r"[bc]_(acc|sen|spe)|z_auc", c)}
    for column in columns:
        if column in used or column in drop:
            continue
        base = column
        parts = [f"{base}_k", f"{base}_n", f"{base}_low", f"{base}_high"]
        if any(p in table.columns for p in parts[2:]):
            metric = base.removeprefix("paper_")
            digits = 1 if metric in PERCENT_METRICS else 3
            cells = []
            for _, row in table.iterrows():
                value = row[base]
                if (
                    value is None
                    or value is pd.NA
                    or (isinstance(value, float) and math.isnan(value))
                ):
                    cells.append("")
                    continue
                text = f"{value:.{digits}f}"
                if f"{base}_k" in table.columns and not pd.isna(row[f"{base}_k"]):
                    text += f" ({int(row[f'{base}_k'])}/{int(row[f'{base}_n'])})"
                low, high = row.get(f"{base}_low"), row.get(f"{base}_high")
                if low is not None and not pd.isna(low):
                    text += f" [{low:.{digits}f}, {high:.{digits}f}]"
                cells.append(text)
            out[base] = cells
            used.update(p for p in parts if p in table.columns)
        elif re.fullmatch(r"(paper_)?p_\w+", column):
            out[column] = [_fmt_p(v) for v in table[column]]
        else:
            out[column] = table[column]
        used.add(column)
    return out


def to_markdown(df: pd.DataFrame, title: str = "", digits: int = 3, compact: bool = True) -> str:
    """Render `df` as a GitHub Markdown table, after `compact_view` unless `compact` is False.

    Floats get `digits` decimals, NaN/NA are blank, "|" in cells is escaped and line breaks
    become spaces. A small renderer, so that the pipeline does not depend on ``tabulate``.
    """
    if compact:
        df = compact_view(df)

    def clean(value: object) -> str:
        return _fmt(value, digits).replace("|", "\\|").replace("\n", " ")

    header = [clean(c) for c in df.columns]
    lines = [f"### {title}", ""] if title else []
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" for _ in header) + "|")
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(clean(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Paper check: recompute the papers' summary numbers from their printed counts
# ---------------------------------------------------------------------------------------------

#: What each CI method applies to (for the "method fits the quantity" checks).
METHOD_SCOPE = {
    "Wilson score interval": "binomial proportion",
    "DeLong": "AUC",
    "Hanley-McNeil": "AUC",
}


def _r(x: float, cell: Cell) -> str:
    """Format a recomputed value to the printed precision of `cell`."""
    return f"{x:.{cell.decimals}f}"


def _ci_text(low: Cell | str, high: Cell | str) -> str:
    return f"[{low}, {high}]"


class _Check:
    """Accumulate paper_check rows."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(
        self,
        paper: str,
        quantity: str,
        printed: str,
        recomputed: str,
        method: str,
        consistent: bool,
        note: str = "",
        if_not: str = "",
    ) -> None:
        """Add a row; `if_not` is appended to the note only when the check fails."""
        if not consistent and if_not:
            note = f"{note}; {if_not}" if note else if_not
        self.rows.append(
            {
                "paper": paper,
                "quantity": quantity,
                "printed": printed,
                "recomputed": recomputed,
                "method": method,
                "consistent": bool(consistent),
                "note": note,
            }
        )

    def proportion(
        self, paper: str, quantity: str, cell: Cell, k: int, n: int, percent: bool, note: str = ""
    ) -> float:
        scale = 100.0 if percent else 1.0
        value = scale * k / n
        self.add(
            paper,
            quantity,
            f"{cell} ({k}/{n})" if percent else f"{cell}",
            f"{_r(value, cell)} ({k}/{n})",
            f"k/n{' x 100' if percent else ''}",
            cell.agrees(value),
            note,
            if_not=_near_miss(cell, value),
        )
        return value

    def wilson(
        self,
        paper: str,
        quantity: str,
        low: Cell,
        high: Cell,
        k: int,
        n: int,
        percent: bool,
        method_note: str = "",
        note: str = "",
    ) -> tuple[float, float]:
        scale = 100.0 if percent else 1.0
        lo, hi = (scale * v for v in wilson_ci(k, n))
        self.add(
            paper,
            quantity,
            _ci_text(low, high),
            f"{_ci_text(_r(lo, low), _r(hi, high))} ({k}/{n})",
            "Wilson score interval, 95%" + (f" ({method_note})" if method_note else ""),
            low.agrees(lo) and high.agrees(hi),
            note,
            if_not="; ".join(m for m in (_near_miss(low, lo), _near_miss(high, hi)) if m),
        )
        return lo, hi


def _near_miss(cell: Cell, value: float) -> str:
    """A note when `value` misses `cell` by less than one unit of its last digit, else ""."""
    if cell.agrees(value) or abs(value - cell.value) >= 2 * cell.half_unit:
        return ""
    return (
        f"{value:.{cell.decimals + 2}f} rounds to {_r(value, cell)}, not {cell}: off by one in "
        "the last digit (truncated rather than rounded?)"
    )


def _reconstruct_fold(acc: Cell, sen: Cell, spe: Cell, max_pos: int, max_neg: int) -> list[tuple]:
    """All (P, N, TP, TN) with P <= max_pos, N <= max_neg whose percentages round to the cells."""
    pos = [
        (p, tp)
        for p in range(1, max_pos + 1)
        for tp in {math.floor(sen.value * p / 100), math.ceil(sen.value * p / 100)}
        if 0 <= tp <= p and sen.agrees(100 * tp / p)
    ]
    neg = [
        (n, tn)
        for n in range(1, max_neg + 1)
        for tn in {math.floor(spe.value * n / 100), math.ceil(spe.value * n / 100)}
        if 0 <= tn <= n and spe.agrees(100 * tn / n)
    ]
    return sorted(
        (p, n, tp, tn) for p, tp in pos for n, tn in neg if acc.agrees(100 * (tp + tn) / (p + n))
    )


def _reachable(options: list[set[tuple[int, int]]], limit: tuple[int, int]) -> set[tuple[int, int]]:
    """All (sum P, sum N) from choosing one (P, N) per fold, capped at `limit`."""
    reach = {(0, 0)}
    for opts in options:
        reach = {
            (a + p, b + n)
            for a, b in reach
            for p, n in opts
            if a + p <= limit[0] and b + n <= limit[1]
        }
    return reach


def _check_gout(chk: _Check) -> None:
    g, t1 = papers.GOUT, papers.GOUT_TABLE1
    P = "gout"
    # Table I: each percentage from its count, each CI against Wilson, counts against each other.
    for arm, row in t1.items():
        label = papers.GOUT_ARM_LABELS[arm]
        for name, title in (("acc", "ACC"), ("sen", "SEN"), ("spe", "SPE")):
            pp: PrintedProportion = row[name]
            chk.proportion(P, f"Table I {label} {title} %", pp.value, pp.k, pp.n, True)
            chk.wilson(
                P,
                f"Table I {label} {title} 95% CI",
                pp.low,
                pp.high,
                pp.k,
                pp.n,
                True,
                method_note="the paper names no CI method",
            )
        acc, sen, spe = row["acc"], row["sen"], row["spe"]
        chk.add(
            P,
            f"Table I {label}: SEN n + SPE n = ACC n",
            f"{sen.n} + {spe.n} vs {acc.n}",
            f"{sen.n + spe.n}",
            "every test image is gout or control",
            sen.n + spe.n == acc.n,
            if_not=f"{sen.n + spe.n} is about one fold ({g['images']} / {g['folds']} = "
            f"{g['images'] / g['folds']:.1f} images), not {acc.n}",
        )
        chk.add(
            P,
            f"Table I {label}: SEN k + SPE k = ACC k (TP + TN = correct)",
            f"{sen.k} + {spe.k} vs {acc.k}",
            f"{sen.k + spe.k}",
            "correct images = true positives + true negatives",
            sen.k + spe.k == acc.k,
        )
        auc: PrintedAuc = row["auc"]
        mid = (auc.low.value + auc.high.value) / 2
        tol = auc.value.half_unit + auc.low.half_unit
        chk.add(
            P,
            f"Table I {label} AUC CI centred on the AUC",
            f"{auc.value} {_ci_text(auc.low, auc.high)}",
            f"midpoint {mid:.4f}",
            "a DeLong (normal) CI is AUC +- 1.96 SE, symmetric unless clipped at 1",
            abs(mid - auc.value.value) <= tol + 1e-9,
            if_not="asymmetric: not a DeLong/normal interval; the paper does not say how it "
            "was made",
        )
    # Test images: 5-fold CV tests every image once.
    acc_n = t1["blocks3"]["acc"].n
    chk.add(
        P,
        "Table I test images (ACC n)",
        f"{acc_n}",
        f"{g['images']} pooled over folds; {g['images'] / g['folds']:.1f} per fold",
        "five-fold CV: each of the 2401 images is tested once",
        acc_n in (g["images"], round(g["images"] / g["folds"])),
        if_not=f"{acc_n} is neither the pooled test set nor one fold",
    )
    # Cohort counts.
    chk.add(
        P,
        "gout images + control images = all images",
        f"{g['images_gout']} + {g['images_control']} vs {g['images']}",
        f"{g['images_gout'] + g['images_control']}",
        "sum",
        g["images_gout"] + g["images_control"] == g["images"],
    )
    chk.add(
        P,
        "gout patients + control patients = all patients",
        f"{g['patients_gout']} + {g['patients_control']} vs {g['patients']}",
        f"{g['patients_gout'] + g['patients_control']}",
        "sum",
        g["patients_gout"] + g["patients_control"] == g["patients"],
    )
    chk.add(
        P,
        "training + testing patients = all patients",
        f"{g['train_patients']} + {g['test_patients']} vs {g['patients']}",
        f"{g['train_patients'] + g['test_patients']}",
        "sum",
        g["train_patients"] + g["test_patients"] == g["patients"],
    )
    per_fold = g["patients"] / g["folds"]
    chk.add(
        P,
        "testing patients per fold",
        f"{g['test_patients']}",
        f"{per_fold:g}",
        f"{g['patients']} patients / {g['folds']} folds",
        abs(g["test_patients"] - per_fold) < 1,
    )
    # Diagnostic accuracy 46/51.
    da: PrintedProportion = g["diagnostic_accuracy"]
    chk.proportion(P, "diagnostic accuracy (text, 46/51)", da.value, da.k, da.n, True)
    ab: PrintedProportion = g["abstract_accuracy"]
    chk.proportion(
        P, "diagnostic accuracy (abstract)", ab.value, da.k, da.n, True, "count from the text"
    )
    chk.wilson(P, "diagnostic accuracy 95% CI (text, abstract)", da.low, da.high, da.k, da.n, True)
    # Table III: mean of folds vs printed average.
    t3 = papers.GOUT_TABLE3
    folds = [v for k, v in t3.items() if k != "average"]
    for name, title in (("acc", "ACC"), ("sen", "SEN"), ("spe", "SPE"), ("threshold", "threshold")):
        printed = t3["average"][name]
        mean = float(np.mean([f[name].value for f in folds]))
        chk.add(
            P,
            f"Table III average {title} = mean of folds",
            f"{printed}",
            _r(mean, printed),
            "mean of the five printed fold values (the paper: 'average')",
            printed.agrees(mean),
        )
    # Table III: smallest patient counts that reproduce each fold's ACC/SEN/SPE.
    max_pos, max_neg = g["patients_gout"], g["patients_control"]
    options, smallest = [], []
    for fold_name, f in folds_named(t3):
        cands = _reconstruct_fold(f["acc"], f["sen"], f["spe"], max_pos, max_neg)
        options.append({(p, n) for p, n, _, _ in cands})
        if cands:
            p, n, tp, tn = min(cands, key=lambda c: (c[0] + c[1], c))
            smallest.append((p, n, tp, tn))
            text = f"{tp}/{p} gout + {tn}/{n} control = {tp + tn}/{p + n}"
        else:
            smallest.append(None)
            text = "none"
        chk.add(
            P,
            f"Table III {fold_name}: patient counts behind ACC/SEN/SPE",
            f"{f['acc']} / {f['sen']} / {f['spe']}",
            text,
            f"smallest P <= {max_pos} gout, N <= {max_neg} control patients whose ACC, SEN, "
            "SPE round to the printed values",
            bool(cands),
        )
    if all(s is not None for s in smallest):
        tp = sum(s[2] for s in smallest)
        pos = sum(s[0] for s in smallest)
        tn = sum(s[3] for s in smallest)
        neg = sum(s[1] for s in smallest)
        avg = t3["average"]
        for name, title, k, n in (
            ("acc", "ACC", tp + tn, pos + neg),
            ("sen", "SEN", tp, pos),
            ("spe", "SPE", tn, neg),
        ):
            value = 100 * k / n
            chk.add(
                P,
                f"Table III average {title} = pooled over the reconstructed folds",
                f"{avg[name]}",
                f"{_r(value, avg[name])} ({k}/{n})",
                "test patients of the five folds counted together (smallest counts per fold)",
                avg[name].agrees(value),
                "the 'average' row matches pooling, not the mean of the folds"
                if avg[name].agrees(value)
                else "",
            )
        reach = _reachable(options, (max_pos, max_neg))
        target = (g["patients_gout"], g["patients_control"])
        chk.add(
            P,
            "Table III folds cover all 260 patients (149 gout + 111 control)",
            f"{g['patients']} patients in {g['folds']} test folds",
            f"smallest counts: {pos} gout + {neg} control = {pos + neg}; "
            f"{'a' if target in reach else 'no'} combination of admissible counts gives "
            f"{target[0]} + {target[1]}",
            "each patient is tested once in five-fold CV",
            target in reach,
        )
        for name, title, k, n in (
            ("diagnostic_sensitivity", "SEN", tp, pos),
            ("diagnostic_specificity", "SPE", tn, neg),
        ):
            pp = g[name]
            chk.wilson(
                P,
                f"diagnostic {title} 95% CI (text)",
                pp.low,
                pp.high,
                k,
                n,
                True,
                method_note="counts reconstructed from Table III",
            )
    # Thresholds: text vs Table III, averages.
    for (fold_name, f), text in zip(folds_named(t3), g["text_thresholds"], strict=True):
        chk.add(
            P,
            f"threshold {fold_name}: text vs Table III",
            f"text {text}, table {f['threshold']}",
            f"{f['threshold'].value - text.value:+.2f}",
            "difference",
            f["threshold"].value == text.value,
            if_not="the text's list and Table III disagree",
        )
    text_mean = float(np.mean([c.value for c in g["text_thresholds"]]))
    chk.add(
        P,
        "text threshold average = mean of the text's thresholds",
        f"{g['text_threshold_average']}",
        _r(text_mean, g["text_threshold_average"]),
        "mean",
        g["text_threshold_average"].agrees(text_mean),
    )
    table_mean = float(np.mean([f["threshold"].value for f in folds]))
    chk.add(
        P,
        "abstract threshold = mean of Table III thresholds",
        f"{g['abstract_threshold']}",
        _r(table_mean, g["abstract_threshold"]),
        "mean",
        g["abstract_threshold"].agrees(table_mean),
    )
    # Claims about significance against the printed p-values.
    alpha = g["alpha"]
    for arm in g["claim_significant_vs"]:
        ps = {k: t1[arm][k].value for k in ("p_acc", "p_sen", "p_spe", "p_auc")}
        chk.add(
            P,
            f"text: 3 blocks differs significantly from {papers.GOUT_ARM_LABELS[arm]}",
            "significant",
            f"smallest printed p = {min(ps.values()):.2f} ({min(ps, key=ps.get)})",
            f"any Table I p < {alpha}",
            min(ps.values()) < alpha,
        )
    for arm in g["claim_not_significant_vs"]:
        ps = {k: t1[arm][k].value for k in ("p_acc", "p_sen", "p_spe", "p_auc")}
        chk.add(
            P,
            f"text: no significant difference from {papers.GOUT_ARM_LABELS[arm]}",
            "not significant",
            f"smallest printed p = {min(ps.values()):.2f} ({min(ps, key=ps.get)})",
            f"all Table I p >= {alpha}",
            min(ps.values()) >= alpha,
        )
    for name, title in (("auc", "AUC"), ("acc", "ACC")):
        values = {arm: row[name].value.value for arm, row in t1.items()}
        top = max(values, key=values.get)
        chk.add(
            P,
            f"text: 3 blocks has the highest {title}",
            "3 blocks",
            f"{papers.GOUT_ARM_LABELS[top]} ({values[top]:g})",
            "maximum over Table I",
            top == "blocks3" and sorted(values.values())[-2] < values[top],
        )
    # Table II claims.
    flops = {arm: v["flops_m"].value for arm, v in papers.GOUT_TABLE2.items()}
    params = {arm: v["params_m"].value for arm, v in papers.GOUT_TABLE2.items()}
    for quantity, values, pick, expected in (
        ("text: 3 blocks has the fewest FLOPs", flops, min, "blocks3"),
        ("text: 2 blocks has the most FLOPs", flops, max, "blocks2"),
        ("text: 2 blocks has the fewest parameters", params, min, "blocks2"),
    ):
        arm = pick(values, key=values.get)
        chk.add(
            P,
            quantity,
            papers.GOUT_ARM_LABELS[expected],
            f"{papers.GOUT_ARM_LABELS[arm]} ({values[arm]:g})",
            "Table II",
            arm == expected,
        )
    # Grad-CAM counts.
    chk.add(
        P,
        "Grad-CAM: agreeing + disagreeing images = all images",
        f"{g['gradcam_agree']} + {g['gradcam_disagree']} vs {g['images']}",
        f"{g['gradcam_agree'] + g['gradcam_disagree']}",
        "sum",
        g["gradcam_agree"] + g["gradcam_disagree"] == g["images"],
    )
    chk.add(
        P,
        "Grad-CAM: false negatives + false positives = disagreeing images",
        f"{g['gradcam_fn']} + {g['gradcam_fp']} vs {g['gradcam_disagree']}",
        f"{g['gradcam_fn'] + g['gradcam_fp']}",
        "sum",
        g["gradcam_fn"] + g["gradcam_fp"] == g["gradcam_disagree"],
    )
    for total_key, reasons_key in (
        ("gradcam_fn", "gradcam_fn_reasons"),
        ("gradcam_fp", "gradcam_fp_reasons"),
    ):
        total = g[total_key]
        for reason, (k, cell) in g[reasons_key].items():
            chk.proportion(P, f"Grad-CAM {reason} (of {total})", cell, k, total, True)
    fn_sum = sum(k for k, _ in g["gradcam_fn_reasons"].values())
    chk.add(
        P,
        "Grad-CAM: false-negative reasons add up to at most the false negatives",
        f"{' + '.join(str(k) for k, _ in g['gradcam_fn_reasons'].values())} of {g['gradcam_fn']}",
        f"{fn_sum}",
        "sum",
        fn_sum <= g["gradcam_fn"],
        if_not="more reasons than images: the categories overlap or a count is wrong",
    )


def folds_named(t3: dict[str, dict[str, Cell]]) -> list[tuple[str, dict[str, Cell]]]:
    """Table III's fold rows (without the average) as (name, cells)."""
    return [(k, v) for k, v in t3.items() if k != "average"]


def _check_olt(chk: _Check) -> None:
    o, t1 = papers.OLT, papers.OLT_TABLE1
    P = "olt"
    for seq, subsets in t1.items():
        total = sum(sum(c.values()) for c in subsets.values())
        chk.add(
            P,
            f"Table I {seq}: images add up",
            f"{o['images'][seq]}",
            f"{total}",
            "sum over subsets and classes",
            total == o["images"][seq],
        )
        shares = [sum(subsets[s].values()) / total for s in ("train", "val", "test")]
        chk.add(
            P,
            f"Table I {seq}: 60/20/20 split",
            "60:20:20",
            "/".join(f"{100 * s:.1f}" for s in shares),
            "share of images per subset",
            all(abs(s - f) <= 0.01 for s, f in zip(shares, o["fractions"], strict=True)),
            "within 1 point of 60/20/20 at the image level, although the split is said to be "
            "by patient",
        )
    chk.add(
        P,
        "scans with OLT + without = all scans",
        f"{o['scans_olt']} + {o['scans_healthy']} vs {o['scans']}",
        f"{o['scans_olt'] + o['scans_healthy']}",
        "sum",
        o["scans_olt"] + o["scans_healthy"] == o["scans"],
    )
    for key, scans in (("subjects_patient", "scans_olt"), ("subjects_healthy", "scans_healthy")):
        chk.add(
            P,
            f"{key.replace('_', ' ')} subfolders = {scans.replace('_', ' ')}",
            f"{o[key]}",
            f"{o[scans]}",
            "same cohort counted twice",
            o[key] == o[scans],
        )
    for seq, cm in papers.OLT_CONFUSION.items():
        tp, fn, tn, fp = cm["tp"], cm["fn"], cm["tn"], cm["fp"]
        test = t1[seq]["test"]
        chk.add(
            P,
            f"{seq}: text confusion counts vs Table I test set",
            f"{test['patient']} patient + {test['healthy']} healthy",
            f"{tp + fn} + {tn + fp}",
            "TP + FN, TN + FP",
            (tp + fn, tn + fp) == (test["patient"], test["healthy"]),
        )
        n = tp + fn + tn + fp
        acc: PrintedProportion = o[seq]["accuracy"]
        chk.proportion(P, f"{seq} accuracy %", acc.value, tp + tn, n, True)
        chk.wilson(P, f"{seq} accuracy 95% CI", acc.low, acc.high, tp + tn, n, True)
        if "sensitivity" in o[seq]:
            chk.proportion(P, f"{seq} sensitivity %", o[seq]["sensitivity"], tp, tp + fn, True)
        if "specificity" in o[seq]:
            chk.proportion(P, f"{seq} specificity %", o[seq]["specificity"], tn, tn + fp, True)
        counts = {
            "patient": {
                "precision": (tp, tp + fp),
                "recall": (tp, tp + fn),
                "f1": (2 * tp, 2 * tp + fp + fn),
            },
            "healthy": {
                "precision": (tn, tn + fn),
                "recall": (tn, tn + fp),
                "f1": (2 * tn, 2 * tn + fn + fp),
            },
        }
        for cls in ("patient", "healthy"):
            printed = papers.OLT_TABLE2_PRINTED[(seq, cls)]
            for metric in ("precision", "recall"):
                pp: PrintedProportion = printed[metric]
                k, m = counts[cls][metric]
                chk.proportion(P, f"Table II ({seq}) {cls} {metric}", pp.value, k, m, False)
                chk.wilson(
                    P, f"Table II ({seq}) {cls} {metric} 95% CI", pp.low, pp.high, k, m, False
                )
            k, m = counts[cls]["f1"]
            f1 = printed["f1"]
            chk.add(
                P,
                f"Table II ({seq}) {cls} F1",
                f"{f1}",
                f"{_r(k / m, f1)} ({k}/{m})",
                "F1 = 2 TP / (2 TP + FP + FN) from the text's confusion counts",
                f1.agrees(k / m),
            )
    # Table II: the "(T1) Healthy" row's AUC and accuracy cells.
    cm1, cm2 = papers.OLT_CONFUSION["T1"], papers.OLT_CONFUSION["T2"]
    printed = papers.OLT_TABLE2_PRINTED[("T1", "healthy")]
    acc_cell: PrintedProportion = printed["accuracy"]
    n1 = sum(cm1.values())
    n2 = sum(cm2.values())
    a1 = 100 * (cm1["tp"] + cm1["tn"]) / n1
    a2 = 100 * (cm2["tp"] + cm2["tn"]) / n2
    lo2, hi2 = (100 * v for v in wilson_ci(cm2["tp"] + cm2["tn"], n2))
    chk.add(
        P,
        "Table II (T1) Healthy row: accuracy cell = T1 accuracy",
        f"{acc_cell.value}% {_ci_text(acc_cell.low, acc_cell.high)}",
        f"{_r(a1, acc_cell.value)}",
        "T1 (TP + TN) / n from the text's counts",
        acc_cell.value.agrees(a1),
        f"the cell equals T2's accuracy {_r(a2, acc_cell.value)}% "
        f"{_ci_text(_r(lo2, acc_cell.low), _r(hi2, acc_cell.high))}"
        if acc_cell.value.agrees(a2)
        else "",
    )
    auc_cell: PrintedAuc = printed["auc"]
    t1_auc, t2_auc = o["T1"]["auc"], o["T2"]["auc"]
    chk.add(
        P,
        "Table II (T1) Healthy row: AUC cell = T1 AUC",
        f"{auc_cell.value} {_ci_text(auc_cell.low, auc_cell.high)}",
        f"{t1_auc.value} {_ci_text(t1_auc.low, t1_auc.high)}",
        "T1 AUC as printed on the (T1) Patient row and in the text (one AUC per model)",
        auc_cell.value.value == t1_auc.value.value,
        "the cell holds T2's AUC from the text"
        if (auc_cell.value, auc_cell.low, auc_cell.high) == (t2_auc.value, t2_auc.low, t2_auc.high)
        else "",
    )
    # AUC CIs "using the Wilson score interval method".
    z = norm.ppf(0.975)
    ses = {}
    for seq, cm in papers.OLT_CONFUSION.items():
        auc: PrintedAuc = o[seq]["auc"]
        m, n = cm["tp"] + cm["fn"], cm["tn"] + cm["fp"]
        chk.add(
            P,
            f"{seq} AUC 95% CI method",
            o["ci_method"],
            f"{o['ci_method']} applies to a {METHOD_SCOPE[o['ci_method']]}",
            "scope of the named method",
            METHOD_SCOPE[o["ci_method"]] == "AUC",
            if_not="an AUC is not a proportion of independent trials; use DeLong (needs the "
            "scores) or Hanley-McNeil",
        )
        # AUC = U / (m n) with U a multiple of 1/2; keep those that round to the printed AUC.
        u = np.arange(0, 2 * m * n + 1) / (2.0 * m * n)
        u = u[np.abs(u - auc.value.value) <= auc.value.half_unit + 1e-12]
        lo, hi = proportion_confint(u * (m + n), m + n, method="wilson")
        fits = u[
            (np.abs(lo - auc.low.value) <= auc.low.half_unit + 1e-9)
            & (np.abs(hi - auc.high.value) <= auc.high.half_unit + 1e-9)
        ]
        lo_p, hi_p = proportion_confint(auc.value.value * (m + n), m + n, method="wilson")
        chk.add(
            P,
            f"{seq} AUC 95% CI as the paper says (Wilson on the AUC, n = {m + n} images)",
            _ci_text(auc.low, auc.high),
            _ci_text(_r(lo_p, auc.low), _r(hi_p, auc.high))
            + (
                f" at AUC {auc.value}; printed CI reached for AUC {fits.min():.4f}-{fits.max():.4f}"
                if fits.size
                else f" at AUC {auc.value}; no AUC that rounds to {auc.value} gives the printed CI"
            ),
            f"Wilson score interval of AUC x {m + n} successes in {m + n} test images, for every "
            f"attainable AUC (U / ({m} x {n})) that rounds to the printed one",
            bool(fits.size),
            "consistent = the paper's CI is what Wilson on the AUC gives: the stated method was "
            "used, and it is not a valid CI for an AUC"
            if fits.size
            else "",
        )
        se = hanley_mcneil_se(auc.value.value, m, n)
        ses[seq] = (auc.value.value, se)
        lo, hi = auc.value.value - z * se, min(1.0, auc.value.value + z * se)
        chk.add(
            P,
            f"{seq} AUC 95% CI, Hanley-McNeil",
            _ci_text(auc.low, auc.high),
            _ci_text(_r(lo, auc.low), _r(hi, auc.high)),
            f"Hanley & McNeil (1982) SE from AUC, {m} positives, {n} negatives; AUC +- 1.96 SE",
            auc.low.agrees(lo) and auc.high.agrees(hi),
        )
    (a1_, se1), (a2_, se2) = ses["T1"], ses["T2"]
    zz = (a1_ - a2_) / math.hypot(se1, se2)
    p = 2 * norm.sf(abs(zz))
    chk.add(
        P,
        "text: T2 AUC 'statistically trails' T1",
        "T1 0.93 > T2 0.91, significant",
        f"z = {zz:.2f}, p = {p:.2f}",
        "two independent AUCs, Hanley-McNeil SEs (the paper names no test)",
        p < 0.05,
        if_not=f"a {a1_ - a2_:.2f} difference on {n1} and {n2} test images is not significant",
    )


def paper_check() -> pd.DataFrame:
    """Recompute the papers' summary numbers from their printed counts; flag what disagrees.

    Each row is one computation: ``printed`` (the paper's text), ``recomputed`` (ours, rounded
    to the printed precision), ``method`` (how), ``consistent`` (True if the printed value is
    reproduced to its printed precision, or the printed claim holds), ``note``.
    """
    chk = _Check()
    _check_gout(chk)
    _check_olt(chk)
    return pd.DataFrame(
        chk.rows,
        columns=["paper", "quantity", "printed", "recomputed", "method", "consistent", "note"],
    )
