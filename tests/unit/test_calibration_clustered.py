"""Cluster-robust calibration (issue 37) against R: sandwich::vcovCL, survey::svymean, brglm2.

The stored reference is tests/data/calibration_clustered_reference.csv, made by
tests/data/calibration_clustered_reference.R from tests/data/calibration_clustered_input.csv.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit

from mskdx.evaluate.stats.calibration import brier_score, calibration_fit
from mskdx.evaluate.stats.calibration_clustered import (
    brier_score_clustered,
    calibration_fit_clustered,
    cluster_sandwich,
)

DATA = Path(__file__).resolve().parents[1] / "data"
INPUT = pd.read_csv(DATA / "calibration_clustered_input.csv")
REFERENCE = pd.read_csv(DATA / "calibration_clustered_reference.csv")


def _part(dataset: str) -> pd.DataFrame:
    return INPUT[INPUT["dataset"] == dataset]


def _reference(dataset: str, model: str, method: str) -> pd.Series:
    hit = REFERENCE[
        (REFERENCE.dataset == dataset) & (REFERENCE.model == model) & (REFERENCE.method == method)
    ]
    assert len(hit) == 1
    return hit.iloc[0]


FITS = [
    (d, m)
    for d in ("patient_label", "image_label", "singletons", "separated")
    for m in ("ml", "firth")
]


@pytest.mark.parametrize(("dataset", "method"), FITS)
def test_intercept_and_slope_match_r_vcovcl(dataset, method):
    part = _part(dataset)
    fit = calibration_fit_clustered(part.y, part.prob, part.patient, method=method)
    assert fit.clusters == part.patient.nunique() and fit.n == len(part)
    if dataset == "separated" and method == "ml":
        # no R row: the ML slope is infinite (calibration_fit's rule); the intercept is Firth's row
        assert math.isnan(fit.slope) and fit.note.startswith("slope not estimable: complete")
        return
    for model in ("intercept", "slope"):
        ref = _reference(dataset, model, method)
        estimate, se = getattr(fit, model), getattr(fit, f"{model}_se")
        assert estimate == pytest.approx(ref.estimate, rel=1e-6, abs=1e-8)
        if dataset == "separated" and model == "slope":
            # under separation the sandwich is no guide (R's is a third of the model-based SE)
            assert ref.se_cluster < ref.se_model / 3
            assert math.isnan(se) and "clustered CI not estimable" in fit.note
            continue
        assert se == pytest.approx(ref.se_cluster, rel=1e-6)
        low, high = getattr(fit, f"{model}_low"), getattr(fit, f"{model}_high")
        assert (low, high) == pytest.approx((estimate - 1.959964 * se, estimate + 1.959964 * se))


@pytest.mark.parametrize("method", ["ml", "firth"])
def test_one_image_per_patient_gives_the_unclustered_hc1_se(method):
    """The independent counterpart of a sandwich is the robust HC1 SE, not the model-based SE."""
    part = _part("singletons")
    fit = calibration_fit_clustered(part.y, part.prob, part.patient, method=method)
    for model in ("intercept", "slope"):
        ref = _reference("singletons", model, method)
        assert getattr(fit, f"{model}_se") == pytest.approx(ref.se_hc1, rel=1e-6)
        assert abs(ref.se_hc1 - ref.se_model) > 0.02  # and that is not the model-based SE


def test_singletons_match_statsmodels_hc1_on_fresh_data():
    import statsmodels.api as sm

    rng = np.random.default_rng(11)
    p = expit(rng.normal(0, 1.3, 200))
    y = (rng.random(200) < expit(0.3 + 0.7 * logit(p))).astype(int)
    fit = calibration_fit_clustered(y, p, np.arange(200))
    X = sm.add_constant(logit(p))
    # statsmodels' GLM applies no n/(n-k) under cov_type "HC1" (its HC1 equals its HC0 there),
    # so HC1 is its HC0 times n/(n-k), as R's vcovHC(type = "HC1") (the stored check above)
    hc0 = sm.GLM(y, X, family=sm.families.Binomial()).fit(cov_type="HC0")
    assert fit.slope_se == pytest.approx(hc0.bse[1] * math.sqrt(200 / 198), rel=1e-8)
    assert fit.slope == pytest.approx(calibration_fit(y, p).slope, abs=1e-8)


def test_sandwich_by_hand_equals_statsmodels_cluster_at_the_ml_estimate():
    import statsmodels.api as sm

    part = _part("patient_label")
    codes = pd.factorize(part.patient)[0]
    X = sm.add_constant(logit(part.prob.to_numpy()))
    fit = sm.GLM(part.y.to_numpy(), X, family=sm.families.Binomial()).fit(
        cov_type="cluster", cov_kwds={"groups": codes}
    )
    ours = cluster_sandwich(part.y, X, fit.params, part.patient)
    np.testing.assert_allclose(ours, fit.cov_params(), rtol=1e-10)


@pytest.mark.parametrize("dataset", ["patient_label", "image_label", "singletons", "separated"])
def test_brier_ci_matches_r_survey(dataset):
    part = _part(dataset)
    ref = _reference(dataset, "brier", "survey")
    result = brier_score_clustered(part.y, part.prob, part.patient)
    assert result.value == pytest.approx(ref.estimate, rel=1e-12)
    assert result.se == pytest.approx(ref.se_cluster, rel=1e-10)
    assert (result.low, result.high) == pytest.approx((ref.low, ref.high), rel=1e-10)


@pytest.mark.parametrize("seed", range(4))
def test_brier_with_one_image_per_patient_is_the_independent_ci(seed):
    rng = np.random.default_rng(seed)
    p = rng.random(50)
    y = (rng.random(50) < p).astype(int)
    clustered = brier_score_clustered(y, p, [f"P-{i}" for i in range(50)])
    plain = brier_score(y, p)
    assert (clustered.low, clustered.high) == pytest.approx((plain.low, plain.high), rel=1e-12)


def test_clustered_estimates_are_calibration_fits():
    part = _part("image_label")
    for method in ("ml", "firth"):
        plain = calibration_fit(part.y, part.prob, method=method)
        clustered = calibration_fit_clustered(part.y, part.prob, part.patient, method=method)
        assert clustered.slope == pytest.approx(plain.slope, abs=1e-7)
        assert clustered.intercept == pytest.approx(plain.intercept, abs=1e-7)


def test_degenerate_inputs_are_not_estimable_with_the_reason():
    y, p = np.array([1, 1, 1]), np.array([0.2, 0.5, 0.9])
    fit = calibration_fit_clustered(y, p, ["a", "a", "b"])
    assert math.isnan(fit.slope) and fit.note == "not estimable: one class only (3 events of 3)"
    fit = calibration_fit_clustered([0, 1, 0, 1], [0.2, 0.6, 0.4, 0.7], ["a"] * 4)
    assert math.isnan(fit.intercept_se) and "one patient" in fit.note
    brier = brier_score_clustered([0, 1], [0.3, 0.6], ["a", "a"])
    assert math.isnan(brier.low) and "one patient" in brier.note
    exact = brier_score_clustered([0, 1, 0, 1], [0.0, 1.0, 0.0, 1.0], ["a", "a", "b", "b"])
    assert exact.value == 0 and math.isnan(exact.se) and "SE 0" in exact.note


def test_bad_groups_are_refused():
    with pytest.raises(ValueError, match="2 patient ids for 3 images"):
        brier_score_clustered([0, 1, 0], [0.1, 0.2, 0.3], ["a", "b"])
    with pytest.raises(ValueError, match=r"missing patient id at rows \[1\]"):
        calibration_fit_clustered([0, 1, 0], [0.1, 0.2, 0.3], ["a", None, "b"])


def test_calibration_table_prints_clustered_cis_with_the_independent_beside():
    from mskdx.evaluate import clinical

    part = _part("patient_label").rename(columns={"y": "label"})
    preds = part.assign(arm="a", subset="test", image_id=[f"I-{i:06d}" for i in range(len(part))])
    plain = clinical.calibration_table({"development": preds})
    table = clinical.calibration_table(
        {"development": preds}, levels=("image", "patient"), clustered=True
    )
    image = table[table.level == "image"].iloc[0]
    assert image.patients == 60 and image.n == 303
    assert image.slope_ci_independent == plain.iloc[0].slope_ci
    fit = calibration_fit_clustered(part.label, part.prob, part.patient)
    assert image.slope_ci == f"[{fit.slope_low:.3f}, {fit.slope_high:.3f}]"
    assert image.brier_ci != image.brier_ci_independent
    # at the patient level each patient is one row: the clustered Brier CI is the plain one
    patient = table[table.level == "patient"].iloc[0]
    assert patient.patients == patient.n == 60
    assert patient.brier_ci == patient.brier_ci_independent
