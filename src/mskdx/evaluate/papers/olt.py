"""OLT paper (Dabiry et al. 2026): Table I's image counts, the text's confusion counts, Table II.

Table I prints the images per sequence (T1, T2), subset and class; the text gives each
sequence's test confusion counts, from which Table II's precision, recall, F1 and their CIs
(said to be Wilson score intervals, the AUC's included) are recomputed.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm
from statsmodels.stats.proportion import proportion_confint

from mskdx.evaluate.papers import printed as papers
from mskdx.evaluate.papers.common import (
    CI_METHODS,
    METHOD_SCOPE,
    OLT,
    UNEXPLAINED,
    Z95,
    CheckRows,
    binomial_intervals,
    bound_misses,
    difference,
    interval_text,
    reproduces,
    rounded,
)
from mskdx.evaluate.papers.printed import Cell, PrintedAuc, PrintedProportion
from mskdx.evaluate.stats.hanley import hanley_mcneil_se

__all__ = [
    "check_olt_rates_vs_table2",
    "check_olt_split_unit",
    "check_olt_auc",
    "check_olt_confusion",
    "check_olt_identical_cis",
    "check_olt_misplaced_cells",
    "check_olt_table1",
    "check_olt_table2",
    "check_olt_text_statements",
]


def _images_per_class(sequence: str) -> dict[str, int]:
    subsets = papers.OLT_TABLE1[sequence]
    return {cls: sum(subsets[s][cls] for s in subsets) for cls in ("patient", "healthy")}


def check_olt_table1(rows: CheckRows) -> None:
    """Table I: image totals, the 60/20/20 split, images per scan."""
    olt = papers.OLT
    for sequence, subsets in papers.OLT_TABLE1.items():
        total = sum(sum(counts.values()) for counts in subsets.values())
        rows.add(
            OLT,
            f"Table I {sequence}: images add up",
            f"{olt['images'][sequence]}",
            f"{total}",
            "sum over subsets and classes",
            total == olt["images"][sequence],
        )
        shares = [sum(subsets[s].values()) / total for s in ("train", "val", "test")]
        rows.add(
            OLT,
            f"Table I {sequence}: 60/20/20 split",
            "60:20:20",
            "/".join(f"{100 * s:.1f}" for s in shares),
            "share of images per subset",
            all(abs(s - f) <= 0.01 for s, f in zip(shares, olt["fractions"], strict=True)),
        )
        per_class = _images_per_class(sequence)
        scans = {"patient": olt["scans_olt"], "healthy": olt["scans_healthy"]}
        planes = len(olt["planes_methods"])
        ratios = {cls: per_class[cls] / scans[cls] for cls in per_class}
        rows.add(
            OLT,
            f"Table I {sequence}: images per scan",
            f"{total} images, {olt['scans']} scans",
            f"{total / olt['scans']:.2f} per scan (OLT {per_class['patient']} / "
            f"{scans['patient']} = {ratios['patient']:.2f}, healthy {per_class['healthy']} / "
            f"{scans['healthy']} = {ratios['healthy']:.2f})",
            f"Table I images / scans; Methods: {' and '.join(olt['planes_methods'])} images "
            f"per case, so at least {planes} per scan",
            all(r >= planes for r in ratios.values()),
            note=f"healthy scans give {ratios['healthy'] / ratios['patient']:.2f} times as many "
            "images as OLT scans; the paper does not say how many slices were taken per scan",
            note_if_flagged=f"fewer than {planes} images per scan",
        )


def check_olt_split_unit(rows: CheckRows) -> None:
    """Table I's subset sizes against a split by patient, as the text says it was made.

    A split of whole patients (scans) gives subsets whose image counts only approximate the
    fractions, since scans contribute different numbers of images (here 2.0-3.4 per scan); an
    image-level split (e.g. ``train_test_split`` on the images) hits them to the image. Sizes
    within one image of the fractions are graded unexplained: an image-level split gives them,
    a patient-level one only by chance.
    """
    olt = papers.OLT
    for sequence, subsets in papers.OLT_TABLE1.items():
        sizes = {s: sum(subsets[s].values()) for s in ("train", "val", "test")}
        total = sum(sizes.values())
        exact = {s: f * total for s, f in zip(sizes, olt["fractions"], strict=True)}
        to_the_image = all(abs(sizes[s] - exact[s]) < 1 for s in sizes)
        per_scan = {
            cls: sum(subsets[s][cls] for s in subsets) / olt[key]
            for cls, key in (("patient", "scans_olt"), ("healthy", "scans_healthy"))
        }
        # A class with the same number of images in every scan must split into whole scans.
        whole = [
            f"its {'OLT' if cls == 'patient' else cls} images ({per_scan[cls]:g} per scan) do "
            "split into whole scans ("
            + " / ".join(f"{subsets[s][cls] / per_scan[cls]:g}" for s in sizes)
            + ")"
            for cls in per_scan
            if per_scan[cls] == int(per_scan[cls])
            and all(subsets[s][cls] % int(per_scan[cls]) == 0 for s in sizes)
        ]
        rows.add(
            OLT,
            f"Table I {sequence}: subset sizes vs a split by patient",
            " / ".join(str(sizes[s]) for s in sizes) + f" of {total} images",
            " / ".join(f"{exact[s]:g}" for s in sizes)
            + f" = {' / '.join(f'{100 * f:g}' for f in olt['fractions'])}% of {total} images",
            "'the split was performed at the patient level': whole scans of "
            f"{per_scan['patient']:.2f} (OLT) and {per_scan['healthy']:.2f} (healthy) images on "
            "average go to each subset, so the subsets' image counts need not hit the fractions",
            not to_the_image,
            note_if_flagged="every subset is the stated fraction of the images to within one "
            "image: what a split of the images gives; a split of whole patients would give it "
            "only by chance" + "".join(f"; {text}, as a split by patient needs" for text in whole),
            flag=UNEXPLAINED,
        )


def check_olt_text_statements(rows: CheckRows) -> None:
    """Text statements about the images: augmentation, planes, subfolders, scans."""
    olt = papers.OLT
    totals = {seq: sum(_images_per_class(seq).values()) for seq in papers.OLT_TABLE1}
    test_val = {
        seq: sum(sum(papers.OLT_TABLE1[seq][s].values()) for s in ("val", "test"))
        for seq in papers.OLT_TABLE1
    }
    augmented = olt["images_after_augmentation"] and olt["augmentation_on_the_fly"]
    rows.add(
        OLT,
        "'Following data augmentation, 595 images (T1) and 665 (T2)' vs on-the-fly augmentation",
        ", ".join(f"{seq} {olt['images'][seq]} after augmentation" for seq in olt["images"]),
        ", ".join(
            f"{seq}: Table I total {totals[seq]}, of which {test_val[seq]} validation and test "
            f"images, {totals[seq] / olt['scans']:.2f} per scan"
            for seq in totals
        ),
        "on-the-fly augmentation ('without artificially expanding the dataset size') leaves the "
        "number of images unchanged, and only the training set is augmented",
        not augmented,
        note_if_flagged="the counts are Table I's original images (including the "
        "unaugmented validation and test sets), not a result of augmentation",
    )
    rows.add(
        OLT,
        "image planes: Methods vs Limitations",
        f"Methods: {' and '.join(olt['planes_methods'])}; Limitations: only "
        f"{' and '.join(olt['planes_limitations'])}",
        "common planes: "
        + (
            ", ".join(sorted(set(olt["planes_methods"]) & set(olt["planes_limitations"]))) or "none"
        ),
        "the two statements of which 2D slices were used",
        set(olt["planes_limitations"]) <= set(olt["planes_methods"]),
        note_if_flagged="the Methods select coronal and sagittal images; the Limitations "
        "say only axial slices were used",
    )
    rows.add(
        OLT,
        "scans with OLT + without = all scans",
        f"{olt['scans_olt']} + {olt['scans_healthy']} vs {olt['scans']}",
        f"{olt['scans_olt'] + olt['scans_healthy']}",
        "sum",
        olt["scans_olt"] + olt["scans_healthy"] == olt["scans"],
    )
    subfolders = (olt["subjects_patient"], olt["subjects_healthy"])
    scans = (olt["scans_olt"], olt["scans_healthy"])
    rows.add(
        OLT,
        "patient + healthy subject subfolders vs included scans",
        f"{subfolders[0]} patient + {subfolders[1]} healthy subfolders",
        f"{scans[0]} OLT + {scans[1]} healthy scans",
        "the same cohort counted twice",
        subfolders == scans,
        note_if_flagged=f"{subfolders[0] - scans[0]:+d} patient and "
        f"{subfolders[1] - scans[1]:+d} healthy; the paper does not say what a subfolder "
        f"holds ({sum(subfolders)} subfolders, {olt['screened_scans']} scans screened): "
        "subfolders per series or counted before the exclusions would give more than the "
        "included scans",
        flag=UNEXPLAINED,
    )


def _olt_counts(sequence: str) -> dict[str, dict[str, tuple[int, int]]]:
    """(successes, n) of each Table II cell from the text's confusion counts."""
    cm = papers.OLT_CONFUSION[sequence]
    tp, fn, tn, fp = cm["tp"], cm["fn"], cm["tn"], cm["fp"]
    return {
        "patient": {
            "precision": (tp, tp + fp),
            "recall": (tp, tp + fn),
            "f1": (2 * tp, 2 * tp + fp + fn),
        },
        "healthy": {
            "precision": (tn, tn + fn),
            "recall": (tn, tn + fp),
            "f1": (2 * tn, 2 * tn + fn + fp),
        },
    }


def check_olt_confusion(rows: CheckRows) -> None:
    """The text's confusion counts against Table I; accuracy, sensitivity, specificity."""
    olt = papers.OLT
    stated = "Wilson" if olt["ci_method"] == "Wilson score interval" else None
    for sequence, cm in papers.OLT_CONFUSION.items():
        tp, fn, tn, fp = cm["tp"], cm["fn"], cm["tn"], cm["fp"]
        test = papers.OLT_TABLE1[sequence]["test"]
        rows.add(
            OLT,
            f"{sequence}: text confusion counts vs Table I test set",
            f"{test['patient']} patient + {test['healthy']} healthy",
            f"{tp + fn} + {tn + fp}",
            "TP + FN, TN + FP",
            (tp + fn, tn + fp) == (test["patient"], test["healthy"]),
        )
        n = tp + fn + tn + fp
        accuracy: PrintedProportion = olt[sequence]["accuracy"]
        rows.percentage(OLT, f"{sequence} accuracy %", accuracy.value, tp + tn, n, True)
        rows.interval(
            OLT,
            f"{sequence} accuracy 95% CI",
            accuracy.low,
            accuracy.high,
            tp + tn,
            n,
            True,
            stated=stated,
        )
        if "sensitivity" in olt[sequence]:
            rows.percentage(
                OLT, f"{sequence} sensitivity %", olt[sequence]["sensitivity"], tp, tp + fn, True
            )
        if "specificity" in olt[sequence]:
            rows.percentage(
                OLT, f"{sequence} specificity %", olt[sequence]["specificity"], tn, tn + fp, True
            )


def check_olt_rates_vs_table2(rows: CheckRows) -> None:
    """The text's sensitivity and specificity (%) against Table II's recall of each class."""
    olt = papers.OLT
    for sequence in papers.OLT_CONFUSION:
        for name, cls in (("sensitivity", "patient"), ("specificity", "healthy")):
            if name not in olt[sequence]:
                continue
            text: Cell = olt[sequence][name]
            recall: Cell = papers.OLT_TABLE2_PRINTED[(sequence, cls)]["recall"].value
            rows.add(
                OLT,
                f"{sequence} text {name} = Table II ({sequence}) {cls} recall",
                f"text {text}%, Table II {recall}",
                rounded(text.value / 100, recall),
                f"the text's {name} at Table II's precision ({name} is the {cls} class's recall)",
                recall.agrees(text.value / 100),
            )


def check_olt_table2(rows: CheckRows) -> None:
    """Table II: precision, recall (with CIs) and F1 per class from the text's counts."""
    stated = "Wilson" if papers.OLT["ci_method"] == "Wilson score interval" else None
    for (sequence, cls), printed in papers.OLT_TABLE2_PRINTED.items():
        counts = _olt_counts(sequence)[cls]
        for metric in ("precision", "recall"):
            rate: PrintedProportion = printed[metric]
            successes, n = counts[metric]
            rows.percentage(
                OLT, f"Table II ({sequence}) {cls} {metric}", rate.value, successes, n, False
            )
            rows.interval(
                OLT,
                f"Table II ({sequence}) {cls} {metric} 95% CI",
                rate.low,
                rate.high,
                successes,
                n,
                False,
                stated=stated,
            )
        successes, n = counts["f1"]
        f1: Cell = printed["f1"]
        rows.add(
            OLT,
            f"Table II ({sequence}) {cls} F1",
            f"{f1}",
            f"{rounded(successes / n, f1)} ({successes}/{n})",
            "F1 = 2 TP / (2 TP + FP + FN) from the text's confusion counts",
            f1.agrees(successes / n),
            note_if_flagged=f"printed {f1} is {difference(f1, successes / n)}",
        )


def _listing(intervals: dict[str, tuple[float, float]], low: Cell, high: Cell) -> str:
    """'Wilson [0.88, 0.98], Wald [0.90, 0.99], ...' at the printed precision."""
    return ", ".join(
        f"{m} {interval_text(rounded(lo, low), rounded(hi, high))}"
        for m, (lo, hi) in intervals.items()
    )


def check_olt_identical_cis(rows: CheckRows) -> None:
    """Table II CIs printed identically for different counts: can one method give both?"""
    cells = []
    for (sequence, cls), printed in papers.OLT_TABLE2_PRINTED.items():
        for metric in ("precision", "recall"):
            rate: PrintedProportion = printed[metric]
            successes, n = _olt_counts(sequence)[cls][metric]
            cells.append((f"({sequence}) {cls} {metric}", rate, successes, n))
    for i, (name_a, rate_a, k_a, n_a) in enumerate(cells):
        for name_b, rate_b, k_b, n_b in cells[i + 1 :]:
            same_ci = (rate_a.low, rate_a.high) == (rate_b.low, rate_b.high)
            if not same_ci or (k_a, n_a) == (k_b, n_b):
                continue
            low, high = rate_a.low, rate_a.high
            by_a = binomial_intervals(k_a, n_a, 1.0)
            by_b = binomial_intervals(k_b, n_b, 1.0)
            both = [
                m
                for m in CI_METHODS
                if reproduces(low, high, by_a[m]) and reproduces(low, high, by_b[m])
            ]
            only_a = [m for m in CI_METHODS if reproduces(low, high, by_a[m]) and m not in both]
            only_b = [m for m in CI_METHODS if reproduces(low, high, by_b[m]) and m not in both]

            misses = []
            for name, by, fits_other in ((name_a, by_a, only_b), (name_b, by_b, only_a)):
                for method in fits_other:
                    misses.append(
                        f"{name} by {method}: {bound_misses(method, low, high, by[method])}"
                    )
            rows.add(
                OLT,
                f"Table II {name_a} and {name_b}: identical 95% CIs from different counts",
                f"both {interval_text(low, high)}",
                f"{k_a}/{n_a}: {_listing(by_a, low, high)}; "
                f"{k_b}/{n_b}: {_listing(by_b, low, high)}",
                f"95% CIs of both counts by {', '.join(CI_METHODS)}: is there one method that "
                "gives the printed CI for both?",
                bool(both),
                note=f"reproduced for both by {', '.join(both)}" if both else "",
                note_if_flagged=(
                    "no method gives the same CI for both counts"
                    + (f"; only {name_a} is reproduced ({', '.join(only_a)})" if only_a else "")
                    + (f"; only {name_b} is reproduced ({', '.join(only_b)})" if only_b else "")
                    + (": the other cell looks copied; " + "; ".join(misses) if misses else "")
                ),
            )


def check_olt_misplaced_cells(rows: CheckRows) -> None:
    """Table II's '(T1) Healthy' row: its AUC and accuracy cells against T1's and T2's."""
    olt = papers.OLT
    cm1, cm2 = papers.OLT_CONFUSION["T1"], papers.OLT_CONFUSION["T2"]
    printed = papers.OLT_TABLE2_PRINTED[("T1", "healthy")]
    accuracy_cell: PrintedProportion = printed["accuracy"]
    n_t1, n_t2 = sum(cm1.values()), sum(cm2.values())
    accuracy_t1 = 100 * (cm1["tp"] + cm1["tn"]) / n_t1
    accuracy_t2 = 100 * (cm2["tp"] + cm2["tn"]) / n_t2
    low_t2, high_t2 = binomial_intervals(cm2["tp"] + cm2["tn"], n_t2, 100.0)["Wilson"]
    t2_interval = interval_text(
        rounded(low_t2, accuracy_cell.low), rounded(high_t2, accuracy_cell.high)
    )
    rows.add(
        OLT,
        "Table II (T1) Healthy row: accuracy cell = T1 accuracy",
        f"{accuracy_cell.value}% {interval_text(accuracy_cell.low, accuracy_cell.high)}",
        f"{rounded(accuracy_t1, accuracy_cell.value)}",
        "T1 (TP + TN) / n from the text's counts",
        accuracy_cell.value.agrees(accuracy_t1),
        f"the cell equals T2's accuracy {rounded(accuracy_t2, accuracy_cell.value)}% {t2_interval}"
        if accuracy_cell.value.agrees(accuracy_t2)
        else "",
        note_if_flagged=f"printed {accuracy_cell.value} is "
        f"{difference(accuracy_cell.value, accuracy_t1)} than T1's accuracy",
    )
    auc_cell: PrintedAuc = printed["auc"]
    auc_t1, auc_t2 = olt["T1"]["auc"], olt["T2"]["auc"]
    rows.add(
        OLT,
        "Table II (T1) Healthy row: AUC cell = T1 AUC",
        f"{auc_cell.value} {interval_text(auc_cell.low, auc_cell.high)}",
        f"{auc_t1.value} {interval_text(auc_t1.low, auc_t1.high)}",
        "T1 AUC as printed on the (T1) Patient row and in the text (one AUC per model)",
        auc_cell.value.value == auc_t1.value.value,
        "the cell holds T2's AUC from the text"
        if (auc_cell.value, auc_cell.low, auc_cell.high) == (auc_t2.value, auc_t2.low, auc_t2.high)
        else "",
        note_if_flagged=f"printed {auc_cell.value} is "
        f"{difference(auc_cell.value, auc_t1.value.value)} than T1's {auc_t1.value}",
    )


def check_olt_auc(rows: CheckRows) -> None:
    """AUC CIs 'using the Wilson score interval method', and the claim that T2 trails T1."""
    olt = papers.OLT
    standard_errors = {}
    for sequence, cm in papers.OLT_CONFUSION.items():
        auc: PrintedAuc = olt[sequence]["auc"]
        n_pos, n_neg = cm["tp"] + cm["fn"], cm["tn"] + cm["fp"]
        n_images = n_pos + n_neg
        se = hanley_mcneil_se(auc.value.value, n_pos, n_neg)
        standard_errors[sequence] = (auc.value.value, se, n_images)
        hm_low, hm_high = auc.value.value - Z95 * se, min(1.0, auc.value.value + Z95 * se)
        rows.add(
            OLT,
            f"{sequence} AUC 95% CI method",
            olt["ci_method"],
            f"{olt['ci_method']} applies to a {METHOD_SCOPE[olt['ci_method']]}",
            "scope of the named method",
            METHOD_SCOPE[olt["ci_method"]] == "AUC",
            note_if_flagged="an AUC is not a proportion of independent trials; a CI made "
            f"for an AUC from these counts (Hanley & McNeil 1982: {n_pos} positives, {n_neg} "
            f"negatives, AUC +- 1.96 SE) is "
            f"{interval_text(rounded(hm_low, auc.low), rounded(hm_high, auc.high))}, "
            f"{(hm_high - hm_low) / (auc.high.value - auc.low.value):.1f} times as wide as the "
            "printed one; DeLong would need the scores",
        )
        # AUC = U / (n_pos n_neg), U a multiple of 1/2; keep those that round to the printed AUC.
        attainable = np.arange(0, 2 * n_pos * n_neg + 1) / (2.0 * n_pos * n_neg)
        attainable = attainable[np.abs(attainable - auc.value.value) <= auc.value.half_unit + 1e-12]
        lows, highs = proportion_confint(attainable * n_images, n_images, method="wilson")
        fits = attainable[
            (np.abs(lows - auc.low.value) <= auc.low.half_unit + 1e-9)
            & (np.abs(highs - auc.high.value) <= auc.high.half_unit + 1e-9)
        ]
        low_at, high_at = proportion_confint(auc.value.value * n_images, n_images, method="wilson")
        rows.add(
            OLT,
            f"{sequence} AUC 95% CI: reproduced by Wilson on the AUC (n = {n_images} images)",
            interval_text(auc.low, auc.high),
            interval_text(rounded(low_at, auc.low), rounded(high_at, auc.high))
            + (
                f" at AUC {auc.value}; printed CI reached for AUC {fits.min():.4f}-{fits.max():.4f}"
                if fits.size
                else f" at AUC {auc.value}; no AUC that rounds to {auc.value} gives the printed CI"
            ),
            f"Wilson score interval of AUC x {n_images} successes in {n_images} test images, for "
            f"every attainable AUC (U / ({n_pos} x {n_neg})) that rounds to the printed one",
            bool(fits.size),
            "the stated method was used as stated (its validity for an AUC is the row above)"
            if fits.size
            else "",
        )
    (auc_t1, se_t1, n_t1), (auc_t2, se_t2, n_t2) = standard_errors["T1"], standard_errors["T2"]
    z = (auc_t1 - auc_t2) / math.hypot(se_t1, se_t2)
    printed_se = {
        seq: (olt[seq]["auc"].high.value - olt[seq]["auc"].low.value) / 2 / Z95
        for seq in ("T1", "T2")
    }
    z_printed = (auc_t1 - auc_t2) / math.hypot(printed_se["T1"], printed_se["T2"])
    pvalue = 2 * float(norm.sf(abs(z)))
    rows.add(
        OLT,
        "text: T2 AUC 'statistically trails' T1",
        f"T1 {auc_t1:g} > T2 {auc_t2:g}, significant",
        f"z = {z:.2f}, p = {pvalue:.2f}",
        "two independent AUCs, Hanley-McNeil SEs (the paper names no test)",
        pvalue < 0.05,
        note_if_flagged=f"a {auc_t1 - auc_t2:.2f} difference on {n_t1} and {n_t2} test "
        "images is not significant; even the printed CIs (SE = half-width / 1.96) give "
        f"z = {z_printed:.2f}, p = {2 * float(norm.sf(abs(z_printed))):.2f}",
    )
