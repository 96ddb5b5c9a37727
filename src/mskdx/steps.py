"""Glue for the workflow's table, figure and Grad-CAM rules: read inputs, call the library, write.

Each function here is what one rule's script calls; the statistics, plotting and Grad-CAM logic
live in `mskdx.stats`, `mskdx.tables`, `mskdx.figures` and `mskdx.gradcam`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mskdx.io import atomic_path, read_table, write_table, write_text

log = logging.getLogger(__name__)
PathLike = str | Path


def read_predictions(paths: Sequence[PathLike]) -> pd.DataFrame:
    """Concatenate prediction tables (schema `predictions`) of several jobs."""
    return pd.concat([read_table(p, "predictions") for p in paths], ignore_index=True)


def write_table_pair(df: pd.DataFrame, csv: PathLike, md: PathLike, title: str) -> None:
    """Write a result table as CSV (machine-readable) and Markdown (for people)."""
    from mskdx.tables import to_markdown

    write_table(df, csv)
    write_text(md, to_markdown(df, title))


# ---- tables ---------------------------------------------------------------------------------


def write_complexity_table(
    arms: dict, input_shape: tuple[int, int, int], csv: PathLike, md: PathLike
) -> None:
    from mskdx.models import complexity_table

    table = complexity_table(arms, input_shape)
    write_table_pair(table, csv, md, "Gout Table II: parameters and MACs per arm (ours vs paper)")


def write_image_level_table(
    predictions: Sequence[PathLike],
    *,
    best_arm: str,
    image_threshold: float,
    csv: PathLike,
    md: PathLike,
) -> None:
    from mskdx.tables import gout_image_table

    table = gout_image_table(
        read_predictions(predictions), best_arm=best_arm, image_threshold=image_threshold
    )
    write_table_pair(table, csv, md, "Gout Table I: image-level performance on the test folds")


def write_patient_level_table(
    predictions: Sequence[PathLike],
    *,
    step: float,
    image_threshold: float,
    csv: PathLike,
    md: PathLike,
    curves: PathLike,
) -> None:
    from mskdx.tables import gout_patient_table

    table, curve_table = gout_patient_table(
        read_predictions(predictions), step=step, image_threshold=image_threshold
    )
    write_table(curve_table, curves)
    write_table_pair(table, csv, md, "Gout Table III: patient-level diagnosis per fold")


def write_sequence_table(
    predictions: Sequence[PathLike], *, image_threshold: float, csv: PathLike, md: PathLike
) -> None:
    from mskdx.tables import olt_table

    table = olt_table(read_predictions(predictions), image_threshold=image_threshold)
    write_table_pair(table, csv, md, "OLT Table II: performance per MRI sequence on the test set")


def write_paper_check(csv: PathLike, md: PathLike) -> None:
    from mskdx.papers.check import paper_check

    table = paper_check()
    bad = int((~table["consistent"].astype(bool)).sum())
    log.info("paper check: %d of %d printed values cannot be reproduced", bad, len(table))
    write_table_pair(table, csv, md, "Printed numbers of the two papers, recomputed")


# ---- figures --------------------------------------------------------------------------------


def read_test_subset(paths: Sequence[PathLike]) -> pd.DataFrame:
    """The test-subset rows of prediction tables (each image once over the folds)."""
    preds = read_predictions(paths)
    return preds[preds.subset == "test"].reset_index(drop=True)


def plot_training_curves_step(history: PathLike, *, title: str, outputs: list, style: dict) -> None:
    from mskdx.figures import plot_training_curves

    plot_training_curves(read_table(history, "history"), title, outputs, style)


def plot_confusion_step(
    predictions: Sequence[PathLike],
    *,
    class_names: list[str],
    image_threshold: float,
    title: str,
    outputs: list,
    style: dict,
) -> None:
    from mskdx.figures import plot_confusion

    test = read_test_subset(predictions)
    pred = (test.prob > image_threshold).astype(int)  # as argmax: positive above
    plot_confusion(test.label.to_numpy(), pred.to_numpy(), class_names, title, outputs, style)


def plot_roc_step(
    predictions: Sequence[PathLike], *, title: str, outputs: list, style: dict
) -> None:
    from mskdx.figures import plot_roc

    test = read_test_subset(predictions)
    curves = {
        arm: (part.label.to_numpy(), part.prob.to_numpy())
        for arm, part in test.groupby("arm", sort=False)
    }
    plot_roc(curves, title, outputs, style)


def plot_threshold_step(curves: PathLike, *, title: str, outputs: list, style: dict) -> None:
    from mskdx.figures import plot_threshold_curve

    table = read_table(curves)
    chosen = {
        int(fold): float(part.loc[part.chosen.astype(bool), "threshold"].iloc[0])
        for fold, part in table.groupby("fold")
    }
    plot_threshold_curve(table, chosen, title, outputs, style)


def plot_montage_step(
    predictions: PathLike,
    images: PathLike,
    manifest: PathLike,
    *,
    class_names: list[str],
    seed: int,
    outputs: list,
    style: dict,
) -> None:
    """Montage of a seeded sample of test images, wrong predictions and correct ones mixed."""
    from mskdx.figures import plot_prediction_montage

    preds = read_table(predictions, "predictions")
    test = preds[preds.subset == "test"].sort_values("image_id")
    rows = read_table(manifest, "manifest").set_index("image_id").loc[test.image_id, "index"]
    n = min(len(test), int(style.get("montage", {}).get("images", 16)))
    pick = np.sort(np.random.default_rng(seed).choice(len(test), size=n, replace=False))
    bank = np.load(images, mmap_mode="r")
    plot_prediction_montage(
        np.asarray(bank[rows.to_numpy()[pick]]),
        test.label.to_numpy()[pick],
        test.prob.to_numpy()[pick],
        list(test.image_id.to_numpy()[pick]),
        class_names,
        outputs,
        style,
    )


def plot_crop_qc_step(
    images: PathLike, manifest: PathLike, *, seed: int, outputs: list, style: dict
) -> None:
    from mskdx.figures import plot_crop_qc

    table = read_table(manifest, "manifest")
    bank = np.load(images, mmap_mode="r")
    flags = list(table.region_flags) if "region_flags" in table else None
    plot_crop_qc(bank, list(table.series), list(table.image_id), outputs, style, seed, flags=flags)


def plot_localisation_step(scores: PathLike, *, outputs: list, style: dict) -> None:
    from mskdx.figures import plot_localisation

    plot_localisation(read_table(scores), outputs, style)


# ---- Grad-CAM -------------------------------------------------------------------------------


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
    input pixels; default `gradcam.POINTING_TOLERANCE_PX`). `layer` is the target stage
    (`models.cam_layer`). `cams` holds every fold's sample with a `folds` array."""
    import torch

    from mskdx import gradcam, models, train

    if not len(checkpoints) == len(predictions) == len(folds):
        raise ValueError(
            f"{len(checkpoints)} checkpoints, {len(predictions)} prediction tables and "
            f"{len(folds)} folds; expected one of each per fold"
        )
    torch.set_num_threads(threads)  # the job's share of the cores: no oversubscription
    device = "cuda" if torch.cuda.is_available() else "cpu"
    table = read_table(manifest, "manifest").set_index("image_id")
    all_images = np.load(images, mmap_mode="r")
    all_masks = np.load(masks, mmap_mode="r")
    parts, tables = [], []
    for checkpoint, prediction, fold in zip(checkpoints, predictions, folds, strict=True):
        model, state = train.load_final(checkpoint, device)
        preds = read_table(prediction, "predictions")
        test = preds[preds.subset == "test"].set_index("image_id")
        rows = table.loc[test.index].reset_index()
        rows = rows.iloc[gradcam.select_samples(rows, samples, seed)]
        idx = rows["index"].to_numpy()
        imgs = np.asarray(all_images[idx])
        lesion_masks = np.asarray(all_masks[idx])
        has_mask = rows["has_mask"].fillna(False).astype(bool).to_numpy()
        batch = train.prepare_images(imgs, state["normalization"], device)
        maps = gradcam.compute_cams(model, batch, models.cam_layer(model, layer))
        image_ids = list(rows.image_id)
        tolerance = gradcam.POINTING_TOLERANCE_PX if tolerance_px is None else tolerance_px
        score_table = gradcam.localisation_scores(
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


def plot_gradcam_step(cams: PathLike, *, outputs: list, style: dict) -> None:
    from mskdx.figures import plot_gradcam_grid

    with np.load(cams) as npz:
        data = dict(npz)
    first = data["folds"] == data["folds"].min()  # the first fold's sample, as the paper shows
    data = {key: value[first] for key, value in data.items()}
    masks = [m if h else None for m, h in zip(data["masks"], data["has_mask"], strict=True)]
    captions = [
        f"{i}\ny={y} p={p:.2f}"
        for i, y, p in zip(data["image_ids"], data["labels"], data["probs"], strict=True)
    ]
    plot_gradcam_grid(data["images"], data["cams"], masks, captions, outputs, style)


def summarise_localisation_step(
    scores: Sequence[PathLike], *, csv: PathLike, md: PathLike, all_scores: PathLike
) -> None:
    """Pool the localisation scores of every job and summarise them per arm."""
    from mskdx.gradcam import summarise_localisation

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
