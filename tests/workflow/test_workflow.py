"""End-to-end: the tiny config through every stage, outputs checked against their schemas."""

from __future__ import annotations

import pandas as pd
import pytest

from mskdx.io import read_table

from .conftest import snakemake

pytestmark = pytest.mark.workflow


def test_every_final_output_exists(tiny_run):
    dry = snakemake(tiny_run, "-n")
    assert "Nothing to be done" in dry.stdout + dry.stderr
    tables = sorted(p.relative_to(tiny_run) for p in (tiny_run / "results").rglob("tables/*.csv"))
    names = {p.name for p in tables}
    assert {
        "table1_image_level.csv",
        "table2_complexity.csv",
        "table2_performance.csv",
        "localisation.csv",
    } <= names
    assert (tiny_run / "results/paper_check.csv").stat().st_size > 0
    for fig in (tiny_run / "results").rglob("figures/*.png"):
        assert fig.stat().st_size > 1000, fig


def test_exchanged_tables_follow_their_schemas(tiny_run):
    for study in ("gout", "olt"):
        manifest = read_table(tiny_run / f"results/{study}/cache/manifest.csv", "manifest")
        splits = read_table(tiny_run / f"results/{study}/splits/splits.csv", "splits")
        assert set(manifest.patient) == set(splits.patient)
        for path in (tiny_run / f"results/{study}/models").rglob("predictions.csv"):
            preds = read_table(path, "predictions")
            assert set(preds.image_id) <= set(manifest.image_id)
        for path in (tiny_run / f"results/{study}/models").rglob("history.csv"):
            read_table(path, "history")


def test_gout_tables_cover_every_arm(tiny_run):
    table1 = pd.read_csv(tiny_run / "results/gout/tables/table1_image_level.csv")
    assert {"blocks2", "blocks3", "blocks4", "blocks6"} <= set(table1.astype(str).stack())
    # issue 37: clustered columns, the independent ones beside them, the named reference, Holm
    assert (table1.reference_arm == "blocks3").all()
    for column in ("auc_low", "auc_low_independent", "acc_deff", "p_auc", "p_auc_adjusted",
                   "p_acc_independent", "n_patients"):  # fmt: skip
        assert column in table1.columns, column
    pooled = table1[table1.fold.astype(str) == "pooled"]
    others = pooled[~pooled.is_reference]
    assert len(others) == 3 and (others.p_acc_adjusted >= others.p_acc - 1e-12).all()
    text = (tiny_run / "results/gout/tables/table1_image_level.md").read_text()
    assert "Reference: blocks3 (named in advance)" in text and "Design effect" in text
    olt = (tiny_run / "results/olt/tables/table2_performance.md").read_text()
    assert "No paired test between the arms" in olt
