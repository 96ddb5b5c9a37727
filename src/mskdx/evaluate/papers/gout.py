"""Gout paper (Xiao et al. 2025), image level and text: Table I, the cohort, claims, Grad-CAM.

Table I prints, per model (2, 3, 4, 6 residual blocks), the test images' ACC, SEN and SPE with
their counts and 95% CIs, the AUC and p-values against 3 blocks; the text gives the cohort's
counts, claims about Tables I and II, and the Grad-CAM review's counts. The patient-level
Table III is `mskdx.evaluate.papers.gout_patients`, Table I's McNemar p-values
`mskdx.evaluate.papers.gout_pvalues`.
"""

from __future__ import annotations

import math

from mskdx.evaluate.papers import printed as papers
from mskdx.evaluate.papers.common import (
    GOUT,
    INCONSISTENT,
    UNEXPLAINED,
    CheckRows,
    difference,
    finer,
    rounded,
)
from mskdx.evaluate.papers.printed import PrintedProportion

__all__ = [
    "check_gout_abstract",
    "check_gout_claims",
    "check_gout_cohort",
    "check_gout_gradcam",
    "check_gout_gradcam_vs_table1",
    "check_gout_table1_counts",
    "check_gout_table1_rates",
    "check_gout_test_images",
]


def check_gout_table1_rates(rows: CheckRows) -> None:
    """Table I: each ACC/SEN/SPE from its printed count, each CI against the binomial CIs."""
    gout = papers.GOUT
    per_patient = gout["images"] / gout["patients"]
    clustered = (
        f"the images are clustered by patient ({per_patient:.1f} per patient) and the paper "
        "names no CI method: a patient-level bootstrap gives intervals wider than the binomial "
        f"ones, by up to sqrt({per_patient:.1f}) = {math.sqrt(per_patient):.1f} times where a "
        "patient's images all fare alike"
    )
    for arm, printed in papers.GOUT_TABLE1.items():
        label = papers.GOUT_ARM_LABELS[arm]
        for name, title in (("acc", "ACC"), ("sen", "SEN"), ("spe", "SPE")):
            rate: PrintedProportion = printed[name]
            rows.percentage(GOUT, f"Table I {label} {title} %", rate.value, rate.k, rate.n, True)
            rows.interval(
                GOUT,
                f"Table I {label} {title} 95% CI",
                rate.low,
                rate.high,
                rate.k,
                rate.n,
                True,
                wider_because=clustered,
            )


def check_gout_table1_counts(rows: CheckRows) -> None:
    """Table I: SEN and SPE counts against ACC's, and ACC recomputed from them."""
    gout, table1 = papers.GOUT, papers.GOUT_TABLE1
    n_images = {(r["sen"].n, r["spe"].n, r["acc"].n) for r in table1.values()}
    for n_gout, n_control, n_all in sorted(n_images):
        rows.add(
            GOUT,
            "Table I: SEN n + SPE n = ACC n (test images)",
            f"{n_gout} + {n_control} vs {n_all}",
            f"{n_gout + n_control}",
            "every test image is gout (SEN) or control (SPE); the same n in every arm",
            n_gout + n_control == n_all,
            note_if_flagged=f"{n_gout + n_control} images is about one fold "
            f"({gout['images']} / {gout['folds']} = {gout['images'] / gout['folds']:.1f}), "
            f"{n_gout + n_control - n_all} more than ACC's {n_all}",
        )
    for arm, printed in table1.items():
        acc, sen, spe = printed["acc"], printed["sen"], printed["spe"]
        correct, total = sen.k + spe.k, sen.n + spe.n
        value = 100 * correct / total
        counts_note = (
            f"counts differ: TP + TN = {sen.k} + {spe.k} = {correct} correct vs ACC's {acc.k}, "
            f"{total} images vs ACC's {acc.n}"
            if (correct, total) != (acc.k, acc.n)
            else ""
        )
        rows.add(
            GOUT,
            f"Table I {papers.GOUT_ARM_LABELS[arm]} ACC from its SEN and SPE counts",
            f"{acc.value} ({acc.k}/{acc.n})",
            f"{rounded(value, acc.value)} (({sen.k} + {spe.k}) / ({sen.n} + {spe.n}) = "
            f"{correct}/{total})",
            "ACC = (TP + TN) / (gout + control images), TP and TN from the SEN and SPE counts",
            acc.value.agrees(value),
            note=counts_note if acc.value.agrees(value) else "",
            note_if_flagged=f"{correct}/{total} = {finer(value, acc.value)}; printed "
            f"{acc.value} is {difference(acc.value, value)}"
            + (f"; {counts_note}" if counts_note else ""),
        )


def check_gout_test_images(rows: CheckRows) -> None:
    """Table I's test set: its size against five-fold CV, its class mix against the dataset's."""
    gout, reference = papers.GOUT, papers.GOUT_TABLE1["blocks3"]
    n_all = reference["acc"].n
    per_fold = gout["images"] / gout["folds"]
    rows.add(
        GOUT,
        "Table I test images (ACC n)",
        f"{n_all}",
        f"{gout['images']} pooled over folds; {per_fold:.1f} per fold",
        f"five-fold CV: each of the {gout['images']} images is tested once",
        n_all in (gout["images"], round(per_fold)),
        note_if_flagged=f"{n_all} is neither the pooled test set nor an average fold: "
        f"{gout['images'] - n_all} fewer than {gout['images']}, {per_fold - n_all:.1f} fewer "
        f"than {per_fold:.1f}; folds are drawn by patient, so one fold of "
        f"{gout['test_patients']} patients holds {n_all} images if its patients have "
        f"{n_all / gout['test_patients']:.1f} images each, against "
        f"{gout['images'] / gout['patients']:.2f} on average",
        flag=UNEXPLAINED,
    )
    n_gout, n_control = reference["sen"].n, reference["spe"].n
    group_gout, group_control = gout["images_gout"], gout["images_control"]
    fifth_gout, fifth_control = group_gout / gout["folds"], group_control / gout["folds"]
    share_test = 100 * n_gout / (n_gout + n_control)
    share_data = 100 * group_gout / (group_gout + group_control)
    tolerance = 0.10
    within = (
        abs(n_gout - fifth_gout) <= tolerance * fifth_gout
        and abs(n_control - fifth_control) <= tolerance * fifth_control
    )
    rows.add(
        GOUT,
        "Table I test images: class mix vs the dataset's",
        f"{n_gout} gout + {n_control} control images ({share_test:.1f}% gout)",
        f"a fifth of each group: {fifth_gout:.1f} gout + {fifth_control:.1f} control "
        f"({share_data:.1f}% gout, as {group_gout} gout + {group_control} control images)",
        "'Gout group' and 'Control group' patients are divided into 5 subgroups of "
        "'approximately equal size', so a test fold holds about a fifth of each group's images "
        f"(taken as within {100 * tolerance:.0f}%)",
        within,
        note_if_flagged=(
            f"SEN n {n_gout} is {abs(n_gout - fifth_gout):.1f} images "
            f"({100 * abs(n_gout - fifth_gout) / fifth_gout:.1f}%) "
            f"{'fewer' if n_gout < fifth_gout else 'more'} than a fifth of {group_gout}; SPE n "
            f"{n_control} is {abs(n_control - fifth_control):.1f} "
            f"({100 * abs(n_control - fifth_control) / fifth_control:.1f}%) "
            f"{'fewer' if n_control < fifth_control else 'more'} than a fifth of {group_control}; "
            f"the test set is {share_test:.1f}% gout vs {share_data:.1f}% in the dataset, "
            f"{abs(share_data - share_test):.1f} points apart; possible only if this fold's gout "
            f"patients had {n_gout / (gout['patients_gout'] / gout['folds']):.1f} images each "
            f"and its controls {n_control / (gout['patients_control'] / gout['folds']):.1f} "
            f"(against {group_gout / gout['patients_gout']:.1f} and "
            f"{group_control / gout['patients_control']:.1f} on average), or if an image's label "
            "is not its patient's group"
        ),
        flag=UNEXPLAINED,
    )


def check_gout_cohort(rows: CheckRows) -> None:
    """Cohort counts of the text: images and patients per group, images per patient, folds."""
    gout = papers.GOUT
    for quantity, parts, total in (
        (
            "gout images + control images = all images",
            (gout["images_gout"], gout["images_control"]),
            gout["images"],
        ),
        (
            "gout patients + control patients = all patients",
            (gout["patients_gout"], gout["patients_control"]),
            gout["patients"],
        ),
        (
            "training + testing patients = all patients",
            (gout["train_patients"], gout["test_patients"]),
            gout["patients"],
        ),
    ):
        rows.add(
            GOUT,
            quantity,
            f"{parts[0]} + {parts[1]} vs {total}",
            f"{sum(parts)}",
            "sum",
            sum(parts) == total,
            note_if_flagged=f"the parts add up to {sum(parts) - total:+d} images",
        )
    minimum = gout["min_images_per_patient"]
    per_patient = gout["images"] / gout["patients"]
    per_gout = gout["images_gout"] / gout["patients_gout"]
    per_control = gout["images_control"] / gout["patients_control"]
    needed = minimum * gout["patients"]
    rows.add(
        GOUT,
        "images per patient vs 'at least 10 static images ... from each patient'",
        f"at least {minimum} per patient",
        f"{gout['images']} / {gout['patients']} = {per_patient:.2f} (gout "
        f"{gout['images_gout']} / {gout['patients_gout']} = {per_gout:.2f}, control "
        f"{gout['images_control']} / {gout['patients_control']} = {per_control:.2f})",
        "images analysed / patients",
        per_patient >= minimum,
        note_if_flagged=f"{minimum} per patient needs at least {needed} images, "
        f"{needed - gout['images']} more than the {gout['images']} analysed; an exclusion of "
        "captured images that the text does not report (Fig 1 mentions 'inclusion and exclusion "
        "of images') would reconcile them",
        flag=UNEXPLAINED,
    )
    per_fold = gout["patients"] / gout["folds"]
    rows.add(
        GOUT,
        "testing patients per fold",
        f"{gout['test_patients']}",
        f"{per_fold:g}",
        f"{gout['patients']} patients / {gout['folds']} folds of 'approximately equal size'",
        abs(gout["test_patients"] - per_fold) <= 1,
        note=f"{gout['train_patients']} + {gout['test_patients']} = {gout['patients']}; a fold "
        f"within one patient of {per_fold:g} is 'approximately equal'",
    )
    ratio = gout["train_test_ratio"]
    expected = gout["patients"] * ratio / (ratio + 1)
    rows.add(
        GOUT,
        f"abstract 'training set = {ratio:g}:1' vs training and testing patients",
        f"{ratio:g}:1",
        f"{gout['train_patients']}:{gout['test_patients']} = "
        f"{gout['train_patients'] / gout['test_patients']:.2f}:1",
        f"{ratio:g}:1 of {gout['patients']} patients is {expected:g} training patients; within "
        "one patient",
        abs(gout["train_patients"] - expected) <= 1,
    )


def check_gout_claims(rows: CheckRows) -> None:
    """The text's claims about Table I (significance, best arm) and Table II (complexity)."""
    table1 = papers.GOUT_TABLE1
    _check_significance_claims(rows)
    for name, title in (("auc", "AUC"), ("acc", "ACC")):
        values = {arm: row[name].value.value for arm, row in table1.items()}
        top = max(values, key=values.get)
        rows.add(
            GOUT,
            f"text: 3 blocks has the highest {title}",
            "3 blocks",
            f"{papers.GOUT_ARM_LABELS[top]} ({values[top]:g})",
            "maximum over Table I",
            top == "blocks3" and sorted(values.values())[-2] < values[top],
        )
    flops = {arm: v["flops_m"].value for arm, v in papers.GOUT_TABLE2.items()}
    params = {arm: v["params_m"].value for arm, v in papers.GOUT_TABLE2.items()}
    for quantity, values, pick, expected in (
        ("text: 3 blocks has the fewest FLOPs", flops, min, "blocks3"),
        ("text: 2 blocks has the most FLOPs", flops, max, "blocks2"),
        ("text: 2 blocks has the fewest parameters", params, min, "blocks2"),
    ):
        arm = pick(values, key=values.get)
        rows.add(
            GOUT,
            quantity,
            papers.GOUT_ARM_LABELS[expected],
            f"{papers.GOUT_ARM_LABELS[arm]} ({values[arm]:g})",
            "Table II",
            arm == expected,
        )


def _check_significance_claims(rows: CheckRows) -> None:
    """'statistically significant difference compared to the 6-block model, no statistically
    significant difference compared to the 2 and 4-block models': the sentence is about the
    AUC and ACC (`GOUT['claim_quantities']`), so only their p-values are read."""
    gout, table1 = papers.GOUT, papers.GOUT_TABLE1
    alpha, keys = gout["alpha"], gout["claim_quantities"]
    others = [k for k in ("p_acc", "p_sen", "p_spe", "p_auc") if k not in keys]
    for arm, claimed in [(a, True) for a in gout["claim_significant_vs"]] + [
        (a, False) for a in gout["claim_not_significant_vs"]
    ]:
        label = papers.GOUT_ARM_LABELS[arm]
        pvalues = {k: table1[arm][k].value for k in keys}
        significant = [k for k in keys if pvalues[k] < alpha]
        listing = ", ".join(f"{k} {table1[arm][k]}" for k in keys)
        beyond = [k for k in others if table1[arm][k].value < alpha]
        rows.add(
            GOUT,
            f"text: 3 blocks differs significantly from {label}"
            if claimed
            else f"text: no significant difference from {label}",
            f"{'significant' if claimed else 'not significant'} (AUC and ACC)",
            listing,
            f"{'some' if claimed else 'no'} Table I p of the quantities the claim names "
            f"({', '.join(keys)}) below {alpha}",
            bool(significant) == claimed,
            note=f"{', '.join(f'{k} {table1[arm][k]}' for k in beyond)} below {alpha}, which the "
            "claim does not cover"
            if beyond
            else "",
            note_if_flagged=f"no p of the claimed quantities against {label} is below {alpha}"
            if claimed
            else f"Table I prints p < {alpha} against {label}: "
            + ", ".join(f"{k} {table1[arm][k]}" for k in significant),
        )


def check_gout_gradcam(rows: CheckRows) -> None:
    """Grad-CAM counts of the text: agreement, error types and their reasons."""
    gout = papers.GOUT
    rows.add(
        GOUT,
        "Grad-CAM: agreeing + disagreeing images = all images",
        f"{gout['gradcam_agree']} + {gout['gradcam_disagree']} vs {gout['images']}",
        f"{gout['gradcam_agree'] + gout['gradcam_disagree']}",
        "sum",
        gout["gradcam_agree"] + gout["gradcam_disagree"] == gout["images"],
    )
    rows.add(
        GOUT,
        "Grad-CAM: false negatives + false positives = disagreeing images",
        f"{gout['gradcam_fn']} + {gout['gradcam_fp']} vs {gout['gradcam_disagree']}",
        f"{gout['gradcam_fn'] + gout['gradcam_fp']}",
        "sum",
        gout["gradcam_fn"] + gout["gradcam_fp"] == gout["gradcam_disagree"],
    )
    for total_key, reasons_key in (
        ("gradcam_fn", "gradcam_fn_reasons"),
        ("gradcam_fp", "gradcam_fp_reasons"),
        ("gradcam_focus_errors", "gradcam_focus_reasons"),
    ):
        total = gout[total_key]
        for reason, (count, cell) in gout[reasons_key].items():
            rows.percentage(GOUT, f"Grad-CAM {reason} (of {total})", cell, count, total, True)
    for kind, total_key, reasons_key in (
        ("false-negative", "gradcam_fn", "gradcam_fn_reasons"),
        ("false-positive", "gradcam_fp", "gradcam_fp_reasons"),
    ):
        counts = [count for count, _ in gout[reasons_key].values()]
        rows.add(
            GOUT,
            f"Grad-CAM: {kind} reasons add up to at most the {kind}s",
            f"{' + '.join(map(str, counts))} of {gout[total_key]}",
            f"{sum(counts)}",
            "sum",
            sum(counts) <= gout[total_key],
            note_if_flagged=f"{sum(counts) - gout[total_key]} more reasons than images: "
            "overlapping categories (one image missing two kinds of lesion) would give it; the "
            "text does not say whether an image is counted once",
            flag=UNEXPLAINED,
        )
    focus = [count for count, _ in gout["gradcam_focus_reasons"].values()]
    rows.add(
        GOUT,
        "Grad-CAM: the two misdirected regions add up to the focus errors",
        f"{' + '.join(map(str, focus))} of {gout['gradcam_focus_errors']}",
        f"{sum(focus)}",
        "sum (the text's shares of the two regions add up to 100%)",
        sum(focus) == gout["gradcam_focus_errors"],
    )


def check_gout_gradcam_vs_table1(rows: CheckRows) -> None:
    """The Grad-CAM review's counts against the errors of the model it reviews (Table I, 3 blocks).

    The review's disagreements are that model's errors ('lesions ... overlooked by the model',
    'false-positive images'): over the same images they equal Table I's errors, over more
    images they contain them. Equal: consistent; containing: unexplained (the paper does not
    say how the two sets of images relate); fewer than Table I's: inconsistent.
    """
    gout, best = papers.GOUT, papers.GOUT_TABLE1["blocks3"]
    acc, sen, spe = best["acc"], best["sen"], best["spe"]
    missed, false_pos, wrong = sen.n - sen.k, spe.n - spe.k, acc.n - acc.k
    agree, disagree = gout["gradcam_agree"], gout["gradcam_disagree"]
    fn, fp, reviewed = gout["gradcam_fn"], gout["gradcam_fp"], agree + disagree
    equal = (fn, fp, disagree, reviewed) == (missed, false_pos, wrong, acc.n)
    contains = fn >= missed and fp >= false_pos and disagree >= wrong and reviewed >= acc.n
    rows.add(
        GOUT,
        "Grad-CAM review vs Table I 3 blocks: missed and false-positive images",
        f"{agree} agreeing + {disagree} disagreeing ({fn} missed + {fp} false-positive) of "
        f"{reviewed} images",
        f"Table I 3 blocks: {missed} missed ({sen.n} - {sen.k}) + {false_pos} false-positive "
        f"({spe.n} - {spe.k}) of {sen.n + spe.n} images; {wrong} wrong of {acc.n} (ACC); the "
        f"review's counts are {fn / missed:.2f}, {fp / false_pos:.2f} and {disagree / wrong:.2f} "
        "times these",
        "the review's disagreements are the reviewed model's errors: over the same images equal "
        "to Table I's, over more images containing them",
        equal,
        note_if_flagged=(
            f"the review counts all {reviewed} images, Table I {sen.n + spe.n} (SEN, SPE) or "
            f"{acc.n} (ACC); the review's missed and false-positive images are "
            f"{fn / missed:.1f} and {fp / false_pos:.1f} times Table I's, as if Table I were "
            f"one of {gout['folds']} test folds and the review their sum, which the paper does "
            "not say; the "
            f"review's agreement {agree}/{reviewed} = {100 * agree / reviewed:.2f}% equals "
            f"Table I's ACC {acc.value}, and Table I's ACC n ({acc.n}) equals the review's "
            f"{disagree} disagreeing images"
            if contains
            else "the review, covering at least Table I's images, has fewer errors of a kind "
            "than Table I's test set alone"
        ),
        flag=UNEXPLAINED if contains else INCONSISTENT,
    )


def check_gout_abstract(rows: CheckRows) -> None:
    """The abstract's numbers against the tables and the results text."""
    gout, best = papers.GOUT, papers.GOUT_TABLE1["blocks3"]
    abstract, table = gout["abstract_auc"], best["auc"]
    rows.add(
        GOUT,
        "abstract AUC = Table I 3 blocks AUC",
        f"abstract {abstract.value} [{abstract.low}, {abstract.high}]",
        f"Table I {table.value} [{table.low}, {table.high}]",
        "the best model's AUC and CI, cell by cell",
        (abstract.value, abstract.low, abstract.high) == (table.value, table.low, table.high),
    )
    rows.add(
        GOUT,
        "abstract Grad-CAM agreement = results text",
        f"abstract {gout['abstract_gradcam_agree']} images",
        f"text {gout['gradcam_agree']} images",
        "the same count",
        gout["abstract_gradcam_agree"] == gout["gradcam_agree"],
    )
