"""Recompute the two papers' summary numbers from their own printed counts; flag what disagrees."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.stats import norm
from statsmodels.stats.proportion import proportion_confint

from mskdx import papers
from mskdx.papers.printed import Cell, PrintedAuc, PrintedProportion
from mskdx.stats import hanley_mcneil_se, wilson_ci

__all__ = ["paper_check"]


# ---------------------------------------------------------------------------------------------
# Paper check: recompute the papers' summary numbers from their printed counts
# ---------------------------------------------------------------------------------------------

#: What each CI method applies to (for the "method fits the quantity" checks).
METHOD_SCOPE = {
    "Wilson score interval": "binomial proportion",
    "DeLong": "AUC",
    "Hanley-McNeil": "AUC",
}


def _r(x: float, cell: Cell) -> str:
    """Format a recomputed value to the printed precision of `cell`."""
    return f"{x:.{cell.decimals}f}"


def _ci_text(low: Cell | str, high: Cell | str) -> str:
    return f"[{low}, {high}]"


class _Check:
    """Accumulate paper_check rows."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(
        self,
        paper: str,
        quantity: str,
        printed: str,
        recomputed: str,
        method: str,
        consistent: bool,
        note: str = "",
        if_not: str = "",
    ) -> None:
        """Add a row; `if_not` is appended to the note only when the check fails."""
        if not consistent and if_not:
            note = f"{note}; {if_not}" if note else if_not
        self.rows.append(
            {
                "paper": paper,
                "quantity": quantity,
                "printed": printed,
                "recomputed": recomputed,
                "method": method,
                "consistent": bool(consistent),
                "note": note,
            }
        )

    def proportion(
        self, paper: str, quantity: str, cell: Cell, k: int, n: int, percent: bool, note: str = ""
    ) -> float:
        scale = 100.0 if percent else 1.0
        value = scale * k / n
        self.add(
            paper,
            quantity,
            f"{cell} ({k}/{n})" if percent else f"{cell}",
            f"{_r(value, cell)} ({k}/{n})",
            f"k/n{' x 100' if percent else ''}",
            cell.agrees(value),
            note,
            if_not=_near_miss(cell, value),
        )
        return value

    def wilson(
        self,
        paper: str,
        quantity: str,
        low: Cell,
        high: Cell,
        k: int,
        n: int,
        percent: bool,
        method_note: str = "",
        note: str = "",
    ) -> tuple[float, float]:
        scale = 100.0 if percent else 1.0
        lo, hi = (scale * v for v in wilson_ci(k, n))
        self.add(
            paper,
            quantity,
            _ci_text(low, high),
            f"{_ci_text(_r(lo, low), _r(hi, high))} ({k}/{n})",
            "Wilson score interval, 95%" + (f" ({method_note})" if method_note else ""),
            low.agrees(lo) and high.agrees(hi),
            note,
            if_not="; ".join(m for m in (_near_miss(low, lo), _near_miss(high, hi)) if m),
        )
        return lo, hi


def _near_miss(cell: Cell, value: float) -> str:
    """A note when `value` misses `cell` by less than one unit of its last digit, else ""."""
    if cell.agrees(value) or abs(value - cell.value) >= 2 * cell.half_unit:
        return ""
    return (
        f"{value:.{cell.decimals + 2}f} rounds to {_r(value, cell)}, not {cell}: off by one in "
        "the last digit (truncated rather than rounded?)"
    )


def _reconstruct_fold(acc: Cell, sen: Cell, spe: Cell, max_pos: int, max_neg: int) -> list[tuple]:
    """All (P, N, TP, TN) with P <= max_pos, N <= max_neg whose percentages round to the cells."""
    pos = [
        (p, tp)
        for p in range(1, max_pos + 1)
        for tp in {math.floor(sen.value * p / 100), math.ceil(sen.value * p / 100)}
        if 0 <= tp <= p and sen.agrees(100 * tp / p)
    ]
    neg = [
        (n, tn)
        for n in range(1, max_neg + 1)
        for tn in {math.floor(spe.value * n / 100), math.ceil(spe.value * n / 100)}
        if 0 <= tn <= n and spe.agrees(100 * tn / n)
    ]
    return sorted(
        (p, n, tp, tn) for p, tp in pos for n, tn in neg if acc.agrees(100 * (tp + tn) / (p + n))
    )


def _reachable(options: list[set[tuple[int, int]]], limit: tuple[int, int]) -> set[tuple[int, int]]:
    """All (sum P, sum N) from choosing one (P, N) per fold, capped at `limit`."""
    reach = {(0, 0)}
    for opts in options:
        reach = {
            (a + p, b + n)
            for a, b in reach
            for p, n in opts
            if a + p <= limit[0] and b + n <= limit[1]
        }
    return reach


def _check_gout(chk: _Check) -> None:
    g, t1 = papers.GOUT, papers.GOUT_TABLE1
    P = "gout"
    # Table I: each percentage from its count, each CI against Wilson, counts against each other.
    for arm, row in t1.items():
        label = papers.GOUT_ARM_LABELS[arm]
        for name, title in (("acc", "ACC"), ("sen", "SEN"), ("spe", "SPE")):
            pp: PrintedProportion = row[name]
            chk.proportion(P, f"Table I {label} {title} %", pp.value, pp.k, pp.n, True)
            chk.wilson(
                P,
                f"Table I {label} {title} 95% CI",
                pp.low,
                pp.high,
                pp.k,
                pp.n,
                True,
                method_note="the paper names no CI method",
            )
        acc, sen, spe = row["acc"], row["sen"], row["spe"]
        chk.add(
            P,
            f"Table I {label}: SEN n + SPE n = ACC n",
            f"{sen.n} + {spe.n} vs {acc.n}",
            f"{sen.n + spe.n}",
            "every test image is gout or control",
            sen.n + spe.n == acc.n,
            if_not=f"{sen.n + spe.n} is about one fold ({g['images']} / {g['folds']} = "
            f"{g['images'] / g['folds']:.1f} images), not {acc.n}",
        )
        chk.add(
            P,
            f"Table I {label}: SEN k + SPE k = ACC k (TP + TN = correct)",
            f"{sen.k} + {spe.k} vs {acc.k}",
            f"{sen.k + spe.k}",
            "correct images = true positives + true negatives",
            sen.k + spe.k == acc.k,
        )
        auc: PrintedAuc = row["auc"]
        mid = (auc.low.value + auc.high.value) / 2
        tol = auc.value.half_unit + auc.low.half_unit
        chk.add(
            P,
            f"Table I {label} AUC CI centred on the AUC",
            f"{auc.value} {_ci_text(auc.low, auc.high)}",
            f"midpoint {mid:.4f}",
            "a DeLong (normal) CI is AUC +- 1.96 SE, symmetric unless clipped at 1",
            abs(mid - auc.value.value) <= tol + 1e-9,
            if_not="asymmetric: not a DeLong/normal interval; the paper does not say how it "
            "was made",
        )
    # Test images: 5-fold CV tests every image once.
    acc_n = t1["blocks3"]["acc"].n
    chk.add(
        P,
        "Table I test images (ACC n)",
        f"{acc_n}",
        f"{g['images']} pooled over folds; {g['images'] / g['folds']:.1f} per fold",
        "five-fold CV: each of the 2401 images is tested once",
        acc_n in (g["images"], round(g["images"] / g["folds"])),
        if_not=f"{acc_n} is neither the pooled test set nor one fold",
    )
    # Cohort counts.
    chk.add(
        P,
        "gout images + control images = all images",
        f"{g['images_gout']} + {g['images_control']} vs {g['images']}",
        f"{g['images_gout'] + g['images_control']}",
        "sum",
        g["images_gout"] + g["images_control"] == g["images"],
    )
    chk.add(
        P,
        "gout patients + control patients = all patients",
        f"{g['patients_gout']} + {g['patients_control']} vs {g['patients']}",
        f"{g['patients_gout'] + g['patients_control']}",
        "sum",
        g["patients_gout"] + g["patients_control"] == g["patients"],
    )
    chk.add(
        P,
        "training + testing patients = all patients",
        f"{g['train_patients']} + {g['test_patients']} vs {g['patients']}",
        f"{g['train_patients'] + g['test_patients']}",
        "sum",
        g["train_patients"] + g["test_patients"] == g["patients"],
    )
    per_fold = g["patients"] / g["folds"]
    chk.add(
        P,
        "testing patients per fold",
        f"{g['test_patients']}",
        f"{per_fold:g}",
        f"{g['patients']} patients / {g['folds']} folds",
        abs(g["test_patients"] - per_fold) < 1,
    )
    # Diagnostic accuracy 46/51.
    da: PrintedProportion = g["diagnostic_accuracy"]
    chk.proportion(P, "diagnostic accuracy (text, 46/51)", da.value, da.k, da.n, True)
    ab: PrintedProportion = g["abstract_accuracy"]
    chk.proportion(
        P, "diagnostic accuracy (abstract)", ab.value, da.k, da.n, True, "count from the text"
    )
    chk.wilson(P, "diagnostic accuracy 95% CI (text, abstract)", da.low, da.high, da.k, da.n, True)
    # Table III: mean of folds vs printed average.
    t3 = papers.GOUT_TABLE3
    folds = [v for k, v in t3.items() if k != "average"]
    for name, title in (("acc", "ACC"), ("sen", "SEN"), ("spe", "SPE"), ("threshold", "threshold")):
        printed = t3["average"][name]
        mean = float(np.mean([f[name].value for f in folds]))
        chk.add(
            P,
            f"Table III average {title} = mean of folds",
            f"{printed}",
            _r(mean, printed),
            "mean of the five printed fold values (the paper: 'average')",
            printed.agrees(mean),
        )
    # Table III: smallest patient counts that reproduce each fold's ACC/SEN/SPE.
    max_pos, max_neg = g["patients_gout"], g["patients_control"]
    options, smallest = [], []
    for fold_name, f in folds_named(t3):
        cands = _reconstruct_fold(f["acc"], f["sen"], f["spe"], max_pos, max_neg)
        options.append({(p, n) for p, n, _, _ in cands})
        if cands:
            p, n, tp, tn = min(cands, key=lambda c: (c[0] + c[1], c))
            smallest.append((p, n, tp, tn))
            text = f"{tp}/{p} gout + {tn}/{n} control = {tp + tn}/{p + n}"
        else:
            smallest.append(None)
            text = "none"
        chk.add(
            P,
            f"Table III {fold_name}: patient counts behind ACC/SEN/SPE",
            f"{f['acc']} / {f['sen']} / {f['spe']}",
            text,
            f"smallest P <= {max_pos} gout, N <= {max_neg} control patients whose ACC, SEN, "
            "SPE round to the printed values",
            bool(cands),
        )
    if all(s is not None for s in smallest):
        tp = sum(s[2] for s in smallest)
        pos = sum(s[0] for s in smallest)
        tn = sum(s[3] for s in smallest)
        neg = sum(s[1] for s in smallest)
        avg = t3["average"]
        for name, title, k, n in (
            ("acc", "ACC", tp + tn, pos + neg),
            ("sen", "SEN", tp, pos),
            ("spe", "SPE", tn, neg),
        ):
            value = 100 * k / n
            chk.add(
                P,
                f"Table III average {title} = pooled over the reconstructed folds",
                f"{avg[name]}",
                f"{_r(value, avg[name])} ({k}/{n})",
                "test patients of the five folds counted together (smallest counts per fold)",
                avg[name].agrees(value),
                "the 'average' row matches pooling, not the mean of the folds"
                if avg[name].agrees(value)
                else "",
            )
        reach = _reachable(options, (max_pos, max_neg))
        target = (g["patients_gout"], g["patients_control"])
        chk.add(
            P,
            "Table III folds cover all 260 patients (149 gout + 111 control)",
            f"{g['patients']} patients in {g['folds']} test folds",
            f"smallest counts: {pos} gout + {neg} control = {pos + neg}; "
            f"{'a' if target in reach else 'no'} combination of admissible counts gives "
            f"{target[0]} + {target[1]}",
            "each patient is tested once in five-fold CV",
            target in reach,
        )
        for name, title, k, n in (
            ("diagnostic_sensitivity", "SEN", tp, pos),
            ("diagnostic_specificity", "SPE", tn, neg),
        ):
            pp = g[name]
            chk.wilson(
                P,
                f"diagnostic {title} 95% CI (text)",
                pp.low,
                pp.high,
                k,
                n,
                True,
                method_note="counts reconstructed from Table III",
            )
    # Thresholds: text vs Table III, averages.
    for (fold_name, f), text in zip(folds_named(t3), g["text_thresholds"], strict=True):
        chk.add(
            P,
            f"threshold {fold_name}: text vs Table III",
            f"text {text}, table {f['threshold']}",
            f"{f['threshold'].value - text.value:+.2f}",
            "difference",
            f["threshold"].value == text.value,
            if_not="the text's list and Table III disagree",
        )
    text_mean = float(np.mean([c.value for c in g["text_thresholds"]]))
    chk.add(
        P,
        "text threshold average = mean of the text's thresholds",
        f"{g['text_threshold_average']}",
        _r(text_mean, g["text_threshold_average"]),
        "mean",
        g["text_threshold_average"].agrees(text_mean),
    )
    table_mean = float(np.mean([f["threshold"].value for f in folds]))
    chk.add(
        P,
        "abstract threshold = mean of Table III thresholds",
        f"{g['abstract_threshold']}",
        _r(table_mean, g["abstract_threshold"]),
        "mean",
        g["abstract_threshold"].agrees(table_mean),
    )
    # Claims about significance against the printed p-values.
    alpha = g["alpha"]
    for arm in g["claim_significant_vs"]:
        ps = {k: t1[arm][k].value for k in ("p_acc", "p_sen", "p_spe", "p_auc")}
        chk.add(
            P,
            f"text: 3 blocks differs significantly from {papers.GOUT_ARM_LABELS[arm]}",
            "significant",
            f"smallest printed p = {min(ps.values()):.2f} ({min(ps, key=ps.get)})",
            f"any Table I p < {alpha}",
            min(ps.values()) < alpha,
        )
    for arm in g["claim_not_significant_vs"]:
        ps = {k: t1[arm][k].value for k in ("p_acc", "p_sen", "p_spe", "p_auc")}
        chk.add(
            P,
            f"text: no significant difference from {papers.GOUT_ARM_LABELS[arm]}",
            "not significant",
            f"smallest printed p = {min(ps.values()):.2f} ({min(ps, key=ps.get)})",
            f"all Table I p >= {alpha}",
            min(ps.values()) >= alpha,
        )
    for name, title in (("auc", "AUC"), ("acc", "ACC")):
        values = {arm: row[name].value.value for arm, row in t1.items()}
        top = max(values, key=values.get)
        chk.add(
            P,
            f"text: 3 blocks has the highest {title}",
            "3 blocks",
            f"{papers.GOUT_ARM_LABELS[top]} ({values[top]:g})",
            "maximum over Table I",
            top == "blocks3" and sorted(values.values())[-2] < values[top],
        )
    # Table II claims.
    flops = {arm: v["flops_m"].value for arm, v in papers.GOUT_TABLE2.items()}
    params = {arm: v["params_m"].value for arm, v in papers.GOUT_TABLE2.items()}
    for quantity, values, pick, expected in (
        ("text: 3 blocks has the fewest FLOPs", flops, min, "blocks3"),
        ("text: 2 blocks has the most FLOPs", flops, max, "blocks2"),
        ("text: 2 blocks has the fewest parameters", params, min, "blocks2"),
    ):
        arm = pick(values, key=values.get)
        chk.add(
            P,
            quantity,
            papers.GOUT_ARM_LABELS[expected],
            f"{papers.GOUT_ARM_LABELS[arm]} ({values[arm]:g})",
            "Table II",
            arm == expected,
        )
    # Grad-CAM counts.
    chk.add(
        P,
        "Grad-CAM: agreeing + disagreeing images = all images",
        f"{g['gradcam_agree']} + {g['gradcam_disagree']} vs {g['images']}",
        f"{g['gradcam_agree'] + g['gradcam_disagree']}",
        "sum",
        g["gradcam_agree"] + g["gradcam_disagree"] == g["images"],
    )
    chk.add(
        P,
        "Grad-CAM: false negatives + false positives = disagreeing images",
        f"{g['gradcam_fn']} + {g['gradcam_fp']} vs {g['gradcam_disagree']}",
        f"{g['gradcam_fn'] + g['gradcam_fp']}",
        "sum",
        g["gradcam_fn"] + g["gradcam_fp"] == g["gradcam_disagree"],
    )
    for total_key, reasons_key in (
        ("gradcam_fn", "gradcam_fn_reasons"),
        ("gradcam_fp", "gradcam_fp_reasons"),
    ):
        total = g[total_key]
        for reason, (k, cell) in g[reasons_key].items():
            chk.proportion(P, f"Grad-CAM {reason} (of {total})", cell, k, total, True)
    fn_sum = sum(k for k, _ in g["gradcam_fn_reasons"].values())
    chk.add(
        P,
        "Grad-CAM: false-negative reasons add up to at most the false negatives",
        f"{' + '.join(str(k) for k, _ in g['gradcam_fn_reasons'].values())} of {g['gradcam_fn']}",
        f"{fn_sum}",
        "sum",
        fn_sum <= g["gradcam_fn"],
        if_not="more reasons than images: the categories overlap or a count is wrong",
    )


def folds_named(t3: dict[str, dict[str, Cell]]) -> list[tuple[str, dict[str, Cell]]]:
    """Table III's fold rows (without the average) as (name, cells)."""
    return [(k, v) for k, v in t3.items() if k != "average"]


def _check_olt(chk: _Check) -> None:
    o, t1 = papers.OLT, papers.OLT_TABLE1
    P = "olt"
    for seq, subsets in t1.items():
        total = sum(sum(c.values()) for c in subsets.values())
        chk.add(
            P,
            f"Table I {seq}: images add up",
            f"{o['images'][seq]}",
            f"{total}",
            "sum over subsets and classes",
            total == o["images"][seq],
        )
        shares = [sum(subsets[s].values()) / total for s in ("train", "val", "test")]
        chk.add(
            P,
            f"Table I {seq}: 60/20/20 split",
            "60:20:20",
            "/".join(f"{100 * s:.1f}" for s in shares),
            "share of images per subset",
            all(abs(s - f) <= 0.01 for s, f in zip(shares, o["fractions"], strict=True)),
            "within 1 point of 60/20/20 at the image level, although the split is said to be "
            "by patient",
        )
    chk.add(
        P,
        "scans with OLT + without = all scans",
        f"{o['scans_olt']} + {o['scans_healthy']} vs {o['scans']}",
        f"{o['scans_olt'] + o['scans_healthy']}",
        "sum",
        o["scans_olt"] + o["scans_healthy"] == o["scans"],
    )
    for key, scans in (("subjects_patient", "scans_olt"), ("subjects_healthy", "scans_healthy")):
        chk.add(
            P,
            f"{key.replace('_', ' ')} subfolders = {scans.replace('_', ' ')}",
            f"{o[key]}",
            f"{o[scans]}",
            "same cohort counted twice",
            o[key] == o[scans],
        )
    for seq, cm in papers.OLT_CONFUSION.items():
        tp, fn, tn, fp = cm["tp"], cm["fn"], cm["tn"], cm["fp"]
        test = t1[seq]["test"]
        chk.add(
            P,
            f"{seq}: text confusion counts vs Table I test set",
            f"{test['patient']} patient + {test['healthy']} healthy",
            f"{tp + fn} + {tn + fp}",
            "TP + FN, TN + FP",
            (tp + fn, tn + fp) == (test["patient"], test["healthy"]),
        )
        n = tp + fn + tn + fp
        acc: PrintedProportion = o[seq]["accuracy"]
        chk.proportion(P, f"{seq} accuracy %", acc.value, tp + tn, n, True)
        chk.wilson(P, f"{seq} accuracy 95% CI", acc.low, acc.high, tp + tn, n, True)
        if "sensitivity" in o[seq]:
            chk.proportion(P, f"{seq} sensitivity %", o[seq]["sensitivity"], tp, tp + fn, True)
        if "specificity" in o[seq]:
            chk.proportion(P, f"{seq} specificity %", o[seq]["specificity"], tn, tn + fp, True)
        counts = {
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
        for cls in ("patient", "healthy"):
            printed = papers.OLT_TABLE2_PRINTED[(seq, cls)]
            for metric in ("precision", "recall"):
                pp: PrintedProportion = printed[metric]
                k, m = counts[cls][metric]
                chk.proportion(P, f"Table II ({seq}) {cls} {metric}", pp.value, k, m, False)
                chk.wilson(
                    P, f"Table II ({seq}) {cls} {metric} 95% CI", pp.low, pp.high, k, m, False
                )
            k, m = counts[cls]["f1"]
            f1 = printed["f1"]
            chk.add(
                P,
                f"Table II ({seq}) {cls} F1",
                f"{f1}",
                f"{_r(k / m, f1)} ({k}/{m})",
                "F1 = 2 TP / (2 TP + FP + FN) from the text's confusion counts",
                f1.agrees(k / m),
            )
    # Table II: the "(T1) Healthy" row's AUC and accuracy cells.
    cm1, cm2 = papers.OLT_CONFUSION["T1"], papers.OLT_CONFUSION["T2"]
    printed = papers.OLT_TABLE2_PRINTED[("T1", "healthy")]
    acc_cell: PrintedProportion = printed["accuracy"]
    n1 = sum(cm1.values())
    n2 = sum(cm2.values())
    a1 = 100 * (cm1["tp"] + cm1["tn"]) / n1
    a2 = 100 * (cm2["tp"] + cm2["tn"]) / n2
    lo2, hi2 = (100 * v for v in wilson_ci(cm2["tp"] + cm2["tn"], n2))
    chk.add(
        P,
        "Table II (T1) Healthy row: accuracy cell = T1 accuracy",
        f"{acc_cell.value}% {_ci_text(acc_cell.low, acc_cell.high)}",
        f"{_r(a1, acc_cell.value)}",
        "T1 (TP + TN) / n from the text's counts",
        acc_cell.value.agrees(a1),
        f"the cell equals T2's accuracy {_r(a2, acc_cell.value)}% "
        f"{_ci_text(_r(lo2, acc_cell.low), _r(hi2, acc_cell.high))}"
        if acc_cell.value.agrees(a2)
        else "",
    )
    auc_cell: PrintedAuc = printed["auc"]
    t1_auc, t2_auc = o["T1"]["auc"], o["T2"]["auc"]
    chk.add(
        P,
        "Table II (T1) Healthy row: AUC cell = T1 AUC",
        f"{auc_cell.value} {_ci_text(auc_cell.low, auc_cell.high)}",
        f"{t1_auc.value} {_ci_text(t1_auc.low, t1_auc.high)}",
        "T1 AUC as printed on the (T1) Patient row and in the text (one AUC per model)",
        auc_cell.value.value == t1_auc.value.value,
        "the cell holds T2's AUC from the text"
        if (auc_cell.value, auc_cell.low, auc_cell.high) == (t2_auc.value, t2_auc.low, t2_auc.high)
        else "",
    )
    # AUC CIs "using the Wilson score interval method".
    z = norm.ppf(0.975)
    ses = {}
    for seq, cm in papers.OLT_CONFUSION.items():
        auc: PrintedAuc = o[seq]["auc"]
        m, n = cm["tp"] + cm["fn"], cm["tn"] + cm["fp"]
        chk.add(
            P,
            f"{seq} AUC 95% CI method",
            o["ci_method"],
            f"{o['ci_method']} applies to a {METHOD_SCOPE[o['ci_method']]}",
            "scope of the named method",
            METHOD_SCOPE[o["ci_method"]] == "AUC",
            if_not="an AUC is not a proportion of independent trials; use DeLong (needs the "
            "scores) or Hanley-McNeil",
        )
        # AUC = U / (m n) with U a multiple of 1/2; keep those that round to the printed AUC.
        u = np.arange(0, 2 * m * n + 1) / (2.0 * m * n)
        u = u[np.abs(u - auc.value.value) <= auc.value.half_unit + 1e-12]
        lo, hi = proportion_confint(u * (m + n), m + n, method="wilson")
        fits = u[
            (np.abs(lo - auc.low.value) <= auc.low.half_unit + 1e-9)
            & (np.abs(hi - auc.high.value) <= auc.high.half_unit + 1e-9)
        ]
        lo_p, hi_p = proportion_confint(auc.value.value * (m + n), m + n, method="wilson")
        chk.add(
            P,
            f"{seq} AUC 95% CI as the paper says (Wilson on the AUC, n = {m + n} images)",
            _ci_text(auc.low, auc.high),
            _ci_text(_r(lo_p, auc.low), _r(hi_p, auc.high))
            + (
                f" at AUC {auc.value}; printed CI reached for AUC {fits.min():.4f}-{fits.max():.4f}"
                if fits.size
                else f" at AUC {auc.value}; no AUC that rounds to {auc.value} gives the printed CI"
            ),
            f"Wilson score interval of AUC x {m + n} successes in {m + n} test images, for every "
            f"attainable AUC (U / ({m} x {n})) that rounds to the printed one",
            bool(fits.size),
            "consistent = the paper's CI is what Wilson on the AUC gives: the stated method was "
            "used, and it is not a valid CI for an AUC"
            if fits.size
            else "",
        )
        se = hanley_mcneil_se(auc.value.value, m, n)
        ses[seq] = (auc.value.value, se)
        lo, hi = auc.value.value - z * se, min(1.0, auc.value.value + z * se)
        chk.add(
            P,
            f"{seq} AUC 95% CI, Hanley-McNeil",
            _ci_text(auc.low, auc.high),
            _ci_text(_r(lo, auc.low), _r(hi, auc.high)),
            f"Hanley & McNeil (1982) SE from AUC, {m} positives, {n} negatives; AUC +- 1.96 SE",
            auc.low.agrees(lo) and auc.high.agrees(hi),
        )
    (a1_, se1), (a2_, se2) = ses["T1"], ses["T2"]
    zz = (a1_ - a2_) / math.hypot(se1, se2)
    p = 2 * norm.sf(abs(zz))
    chk.add(
        P,
        "text: T2 AUC 'statistically trails' T1",
        "T1 0.93 > T2 0.91, significant",
        f"z = {zz:.2f}, p = {p:.2f}",
        "two independent AUCs, Hanley-McNeil SEs (the paper names no test)",
        p < 0.05,
        if_not=f"a {a1_ - a2_:.2f} difference on {n1} and {n2} test images is not significant",
    )


def paper_check() -> pd.DataFrame:
    """Recompute the papers' summary numbers from their printed counts; flag what disagrees.

    Each row is one computation: ``printed`` (the paper's text), ``recomputed`` (ours, rounded
    to the printed precision), ``method`` (how), ``consistent`` (True if the printed value is
    reproduced to its printed precision, or the printed claim holds), ``note``.
    """
    chk = _Check()
    _check_gout(chk)
    _check_olt(chk)
    return pd.DataFrame(
        chk.rows,
        columns=["paper", "quantity", "printed", "recomputed", "method", "consistent", "note"],
    )
