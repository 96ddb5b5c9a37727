"""Grad-CAM figures: the overlay grid (heat map, lesion contour, CAM maximum) and the
localisation summary per arm (energy inside the lesion, pointing game)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from mskdx.evaluate.figures.common import (
    TILE_INCHES,
    Outputs,
    PathLike,
    check_images,
    fixed_style,
    grid_shape,
    hide_axes,
    output_paths,
    save_figure,
    style_value,
)
from mskdx.io import read_table


def plot_localisation(
    scores: pd.DataFrame,
    outputs: Outputs,
    style: Mapping[str, Any] | None,
    *,
    title: str | None = None,
) -> None:
    """Plot Grad-CAM localisation per arm: energy inside the lesion and pointing-game hit rate.

    `scores` are `mskdx.evaluate.localisation.localisation_scores` rows with an `arm` column
    (one group "all" without it). Left: box plot and points (seeded jitter) of `energy_inside`,
    with the chance level (mean lesion area share) as a black dash. Right: pointing-game hit rate
    with Wilson 95% intervals. Empty scores (no lesion masks) give a figure that says
    localisation was not scored, so the workflow's output exists.
    """
    from mskdx.evaluate.localisation import summarise_localisation

    paths = output_paths(outputs)
    dpi = int(style_value(style, "dpi"))
    summary = summarise_localisation(scores, by="arm")
    with fixed_style():
        if summary.empty:
            fig = _not_scored(title)
        else:
            if "arm" not in scores.columns:
                scores = scores.assign(arm="all")
            fig = Figure(figsize=(max(8, 2.2 * len(summary) + 4), 4.4), layout="constrained")
            ax_energy, ax_hits = fig.subplots(1, 2)
            _draw_energy(ax_energy, scores, summary)
            _draw_pointing(ax_hits, summary)
            fig.suptitle(title or "Grad-CAM localisation against lesion masks")
        save_figure(fig, paths, dpi)


def _not_scored(title: str | None) -> Figure:
    """Build the figure of a run without lesion masks: localisation was not scored."""
    fig = Figure(figsize=(6, 2.5), layout="constrained")
    ax = fig.subplots()
    ax.axis("off")
    ax.text(
        0.5,
        0.5,
        "No ground-truth lesion masks:\nGrad-CAM localisation not scored.",
        ha="center",
        va="center",
        fontsize=12,
    )
    if title:
        fig.suptitle(title)
    return fig


def _draw_energy(ax: Any, scores: pd.DataFrame, summary: pd.DataFrame) -> None:
    """Draw CAM energy inside the lesion per arm (box, seeded jitter) and its chance level."""
    arms = summary["arm"].astype(str).tolist()
    rng = np.random.default_rng(0)
    positions = np.arange(len(arms))
    energies = []
    for arm in arms:
        values = scores.loc[scores["arm"].astype(str) == arm, "energy_inside"]
        energies.append(values.to_numpy(float)[np.isfinite(values.to_numpy(float))])
    ax.boxplot(
        [e if len(e) else [np.nan] for e in energies],
        positions=positions,
        widths=0.5,
        showfliers=False,
    )
    for x, values in zip(positions, energies, strict=True):
        jitter = rng.uniform(-0.15, 0.15, size=len(values))
        ax.scatter(x + jitter, values, s=10, alpha=0.5, color="C0", zorder=3)
    chance = summary["mask_fraction_mean"].to_numpy(float)
    ax.scatter(
        positions,
        chance,
        marker="_",
        s=600,
        color="black",
        zorder=4,
        label="chance (mean lesion area share)",
    )
    ax.set_xticks(positions, [f"{a}\nn = {len(e)}" for a, e in zip(arms, energies, strict=True)])
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("Grad-CAM energy inside lesion mask")
    ax.set_title("Energy inside the lesion")
    ax.legend(loc="upper right", fontsize="small")
    ax.grid(axis="y", alpha=0.3)


def _draw_pointing(ax: Any, summary: pd.DataFrame) -> None:
    """Draw the pointing-game hit rate per arm (Wilson 95% CI) and its chance level."""
    arms = summary["arm"].astype(str).tolist()
    positions = np.arange(len(arms))
    rate = summary["pointing_hit_rate"].to_numpy(float)
    err = np.vstack(
        [
            rate - summary["pointing_ci_low"].to_numpy(float),
            summary["pointing_ci_high"].to_numpy(float) - rate,
        ]
    )
    ax.bar(positions, rate, width=0.6, color="C1", yerr=err, capsize=4)
    ax.scatter(
        positions,
        summary["pointing_chance_mean"].to_numpy(float),
        marker="_",
        s=600,
        color="black",
        zorder=4,
        label="chance (random maximum)",
    )
    ax.legend(loc="upper right", fontsize="small")
    hit_labels = [
        f"{a}\n{h}/{k} hits"
        for a, h, k in zip(arms, summary["pointing_hits"], summary["n"], strict=True)
    ]
    ax.set_xticks(positions, hit_labels)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("Pointing-game hit rate (95% Wilson CI)")
    tolerance = summary["tolerance_px"].max()
    ax.set_title(
        f"CAM maximum within {tolerance:g} px of the lesion"
        if tolerance > 0
        else "CAM maximum inside the lesion"
    )
    ax.grid(axis="y", alpha=0.3)


def plot_gradcam_grid(
    images: ArrayLike,
    cams: ArrayLike,
    masks_or_None: ArrayLike | Sequence[ArrayLike | None] | None,
    captions: Sequence[str],
    outputs: Outputs,
    style: Mapping[str, Any] | None,
    *,
    title: str | None = None,
    alpha: float = 0.4,
) -> None:
    """Overlay Grad-CAM heat maps (jet, `alpha`) on the images, with the lesion contour.

    `images` (N, H, W) uint8, `cams` (N, H, W) in [0, 1], masks (N, H, W) or a sequence with None
    where an image has no mask, or None. A non-empty mask is outlined in white; the CAM maximum is
    marked with a white plus (the pointing game's point). All images are drawn, in
    `style.montage.columns` columns. Captions must carry only pseudonymous ids.
    """
    paths = output_paths(outputs)
    images = check_images(images)
    cams = np.asarray(cams, dtype=float)
    n = len(images)
    if cams.shape != images.shape:
        raise ValueError(f"cams have shape {cams.shape}, images {images.shape}; expected equal")
    if len(captions) != n:
        raise ValueError(f"{len(captions)} captions for {n} images; expected one per image")
    if masks_or_None is not None and len(masks_or_None) != n:
        raise ValueError(f"{len(masks_or_None)} masks for {n} images; expected one per image")
    if n == 0:
        raise ValueError("no images for the Grad-CAM grid; expected at least one")
    rows, columns = grid_shape(n, style)
    height, width = images.shape[1:]
    dpi = int(style_value(style, "dpi"))
    with fixed_style():
        tile_h = TILE_INCHES * height / width
        fig = Figure(
            figsize=(columns * TILE_INCHES + 0.8, rows * (tile_h + 0.45) + (0.4 if title else 0)),
            layout="constrained",
        )
        axes = fig.subplots(rows, columns, squeeze=False).ravel()
        for i, ax in enumerate(axes):
            hide_axes(ax)
            if i >= n:
                ax.set_visible(False)
                continue
            ax.imshow(images[i], cmap="gray", vmin=0, vmax=255)
            ax.imshow(cams[i], cmap="jet", vmin=0, vmax=1, alpha=alpha)
            mask = None if masks_or_None is None else masks_or_None[i]
            if mask is not None:
                mask = np.asarray(mask) > 0
                if mask.shape != (height, width):
                    raise ValueError(f"mask {i} has shape {mask.shape}; expected {(height, width)}")
                if mask.any():
                    ax.contour(mask.astype(float), levels=[0.5], colors="white", linewidths=1.2)
            peak_r, peak_c = np.unravel_index(int(np.argmax(cams[i])), cams[i].shape)
            if cams[i].max() > 0:
                ax.plot([peak_c], [peak_r], marker="+", color="white", markersize=9, mew=1.5)
            ax.set_title(str(captions[i]), fontsize=7)
        fig.colorbar(
            ScalarMappable(norm=Normalize(0, 1), cmap="jet"),
            ax=axes.tolist(),
            shrink=0.6,
            label="Grad-CAM (scaled per image)",
        )
        if title:
            fig.suptitle(title)
        save_figure(fig, paths, dpi)


def plot_localisation_step(scores: PathLike, *, outputs: list, style: dict) -> None:
    plot_localisation(read_table(scores), outputs, style)


def plot_gradcam_step(cams: PathLike, *, outputs: list, style: dict) -> None:
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
