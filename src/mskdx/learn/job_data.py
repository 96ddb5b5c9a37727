"""The images of one training job: a fold's cache rows with their subset, checked for leakage.

The rows stay in images.npy: `CacheRows` reads the ones a batch needs with positional reads
(`os.preadv`), so a job's memory does not grow with the cohort. A memory map would do the same
work, but every page it touches stays in the process's resident set until the kernel needs it
back, so a job that read its whole cache once would show (and, on a crowded node, be charged
for) the cache's size; pages read here land in the kernel's page cache instead, shared and
reclaimable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from mskdx.errors import ConfigError, PreprocessError, SplitError
from mskdx.io import read_table

SUBSETS = ("train", "val", "test")


class CacheRows:
    """Rows of a uint8 (N, H, W) images.npy in a chosen order, read from the file on indexing.

    Indexing (an int, a slice or an integer array, of positions in this order) returns a new
    ndarray; `np.asarray` reads every row. Rows are read in file order and put in the order asked.
    """

    def __init__(self, path: str | os.PathLike[str], rows: NDArray[np.integer]) -> None:
        cache = np.load(path, mmap_mode="r")  # reads the header only
        if cache.ndim != 3 or cache.dtype != np.uint8 or not cache.flags.c_contiguous:
            raise PreprocessError(
                f"{path}: array {cache.dtype} {cache.shape}; expected C-order uint8 (N, H, W)"
            )
        self.path = Path(path)
        self.rows = np.asarray(rows, dtype=np.int64)
        self._offset = int(cache.offset)
        self._frame = tuple(int(d) for d in cache.shape[1:])
        self._fd: int | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.rows), *self._frame)

    dtype = np.dtype(np.uint8)
    ndim = 3

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key) -> NDArray[np.uint8]:
        single = isinstance(key, (int, np.integer))
        positions = np.arange(len(self.rows))[key]
        out = self._read(self.rows[np.atleast_1d(positions)])
        return out[0] if single else out

    def __array__(self, dtype=None, copy=None) -> NDArray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)

    def copy(self) -> NDArray[np.uint8]:
        return self[:]

    def _read(self, rows: NDArray[np.int64]) -> NDArray[np.uint8]:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        out = np.empty((len(rows), *self._frame), dtype=np.uint8)
        size = out[0].nbytes if len(rows) else 0
        for j in np.argsort(rows, kind="stable"):
            view = memoryview(out[j]).cast("B")
            if os.preadv(self._fd, [view], self._offset + int(rows[j]) * size) != size:
                raise PreprocessError(f"{self.path}: row {rows[j]} is cut short")
        return out

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)


@dataclass
class JobData:
    """The images of one job and their table, rows sorted by subset, patient, image_id."""

    images: CacheRows | NDArray[np.uint8]  # (n, H, W), row i = table row i
    table: pd.DataFrame  # index (cache row), image_id, patient, label, patient_label, subset

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
    if "patient_label" not in table.columns:  # a cache written before image labels
        table = table.assign(patient_label=table["label"])
    order = {s: i for i, s in enumerate(SUBSETS)}
    table = (
        table.assign(_order=table["subset"].map(order))
        .sort_values(["_order", "patient", "image_id", "index"], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)[
            ["index", "image_id", "patient", "label", "patient_label", "subset"]
        ]
    )
    table["label"] = table["label"].astype(np.int64)
    table["patient_label"] = table["patient_label"].astype(np.int64)
    if not (table["subset"] == "train").any():
        raise SplitError(f"{splits}: fold {fold} has no training images")
    return JobData(CacheRows(images, table["index"].to_numpy(np.int64)), table)


def class_weights(labels: NDArray[np.integer], source: str = "training subset") -> NDArray:
    """Inverse class frequencies, n / (2 n_c), of the training labels."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=2)[:2]
    if (counts == 0).any():
        raise SplitError(
            f"{source}: class counts {counts.tolist()}; class weights need images "
            "of both classes in the training subset"
        )
    return counts.sum() / (2.0 * counts)
