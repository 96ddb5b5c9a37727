"""Image montages: test predictions framed by correctness (OLT paper Figure 5) and the crop QC
(a seeded sample of crops per view, flagged crops first)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from numpy.typing import ArrayLike, NDArray

from mskdx.evaluate.figures.common import (
    TILE_INCHES,
    Outputs,
    PathLike,
    check_ids,
    check_images,
    fixed_style,
    grid_shape,
    hide_axes,
    output_paths,
    save_figure,
    style_value,
)
from mskdx.io import read_table

log = logging.getLogger(__name__)

CORRECT_COLOUR = (0, 170, 0)  # montage frames (OLT paper Figure 5)
WRONG_COLOUR = (220, 0, 0)


def _framed(image: NDArray[np.uint8], colour: tuple[int, int, int]) -> NDArray[np.uint8]:
    """Grey image -> RGB with a solid frame of `colour` (3% of the longer side, >= 2 px)."""
    height, width = image.shape
    pad = max(2, round(0.03 * max(height, width)))
    tile = np.empty((height + 2 * pad, width + 2 * pad, 3), dtype=np.uint8)
    tile[...] = colour
    tile[pad:-pad, pad:-pad] = image[..., None]
    return tile


def plot_prediction_montage(
    images: ArrayLike,
    labels: ArrayLike,
    probs: ArrayLike,
    image_ids: Sequence[str],
    class_names: Sequence[str],
    outputs: Outputs,
    style: Mapping[str, Any] | None,
    threshold: float = 0.5,
    *,
    title: str | None = None,
) -> None:
    """Show test predictions framed green (correct) or red (wrong), as OLT paper Figure 5.

    Draws the first `style.montage.images` images in the order given (the caller picks them) in
    `style.montage.columns` columns. An image is called positive when its probability is above
    `threshold`. Each caption has a tick or cross (so colour is not the only cue), the
    pseudonymous image id, the true and predicted class and P(positive).
    """
    paths = output_paths(outputs)
    images = check_images(images)
    labels = np.asarray(labels).astype(int)
    probs = np.asarray(probs, dtype=float)
    n = len(images)
    if labels.shape != (n,) or probs.shape != (n,):
        raise ValueError(f"{n} images, {labels.shape} labels, {probs.shape} probs; expected equal")
    if len(class_names) != 2:
        raise ValueError(f"class names {list(class_names)}; expected [negative, positive]")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(
            "labels hold values other than 0 and 1; expected 0 = negative, 1 = positive"
        )
    if n == 0:
        raise ValueError("no images for the montage; expected at least one")
    ids = check_ids(image_ids, n)
    shown = min(n, int(style_value(style, "montage", "images")))
    if shown < n:
        log.info("montage shows the first %d of %d images", shown, n)
    rows, columns = grid_shape(shown, style)
    height, width = images.shape[1:]
    dpi = int(style_value(style, "dpi"))
    with fixed_style():
        tile_h = TILE_INCHES * height / width
        fig = Figure(
            figsize=(columns * TILE_INCHES, rows * (tile_h + 0.75) + (0.4 if title else 0)),
            layout="constrained",
        )
        axes = fig.subplots(rows, columns, squeeze=False).ravel()
        for i, ax in enumerate(axes):
            hide_axes(ax)
            if i >= shown:
                ax.set_visible(False)
                continue
            predicted = int(probs[i] > threshold)
            correct = predicted == labels[i]
            ax.imshow(_framed(images[i], CORRECT_COLOUR if correct else WRONG_COLOUR))
            ax.set_title(
                f"{'✓' if correct else '✗'} {ids[i]}\n"
                f"true {class_names[labels[i]]} · pred {class_names[predicted]}\n"
                f"P({class_names[1]}) = {probs[i]:.2f}",
                fontsize=7,
            )
        if title:
            fig.suptitle(title)
        save_figure(fig, paths, dpi)


def select_qc(series: Sequence[str], per_view: int, seed: int) -> dict[str, list[int]]:
    """Pick up to `per_view` image positions per view (series), seeded; views sorted by name."""
    series = np.asarray([str(s) for s in series])
    rng = np.random.default_rng(seed)
    chosen = {}
    for view in sorted(set(series.tolist())):
        members = np.flatnonzero(series == view)
        take = min(per_view, len(members))
        chosen[view] = sorted(int(i) for i in rng.choice(members, size=take, replace=False))
    return chosen


def plot_crop_qc(
    images: ArrayLike,
    series: Sequence[str],
    image_ids: Sequence[str],
    outputs: Outputs,
    style: Mapping[str, Any] | None,
    seed: int,
    *,
    title: str | None = None,
    flags: Sequence[str | None] | None = None,
) -> None:
    """Show a seeded random sample of ultrasound crops, one row per view (series).

    Each row holds up to `style.montage.columns` crops of one view (`select_qc`), labelled with
    the view and its image count; each crop is captioned with its pseudonymous id. `flags` (the
    manifest's region_flags, one per image): flagged crops (on_flag keep) are shown first in
    their view's row, captioned with their flags in red, and counted in the title.
    """
    paths = output_paths(outputs)
    images = check_images(images)
    n = len(images)
    if len(series) != n:
        raise ValueError(f"{len(series)} series for {n} images; expected one per image")
    if n == 0:
        raise ValueError("no images for the crop QC; expected at least one")
    ids = check_ids(image_ids, n)
    columns = max(1, int(style_value(style, "montage", "columns")))
    marks = [str(f) if isinstance(f, str) and f else "" for f in (flags or [""] * n)]
    if len(marks) != n:
        raise ValueError(f"{len(marks)} flags for {n} images; expected one per image")
    chosen = select_qc(series, columns, seed)
    for view, members in chosen.items():  # flagged crops first: they must be seen
        flagged = [i for i in range(n) if marks[i] and str(series[i]) == view][:columns]
        chosen[view] = (flagged + [i for i in members if i not in flagged])[:columns]
    counts = pd.Series([str(s) for s in series]).value_counts()
    height, width = images.shape[1:]
    dpi = int(style_value(style, "dpi"))
    with fixed_style():
        tile_h = TILE_INCHES * height / width
        rows = len(chosen)
        fig = Figure(
            figsize=(columns * TILE_INCHES + 0.6, rows * (tile_h + 0.45) + 0.5),
            layout="constrained",
        )
        axes = fig.subplots(rows, columns, squeeze=False)
        for r, (view, members) in enumerate(chosen.items()):
            for c in range(columns):
                ax = axes[r, c]
                hide_axes(ax)
                if c == 0:
                    ax.set_ylabel(f"{view}\n(n = {counts[view]})")
                if c >= len(members):
                    ax.set_frame_on(False)
                    continue
                ax.imshow(images[members[c]], cmap="gray", vmin=0, vmax=255)
                if marks[members[c]]:
                    ax.set_title(
                        f"{ids[members[c]]}\n{marks[members[c]]}", fontsize=7, color="#c0392b"
                    )
                else:
                    ax.set_title(ids[members[c]], fontsize=7)
        flagged_n = sum(bool(m) for m in marks)
        fig.suptitle(
            title
            or f"Crop QC: {n} images of {height} × {width} px, seed {seed}"
            + (f"; {flagged_n} with an implausible region (flagged)" if flagged_n else "")
        )
        save_figure(fig, paths, dpi)


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
    table = read_table(manifest, "manifest")
    bank = np.load(images, mmap_mode="r")
    flags = list(table.region_flags) if "region_flags" in table else None
    plot_crop_qc(bank, list(table.series), list(table.image_id), outputs, style, seed, flags=flags)
