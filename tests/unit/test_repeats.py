"""Repeated k-fold CV: the splits (repeat 0 unchanged), and Table I's companion table."""

import numpy as np
import pandas as pd
import pytest

from mskdx.evaluate.repeats import repeats_markdown, repeats_table, supported_claim
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
    assert table.arm.tolist() == ["strong", "weak"]
    assert table.is_reference.tolist() == [True, False]
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


def with_training_repeats(rng, arms, *, train_repeats=3, **kw):
    """Predictions of `train_repeats` training runs per fold: same images, other noise."""
    runs = [predictions(rng, arms, **kw).assign(train_repeat=t) for t in range(train_repeats)]
    return pd.concat(runs, ignore_index=True)


def test_training_repeats_enter_as_one_difference_per_fold():
    from scipy.stats import t as student_t
    from sklearn.metrics import roc_auc_score

    preds = with_training_repeats(np.random.default_rng(2), {"a": 0.5, "b": 0.35}, repeats=2)
    table = repeats_table(preds, folds=3).set_index("arm")
    assert table.loc["a", "is_reference"] and table.repeats.tolist() == [2, 2]
    assert table.train_repeats.tolist() == [3, 3] and table.runs.tolist() == [6, 6]
    # by hand, from the formula (Bouckaert & Frank 2004): per fold of each split the AUC
    # difference averaged over its 3 training runs, then t over the 6 = k r of them
    test = preds[preds.subset == "test"]
    auc = {
        key: roc_auc_score(part.label, part.prob)
        for key, part in test.groupby(["arm", "fold", "train_repeat"])
    }
    d = np.array([np.mean([auc["b", f, t] - auc["a", f, t] for t in range(3)]) for f in range(6)])
    stat = d.mean() / np.sqrt((1 / 6 + 1 / 2) * d.var(ddof=1))  # n2 / n1 = 1 / 2
    b = table.loc["b"]
    assert b.df == 5 and b.t == pytest.approx(stat, rel=1e-12)
    assert b.p_corrected == pytest.approx(2 * student_t.sf(abs(stat), 5), rel=1e-12)
    # the CI of the mean difference inverts the same test; one comparison: Holm changes nothing
    half = student_t.ppf(0.975, 5) * np.sqrt((1 / 6 + 1 / 2) * d.var(ddof=1))
    assert (b.auc_diff_low, b.auc_diff_high) == pytest.approx((d.mean() - half, d.mean() + half))
    assert b.p_corrected_adjusted == pytest.approx(b.p_corrected, rel=1e-12)
    # SD (training): within each split, the SD over the 3 runs of the pooled AUC, pooled
    pooled = {
        key: roc_auc_score(part.label, part.prob)
        for key, part in test.assign(split=test.fold // 3).groupby(["arm", "split", "train_repeat"])
    }
    within = [np.var([pooled["a", r, t] for t in range(3)], ddof=1) for r in range(2)]
    assert table.loc["a", "auc_train_sd"] == pytest.approx(np.sqrt(np.mean(within)), rel=1e-12)
    over_runs = [pooled["a", r, t] for r in range(2) for t in range(3)]
    assert table.loc["a", "auc_sd"] == pytest.approx(np.std(over_runs, ddof=1), rel=1e-12)
    top = {  # ties count for each arm tied
        arm: sum(
            pooled[arm, r, t] == max(pooled["a", r, t], pooled["b", r, t])
            for r in range(2)
            for t in range(3)
        )
        for arm in ("a", "b")
    }
    assert table.best_in_runs.to_dict() == top


def test_what_the_runs_support():
    one = repeats_table(predictions(np.random.default_rng(3), {"a": 0.6, "b": 0.1}, repeats=1),
                        folds=3)  # fmt: skip
    assert "not a finding" in supported_claim(one)
    clear = repeats_table(
        with_training_repeats(np.random.default_rng(4), {"strong": 0.9, "weak": 0.0}), folds=3
    )
    assert supported_claim(clear) == (
        "Reference strong (auto: highest mean pooled AUC) had the highest pooled AUC in 6 of 6 "
        "runs. Below it (adjusted corrected p < 0.05): weak."
    )
    close = repeats_table(
        with_training_repeats(np.random.default_rng(5), {"x": 0.3, "y": 0.3, "z": 0.0}), folds=3
    )
    assert clear.verdict.tolist() == [
        "reference (auto: highest mean pooled AUC); best in 6 of 6 runs",
        "below the reference (adjusted corrected p < 0.05)",
    ]
    assert set(one.verdict) == {"one split, one training run: its place is not a finding"}
    claim = supported_claim(close)
    best = close[close.is_reference].arm.item()
    other = ({"x", "y"} - {best}).pop()
    assert f"Not distinguishable from it (adjusted corrected p >= 0.05): {other}." in claim
    assert "Below it (adjusted corrected p < 0.05): z." in claim
    verdicts = close.set_index("arm").verdict
    assert verdicts[other] == (
        "not distinguishable from the reference (adjusted corrected p >= 0.05)"
    )
    untested = close.copy()
    untested.loc[untested.arm == "z", "p_corrected_adjusted"] = np.nan  # not "tied"
    assert "Not tested (fewer than 2 per-fold differences): z." in supported_claim(untested)
    assert ": z" not in supported_claim(untested).split("Not tested")[0]
    text = repeats_markdown(close, folds=3)
    assert "2 x 3-fold CV x 3 training runs per fold" in text and claim in text
    assert f"| {best} (reference) | 2 x 3 |" in text
    assert "Holm over all 3 pairs of arms" in text


def test_named_reference_holm_over_its_comparisons_and_auto_over_all_pairs():
    from statsmodels.stats.multitest import multipletests

    preds = with_training_repeats(
        np.random.default_rng(6), {"x": 0.3, "y": 0.2, "z": 0.0}, train_repeats=2
    )
    named = repeats_table(preds, folds=3, reference="z").set_index("arm")
    assert named.index[0] == "z" and named.loc["z", "is_reference"]
    assert named.loc["z", "reference_rule"] == "named in advance"
    raw = named.loc[["x", "y"], "p_corrected"].to_numpy()
    np.testing.assert_allclose(
        named.loc[["x", "y"], "p_corrected_adjusted"], multipletests(raw, method="holm")[1]
    )
    assert (named.loc[["x", "y"], "auc_diff_mean"] > 0).all()  # arm minus the reference
    assert named.loc["x", "verdict"].startswith(("above the reference", "not distinguishable"))
    # auto: the family is all 3 pairs, the reference's 2 reported from it
    auto = repeats_table(preds, folds=3).set_index("arm")
    ref = auto.index[0]
    others = [a for a in auto.index if a != ref]
    pair = {}
    for a, b in (("x", "y"), ("x", "z"), ("y", "z")):
        pair[a, b] = repeats_table(
            preds[preds.arm.isin([a, b])], folds=3, reference=a
        ).set_index("arm").loc[b, "p_corrected"]  # fmt: skip
    family = list(pair)
    adjusted = dict(zip(family, multipletests(list(pair.values()), method="holm")[1], strict=True))
    for arm in others:
        key = tuple(sorted((ref, arm)))
        assert auto.loc[arm, "p_corrected_adjusted"] == pytest.approx(adjusted[key], rel=1e-12)
    with pytest.raises(ValueError, match="comparison.reference"):
        repeats_table(preds, folds=3, reference="w")
