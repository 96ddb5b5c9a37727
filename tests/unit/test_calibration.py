"""Calibration (Brier, recalibration, reliability bins) and decision curves against references."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss

from mskdx.evaluate import clinical
from mskdx.evaluate.stats.calibration import (
    brier_score,
    calibration_fit,
    reliability_bins,
    smoothed_calibration,
)
from mskdx.evaluate.stats.decision import net_benefit, threshold_grid_dca

DATA = Path(__file__).resolve().parents[1] / "data"


def _miscalibrated(n: int, intercept: float, slope: float, seed: int = 0):
    """Probabilities p and outcomes drawn from logit P(y) = intercept + slope * logit(p)."""
    rng = np.random.default_rng(seed)
    p = expit(rng.normal(0.0, 1.5, n))
    y = (rng.random(n) < expit(intercept + slope * logit(p))).astype(int)
    return y, p


def test_brier_matches_sklearn_and_has_a_ci():
    y, p = _miscalibrated(500, 0.0, 1.0)
    result = brier_score(y, p)
    assert result.value == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert result.low < result.value < result.high
    prevalence = y.mean()
    assert result.reference == pytest.approx(prevalence * (1 - prevalence))
    # the CI narrows as 1/sqrt(n)
    big = brier_score(*_miscalibrated(8000, 0.0, 1.0))
    assert (big.high - big.low) < 0.35 * (result.high - result.low)


def test_calibration_slope_matches_unpenalised_logistic_regression():
    y, p = _miscalibrated(3000, 0.4, 0.6, seed=1)
    fit = calibration_fit(y, p)
    reference = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(
        logit(p).reshape(-1, 1), y
    )
    assert fit.slope == pytest.approx(reference.coef_[0, 0], abs=1e-4)
    assert fit.n == 3000 and fit.events == y.sum()


@pytest.mark.parametrize(("intercept", "slope"), [(0.0, 1.0), (0.7, 1.0), (0.0, 0.5), (-0.5, 1.6)])
def test_recalibration_recovers_the_generating_miscalibration(intercept, slope):
    y, p = _miscalibrated(20000, intercept, slope, seed=2)
    fit = calibration_fit(y, p)
    assert fit.slope_low < slope < fit.slope_high
    assert fit.slope_high - fit.slope_low < 0.15
    if slope == 1.0:  # with slope 1 the calibration-in-the-large equals the generating intercept
        assert fit.intercept_low < intercept < fit.intercept_high
    assert fit.note == ""


def test_intercept_is_the_offset_model_of_statsmodels_logit():
    import statsmodels.api as sm

    y, p = _miscalibrated(2000, -0.3, 0.8, seed=3)
    fit = calibration_fit(y, p)
    reference = sm.Logit(y, np.ones(len(y)), offset=logit(p)).fit(disp=0)
    assert fit.intercept == pytest.approx(reference.params[0], abs=1e-6)
    low, high = reference.conf_int()[0]
    assert (fit.intercept_low, fit.intercept_high) == pytest.approx((low, high), abs=1e-6)


def test_separated_scores_are_noted():
    y = np.r_[np.zeros(20, int), np.ones(20, int)]
    fit = calibration_fit(y, np.r_[np.linspace(0.05, 0.4, 20), np.linspace(0.6, 0.95, 20)])
    # issue 28: the slope of separated data does not exist; NaN with the reason
    assert fit.note.startswith("slope not estimable: complete separation")
    assert math.isnan(fit.slope) and math.isnan(fit.slope_low) and math.isnan(fit.slope_high)


def test_calibration_of_one_class_is_reported_not_fitted():
    fit = calibration_fit(np.ones(10, int), np.linspace(0.1, 0.9, 10))
    assert math.isnan(fit.slope) and fit.note == "not estimable: one class only (10 events of 10)"


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_reliability_bins_match_sklearn_calibration_curve(strategy):
    y, p = _miscalibrated(997, 0.2, 0.8, seed=4)
    p[:5] = [0.1, 0.2, 0.5, 0.9, 1.0]  # values on bin edges
    bins = reliability_bins(y, p, n_bins=10, strategy=strategy)
    observed, predicted = calibration_curve(y, p, n_bins=10, strategy=strategy)
    np.testing.assert_allclose(bins["observed"], observed, atol=1e-12)
    np.testing.assert_allclose(bins["predicted"], predicted, atol=1e-12)
    assert bins["n"].sum() == len(y)
    assert (bins["observed_low"] <= bins["observed"]).all()
    assert (bins["observed"] <= bins["observed_high"]).all()


def test_smoothed_calibration_follows_a_miscalibrated_model():
    y, p = _miscalibrated(4000, 1.0, 1.0, seed=5)  # outcomes more frequent than predicted
    x, rate = smoothed_calibration(y, p)
    assert np.all(np.diff(x) >= 0)
    middle = (x > 0.3) & (x < 0.7)
    assert (rate[middle] > x[middle] + 0.05).mean() > 0.9


def test_net_benefit_matches_dcurves():
    """Against numbers computed by the dcurves package (1.1.7, Sjoberg's Python port of the
    R dcurves) on the stored input: dcurves pins pandas < 3 through lifelines, so its output is
    stored rather than installed beside the pipeline's pandas."""
    data = pd.read_csv(DATA / "dca_input.csv")
    ref = pd.read_csv(DATA / "dca_reference_dcurves_1.1.7.csv")
    ours = net_benefit(data["y"].to_numpy(), data["p"].to_numpy(), ref["threshold"].to_numpy())
    np.testing.assert_allclose(ours["net_benefit"], ref["net_benefit_model"], atol=1e-11)
    np.testing.assert_allclose(ours["treat_all"], ref["net_benefit_all"], atol=1e-11)


def test_net_benefit_by_hand():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.6, 0.2, 0.7, 0.3, 0.1, 0.1, 0.05])
    table = net_benefit(y, p, [0.25, 0.5])
    # pt 0.25: called 0.9, 0.6, 0.7, 0.3 -> TP 2, FP 2; NB = 2/8 - 2/8 * (1/3)
    assert table.loc[0, "net_benefit"] == pytest.approx(2 / 8 - 2 / 8 / 3)
    # pt 0.5: called 0.9, 0.6, 0.7 -> TP 2, FP 1; NB = 2/8 - 1/8 * 1
    assert table.loc[1, "net_benefit"] == pytest.approx(1 / 8)
    assert table.loc[1, "treat_all"] == pytest.approx(3 / 8 - 5 / 8)
    # at 0.25 the model ties with treating all (3/8 - 5/8 / 3 = 1/6): not better than both
    assert table.loc[0, "treat_all"] == pytest.approx(table.loc[0, "net_benefit"])
    assert list(table["useful"]) == [False, True]


def test_threshold_grid_rejects_a_bad_range():
    assert threshold_grid_dca(0.05, 0.5, 0.05)[-1] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="expected 0 <= low < high < 1"):
        threshold_grid_dca(0.5, 1.0, 0.1)


def _predictions(seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for arm in ("a", "b"):
        for patient in range(30):
            label = patient % 2
            for image in range(4):
                rows.append(
                    {
                        "arm": arm,
                        "subset": "test" if patient < 24 else "train",
                        "patient": f"P-{patient:010x}",
                        "image_id": f"I-{patient * 10 + image:012x}",
                        "label": label,
                        "prob": float(np.clip(0.5 * label + 0.5 * rng.random(), 0, 1)),
                    }
                )
    return pd.DataFrame(rows)


def test_patient_level_uses_the_mean_probability_of_test_images_only():
    table = clinical.at_level(clinical.scored_rows(_predictions()), "patient")
    assert len(table) == 2 * 24  # training rows are not scored
    preds = _predictions()
    one = preds[(preds.arm == "a") & (preds.patient == "P-0000000003")]
    row = table[(table.arm == "a") & (table.patient == "P-0000000003")]
    assert row["prob"].item() == pytest.approx(one["prob"].mean())


def test_patient_with_two_labels_is_refused():
    preds = _predictions()
    preds.loc[0, "label"] = 1 - preds.loc[0, "label"]
    with pytest.raises(ValueError, match="both labels"):
        clinical.at_level(clinical.scored_rows(preds), "patient")


def test_calibration_table_has_one_row_per_cohort_arm_and_level():
    preds = _predictions()
    table = clinical.calibration_table(
        {"development": preds, "site B": preds}, levels=("image", "patient")
    )
    assert len(table) == 2 * 2 * 2
    row = table[(table.cohort == "site B") & (table.arm == "b") & (table.level == "image")]
    test = preds[(preds.subset == "test") & (preds.arm == "b")]
    assert row["brier"].item() == pytest.approx(brier_score_loss(test.label, test.prob), abs=1e-4)


def test_figures_are_drawn(tmp_path):
    from mskdx.evaluate.figures.calibration import plot_calibration, plot_decision_curve

    preds = _predictions()
    bins = clinical.reliability_table(
        {"development": preds[preds.arm == "a"]}, "image", 5, "uniform"
    )
    test = clinical.scored_rows(preds[preds.arm == "a"])
    smooth = {"development": smoothed_calibration(test.label, test.prob)}
    plot_calibration(bins, smooth, "a", [tmp_path / "cal.png"], {"dpi": 50})
    curves = clinical.decision_curve_table({"development": preds}, "patient", 0.05, 0.95, 0.05)
    plot_decision_curve(curves, "gout", [tmp_path / "dca.png"], {"dpi": 50})
    for name in ("cal.png", "dca.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="lack columns"):
        plot_decision_curve(curves.drop(columns="treat_all"), "x", [tmp_path / "x.png"], None)


def test_patient_level_rows_take_the_patients_diagnosis_not_image_labels():
    from mskdx.evaluate.clinical import at_level

    test = pd.DataFrame(
        {
            "arm": "a",
            "patient": ["P-1", "P-1", "P-2"],
            "image_id": ["I-1", "I-2", "I-3"],
            "label": [1, 0, 0],  # image labels: P-1's second image is normal
            "patient_label": [1, 1, 0],
            "prob": [0.9, 0.3, 0.2],
        }
    )
    patients = at_level(test, "patient").set_index("patient")
    assert patients["label"].to_dict() == {"P-1": 1, "P-2": 0}
    assert patients.loc["P-1", "prob"] == pytest.approx(0.6)
    assert at_level(test, "image")["label"].tolist() == [1, 0, 0]
    with pytest.raises(ValueError, match="both labels"):
        at_level(test.drop(columns="patient_label"), "patient")
