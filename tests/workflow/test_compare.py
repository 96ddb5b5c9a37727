"""Subgroups, the failure gallery and Table I's companion in the tiny run (issue 25)."""

from __future__ import annotations

import pandas as pd
import pytest

pytestmark = pytest.mark.workflow


def test_subgroup_tables_cover_scanner_site_sex_and_age(tiny_run):
    for study in ("gout", "olt"):
        table = pd.read_csv(tiny_run / f"results/{study}/tables/subgroups.csv")
        assert set(table.variable) == {"site", "scanner", "sex", "age_band"}
        assert {"development", "site_b"} <= set(table.cohort)
        shown = table[table.group != "suppressed"]
        assert (shown.patients >= 5).all()  # evaluate.subgroups.min_patients default
        text = (tiny_run / f"results/{study}/tables/subgroups.md").read_text()
        assert "not shown" in text and "MRN" not in text
    manifest = pd.read_csv(tiny_run / "results/gout/cache/manifest.csv")
    assert manifest.model.nunique() >= 2  # the synthetic devices name their scanners
    assert set(manifest.age_band.dropna()) and not manifest.age_band.str.contains("/").any()


def test_failure_gallery_and_repeats_table(tiny_run):
    for study in ("gout", "olt"):
        assert (tiny_run / f"results/{study}/figures/failures.png").stat().st_size > 1000
        failures = pd.read_csv(tiny_run / f"results/{study}/tables/failures.csv")
        assert set(failures.kind) <= {"FP", "FN"}
        assert failures.image_id.str.fullmatch(r"I-[0-9a-f]{12}").all()
    repeats = pd.read_csv(tiny_run / "results/gout/tables/table1_repeats.csv")
    assert repeats.best.sum() == 1 and len(repeats) == 4
