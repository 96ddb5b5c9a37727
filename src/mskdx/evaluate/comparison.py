"""`mskdx compare`: clustered comparison of arms on anyone's predictions (issue 37).

Input: a long CSV with one row per (arm, image): ``patient``, ``label`` (0/1), ``arm``, ``prob``
(in [0, 1]), optional ``image`` and ``fold`` (``fold`` is accepted and ignored). Every arm must
score the same images. The key of an image is (patient, image) when ``image`` is given, which
must then be unique per arm; without ``image`` it is (patient, k), the k-th row of that patient
within each arm, so every arm must list each patient's images in the same order (this cannot
be checked beyond the counts and the labels: give ``image`` where you can).

Output ``out_dir/comparison.csv`` (one row per arm) and ``comparison.md`` beside it, written
only when everything has been computed (atomically, `mskdx.io`). Proportions are on the 0-1
scale in the CSV and in percent in the Markdown. Plain names hold the values clustered by
patient, the suffix ``_independent`` the image-as-unit values (the papers' methods: DeLong,
Wilson, McNemar with continuity correction):

- AUC: Obuchowski (1997) SE and CI (`stats.clustered`); DeLong independent.
- ACC, SEN, SPE, PPV, NPV (call = prob >= threshold): ratio estimator with the between-patient
  variance, Wilson on the design-effect n (`stats.clustered_binary`), with deff and ICC.
- p_auc: Obuchowski paired z test; p_acc, p_sen, p_spe: Durkalski (2003) clustered McNemar;
  each against the reference, blank on the reference's row.
- p_*_adjusted: a named reference: Holm over the k - 1 raw p-values; ``auto`` (the arm with the
  highest clustered AUC, first in file order on ties): Holm over all k (k - 1) / 2 pairwise
  tests, the k - 1 with the reference reported (`stats.multiplicity` says why that keeps the
  family-wise error rate for a reference picked on the data).
- global_chi2, global_df, global_p: the clustered Wald test that all k AUCs are equal.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from mskdx.errors import PredictionsError
from mskdx.evaluate.markdown import to_markdown
from mskdx.evaluate.stats.clustered import (
    clustered_auc,
    clustered_auc_global_test,
    clustered_auc_test,
)
from mskdx.evaluate.stats.clustered_binary import clustered_mcnemar, clustered_proportion
from mskdx.evaluate.stats.delong import delong_auc, delong_test
from mskdx.evaluate.stats.mcnemar import mcnemar
from mskdx.evaluate.stats.multiplicity import holm, pairwise_holm
from mskdx.evaluate.stats.proportions import proportion
from mskdx.io import atomic_path

__all__ = ["Cohort", "adjusted_pvalues", "compare_predictions", "read_comparison_input"]

log = logging.getLogger(__name__)

REQUIRED = ("patient", "label", "arm", "prob")
METRICS = ("acc", "sen", "spe", "ppv", "npv")
TESTED = ("auc", "acc", "sen", "spe")
AUC_COLUMNS = ("auc", "auc_se", "auc_ci_low", "auc_ci_high", "auc_deff", "auc_se_independent",
               "auc_ci_low_independent", "auc_ci_high_independent")  # fmt: skip


@dataclass(frozen=True)
class Cohort:
    """The images every arm scored: labels, patients and one score vector per arm (same order)."""

    labels: np.ndarray  # (n,) 0/1
    patients: np.ndarray  # (n,) patient of each image
    scores: dict[str, np.ndarray]  # arm -> (n,) probabilities, arms in file order
    keyed_by_image: bool


def _rows(mask: pd.Series | np.ndarray, limit: int = 10) -> str:
    """CSV line numbers (header = line 1) of the first rows where `mask` holds."""
    idx = np.flatnonzero(np.asarray(mask))
    lines = ", ".join(str(i + 2) for i in idx[:limit])
    return f"lines {lines}" + (f" and {idx.size - limit} more" if idx.size > limit else "")


def _fail(path: Path, column: str, problem: str, mask: pd.Series | np.ndarray) -> None:
    raise PredictionsError(f"{path}: column '{column}': {problem} ({_rows(mask)})")


def _check_values(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise PredictionsError(
            f"{path}: missing column(s) {missing}; expected {list(REQUIRED)} "
            f"(optional: image, fold); found {list(df.columns)}"
        )
    if df.empty:
        raise PredictionsError(f"{path}: no rows; expected one row per arm and image")
    for column in ("patient", "arm", *(["image"] if "image" in df.columns else [])):
        blank = df[column].isna() | (df[column].astype(str).str.strip() == "")
        if blank.any():
            _fail(path, column, "empty values", blank)
    label = pd.to_numeric(df["label"], errors="coerce")
    bad = ~label.isin([0, 1])
    if bad.any():
        _fail(path, "label", f"values {df['label'][bad].unique()[:5].tolist()} not 0/1", bad)
    prob = pd.to_numeric(df["prob"], errors="coerce")
    bad = prob.isna() | (prob < 0) | (prob > 1)
    if bad.any():
        shown = df["prob"][bad].astype(str).unique()[:5].tolist()
        _fail(path, "prob", f"values {shown} missing, not numbers or outside [0, 1]", bad)
    out = df.copy()
    out["label"], out["prob"] = label.astype(int), prob.astype(float)
    return out


def _key(df: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, bool]:
    """Attach integer image keys: (patient, image), or (patient, k-th row of the patient in its
    arm) without an ``image`` column; keys are numbered in order of first appearance."""
    df = df.copy()
    by_image = "image" in df.columns
    if by_image:
        dup = df.duplicated(["arm", "patient", "image"], keep=False)
        if dup.any():
            _fail(path, "image", "an image is scored twice by one arm", dup)
        second = df["image"]
    else:
        second = df.groupby(["arm", "patient"], sort=False).cumcount()
    df["_key"] = df.assign(_second=second).groupby(["patient", "_second"], sort=False).ngroup()
    return df, by_image


def read_comparison_input(csv_path: str | os.PathLike[str]) -> Cohort:
    """Read and check a predictions CSV (see the module docstring) into a `Cohort`.

    Raises PredictionsError naming the file, the column and the CSV lines: a missing column,
    empty patients/arms/images, labels not 0/1, probabilities NaN or outside [0, 1], an image
    scored twice by an arm, arms scoring different images, and an image labelled differently
    by two arms. Images are ordered as they first appear in the file.
    """
    path = Path(csv_path)
    try:
        raw = pd.read_csv(path, dtype={"patient": str, "arm": str, "image": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise PredictionsError(f"{path}: cannot read the predictions CSV: {err}") from err
    df, by_image = _key(_check_values(raw, path), path)
    arms = list(dict.fromkeys(df["arm"]))
    n_keys = int(df["_key"].max()) + 1
    # a key is unique within an arm, so it is scored by every arm iff it occurs len(arms) times
    unpaired = df.groupby("_key")["arm"].transform("size") < len(arms)
    if unpaired.any():
        per_arm = df.groupby("arm", sort=False)["_key"].size()
        lacking = {arm: n_keys - int(per_arm[arm]) for arm in arms if per_arm[arm] < n_keys}
        _fail(
            path,
            "image" if by_image else "patient",
            f"{int(df.loc[unpaired, '_key'].nunique())} image(s) are not scored by every arm "
            f"(images lacking per arm: {lacking}); every arm must score the same images",
            unpaired,
        )
    labels = df.groupby("_key")["label"]
    conflict = labels.transform("min") != labels.transform("max")
    if conflict.any():
        _fail(path, "label", "one image has different labels in different arms", conflict)
    key = df["_key"].to_numpy()
    label = np.empty(n_keys, dtype=np.int64)
    label[key] = df["label"].to_numpy()
    patient = np.empty(n_keys, dtype=object)
    patient[key] = df["patient"].to_numpy()
    scores = {}
    for arm, part in df.groupby("arm", sort=False):
        s = np.empty(n_keys)
        s[part["_key"].to_numpy()] = part["prob"].to_numpy()
        scores[str(arm)] = s
    return Cohort(
        labels=label, patients=patient, scores={a: scores[a] for a in arms}, keyed_by_image=by_image
    )


def _masks(y: np.ndarray, call: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "acc": np.ones_like(y, bool),
        "sen": y == 1,
        "spe": y == 0,
        "ppv": call,
        "npv": ~call,
    }


def _estimates(c: Cohort, arm: str, threshold: float, level: float) -> tuple[dict, list[str]]:
    y, pid = c.labels, c.patients
    s = c.scores[arm]
    row: dict[str, object] = {
        "arm": arm,
        "n_images": int(y.size),
        "n_patients": int(pd.unique(pid).size),
        "n_positive": int(y.sum()),
        "n_negative": int((y == 0).sum()),
    }
    notes: list[str] = []
    both = 0 < y.sum() < y.size
    if both:
        auc, ind = clustered_auc(y, s, pid, level), delong_auc(y, s, level)
        row |= {
            "auc": auc.auc,
            "auc_se": auc.se,
            "auc_ci_low": auc.ci_low,
            "auc_ci_high": auc.ci_high,
            "auc_deff": auc.design_effect,
            "auc_se_independent": ind.se,
            "auc_ci_low_independent": ind.ci_low,
            "auc_ci_high_independent": ind.ci_high,
        }
        notes += [f"auc: {auc.note}" if auc.note else ""]
    else:
        row |= dict.fromkeys(AUC_COLUMNS, math.nan)
        notes.append(f"auc: not estimable: {int(y.sum())} positive and {int((y == 0).sum())} "
                     "negative images; the AUC needs both")  # fmt: skip
    call = s >= threshold
    right = call == (y == 1)
    for name, mask in _masks(y, call).items():
        success = right[mask] if name in ("acc", "sen", "spe") else (y[mask] == int(name == "ppv"))
        est = clustered_proportion(success, pid[mask], level)
        ind = proportion(int(success.sum()), int(success.size), level)
        row |= {
            name: est.value,
            f"{name}_k": est.successes,
            f"{name}_n": est.n,
            f"{name}_ci_low": est.low,
            f"{name}_ci_high": est.high,
            f"{name}_deff": est.design_effect,
            f"{name}_icc": est.icc,
            f"{name}_ci_low_independent": ind.low,
            f"{name}_ci_high_independent": ind.high,
        }
        notes.append(f"{name}: {est.note}" if est.note else "")
    return row, notes


#: the AUC test's columns (`paired_tests`), NaN where the images hold one class only
AUC_TEST_NAMES = (
    "p_auc", "z_auc", "auc_diff", "auc_diff_low", "auc_diff_high",
    "p_auc_independent", "z_auc_independent",
)  # fmt: skip


def paired_tests(
    y: ArrayLike,
    patients: ArrayLike,
    prob_a: ArrayLike,
    prob_b: ArrayLike,
    right_a: ArrayLike,
    right_b: ArrayLike,
    level: float = 0.95,
) -> tuple[dict, dict[str, str]]:
    """(columns, notes by column) of the clustered and independent tests of arm a against arm
    b on the same images: McNemar on per-image correctness `right_*` (all images, positives,
    negatives) and the paired AUC test of the probabilities. The one home of these tests for
    the result tables and `mskdx compare`."""
    y = np.asarray(y)
    pid = np.asarray(patients)
    right_a, right_b = np.asarray(right_a, dtype=bool), np.asarray(right_b, dtype=bool)
    out: dict = {}
    notes: dict[str, str] = {}
    for name, mask in (("acc", np.ones_like(y, bool)), ("sen", y == 1), ("spe", y == 0)):
        res = clustered_mcnemar(right_a[mask], right_b[mask], pid[mask])
        plain = mcnemar(right_a[mask], right_b[mask])
        out |= {f"p_{name}": res.pvalue, f"p_{name}_independent": plain.pvalue}
        out |= {f"b_{name}": plain.b, f"c_{name}": plain.c}
        notes[f"p_{name}"] = res.note
    if (y == 1).any() and (y == 0).any():
        t = clustered_auc_test(y, prob_a, prob_b, pid, level)
        ti = delong_test(y, prob_a, prob_b, level)
        out |= {"p_auc": t.pvalue, "z_auc": t.z, "auc_diff": t.difference}
        out |= {"auc_diff_low": t.ci_low, "auc_diff_high": t.ci_high}
        out |= {"p_auc_independent": ti.pvalue, "z_auc_independent": ti.z}
        notes["p_auc"] = t.note
    else:
        out |= dict.fromkeys(AUC_TEST_NAMES, math.nan)
        notes["p_auc"] = "not estimable: one class only"
    return out, notes


#: `_pair_tests`' columns (this module's names) and the `paired_tests` columns they hold
_COMPARE_AUC_TEST = {
    "auc_diff": "auc_diff",
    "auc_diff_ci_low": "auc_diff_low",
    "auc_diff_ci_high": "auc_diff_high",
    "z_auc": "z_auc",
    "p_auc": "p_auc",
    "p_auc_independent": "p_auc_independent",
}


def _pair_tests(c: Cohort, a: str, b: str, threshold: float, level: float) -> dict[str, object]:
    """Clustered and independent tests of arm a against arm b: p_*, p_*_independent, notes."""
    y, pid = c.labels, c.patients
    sa, sb = c.scores[a], c.scores[b]
    right_a, right_b = (sa >= threshold) == (y == 1), (sb >= threshold) == (y == 1)
    tests, notes = paired_tests(y, pid, sa, sb, right_a, right_b, level)
    estimable = 0 < y.sum() < y.size
    names = (
        _COMPARE_AUC_TEST
        if estimable
        else {"p_auc": "p_auc", "p_auc_independent": "p_auc_independent"}
    )
    out: dict[str, object] = {mine: tests[theirs] for mine, theirs in names.items()}
    for name in ("acc", "sen", "spe"):
        out[f"p_{name}"] = tests[f"p_{name}"]
        out[f"p_{name}_independent"] = tests[f"p_{name}_independent"]
    out["_notes"] = [
        f"{column}: {notes[column]}" if notes[column] else ""
        for column in ("p_auc", "p_acc", "p_sen", "p_spe")
    ]
    return out


def _pick_reference(rows: list[dict], reference: str, arms: list[str], path: Path) -> str:
    if reference != "auto":
        if reference not in arms:
            raise PredictionsError(
                f"{path}: column 'arm': reference arm '{reference}' is not in the file; "
                f"arms: {arms} (or use 'auto')"
            )
        return reference
    aucs = [float(r.get("auc", math.nan)) for r in rows]
    if all(math.isnan(a) for a in aucs):
        log.warning("reference auto: no AUC is estimable; the first arm, %s, is used", arms[0])
        return arms[0]
    return arms[int(np.nanargmax(aucs))]


def adjusted_pvalues(
    arms: list[str],
    ref: str,
    tests: dict[str, dict],
    auto: bool,
    pair: Callable[[str, str], dict],
) -> dict[str, dict[str, float]]:
    """Adjusted p-values per arm: Holm of k - 1 (named) or all-pairs Holm (auto).

    `tests[arm]` holds the columns p_<metric> and p_<metric>_independent (metric in `TESTED`) of
    `ref` against each other arm; `pair(a, b)` computes them for two other arms (``auto`` only).
    Returns per other arm p_<metric>_adjusted and p_<metric>_adjusted_independent.
    """
    others = [a for a in arms if a != ref]
    out: dict[str, dict[str, float]] = {a: {} for a in others}
    cache: dict[tuple[str, str], dict] = {}

    def test_of(a: str, b: str) -> dict:
        if ref in (a, b):
            return tests[b if a == ref else a]
        if (a, b) not in cache:
            cache[(a, b)] = pair(a, b)
        return cache[(a, b)]

    for metric in TESTED:
        for suffix in ("", "_independent"):
            column = f"p_{metric}{suffix}"
            if auto:
                adj = pairwise_holm(arms, ref, lambda a, b, c=column: float(test_of(a, b)[c]))
                for arm in others:
                    out[arm][f"p_{metric}_adjusted{suffix}"] = adj[arm][1]
            else:
                q = holm([float(tests[a][column]) for a in others])
                for arm, value in zip(others, q, strict=True):
                    out[arm][f"p_{metric}_adjusted{suffix}"] = float(value)
    return out


def _global(c: Cohort) -> dict[str, object]:
    y = c.labels
    if len(c.scores) < 2 or not 0 < y.sum() < y.size:
        return {"global_chi2": math.nan, "global_df": math.nan, "global_p": math.nan}
    s = np.vstack(list(c.scores.values()))
    g = clustered_auc_global_test(y, s, c.patients)
    gi = clustered_auc_global_test(y, s, np.arange(y.size))  # images as units: DeLong 1988
    return {
        "global_chi2": g.statistic,
        "global_df": g.df,
        "global_p": g.pvalue,
        "global_p_independent": gi.pvalue,
        "_note": f"global_p: {g.note}" if g.note else "",
    }


def _markdown(table: pd.DataFrame, title: str) -> str:
    view = table.rename(columns=lambda c: c.replace("_ci_low", "_low").replace("_ci_high", "_high"))
    keep = ["arm", "n_images", "n_patients"]
    for metric in ("auc", "acc", "sen", "spe"):
        keep += [c for c in (metric, f"{metric}_low", f"{metric}_high") if c in view.columns]
    keep += [f"p_{m}{s}" for m in TESTED for s in ("", "_adjusted") if f"p_{m}{s}" in view]
    view = view[keep + ["note"]].copy()
    for metric in ("acc", "sen", "spe"):
        for c in (metric, f"{metric}_low", f"{metric}_high"):
            view[c] = 100.0 * view[c]
    first = table.iloc[0]
    lines = [
        to_markdown(view, title).rstrip("\n"),
        "",
        f"Reference: {first['reference']} ({first['reference_rule']}); adjusted p: "
        f"{first['adjustment']}. Clustered by patient (Obuchowski 1997 AUC, Durkalski 2003 "
        "McNemar, Wilson on the design-effect n); the `_independent` columns of the CSV treat "
        "images as independent.",
        f"Global test of equal AUCs: chi2 = {first['global_chi2']:.3f}, "
        f"df = {first['global_df']}, p = {first['global_p']:.3g}. "
        f"Design effect of the reference's accuracy: {first['ref_acc_deff']:.2f} "
        f"(ICC {first['ref_acc_icc']:.2f}).",
    ]
    return "\n".join(lines) + "\n"


def compare_predictions(
    csv_path: str | os.PathLike[str],
    *,
    reference: str = "auto",
    threshold: float = 0.5,
    out_dir: str | os.PathLike[str],
    level: float = 0.95,
) -> pd.DataFrame:
    """Compare every arm of a predictions CSV with a reference, clustered by patient.

    Writes ``out_dir/comparison.csv`` and ``comparison.md`` (nothing on error) and returns the
    table. See the module docstring for the input, the columns and the methods.
    """
    path = Path(csv_path)
    if not 0.0 <= float(threshold) <= 1.0:
        raise PredictionsError(f"threshold={threshold!r}: expected a probability in [0, 1]")
    cohort = read_comparison_input(path)
    arms = list(cohort.scores)
    rows, notes = [], []
    for arm in arms:
        row, arm_notes = _estimates(cohort, arm, threshold, level)
        rows.append(row)
        notes.append(arm_notes)
    ref = _pick_reference(rows, reference, arms, path)
    tests = {arm: _pair_tests(cohort, ref, arm, threshold, level) for arm in arms if arm != ref}
    adjusted = adjusted_pvalues(
        arms, ref, tests, reference == "auto",
        lambda a, b: _pair_tests(cohort, a, b, threshold, level),
    )  # fmt: skip
    glob = _global(cohort)
    ref_row = rows[arms.index(ref)]
    for row, arm_notes in zip(rows, notes, strict=True):
        arm = row["arm"]
        test = tests.get(arm, {})
        row |= {k: v for k, v in test.items() if not k.startswith("_")}
        row |= adjusted.get(arm, {})
        row |= {k: v for k, v in glob.items() if not k.startswith("_")}
        row |= {
            "reference": ref,
            "reference_rule": "auto: highest AUC" if reference == "auto" else "named",
            "adjustment": (
                f"Holm over all {len(arms) * (len(arms) - 1) // 2} pairwise tests"
                if reference == "auto"
                else f"Holm over the {len(arms) - 1} comparisons with the reference"
            ),
            "threshold": float(threshold),
            "level": float(level),
            "ref_acc_deff": ref_row["acc_deff"],
            "ref_acc_icc": ref_row["acc_icc"],
        }
        row["note"] = "; ".join(n for n in [*arm_notes, *test.get("_notes", [])] if n)
    table = pd.DataFrame(rows)
    markdown = _markdown(table, f"Comparison of {len(arms)} arms ({path.name})")
    out = Path(out_dir)
    with contextlib.ExitStack() as stack:  # both files renamed into place only on success
        csv_tmp = stack.enter_context(atomic_path(out / "comparison.csv"))
        md_tmp = stack.enter_context(atomic_path(out / "comparison.md"))
        table.to_csv(csv_tmp, index=False, lineterminator="\n")
        md_tmp.write_text(markdown)
    log.info("compared %d arms against %s: %s", len(arms), ref, out / "comparison.csv")
    return table
