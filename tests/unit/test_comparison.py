"""`compare_predictions` (issue 37): the table, the reference rules, Holm, and bad input."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from mskdx.errors import PredictionsError
from mskdx.evaluate.comparison import compare_predictions
from mskdx.evaluate.stats.clustered import clustered_auc, clustered_auc_test
from mskdx.evaluate.stats.clustered_binary import clustered_mcnemar

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def long() -> pd.DataFrame:
    d = pd.read_csv(DATA / "clustered_input.csv")
    return d[d.dataset == "clustered"].drop(columns="dataset").reset_index(drop=True)


def write(df: pd.DataFrame, tmp_path: Path, name: str = "pred.csv") -> Path:
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


def test_named_reference_holm_and_files(long, tmp_path):
    path = write(long.sample(frac=1.0, random_state=3), tmp_path)  # row order must not matter
    table = compare_predictions(path, reference="A", threshold=0.5, out_dir=tmp_path / "out")
    assert list(table.arm) == list(dict.fromkeys(long.sample(frac=1.0, random_state=3).arm))
    table = table.set_index("arm")
    w = long.pivot_table(index=["patient", "image", "label"], columns="arm", values="prob")
    w = w.reset_index()
    y, pid = w.label.to_numpy(), w.patient.to_numpy()
    for arm in ("B", "C"):
        t = clustered_auc_test(y, w.A, w[arm], pid)
        assert table.loc[arm, "p_auc"] == pytest.approx(t.pvalue, rel=1e-12)
        ok_a, ok = (w.A >= 0.5) == (y == 1), (w[arm] >= 0.5) == (y == 1)
        assert table.loc[arm, "p_acc"] == pytest.approx(
            clustered_mcnemar(ok_a, ok, pid).pvalue, rel=1e-12
        )
    assert table.loc["B", "auc"] == pytest.approx(clustered_auc(y, w.B, pid).auc)
    for metric in ("auc", "acc", "sen", "spe"):
        raw = table.loc[["B", "C"], f"p_{metric}"].to_numpy()
        expected = multipletests(raw, method="holm")[1]
        np.testing.assert_allclose(table.loc[["B", "C"], f"p_{metric}_adjusted"], expected)
        assert math.isnan(table.loc["A", f"p_{metric}"])
    assert (table.n_images == 265).all() and (table.n_patients == 60).all()
    assert table.global_df.iloc[0] == 2 and 0 < table.global_p.iloc[0] < 1
    # clustered intervals are wider than the image-as-unit ones on these clustered data
    assert (table.auc_ci_high - table.auc_ci_low > table.auc_ci_high_independent
            - table.auc_ci_low_independent).all()  # fmt: skip
    assert (table.acc_deff > 1).all()
    csv = pd.read_csv(tmp_path / "out" / "comparison.csv")
    assert list(csv.columns) == ["arm", *table.columns]
    md = (tmp_path / "out" / "comparison.md").read_text()
    assert md.startswith("### Comparison of 3 arms") and "Reference: A (named)" in md


def test_auto_reference_is_the_best_auc_and_adjusts_over_all_pairs(long, tmp_path):
    table = compare_predictions(
        write(long, tmp_path), reference="auto", threshold=0.5, out_dir=tmp_path / "o"
    ).set_index("arm")
    best = table.auc.idxmax()
    assert (table.reference == best).all() and best == "B"
    w = long.pivot_table(index=["patient", "image", "label"], columns="arm", values="prob")
    w = w.reset_index()
    y, pid = w.label.to_numpy(), w.patient.to_numpy()
    pairs = list(itertools.combinations(["A", "B", "C"], 2))
    raw = [clustered_auc_test(y, w[a], w[b], pid).pvalue for a, b in pairs]
    adjusted = dict(zip(pairs, multipletests(raw, method="holm")[1], strict=True))
    assert table.loc["A", "p_auc_adjusted"] == pytest.approx(adjusted[("A", "B")], rel=1e-12)
    assert table.loc["C", "p_auc_adjusted"] == pytest.approx(adjusted[("B", "C")], rel=1e-12)
    named = compare_predictions(
        write(long, tmp_path), reference="B", threshold=0.5, out_dir=tmp_path / "n"
    ).set_index("arm")
    others = ["A", "C"]
    assert (table.loc[others, "p_auc_adjusted"] >= named.loc[others, "p_auc_adjusted"]).all()


def test_one_image_per_patient_without_image_column(tmp_path):
    d = pd.read_csv(DATA / "clustered_input.csv")
    d = d[d.dataset == "single"].drop(columns=["dataset", "image"])
    table = compare_predictions(
        write(d, tmp_path), reference="A", threshold=0.5, out_dir=tmp_path / "o"
    ).set_index("arm")
    assert table.loc["B", "p_auc"] == pytest.approx(table.loc["B", "p_auc_independent"], 1e-12)
    assert table.loc["B", "auc_ci_low"] == pytest.approx(table.loc["B", "auc_ci_low_independent"])
    assert table.loc["B", "acc_ci_low"] == pytest.approx(table.loc["B", "acc_ci_low_independent"])
    assert table.loc["B", "acc_deff"] == 1.0


def test_one_class_only_is_not_estimable_not_a_crash(long, tmp_path):
    pos = long[long.label == 1]
    table = compare_predictions(
        write(pos, tmp_path), reference="A", threshold=0.5, out_dir=tmp_path / "o"
    ).set_index("arm")
    assert math.isnan(table.loc["A", "auc"]) and math.isnan(table.loc["A", "auc_ci_low"])
    assert "auc: not estimable" in table.loc["A", "note"]
    assert "spe: not estimable: no cases" in table.loc["A", "note"]
    assert "p_auc: not estimable: one class only" in table.loc["B", "note"]
    assert "p_spe: not estimable: no pairs" in table.loc["B", "note"]
    assert 0 <= table.loc["B", "p_sen"] <= 1


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: d.drop(columns="prob"), r"missing column\(s\) \['prob'\]"),
        (lambda d: d.assign(label=d.label.where(d.index != 5, 2)), r"'label'.*not 0/1.*lines 7\b"),
        (lambda d: d.assign(prob=d.prob.where(d.index != 0, 1.5)), r"'prob'.*\[0, 1\].*lines 2\b"),
        (lambda d: d.assign(prob=d.prob.where(d.index != 3, np.nan)), r"'prob'.*lines 5\b"),
        (lambda d: d.drop(index=[10]), r"'image'.*same images"),
        (lambda d: pd.concat([d, d.iloc[[4]]]), r"'image'.*scored twice"),
        (lambda d: d.assign(label=np.where((d.arm == "B") & (d.index == d[d.arm == "B"].index[0]),
                                           1 - d.label, d.label)), r"'label'.*different labels"),
    ],
)  # fmt: skip
def test_bad_input_names_file_column_rows_and_writes_nothing(long, tmp_path, change, match):
    path = write(change(long.copy()), tmp_path, "bad.csv")
    with pytest.raises(PredictionsError, match=match) as err:
        compare_predictions(path, reference="A", threshold=0.5, out_dir=tmp_path / "out")
    assert str(path) in str(err.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_unknown_reference_and_unpaired_rows_without_image(long, tmp_path):
    path = write(long, tmp_path)
    with pytest.raises(PredictionsError, match="reference arm 'Z' is not in the file"):
        compare_predictions(path, reference="Z", threshold=0.5, out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    no_image = long.drop(columns="image").drop(index=[0])  # arm A lacks one image of P-001
    with pytest.raises(PredictionsError, match="every arm must score the same images"):
        compare_predictions(
            write(no_image, tmp_path), reference="A", threshold=0.5, out_dir=tmp_path / "o"
        )


def test_the_command_line(long, tmp_path, caplog):
    """`mskdx compare` runs the same engine; a bad file is a short error (exit 2), no files."""
    from mskdx import cli

    path = write(long, tmp_path)
    out = tmp_path / "out"
    arms = sorted(long["arm"].unique())
    argv = ["compare", str(path), "--reference", arms[0], "--threshold", "0.5", "--out", str(out)]
    assert cli.main(argv) == 0
    table = pd.read_csv(out / "comparison.csv")
    direct = compare_predictions(path, reference=arms[0], threshold=0.5, out_dir=tmp_path / "api")
    np.testing.assert_allclose(table["p_auc_adjusted"], direct["p_auc_adjusted"], equal_nan=True)
    bad = write(long.drop(columns="prob"), tmp_path, "bad.csv")
    assert cli.main(["compare", str(bad), "--out", str(tmp_path / "bad")]) == 2
    assert "prob" in caplog.text and not (tmp_path / "bad").exists()
