"""Precision and sample size (issue 37): design effects against R's survey, Riley's minimum
sample size against the R package pmsampsize's own expected values."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mskdx.evaluate.precision import (
    design_effect,
    precision_markdown,
    precision_table,
    riley_sample_size,
)
from mskdx.evaluate.stats.hanley import hanley_mcneil_se
from mskdx.evaluate.stats.proportions import wilson_ci

DATA = Path(__file__).resolve().parents[1] / "data"

# pmsampsize 1.1.3 (Ensor, Martin & Riley; CRAN), tests/testthat/test_bin.R: for
# pmsampsize(type = "b", csrsquared, parameters, prevalence) the sample sizes of criteria 1, 2,
# 3 and the final one, and the final EPP. The first is the worked example of Riley et al. 2019
# (Stat Med 38:1276, part II: a diagnostic model for Chagas disease, "an EPP of at least 4.8")
# and of the package's help page: 662 participants, 662 * 0.174 = 115.2 events, printed by
# pmsampsize as ceiling(115.2) = 116. (R's pmsampsize is not packaged for Debian and CRAN is not
# reachable here; the PyPI port pmsampsize 0.1.0 copies the R code line by line and is not an
# independent check, so it is not used.)
PMSAMPSIZE = [
    # r2_cs, parameters, prevalence, (n1, n2, n3, final), final EPP
    (0.288, 24, 0.174, (623, 662, 221, 662), 4.8),
    (0.55, 24, 0.174, (255, 532, 221, 532), 3.86),
    (0.288, 36, 0.174, (934, 992, 221, 992), 4.79),
    (0.288, 24, 0.25, (623, 590, 289, 623), 6.49),
]


@pytest.mark.parametrize(("r2", "p", "prevalence", "sizes", "epp"), PMSAMPSIZE)
def test_riley_sample_size_matches_pmsampsize(r2, p, prevalence, sizes, epp):
    result = riley_sample_size(r2, p, prevalence)
    got = (result.n_shrinkage, result.n_optimism, result.n_overall_risk, result.n_required)
    assert got == sizes
    assert result.epp == epp
    assert result.events_required == math.ceil(sizes[3] * prevalence)
    table = result.table()
    assert table["n"].tolist() == list(sizes)
    assert table["epp"].iloc[-1] == epp


def test_riley_worked_example_and_its_r2():
    result = riley_sample_size(0.288, 24, 0.174)
    assert (result.n_required, result.events_required) == (662, 116)
    # pmsampsize's Max_Rsq and Nag_Rsq columns for this example: 0.603 and 0.477
    assert round(result.max_r2_cs, 3) == 0.603 and round(result.r2_nagelkerke, 3) == 0.477
    assert result.shrinkage_expected == pytest.approx(0.905, abs=5e-4)


def test_riley_refuses_impossible_inputs():
    with pytest.raises(ValueError, match=r"the largest Cox-Snell R2 at prevalence 0.05"):
        riley_sample_size(0.4, 10, 0.05)
    with pytest.raises(ValueError, match="parameters=2.5"):
        riley_sample_size(0.2, 2.5, 0.3)
    with pytest.raises(ValueError, match="prevalence=1"):
        riley_sample_size(0.2, 5, 1)


def test_design_effect_matches_r_survey():
    data = pd.read_csv(DATA / "calibration_clustered_input.csv")
    ref = pd.read_csv(DATA / "calibration_clustered_reference.csv")
    ref = ref[ref.model.str.startswith("deff_")]
    assert len(ref) == 8
    for row in ref.itertuples():
        part = data[(data.dataset == row.dataset) & (data.y == (row.model == "deff_positive"))]
        correct = ((part.prob > 0.5) == (part.y == 1)).astype(float)
        ours = design_effect(part.patient, correct)
        if math.isnan(row.estimate):  # every image correct: no variance, no design effect
            assert math.isnan(ours)
        else:
            assert ours == pytest.approx(row.estimate, rel=1e-10)


def _cohort(patients: int, images: int, seed: int, sd: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for arm in ("a", "b"):
        for g in range(patients):
            label, u = g % 2, rng.normal(0, sd)
            for _ in range(images):
                prob = 1 / (1 + np.exp(-(-1 + 2 * label + u + rng.normal(0, 0.5))))
                rows.append({"arm": arm, "patient": f"P-{g:04d}", "label": label, "prob": prob})
    frame = pd.DataFrame(rows)
    frame["call"] = (frame["prob"] > 0.5).astype(int)
    return frame


def test_one_image_per_patient_gives_the_independent_intervals():
    frame = _cohort(120, 1, seed=1)
    table = precision_table({"development": frame})
    row = table[table.arm == "a"].iloc[0]
    assert row.deff_positive == pytest.approx(1.0) and row.deff_negative == pytest.approx(1.0)
    part = frame[frame.arm == "a"]
    pos = part[part.label == 1]
    k = int((pos.call == 1).sum())
    low, high = wilson_ci(k, len(pos))
    assert row.sen_half_width == pytest.approx((high - low) / 2, rel=1e-9)
    expected_auc = 1.959964 * hanley_mcneil_se(row.auc, 60, 60)
    assert row.auc_half_width == pytest.approx(expected_auc, rel=1e-6)
    assert row.n_required_overall_risk == math.ceil((1.96 / 0.05) ** 2 * 0.25)
    assert pd.isna(row.events_reach_100)


def test_clustered_images_shrink_the_effective_n_and_widen_the_intervals():
    frame = _cohort(60, 6, seed=2, sd=1.5)
    table = precision_table({"development": frame, "site B": frame}, external=["site B"])
    row = table[(table.cohort == "development") & (table.arm == "a")].iloc[0]
    assert row.deff_positive > 1.5 and row.deff_negative > 1.5
    assert row.n_eff_positive == pytest.approx(180 / row.deff_positive)
    naive = precision_table({"development": frame}, deff=1.0).iloc[0]
    assert naive.deff_source == "given" and naive.n_eff_positive == 180
    assert row.sen_half_width > 1.2 * naive.sen_half_width
    assert row.auc_half_width > 1.2 * naive.auc_half_width
    external = table[table.cohort == "site B"].iloc[0]
    assert (external.events, external.non_events) == (30, 30)
    assert not external.events_reach_100
    assert pd.isna(external.n_required_overall_risk)
    plan = riley_sample_size(0.288, 24, 0.174)
    planned = precision_table({"development": frame}, riley=plan).iloc[0]
    assert planned.n_required_riley == 662 and not planned.riley_met
    text = precision_markdown(table)
    assert f"{row.sen:.3f} ± {row.sen_half_width:.3f}" in text and "Collins" in text


def test_bad_predictions_are_refused_with_the_cohort_and_rows():
    frame = _cohort(10, 2, seed=3)
    with pytest.raises(ValueError, match=r"cohort 'dev': predictions lack columns \['call'\]"):
        precision_table({"dev": frame.drop(columns="call")})
    bad = frame.copy()
    bad.loc[3, "label"] = 2
    with pytest.raises(
        ValueError, match=r"column 'label' holds values other than 0/1 at rows \[3\]"
    ):
        precision_table({"dev": bad})
    mixed = frame.copy()
    mixed.loc[0, "label"] = 1 - mixed.loc[0, "label"]
    with pytest.raises(ValueError, match="P-0000 .arm a. has images of both labels"):
        precision_table({"dev": mixed})
    with pytest.raises(ValueError, match=r"external cohorts \['x'\]: not among \['dev'\]"):
        precision_table({"dev": frame}, external=["x"])


def test_image_labels_count_images_and_diagnoses_count_patients():
    """With an image sheet a gout patient's lesion-free images are negative images, yet the
    patient stays an event: events come from patient_label, the image classes from label."""
    frame = _cohort(20, 4, seed=4).assign(patient_label=lambda f: f["label"])
    normal = (frame["label"] == 1) & (frame.groupby(["arm", "patient"]).cumcount() == 0)
    frame.loc[normal | (frame["patient"] == "P-0001"), "label"] = 0  # P-0001: no lesion seen
    row = precision_table({"development": frame}).query("arm == 'a'").iloc[0]
    assert (row.positive_images, row.negative_images) == (27, 53)
    assert (row.events, row.non_events) == (10, 10)
    mixed = frame.copy()
    mixed.loc[0, "patient_label"] = 1 - mixed.loc[0, "patient_label"]
    with pytest.raises(ValueError, match="P-0000 .arm a. has images of both labels"):
        precision_table({"dev": mixed})
