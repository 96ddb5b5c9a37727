"""Repeated k-fold CV: the splits (repeat 0 unchanged), and Table I's companion table."""

import numpy as np
import pandas as pd
import pytest

from mskdx.evaluate.repeats import repeats_table
from mskdx.io import write_table
from mskdx.learn.splits import check_splits, make_splits


@pytest.fixture
def manifest(tmp_path):
    rows = [
        {"index": i, "image_id": f"I-{i:012x}", "patient": f"P-{i // 2:010x}", "study": "gout",
         "series": "dorsal", "frame": 0, "label": (i // 2) % 2, "checksum": "0" * 64}
        for i in range(40)
    ]  # fmt: skip
    path = tmp_path / "manifest.csv"
    write_table(pd.DataFrame(rows), path, schema="manifest")
    return path


def test_repeat_zero_is_the_single_split(manifest, tmp_path):
    one = make_splits(manifest, tmp_path / "a.csv", method="kfold", seed=3, folds=3,
                      validation_fraction=0.2)  # fmt: skip
    three = make_splits(manifest, tmp_path / "b.csv", method="kfold", seed=3, folds=3,
                        validation_fraction=0.2, repeats=3)  # fmt: skip
    assert sorted(three.fold.unique()) == list(range(9))
    first = three[three.fold < 3].reset_index(drop=True)
    pd.testing.assert_frame_equal(first, one.reset_index(drop=True))
    for r in range(3):
        part = three[three.fold // 3 == r]
        check_splits(part, None, "repeat")
        assert part[part.subset == "test"].patient.is_unique  # each patient tested once a repeat
    tests = [
        frozenset(three[(three.fold == 3 * r) & (three.subset == "test")].patient) for r in range(3)
    ]
    assert len(set(tests)) == 3  # independent splits


def predictions(rng, arms, folds=3, repeats=2, n=12):
    rows = []
    for arm, strength in arms.items():
        for fold in range(folds * repeats):
            for i in range(n):
                label = i % 2
                for subset, count in (("train", 2), ("test", 1)):
                    for c in range(count):
                        prob = float(np.clip(strength * label + rng.normal(0.3, 0.2), 0, 1))
                        image = f"I-{fold:04x}{i:04x}{c:04x}"
                        rows.append(
                            {"arm": arm, "fold": fold, "subset": subset, "label": label,
                             "image_id": image, "prob": prob}
                        )  # fmt: skip
    return pd.DataFrame(rows)


def test_companion_table_tests_each_arm_against_the_best():
    preds = predictions(np.random.default_rng(0), {"strong": 0.8, "weak": 0.0})
    table = repeats_table(preds, folds=3)
    assert table.arm.tolist() == ["strong", "weak"] and table.best.tolist() == [True, False]
    weak = table.iloc[1]
    assert weak.repeats == 2 and weak.df == 5  # k r - 1
    assert weak.auc_diff_mean < 0 and weak.p_corrected < 0.05
    assert weak.test_train_ratio == pytest.approx(0.5)  # 1 test image per 2 training images
    assert np.isfinite(table.iloc[0].auc_sd)


def test_one_repeat_has_no_sd_but_still_a_test():
    preds = predictions(np.random.default_rng(1), {"a": 0.4, "b": 0.1}, repeats=1)
    table = repeats_table(preds, folds=3)
    assert table.repeats.tolist() == [1, 1]
    assert np.isnan(table.iloc[0].auc_sd) and table.iloc[1].df == 2
