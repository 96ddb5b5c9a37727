"""A reporting checklist filled from what the pipeline knows: CLAIM 2024 and TRIPOD+AI.

CLAIM: Checklist for Artificial Intelligence in Medical Imaging (Mongan et al., Radiol Artif
Intell 2020; 2024 update by Tejani et al.). TRIPOD+AI: Collins et al., BMJ 2024;385:e078378.
Items are listed by section and topic in our own words (the published checklists are the
reference for their wording and numbering); TRIPOD+AI rows are only those whose topic CLAIM does
not cover (calibration, clinical utility, fairness, open science, ...).

Each row says what the pipeline reports for the item (`status`):
- "reported": the pipeline produced it; `evidence` names the numbers and `where` the file;
- "partly": the pipeline reports part of it; `evidence` says which part is missing;
- "authors": only the study's authors can answer it (clinical context, ethics, funding, ...).
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from collections.abc import Mapping

import pandas as pd

from mskdx.io import read_table, write_table, write_text

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]

PACKAGES = (
    "pydicom",
    "scikit-image",
    "torch",
    "torchvision",
    "grad-cam",
    "scikit-learn",
    "statsmodels",
    "matplotlib",
    "pandas",
    "snakemake",
)
STATUSES = ("reported", "partly", "authors")


def package_versions() -> str:
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return ", ".join(versions)


def _split_summary(splits: pd.DataFrame, manifest: pd.DataFrame) -> str:
    images = manifest.groupby("patient").size()
    parts = []
    for fold, part in splits.groupby("fold", sort=True):
        counts = part.groupby("subset")["patient"].nunique()
        imgs = {s: int(images.loc[p["patient"]].sum()) for s, p in part.groupby("subset")}
        text = ", ".join(f"{s} {counts[s]} patients/{imgs[s]} images" for s in counts.index)
        parts.append(f"fold {fold}: {text}")
    return "; ".join(parts)


def study_facts(
    *,
    study: str,
    manifest: PathLike,
    refused: PathLike,
    splits: PathLike,
    settings: Mapping,
) -> dict[str, str]:
    """Numbers and settings of one study run, as text for the checklist."""
    table = read_table(manifest, "manifest")
    refused_table = read_table(refused)
    split_table = read_table(splits, "splits")
    patients = table.groupby("patient")["label"].first()
    leak = split_table[split_table["subset"] == "test"].groupby("patient")["fold"].nunique()
    train = settings["train"]
    aug = train.get("augment", {})
    arms = settings["arms"]
    return {
        "study": study,
        "source": settings["source"],
        "images": f"{len(table)} images of {table['patient'].nunique()} patients "
        f"({int(patients.sum())} positive, {int((patients == 0).sum())} negative patients; "
        f"{int(table['label'].sum())} positive images)",
        "refused": f"{len(refused_table)} files refused and listed with their reason "
        f"(policy on_error={settings['on_error']})",
        "modalities": ", ".join(settings["modalities"]),
        "preprocess": ", ".join(f"{k}={v}" for k, v in settings["preprocess"].items()),
        "splits": f"{settings['splits'].get('method')} split, seed {settings['seed']}, disjoint "
        f"by patient; {_split_summary(split_table, table)}",
        "leakage": "each patient is in one test fold only"
        if (leak <= 1).all() and len(leak)
        else "a patient is in the test subset of several folds",
        "arms": "; ".join(
            f"{name}: " + ", ".join(f"{k}={v}" for k, v in spec.items() if k != "train")
            for name, spec in sorted(arms.items())
        ),
        "initialisation": ", ".join(
            sorted({str(spec.get("weights", "random (He)")) for spec in arms.values()})
        ),
        "training": f"optimizer {train['optimizer']}, lr {train['lr']}, weight decay "
        f"{train.get('weight_decay', 0)}, {train['epochs']} epochs, batch {train['batch_size']}, "
        f"class weights {train.get('class_weights', False)}, augmentation "
        + ", ".join(f"{k}={v}" for k, v in aug.items()),
        "select": str(train.get("select")),
        "normalization": str(train.get("normalization")),
        "external": ", ".join(settings.get("external") or []) or "none",
        "versions": package_versions(),
    }


def _rows(f: Mapping[str, str], study: str) -> list[tuple[str, str, str, str, str, str]]:
    """(guideline, section, topic, status, evidence, where) of every item."""
    tables = f"results/{study}/tables"
    figures = f"results/{study}/figures"
    main_table = (
        "table1_image_level, table3_patient_level_<arm>"
        if study == "gout"
        else ("table2_performance")
    )
    ext = f["external"]
    c, t = "CLAIM 2024", "TRIPOD+AI"
    return [
        (
            c,
            "Title/abstract",
            "AI methodology and category of technology named",
            "authors",
            f"deep learning (CNN): {f['arms']}",
            "",
        ),
        (
            c,
            "Title/abstract",
            "structured summary of design, methods, results, conclusions",
            "authors",
            "",
            "",
        ),
        (
            c,
            "Introduction",
            "scientific and clinical background, intended use of the AI",
            "authors",
            "",
            "",
        ),
        (c, "Introduction", "study objectives and hypotheses", "authors", "", ""),
        (
            c,
            "Methods: design",
            "prospective or retrospective",
            "authors",
            "retrospective use of exported images",
            "",
        ),
        (
            c,
            "Methods: design",
            "study goal (model creation, feasibility, ...)",
            "partly",
            "reproduction of a published model-creation study",
            "README.md",
        ),
        (
            c,
            "Methods: data",
            "data sources",
            "partly",
            f"data.source={f['source']}; modalities {f['modalities']}; site and dates: authors",
            "config/config.yaml",
        ),
        (c, "Methods: data", "eligibility criteria, where and when identified", "authors", "", ""),
        (
            c,
            "Methods: data",
            "data preprocessing steps",
            "reported",
            f["preprocess"],
            f"results/{study}/cache/manifest.csv",
        ),
        (
            c,
            "Methods: data",
            "selection of data subsets",
            "reported",
            f"{f['images']}; {f['refused']}",
            f"results/{study}/extract/refused.csv",
        ),
        (
            c,
            "Methods: data",
            "definitions of data elements",
            "partly",
            "label 1 = positive per the label sheet's diagnosis; image label = patient label",
            "docs/architecture.md",
        ),
        (
            c,
            "Methods: data",
            "de-identification methods",
            "reported",
            "keyed HMAC-SHA256 pseudonyms of PatientID and SOPInstanceUID; no header value, date "
            "or input path in any output (PHI scan in the tests)",
            "docs/architecture.md",
        ),
        (
            c,
            "Methods: data",
            "handling of missing data",
            "reported",
            f"{f['refused']}; unlabelled patients stop the run",
            f"results/{study}/extract/",
        ),
        (
            c,
            "Methods: reference standard",
            "definition of the reference standard",
            "authors",
            "the label sheet's diagnosis (its clinical basis: authors)",
            "",
        ),
        (
            c,
            "Methods: reference standard",
            "rationale for the reference standard",
            "authors",
            "",
            "",
        ),
        (
            c,
            "Methods: reference standard",
            "source and qualification of annotators",
            "authors",
            "",
            "",
        ),
        (c, "Methods: reference standard", "annotation tools", "authors", "", ""),
        (c, "Methods: reference standard", "inter- and intrarater variability", "authors", "", ""),
        (
            c,
            "Methods: partitions",
            "intended sample size and how it was determined",
            "authors",
            f["images"],
            "",
        ),
        (
            c,
            "Methods: partitions",
            "assignment to partitions and proportions",
            "reported",
            f["splits"],
            f"results/{study}/splits/splits.csv",
        ),
        (
            c,
            "Methods: partitions",
            "level at which partitions are disjoint",
            "reported",
            f"patient ({f['leakage']}; checked before training and before the threshold search)",
            f"results/{study}/splits/splits.csv",
        ),
        (
            c,
            "Methods: model",
            "model description (inputs, outputs, layers)",
            "reported",
            f["arms"],
            "src/mskdx/learn/models.py; gout Table II: parameters and MACs",
        ),
        (
            c,
            "Methods: model",
            "software libraries, frameworks and packages",
            "reported",
            f["versions"],
            "envs/*.yaml, pyproject.toml",
        ),
        (
            c,
            "Methods: model",
            "initialisation of model parameters",
            "reported",
            f"weights: {f['initialisation']}",
            "config/config.yaml",
        ),
        (
            c,
            "Methods: training",
            "training details: augmentation, hyperparameters",
            "reported",
            f"{f['training']}; normalization {f['normalization']}",
            f"results/{study}/models/*/fold_*/history.csv",
        ),
        (
            c,
            "Methods: training",
            "method of selecting the final model",
            "reported",
            f"select={f['select']}",
            f"results/{study}/models/*/fold_*/history.csv",
        ),
        (
            c,
            "Methods: training",
            "ensembling",
            "reported",
            "none in the paper tables; external cohorts and mskdx predict use the mean probability "
            "of the fold models",
            "src/mskdx/evaluate/external.py",
        ),
        (
            c,
            "Methods: evaluation",
            "performance metrics",
            "reported",
            "accuracy, sensitivity, specificity, precision, recall, F1, AUC",
            f"{tables}/",
        ),
        (
            c,
            "Methods: evaluation",
            "statistical significance and uncertainty",
            "reported",
            "Wilson 95% CIs for proportions, DeLong CI and paired test for AUC, McNemar tests",
            f"{tables}/",
        ),
        (
            c,
            "Methods: evaluation",
            "robustness or sensitivity analysis",
            "partly",
            f"per-fold results and per-fold models on external cohorts ({ext}); subgroup analyses: "
            "authors",
            f"{tables}/",
        ),
        (
            c,
            "Methods: evaluation",
            "explainability methods and their validation",
            "reported",
            "Grad-CAM, pointing game and mask overlap against lesion masks where they exist",
            f"{tables}/localisation.csv",
        ),
        (
            c,
            "Methods: evaluation",
            "validation on external data",
            "reported" if ext != "none" else "partly",
            f"external cohorts: {ext}"
            if ext != "none"
            else "no external cohort configured (studies.<study>.external)",
            f"{tables}/external_*.csv",
        ),
        (
            c,
            "Results: data",
            "flow of participants with inclusions and exclusions",
            "partly",
            f"{f['images']}; {f['refused']}; the diagram: authors",
            f"results/{study}/extract/",
        ),
        (
            c,
            "Results: data",
            "demographic and clinical characteristics per partition",
            "authors",
            "the pipeline keeps no demographics (de-identified)",
            "",
        ),
        (
            c,
            "Results: performance",
            "performance on all partitions",
            "reported",
            "training, validation and test predictions of every fold are kept",
            f"results/{study}/models/*/fold_*/predictions.csv; {main_table}",
        ),
        (
            c,
            "Results: performance",
            "diagnostic accuracy with precision (95% CIs)",
            "reported",
            main_table,
            f"{tables}/",
        ),
        (
            c,
            "Results: performance",
            "failure analysis of misclassified cases",
            "partly",
            "montage of correct and wrong test predictions, confusion matrices",
            f"{figures}/",
        ),
        (c, "Discussion", "limitations, bias, uncertainty, generalisability", "authors", "", ""),
        (c, "Discussion", "implications for practice", "authors", "", ""),
        (c, "Other", "registration", "authors", "", ""),
        (
            c,
            "Other",
            "access to the full protocol",
            "partly",
            "the workflow, its config and this checklist reproduce every step",
            "README.md",
        ),
        (c, "Other", "funding and role of funders", "authors", "", ""),
        (
            c,
            "Other",
            "availability of code, data and model",
            "partly",
            "code: this repository; trained weights: checkpoint_final.pt per fold; data: authors",
            f"results/{study}/models/",
        ),
        (
            t,
            "Methods: analysis",
            "calibration of the predictions",
            "reported",
            "Brier score, calibration intercept and slope with 95% CIs, reliability diagrams",
            f"{tables}/calibration.csv; {figures}/calibration_*.png",
        ),
        (
            t,
            "Methods: analysis",
            "clinical utility (net benefit)",
            "reported",
            "decision curve analysis against treat all / treat none",
            f"{tables}/decision_curve.csv; {figures}/decision_curve.png",
        ),
        (
            t,
            "Methods: analysis",
            "fairness: performance across groups",
            "authors",
            "no demographics are kept",
            "",
        ),
        (
            t,
            "Methods: analysis",
            "sample size justification for the model's development",
            "authors",
            f["images"],
            "",
        ),
        (
            t,
            "Methods: analysis",
            "how predictions are obtained for new individuals",
            "reported",
            "mskdx predict: the training's extraction and the fold models' mean probability",
            "README.md",
        ),
        (t, "Open science", "patient and public involvement", "authors", "", ""),
    ]


def checklist_table(facts: Mapping[str, str], study: str) -> pd.DataFrame:
    table = pd.DataFrame(
        _rows(facts, study),
        columns=["guideline", "section", "topic", "status", "evidence", "where"],
    )
    bad = sorted(set(table["status"]) - set(STATUSES))
    if bad:
        raise ValueError(f"checklist statuses {bad}; expected {STATUSES}")
    return table


def write_checklist(
    *,
    study: str,
    manifest: PathLike,
    refused: PathLike,
    splits: PathLike,
    settings: Mapping,
    csv: PathLike,
    md: PathLike,
) -> None:
    from mskdx.evaluate.markdown import to_markdown

    facts = study_facts(
        study=study, manifest=manifest, refused=refused, splits=splits, settings=settings
    )
    table = checklist_table(facts, study)
    counts = table["status"].value_counts()
    log.info("%s checklist: %s", study, ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES))
    write_table(table, csv)
    title = f"{study}: CLAIM 2024 and TRIPOD+AI items, filled from the run"
    write_text(md, to_markdown(table, title, compact=False))
