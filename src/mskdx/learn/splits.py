"""Patient-level splits: stratified k-fold CV (gout) and a fixed-seed holdout (OLT).

Written in long format (fold, patient, subset); later stages read only that file. A patient in
two subsets of one fold voids the study, so every split is checked here, in the pipeline.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

from mskdx.errors import SplitError
from mskdx.ingest.label_levels import patient_level
from mskdx.io import read_table, write_table

log = logging.getLogger(__name__)


def patient_labels(manifest: pd.DataFrame) -> pd.Series:
    """One label per patient (sorted by pseudonym): the patient's diagnosis (`patient_label`;
    in manifests without it, `label`), never an image's own label. A patient with mixed
    diagnoses is an error."""
    per_patient = patient_level(manifest).groupby("patient")["label"].agg(["min", "max"])
    mixed = per_patient.index[per_patient["min"] != per_patient["max"]]
    if len(mixed):
        raise SplitError(f"patients {list(mixed)[:5]} have images with both labels; expected one")
    return per_patient["min"].sort_index()


#: the columns of a split file, and those it may have
SPLIT_COLUMNS = ["fold", "patient", "subset"]
SPLIT_OPTIONAL = ["label"]


def kfold_splits(
    labels: pd.Series,
    *,
    folds: int,
    validation_fraction: float,
    seed: int,
    class_names: tuple[str, str] = ("0", "1"),
) -> pd.DataFrame:
    """Stratified patient-level k-fold; each fold's training part loses a stratified val part.

    `class_names` (negative, positive) name the classes in errors, as the config does.
    """
    counts = labels.value_counts()
    for cls in (0, 1):
        if counts.get(cls, 0) < folds:
            raise SplitError(
                f"class {class_names[cls]} has {counts.get(cls, 0)} patients; {folds}-fold "
                f"cross-validation needs at least {folds} per class"
            )
    patients = labels.index.to_numpy()
    y = labels.to_numpy()
    kfold = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    rows = []
    for fold, (train_idx, test_idx) in enumerate(kfold.split(patients, y)):
        train_idx, val_idx = _carve(train_idx, y, validation_fraction, seed + fold)
        for subset, idx in (("train", train_idx), ("val", val_idx), ("test", test_idx)):
            rows += [
                (fold, p, subset, int(lab)) for p, lab in zip(patients[idx], y[idx], strict=True)
            ]
    return _frame(rows)


def holdout_split(labels: pd.Series, *, fractions: list[float], seed: int) -> pd.DataFrame:
    """Stratified patient-level train/val/test split (e.g. 60/20/20) with a fixed seed."""
    if abs(sum(fractions) - 1) > 1e-6:
        raise SplitError(f"split fractions {fractions} sum to {sum(fractions)}; expected 1")
    patients = labels.index.to_numpy()
    y = labels.to_numpy()
    idx = np.arange(len(patients))
    train_idx, rest = train_test_split(
        idx, train_size=fractions[0], stratify=_stratify(y), random_state=seed
    )
    val_share = fractions[1] / (fractions[1] + fractions[2])
    val_idx, test_idx = train_test_split(
        rest, train_size=val_share, stratify=_stratify(y[rest]), random_state=seed
    )
    rows = []
    for subset, part in (("train", train_idx), ("val", val_idx), ("test", test_idx)):
        rows += [(0, p, subset, int(lab)) for p, lab in zip(patients[part], y[part], strict=True)]
    return _frame(rows)


def check_splits(splits: pd.DataFrame, patients: pd.Index | None = None, source: str = "") -> None:
    """Raise SplitError if a patient is in two subsets of a fold or a known patient is missing."""
    dup = splits[splits.duplicated(["fold", "patient"], keep=False)]
    if len(dup):
        fold, patient = dup.iloc[0][["fold", "patient"]]
        subsets = sorted(dup[(dup.fold == fold) & (dup.patient == patient)].subset)
        raise SplitError(
            f"{source or 'splits'}: patient {patient} is in subsets {subsets} of fold {fold} "
            f"({dup.patient.nunique()} patients overlap); each patient must be in exactly one"
        )
    if patients is not None:
        for fold, part in splits.groupby("fold"):
            missing = sorted(set(patients) - set(part.patient))
            if missing:
                raise SplitError(
                    f"{source or 'splits'}: fold {fold} lacks {len(missing)} patients "
                    f"of the manifest, e.g. {missing[:3]}"
                )
        for fold, part in splits.groupby("fold"):
            if not (part.subset == "test").any() or not (part.subset == "train").any():
                raise SplitError(
                    f"{source or 'splits'}: fold {fold} has no train or no test patients"
                )


def make_splits(
    manifest_path: str | Path,
    output: str | Path,
    *,
    method: str,
    seed: int,
    folds: int = 5,
    validation_fraction: float = 0.0,
    fractions: list[float] | None = None,
    user_file: str = "",
    class_names: tuple[str, str] = ("0", "1"),
    repeats: int = 1,
) -> pd.DataFrame:
    """Build (or read the user's) split file for the manifest's patients and write it.

    `repeats` R > 1 (kfold only) appends R - 1 further independent k-fold splits: repeat r has
    fold ids r k .. r k + k - 1 and seed `repeat_seed(seed, r)`; repeat 0 is the split of R = 1,
    so the file's first k folds do not change with R.
    """
    labels = patient_labels(read_table(manifest_path, "manifest"))
    if user_file:
        splits = read_user_splits(user_file)
        unknown = sorted(set(splits.patient) - set(labels.index))
        if unknown:
            pseudonyms = sum(1 for p in unknown if PSEUDONYM.fullmatch(p))
            raise SplitError(
                f"{user_file}: {len(unknown)} of {splits.patient.nunique()} patients are not in "
                f"the manifest ({len(unknown) - pseudonyms} of them are not pseudonyms; values "
                "not shown). A split file names patients by their pseudonym (P- and 10 hex "
                f"digits, column 'patient' of {manifest_path}), never by PatientID"
            )
        if "label" not in splits.columns:
            splits["label"] = splits.patient.map(labels)
        source = user_file
    elif method == "kfold":
        parts = []
        for r in range(repeats):
            part = kfold_splits(
                labels,
                folds=folds,
                validation_fraction=validation_fraction,
                seed=repeat_seed(seed, r),
                class_names=class_names,
            )
            parts.append(part.assign(fold=part.fold + r * folds))
            if repeats > 1:
                log.info("repeat %d: folds %d-%d, seed %d", r, r * folds, r * folds + folds - 1,
                         repeat_seed(seed, r))  # fmt: skip
        splits = pd.concat(parts, ignore_index=True)
        source = "kfold"
    elif method == "holdout":
        splits = holdout_split(labels, fractions=fractions or [0.6, 0.2, 0.2], seed=seed)
        source = "holdout"
    else:
        raise SplitError(f"unknown split method {method!r}; expected kfold or holdout")
    if repeats > 1 and (user_file or method != "kfold"):
        raise SplitError(
            f"splits.repeats={repeats} needs method kfold and no split file; got method "
            f"{method!r}{' and a split file' if user_file else ''}"
        )
    check_splits(splits, labels.index, str(source))
    for (fold, subset), part in splits.groupby(["fold", "subset"]):
        log.info("fold %s %s: %d patients (%d positive)", fold, subset, len(part), part.label.sum())
    write_table(splits, output, schema="splits")
    return splits


PSEUDONYM = re.compile(r"P-[0-9a-f]{10}")


def repeat_seed(seed: int, repeat: int) -> int:
    """The split seed of repeat `repeat` of repeated k-fold CV (repeat 0: `seed` itself)."""
    return int(seed) + 1_000_003 * int(repeat)


def read_user_splits(path: str | Path) -> pd.DataFrame:
    """Read a user's split file; SplitError naming the file and the expected columns.

    Its values are not echoed in errors: a split file written by hand may hold PatientIDs.
    """
    expected = f"expected a CSV with columns {SPLIT_COLUMNS} (optional {SPLIT_OPTIONAL})"
    path = Path(path)
    if not path.is_file():
        raise SplitError(f"{path}: split file not found (config studies.*.splits.file); {expected}")
    try:
        header = pd.read_csv(path, nrows=0).columns
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SplitError(
            f"{path}: not a readable CSV file ({type(exc).__name__}); {expected}"
        ) from None
    names = [str(c).strip() for c in header]
    missing = [c for c in SPLIT_COLUMNS if c not in names]
    if missing:
        raise SplitError(f"{path}: missing column(s) {missing}; the header has {names}; {expected}")
    try:
        return read_table(path, "splits")
    except ValueError as exc:
        # validate_table names the row and the schema rule; the value itself is not quoted
        where = str(exc).split(":")[1].strip() if ":" in str(exc) else "a row"
        raise SplitError(
            f"{path}: {where} is not valid: fold must be an integer >= 0, patient a pseudonym, "
            f"subset one of train/val/test, label (optional) 0 or 1; {expected}"
        ) from None


def _carve(
    idx: np.ndarray, y: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split `idx` into (train, val) with a stratified `fraction` for validation."""
    n_val = int(round(fraction * len(idx)))
    if fraction <= 0 or n_val < 2:
        return idx, idx[:0]
    train, val = train_test_split(
        idx, test_size=n_val, stratify=_stratify(y[idx]), random_state=seed
    )
    return np.sort(train), np.sort(val)


def _stratify(y: np.ndarray) -> np.ndarray | None:
    """Stratify when every class has at least two members (sklearn's requirement)."""
    _, counts = np.unique(y, return_counts=True)
    return y if len(counts) > 1 and counts.min() >= 2 else None


def _frame(rows: list[tuple]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["fold", "patient", "subset", "label"])
    return df.sort_values(["fold", "patient"]).reset_index(drop=True)
