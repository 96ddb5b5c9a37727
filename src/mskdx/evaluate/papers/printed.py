"""The two papers' printed numbers, as data.

Every number is kept as the text the paper prints (``Cell("83.3")``) so that its precision is
known when it is compared with a recomputation (`mskdx.evaluate.papers.check.paper_check`). These
are evidence, not ground truth: some of them do not add up, and `paper_check` says which.

Gout: Xiao L, Zhao Y, Li Y, Yan M, Liu M, Ning C. Deep learning-based automated detection and
diagnosis of gouty arthritis in ultrasound images of the first metatarsophalangeal joint.
Med Ultrason 2025 (online first). Tables I-III, abstract and results text.

OLT: Dabiry SM, Demirtas Y, Turk F, Yildirim T, Ayik G, Cakmak G. High diagnostic accuracy of a
resnet50-based deep learning model for osteochondral lesions of the talus on magnetic resonance
imaging. Jt Dis Relat Surg 2026;37(2):543-551. Table I (counts), Table II, results text.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Cell",
    "GOUT",
    "GOUT_ARM_LABELS",
    "GOUT_TABLE1",
    "GOUT_TABLE2",
    "gout_table2",
    "GOUT_TABLE3",
    "OLT",
    "OLT_CONFUSION",
    "OLT_TABLE1",
    "OLT_TABLE2",
    "OLT_TABLE2_PRINTED",
    "PrintedAuc",
    "PrintedProportion",
]


@dataclass(frozen=True)
class Cell:
    """One printed number, as printed ("83.3", ".32", "0.328")."""

    text: str

    @property
    def value(self) -> float:
        """The number."""
        return float(self.text)

    @property
    def decimals(self) -> int:
        """Digits after the decimal point as printed."""
        return len(self.text.split(".")[1]) if "." in self.text else 0

    @property
    def half_unit(self) -> float:
        """Half a unit of the last printed digit: the rounding tolerance of the cell."""
        return 0.5 * 10.0 ** (-self.decimals)

    def agrees(self, x: float) -> bool:
        """True if `x` rounds to this cell (|x - value| <= half a unit of the last digit)."""
        return abs(x - self.value) <= self.half_unit + 1e-9

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class PrintedProportion:
    """A printed proportion: value (in the paper's unit), optional count k/n and CI."""

    value: Cell
    k: int | None = None
    n: int | None = None
    low: Cell | None = None
    high: Cell | None = None
    percent: bool = True


@dataclass(frozen=True)
class PrintedAuc:
    """A printed AUC with its CI."""

    value: Cell
    low: Cell | None = None
    high: Cell | None = None


def _c(text: str) -> Cell:
    return Cell(text)


def _pp(value: str, k: int | None, n: int | None, low: str, high: str, percent: bool = True):
    return PrintedProportion(_c(value), k, n, _c(low), _c(high), percent)


# ---------------------------------------------------------------------------------------------
# Gout (Xiao et al. 2025)
# ---------------------------------------------------------------------------------------------

#: Our arm names <-> the paper's model names.
GOUT_ARM_LABELS: dict[str, str] = {
    "blocks2": "2 blocks",
    "blocks3": "3 blocks",
    "blocks4": "4 blocks",
    "blocks6": "6 blocks",
}

#: Table I (testing set), per arm: ACC/SEN/SPE in % with (k/n) and [95% CI]; AUC [95% CI];
#: p-values against 3 blocks (the paper's best; "/" for 3 blocks itself -> None). The
#: paper names McNemar's test (ACC, SEN, SPE) and the DeLong test (AUC).
GOUT_TABLE1: dict[str, dict] = {
    "blocks3": {
        "acc": _pp("83.3", 334, 401, "81.2", "85.4"),
        "sen": _pp("82.5", 184, 223, "78.7", "86.1"),
        "spe": _pp("84.1", 217, 258, "78.3", "90.2"),
        "auc": PrintedAuc(_c("0.904"), _c("0.887"), _c("0.927")),
        "p_acc": None,
        "p_sen": None,
        "p_spe": None,
        "p_auc": None,
    },
    "blocks6": {
        "acc": _pp("82.3", 330, 401, "79.8", "84.7"),
        "sen": _pp("83.0", 185, 223, "79.1", "86.8"),
        "spe": _pp("81.4", 210, 258, "75.0", "88.0"),
        "auc": PrintedAuc(_c("0.899"), _c("0.887"), _c("0.919")),
        "p_acc": _c(".32"),
        "p_sen": _c(".65"),
        "p_spe": _c(".08"),
        "p_auc": _c(".14"),
    },
    "blocks4": {
        "acc": _pp("83.0", 333, 401, "81.0", "85.2"),
        "sen": _pp("77.6", 173, 223, "70.0", "85.5"),
        "spe": _pp("87.6", 226, 258, "79.9", "95.6"),
        "auc": PrintedAuc(_c("0.901"), _c("0.890"), _c("0.926")),
        "p_acc": _c(".85"),
        "p_sen": _c(".01"),  # printed ".01*"
        "p_spe": _c(".01"),  # printed ".01*"
        "p_auc": _c(".42"),
    },
    "blocks2": {
        "acc": _pp("82.6", 331, 401, "80.5", "84.8"),
        "sen": _pp("81.6", 182, 223, "77.5", "85.8"),
        "spe": _pp("83.3", 215, 258, "77.6", "88.9"),
        "auc": PrintedAuc(_c("0.901"), _c("0.887"), _c("0.920")),
        "p_acc": _c(".52"),
        "p_sen": _c(".74"),
        "p_spe": _c(".56"),
        "p_auc": _c(".22"),
    },
}

#: Table II: computational load (FLOPs, millions) and parameters (millions).
GOUT_TABLE2: dict[str, dict[str, Cell]] = {
    "blocks2": {"flops_m": _c("7558.27"), "params_m": _c("4.61")},
    "blocks3": {"flops_m": _c("2963.73"), "params_m": _c("4.91")},
    "blocks4": {"flops_m": _c("4012.33"), "params_m": _c("4.91")},
    "blocks6": {"flops_m": _c("6093.39"), "params_m": _c("5.28")},
}


def gout_table2() -> dict[int, dict[str, float]]:
    """Table II by block count: params (M) and "FLOPs" (M; multiply-accumulates as thop counts
    them, see `mskdx.learn.models.complexity`) at a 3x320x700 input."""
    return {
        int(arm.removeprefix("blocks")): {
            "params_m": r["params_m"].value,
            "macs_m": r["flops_m"].value,
        }
        for arm, r in GOUT_TABLE2.items()
    }


#: Table III: patient-level diagnosis of the 3-block model per fold (paper "Fold 1".."Fold 5"
#: = our folds 0..4) and the printed "average"; ACC/SEN/SPE in %, threshold as a fraction.
GOUT_TABLE3: dict[str, dict[str, Cell]] = {
    "Fold 1": {"acc": _c("92.31"), "sen": _c("95.65"), "spe": _c("87.50"), "threshold": _c("0.28")},
    "Fold 2": {"acc": _c("89.47"), "sen": _c("95.65"), "spe": _c("80.00"), "threshold": _c("0.30")},
    "Fold 3": {
        "acc": _c("94.74"),
        "sen": _c("91.30"),
        "spe": _c("100.00"),
        "threshold": _c("0.36"),
    },
    "Fold 4": {"acc": _c("84.21"), "sen": _c("95.65"), "spe": _c("66.67"), "threshold": _c("0.34")},
    "Fold 5": {
        "acc": _c("94.74"),
        "sen": _c("91.30"),
        "spe": _c("100.00"),
        "threshold": _c("0.36"),
    },
    "average": {
        "acc": _c("91.10"),
        "sen": _c("93.91"),
        "spe": _c("86.84"),
        "threshold": _c("0.33"),
    },
}

#: Numbers from the abstract and the text.
GOUT: dict = {
    "images": 2401,  # abstract, Methods, Results
    "patients": 260,
    "patients_gout": 149,
    "patients_control": 111,
    "images_gout": 1389,  # Results: "1389 images from 149 patients"
    "images_control": 1021,  # Results: "1021 images from 111 patients"
    "folds": 5,
    "train_test_ratio": 4,  # abstract: "five-fold cross-validation method (training set = 4:1)"
    "train_patients": 209,  # Results: "the training set includes data from 209 patients"
    "test_patients": 51,  # "... and the testing set includes data from 51 patients"
    # Results text: "thresholds for the five folds ... 0.28, 0.30, 0.36, 0.34, and 0.34, with an
    # average of 0.33"; Table III prints 0.36 for fold 5.
    "text_thresholds": tuple(_c(t) for t in ("0.28", "0.30", "0.36", "0.34", "0.34")),
    "text_threshold_average": _c("0.33"),
    "threshold_step": 0.02,  # "Set the threshold from 0 to 1 (interval of 0.02)"
    "abstract_threshold": _c("0.328"),
    "abstract_auc": PrintedAuc(_c("0.904"), _c("0.887"), _c("0.927")),
    # Abstract: "accuracy of 91.1% (95% CI: 90.4%~91.8%)"; Results: "91.10% (46/51, 95% CI:
    # 90.4%, 91.8%), sensitivity was 93.91% (95% CI: 89.2%, 98.6%), and specificity was 86.84%
    # (95% CI: 79.9%, 93.8%)".
    "abstract_accuracy": _pp("91.1", None, None, "90.4", "91.8"),
    "diagnostic_accuracy": _pp("91.10", 46, 51, "90.4", "91.8"),
    "diagnostic_sensitivity": _pp("93.91", None, None, "89.2", "98.6"),
    "diagnostic_specificity": _pp("86.84", None, None, "79.9", "93.8"),
    # Results: "3 residual blocks ... statistically significant difference compared to the
    # 6-block model, no statistically significant difference compared to the 2 and 4-block".
    "claim_significant_vs": ("blocks6",),
    "claim_not_significant_vs": ("blocks2", "blocks4"),
    # The sentence is about "both the AUC value and ACC" (its own words), not SEN or SPE.
    "claim_quantities": ("p_auc", "p_acc"),
    "alpha": 0.05,  # "Two-sided p < 0.05 was considered indicative of statistically significant"
    # Grad-CAM: "predictions for 2000 images were in agreement ..., while 401 images showed
    # discrepancies"; false negatives (x/197) and false positives (x/204), focus errors (x/30).
    "gradcam_agree": 2000,
    "abstract_gradcam_agree": 2000,  # "aligned with radiologist opinions in 2000 images"
    "gradcam_disagree": 401,
    "gradcam_fn": 197,
    "gradcam_fp": 204,
    "gradcam_fn_reasons": {
        "scattered aggregates": (69, _c("35.03")),
        "subtle synovial thickening": (59, _c("29.95")),
        "mild DCs": (76, _c("38.58")),
    },
    "gradcam_fp_reasons": {
        "irregular bone structure": (23, _c("11.27")),
        "anisotropy of ligaments and tendons": (47, _c("23.04")),
        "cartilage interface sign": (10, _c("4.90")),
    },
    # "the model tends to incorrectly focus on ...": dorsal "(66.67%, 20/30)", medial
    # "(33.33%, 10/30)".
    "gradcam_focus_errors": 30,
    "gradcam_focus_reasons": {
        "dorsal: deep bone beyond the US waves": (20, _c("66.67")),
        "medial: coupling-agent pseudo-shadow": (10, _c("33.33")),
    },
    # Methods: "At least 10 static images were captured from each patient".
    "min_images_per_patient": 10,
    # Methods: "Patients from 'Gout group' and 'Control group' were randomly divided into 5
    # subgroups of approximately equal size".
    "folds_within_groups": True,
}


# ---------------------------------------------------------------------------------------------
# OLT (Dabiry et al. 2026)
# ---------------------------------------------------------------------------------------------

#: Table I: number of images per sequence, subset and class.
OLT_TABLE1: dict[str, dict[str, dict[str, int]]] = {
    "T1": {
        "train": {"patient": 68, "healthy": 289},
        "val": {"patient": 24, "healthy": 95},
        "test": {"patient": 28, "healthy": 91},
    },
    "T2": {
        "train": {"patient": 81, "healthy": 318},
        "val": {"patient": 19, "healthy": 114},
        "test": {"patient": 27, "healthy": 106},
    },
}

#: Confusion counts on the test set from the results text: T1 "correctly identifying 23 out of
#: 28 patient samples and 89 out of 91 healthy controls"; T2 "correctly identified 22 out of 27
#: patients, it misclassified 12 out of 106 healthy individuals".
OLT_CONFUSION: dict[str, dict[str, int]] = {
    "T1": {"tp": 23, "fn": 28 - 23, "tn": 89, "fp": 91 - 89},
    "T2": {"tp": 22, "fn": 27 - 22, "tn": 106 - 12, "fp": 12},
}

#: Table II exactly as printed: four rows; the AUC-ROC and Accuracy columns are filled only on
#: the two T1 rows, and the "(T1) Healthy" row holds 0.91 [0.85-0.95] and 87.2% [80.5-91.9],
#: which the abstract and text give as T2's AUC and accuracy.
OLT_TABLE2_PRINTED: dict[tuple[str, str], dict] = {
    ("T1", "patient"): {
        "precision": _pp("0.92", None, None, "0.75", "0.98", percent=False),
        "recall": _pp("0.82", None, None, "0.64", "0.92", percent=False),
        "f1": _c("0.87"),
        "auc": PrintedAuc(_c("0.93"), _c("0.87"), _c("0.97")),
        "accuracy": _pp("94.1", None, None, "88.3", "97.1"),
    },
    ("T1", "healthy"): {
        "precision": _pp("0.95", None, None, "0.91", "0.99", percent=False),
        "recall": _pp("0.98", None, None, "0.95", "1.00", percent=False),
        "f1": _c("0.96"),
        "auc": PrintedAuc(_c("0.91"), _c("0.85"), _c("0.95")),
        "accuracy": _pp("87.2", None, None, "80.5", "91.9"),
    },
    ("T2", "patient"): {
        "precision": _pp("0.65", None, None, "0.46", "0.80", percent=False),
        "recall": _pp("0.81", None, None, "0.63", "0.92", percent=False),
        "f1": _c("0.72"),
        "auc": None,
        "accuracy": None,
    },
    ("T2", "healthy"): {
        "precision": _pp("0.95", None, None, "0.91", "0.99", percent=False),
        "recall": _pp("0.89", None, None, "0.83", "0.95", percent=False),
        "f1": _c("0.92"),
        "auc": None,
        "accuracy": None,
    },
}

#: Per-sequence AUC and accuracy as the abstract and text state them (T1 from the "(T1)
#: Patient" row and the text, T2 from the text; see OLT_TABLE2_PRINTED for the misplaced cells),
#: sensitivity/specificity from the text.
OLT: dict = {
    "scans": 219,
    "scans_olt": 60,
    "scans_healthy": 159,
    "subjects_patient": 87,  # "the dataset included 87 patient and 302 healthy subject subfolders"
    "subjects_healthy": 302,
    # "Following data augmentation, 595 images were obtained for T1 and 665 for T2", although
    # "Augmentation was performed on-the-fly during training ... without artificially expanding
    # the dataset size".
    "images": {"T1": 595, "T2": 665},
    "images_after_augmentation": True,
    "augmentation_on_the_fly": True,
    # "For each case, T1- and T2-weighted coronal and sagittal plane images were selected";
    # Limitations: "the utilization of only 2D axial MRI slices for model training".
    "planes_methods": ("coronal", "sagittal"),
    "planes_limitations": ("axial",),
    "screened_scans": 478,  # "a total of 478 ankle and foot MRI scans"
    "fractions": (0.6, 0.2, 0.2),
    "T1": {
        "accuracy": _pp("94.1", None, None, "88.3", "97.1"),
        "auc": PrintedAuc(_c("0.93"), _c("0.87"), _c("0.97")),
        "sensitivity": _c("82.1"),
        "specificity": _c("97.8"),
    },
    "T2": {
        "accuracy": _pp("87.2", None, None, "80.5", "91.9"),
        "auc": PrintedAuc(_c("0.91"), _c("0.85"), _c("0.95")),
        "specificity": _c("89.0"),
    },
    # Statistical analysis: "95% CIs were calculated for accuracy, precision, recall, and
    # ROC-AUC using the Wilson score interval method".
    "ci_method": "Wilson score interval",
    # Results: T2's AUC "while strong, statistically trails the T1-weighted performance" (no
    # test named, no p-value printed).
    "claim_t1_auc_greater": True,
}

#: Table II per (sequence, class), with AUC and accuracy assigned to the sequence they belong to
#: (the values printed beside our `olt_table`).
OLT_TABLE2: dict[tuple[str, str], dict] = {
    key: {
        "precision": row["precision"],
        "recall": row["recall"],
        "f1": row["f1"],
        "auc": OLT[key[0]]["auc"],
        "accuracy": OLT[key[0]]["accuracy"],
    }
    for key, row in OLT_TABLE2_PRINTED.items()
}
