"""How well Grad-CAM heat maps point at the ground-truth lesion, and the Grad-CAM job.

The maps come from `mskdx.learn.gradcam` (the maintained `pytorch_grad_cam` library) through a
trained arm's fold models (`mskdx.learn.inference`). The gout paper judged its heat maps by eye
against the radiologists' opinion; with ground-truth lesion masks (the synthetic cohort, or
`studies.<study>.input.masks`) we score them:

- `energy_inside`: share of the CAM's total energy that falls inside the lesion mask,
  sum(cam * mask) / sum(cam). Its chance level is `mask_fraction`, the lesion's share of the
  image area (what a uniform heat map would give).
- `pointing_hit`: the pointing game (Zhang et al., Top-down neural attention by excitation
  backprop, ECCV 2016): the CAM's maximum lies in the lesion, or within `tolerance_px` pixels of it.
  The workflow scores CAMs and masks at the network's input resolution (the cached images) and
  uses the game's customary 15-pixel tolerance there (config
  `studies.<study>.gradcam.pointing_tolerance_px`, default `POINTING_TOLERANCE_PX`), as the game's
  authors did at 224 px: the CAM of every network here is upsampled from its last stage, 32 times
  coarser than the input whatever the input's size (10 x 22 cells at the gout paper's 700x320,
  7 x 7 at 224, 2 x 5 on the quick overlay's 140x64 crops; 16 times at `gradcam.layer: layer3`),
  so 15 input pixels are about half a cell at every size. A tolerance scaled with the image
  height instead (15/320 of it: 3 px on the quick overlay's crops) would ask for a tenth of a
  cell there.
  `pointing_chance` is the game's chance level for that image: the share of its pixels within
  the tolerance of the lesion, i.e. the hit rate of a map whose maximum falls on a random pixel;
  read a hit rate against it, above all on small images where the tolerance covers much of it.

Images whose mask is empty (no lesion, or no mask at all) are skipped, never scored against a
made-up region. Where no image has a mask (a user's own data without masks), the scores are an
empty table with the usual columns and the caller reports the localisation as skipped.

The target layer is `mskdx.learn.gradcam.cam_layer`: the last ResNet stage, for other networks
the last module with a convolution that gives a (N, C, H, W) map, or a module path. torch is
imported only inside `compute_gradcam_step`, so the scoring and summary functions (and
`mskdx.evaluate.figures.gradcam`, which uses them) run without torch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import ndimage as ndi
from scipy import stats as sps

from mskdx.evaluate.stats.proportions import wilson_ci
from mskdx.io import atomic_path, read_table, write_table

log = logging.getLogger(__name__)
PathLike = str | os.PathLike

#: the pointing game's customary tolerance, in pixels of the network's input (Zhang et al. 2016)
POINTING_TOLERANCE_PX = 15.0

SCORE_COLUMNS = [
    "position",
    "image_id",
    "energy_inside",
    "mask_fraction",
    "pointing_hit",
    "peak_distance_px",
    "pointing_chance",
    "tolerance_px",
]
SUMMARY_COLUMNS = [
    "n",
    "n_empty_cam",
    "energy_inside_mean",
    "energy_inside_ci_low",
    "energy_inside_ci_high",
    "mask_fraction_mean",
    "pointing_hits",
    "pointing_hit_rate",
    "pointing_ci_low",
    "pointing_ci_high",
    "pointing_chance_mean",
    "tolerance_px",
]


def localisation_scores(
    cams: NDArray[np.floating],
    masks: NDArray[np.integer] | Sequence[NDArray[np.integer] | None] | None,
    *,
    image_ids: Sequence[str] | None = None,
    tolerance_px: float = 0.0,
) -> pd.DataFrame:
    """Score each CAM against its lesion mask; skip images whose mask is empty or missing.

    Args:
        cams: (N, H, W) non-negative maps (from `compute_cams`).
        masks: (N, H, W) masks (non-zero = lesion), a sequence with None where an image has no
            mask, or None when there are no masks at all.
        image_ids: pseudonymous ids copied into the `image_id` column.
        tolerance_px: the pointing game counts a hit when the CAM maximum lies within this
            Euclidean distance of a lesion pixel (0 = exactly inside; the default).

    Returns:
        One row per scored image, columns `SCORE_COLUMNS`: `position` (row in `cams`),
        `image_id`, `energy_inside`, `mask_fraction`, `pointing_hit`, `peak_distance_px`
        (distance from the CAM maximum to the nearest lesion pixel, 0 inside),
        `pointing_chance` (share of the image's pixels within `tolerance_px` of the lesion: the
        hit rate of a randomly placed maximum), `tolerance_px` (the tolerance used). A CAM with no
        energy (all zero) has `energy_inside` NaN and counts as a miss. Ties of the maximum go to
        the first pixel in row-major order. Empty (with these columns) when no mask is non-empty.
    """
    cams = np.asarray(cams, dtype=np.float64)
    if cams.ndim != 3:
        raise ValueError(f"cams have shape {cams.shape}; expected (N, H, W)")
    if tolerance_px < 0:
        raise ValueError(f"tolerance_px {tolerance_px}; expected >= 0")
    n = cams.shape[0]
    if image_ids is not None and len(image_ids) != n:
        raise ValueError(f"{len(image_ids)} image ids for {n} CAMs; expected one per CAM")
    if masks is not None and len(masks) != n:
        raise ValueError(f"{len(masks)} masks for {n} CAMs; expected one per CAM (None if absent)")

    rows = []
    for i in range(n if masks is not None else 0):
        if masks[i] is None:
            continue
        mask = np.asarray(masks[i]) > 0
        if mask.shape != cams.shape[1:]:
            raise ValueError(
                f"mask {i} has shape {mask.shape}, CAM has {cams.shape[1:]}; expected the same"
            )
        if not mask.any():
            continue
        cam = cams[i]
        if np.any(cam < 0) or not np.all(np.isfinite(cam)):
            raise ValueError(f"CAM {i} has negative or non-finite values; expected >= 0")
        total = cam.sum()
        peak = np.unravel_index(int(np.argmax(cam)), cam.shape)
        if total > 0:
            energy = float((cam * mask).sum() / total)
            lesion = np.argwhere(mask)
            distance = float(np.sqrt(((lesion - np.array(peak)) ** 2).sum(axis=1)).min())
        else:
            energy, distance = float("nan"), float("nan")
        rows.append(
            {
                "position": i,
                "image_id": None if image_ids is None else image_ids[i],
                "energy_inside": energy,
                "mask_fraction": float(mask.mean()),
                "pointing_hit": bool(total > 0 and distance <= tolerance_px),
                "peak_distance_px": distance,
                "pointing_chance": float(
                    (ndi.distance_transform_edt(~mask) <= tolerance_px).mean()
                ),
                "tolerance_px": float(tolerance_px),
            }
        )
    if not rows:
        log.info("no image with a non-empty lesion mask: Grad-CAM localisation not scored")
        return pd.DataFrame(
            {
                "position": pd.Series(dtype="int64"),
                "image_id": pd.Series(dtype="object"),
                "energy_inside": pd.Series(dtype="float64"),
                "mask_fraction": pd.Series(dtype="float64"),
                "pointing_hit": pd.Series(dtype="bool"),
                "peak_distance_px": pd.Series(dtype="float64"),
                "pointing_chance": pd.Series(dtype="float64"),
                "tolerance_px": pd.Series(dtype="float64"),
            }
        )
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


def _truthy(values: pd.Series) -> NDArray[np.bool_]:
    """True/1/'true' -> True; False, None, NaN, '' -> False (CSV round trips of bool columns)."""
    return values.map(lambda v: str(v).strip().lower() in {"true", "1", "1.0"}).to_numpy(bool)


def select_samples(manifest_rows: pd.DataFrame, n: int, seed: int) -> NDArray[np.intp]:
    """Draw a seeded sample of `n` rows for Grad-CAM, lesion images first.

    Args:
        manifest_rows: the candidate rows (e.g. one fold's test images), manifest columns.
        n: sample size (config `studies.<study>.gradcam.samples`).

    Returns:
        Positions into `manifest_rows` (for `.iloc`), ascending. Where the rows have a `lesion`
        column with any true value, lesion images are drawn first and other images only fill up
        the remainder; without masks it is a plain random sample. Rows are ordered by `image_id`
        (else `index`) before drawing, so the same images and seed give the same sample whatever
        the row order; arms that share a test set (the gout arms of one fold) get the same images.
    """
    if n < 0:
        raise ValueError(f"gradcam sample size {n}; expected >= 0")
    total = len(manifest_rows)
    if n == 0 or total == 0:
        return np.zeros(0, dtype=np.intp)
    key = next((c for c in ("image_id", "index") if c in manifest_rows.columns), None)
    if key is None:
        order = np.arange(total)
    else:
        order = np.argsort(manifest_rows[key].astype(str).to_numpy(), kind="stable")
    if "lesion" in manifest_rows.columns:
        lesion = _truthy(manifest_rows["lesion"])[order]
    else:
        lesion = np.zeros(total, dtype=bool)
    rng = np.random.default_rng(seed)
    preferred, rest = order[lesion], order[~lesion]
    take = min(n, len(preferred))
    picked = list(rng.choice(preferred, size=take, replace=False)) if take else []
    fill = min(n - take, len(rest))
    if fill:
        picked += list(rng.choice(rest, size=fill, replace=False))
    return np.sort(np.asarray(picked, dtype=np.intp))


def _t_interval(values: NDArray[np.float64]) -> tuple[float, float, float]:
    """Mean and 95% Student t interval, clipped to [0, 1] (energy is a share)."""
    k = len(values)
    if k == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(values.mean())
    if k == 1:
        return mean, float("nan"), float("nan")
    half = float(sps.t.ppf(0.975, k - 1) * values.std(ddof=1) / np.sqrt(k))
    return mean, max(0.0, mean - half), min(1.0, mean + half)


def summarise_localisation(scores: pd.DataFrame, by: str | Sequence[str] = "arm") -> pd.DataFrame:
    """Summarise localisation scores per arm (or per `by` columns).

    Returns one row per group with `by` and `SUMMARY_COLUMNS`:
    - `n` scored images; `n_empty_cam` of them with an all-zero CAM (no energy; a pointing miss);
    - mean `energy_inside` over images with energy, 95% Student t interval over images (clipped to
      [0, 1]). Images are treated as independent: several images of one patient make the interval
      somewhat too narrow.
    - `mask_fraction_mean`: the chance level of `energy_inside` (and of the pointing game at
      tolerance 0) for a heat map that ignores the image;
    - pointing-game hits, hit rate and Wilson score 95% interval (Wilson 1927,
      `mskdx.evaluate.stats.proportions.wilson_ci`), and `pointing_chance_mean`, the game's chance
      level (the hit rate of a randomly placed maximum, averaged over the images), and the
      `tolerance_px` used (the largest, should the scores mix tolerances).
    Without a `by` column (e.g. scores of a single arm) everything is one group named "all".
    Empty scores give an empty table with these columns.
    """
    keys = [by] if isinstance(by, str) else list(by)
    scores = scores.copy()
    for key in keys:
        if key not in scores.columns:
            scores[key] = "all"
    if scores.empty:
        return pd.DataFrame(columns=keys + SUMMARY_COLUMNS)
    rows = []
    for group, part in scores.groupby(keys, sort=True):
        group = group if isinstance(group, tuple) else (group,)
        energy = part["energy_inside"].to_numpy(float)
        valid = energy[np.isfinite(energy)]
        mean, lo, hi = _t_interval(valid)
        hits = int(_truthy(part["pointing_hit"]).sum())
        k = len(part)
        p_lo, p_hi = wilson_ci(hits, k)
        rows.append(
            dict(zip(keys, group, strict=True))
            | {
                "n": k,
                "n_empty_cam": k - len(valid),
                "energy_inside_mean": mean,
                "energy_inside_ci_low": lo,
                "energy_inside_ci_high": hi,
                "mask_fraction_mean": float(part["mask_fraction"].mean()),
                "pointing_hits": hits,
                "pointing_hit_rate": hits / k,
                "pointing_ci_low": float(p_lo),
                "pointing_ci_high": float(p_hi),
                "pointing_chance_mean": float(part["pointing_chance"].mean()),
                "tolerance_px": float(part["tolerance_px"].max()),
            }
        )
    return pd.DataFrame(rows, columns=keys + SUMMARY_COLUMNS)


# ---------------------------------------------------------------------------------------------
# What the Grad-CAM rules call
# ---------------------------------------------------------------------------------------------


def compute_gradcam_step(
    checkpoints: Sequence[PathLike],
    predictions: Sequence[PathLike],
    images: PathLike,
    masks: PathLike,
    manifest: PathLike,
    *,
    study: str,
    arm: str,
    folds: Sequence[int],
    samples: int,
    seed: int,
    cams: PathLike,
    scores: PathLike,
    threads: int = 1,
    tolerance_px: float | None = None,
    layer: str = "last",
) -> None:
    """Grad-CAM of a seeded sample of each fold's test images (one job per arm, its folds in
    turn: one process start and one cache read instead of one per fold), scored against the
    lesion masks at the network's input resolution (the pointing game within `tolerance_px`
    input pixels; default `POINTING_TOLERANCE_PX`). `layer` is the target stage or module path
    (`mskdx.learn.gradcam.cam_layer`; "last": the last convolutional stage). `checkpoints` and
    `predictions` are in the order of `folds`. `cams` holds every fold's sample with a `folds`
    array."""
    import torch

    from mskdx.learn.inference import fold_models

    if not len(checkpoints) == len(predictions) == len(folds):
        raise ValueError(
            f"{len(checkpoints)} checkpoints, {len(predictions)} prediction tables and "
            f"{len(folds)} folds; expected one of each per fold"
        )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    table = read_table(manifest, "manifest").set_index("image_id")
    all_images = np.load(images, mmap_mode="r")
    all_masks = np.load(masks, mmap_mode="r")
    prediction_of = dict(zip(folds, predictions, strict=True))
    tolerance = POINTING_TOLERANCE_PX if tolerance_px is None else tolerance_px
    parts, tables = [], []
    arm_models = fold_models(dict(zip(folds, checkpoints, strict=True)), device, threads)
    for fold_model in arm_models:
        fold = fold_model.fold
        preds = read_table(prediction_of[fold], "predictions")
        test = preds[preds.subset == "test"].set_index("image_id")
        rows = table.loc[test.index].reset_index()
        rows = rows.iloc[select_samples(rows, samples, seed)]
        idx = rows["index"].to_numpy()
        imgs = np.asarray(all_images[idx])
        lesion_masks = np.asarray(all_masks[idx])
        has_mask = rows["has_mask"].fillna(False).astype(bool).to_numpy()
        maps = fold_model.cams(imgs, layer, source=images)
        image_ids = list(rows.image_id)
        score_table = localisation_scores(
            maps,
            [m if h else None for m, h in zip(lesion_masks, has_mask, strict=True)],
            image_ids=image_ids,
            tolerance_px=tolerance,
        )
        score_table.insert(0, "fold", fold)
        score_table.insert(0, "arm", arm)
        score_table.insert(0, "study", study)
        tables.append(score_table)
        log.info(
            "%s %s fold %s: Grad-CAM of %d images, %d scored against masks "
            "(pointing game within %.1f px)",
            study,
            arm,
            fold,
            len(rows),
            len(score_table),
            tolerance,
        )
        parts.append(
            dict(
                images=imgs,
                cams=maps.astype(np.float32),
                masks=lesion_masks,
                has_mask=has_mask,
                image_ids=np.array(image_ids, dtype=str),
                labels=test.loc[image_ids, "label"].to_numpy(),
                probs=test.loc[image_ids, "prob"].to_numpy(),
                folds=np.full(len(rows), fold, dtype=np.int64),
            )
        )
    arrays = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    with atomic_path(cams) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    write_table(pd.concat(tables, ignore_index=True), scores)


def summarise_localisation_step(
    scores: Sequence[PathLike], *, csv: PathLike, md: PathLike, all_scores: PathLike
) -> None:
    """Pool the localisation scores of every job and summarise them per arm."""
    from mskdx.evaluate.markdown import write_table_pair

    table = pd.concat([read_table(p) for p in scores], ignore_index=True)
    if table.empty:
        log.warning("no image has a lesion mask: Grad-CAM localisation is not scored")
    write_table(table, all_scores)
    write_table_pair(
        summarise_localisation(table, by="arm"),
        csv,
        md,
        "Grad-CAM localisation against the lesion masks",
    )
