"""Inputs outside what a model was trained on: flagged, with the reason, not silently scored.

Three signals, each with a threshold set on the development images (`fit_arm_reference`, rule
ood_reference: `results/<study>/models/<arm>/ood.npz`, no PHI: feature statistics only):

- **feature distance** (Lee et al. 2018, "A simple unified framework for detecting
  out-of-distribution samples and adversarial attacks", with their feature ensemble over
  layers): for each stage of the first fold model (every direct child module with a spatial
  output, taken with forward hooks: the channels' mean and SD over the image; means only for
  wide stages) and for the penultimate layer (the input of the classifier head,
  `mskdx.learn.arms.head_path`), the Mahalanobis distance to the nearest class mean, with one
  covariance shared by the classes (tied), estimated with Ledoit-Wolf shrinkage
  (`sklearn.covariance.LedoitWolf`: the features outnumber the images). Each layer's distance is
  scaled by its `quantile` (0.99) over the development images, the image's score is the largest
  scaled distance, and the flag threshold is the `quantile` of that score; every quantile is
  taken on cross-fitted distances (5 parts: in-sample distances shrink when the features
  outnumber the images). `ood_distance` is the score over its threshold: above 1 is flagged.
  Early stages see what a capture looks like (speckle, text, colour, other anatomy), the
  penultimate layer what the model makes of it;
- **fold disagreement**: the SD of the fold models' probabilities of an image (`ood_sd`);
  threshold: the `quantile` of that SD over the development images;
- **crop QC**: the manifest's `region_flags` (the region finder's plausibility flags).

`flag_images` gives per image `ood_distance`, `ood_sd`, `ood` (any signal) and `ood_reasons`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from mskdx.errors import ConfigError

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]
QUANTILE = 0.99
HEAD = "head"
#: stages wider than this give their channel means only; wider than MAX_CHANNELS none (the
#: penultimate layer stands for them): the precision matrices stay a few MB
SD_CHANNELS = 256
MAX_CHANNELS = 1024
_PARTS = 5


def layer_features(model, inputs, batch_size: int = 64) -> dict[str, np.ndarray]:
    """{layer: (n, d) float64} of `inputs` (the network input, (n, 3, H, W)): each stage's
    channel mean (and SD) and the penultimate features (`HEAD`)."""
    import torch

    from mskdx.learn.arms import head_path

    head = model.get_submodule(head_path(model))
    batches: dict[str, list] = {}
    seen: list = []

    def stage_hook(name):
        def hook(_m, _args, out) -> None:
            # in-place activations and empty stages hand on the same tensor: counted once
            if not isinstance(out, torch.Tensor) or any(out is s for s in seen):
                return
            seen.append(out)
            if out.ndim != 4 or out.shape[2] * out.shape[3] == 1 or out.shape[1] > MAX_CHANNELS:
                return
            parts = [out.mean((2, 3))]
            if out.shape[1] <= SD_CHANNELS:
                parts.append(out.std((2, 3), unbiased=False))
            batches.setdefault(name, []).append(torch.cat(parts, 1).detach())

        return hook

    handles = [m.register_forward_hook(stage_hook(n)) for n, m in model.named_children()]
    handles.append(
        head.register_forward_hook(
            lambda _m, args, _o: batches.setdefault(HEAD, []).append(args[0].detach().flatten(1))
        )
    )
    try:
        with torch.inference_mode():
            for start in range(0, len(inputs), batch_size):
                seen.clear()
                model(inputs[start : start + batch_size])
    finally:
        for handle in handles:
            handle.remove()
    return {name: torch.cat(parts).double().numpy() for name, parts in batches.items()}


def features_of(checkpoint: PathLike, images: np.ndarray) -> dict[str, np.ndarray]:
    """`layer_features` of uint8 grey images (n, H, W) by the model of one checkpoint."""
    from mskdx.learn.checkpoints import load_final, prepare_images

    model, state = load_final(checkpoint, "cpu")
    return layer_features(model, prepare_images(images, state["normalization"]))


def _fit(features: np.ndarray, labels: np.ndarray) -> dict:
    from sklearn.covariance import LedoitWolf

    present = np.unique(labels)
    means = np.stack([features[labels == c].mean(axis=0) for c in present])
    centred = features - means[np.searchsorted(present, labels)]
    precision = LedoitWolf(assume_centered=True).fit(centred).precision_
    return {"means": means, "precision": precision}


def mahalanobis(features: np.ndarray, reference) -> np.ndarray:
    """Distance of each row of `features` to the nearest class mean (tied precision)."""
    means = np.asarray(reference["means"], np.float64)
    precision = np.asarray(reference["precision"], np.float64)
    diffs = features[:, None, :] - means[None, :, :]
    squared = np.einsum("nkd,de,nke->nk", diffs, precision, diffs)
    return np.sqrt(np.maximum(squared.min(axis=1), 0.0))


def fit_features(
    features: Mapping[str, np.ndarray], labels: np.ndarray, quantile: float = QUANTILE
) -> dict[str, np.ndarray]:
    """The distance part of a reference from development features ({layer: (n, d)})."""
    if not 0.5 < quantile < 1:
        raise ConfigError(f"ood quantile {quantile}: expected in (0.5, 1)")
    labels = np.asarray(labels)
    n = len(labels)
    if n < 2 * _PARTS or any(len(f) != n for f in features.values()):
        raise ConfigError(
            f"ood reference: {n} labels for {[len(f) for f in features.values()]} feature rows; "
            f"expected as many, at least {2 * _PARTS} images"
        )
    parts = np.arange(n) % _PARTS
    reference: dict[str, np.ndarray] = {"layers": np.array(sorted(features))}
    held_out = np.empty((n, len(features)))
    for j, name in enumerate(sorted(features)):
        x = features[name]
        for part in range(_PARTS):
            rest = parts != part
            held_out[~rest, j] = mahalanobis(x[~rest], _fit(x[rest], labels[rest]))
        fitted = _fit(x, labels)
        scale = max(float(np.quantile(held_out[:, j], quantile)), 1e-12)
        held_out[:, j] /= scale
        reference[f"{name}__means"] = fitted["means"].astype(np.float32)
        reference[f"{name}__precision"] = fitted["precision"].astype(np.float32)
        reference[f"{name}__scale"] = np.array(scale)
    reference["threshold"] = np.array(np.quantile(held_out.max(axis=1), quantile))
    reference["quantile"] = np.array(quantile)
    return reference


def distances(reference: Mapping, features: Mapping[str, np.ndarray]) -> np.ndarray:
    """`ood_distance` of each image: its largest scaled layer distance over the threshold."""
    scaled = [
        mahalanobis(
            features[name],
            {"means": reference[f"{name}__means"], "precision": reference[f"{name}__precision"]},
        )
        / float(reference[f"{name}__scale"])
        for name in reference["layers"]
    ]
    return np.max(np.stack(scaled, axis=1), axis=1) / float(reference["threshold"])


def disagreement_threshold(fold_probs: np.ndarray, quantile: float = QUANTILE) -> float:
    """The `quantile` of the SD of the fold probabilities ((n, folds)) of development images."""
    return float(np.quantile(np.std(np.asarray(fold_probs, float), axis=1, ddof=0), quantile))


def fit_arm_reference(
    checkpoints: Mapping[int, PathLike],
    images: np.ndarray,
    labels: np.ndarray,
    *,
    quantile: float = QUANTILE,
    threads: int | None = 1,
) -> dict[str, np.ndarray]:
    """An arm's reference from its development images (uint8 (n, H, W)) and labels: the feature
    distance of the first fold model and the fold models' disagreement."""
    from mskdx.learn.inference import fold_models

    if not checkpoints:
        raise ConfigError("ood reference: no fold model given")
    first = min(checkpoints)
    probs = np.stack(
        [m.probabilities(images) for m in fold_models(checkpoints, "cpu", threads)], axis=1
    )
    reference = fit_features(features_of(checkpoints[first], images), labels, quantile)
    reference["fold"] = np.array(first)
    reference["sd_threshold"] = np.array(disagreement_threshold(probs, quantile))
    reference["n_images"] = np.array(len(images))
    log.info(
        "ood reference: %d development images, layers %s, fold SD threshold %.3f",
        len(images),
        ", ".join(map(str, reference["layers"])),
        float(reference["sd_threshold"]),
    )
    return reference


def reference_step(
    checkpoints: Mapping[int, PathLike],
    *,
    images: PathLike,
    manifest: PathLike,
    splits: PathLike,
    out: PathLike,
    sequence: str | None = None,
    quantile: float = QUANTILE,
    threads: int | None = 1,
) -> None:
    """Rule ood_reference: the development images (patients of the split; of the arm's
    `sequence` only, as the arm is trained and scored) of the study's cache, labelled by the
    manifest's label, fitted and saved as `out`."""
    from mskdx.io import read_table

    table = read_table(manifest, "manifest").sort_values("index")
    patients = set(read_table(splits)["patient"].astype(str))
    rows = table[table["patient"].astype(str).isin(patients) & table["label"].notna()]
    if sequence is not None:
        rows = rows[rows["series"].astype(str) == str(sequence)]
    if rows.empty:
        raise ConfigError(
            f"{manifest}: no labelled image of a patient in {splits}"
            + (f" of sequence {sequence!r}" if sequence else "")
        )
    cache = np.load(images, mmap_mode="r")
    pixels = np.asarray(cache[rows["index"].to_numpy(np.int64)])
    labels = rows["label"].astype(int).to_numpy()
    save_reference(
        fit_arm_reference(checkpoints, pixels, labels, quantile=quantile, threads=threads), out
    )


def save_reference(reference: Mapping, path: PathLike) -> None:
    from mskdx.io import atomic_path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **reference)


def load_reference(path: PathLike) -> dict[str, np.ndarray]:
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not readable as an ood reference ({exc})") from None
    with data:
        missing = {"layers", "threshold", "sd_threshold", "fold"} - set(data.files)
        if missing:
            raise ConfigError(f"{path}: not an ood reference (missing {sorted(missing)})")
        return {k: data[k] for k in data.files}


def flag_images(
    image_ids,
    distance: np.ndarray,
    fold_probs: np.ndarray | None = None,
    sd_threshold: float | None = None,
    region_flags=None,
) -> pd.DataFrame:
    """Per image: ood_distance (flagged above 1), ood_sd, ood (0/1) and ood_reasons
    (';'-joined, '' if none)."""
    n = len(image_ids)
    sd = (
        np.std(np.asarray(fold_probs, float), axis=1)
        if fold_probs is not None
        else np.full(n, np.nan)
    )
    flags = pd.Series(region_flags if region_flags is not None else [None] * n, dtype=object)
    flags = flags.fillna("")
    reasons = []
    for d, s, qc in zip(distance, sd, flags.astype(str), strict=True):
        why = []
        if d > 1.0:
            why.append("feature_distance")
        if sd_threshold is not None and np.isfinite(s) and s > sd_threshold:
            why.append("fold_disagreement")
        if qc.strip():
            why.append(f"crop_qc:{qc.strip()}")
        reasons.append(";".join(why))
    table = pd.DataFrame(
        {
            "image_id": list(image_ids),
            "ood_distance": np.round(np.asarray(distance, float), 4),
            "ood_sd": np.round(sd, 4),
            "ood_reasons": reasons,
        }
    )
    table["ood"] = (table["ood_reasons"] != "").astype(int)
    log.info("ood: %d of %d images flagged", int(table["ood"].sum()), n)
    return table


def check_images(
    reference: Mapping,
    checkpoints: Mapping[int, PathLike],
    images: np.ndarray,
    image_ids,
    fold_probs: np.ndarray,
    region_flags=None,
) -> pd.DataFrame:
    """`flag_images` of new images (uint8 (n, H, W)) against an arm's reference."""
    fold = int(reference["fold"])
    if fold not in checkpoints:
        raise ConfigError(
            f"ood reference of fold {fold}: that fold model is not among {sorted(checkpoints)}"
        )
    distance = distances(reference, features_of(checkpoints[fold], images))
    return flag_images(
        image_ids, distance, fold_probs, float(reference["sd_threshold"]), region_flags
    )
