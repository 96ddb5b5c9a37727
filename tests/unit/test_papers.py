"""Tests of mskdx.evaluate.papers: the printed numbers and the check of them against each other.

The expected numbers below were recomputed by hand from the papers' text (Xiao et al. 2025,
Dabiry et al. 2026), not read from the check's output.
"""

from __future__ import annotations

import copy
import dataclasses
import re

import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from mskdx.evaluate.papers import printed as papers
from mskdx.evaluate.papers.check import paper_check, summarise_grades, write_paper_check
from mskdx.evaluate.papers.common import (
    COLUMNS,
    CONSISTENT,
    GRADES,
    INCONSISTENT,
    UNEXPLAINED,
    CheckRows,
    binomial_intervals,
    near_miss,
)
from mskdx.evaluate.papers.gout import (
    check_gout_abstract,
    check_gout_claims,
    check_gout_cohort,
    check_gout_gradcam,
    check_gout_gradcam_vs_table1,
    check_gout_table1_rates,
)
from mskdx.evaluate.papers.gout_patients import (
    check_gout_copied_folds,
    check_gout_diagnosis_vs_table3,
    check_gout_threshold_grid,
    fold_compositions,
)
from mskdx.evaluate.papers.gout_pvalues import check_gout_mcnemar, mcnemar_fits
from mskdx.evaluate.papers.olt import check_olt_rates_vs_table2, check_olt_split_unit
from mskdx.evaluate.papers.printed import Cell, PrintedAuc
from mskdx.evaluate.stats.proportions import wilson_ci


@pytest.fixture(scope="module")
def check():
    return paper_check()


def _row(check, text):
    hits = check[check["quantity"].str.contains(text, regex=False)]
    assert len(hits) == 1, (text, hits["quantity"].tolist())
    return hits.iloc[0]


def _absent(check, text):
    assert not check["quantity"].str.contains(text, regex=False).any(), text


# ---------------------------------------------------------------------------------------------
# Package layout
# ---------------------------------------------------------------------------------------------


def test_the_printed_numbers_do_not_load_the_check():
    import mskdx.evaluate.papers as package

    assert papers.gout_table2()[3] == {"params_m": 4.91, "macs_m": 2963.73}
    assert not hasattr(package, "paper_check")  # the check is imported on its own


def test_tables_no_longer_hold_the_check():
    import mskdx.evaluate.tables

    assert not hasattr(mskdx.evaluate.tables, "paper_check")
    assert "paper_check" not in mskdx.evaluate.tables.__all__


# ---------------------------------------------------------------------------------------------
# Table and helpers
# ---------------------------------------------------------------------------------------------


def test_paper_check_columns(check):
    assert (
        list(check.columns)
        == COLUMNS
        == [
            "paper",
            "quantity",
            "printed",
            "recomputed",
            "method",
            "grade",
            "consistent",
            "note",
        ]
    )
    assert check["consistent"].dtype == bool
    assert set(check["grade"]) == set(GRADES)
    assert (check["consistent"] == (check["grade"] == CONSISTENT)).all()
    assert set(check["paper"]) == {"gout", "olt"}
    assert (check["recomputed"].str.len() > 0).all()
    assert not check["quantity"].duplicated().any()
    assert check["consistent"].any() and not check["consistent"].all()
    # every flag explains itself
    assert (check.loc[~check["consistent"], "note"].str.len() > 0).all()


def test_binomial_intervals_are_the_statsmodels_ones():
    intervals = binomial_intervals(89, 91, 1.0)
    assert list(intervals) == ["Wilson", "Wald", "Clopper-Pearson"]
    assert intervals["Wilson"] == pytest.approx(wilson_ci(89, 91))
    # Wald: 0.978 +- 1.96 x 0.0154 = [0.948, 1.008], clipped to [0, 1]
    assert intervals["Wald"] == pytest.approx((0.9478, 1.0), abs=1e-4)
    assert intervals["Wald"] == pytest.approx(proportion_confint(89, 91, method="normal"))
    assert intervals["Clopper-Pearson"] == pytest.approx(proportion_confint(89, 91, method="beta"))
    assert binomial_intervals(89, 91, 100.0)["Wilson"][0] == pytest.approx(
        100 * wilson_ci(89, 91)[0]
    )


def test_interval_row_judges_the_stated_method_and_names_the_missing_bound():
    rows = CheckRows()
    # 89/91: Wald [0.948, 1.008 -> 1.00] gives the printed [0.95, 1.00]; Wilson [0.923, 0.994]
    reproduced = rows.interval("x", "q", Cell("0.95"), Cell("1.00"), 89, 91, False, "Wilson")
    assert reproduced == ["Wald"]
    row = rows.rows[-1]
    assert not row["consistent"]
    assert "reproduced by Wald, not by the stated Wilson" in row["note"]
    assert "lower bound misses: printed 0.95, Wilson 0.923, printed is 0.027 higher" in row["note"]
    assert "upper bound misses: printed 1.00, Wilson 0.994, printed is 0.006 higher" in row["note"]
    # without a stated method any standard interval that reproduces it will do
    rows.interval("x", "q2", Cell("0.95"), Cell("1.00"), 89, 91, False)
    assert rows.rows[-1]["consistent"] and rows.rows[-1]["note"] == "reproduced by Wald"


def _brute_force_compositions(row, max_gout, max_control):
    """Every (P, N, TP, TN) whose ACC/SEN/SPE round to the row: all counts tried, no shortcut."""
    acc, sen, spe = row["acc"], row["sen"], row["spe"]
    pos = [
        (p, tp) for p in range(1, max_gout + 1) for tp in range(p + 1) if sen.agrees(100 * tp / p)
    ]
    neg = [
        (n, tn)
        for n in range(1, max_control + 1)
        for tn in range(n + 1)
        if spe.agrees(100 * tn / n)
    ]
    return sorted(
        (p, n, tp, tn) for p, tp in pos for n, tn in neg if acc.agrees(100 * (tp + tn) / (p + n))
    )


def test_no_fold_composition_reproduces_table3_with_the_stated_totals():
    """Exhaustive, independently of the check: Table III's per-fold percentages admit only
    multiples of 23 gout + 15 control patients (16 control in fold 1), so folds of 51-53
    patients are impossible and five folds never add up to 149 + 111 = 260."""
    gout = papers.GOUT
    max_gout, max_control = gout["patients_gout"], gout["patients_control"]
    reach = {(0, 0)}
    for name, row in papers.GOUT_TABLE3.items():
        if name == "average":
            continue
        found = _brute_force_compositions(row, max_gout, max_control)
        assert found == fold_compositions(row["acc"], row["sen"], row["spe"], max_gout, max_control)
        control_unit = 16 if name == "Fold 1" else 15
        assert {(p, n) for p, n, _, _ in found} == {(23 * m, control_unit * m) for m in range(1, 7)}
        assert not any(51 <= p + n <= 53 for p, n, _, _ in found)
        reach = {
            (a + p, b + n)
            for a, b in reach
            for p, n, _, _ in found
            if a + p <= max_gout and b + n <= max_control
        }
    assert reach == {(115, 76), (138, 91), (138, 92)}
    assert (149, 111) not in reach


# ---------------------------------------------------------------------------------------------
# Corrected and removed flags
# ---------------------------------------------------------------------------------------------


def test_weak_flags_are_gone(check):
    # an asymmetric AUC CI is no inconsistency: the paper never says how its AUC CIs were made
    _absent(check, "AUC CI centred")
    assert not check["note"].str.contains("asymmetric").any()
    # Hanley-McNeil was not used by the OLT paper: no mismatch row of its own
    _absent(check, "Hanley-McNeil")
    assert check["quantity"].str.contains("AUC 95% CI").sum() == 4  # method + Wilson, T1 and T2
    # 51 of 260 patients in a fold is 'approximately equal' (209 + 51 = 260)
    row = _row(check, "testing patients per fold")
    assert row["consistent"] and "209 + 51 = 260" in row["note"]
    # the 'average' rows: said once, as wording
    _absent(check, "Table III average ACC")
    _absent(check, "pooled over the reconstructed folds")
    assert check["note"].str.contains("wording").sum() == 1
    # the test-image count mismatch is said once for Table I, not once per arm
    assert check["quantity"].str.contains("SEN n + SPE n", regex=False).sum() == 1
    # the abstract's 91.1 is the text's 91.10, not a second flag of 46/51
    row = _row(check, "diagnostic accuracy: abstract vs text")
    assert row["consistent"]


def test_average_row_is_a_wording_issue_said_once(check):
    row = _row(check, "Table III 'average' row")
    assert row["consistent"]
    assert row["printed"] == "91.10 / 93.91 / 86.84"
    # mean of the five fold values vs the smallest per-fold counts pooled (174/191 ...)
    assert "mean of the folds 91.09 / 93.91 / 86.83" in row["recomputed"]
    assert "91.10 (174/191) / 93.91 (108/115) / 86.84 (66/76)" in row["recomputed"]
    assert "a wording issue, not a wrong number" in row["note"]
    assert _row(check, "Table III average threshold")["consistent"]


def test_table3_fold_compositions_flag(check):
    row = _row(check, "Table III folds vs 149 gout + 111 control patients")
    assert not row["consistent"]
    for total in ("115 + 76 = 191", "138 + 91 = 229", "138 + 92 = 230"):
        assert total in row["recomputed"]
    assert "Fold 1: 23 + 16" in row["recomputed"] and "Fold 2: 23 + 15" in row["recomputed"]
    assert "0 of 5 folds can hold 51 to 53 patients" in row["recomputed"]
    assert "no fold composition reproduces Table III's per-fold percentages" in row["note"]
    assert "149 + 111 = 260" in row["note"]
    for fold in range(1, 6):
        assert _row(check, f"Table III Fold {fold}: patient counts")["consistent"]


def test_every_ci_flag_names_the_bound_and_the_size_of_the_miss(check):
    ci_rows = check[
        check["quantity"].str.contains("95% CI", regex=False)
        & ~check["quantity"].str.contains("AUC", regex=False)
        & ~check["consistent"]
    ]
    assert len(ci_rows) >= 15
    pattern = re.compile(
        r"(lower|upper) bound misses: printed [\d.]+, \S+ [\d.]+, printed is [\d.]+ (higher|lower)"
    )
    for _, row in ci_rows.iterrows():
        assert pattern.search(row["note"]), (row["quantity"], row["note"])
        assert "reproduced" in row["note"]


def test_table1_ci_flags(check):
    row = _row(check, "Table I 3 blocks ACC 95% CI")
    assert not row["consistent"]
    assert row["recomputed"].startswith("Wilson [79.3, 86.6]; Wald [79.6, 86.9]")
    assert "the paper names no CI method" in row["method"]
    assert "reproduced by none of Wilson, Wald, Clopper-Pearson" in row["note"]
    assert "lower bound misses: printed 81.2, Wilson 79.33, printed is 1.87 higher" in row["note"]
    assert "upper bound misses: printed 85.4, Wilson 86.62, printed is 1.22 lower" in row["note"]
    row = _row(check, "Table I 4 blocks SPE 95% CI")
    assert "printed is 3.11 lower" in row["note"] and "printed is 4.52 higher" in row["note"]


def test_olt_accuracy_ci_misses_only_its_lower_bound(check):
    row = _row(check, "T1 accuracy 95% CI")
    assert not row["consistent"]
    assert "the paper states Wilson" in row["method"]
    assert "lower bound misses: printed 88.3, Wilson 88.35, printed is 0.05 lower" in row["note"]
    assert "upper bound" not in row["note"]
    assert "88.354 rounds to 88.4" in row["note"]
    row = _row(check, "T2 accuracy 95% CI")
    assert row["consistent"] and row["note"] == "reproduced by Wilson"


def test_auc_method_flag_carries_hanley_mcneil_only_as_context(check):
    row = _row(check, "T1 AUC 95% CI method")
    assert not row["consistent"]
    assert "Hanley & McNeil" in row["note"] and "[0.86, 1.00]" in row["note"]
    row = _row(check, "T2 AUC 95% CI method")
    assert "[0.83, 0.99]" in row["note"]
    row = _row(check, "T1 AUC 95% CI: reproduced by Wilson on the AUC")
    assert row["consistent"] and "0.9321-0.9343" in row["recomputed"]
    assert _row(check, "T2 AUC 95% CI: reproduced by Wilson on the AUC")["consistent"]


# ---------------------------------------------------------------------------------------------
# New checks
# ---------------------------------------------------------------------------------------------


def test_table1_accuracy_from_sen_and_spe_counts(check):
    row = _row(check, "Table I: SEN n + SPE n = ACC n")
    assert not row["consistent"] and row["recomputed"] == "481"
    assert "80 more than ACC's 401" in row["note"]
    row = _row(check, "Table I 3 blocks ACC from its SEN and SPE counts")
    assert not row["consistent"]
    assert row["recomputed"] == "83.4 ((184 + 217) / (223 + 258) = 401/481)"
    assert "401/481 = 83.37; printed 83.3 is 0.07 lower" in row["note"]
    assert "401 correct vs ACC's 334, 481 images vs ACC's 401" in row["note"]
    row = _row(check, "Table I 6 blocks ACC from its SEN and SPE counts")
    assert not row["consistent"] and "395/481 = 82.12; printed 82.3 is 0.18 higher" in row["note"]
    # 399/481 = 82.95 rounds to the printed 83.0: the rate agrees, the counts do not
    row = _row(check, "Table I 4 blocks ACC from its SEN and SPE counts")
    assert row["consistent"] and "399 correct vs ACC's 333" in row["note"]


def test_test_set_class_mix_against_the_dataset(check):
    row = _row(check, "Table I test images: class mix")
    assert not row["consistent"]
    assert "223 gout + 258 control images (46.4% gout)" == row["printed"]
    assert "277.8 gout + 204.2 control (57.6% gout" in row["recomputed"]
    assert "54.8 images (19.7%) fewer than a fifth of 1389" in row["note"]
    assert "53.8 (26.3%) more than a fifth of 1021" in row["note"]
    assert "11.3 points apart" in row["note"]


def test_images_per_patient_against_at_least_ten(check):
    row = _row(check, "images per patient")
    assert not row["consistent"]
    assert row["recomputed"].startswith("2401 / 260 = 9.23")
    assert "1389 / 149 = 9.32" in row["recomputed"] and "1021 / 111 = 9.20" in row["recomputed"]
    assert "at least 2600 images, 199 more than the 2401 analysed" in row["note"]


def test_olt_ci_method_per_interval(check):
    expected = {
        "Table II (T1) patient precision 95% CI": (True, "reproduced by Wilson"),
        "Table II (T1) patient recall 95% CI": (True, "reproduced by Wilson"),
        "Table II (T1) healthy precision 95% CI": (False, "reproduced by none"),
        "Table II (T1) healthy recall 95% CI": (False, "reproduced by Wald, not by the stated"),
        "Table II (T2) patient precision 95% CI": (
            False,
            "reproduced by Clopper-Pearson, not by the stated Wilson",
        ),
        "Table II (T2) patient recall 95% CI": (True, "reproduced by Wilson"),
        "Table II (T2) healthy precision 95% CI": (False, "reproduced by Wald, not by the stated"),
        "Table II (T2) healthy recall 95% CI": (False, "reproduced by Wald, not by the stated"),
    }
    for quantity, (consistent, note) in expected.items():
        row = _row(check, quantity)
        assert row["consistent"] == consistent, quantity
        assert row["note"].startswith(note), (quantity, row["note"])
    row = _row(check, "Table II (T2) patient precision 95% CI")
    assert "lower bound misses: printed 0.46, Wilson 0.479, printed is 0.019 lower" in row["note"]
    assert "upper bound misses: printed 0.80, Wilson 0.785, printed is 0.015 higher" in row["note"]


def test_identical_healthy_precision_cis_from_different_counts(check):
    row = _row(check, "identical 95% CIs from different counts")
    assert "(T1) healthy precision and (T2) healthy precision" in row["quantity"]
    assert not row["consistent"]
    assert row["printed"] == "both [0.91, 0.99]"
    assert "89/94: Wilson [0.88, 0.98], Wald [0.90, 0.99]" in row["recomputed"]
    assert "94/99: Wilson [0.89, 0.98], Wald [0.91, 0.99]" in row["recomputed"]
    assert "only (T2) healthy precision is reproduced (Wald)" in row["note"]
    assert "lower bound misses: printed 0.91, Wald 0.901, printed is 0.009 higher" in row["note"]


def test_olt_images_per_scan_and_augmentation_statement(check):
    row = _row(check, "Table I T1: images per scan")
    assert row["consistent"]
    assert "2.72 per scan (OLT 120 / 60 = 2.00, healthy 475 / 159 = 2.99)" in row["recomputed"]
    assert "3.04 per scan" in _row(check, "Table I T2: images per scan")["recomputed"]
    row = _row(check, "vs on-the-fly augmentation")
    assert not row["consistent"]
    assert "T1: Table I total 595, of which 238 validation and test images" in row["recomputed"]
    assert "T2: Table I total 665, of which 266" in row["recomputed"]
    assert "not a result of augmentation" in row["note"]
    row = _row(check, "image planes: Methods vs Limitations")
    assert not row["consistent"] and "only axial" in row["printed"]


def test_diagnostic_cis(check):
    row = _row(check, "diagnostic accuracy (text, 46/51)")
    assert not row["consistent"] and row["recomputed"] == "90.20 (46/51)"
    assert "46/51 = 90.196; printed 91.10 is 0.904 higher" in row["note"]
    # the text's SEN CI is the mean +- 1.96 SD (n - 1) of Table III's fold values
    row = _row(check, "diagnostic SEN 95% CI")
    assert row["consistent"] and "mean +- 1.96 SD of the folds [89.2, 98.6]" in row["recomputed"]
    assert "not a CI of their mean" in row["note"]
    row = _row(check, "diagnostic SPE 95% CI")
    assert not row["consistent"] and "(66/76)" in row["recomputed"]
    row = _row(check, "diagnostic accuracy 95% CI")
    assert "lower bound misses: printed 90.4, Wilson 79.02, printed is 11.38 higher" in row["note"]


# ---------------------------------------------------------------------------------------------
# Flags kept
# ---------------------------------------------------------------------------------------------


def test_paper_check_flags_known_inconsistencies(check):
    row = _row(check, "gout images + control images = all images")
    assert row["recomputed"] == "2410" and not row["consistent"]
    row = _row(check, "Table I test images (ACC n)")
    assert not row["consistent"] and "2000 fewer than 2401, 79.2 fewer than 480.2" in row["note"]
    assert not _row(check, "threshold Fold 5: text vs Table III")["consistent"]
    row = _row(check, "text threshold average")
    assert not row["consistent"] and "mean of Table III's thresholds (0.328)" in row["note"]
    row = _row(check, "3 blocks differs significantly from 6 blocks")
    assert row["grade"] == INCONSISTENT and row["recomputed"] == "p_auc .14, p_acc .32"
    row = _row(check, "Table I 2 blocks ACC %")
    assert not row["consistent"] and "printed 82.6 is 0.06 higher" in row["note"]
    row = _row(check, "T2 specificity %")
    assert not row["consistent"] and "94/106 = 88.68; printed 89.0 is 0.32 higher" in row["note"]
    row = _row(check, "Table II (T1) Healthy row: accuracy cell")
    assert not row["consistent"] and "T2" in row["note"]
    row = _row(check, "Table II (T1) Healthy row: AUC cell")
    assert not row["consistent"] and "T2's AUC" in row["note"]
    assert "printed 0.91 is 0.020 lower than T1's 0.93" in row["note"]
    assert not _row(check, "statistically trails")["consistent"]
    row = _row(check, "false-negative reasons")
    assert row["grade"] == UNEXPLAINED and "7 more reasons than images" in row["note"]
    assert "overlapping categories" in row["note"]
    row = _row(check, "subject subfolders vs included scans")
    assert row["grade"] == UNEXPLAINED and "per series" in row["note"]


def test_paper_check_accepts_consistent_values(check):
    row = _row(check, "T1 accuracy %")
    assert row["consistent"] and row["recomputed"] == "94.1 (112/119)"
    assert _row(check, "T1 sensitivity %")["consistent"]
    assert _row(check, "Table I 3 blocks ACC %")["consistent"]
    assert _row(check, "Table I 3 blocks SEN %")["recomputed"] == "82.5 (184/223)"
    assert _row(check, "gout patients + control patients")["consistent"]
    assert _row(check, "training + testing patients")["consistent"]
    assert _row(check, "Grad-CAM dorsal")["recomputed"] == "66.67 (20/30)"
    assert _row(check, "Table II (T2) healthy F1")["consistent"]


# ---------------------------------------------------------------------------------------------
# Grades (issue 27): each check on the printed numbers, then on a doctored copy that changes
# its verdict, so that no check passes by construction
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def doctored(monkeypatch):
    """Deep copies of the printed numbers, patched into `printed` for the duration of a test."""
    copies = {}
    for name in ("GOUT", "GOUT_TABLE1", "GOUT_TABLE3", "OLT", "OLT_TABLE1"):
        copies[name] = copy.deepcopy(getattr(papers, name))
        monkeypatch.setattr(papers, name, copies[name])
    return copies


def _run(check_function, text=None):
    """The rows of one check (all of them, or the one whose quantity contains `text`)."""
    rows = CheckRows()
    check_function(rows)
    table = pd.DataFrame(rows.rows, columns=COLUMNS)
    return table if text is None else _row(table, text)


def test_every_row_is_graded_and_every_unexplained_row_names_a_method(check):
    assert set(check["grade"]) == {CONSISTENT, UNEXPLAINED, INCONSISTENT}
    unexplained = check[check["grade"] == UNEXPLAINED]
    assert len(unexplained) >= 15
    for _, row in unexplained.iterrows():
        assert row["note"], row["quantity"]


def test_summary_counts_inconsistent_and_unexplained_separately(check, tmp_path):
    summary = summarise_grades(check)
    counts = check["grade"].value_counts()
    assert summary.startswith(
        f"{len(check)} rows: {counts[CONSISTENT]} consistent, {counts[UNEXPLAINED]} unexplained, "
        f"{counts[INCONSISTENT]} inconsistent"
    )
    gout = check[check["paper"] == "gout"]
    assert (
        f"gout: {(gout['grade'] == INCONSISTENT).sum()} inconsistent, "
        f"{(gout['grade'] == UNEXPLAINED).sum()} unexplained" in summary
    )
    write_paper_check(tmp_path / "check.csv", tmp_path / "check.md")
    md = (tmp_path / "check.md").read_text()
    assert md.index(summary) < md.index("| paper | quantity |")
    assert "**unexplained**" in md and "| grade |" in md
    written = pd.read_csv(tmp_path / "check.csv")
    assert list(written.columns) == COLUMNS and set(written["grade"]) == set(GRADES)


def test_table1_intervals_narrower_are_inconsistent_wider_unexplained(check):
    for arm in ("2 blocks", "3 blocks", "4 blocks", "6 blocks"):
        # every ACC interval: at most 5.0 points wide where Wilson gives 7.3-7.5 for k/401
        row = _row(check, f"Table I {arm} ACC 95% CI")
        assert row["grade"] == INCONSISTENT and "narrower than every binomial" in row["note"]
        # every SPE interval is wider than all three binomial ones
        row = _row(check, f"Table I {arm} SPE 95% CI")
        assert row["grade"] == UNEXPLAINED and "patient-level bootstrap" in row["note"]
        assert "wider than every binomial interval" in row["note"]
    row = _row(check, "Table I 4 blocks SPE 95% CI")
    # [79.9, 95.6] is at least 15.6 wide; Wilson for 226/258 is 83.0-91.1 (8.06)
    assert "at least 15.60 wide" in row["note"] and "(1.9 times Wilson's)" in row["note"]
    assert _row(check, "Table I 4 blocks SEN 95% CI")["grade"] == UNEXPLAINED
    assert _row(check, "Table I 3 blocks SEN 95% CI")["grade"] == INCONSISTENT


def test_interval_grades_on_doctored_intervals():
    # 217/258 = 84.1%: Wilson [79.2, 88.1] (8.9 wide)
    cases = {
        ("78.3", "90.2"): (UNEXPLAINED, "wider than every binomial interval"),  # as printed
        ("81.0", "87.0"): (INCONSISTENT, "narrower than every binomial interval"),
        ("86.0", "95.0"): (INCONSISTENT, "excludes its own counts' rate 84.1"),
        ("79.2", "88.1"): (CONSISTENT, ""),
        ("80.5", "89.5"): (UNEXPLAINED, "placed elsewhere"),
    }
    for (low, high), (grade, text) in cases.items():
        rows = CheckRows()
        rows.interval("x", "q", Cell(low), Cell(high), 217, 258, True)
        assert rows.rows[-1]["grade"] == grade, (low, high, rows.rows[-1]["note"])
        assert text in rows.rows[-1]["note"]
    # reconstructed counts: narrower than their binomial intervals is only unexplained
    rows = CheckRows()
    rows.interval("x", "q", Cell("81.0"), Cell("87.0"), 217, 258, True, counts_printed=False)
    assert rows.rows[-1]["grade"] == UNEXPLAINED and "reconstructed" in rows.rows[-1]["note"]
    # a stated method missed, another reproducing: unexplained
    rows = CheckRows()
    rows.interval("x", "q", Cell("0.95"), Cell("1.00"), 89, 91, False, "Wilson")
    assert rows.rows[-1]["grade"] == UNEXPLAINED


def test_table1_interval_grade_follows_a_doctored_width(doctored, check):
    assert _row(check, "Table I 3 blocks SPE 95% CI")["grade"] == UNEXPLAINED
    spe = doctored["GOUT_TABLE1"]["blocks3"]["spe"]
    doctored["GOUT_TABLE1"]["blocks3"]["spe"] = dataclasses.replace(
        spe, low=Cell("81.0"), high=Cell("87.0")
    )
    assert _run(check_gout_table1_rates, "3 blocks SPE 95% CI")["grade"] == INCONSISTENT


def test_olt_stated_method_interval_grades(check):
    row = _row(check, "T1 accuracy 95% CI")  # Wilson [88.354, 97.12] cut to [88.3, 97.1]
    assert row["grade"] == UNEXPLAINED
    assert "Wilson cut (not rounded) to the printed digits gives [88.3, 97.1]" in row["note"]
    for quantity in (
        "Table II (T1) healthy recall 95% CI",  # Wald
        "Table II (T2) patient precision 95% CI",  # Clopper-Pearson
        "Table II (T2) healthy precision 95% CI",
        "Table II (T2) healthy recall 95% CI",
    ):
        assert _row(check, quantity)["grade"] == UNEXPLAINED, quantity
    # 89/94: [0.91, 0.99] is at most 0.090 wide, Wald's 0.9014-0.9922 is 0.091
    row = _row(check, "Table II (T1) healthy precision 95% CI")
    assert row["grade"] == INCONSISTENT and "narrower than every binomial" in row["note"]
    assert _row(check, "identical 95% CIs from different counts")["grade"] == INCONSISTENT


def test_diagnostic_interval_grades(check):
    row = _row(check, "diagnostic accuracy 95% CI")
    assert row["grade"] == INCONSISTENT and "excludes its own counts' rate 90.20" in row["note"]
    row = _row(check, "diagnostic SPE 95% CI")
    assert row["grade"] == UNEXPLAINED and "reconstructed, not printed" in row["note"]


def test_truncation_hint_only_where_the_printed_value_is_lower(check):
    assert "truncated" not in near_miss(Cell("82.6"), 331 / 401 * 100)  # 82.544 printed higher
    assert "truncated rather than rounded?" in near_miss(Cell("88.3"), 88.354)
    assert "off by one in the last digit" in near_miss(Cell("82.6"), 82.544)
    hinted = check[check["note"].str.contains("truncated rather than rounded", regex=False)]
    assert hinted["quantity"].tolist() == ["T1 accuracy 95% CI"]
    for quantity in (
        "Table I 2 blocks ACC %",
        "Table II (T1) healthy recall 95% CI",
        "identical 95% CIs from different counts",
    ):
        row = _row(check, quantity)
        assert "off by one in the last digit" in row["note"]
        assert "truncated" not in row["note"], quantity


def test_significance_claims_read_only_the_quantities_they_name(check, doctored):
    # "both the AUC value and ACC ... no statistically significant difference compared to the
    # 2 and 4-block models": AUC p .42, ACC p .85 against 4 blocks
    row = _row(check, "no significant difference from 4 blocks")
    assert row["grade"] == CONSISTENT and row["recomputed"] == "p_auc .42, p_acc .85"
    assert "p_sen .01, p_spe .01 below 0.05, which the claim does not cover" in row["note"]
    assert _row(check, "no significant difference from 2 blocks")["grade"] == CONSISTENT
    row = _row(check, "differs significantly from 6 blocks")
    assert row["grade"] == INCONSISTENT
    # doctored: a significant AUC against 4 blocks breaks the claim, one against 6 makes it
    doctored["GOUT_TABLE1"]["blocks4"]["p_auc"] = Cell(".03")
    doctored["GOUT_TABLE1"]["blocks6"]["p_acc"] = Cell(".03")
    assert _run(check_gout_claims, "from 4 blocks")["grade"] == INCONSISTENT
    assert _run(check_gout_claims, "from 6 blocks")["grade"] == CONSISTENT


def test_copied_fold_row(check, doctored):
    row = _row(check, "Table III: fold rows identical in every cell")
    assert row["grade"] == INCONSISTENT
    assert row["printed"] == "Fold 3 = Fold 5: 94.74 / 91.30 / 100.00 / 0.36"
    assert "Fold 5's row looks copied from Fold 3's" in row["note"]
    # the text giving fold 5 the table's 0.36: identical rows alone are no flag
    as_printed = doctored["GOUT"]["text_thresholds"]
    doctored["GOUT"]["text_thresholds"] = tuple(
        Cell(t) for t in ("0.28", "0.30", "0.36", "0.34", "0.36")
    )
    row = _run(check_gout_copied_folds)
    assert row.iloc[0]["grade"] == CONSISTENT and "possible" in row.iloc[0]["note"]
    # Fold 5 made different from Fold 3 clears it
    doctored["GOUT"]["text_thresholds"] = as_printed
    assert _run(check_gout_copied_folds).iloc[0]["grade"] == INCONSISTENT
    doctored["GOUT_TABLE3"]["Fold 5"] = {**doctored["GOUT_TABLE3"]["Fold 5"], "acc": Cell("89.47")}
    row = _run(check_gout_copied_folds).iloc[0]
    assert row["grade"] == CONSISTENT and row["printed"] == "no two folds identical"


def test_threshold_grid(check, doctored):
    row = _row(check, "fold thresholds on the searched grid")
    assert row["grade"] == CONSISTENT and row["recomputed"] == "all on the grid"
    doctored["GOUT_TABLE3"]["Fold 2"] = {
        **doctored["GOUT_TABLE3"]["Fold 2"],
        "threshold": Cell("0.31"),
    }
    row = _run(check_gout_threshold_grid).iloc[0]
    assert (
        row["grade"] == INCONSISTENT and row["recomputed"] == "off the grid: Table III Fold 2 0.31"
    )


def test_split_sizes_betray_an_image_level_split(check, doctored):
    for sequence, sizes in (("T1", "357 / 119 / 119 of 595"), ("T2", "399 / 133 / 133 of 665")):
        row = _row(check, f"Table I {sequence}: subset sizes vs a split by patient")
        assert row["grade"] == UNEXPLAINED and row["printed"] == f"{sizes} images"
        assert "what a split of the images gives" in row["note"]
    # the counter-evidence is said too: T1's 120 OLT images are 2 per scan and split 34/12/14
    row = _row(check, "Table I T1: subset sizes vs a split by patient")
    assert "its OLT images (2 per scan) do split into whole scans (34 / 12 / 14)" in row["note"]
    # doctored: three healthy test images more in training, as a split of whole scans might give
    t1 = doctored["OLT_TABLE1"]["T1"]
    t1["train"] = {**t1["train"], "healthy": t1["train"]["healthy"] + 3}
    t1["test"] = {**t1["test"], "healthy": t1["test"]["healthy"] - 3}
    assert _run(check_olt_split_unit, "T1: subset sizes")["grade"] == CONSISTENT
    assert _run(check_olt_split_unit, "T2: subset sizes")["grade"] == UNEXPLAINED


def test_gradcam_counts_against_table1_errors(check, doctored):
    row = _row(check, "Grad-CAM review vs Table I 3 blocks")
    # Table I 3 blocks: 223 - 184 = 39 missed, 258 - 217 = 41 false-positive, 401 - 334 = 67
    assert row["grade"] == UNEXPLAINED
    assert "39 missed (223 - 184) + 41 false-positive (258 - 217)" in row["recomputed"]
    assert "5.05, 4.98 and 5.99 times" in row["recomputed"]
    assert "2000/2401 = 83.30% equals Table I's ACC 83.3" in row["note"]
    # doctored: a review that misses fewer gout images than Table I's test set alone
    doctored["GOUT"]["gradcam_fn"] = 30
    assert _run(check_gout_gradcam_vs_table1).iloc[0]["grade"] == INCONSISTENT
    # doctored: the review over Table I's own images, with Table I's errors
    doctored["GOUT"].update(gradcam_fn=39, gradcam_fp=41, gradcam_agree=334, gradcam_disagree=67)
    assert _run(check_gout_gradcam_vs_table1).iloc[0]["grade"] == CONSISTENT


def test_abstract_against_table1(check, doctored):
    assert _row(check, "abstract AUC = Table I 3 blocks AUC")["grade"] == CONSISTENT
    assert _row(check, "abstract Grad-CAM agreement")["grade"] == CONSISTENT
    doctored["GOUT"]["abstract_auc"] = PrintedAuc(Cell("0.905"), Cell("0.887"), Cell("0.927"))
    assert _run(check_gout_abstract, "abstract AUC")["grade"] == INCONSISTENT


def test_mcnemar_pvalues_from_the_counts(check, doctored):
    # 334 vs 330 of 401, b - c = 4: uncorrected chi-square 4^2 / 16 = 1, p = .3173 -> .32;
    # with Edwards' correction 3^2 / (b + c) never rounds to .32 for an even b + c
    row = _row(check, "Table I 6 blocks ACC p: McNemar")
    assert row["grade"] == CONSISTENT
    assert "McNemar 1947 (no correction): b + c = 16;" in row["recomputed"]
    assert "Edwards' correction: none" in row["recomputed"]
    assert mcnemar_fits(334, 330, 401, Cell(".32"))["McNemar 1947 (no correction)"] == [16]
    # 217 vs 210 of 258, b - c = 7: b + c odd; 49/15 -> p .071, 49/17 -> .090: .08 only by mid-p
    row = _row(check, "Table I 6 blocks SPE p: McNemar")
    assert row["grade"] == UNEXPLAINED and "only the mid-p variant" in row["note"]
    assert _row(check, "Table I 2 blocks ACC p: McNemar")["grade"] == UNEXPLAINED
    assert (
        check["quantity"].str.contains("p: McNemar") & (check["grade"] == CONSISTENT)
    ).sum() == 7
    # doctored: .07 is the uncorrected p of b + c = 15; .99 no discordant total gives
    doctored["GOUT_TABLE1"]["blocks6"]["p_spe"] = Cell(".07")
    assert _run(check_gout_mcnemar, "6 blocks SPE p")["grade"] == CONSISTENT
    doctored["GOUT_TABLE1"]["blocks6"]["p_spe"] = Cell(".99")
    assert _run(check_gout_mcnemar, "6 blocks SPE p")["grade"] == INCONSISTENT


def test_unexplained_rows_say_what_would_explain_them(check):
    row = _row(check, "Table I test images (ACC n)")
    assert row["grade"] == UNEXPLAINED and "401 images if its patients have 7.9" in row["note"]
    row = _row(check, "Table I test images: class mix")
    assert row["grade"] == UNEXPLAINED and "possible only if" in row["note"]
    row = _row(check, "images per patient")
    assert row["grade"] == UNEXPLAINED and "exclusion of captured images" in row["note"]
    row = _row(check, "statistically trails")
    assert row["grade"] == INCONSISTENT and "even the printed CIs" in row["note"]


def test_narrative_numbers_against_the_tables(check, doctored):
    row = _row(check, "text diagnostic ACC / SEN / SPE = Table III average")
    assert row["grade"] == CONSISTENT and row["printed"] == "91.10 / 93.91 / 86.84"
    for quantity, printed in (
        ("T1 text sensitivity = Table II (T1) patient recall", "text 82.1%, Table II 0.82"),
        ("T1 text specificity = Table II (T1) healthy recall", "text 97.8%, Table II 0.98"),
        ("T2 text specificity = Table II (T2) healthy recall", "text 89.0%, Table II 0.89"),
    ):
        row = _row(check, quantity)
        assert row["grade"] == CONSISTENT and row["printed"] == printed
    row = _row(check, "abstract 'training set = 4:1'")
    assert row["grade"] == CONSISTENT and row["recomputed"] == "209:51 = 4.10:1"
    assert _row(check, "false-positive reasons")["recomputed"] == "80"  # 23 + 47 + 10 of 204
    assert _row(check, "misdirected regions add up")["grade"] == CONSISTENT  # 20 + 10 = 30
    # doctored copies that change each verdict
    doctored["GOUT"]["diagnostic_sensitivity"] = dataclasses.replace(
        doctored["GOUT"]["diagnostic_sensitivity"], value=Cell("93.19")
    )
    assert _run(check_gout_diagnosis_vs_table3).iloc[0]["grade"] == INCONSISTENT
    doctored["OLT"]["T1"] = {**doctored["OLT"]["T1"], "specificity": Cell("96.8")}
    assert _run(check_olt_rates_vs_table2, "T1 text specificity")["grade"] == INCONSISTENT
    doctored["GOUT"].update(train_patients=200, test_patients=60)
    assert _run(check_gout_cohort, "training set = 4:1")["grade"] == INCONSISTENT
    doctored["GOUT"]["gradcam_focus_errors"] = 31
    assert _run(check_gout_gradcam, "misdirected regions")["grade"] == INCONSISTENT
