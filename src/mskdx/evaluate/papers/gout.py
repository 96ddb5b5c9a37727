"""Gout paper (Xiao et al. 2025), image level and text: Table I, the cohort, claims, Grad-CAM.

Table I prints, per model (2, 3, 4, 6 residual blocks), the test images' ACC, SEN and SPE with
their counts and 95% CIs, the AUC and p-values against 3 blocks; the text gives the cohort's
counts, claims about Tables I and II, and the Grad-CAM review's counts. The patient-level
Table III is `mskdx.evaluate.papers.gout_patients`.
"""

from __future__ import annotations

from mskdx.evaluate.papers import printed as papers
from mskdx.evaluate.papers.common import GOUT, CheckRows, difference, finer, rounded
from mskdx.evaluate.papers.printed import PrintedProportion

__all__ = [
    "check_gout_claims",
    "check_gout_cohort",
    "check_gout_gradcam",
    "check_gout_table1_counts",
    "check_gout_table1_rates",
    "check_gout_test_images",
]


def check_gout_table1_rates(rows: CheckRows) -> None:
    """Table I: each ACC/SEN/SPE from its printed count, each CI against the binomial CIs."""
    for arm, printed in papers.GOUT_TABLE1.items():
        label = papers.GOUT_ARM_LABELS[arm]
        for name, title in (("acc", "ACC"), ("sen", "SEN"), ("spe", "SPE")):
            rate: PrintedProportion = printed[name]
            rows.percentage(GOUT, f"Table I {label} {title} %", rate.value, rate.k, rate.n, True)
            rows.interval(
                GOUT, f"Table I {label} {title} 95% CI", rate.low, rate.high, rate.k, rate.n, True
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
            note_if_inconsistent=f"{n_gout + n_control} images is about one fold "
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
            note_if_inconsistent=f"{correct}/{total} = {finer(value, acc.value)}; printed "
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
        note_if_inconsistent=f"{n_all} is neither the pooled test set nor one fold: "
        f"{gout['images'] - n_all} fewer than {gout['images']}, {per_fold - n_all:.1f} fewer "
        f"than {per_fold:.1f}",
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
        note_if_inconsistent=(
            f"SEN n {n_gout} is {abs(n_gout - fifth_gout):.1f} images "
            f"({100 * abs(n_gout - fifth_gout) / fifth_gout:.1f}%) "
            f"{'fewer' if n_gout < fifth_gout else 'more'} than a fifth of {group_gout}; SPE n "
            f"{n_control} is {abs(n_control - fifth_control):.1f} "
            f"({100 * abs(n_control - fifth_control) / fifth_control:.1f}%) "
            f"{'fewer' if n_control < fifth_control else 'more'} than a fifth of {group_control}; "
            f"the test set is {share_test:.1f}% gout vs {share_data:.1f}% in the dataset, "
            f"{abs(share_data - share_test):.1f} points apart"
        ),
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
            note_if_inconsistent=f"the parts add up to {sum(parts) - total:+d} images",
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
        note_if_inconsistent=f"{minimum} per patient needs at least {needed} images, "
        f"{needed - gout['images']} more than the {gout['images']} analysed; only an unreported "
        "exclusion of captured images (Fig 1 mentions 'inclusion and exclusion of images') "
        "would reconcile them",
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


def check_gout_claims(rows: CheckRows) -> None:
    """The text's claims about Table I (significance, best arm) and Table II (complexity)."""
    gout, table1 = papers.GOUT, papers.GOUT_TABLE1
    alpha = gout["alpha"]
    keys = ("p_acc", "p_sen", "p_spe", "p_auc")
    for arm in gout["claim_significant_vs"]:
        pvalues = {k: table1[arm][k].value for k in keys}
        smallest = min(pvalues, key=pvalues.get)
        rows.add(
            GOUT,
            f"text: 3 blocks differs significantly from {papers.GOUT_ARM_LABELS[arm]}",
            "significant",
            f"smallest printed p = {pvalues[smallest]:.2f} ({smallest})",
            f"any Table I p < {alpha}",
            pvalues[smallest] < alpha,
            note_if_inconsistent=f"no printed p against {papers.GOUT_ARM_LABELS[arm]} is below "
            f"{alpha}: " + ", ".join(f"{k} {table1[arm][k]}" for k in keys),
        )
    for arm in gout["claim_not_significant_vs"]:
        pvalues = {k: table1[arm][k].value for k in keys}
        smallest = min(pvalues, key=pvalues.get)
        rows.add(
            GOUT,
            f"text: no significant difference from {papers.GOUT_ARM_LABELS[arm]}",
            "not significant",
            f"smallest printed p = {pvalues[smallest]:.2f} ({smallest})",
            f"all Table I p >= {alpha}",
            pvalues[smallest] >= alpha,
            note_if_inconsistent=f"Table I prints p < {alpha} against "
            f"{papers.GOUT_ARM_LABELS[arm]}: "
            + ", ".join(f"{k} {table1[arm][k]}" for k in keys if table1[arm][k].value < alpha),
        )
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
    fn_counts = [count for count, _ in gout["gradcam_fn_reasons"].values()]
    rows.add(
        GOUT,
        "Grad-CAM: false-negative reasons add up to at most the false negatives",
        f"{' + '.join(map(str, fn_counts))} of {gout['gradcam_fn']}",
        f"{sum(fn_counts)}",
        "sum",
        sum(fn_counts) <= gout["gradcam_fn"],
        note_if_inconsistent=f"{sum(fn_counts) - gout['gradcam_fn']} more reasons than images: "
        "the categories overlap or a count is wrong",
    )
