"""What one study's run knows, as text for the checklist: counts, splits, settings, versions.

`study_facts` reads the run's manifest, refused files and splits and the study's method settings;
its keys are the placeholders of the evidence templates in `items.yaml` ({images}, {splits}, ...).
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Mapping

import pandas as pd

from mskdx.ingest.label_levels import patient_level
from mskdx.io import read_table

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


def _repeats(splits: Mapping, train: Mapping) -> str:
    """The repeated CV of the run (splits.repeats x train.repeats), as the checklist says it."""
    if splits.get("method") != "kfold" and not splits.get("file"):
        return "one holdout split, one training run (no repeated CV)"
    r, t = int(splits.get("repeats", 1)), int(train.get("repeats", 1))
    return (
        f"{r} split{'s' if r > 1 else ''} x {t} training run{'s' if t > 1 else ''} per fold, "
        "mean and SD over runs and the corrected resampled t-test vs the reference arm, "
        "Holm-adjusted (table1_repeats)"
    )


def _image_labels(table: pd.DataFrame) -> str:
    """Where the images' labels came from, with the images whose label is not the patient's."""
    if "patient_label" not in table.columns or (table["label"] == table["patient_label"]).all():
        return "image label = patient label (no image label sheet, or one agreeing on every image)"
    positive = table["patient_label"] == 1
    normal = int((positive & (table["label"] == 0)).sum())
    abnormal = int((~positive & (table["label"] == 1)).sum())
    return (
        f"image label (abnormal/normal) from the image label sheet: {normal} of "
        f"{int(positive.sum())} images of positive patients normal, {abnormal} of "
        f"{int((~positive).sum())} images of negative patients abnormal; patient-level analyses "
        "use the diagnosis"
    )


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
    patients = patient_level(table).groupby("patient")["label"].first()
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
        "image_labels": _image_labels(table),
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
        "class_weights": str(train.get("class_weights", False)),
        "external": ", ".join(settings.get("external") or []) or "none",
        "repeats": _repeats(settings["splits"], train),
        "versions": package_versions(),
    }
