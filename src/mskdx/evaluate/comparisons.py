"""Result-table columns clustered by patient, the image-as-independent ones beside them (issue 37).

The tables (`mskdx.evaluate.tables`, and through its builders the external and model-card
tables) print every image-level statistic with the images of one patient as one cluster. The
plain column names hold the clustered values; the suffix ``_independent`` holds the papers' own
methods, which treat every image as an independent case, so that the papers' printed numbers
keep a like-for-like column:

- AUC ``auc``: Obuchowski (1997) SE ``auc_se`` and normal CI ``auc_low``/``auc_high``, and the
  design effect of its variance ``auc_deff`` (`stats.clustered`); DeLong (1988)
  ``auc_se_independent``, ``auc_low_independent``/``auc_high_independent``.
- a proportion ``m`` (acc, sen, spe; OLT precision, recall, accuracy): the ratio estimator with
  its between-patient variance and Wilson's interval on the design-effect n, ``m_low``/``m_high``,
  with Kish's design effect ``m_deff`` and the ICC ``m_icc`` (`stats.clustered_binary`); Wilson
  ``m_low_independent``/``m_high_independent``.
- tests of an arm against the reference on the same images: ``p_auc`` (Obuchowski paired z test,
  ``z_auc`` > 0 when the reference's AUC is higher; ``auc_diff`` = reference minus this arm with
  its CI ``auc_diff_low``/``auc_diff_high``), ``p_acc``, ``p_sen``, ``p_spe`` (Durkalski 2003
  clustered McNemar on per-image correctness: all images, positives, negatives); the paired
  DeLong test and McNemar's test with continuity correction (the papers') as
  ``p_*_independent`` (``z_auc_independent``); the discordant image counts ``b_*`` (reference
  right, this arm wrong) and ``c_*``.
- ``p_*_adjusted`` (and ``p_*_adjusted_independent``): Holm over the k - 1 comparisons with a
  reference named in advance, or, with ``auto`` (the reference picked on the same data), Holm
  over all k (k - 1) / 2 pairwise tests, the k - 1 with the reference reported
  (`mskdx.evaluate.comparison.adjusted_pvalues`, `stats.multiplicity`).
- ``p_auc_global``: the clustered Wald test that all k AUCs are equal (k - 1 df).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from mskdx.evaluate.comparison import AUC_TEST_NAMES, TESTED, adjusted_pvalues, paired_tests
from mskdx.evaluate.stats.clustered import (
    clustered_auc,
    clustered_auc_global_test,
)
from mskdx.evaluate.stats.clustered_binary import clustered_proportion
from mskdx.evaluate.stats.delong import delong_auc
from mskdx.evaluate.stats.proportions import proportion

__all__ = [
    "AUTO",
    "METHODS",
    "OLT_NO_TEST",
    "auc_columns",
    "comparison_columns",
    "family_text",
    "markdown_view",
    "method_notes",
    "proportion_columns",
    "resolve_reference",
    "table_notes",
]

AUTO = "auto"
#: why OLT Table II has no test between its arms (its Markdown note)
OLT_NO_TEST = (
    "No paired test between the arms: T1 and T2 are different MRI sequences, so the two models "
    "score different images (slices of different series); a paired test needs the same images."
)
#: what the plain and the ``_independent`` columns are, for the tables' notes
METHODS = (
    "Clustered by patient (the plain columns): AUC SE and CI by Obuchowski (1997), proportions "
    "by the ratio estimator's between-patient variance with Wilson's interval on the "
    "design-effect n, p_auc by Obuchowski's paired test, p_acc/p_sen/p_spe by Durkalski et al.'s "
    "(2003) clustered McNemar. The `_independent` columns of the CSV assume independent images "
    "(DeLong, Wilson, McNemar with continuity correction: the papers' methods)."
)
_AUC_NAMES = (
    "auc", "auc_se", "auc_low", "auc_high", "auc_deff",
    "auc_se_independent", "auc_low_independent", "auc_high_independent",
)  # fmt: skip
#: the CSV's detail columns that the Markdown view leaves out (the CSV keeps them)
_DETAIL = r"\w+_(se|deff|icc)(_independent)?|\w+_adjusted_independent|z_auc\w*|auc_diff_\w+"


def auc_columns(y: ArrayLike, prob: ArrayLike, patients: ArrayLike, level: float = 0.95):
    """(columns, note) of one AUC: clustered by `patients` and, ``_independent``, DeLong's."""
    y = np.asarray(y, dtype=np.int64)
    positives, negatives = int(y.sum()), int(y.size - y.sum())
    if not (positives and negatives):
        return dict.fromkeys(_AUC_NAMES, math.nan), (
            f"auc: not estimable: {positives} positives and {negatives} negatives; the AUC "
            "needs both"
        )
    c = clustered_auc(y, prob, patients, level)
    d = delong_auc(y, prob, level)
    columns = {
        "auc": c.auc,
        "auc_se": c.se if c.variance > 0 else math.nan,
        "auc_low": c.ci_low,
        "auc_high": c.ci_high,
        "auc_deff": c.design_effect,
        "auc_se_independent": d.se if d.variance > 0 else math.nan,
        "auc_low_independent": d.ci_low,
        "auc_high_independent": d.ci_high,
    }
    notes = [f"auc: {c.note}" if c.note else ""]
    if d.note and not c.note:
        notes.append(f"auc_independent: {d.note}")
    return columns, _join(notes)


def proportion_columns(
    name: str, success: ArrayLike, patients: ArrayLike, percent: bool, level: float = 0.95
):
    """(columns, note) of the share of True in `success` (the denominator's images only)."""
    ok = np.asarray(success, dtype=bool)
    c = clustered_proportion(ok, patients, level)
    w = proportion(int(ok.sum()), int(ok.size), level)
    scale = 100.0 if percent else 1.0
    columns = {
        name: scale * w.value,
        f"{name}_k": w.successes,
        f"{name}_n": w.n,
        f"{name}_low": scale * c.low,
        f"{name}_high": scale * c.high,
        f"{name}_low_independent": scale * w.low,
        f"{name}_high_independent": scale * w.high,
        f"{name}_deff": c.design_effect,
        f"{name}_icc": c.icc,
    }
    return columns, f"{name}: {c.note}" if c.note else ""


def _join(notes: Sequence[str]) -> str:
    return "; ".join(n for n in notes if n)


def resolve_reference(reference: str, arms: Sequence[str], aucs: Mapping[str, float], what: str):
    """The reference arm: `reference` itself, or with ``auto`` the arm of highest AUC (the
    first in `arms` order on a tie; NaN AUCs never win)."""
    if reference == AUTO:
        score = {a: aucs[a] if math.isfinite(aucs[a]) else -math.inf for a in arms}
        return max(arms, key=lambda a: score[a])  # max keeps the first of equal AUCs
    if reference not in arms:
        raise ValueError(
            f"{what}: reference={reference!r} (comparison.reference) is not an arm; expected "
            f"'auto' or one of {list(arms)}"
        )
    return reference


def family_text(reference: str, k: int) -> str:
    """How the p_*_adjusted columns were adjusted (`reference` as the config gave it)."""
    if k < 2:
        return "no comparison (one arm)"
    if reference == AUTO:
        return (
            f"Holm over all {k * (k - 1) // 2} pairwise test{'s' if k > 2 else ''} (the "
            "reference was picked on the same data: auto)"
        )
    return f"Holm over the {k - 1} comparison{'s' if k > 2 else ''} with the named reference"


def _pair(ref: pd.DataFrame, other: pd.DataFrame, level: float) -> dict:
    """Clustered and independent tests of `ref` against `other` on the same images."""
    if not ref.index.equals(other.index):  # the tables align arms by image_id
        raise ValueError("paired tests need the same images in the same order in both arms")
    y = ref["label"].to_numpy()
    out, notes = paired_tests(
        y,
        ref["patient"].to_numpy(),
        ref["prob"].to_numpy(),
        other["prob"].to_numpy(),
        ref["pred"].to_numpy() == y,
        other["pred"].to_numpy() == y,
        level,
    )
    out["_note"] = _join(f"{column}: {note}" for column, note in notes.items() if note)
    return out


def _no_tests() -> dict:
    out: dict = {}
    for name in ("acc", "sen", "spe"):
        out |= {f"p_{name}": math.nan, f"p_{name}_independent": math.nan}
        out |= {f"b_{name}": pd.NA, f"c_{name}": pd.NA}
    out |= dict.fromkeys(AUC_TEST_NAMES, math.nan)
    for metric in TESTED:
        out |= {f"p_{metric}_adjusted": math.nan, f"p_{metric}_adjusted_independent": math.nan}
    return out | {"_note": ""}


def _global_p(frames: Mapping[str, pd.DataFrame], arms: Sequence[str]) -> float:
    first = frames[arms[0]]
    y = first["label"].to_numpy()
    if len(arms) < 2 or not (y == 1).any() or not (y == 0).any():
        return math.nan
    scores = np.vstack([frames[a]["prob"].to_numpy() for a in arms])
    return clustered_auc_global_test(y, scores, first["patient"].to_numpy()).pvalue


def comparison_columns(
    frames: Mapping[str, pd.DataFrame],
    arms: Sequence[str],
    reference: str,
    *,
    auto: bool,
    level: float = 0.95,
) -> dict[str, dict]:
    """Per arm, its test columns against `reference` (NaN on the reference's own row) with the
    Holm-adjusted p-values and the global test; `frames` hold each arm's images (columns label,
    pred, prob, patient) indexed alike. ``_note`` holds the tests' degenerate cases."""
    others = [a for a in arms if a != reference]
    tests = {a: _pair(frames[reference], frames[a], level) for a in others}
    adjusted = adjusted_pvalues(
        list(arms), reference, tests, auto, lambda a, b: _pair(frames[a], frames[b], level)
    )
    glob = _global_p(frames, arms)
    out = {}
    for arm in arms:
        row = _no_tests() if arm == reference else tests[arm] | adjusted[arm]
        out[arm] = row | {"p_auc_global": glob}
    return out


def method_notes(table: pd.DataFrame, reference: str, rule: str, adjustment: str) -> str:
    """The lines under a table's Markdown: methods, reference and its rule, adjustment and the
    study's design effect and ICC (of the reference's pooled row where the table has one)."""
    lines = [METHODS, ""]
    if reference:
        lines += [f"Reference: {reference} ({rule}); p_*_adjusted: {adjustment}.", ""]
    first = table.iloc[0]
    parts = []
    for metric in ("acc", "accuracy", "sen", "spe", "auc"):
        deff = first.get(f"{metric}_deff")
        if deff is None or pd.isna(deff):
            continue
        icc = first.get(f"{metric}_icc")
        text = f"{metric} {deff:.2f}"
        parts.append(text + (f" (ICC {icc:.2f})" if icc is not None and pd.notna(icc) else ""))
    if parts:
        who = f" ({first['arm']}" + (f", fold {first['fold']})" if "fold" in first else ")")
        lines.append(f"Design effect{who}: " + ", ".join(parts) + ".")
    return "\n".join(lines).rstrip("\n") + "\n"


def markdown_view(table: pd.DataFrame) -> pd.DataFrame:
    """The table without the CSV's detail columns (SEs, design effects, ICCs, z, the adjusted
    independent p-values, the repeated reference columns); the CSV keeps them all."""
    drop = [c for c in table.columns if pd.Series([c]).str.fullmatch(_DETAIL).iloc[0]]
    drop += [c for c in ("reference_rule", "adjustment", "reference_arm") if c in table.columns]
    return table.drop(columns=drop)


def table_notes(table: pd.DataFrame) -> str:
    """The lines under Table I's or Table II's Markdown: methods, reference, adjustment, the
    design effect (of the reference's pooled row in Table I, of the first arm in Table II)."""
    if "reference_arm" not in table.columns:  # OLT Table II
        return method_notes(table, "", "", "") + "\n" + OLT_NO_TEST + "\n"
    first = table[table["is_reference"].astype(bool)]
    if "fold" in table.columns:
        first = first[first["fold"].astype(str) == "pooled"]
    first = first if not first.empty else table
    return method_notes(
        first, str(first.iloc[0]["reference_arm"]), str(first.iloc[0]["reference_rule"]),
        str(first.iloc[0]["adjustment"]),
    )  # fmt: skip
