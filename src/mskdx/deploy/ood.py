"""Inputs outside what a model was trained on: flagged, with the reason, not silently scored.

Three signals, each with a threshold set on the training data:

- **feature distance** (Lee et al. 2018, "A simple unified framework for detecting
  out-of-distribution samples and adversarial attacks"): the Mahalanobis distance of an image's
  penultimate-layer features (the input of the classifier head, `mskdx.learn.arms.head_path`,
  taken with a forward hook) to the nearest class mean, with one covariance shared by the
  classes (tied), estimated with Ledoit-Wolf shrinkage (`sklearn.covariance.LedoitWolf`: the
  features outnumber the training images). Threshold: the `quantile` (0.99) of the training
  images' cross-fitted distances (5 parts: in-sample distances shrink when the features
  outnumber the images). `fit_reference` computes this per fold model, `save_reference` /
  `load_reference` keep it as npz beside the checkpoint;
- **fold disagreement**: the SD of the fold models' probabilities of an image; threshold: the
  `quantile` of that SD over the development images (`disagreement_threshold`);
- **crop QC**: the manifest's `region_flags` (the region finder's plausibility flags).

`flag_images` gives per image the distance, the SD, `ood` (any signal) and `ood_reasons`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from mskdx.errors import ConfigError

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]
QUANTILE = 0.99


def penultimate_features(model, inputs, batch_size: int = 64) -> np.ndarray:
    """(n, d) float64: the input of the model's classifier head for each image of `inputs`."""
    import torch

    from mskdx.learn.arms import head_path

    head = model.get_submodule(head_path(model))
    captured: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda _m, args, _out: captured.append(args[0].detach()))
    try:
        with torch.inference_mode():
            for start in range(0, len(inputs), batch_size):
                model(inputs[start : start + batch_size])
    finally:
        hook.remove()
    return torch.cat([c.flatten(1) for c in captured]).double().numpy()


def _features(checkpoint: PathLike, images: np.ndarray) -> np.ndarray:
    from mskdx.learn.checkpoints import load_final, prepare_images

    model, state = load_final(checkpoint, "cpu")
    return penultimate_features(model, prepare_images(images, state["normalization"]))


def fit_reference(
    checkpoint: PathLike, images: np.ndarray, labels: np.ndarray, quantile: float = QUANTILE
) -> dict[str, np.ndarray]:
    """Class means, tied Ledoit-Wolf precision and the distance threshold of one fold model,
    from its training images (uint8 (n, H, W)) and their labels."""
    if not 0.5 < quantile < 1:
        raise ConfigError(f"ood quantile {quantile}: expected in (0.5, 1)")
    labels = np.asarray(labels)
    classes = np.unique(labels)
    if len(images) != len(labels) or len(classes) < 1 or len(images) < 3:
        raise ConfigError(
            f"ood reference: {len(images)} images and {len(labels)} labels; expected as many, "
            "at least 3"
        )
    features = _features(checkpoint, images)
    reference = _fit(features, labels, classes)
    # in-sample distances shrink when the features outnumber the images: the threshold comes
    # from cross-fitted distances (each image scored by a fit without its own part, 5 parts)
    parts = np.arange(len(features)) % min(5, len(features))
    held_out = np.empty(len(features))
    for part in np.unique(parts):
        rest = parts != part
        held_out[~rest] = mahalanobis(features[~rest], _fit(features[rest], labels[rest], classes))
    reference["threshold"] = np.array(np.quantile(held_out, quantile))
    reference["quantile"] = np.array(quantile)
    log.info("ood reference: %d training images, %d features", len(images), features.shape[1])
    return reference


def _fit(features: np.ndarray, labels: np.ndarray, classes: np.ndarray) -> dict:
    from sklearn.covariance import LedoitWolf

    present = [c for c in classes if (labels == c).any()]
    means = np.stack([features[labels == c].mean(axis=0) for c in present])
    centred = features - means[np.searchsorted(np.asarray(present), labels)]
    precision = LedoitWolf(assume_centered=True).fit(centred).precision_
    return {"classes": np.asarray(present), "means": means, "precision": precision}


def mahalanobis(features: np.ndarray, reference) -> np.ndarray:
    """Distance of each row of `features` to the nearest class mean (tied precision)."""
    diffs = features[:, None, :] - reference["means"][None, :, :]
    squared = np.einsum("nkd,de,nke->nk", diffs, reference["precision"], diffs)
    return np.sqrt(np.maximum(squared.min(axis=1), 0.0))


def save_reference(reference: dict, path: PathLike) -> None:
    from mskdx.io import atomic_path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **reference)


def load_reference(path: PathLike) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        missing = {"means", "precision", "threshold"} - set(data.files)
        if missing:
            raise ConfigError(f"{path}: not an ood reference (missing {sorted(missing)})")
        return {k: data[k] for k in data.files}


def feature_distances(checkpoint: PathLike, reference, images: np.ndarray) -> np.ndarray:
    return mahalanobis(_features(checkpoint, images), reference)


def disagreement_threshold(fold_probs: np.ndarray, quantile: float = QUANTILE) -> float:
    """The `quantile` of the SD of the fold probabilities ((n, folds)) of development images."""
    return float(np.quantile(np.std(np.asarray(fold_probs, float), axis=1, ddof=0), quantile))


def flag_images(
    image_ids,
    distances: np.ndarray,
    distance_threshold: float,
    fold_probs: np.ndarray | None = None,
    sd_threshold: float | None = None,
    region_flags=None,
) -> pd.DataFrame:
    """Per image: ood_distance, ood_sd, ood (0/1) and ood_reasons (';'-joined, '' if none)."""
    n = len(image_ids)
    sd = (
        np.std(np.asarray(fold_probs, float), axis=1)
        if fold_probs is not None
        else np.full(n, np.nan)
    )
    flags = pd.Series(region_flags if region_flags is not None else [None] * n).fillna("")
    reasons = []
    for d, s, qc in zip(distances, sd, flags.astype(str), strict=True):
        why = []
        if d > distance_threshold:
            why.append("feature_distance")
        if sd_threshold is not None and np.isfinite(s) and s > sd_threshold:
            why.append("fold_disagreement")
        if qc.strip():
            why.append(f"crop_qc:{qc.strip()}")
        reasons.append(";".join(why))
    table = pd.DataFrame(
        {
            "image_id": list(image_ids),
            "ood_distance": distances,
            "ood_sd": sd,
            "ood_reasons": reasons,
        }
    )
    table["ood"] = (table["ood_reasons"] != "").astype(int)
    log.info("ood: %d of %d images flagged", int(table["ood"].sum()), n)
    return table
