"""Patient-level splits: stratified k-fold and holdout, leakage checks, user split files."""

import numpy as np
import pandas as pd
import pytest

from mskdx.errors import SplitError
from mskdx.io import read_table, write_table
from mskdx.learn.splits import (
    check_splits,
    holdout_split,
    kfold_splits,
    make_splits,
    patient_labels,
)


def labels(n_pos, n_neg):
    ids = [f"P-{i:010x}" for i in range(n_pos + n_neg)]
    return pd.Series([1] * n_pos + [0] * n_neg, index=ids).sort_index()


def manifest(lab: pd.Series, per_patient=3) -> pd.DataFrame:
    rows = []
    for p, y in lab.items():
        for _ in range(per_patient):
            rows.append(
                {
                    "index": len(rows),
                    "image_id": f"I-{len(rows):012x}",
                    "patient": p,
                    "study": "gout",
                    "series": "dorsal",
                    "plane": None,
                    "frame": 0,
                    "label": int(y),
                    "checksum": "0" * 64,
                }
            )
    return pd.DataFrame(rows)


def test_kfold_each_patient_tested_once_and_never_in_two_subsets():
    lab = labels(149, 111)
    splits = kfold_splits(lab, folds=5, validation_fraction=0.1, seed=3)
    check_splits(splits, lab.index)
    tests = splits[splits.subset == "test"]
    assert sorted(tests.patient) == sorted(lab.index)  # every patient tested exactly once
    for _, part in splits.groupby("fold"):
        assert len(part) == len(lab) and part.patient.is_unique
        test = part[part.subset == "test"]
        assert 51 <= len(test) <= 53  # 260 / 5, the paper's 209:51
        assert abs(test.label.mean() - 149 / 260) < 0.03  # stratified
        assert 0 < (part.subset == "val").sum() <= 0.1 * 209 + 1


def test_holdout_is_60_20_20_and_seeded():
    lab = labels(87, 302)
    a = holdout_split(lab, fractions=[0.6, 0.2, 0.2], seed=11)
    b = holdout_split(lab, fractions=[0.6, 0.2, 0.2], seed=11)
    c = holdout_split(lab, fractions=[0.6, 0.2, 0.2], seed=12)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    counts = a.subset.value_counts()
    assert counts["train"] == pytest.approx(0.6 * 389, abs=1)
    assert counts["val"] == pytest.approx(0.2 * 389, abs=1)
    check_splits(a, lab.index)


def test_patient_in_two_subsets_is_refused():
    lab = labels(10, 10)
    splits = kfold_splits(lab, folds=2, validation_fraction=0.0, seed=1)
    leak = pd.concat(
        [
            splits,
            splits.iloc[[0]].assign(subset="test" if splits.iloc[0].subset != "test" else "train"),
        ]
    )
    with pytest.raises(SplitError, match=r"is in subsets .* of fold 0"):
        check_splits(leak, lab.index, "user.csv")


def test_too_few_patients_for_the_folds_names_the_class():
    with pytest.raises(SplitError, match="class gout has 3 patients; 5-fold"):
        kfold_splits(
            labels(3, 20), folds=5, validation_fraction=0.1, seed=1, class_names=("control", "gout")
        )
    with pytest.raises(SplitError, match="class 1 has 3 patients; 5-fold"):
        kfold_splits(labels(3, 20), folds=5, validation_fraction=0.1, seed=1)


def test_make_splits_names_classes_as_the_config_does(tmp_path):
    write_table(manifest(labels(2, 8)), tmp_path / "manifest.csv", schema="manifest")
    with pytest.raises(SplitError, match="class gout has 2 patients"):
        make_splits(
            tmp_path / "manifest.csv",
            tmp_path / "splits.csv",
            method="kfold",
            folds=5,
            seed=0,
            class_names=("control", "gout"),
        )


def _user_split(tmp_path, text: str):
    lab = labels(4, 4)
    write_table(manifest(lab), tmp_path / "manifest.csv", schema="manifest")
    (tmp_path / "user.csv").write_text(text)
    with pytest.raises(SplitError) as info:
        make_splits(
            tmp_path / "manifest.csv",
            tmp_path / "splits.csv",
            method="kfold",
            seed=0,
            user_file=str(tmp_path / "user.csv"),
        )
    assert not (tmp_path / "splits.csv").exists()
    return str(info.value), lab


def test_user_split_file_missing_names_file_and_columns(tmp_path):
    write_table(manifest(labels(4, 4)), tmp_path / "manifest.csv", schema="manifest")
    with pytest.raises(SplitError) as info:
        make_splits(
            tmp_path / "manifest.csv",
            tmp_path / "splits.csv",
            method="kfold",
            seed=0,
            user_file=str(tmp_path / "absent.csv"),
        )
    message = str(info.value)
    assert "absent.csv" in message and "not found" in message
    assert "['fold', 'patient', 'subset']" in message


def test_user_split_file_with_other_column_names(tmp_path):
    message, lab = _user_split(tmp_path, "Fold,patient,subset\n0,x,train\n")
    assert "user.csv" in message and "missing column(s) ['fold']" in message
    assert "['Fold', 'patient', 'subset']" in message


def test_user_split_file_with_patient_ids_does_not_echo_them(tmp_path):
    rows = "".join(f"0,MRN{i:08d},{'train' if i % 2 else 'test'}\n" for i in range(8))
    message, _ = _user_split(tmp_path, "fold,patient,subset\n" + rows)
    assert "8 of 8 patients are not in the manifest" in message
    assert "pseudonym" in message and "MRN" not in message


def test_mixed_labels_within_a_patient_are_refused():
    m = manifest(labels(2, 2))
    m.loc[0, "label"] = 1 - m.loc[0, "label"]
    with pytest.raises(SplitError, match="both labels"):
        patient_labels(m)


def test_patients_are_stratified_on_their_diagnosis_not_their_image_labels(tmp_path):
    lab = labels(6, 6)
    m = manifest(lab).assign(patient_label=lambda t: t["label"])
    # image labels (issue 38): a gout patient's first image is normal
    m.loc[m.groupby("patient").head(1).index, "label"] = 0
    assert patient_labels(m).equals(lab)
    write_table(m, tmp_path / "manifest.csv", schema="manifest")
    out = make_splits(tmp_path / "manifest.csv", tmp_path / "splits.csv", method="kfold",
                      folds=3, validation_fraction=0.2, seed=1)  # fmt: skip
    test = out[out.subset == "test"]
    assert (test.groupby("fold").label.sum() == 2).all()  # 2 of 6 gout patients per test fold
    mixed = m.copy()
    mixed.loc[0, "patient_label"] = 1 - mixed.loc[0, "patient_label"]
    with pytest.raises(SplitError, match="both labels"):
        patient_labels(mixed)


def test_make_splits_writes_and_reads_user_file(tmp_path):
    lab = labels(8, 8)
    write_table(manifest(lab), tmp_path / "manifest.csv", schema="manifest")
    out = make_splits(
        tmp_path / "manifest.csv",
        tmp_path / "splits.csv",
        method="kfold",
        folds=4,
        validation_fraction=0.0,
        seed=5,
    )
    assert read_table(tmp_path / "splits.csv", "splits").equals(out)
    # a user's split file is taken as is, and checked
    user = out[["fold", "patient", "subset"]]
    user.to_csv(tmp_path / "user.csv", index=False)
    again = make_splits(
        tmp_path / "manifest.csv",
        tmp_path / "s2.csv",
        method="kfold",
        seed=0,
        user_file=str(tmp_path / "user.csv"),
    )
    assert np.array_equal(again.subset, out.subset)
    bad = pd.concat([user, user.iloc[[0]].assign(subset="val")])
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(SplitError, match="bad.csv"):
        make_splits(
            tmp_path / "manifest.csv",
            tmp_path / "s3.csv",
            method="kfold",
            seed=0,
            user_file=str(tmp_path / "bad.csv"),
        )
    assert not (tmp_path / "s3.csv").exists()
