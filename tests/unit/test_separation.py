"""Separation detected from the data; the calibration slope is NaN with the reason (issue 28)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mskdx.evaluate import clinical
from mskdx.evaluate.markdown import to_markdown
from mskdx.evaluate.stats.calibration import brier_score, calibration_fit
from mskdx.evaluate.stats.separation import detect_separation

COMPLETE = (
    np.r_[np.zeros(20, int), np.ones(20, int)],
    np.r_[np.linspace(0.05, 0.4, 20), np.linspace(0.6, 0.95, 20)],
)
# the probe: 37 predictions separated but for one tie at the boundary
QUASI = (
    np.r_[np.zeros(19, int), np.ones(18, int)],
    np.r_[np.linspace(0.02, 0.55, 18), 0.6, np.linspace(0.6, 0.99, 18)],
)


@pytest.mark.parametrize(
    ("y", "x", "kind", "direction"),
    [
        ([0, 0, 1, 1], [1, 2, 3, 4], "complete", 1),
        ([1, 1, 0, 0], [1, 2, 3, 4], "complete", -1),
        ([0, 0, 1, 1], [1, 2, 2, 4], "quasi-complete", 1),
        ([0, 0, 0, 1, 1], [1, 2, 2, 2, 3], "quasi-complete", 1),
        ([1, 0, 1, 0], [1, 2, 2, 4], "quasi-complete", -1),
        ([0, 1, 0, 1], [1, 2, 3, 4], "none", 0),
        ([0, 1], [0.5, 0.5], "constant", 0),
        ([0, 1], [0.2, 0.8], "complete", 1),  # one case per class is always separated
        ([1, 1, 1], [0.1, 0.2, 0.3], "one class", 0),
        ([0, 1, 1], [-math.inf, 0.0, math.inf], "complete", 1),  # logits of exactly 0 and 1
    ],
)
def test_detect_separation_by_the_order_of_the_classes(y, x, kind, direction):
    found = detect_separation(y, x)
    assert (found.kind, found.direction) == (kind, direction)
    assert found.estimable == (kind == "none")
    assert (found.reason() == "") == (kind == "none")


@pytest.mark.parametrize(("data", "kind"), [(COMPLETE, "complete"), (QUASI, "quasi-complete")])
def test_separated_slope_is_not_estimable_but_the_intercept_is(data, kind):
    fit = calibration_fit(*data)
    assert fit.separation == kind
    assert all(math.isnan(v) for v in (fit.slope, fit.slope_low, fit.slope_high))
    assert fit.note.startswith(f"slope not estimable: {kind} separation")
    assert "method firth gives a finite slope" in fit.note
    # calibration-in-the-large has a finite ML estimate whenever both classes occur
    assert fit.intercept_low < fit.intercept < fit.intercept_high
    assert all(math.isfinite(v) for v in (fit.intercept_low, fit.intercept_high))


def test_quasi_separation_statsmodels_does_not_warn_about():
    # the bug of issue 28: a fitter's warning missed this; the ML slope ran off to ~190
    import warnings

    import statsmodels.api as sm

    y, p = QUASI
    lp = np.log(p / (1 - p))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ml = sm.GLM(y, sm.add_constant(lp), family=sm.families.Binomial()).fit()
    assert ml.params[1] > 50  # meaningless, and nothing said so
    assert not any("separation" in str(w.message).lower() for w in caught)
    assert math.isnan(calibration_fit(y, p).slope)


def test_constant_and_two_case_calibration():
    const = calibration_fit([0, 1, 0, 1], [0.3] * 4)
    assert const.separation == "constant" and math.isnan(const.slope)
    assert const.note == "slope not estimable: constant logit(p): the slope is not identified"
    assert math.isfinite(const.intercept)
    for method in ("ml", "firth"):
        assert math.isnan(calibration_fit([0, 1, 0, 1], [0.3] * 4, method=method).slope)
        two = calibration_fit([0, 1], [0.2, 0.8], method=method)
        assert two.separation == "complete"
    assert math.isnan(calibration_fit([0, 1], [0.2, 0.8]).slope)
    reversed_ = calibration_fit([1, 0], [0.2, 0.8])
    assert "lies below" in reversed_.note and math.isnan(reversed_.slope)


def test_probabilities_of_exactly_0_or_1_are_named():
    y = [0, 0, 1, 0, 1, 1]
    fit = calibration_fit(y, [0.0, 0.2, 0.3, 0.6, 0.7, 1.0])
    assert math.isfinite(fit.slope)
    assert fit.note == "2 probabilities outside [1e-06, 1 - 1e-06] clipped before the logit"


def test_brier_ci_not_estimable_without_spread():
    one = brier_score([1], [0.7])
    assert one.value == pytest.approx(0.09) and math.isnan(one.low)
    assert one.note == "CI not estimable: one case, no standard error"
    exact = brier_score([0, 1, 1], [0.0, 1.0, 1.0])
    assert exact.value == 0.0 and math.isnan(exact.low) and math.isnan(exact.high)
    assert exact.note.startswith("CI not estimable: every squared error is 0")
    same = brier_score([0, 1], [0.5, 0.5])  # constant scores: every term 0.25
    assert same.value == 0.25 and math.isnan(same.high)
    ok = brier_score([0, 1, 1], [0.2, 0.6, 0.9])
    assert ok.low <= ok.value <= ok.high and ok.note == ""


def _demo_like() -> pd.DataFrame:
    """A T2 arm with AUC 1.000 (the demo's table) beside a T1 arm with overlap."""
    rng = np.random.default_rng(5)
    rows = []
    for arm, gap in (("T1", 0.0), ("T2", 0.5)):
        for i in range(40):
            label = int(i < 12)
            prob = float(np.clip(rng.uniform(0.3, 0.7) + (gap if label else -gap) * 0.8, 0, 1))
            rows.append(
                {
                    "arm": arm,
                    "patient": f"p{i}",
                    "image_id": f"{arm}{i}",
                    "label": label,
                    "prob": prob,
                    "subset": "test",
                }
            )
    return pd.DataFrame(rows)


def test_calibration_table_marks_separated_rows_in_csv_and_markdown():
    table = clinical.calibration_table({"development": _demo_like()}, ("image",))
    t2 = table[table.arm == "T2"].iloc[0]
    assert math.isnan(t2.slope) and t2.slope_ci == "not estimable"
    assert t2.note.startswith("slope not estimable: complete separation")
    assert t2.method == "ml"
    t1 = table[table.arm == "T1"].iloc[0]
    assert math.isfinite(t1.slope) and t1.slope_ci.startswith("[") and t1.note == ""
    md = to_markdown(table, "Calibration")
    line = next(x for x in md.splitlines() if "| T2 |" in x)
    assert "not estimable" in line and "complete separation" in line
    firth = clinical.calibration_table({"development": _demo_like()}, ("image",), "firth")
    t2 = firth[firth.arm == "T2"].iloc[0]
    assert math.isfinite(t2.slope) and t2.method == "firth"
    assert t2.note.startswith("Firth slope under complete separation")


def test_an_ml_fit_that_stops_unconverged_is_not_printed(monkeypatch):
    import statsmodels.api as sm

    fit = sm.GLM.fit
    monkeypatch.setattr(sm.GLM, "fit", lambda self, **kw: fit(self, maxiter=1, **kw))
    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.95, 50)
    res = calibration_fit(rng.binomial(1, p), p)
    assert res.separation == "none" and math.isnan(res.slope) and math.isnan(res.intercept)
    assert res.note == (
        "intercept not estimable: the ML intercept fit did not converge; "
        "slope not estimable: the ML slope fit did not converge"
    )
