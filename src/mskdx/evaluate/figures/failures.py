"""The failure gallery: per arm, its most confident false positives and false negatives among the
pooled test-fold images, each with its Grad-CAM from the fold model that scored it.

A reviewer asks where a model fails, not only how often: the gallery shows the negatives with
the highest probability above `image_threshold` and the positives with the lowest probability at
or below it, `per_kind` of each, one row per arm. Captions carry pseudonymous image ids only. The
maps are computed here (a few images per arm) with the fold's checkpoint, at the Grad-CAM layer
the study uses (`mskdx.learn.gradcam.compute_cams`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mskdx.evaluate.figures.common import (
    PathLike,
    check_ids,
    fixed_style,
    output_paths,
    read_test_subset,
    save_figure,
    style_value,
)
from mskdx.evaluate.figures.gradcam import plot_gradcam_grid
from mskdx.io import read_table

log = logging.getLogger(__name__)

KINDS = ("FP", "FN")


def select_failures(test: pd.DataFrame, *, per_kind: int, image_threshold: float) -> pd.DataFrame:
    """The most confident errors of each arm: rows of `test` with a column `kind` (FP / FN).

    FP: label 0, prob > threshold, highest prob first; FN: label 1, prob <= threshold, lowest
    first; ties by image id. An arm with fewer errors gets fewer rows.
    """
    picked = []
    for arm, rows in test.groupby("arm", sort=True):
        fp = rows[(rows.label == 0) & (rows.prob > image_threshold)]
        fn = rows[(rows.label == 1) & (rows.prob <= image_threshold)]
        fp = fp.sort_values(["prob", "image_id"], ascending=[False, True]).head(per_kind)
        fn = fn.sort_values(["prob", "image_id"], ascending=[True, True]).head(per_kind)
        picked += [fp.assign(kind="FP"), fn.assign(kind="FN")]
        log.info("%s: %d false positives, %d false negatives shown", arm, len(fp), len(fn))
    if not picked:
        return test.head(0).assign(kind=pd.Series(dtype=str))
    return pd.concat(picked, ignore_index=True)


def failure_cams(
    failures: pd.DataFrame,
    checkpoints: dict[tuple[str, int], PathLike],
    images: np.ndarray,
    manifest: pd.DataFrame,
    *,
    layers: Mapping[str, str] | None = None,
    threads: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """The cached images of `failures` and their Grad-CAM maps, each from its (arm, fold) model
    (`mskdx.learn.inference`: the arm's fold models, one in memory at a time) at the arm's
    Grad-CAM layer (`layers`; "last" where not given)."""
    from mskdx.learn.inference import fold_models

    index = manifest.set_index("image_id")["index"]
    imgs = np.asarray(images[index.loc[failures.image_id].to_numpy(np.int64)])
    cams = np.zeros(imgs.shape, dtype=np.float32)
    for arm, arm_rows in failures.groupby("arm", sort=True):
        needed = {int(f): checkpoints[(arm, int(f))] for f in arm_rows["fold"].unique()}
        for fold_model in fold_models(needed, "cpu", threads):
            at = arm_rows.index[arm_rows["fold"] == fold_model.fold].to_numpy()
            cams[at] = fold_model.cams(imgs[at], (layers or {}).get(arm, "last"))
    return imgs, cams


def plot_failures_step(
    predictions: Sequence[PathLike],
    checkpoints: Sequence[PathLike],
    images: PathLike,
    masks: PathLike,
    manifest: PathLike,
    *,
    outputs: list,
    style: dict,
    per_kind: int,
    image_threshold: float,
    runs: Sequence[tuple[str, int]],
    layers: Mapping[str, str] | None = None,
    threads: int = 1,
    table: PathLike | None = None,
) -> pd.DataFrame:
    """Draw the gallery (one row per arm: FPs, then FNs) and write the listed images to `table`.

    `checkpoints` are the `checkpoint_final.pt` of every arm and fold, `runs` their (arm, fold)
    in the same order (from the config's layout, never parsed from the paths).
    """
    from mskdx.io import write_table

    test = read_test_subset(predictions)
    failures = select_failures(test, per_kind=per_kind, image_threshold=image_threshold)
    listed = failures[["arm", "fold", "kind", "patient", "image_id", "label", "prob"]]
    if table is not None:
        write_table(listed, table)
    if failures.empty:
        log.warning("no false positive or false negative in any arm's test folds")
        _no_failures(outputs, style)
        return listed
    if len(runs) != len(checkpoints):
        raise ValueError(f"{len(checkpoints)} checkpoints for {len(runs)} (arm, fold) runs")
    by_model = {
        (str(arm), int(fold)): path for (arm, fold), path in zip(runs, checkpoints, strict=True)
    }
    manifest_table = read_table(manifest, "manifest")
    all_images = np.load(images, mmap_mode="r")
    imgs, cams = failure_cams(
        failures, by_model, all_images, manifest_table, layers=layers, threads=threads
    )
    index = manifest_table.set_index("image_id")
    has_mask = index.loc[failures.image_id, "has_mask"].fillna(False).astype(bool).to_numpy()
    all_masks = np.load(masks, mmap_mode="r")
    mask_rows = np.asarray(all_masks[index.loc[failures.image_id, "index"].to_numpy(np.int64)])
    ids = check_ids(failures.image_id, len(failures))
    captions = [
        f"{r.arm} {r.kind} (fold {r.fold})\n{i}\ny={r.label} p={r.prob:.2f}"
        for r, i in zip(failures.itertuples(index=False), ids, strict=True)
    ]
    # one row per arm: FPs then FNs, padded with blank tiles where an arm has fewer errors
    order = []
    for _arm, rows in failures.groupby("arm", sort=True):
        for kind in KINDS:
            at = rows.index[rows.kind == kind].tolist()
            order += at + [None] * (per_kind - len(at))
    tiles = np.zeros((len(order), *imgs.shape[1:]), dtype=np.uint8)
    tile_cams = np.zeros(tiles.shape, dtype=np.float32)
    tile_masks: list = [None] * len(order)
    tile_captions = ["(no further error)"] * len(order)
    for pos, i in enumerate(order):
        if i is not None:
            tiles[pos], tile_cams[pos] = imgs[i], cams[i]
            tile_masks[pos] = mask_rows[i] if has_mask[i] else None
            tile_captions[pos] = captions[i]
    plot_gradcam_grid(
        tiles,
        tile_cams,
        tile_masks,
        tile_captions,
        outputs,
        {**style, "montage": {"columns": 2 * per_kind}},
        title=f"Most confident false positives and false negatives per arm (top {per_kind} each)",
    )
    return listed


def _no_failures(outputs: list, style: dict) -> None:
    """The gallery of a run whose arms made no error on their test folds: a note, not a crash."""
    with fixed_style():
        fig = Figure(figsize=(6, 2), layout="constrained")
        ax = fig.subplots()
        ax.axis("off")
        ax.text(0.5, 0.5, "No false positive or false negative\nin any arm's test folds.",
                ha="center", va="center", fontsize=12)  # fmt: skip
        save_figure(fig, output_paths(outputs), int(style_value(style, "dpi")))
