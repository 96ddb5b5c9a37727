"""A model card per arm (markdown), generated from the run's own tables (rule write_model_card).

Sections (after Mitchell et al., "Model Cards for Model Reporting", 2019): model details,
intended use, training data (counts, devices where the manifest records them, class mix),
development and external performance with their 95% CIs (image level: clustered by patient,
with the clustered, Holm-adjusted test against the reference arm), calibration, subgroups,
localisation, known limits. Every number is read from a table the workflow wrote (manifest,
Table I/II/III, external_*, calibration, localisation); nothing is typed in by hand.
Pseudonymous data only: the card is a results/ file and in the report.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from mskdx.ingest.label_levels import patient_level
from mskdx.io import read_table, write_text

PathLike = str | os.PathLike[str]

INTENDED_USE = {
    "gout": (
        "Image-level probability of gout on B-mode ultrasound screen captures of the first "
        "metatarsophalangeal joint, and a patient-level call from the share of a patient's images "
        "called abnormal against the development threshold (Xiao et al., Med Ultrason 2025)."
    ),
    "olt": (
        "Image-level probability of an osteochondral lesion of the talus on ankle MRI slices of "
        "one sequence (T1 or T2)."
    ),
}
#: device columns the manifest may carry (DICOM Manufacturer / ManufacturerModelName)
DEVICE_COLUMNS = ("manufacturer", "model")


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _count(value) -> str:
    """A count that a CSV may have read back as a float (20.0 -> 20)."""
    if value is None or pd.isna(value):
        return "n/a"
    return str(int(value)) if float(value).is_integer() else str(value)


def _ci(row: Mapping, name: str, digits: int = 1) -> str:
    value, low, high = row.get(name), row.get(f"{name}_low"), row.get(f"{name}_high")
    if value is None or pd.isna(value):
        return "n/a"
    return f"{_fmt(value, digits)} ({_fmt(low, digits)}-{_fmt(high, digits)})"


def md_table(rows: Sequence[Mapping], columns: Sequence[str]) -> str:
    if not rows:
        return "_none in this run_\n"
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def training_data(manifest: pd.DataFrame, sequence: str | None, labels: Mapping) -> str:
    """Counts, class mix and devices of the images the arm learned from (all folds)."""
    table = manifest if sequence is None else manifest[manifest["series"].astype(str) == sequence]
    patients = patient_level(table).groupby("patient")["label"].first()
    pos, neg = labels["positive"], labels["negative"]
    lines = [
        f"- {len(table)} images of {len(patients)} patients"
        + (f" (sequence {sequence})" if sequence else ""),
        f"- class mix: {int((patients == 1).sum())} {pos} / {int((patients == 0).sum())} {neg} "
        f"patients; {int((table['label'] == 1).sum())} / {int((table['label'] == 0).sum())} images",
        "- views/series: "
        + ", ".join(f"{k} {v}" for k, v in table["series"].astype(str).value_counts().items()),
    ]
    present = [c for c in DEVICE_COLUMNS if c in table.columns]
    if present:
        counts = table[present].astype(str).agg(" ".join, axis=1).value_counts()
        lines.append("- devices: " + ", ".join(f"{k} ({v} images)" for k, v in counts.items()))
    else:
        lines.append("- devices: not recorded (the manifest keeps no Manufacturer/model columns)")
    return "\n".join(lines) + "\n"


def development(study: str, arm: str, performance: pd.DataFrame, patients) -> str:
    """Gout: Table I pooled row (+ Table III pooled); OLT: Table II rows of the arm."""
    part = performance[performance["arm"].astype(str) == arm]
    if study == "gout":
        part = part[part["fold"].astype(str) == "pooled"]
        rows = [_gout_row("images (pooled test folds)", r) for r in part.to_dict("records")]
        if patients is not None:
            pooled = patients[patients["fold"].astype(str) == "pooled"]
            rows += [
                _gout_row("patients (training-fold threshold)", r)
                for r in pooled.to_dict("records")
            ]
        columns = ["level", "n", "ACC % (95% CI)", "SEN %", "SPE %", "AUC", "vs reference"]
        return md_table(rows, columns)
    rows = [_olt_row(r) for r in part.to_dict("records")]
    return md_table(rows, ["class", "n", "precision", "recall", "F1", "accuracy %", "AUC"])


def _gout_row(level: str, r: Mapping) -> dict:
    n = r.get("n_images", r.get("patients", r.get("acc_n")))
    return {
        "level": level,
        "n": _count(n),
        "ACC % (95% CI)": _ci(r, "acc"),
        "SEN %": _ci(r, "sen"),
        "SPE %": _ci(r, "spe"),
        "AUC": _ci(r, "auc", 3),
        "vs reference": _versus(r),
    }


def _p(value) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{float(value):.3g}"


def _versus(r: Mapping) -> str:
    """The arm's clustered tests against the reference arm (Table I), Holm-adjusted p first."""
    if "reference_arm" not in r or pd.isna(r.get("reference_arm")):
        return ""  # patient level: Table III compares no arms
    if bool(r.get("is_reference")):
        return f"reference ({r.get('reference_rule', '')})"
    return (
        f"vs {r['reference_arm']}: AUC difference {_fmt(r.get('auc_diff'))} (reference minus "
        f"this arm), adjusted p {_p(r.get('p_auc_adjusted'))}; ACC adjusted p "
        f"{_p(r.get('p_acc_adjusted'))}"
    )


def _olt_row(r: Mapping) -> dict:
    return {
        "class": r["class"],
        "n": _count(r.get("n_images")),
        "precision": _ci(r, "precision", 3),
        "recall": _ci(r, "recall", 3),
        "F1": _fmt(r.get("f1")),
        "accuracy %": _ci(r, "accuracy"),
        "AUC": _ci(r, "auc", 3),
    }


def external(study: str, arm: str, tables: Mapping[str, pd.DataFrame]) -> str:
    """The ensemble of the fold models on each external cohort."""
    out = []
    for cohort, table in sorted(tables.items()):
        part = table[(table["arm"].astype(str) == arm) & (table["model"] == "ensemble")]
        out.append(f"**{cohort}** (mean of the fold models)\n\n")
        out.append(development(study, arm, part.assign(fold="pooled"), None))
    return "\n".join(out) if out else "_no external cohort in this run_\n"


def calibration(arm: str, table: pd.DataFrame) -> str:
    part = table[table["arm"].astype(str) == arm]
    rows = [
        {
            "cohort": r["cohort"],
            "level": r["level"],
            "n": r["n"],
            "Brier (95% CI)": f"{_fmt(r['brier'], 4)} {r.get('brier_ci', '')}",
            "prevalence-only Brier": _fmt(r.get("brier_prevalence_only"), 4),
            "intercept": f"{_fmt(r['intercept'])} {r.get('intercept_ci', '')}",
            "slope": f"{_fmt(r['slope'])} {r.get('slope_ci', '')}",
            "note": "" if pd.isna(r.get("note")) else r.get("note"),
        }
        for r in part.to_dict("records")
    ]
    columns = ["cohort", "level", "n", "Brier (95% CI)", "prevalence-only Brier"]
    return md_table(rows, [*columns, "intercept", "slope", "note"])


def localisation(arm: str, table: pd.DataFrame | None) -> tuple[str, list[str]]:
    """The Grad-CAM pointing game against its chance level; a limit when it is not above it."""
    if table is None or "arm" not in table.columns:
        return "_no localisation table in this run_\n", []
    part = table[table["arm"].astype(str) == arm].to_dict("records")
    rows, limits = [], []
    for r in part:
        rate, chance = r.get("pointing_hit_rate"), r.get("pointing_chance_mean")
        rows.append(
            {
                "images": _count(r.get("n")),
                "pointing game": f"{_fmt(rate, 2)} ({_fmt(r.get('pointing_ci_low'), 2)}-"
                f"{_fmt(r.get('pointing_ci_high'), 2)})",
                "chance": _fmt(chance, 2),
                "tolerance px": _count(r.get("tolerance_px")),
            }
        )
        if pd.notna(rate) and pd.notna(chance) and r.get("pointing_ci_low", 0) <= chance:
            limits.append(
                f"The Grad-CAM maximum does not point at the lesion more often than chance "
                f"(pointing game {rate:.2f}, its CI reaches the chance level {chance:.2f}): the "
                "maps do not show that the model looks at the lesion."
            )
    return md_table(rows, ["images", "pointing game", "chance", "tolerance px"]), limits


def comparison_limits(study: str, arm: str, performance: pd.DataFrame) -> list[str]:
    """What the clustered, Holm-adjusted test against the reference arm says of this arm's AUC
    (Table I's pooled row; OLT's arms score different images and are not compared)."""
    if study != "gout" or "p_auc_adjusted" not in performance.columns:
        return []
    part = performance[
        (performance["arm"].astype(str) == arm) & (performance["fold"].astype(str) == "pooled")
    ]
    if part.empty or bool(part.iloc[0].get("is_reference")):
        return []
    r = part.iloc[0]
    ref, p = r["reference_arm"], r["p_auc_adjusted"]
    if pd.isna(p):
        return [f"Its AUC was not tested against the reference arm {ref} (see Table I's note)."]
    if p >= 0.05:
        return [
            f"Its AUC is not distinguishable from the reference arm {ref}'s (test clustered by "
            f"patient, Holm-adjusted p = {_p(p)}): the data do not rank these two arms."
        ]
    side = "below" if r["auc_diff"] > 0 else "above"
    return [
        f"Its AUC is {side} the reference arm {ref}'s (test clustered by patient, Holm-adjusted "
        f"p = {_p(p)}), on one split and one training run (Table I's companion tests training)."
    ]


def known_limits(
    settings: Mapping, manifest: pd.DataFrame, calib: pd.DataFrame, arm: str
) -> list[str]:
    limits = [
        "Meant only for images like its development images: `mskdx predict` flags an image "
        "outside them (feature distance, fold disagreement, crop QC; columns `ood`, "
        "`ood_reasons`) and its score should then not be used."
    ]
    scale = settings.get("preprocess", {}).get("scale")
    if settings.get("source") == "synthetic":
        limits.append(
            "Trained and tested on the pipeline's synthetic cohort: a demonstration of the "
            "method, not a clinical model; it learned whatever separates the synthetic classes."
        )
        if scale is not None and float(scale) < 1:
            limits.append(
                "At this reduced crop size the quick gout models learn mostly the synovial "
                "distension that the synthetic gout patients also show, not the lesions "
                "(README, quick demo)."
            )
    if manifest["patient"].nunique() < 100:
        limits.append(
            f"{manifest['patient'].nunique()} patients in all: the confidence intervals above "
            "are wide, and a difference between arms within them is not evidence."
        )
    if scale is not None and float(scale) < 1:
        limits.append(
            f"Images at {float(scale):g} of the paper's crop size: lesions smaller than "
            f"{1 / float(scale):g} source pixels are below one network pixel."
        )
    identified = calib["note"].isna() if "note" in calib else True
    part = calib[(calib["arm"].astype(str) == arm) & calib["slope"].notna() & identified]
    for r in part.to_dict("records"):
        if r["slope"] < 0.8 or r["slope"] > 1.25:
            limits.append(
                f"Miscalibrated on {r['cohort']} ({r['level']} level): calibration slope "
                f"{r['slope']:.2f}; recalibrate before reading the probabilities as risks."
            )
    return limits


def subgroups(arm: str, table: pd.DataFrame | None) -> tuple[str, list[str]]:
    """The arm's subgroup rows (evaluate.subgroups: per site, scanner, sex, age band), and the
    limit they leave: groups too small to show."""
    if table is None:
        return "_no subgroup table in this run_\n", [
            "No subgroup (sex, age, device, site) was analysed beyond the external cohorts; "
            "performance in a subgroup is unknown."
        ]
    part = table[table["arm"].astype(str) == arm]
    shown = part[(part["group"].astype(str) != "suppressed") & (part["level"] == "image")]
    lines = [
        f"- {r['cohort']}, {r['variable']} {r['group']} ({int(r['patients'])} patients): "
        f"AUC {_fmt(r['auc'])} [{_fmt(r['auc_low'])}, {_fmt(r['auc_high'])}], sensitivity "
        f"{_fmt(r['sensitivity'])}, specificity {_fmt(r['specificity'])}"
        for r in shown.to_dict("records")
    ]
    hidden = int(part.loc[part["group"].astype(str) == "suppressed", "n"].fillna(0).sum())
    limits = []
    if hidden:
        limits.append(
            f"{hidden} subgroups had too few patients to be shown (results/<study>/tables/"
            "subgroups.csv): performance there is unknown."
        )
    text = "\n".join(lines) if lines else "_every subgroup was too small to show_"
    return text + "\n", limits


def model_details(study: str, arm: str, settings: Mapping) -> str:
    from mskdx import __version__

    spec, train = settings.get("arm_spec", {}), settings.get("train", {})
    arch = spec.get("architecture", "?")
    if arch == "resnet_blocks":
        arch = f"ResNet-style CNN with {spec.get('blocks')} residual blocks"
    lines = [
        f"- model: `{study}/{arm}`, {arch}"
        + (f", initial weights {spec['weights']}" if spec.get("weights") else ""),
        f"- {settings.get('folds', '?')} fold models ({settings.get('split', '?')} split); the "
        "deployed probability is their mean (`mskdx predict`)",
        f"- training: {train.get('epochs', '?')} epochs, {train.get('optimizer', '?')}, lr "
        f"{train.get('lr', '?')}, batch {train.get('batch_size', '?')}, normalization "
        f"{train.get('normalization', '?')}, selection {train.get('select', '?')}",
        f"- image call: probability > {settings.get('image_threshold', 0.5)}",
        f"- generated by mskdx {__version__} from this run's tables; portable copies: "
        f"`mskdx export --study {study} --arm {arm}` (ONNX, TorchScript, preprocessing JSON)",
    ]
    return "\n".join(lines) + "\n"


def build_card(
    study: str,
    arm: str,
    *,
    settings: Mapping,
    manifest: pd.DataFrame,
    performance: pd.DataFrame,
    patients: pd.DataFrame | None,
    calibration_table: pd.DataFrame,
    external_tables: Mapping[str, pd.DataFrame],
    localisation_table: pd.DataFrame | None,
    subgroup_table: pd.DataFrame | None = None,
) -> str:
    """The card's markdown text from the run's tables."""
    labels = settings["labels"]
    loc_text, loc_limits = localisation(arm, localisation_table)
    sub_text, sub_limits = subgroups(arm, subgroup_table)
    limits = known_limits(settings, manifest, calibration_table, arm) + loc_limits + sub_limits
    limits += comparison_limits(study, arm, performance)
    parts = [
        f"# Model card: {study}/{arm}\n",
        "## Model details\n",
        model_details(study, arm, settings),
        "## Intended use\n",
        INTENDED_USE[study]
        + " A research model: its results (CSV, and DICOM for the PACS) support a reader and are "
        "not for diagnosis alone. Not for other joints, sequences, modalities or children.\n",
        "## Training data\n",
        training_data(manifest, settings.get("arm_spec", {}).get("sequence"), labels),
        "## Development performance (test folds; image-level 95% CIs and tests clustered by "
        "patient)\n",
        development(study, arm, performance, patients),
        "## External performance\n",
        external(study, arm, external_tables),
        "## Calibration\n",
        calibration(arm, calibration_table),
        "## Subgroups (image level, 95% CIs clustered by patient)\n",
        sub_text,
        "## Localisation (Grad-CAM)\n",
        loc_text,
        "## Known limits\n",
        "\n".join(f"- {line}" for line in limits) + "\n",
    ]
    return "\n".join(parts)


def write_model_card(
    card: PathLike,
    *,
    study: str,
    arm: str,
    settings: Mapping,
    manifest: PathLike,
    performance: PathLike,
    calibration: PathLike,
    patients: PathLike | None = None,
    external: Sequence[PathLike] = (),
    localisation: PathLike | None = None,
    subgroups: PathLike | None = None,
) -> str:
    """Rule write_model_card: read the run's tables and write the card atomically."""
    tables = {Path(p).stem.removeprefix("external_"): read_table(p) for p in external}
    text = build_card(
        study,
        arm,
        settings=settings,
        manifest=read_table(manifest, "manifest"),
        performance=read_table(performance),
        patients=read_table(patients) if patients else None,
        calibration_table=read_table(calibration),
        external_tables=tables,
        localisation_table=read_table(localisation) if localisation else None,
        subgroup_table=read_table(subgroups) if subgroups else None,
    )
    write_text(card, text)
    return text
