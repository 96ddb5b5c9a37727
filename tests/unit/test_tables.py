"""Tests of mskdx.evaluate.tables on hand-built prediction tables with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mskdx.errors import SplitError
from mskdx.evaluate.markdown import compact_view, to_markdown
from mskdx.evaluate.stats.delong import delong_test
from mskdx.evaluate.stats.mcnemar import mcnemar_from_counts
from mskdx.evaluate.stats.proportions import wilson_ci
from mskdx.evaluate.tables import gout_image_table, gout_patient_table, olt_table


def rows(arm, fold, subset, patient, image_ids, label, probs, study="gout"):
    return [
        {
            "study": study,
            "arm": arm,
            "fold": fold,
            "subset": subset,
            "patient": patient,
            "image_id": image_id,
            "label": label,
            "prob": float(prob),
        }
        for image_id, prob in zip(image_ids, probs, strict=True)
    ]


# ---------------------------------------------------------------------------------------------
# Gout Table I
# ---------------------------------------------------------------------------------------------

POS = [f"I-p{i}" for i in range(10)]
NEG = [f"I-n{i}" for i in range(10)]
# blocks3: every image right except positive p9 (0.4); AUC 1.
PROB3 = {**{p: 0.9 for p in POS[:9]}, "I-p9": 0.4, **{n: 0.1 for n in NEG}}
# blocks6: wrong on p0-p2 (0.45) and n0-n1 (0.55), right on p9 (0.6); AUC 1 - 6/100.
PROB6 = {
    **{p: 0.45 for p in POS[:3]},
    **{p: 0.8 for p in POS[3:9]},
    "I-p9": 0.6,
    "I-n0": 0.55,
    "I-n1": 0.55,
    **{n: 0.2 for n in NEG[2:]},
}


def image_predictions(prob_by_arm=None, with_train=True):
    prob_by_arm = prob_by_arm or {"blocks3": PROB3, "blocks6": PROB6}
    out = []
    for arm, probs in prob_by_arm.items():
        for i, image in enumerate(POS + NEG):
            label = int(image.startswith("I-p"))
            fold = i % 2
            out += rows(arm, fold, "test", f"P-{image}", [image], label, [probs[image]])
            if with_train:  # the same image in the other fold's training set: must be ignored
                out += rows(arm, 1 - fold, "train", f"P-{image}", [image], label, [0.5])
    return pd.DataFrame(out)


def test_gout_image_table_known_mcnemar_and_delong():
    # one image per patient: every clustered statistic is its independent counterpart without
    # continuity correction (Obuchowski = DeLong, Durkalski = McNemar, deff 1 = Wilson)
    table = gout_image_table(image_predictions())
    pooled = table[table["fold"] == "pooled"].set_index("arm")
    assert pooled.loc["blocks3", "is_reference"] and not pooled.loc["blocks6", "is_reference"]
    assert (pooled["reference_arm"] == "blocks3").all()
    assert (pooled["reference_rule"] == "auto: highest pooled AUC").all()
    b3, b6 = pooled.loc["blocks3"], pooled.loc["blocks6"]
    assert (b3["acc_k"], b3["acc_n"], b3["sen_k"], b3["sen_n"], b3["spe_k"]) == (19, 20, 9, 10, 10)
    assert (b6["tp"], b6["fn"], b6["tn"], b6["fp"]) == (7, 3, 8, 2)
    assert b3["acc"] == pytest.approx(95.0)
    low, high = wilson_ci(19, 20)
    assert (b3["acc_low"], b3["acc_high"]) == pytest.approx((100 * low, 100 * high))
    assert (b3["acc_low_independent"], b3["acc_high_independent"]) == pytest.approx(
        (100 * low, 100 * high)
    )
    assert b3["acc_deff"] == 1.0 and b3["n_patients"] == 20
    assert b3["auc"] == 1.0 and b6["auc"] == pytest.approx(0.94)
    # McNemar: best right & other wrong = b, best wrong & other right = c
    assert (b6["b_acc"], b6["c_acc"]) == (5, 1)
    assert (b6["b_sen"], b6["c_sen"]) == (3, 1)
    assert (b6["b_spe"], b6["c_spe"]) == (2, 0)
    for name, (b, c) in (("acc", (5, 1)), ("sen", (3, 1)), ("spe", (2, 0))):
        plain = mcnemar_from_counts(b, c, correction=False).pvalue
        assert b6[f"p_{name}"] == pytest.approx(plain, rel=1e-12)
        assert b6[f"p_{name}_independent"] == pytest.approx(mcnemar_from_counts(b, c).pvalue)
    y = np.array([1] * 10 + [0] * 10)
    order = POS + NEG
    ref = delong_test(y, [PROB3[i] for i in order], [PROB6[i] for i in order])
    assert b6["p_auc"] == pytest.approx(ref.pvalue) and b6["z_auc"] == pytest.approx(ref.z)
    assert b6["p_auc_independent"] == pytest.approx(ref.pvalue, rel=1e-12)
    assert b6["auc_diff"] == pytest.approx(0.06)
    # one comparison: Holm leaves it as it is (auto: all pairs = the one pair)
    assert b6["p_acc_adjusted"] == pytest.approx(b6["p_acc"], rel=1e-12)
    assert math.isnan(b3["p_acc"]) and math.isnan(b3["p_auc"])
    assert math.isnan(b3["p_auc_adjusted"])


def test_gout_image_table_folds_pooled_and_paper_columns():
    table = gout_image_table(image_predictions())
    assert sorted(table["fold"].unique()) == ["0", "1", "pooled"]
    folds = table[table["fold"] != "pooled"]
    pooled = table[table["fold"] == "pooled"].set_index("arm")
    for arm in ("blocks3", "blocks6"):
        per_fold = folds[folds["arm"] == arm]
        assert per_fold["acc_k"].sum() == pooled.loc[arm, "acc_k"]
        assert per_fold["n_images"].sum() == 20
    six = folds[folds["arm"] == "blocks6"]
    assert (six["b_acc"].sum(), six["c_acc"].sum()) == (5, 1)
    assert folds[folds["arm"] == "blocks3"]["b_acc"].isna().all()
    # the paper's Table I values beside ours on the pooled rows
    assert pooled.loc["blocks3", "paper_arm"] == "3 blocks"
    assert pooled.loc["blocks3", "paper_acc"] == 83.3
    assert (pooled.loc["blocks3", "paper_acc_k"], pooled.loc["blocks3", "paper_acc_n"]) == (
        334,
        401,
    )
    assert pooled.loc["blocks6", "paper_p_acc"] == 0.32
    assert pooled.loc["blocks6", "paper_auc_low"] == 0.887
    assert folds["paper_acc"].isna().all()


def test_gout_image_table_reference_choice():
    table = gout_image_table(image_predictions(), reference="blocks6")
    pooled = table[table["fold"] == "pooled"].set_index("arm")
    assert pooled.loc["blocks6", "is_reference"]
    assert (pooled["reference_rule"] == "named in advance").all()
    assert (pooled.loc["blocks3", "b_acc"], pooled.loc["blocks3", "c_acc"]) == (1, 5)
    with pytest.raises(ValueError, match=r"reference='blocks5' \(comparison.reference\)"):
        gout_image_table(image_predictions(), reference="blocks5")


def test_gout_image_table_threshold_is_exclusive():
    probs = {"blocks3": {**PROB3, "I-n0": 0.5}}  # exactly the threshold: negative, as argmax
    table = gout_image_table(image_predictions(probs))
    assert table[table["fold"] == "pooled"].iloc[0]["fp"] == 0
    table = gout_image_table(image_predictions(probs), image_threshold=0.4)
    assert table[table["fold"] == "pooled"].iloc[0]["fp"] == 1


def test_gout_image_table_requires_the_same_images():
    preds = image_predictions()
    preds = preds[~((preds["arm"] == "blocks6") & (preds["image_id"] == "I-n3"))]
    with pytest.raises(ValueError, match="arms blocks3 and blocks6 have different test images"):
        gout_image_table(preds)


def test_gout_image_table_rejects_duplicates_and_bad_values():
    preds = image_predictions()
    dup = preds[(preds["subset"] == "test") & (preds["image_id"] == "I-p1")].copy()
    dup["fold"] = 1 - dup["fold"]
    with pytest.raises(ValueError, match="I-p1"):
        gout_image_table(pd.concat([preds, dup]))
    bad = preds.copy()
    bad.loc[0, "prob"] = 1.5
    with pytest.raises(ValueError, match="prob"):
        gout_image_table(bad)
    with pytest.raises(ValueError, match="missing|lack"):
        gout_image_table(preds.drop(columns=["label"]))


# ---------------------------------------------------------------------------------------------
# Gout Table III
# ---------------------------------------------------------------------------------------------


def patient(fold, subset, name, label, n_images, n_abnormal, arm="blocks3"):
    ids = [f"I-{name}-{i}" for i in range(n_images)]
    probs = [0.9] * n_abnormal + [0.1] * (n_images - n_abnormal)
    return rows(arm, fold, subset, f"P-{name}", ids, label, probs)


def patient_predictions():
    out = []
    # fold 0: train fractions gout 0.5, 0.6, 0.7, 0.35; control 0, 0.1, 0.3 -> perfect for
    # t in [0.30, 0.35): grid 0.30, 0.32, 0.34 -> 0.32 (middle of the run)
    for name, label, k in (("a", 1, 10), ("b", 1, 12), ("c", 1, 14), ("d", 1, 7)):
        out += patient(0, "train", name, label, 20, k)
    for name, k in (("e", 0), ("f", 2), ("g", 6)):
        out += patient(0, "train", name, 0, 20, k)
    # a validation control at 0.5 would move the threshold if it were used
    out += patient(0, "val", "v", 0, 2, 1)
    # test: 1/3 > 0.32 TP; 8/25 = 0.32 not > 0.32 FN; 1/4 FN; 0/3 TN; 2/5 FP
    out += patient(0, "test", "t1", 1, 3, 1)
    out += patient(0, "test", "t2", 1, 25, 8)
    out += patient(0, "test", "t3", 1, 4, 1)
    out += patient(0, "test", "t4", 0, 3, 0)
    out += patient(0, "test", "t5", 0, 5, 2)
    # fold 1: train gout 1.0, 0.8; control 0, 0.2 -> perfect for t in [0.2, 0.8): 0.20..0.78,
    # middle (lower of two) = 0.48. Test: gout 0.5 TP, control 0.4 TN.
    for name, label, k in (("h", 1, 5), ("i", 1, 4), ("j", 0, 0), ("k", 0, 1)):
        out += patient(1, "train", name, label, 5, k)
    out += patient(1, "test", "u1", 1, 4, 2)
    out += patient(1, "test", "u2", 0, 5, 2)
    return pd.DataFrame(out)


def test_gout_patient_table_known_thresholds_and_counts():
    table, curves = gout_patient_table(patient_predictions())
    assert table["fold"].tolist() == ["0", "1", "mean", "pooled"]
    t = table.set_index("fold")
    assert t.loc["0", "threshold"] == 0.32 and t.loc["1", "threshold"] == 0.48
    assert t.loc["0", "train_accuracy"] == 1.0 and t.loc["0", "n_train"] == 7
    assert (t.loc["0", "tp"], t.loc["0", "fn"], t.loc["0", "tn"], t.loc["0", "fp"]) == (1, 2, 1, 1)
    assert (t.loc["0", "acc_k"], t.loc["0", "acc_n"]) == (2, 5)
    assert t.loc["0", "sen"] == pytest.approx(100 / 3) and t.loc["0", "spe"] == 50.0
    assert t.loc["1", "acc"] == 100.0
    # mean of folds (as the paper) and pooled counts with Wilson CI
    assert t.loc["mean", "acc"] == pytest.approx((40.0 + 100.0) / 2)
    assert t.loc["mean", "threshold"] == pytest.approx(0.40)
    assert (t.loc["pooled", "acc_k"], t.loc["pooled", "acc_n"]) == (4, 7)
    low, high = wilson_ci(4, 7)
    assert (t.loc["pooled", "acc_low"], t.loc["pooled", "acc_high"]) == pytest.approx(
        (100 * low, 100 * high)
    )
    # paper Table III beside ours
    assert t.loc["0", "paper_acc"] == 92.31 and t.loc["1", "paper_threshold"] == 0.30
    assert t.loc["mean", "paper_acc"] == 91.10
    # curves for the threshold figure
    assert list(curves.columns) == ["fold", "threshold", "train_accuracy", "chosen"]
    assert len(curves) == 2 * 51 and set(curves["fold"]) == {0, 1}
    chosen = curves[curves["chosen"]].set_index("fold")["threshold"]
    assert chosen.to_dict() == {0: 0.32, 1: 0.48}
    fold0 = curves[curves["fold"] == 0].set_index("threshold")["train_accuracy"]
    assert (
        fold0[0.0] == pytest.approx(5 / 7)
        and fold0[0.34] == 1.0
        and fold0[0.36] == pytest.approx(6 / 7)
    )


def test_gout_patient_table_ignores_test_predictions_for_the_threshold():
    preds = patient_predictions()
    changed = preds.copy()
    test = changed["subset"] == "test"
    changed.loc[test, "prob"] = 1.0 - changed.loc[test, "prob"]  # flip every test call
    a, _ = gout_patient_table(preds)
    b, _ = gout_patient_table(changed)
    assert a["threshold"].tolist()[:2] == b["threshold"].tolist()[:2]
    assert a["acc"].tolist()[:2] != b["acc"].tolist()[:2]


def test_gout_patient_table_errors():
    preds = patient_predictions()
    no_train = preds[~((preds["fold"] == 1) & (preds["subset"] == "train"))]
    with pytest.raises(ValueError, match="fold 1 .* no train predictions"):
        gout_patient_table(no_train)
    two_arms = pd.concat([preds, preds.assign(arm="blocks6")])
    with pytest.raises(ValueError, match="one arm"):
        gout_patient_table(two_arms)
    mixed = preds.copy()
    mixed.loc[mixed.index[0], "label"] = 0
    with pytest.raises(ValueError, match="both 0 and 1"):
        gout_patient_table(mixed)


# ---------------------------------------------------------------------------------------------
# OLT Table II
# ---------------------------------------------------------------------------------------------


def olt_predictions():
    out = []
    for arm, tp, fn, tn, fp in (("T1", 23, 5, 89, 2), ("T2", 22, 5, 94, 12)):
        probs = [(1, 0.9)] * tp + [(1, 0.2)] * fn + [(0, 0.1)] * tn + [(0, 0.7)] * fp
        for i, (label, prob) in enumerate(probs):
            out += rows(arm, 0, "test", f"P-{arm}{i}", [f"I-{arm}-{i}"], label, [prob], "olt")
        out += rows(arm, 0, "train", "P-x", [f"I-{arm}-train"], 1, [0.1], "olt")
    return pd.DataFrame(out)


def test_olt_table_reproduces_the_papers_confusion():
    table = olt_table(olt_predictions())
    assert table[["arm", "class"]].values.tolist() == [
        ["T1", "patient"],
        ["T1", "healthy"],
        ["T2", "patient"],
        ["T2", "healthy"],
    ]
    t = table.set_index(["arm", "class"])
    t1p, t1h = t.loc[("T1", "patient")], t.loc[("T1", "healthy")]
    assert (t1p["tp"], t1p["fn"], t1p["tn"], t1p["fp"]) == (23, 5, 89, 2)
    assert (t1p["paper_tp"], t1p["paper_fn"], t1p["paper_tn"], t1p["paper_fp"]) == (23, 5, 89, 2)
    assert (t1p["precision_k"], t1p["precision_n"]) == (23, 25)
    assert (t1h["precision_k"], t1h["precision_n"]) == (89, 94)
    assert (t1h["recall_k"], t1h["recall_n"]) == (89, 91)
    assert (t1p["accuracy_k"], t1p["accuracy_n"]) == (112, 119)
    assert round(t1p["accuracy"], 1) == t1p["paper_accuracy"] == 94.1
    # computed from the same counts, the paper's precision/recall/F1 are reproduced
    for key in t.index:
        row = t.loc[key]
        for metric in ("precision", "recall", "f1"):
            assert round(row[metric], 2) == row[f"paper_{metric}"], (key, metric)
    # the paper's AUC/accuracy per sequence (not the misplaced printed cells)
    assert t.loc[("T1", "healthy"), "paper_auc"] == 0.93
    assert t.loc[("T2", "patient"), "paper_accuracy"] == 87.2
    assert t1p["auc"] == pytest.approx(1 - 5 * 2 / (28 * 91))  # only FN (0.2) < FP (0.7)


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


def test_to_markdown_renders_a_github_table():
    df = pd.DataFrame(
        {"name": ["a|b", "c"], "x": [1.23456, math.nan], "n": [3, 4], "ok": [True, False]}
    )
    text = to_markdown(df, "Title", compact=False)
    lines = text.splitlines()
    assert lines[0] == "### Title" and lines[1] == ""
    assert lines[2] == "| name | x | n | ok |"
    assert lines[3] == "|---|---|---|---|"
    assert lines[4] == "| a\\|b | 1.235 | 3 | True |"
    assert lines[5] == "| c |  | 4 | False |"
    assert text.endswith("\n")
    assert to_markdown(df).splitlines()[0] == "| name | x | n | ok |"


def test_compact_view_merges_counts_and_cis():
    df = pd.DataFrame(
        {
            "arm": ["blocks3"],
            "acc": [83.29],
            "acc_k": [334],
            "acc_n": [401],
            "acc_low": [79.33],
            "acc_high": [86.62],
            "auc": [0.9041],
            "auc_low": [0.887],
            "auc_high": [0.927],
            "p_acc": [0.0004],
            "b_acc": [3],
        }
    )
    view = compact_view(df)
    assert list(view.columns) == ["arm", "acc", "auc", "p_acc"]
    assert view.iloc[0].tolist() == [
        "blocks3",
        "83.3 (334/401) [79.3, 86.6]",
        "0.904 [0.887, 0.927]",
        "<0.001",
    ]


def test_gout_patient_table_refuses_a_test_patient_among_the_training_ones():
    preds = pd.concat(
        [pd.DataFrame(patient_predictions()), pd.DataFrame(patient(0, "train", "t1", 1, 3, 1))]
    )
    with pytest.raises(SplitError, match="fold 0: 1 patients are in both"):
        gout_patient_table(preds)


def test_tables_say_why_a_value_or_ci_is_blank():
    # blocks3 separates the classes (AUC 1): its DeLong CI does not exist (issue 28)
    pooled = gout_image_table(image_predictions()).query("fold == 'pooled'").set_index("arm")
    b3 = pooled.loc["blocks3"]
    assert b3["auc"] == 1.0 and math.isnan(b3["auc_low"]) and math.isnan(b3["auc_high"])
    assert b3["note"].startswith("auc: CI not estimable: the clustered variance is 0")
    assert pooled.loc["blocks6", "note"] == ""
    olt = olt_table(olt_predictions())
    assert (olt["note"] == "").all()


# ---------------------------------------------------------------------------------------------
# Image labels (issue 38): Table I scores images on `label`, Table III patients on
# `patient_label`
# ---------------------------------------------------------------------------------------------


def with_image_labels(preds: pd.DataFrame) -> pd.DataFrame:
    """`preds` with the patient's diagnosis in patient_label and, as an image sheet would give,
    image labels that differ from it: a gout patient's images called normal are normal."""
    out = preds.assign(patient_label=preds["label"])
    out.loc[(out["patient_label"] == 1) & (out["prob"] < 0.5), "label"] = 0
    return out


def test_table_iii_diagnoses_patients_on_patient_label():
    plain = patient_predictions()
    labelled = with_image_labels(plain)
    assert (labelled.groupby("patient")["label"].nunique() > 1).any()
    a, curves_a = gout_patient_table(plain)
    b, curves_b = gout_patient_table(labelled)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(curves_a, curves_b)
    # without patient_label the same image labels are no diagnosis: refused, as before
    with pytest.raises(ValueError, match="labelled both 0 and 1"):
        gout_patient_table(labelled.drop(columns="patient_label"))


def test_table_i_scores_images_on_their_own_label():
    plain = image_predictions()
    # a patient label that disagrees with every negative image's label changes nothing
    table = gout_image_table(plain.assign(patient_label=1))
    pd.testing.assert_frame_equal(table, gout_image_table(plain))
    labelled = with_image_labels(patient_predictions())
    pooled = gout_image_table(labelled).set_index("fold").loc["pooled"]
    test = labelled[labelled["subset"] == "test"]
    assert pooled["n_positive"] == int(test["label"].sum()) < int(test["patient_label"].sum())
    assert pooled["fn"] == 0  # every gout-patient image called normal is now a normal image


def test_table_titles_say_what_an_image_label_is(tmp_path):
    from mskdx.evaluate.tables import write_image_level_table, write_patient_level_table
    from mskdx.io import write_table

    for name, preds in (("plain", patient_predictions()), ("sheet", with_image_labels(
            patient_predictions()))):  # fmt: skip
        write_table(preds, tmp_path / f"{name}.csv", schema="predictions")
        out = {"csv": tmp_path / f"{name}1.csv", "md": tmp_path / f"{name}1.md"}
        write_image_level_table([tmp_path / f"{name}.csv"], reference="auto",
                                image_threshold=0.5, **out)  # fmt: skip
        write_patient_level_table([tmp_path / f"{name}.csv"], step=0.02, image_threshold=0.5,
                                  csv=tmp_path / f"{name}3.csv", md=tmp_path / f"{name}3.md",
                                  curves=tmp_path / f"{name}c.csv")  # fmt: skip
    for table in ("1", "3"):
        assert (
            "image labels are the patient's diagnosis"
            in (tmp_path / f"plain{table}.md").read_text()
        )
        assert (
            "image labels from the image label sheet" in (tmp_path / f"sheet{table}.md").read_text()
        )
