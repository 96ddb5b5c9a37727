"""The tables' columns clustered by patient (issue 37): the plain names hold the engine's
clustered values, ``_independent`` the old image-as-unit functions, ``p_*_adjusted`` Holm.

Data: tests/data/clustered_input.csv ("clustered": 60 patients, 265 images, arms A, B, C scoring
the same images; patients with both classes among them), split into two test folds by patient.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from mskdx.evaluate.comparisons import markdown_view, table_notes
from mskdx.evaluate.external import image_table
from mskdx.evaluate.markdown import to_markdown
from mskdx.evaluate.stats.clustered import (
    clustered_auc,
    clustered_auc_global_test,
    clustered_auc_test,
)
from mskdx.evaluate.stats.clustered_binary import clustered_mcnemar, clustered_proportion
from mskdx.evaluate.stats.delong import delong_auc, delong_test
from mskdx.evaluate.stats.mcnemar import mcnemar
from mskdx.evaluate.stats.proportions import wilson_ci
from mskdx.evaluate.subgroups import subgroup_table
from mskdx.evaluate.tables import gout_image_table, olt_table

DATA = Path(__file__).resolve().parents[1] / "data"
ARMS = ("A", "B", "C")


@pytest.fixture(scope="module")
def preds() -> pd.DataFrame:
    d = pd.read_csv(DATA / "clustered_input.csv")
    d = d[d.dataset == "clustered"].drop(columns="dataset")
    fold = d.patient.str[-1].astype(int) % 2  # patients split between two test folds
    return pd.DataFrame(
        {
            "study": "gout",
            "arm": d.arm,
            "fold": fold,
            "subset": "test",
            "patient": d.patient,
            "image_id": d.image,
            "label": d.label,
            "prob": d.prob,
        }
    ).reset_index(drop=True)


def wide(preds: pd.DataFrame) -> pd.DataFrame:
    """One row per image (sorted by image_id, as the tables align arms), a column per arm."""
    w = preds.pivot_table(index=["image_id", "patient", "label", "fold"], columns="arm",
                          values="prob").reset_index()  # fmt: skip
    return w.sort_values("image_id").reset_index(drop=True)


def test_table_i_columns_are_the_engines_clustered_and_independent_values(preds):
    table = gout_image_table(preds, reference="A")
    w = wide(preds)
    for fold, part in [("pooled", w), *((str(f), w[w.fold == f]) for f in (0, 1))]:
        rows = table[table.fold == fold].set_index("arm")
        y, pid = part.label.to_numpy(), part.patient.to_numpy()
        for arm in ARMS:
            r, s = rows.loc[arm], part[arm].to_numpy()
            c, d = clustered_auc(y, s, pid), delong_auc(y, s)
            assert (r.auc_low, r.auc_high, r.auc_se) == pytest.approx((c.ci_low, c.ci_high, c.se))
            assert (r.auc_low_independent, r.auc_high_independent) == pytest.approx(
                (d.ci_low, d.ci_high)
            )
            right = (s > 0.5) == (y == 1)
            for name, mask in (("acc", np.ones_like(y, bool)), ("sen", y == 1), ("spe", y == 0)):
                est = clustered_proportion(right[mask], pid[mask])
                assert (r[f"{name}_low"], r[f"{name}_high"]) == pytest.approx(
                    (100 * est.low, 100 * est.high)
                )
                assert r[f"{name}_deff"] == pytest.approx(est.design_effect)
                low, high = wilson_ci(int(right[mask].sum()), int(mask.sum()))
                assert (r[f"{name}_low_independent"], r[f"{name}_high_independent"]) == (
                    pytest.approx((100 * low, 100 * high))
                )
            assert r.n_patients == len(set(pid))
        ref_right = (part.A.to_numpy() > 0.5) == (y == 1)
        for arm in ("B", "C"):
            r, s = rows.loc[arm], part[arm].to_numpy()
            t = clustered_auc_test(y, part.A.to_numpy(), s, pid)
            assert (r.p_auc, r.z_auc, r.auc_diff) == pytest.approx((t.pvalue, t.z, t.difference))
            assert r.p_auc_independent == pytest.approx(delong_test(y, part.A, s).pvalue)
            right = (s > 0.5) == (y == 1)
            assert r.p_acc == pytest.approx(clustered_mcnemar(ref_right, right, pid).pvalue)
            assert r.p_acc_independent == pytest.approx(mcnemar(ref_right, right).pvalue)
            pos = y == 1
            assert r.p_sen == pytest.approx(
                clustered_mcnemar(ref_right[pos], right[pos], pid[pos]).pvalue
            )
        # a named reference: Holm over its k - 1 = 2 comparisons, per metric and per fold
        for metric in ("auc", "acc", "sen", "spe"):
            for suffix in ("", "_independent"):
                raw = rows.loc[["B", "C"], f"p_{metric}{suffix}"].to_numpy()
                np.testing.assert_allclose(
                    rows.loc[["B", "C"], f"p_{metric}_adjusted{suffix}"],
                    multipletests(raw, method="holm")[1],
                    rtol=1e-12,
                )
        scores = np.vstack([part[a].to_numpy() for a in ARMS])
        assert rows.p_auc_global.iloc[0] == pytest.approx(
            clustered_auc_global_test(y, scores, pid).pvalue
        )
    pooled = table[table.fold == "pooled"].set_index("arm")
    # clustered intervals are wider than the image-as-unit ones on these clustered data
    assert (pooled.auc_high - pooled.auc_low > pooled.auc_high_independent
            - pooled.auc_low_independent).all()  # fmt: skip
    assert (pooled.auc_deff > 1).all() and pooled.acc_icc.notna().all()


def test_auto_reference_adjusts_over_all_pairs(preds):
    table = gout_image_table(preds)
    pooled = table[table.fold == "pooled"].set_index("arm")
    w = wide(preds)
    y, pid = w.label.to_numpy(), w.patient.to_numpy()
    aucs = {a: clustered_auc(y, w[a], pid).auc for a in ARMS}
    ref = max(ARMS, key=lambda a: aucs[a])
    assert pooled.loc[ref, "is_reference"] and (pooled.reference_arm == ref).all()
    pairs = list(itertools.combinations(ARMS, 2))
    raw = [clustered_auc_test(y, w[a], w[b], pid).pvalue for a, b in pairs]
    adjusted = dict(zip(pairs, multipletests(raw, method="holm")[1], strict=True))
    for arm in set(ARMS) - {ref}:
        key = tuple(sorted((ref, arm)))
        assert pooled.loc[arm, "p_auc_adjusted"] == pytest.approx(adjusted[key], rel=1e-12)
    assert "Holm over all 3 pairwise tests" in pooled.adjustment.iloc[0]


def test_the_markdown_names_the_methods_the_reference_and_the_design_effect(preds):
    table = gout_image_table(preds, reference="A")
    text = to_markdown(markdown_view(table)) + table_notes(table)
    assert "| acc independent |" in text and "auc_se" not in text
    assert "Reference: A (named in advance); p_*_adjusted: Holm over the 2 comparisons" in text
    ref = table[(table.fold == "pooled") & (table.arm == "A")].iloc[0]
    assert f"Design effect (A, fold pooled): acc {ref.acc_deff:.2f} (ICC {ref.acc_icc:.2f})" in text
    assert "Obuchowski (1997)" in text and "Durkalski" in text


def test_olt_table_ii_is_clustered_and_has_no_paired_test(preds):
    olt = preds[preds.arm.isin(["A", "B"])].assign(
        study="olt", arm=lambda d: d.arm.map({"A": "T1", "B": "T2"})
    )
    table = olt_table(olt).set_index(["arm", "class"])
    w = wide(preds)
    y, pid, s = w.label.to_numpy(), w.patient.to_numpy(), w.A.to_numpy()
    call = s > 0.5
    row = table.loc[("T1", "patient")]
    est = clustered_proportion(y[call] == 1, pid[call])  # precision of the patient class
    assert (row.precision_low, row.precision_high) == pytest.approx((est.low, est.high))
    healthy = table.loc[("T1", "healthy")]
    est = clustered_proportion(~call[y == 0], pid[y == 0])  # recall of healthy = specificity
    assert (healthy.recall_low, healthy.recall_high) == pytest.approx((est.low, est.high))
    assert row.auc_low == pytest.approx(clustered_auc(y, s, pid).ci_low)
    assert not any(c.startswith("p_") for c in table.columns)
    assert "No paired test between the arms" in table_notes(table.reset_index())


def test_external_and_subgroup_tables_carry_the_same_columns(preds):
    ensemble = preds.assign(fold=0)
    ext = image_table("gout", preds, ensemble, image_threshold=0.5, reference="B")
    ens = ext[ext.model == "ensemble"].set_index("arm")
    w = wide(preds)
    y, pid = w.label.to_numpy(), w.patient.to_numpy()
    t = clustered_auc_test(y, w.B, w.C, pid)
    assert ens.loc["C", "p_auc"] == pytest.approx(t.pvalue)
    assert ens.loc["B", "is_reference"] and math.isnan(ens.loc["B", "p_auc"])
    scored = preds.assign(cohort="development", site="development", scanner="x", sex="F",
                          age_band="40-59")  # fmt: skip
    sub = subgroup_table(scored, min_patients=5)
    image = sub[(sub.arm == "A") & (sub.level == "image") & (sub.variable == "sex")].iloc[0]
    c = clustered_auc(y, w.A, pid)
    assert (image.auc_low, image.auc_high) == pytest.approx((c.ci_low, c.ci_high))
    d = delong_auc(y, w.A)
    assert image.auc_low_independent == pytest.approx(d.ci_low)
    patient = sub[(sub.arm == "A") & (sub.level == "patient") & (sub.variable == "sex")].iloc[0]
    # one row per patient at patient level: clustered = independent
    assert patient.auc_low == pytest.approx(patient.auc_low_independent, rel=1e-10)
    assert patient.sensitivity_low == pytest.approx(patient.sensitivity_low_independent)
