"""The images of one training job: a fold's cache rows with their subset, checked for leakage."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from mskdx.errors import ConfigError, PreprocessError, SplitError
from mskdx.io import read_table

SUBSETS = ("train", "val", "test")


@dataclass
class JobData:
    """The images of one job and their table, rows sorted by subset, patient, image_id."""

    images: NDArray[np.uint8]  # (n, H, W), row i = table row i
    table: pd.DataFrame  # index (cache row), image_id, patient, label, subset

    def rows(self, subset: str) -> NDArray[np.int64]:
        return np.flatnonzero(self.table["subset"].to_numpy() == subset)


def check_split(split: pd.DataFrame, source: str | os.PathLike[str] = "splits") -> None:
    """Raise SplitError if a patient is in two subsets of one fold (leakage)."""
    subsets = split.groupby(["fold", "patient"])["subset"].nunique()
    leaked = subsets[subsets > 1]
    if len(leaked):
        examples = [f"fold {f}: {p}" for f, p in leaked.index[:5]]
        raise SplitError(
            f"{source}: {len(leaked)} patient(s) in more than one subset ({', '.join(examples)}); "
            "expected each patient in exactly one of train/val/test per fold"
        )


def load_job_data(
    images: str | os.PathLike[str],
    manifest: str | os.PathLike[str],
    splits: str | os.PathLike[str],
    *,
    fold: int,
    sequence: str | None = None,
) -> JobData:
    """Read the cache rows of one fold (and one MRI sequence) with their subset."""
    cache = np.load(images, mmap_mode="r")
    if cache.ndim != 3 or cache.dtype != np.uint8:
        raise PreprocessError(
            f"{images}: array {cache.dtype} {cache.shape}; expected uint8 (N, H, W)"
        )
    table = read_table(manifest, schema="manifest")
    if sequence is not None:
        available = sorted(table["series"].astype(str).unique())
        table = table[table["series"].astype(str) == str(sequence)]
        if table.empty:
            raise ConfigError(
                f"{manifest}: no images of sequence {sequence!r} (arm `sequence`); "
                f"series present: {available}"
            )
    if table.empty:
        raise PreprocessError(f"{manifest}: no images")
    index = table["index"].to_numpy(np.int64)
    if index.min() < 0 or index.max() >= len(cache) or len(np.unique(index)) != len(index):
        raise PreprocessError(
            f"{manifest}: column index must be unique rows of {images} (0..{len(cache) - 1})"
        )

    split = read_table(splits, schema="splits")
    check_split(split, splits)
    split = split[split["fold"] == fold]
    if split.empty:
        raise SplitError(
            f"{splits}: no rows for fold {fold}; folds present: "
            f"{sorted(read_table(splits)['fold'].unique().tolist())}"
        )
    subset_of = split.drop_duplicates("patient").set_index("patient")["subset"]
    missing = sorted(set(table["patient"]) - set(subset_of.index))
    if missing:
        raise SplitError(
            f"{splits}: fold {fold} has no subset for {len(missing)} patient(s) of "
            f"{manifest} (e.g. {missing[:3]}); expected every patient in the split"
        )
    table = table.assign(subset=table["patient"].map(subset_of))
    order = {s: i for i, s in enumerate(SUBSETS)}
    table = (
        table.assign(_order=table["subset"].map(order))
        .sort_values(["_order", "patient", "image_id", "index"], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)[["index", "image_id", "patient", "label", "subset"]]
    )
    table["label"] = table["label"].astype(np.int64)
    if not (table["subset"] == "train").any():
        raise SplitError(f"{splits}: fold {fold} has no training images")
    rows = table["index"].to_numpy(np.int64)
    # read the cache in file order, then put the rows in table order
    sorter = np.argsort(rows, kind="stable")
    data = np.empty((len(rows), *cache.shape[1:]), dtype=np.uint8)
    data[sorter] = cache[rows[sorter]]
    return JobData(data, table)


def class_weights(labels: NDArray[np.integer], source: str = "training subset") -> NDArray:
    """Inverse class frequencies, n / (2 n_c), of the training labels."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=2)[:2]
    if (counts == 0).any():
        raise SplitError(
            f"{source}: class counts {counts.tolist()}; class weights need images "
            "of both classes in the training subset"
        )
    return counts.sum() / (2.0 * counts)
