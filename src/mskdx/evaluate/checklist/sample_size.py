"""The checklist's sample-size items, filled from the precision table (issue 37).

CLAIM 2024 item 21 ("intended sample size and how it was determined") and TRIPOD+AI item 10
("how the study size was arrived at and why it suffices") are the authors' to answer: only
they know how the cohort was planned. What the run can add is what the cohort it was given
achieves: its effective size under clustering, the precision of its estimates, whether each
external cohort reaches the commonly required 100 events, and Riley et al.'s criteria for the
development cohort (`mskdx.evaluate.precision.precision_table`). `fill_sample_size_items` adds
that text to the two items' evidence and marks them "partly": the run reports the achieved
precision, the authors the intended size and its rationale.
"""

from __future__ import annotations

import math

import pandas as pd

from mskdx.evaluate.precision import EVENTS_MINIMUM

#: (guideline, item) of the sample-size items
ITEMS = (("CLAIM 2024", "21"), ("TRIPOD+AI", "10"))
WHERE = "results/{study}/tables/precision.csv"


def _span(values: pd.Series, digits: int = 3) -> str:
    values = values.dropna()
    if values.empty:
        return "not estimable"
    low, high = values.min(), values.max()
    if math.isclose(low, high):
        return f"±{low:.{digits}f}"
    return f"±{low:.{digits}f} to ±{high:.{digits}f}"


def _cohort_text(cohort: str, rows: pd.DataFrame) -> str:
    first = rows.iloc[0]
    deff = pd.concat([rows["deff_positive"], rows["deff_negative"]]).dropna()
    deff_text = (
        f"design effect {deff.min():.2f}-{deff.max():.2f}" if len(deff) else "design effect n/a"
    )
    text = (
        f"{cohort}: {first.n_images} images of {first.n_patients} patients "
        f"({first.events} positive, {first.non_events} negative); {deff_text}, effective "
        f"{rows['n_eff_positive'].min():.0f}-{rows['n_eff_positive'].max():.0f} positive and "
        f"{rows['n_eff_negative'].min():.0f}-{rows['n_eff_negative'].max():.0f} negative images; "
        f"95% CI half-widths over {len(rows)} arm{'s' if len(rows) > 1 else ''}: AUC "
        f"{_span(rows['auc_half_width'])}, SEN {_span(rows['sen_half_width'])}, SPE "
        f"{_span(rows['spe_half_width'])}"
    )
    if bool(first.external):
        reached = "reaches" if bool(first.events_reach_100) else "does not reach"
        text += (
            f"; {reached} the {EVENTS_MINIMUM} events and non-events commonly required for "
            "external validation (Collins et al. 2016)"
        )
    else:
        # counts read back from the CSV are floats where another row is blank
        needed = int(first.n_required_overall_risk)
        text += (
            f"; Riley et al.'s overall-risk criterion needs {needed} patients "
            f"({first.n_patients} here)"
        )
        if not pd.isna(first.get("n_required_riley", pd.NA)):
            met = "met" if bool(first.riley_met) else "not met"
            text += f", their full minimum {int(first.n_required_riley)} ({met})"
    return text


def sample_size_evidence(precision: pd.DataFrame) -> str:
    """One sentence per cohort from `precision_table`'s output, development first."""
    order = sorted(precision["cohort"].unique(), key=lambda c: (c != "development", c))
    return "; ".join(
        _cohort_text(c, precision[precision["cohort"] == c].sort_values("arm")) for c in order
    )


def fill_sample_size_items(
    checklist: pd.DataFrame, precision: pd.DataFrame, study: str
) -> pd.DataFrame:
    """Return `checklist` (`fill.checklist_table`'s) with the sample-size items filled.

    Their evidence gets the precision sentence after what the item already says, `where` the
    precision table, and the status "partly" (was "authors").
    """
    out = checklist.copy()
    evidence = sample_size_evidence(precision)
    where = WHERE.replace("{study}", study)
    for guideline, item in ITEMS:
        hit = (out["guideline"] == guideline) & (out["item"] == item)
        if hit.sum() != 1:
            raise ValueError(
                f"checklist: {guideline} item {item} found {hit.sum()} times; expected 1"
            )
        index = out.index[hit][0]
        before = out.at[index, "evidence"]
        out.at[index, "evidence"] = f"{before}; {evidence}" if before else evidence
        before = out.at[index, "where"]
        out.at[index, "where"] = f"{before}; {where}" if before else where
        out.at[index, "status"] = "partly"
    return out
