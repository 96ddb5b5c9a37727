"""ROC curves with AUCs and an optional bootstrap band (OLT Figs 3b/4b; gout AUCs of Table I),
one panel or several side by side (development vs external cohorts).

Images are clustered by patient (issue 37): given each image's patient, the legend's AUC CI is
Obuchowski's (1997) clustered one and the band resamples patients (a cluster bootstrap), so
neither claims the precision of independent images; without patients each image counts as its
own patient (DeLong's CI, the stratified image bootstrap).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from numpy.typing import ArrayLike, NDArray
from sklearn.metrics import roc_curve

from mskdx.evaluate.figures.common import (
    Outputs,
    PathLike,
    fixed_style,
    output_paths,
    read_test_subset,
    save_figure,
    style_value,
)

ROC_BAND_RESAMPLES = 1000
ROC_BAND_SEED = 0


def _roc_label(arm: str, result: Any) -> str:
    """Legend text: 'arm AUC 0.904 (95% CI 0.887–0.927)'; 'CI n/a' where DeLong gives none."""
    if not (math.isfinite(result.ci_low) and math.isfinite(result.ci_high)):
        return f"{arm} AUC {result.auc:.3f} (95% CI n/a)"
    return f"{arm} AUC {result.auc:.3f} (95% CI {result.ci_low:.3f}–{result.ci_high:.3f})"


def _strata(y_true: NDArray[np.integer], codes: NDArray[np.int64], n: int) -> list:
    """Patient codes holding only positive, only negative, and both kinds of images."""
    has_pos = np.bincount(codes, weights=y_true == 1, minlength=n) > 0
    has_neg = np.bincount(codes, weights=y_true == 0, minlength=n) > 0
    groups = (has_pos & ~has_neg, has_neg & ~has_pos, has_pos & has_neg)
    return [np.flatnonzero(g) for g in groups if g.any()]


def roc_band(
    y_true: ArrayLike,
    y_score: ArrayLike,
    fpr_grid: NDArray[np.float64],
    *,
    patients: ArrayLike | None = None,
    resamples: int = ROC_BAND_RESAMPLES,
    seed: int = ROC_BAND_SEED,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Pointwise 95% bootstrap band of sensitivity at each false-positive rate of `fpr_grid`.

    PATIENTS are resampled with replacement, each drawn patient bringing all its images (the
    cluster bootstrap: Davison & Hinkley 1997, Bootstrap Methods, sec. 3.8; Field & Welsh 2007,
    JRSS B 69:369), stratified by the classes a patient holds (only positive images, only
    negative, both) so that every resample has both classes, with a fixed seed. Without
    `patients` each image is its own patient, and the band is the stratified image bootstrap
    of pROC's `ci.se` (the same draws). At each grid point x the curve's value is the best
    sensitivity reachable with 1 - specificity <= x; the band is the 2.5th and 97.5th
    percentile over resamples. It is a pointwise band, not a simultaneous one.
    """
    from mskdx.evaluate.stats.clustered import cluster_codes

    y_true = np.asarray(y_true).astype(int)
    y_score = np.asarray(y_score, dtype=float)
    if patients is None:
        patients = np.arange(len(y_true))
    codes, n = cluster_codes(patients, len(y_true))
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=n)
    starts = np.cumsum(counts) - counts
    strata = _strata(y_true, codes, n)
    rng = np.random.default_rng(seed)
    curves = np.empty((resamples, len(fpr_grid)))
    for b in range(resamples):
        drawn = np.concatenate([rng.choice(s, len(s)) for s in strata])
        sizes = counts[drawn]
        within = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        idx = order[np.repeat(starts[drawn], sizes) + within]
        fpr, tpr, _ = roc_curve(y_true[idx], y_score[idx])
        curves[b] = tpr[np.searchsorted(fpr, fpr_grid, side="right") - 1]
    low, high = np.percentile(curves, [2.5, 97.5], axis=0)
    return low, high


def _draw_roc(
    ax: Any,
    curves: Mapping[str, tuple[ArrayLike, ...]],
    linewidth: float,
    band: bool,
    title: str,
) -> None:
    """Draw the ROC curves of several arms on one axes, the AUC and its CI in the legend:
    Obuchowski's clustered CI where the arm's patients are given, else DeLong's."""
    from mskdx.evaluate.stats import clustered, delong

    grid = np.linspace(0.0, 1.0, 201)
    handles = ax.plot([0, 1], [0, 1], linestyle="--", color="0.6", linewidth=1, label="Chance")
    for i, (arm, data) in enumerate(curves.items()):
        y_true = np.asarray(data[0]).astype(int)
        y_score = np.asarray(data[1], dtype=float)
        patients = data[2] if len(data) > 2 else None
        if y_true.shape != y_score.shape or set(np.unique(y_true)) != {0, 1}:
            raise ValueError(
                f"ROC arm {arm!r}: y_true {y_true.shape} and y_score {y_score.shape}; "
                "expected equal lengths and both classes 0 and 1"
            )
        if patients is None:
            result = delong.delong_auc(y_true, y_score)
        else:
            result = clustered.clustered_auc(y_true, y_score, patients)
        colour = f"C{i % 10}"
        fpr, tpr, _ = roc_curve(y_true, y_score)
        handles += ax.plot(
            fpr, tpr, color=colour, linewidth=linewidth, label=_roc_label(arm, result)
        )
        if band:
            low, high = roc_band(y_true, y_score, grid, patients=patients)
            ax.fill_between(grid, low, high, step="post", color=colour, alpha=0.15, linewidth=0)
    if band:
        unit = "patients" if any(len(d) > 2 for d in curves.values()) else "images"
        label = f"pointwise 95% bootstrap band ({unit} resampled)"
        handles.append(Patch(color="0.5", alpha=0.3, label=label))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.005)
    ax.set_aspect("equal")
    ax.set_xlabel("1 − specificity (false-positive rate)")
    ax.set_ylabel("Sensitivity (true-positive rate)")
    ax.grid(alpha=0.3)
    ax.legend(handles=handles, loc="lower right", fontsize="small")
    ax.set_title(title)


def plot_roc(
    curves: Mapping[str, tuple[ArrayLike, ...]],
    title: str,
    outputs: Outputs,
    style: Mapping[str, Any] | None,
) -> None:
    """Overlay the ROC curves of several arms, with the AUC and its 95% CI in the legend.

    `curves` maps arm -> (y_true 0/1, y_score = P(positive)[, patient of each image]). With
    the patients the AUC and CI come from `mskdx.evaluate.stats.clustered.clustered_auc`
    (Obuchowski 1997, patients as clusters), without them from `delong.delong_auc` (DeLong et
    al. 1988, images independent); the curve points from `sklearn.metrics.roc_curve`. With
    `style.roc.ci_band` each curve gets the pointwise bootstrap band of `roc_band`, resampling
    the patients (fixed seed).
    """
    plot_roc_panels({title: curves}, outputs, style)


def plot_roc_panels(
    panels: Mapping[str, Mapping[str, tuple[ArrayLike, ...]]],
    outputs: Outputs,
    style: Mapping[str, Any] | None,
) -> None:
    """ROC curves side by side, one panel per title (e.g. development vs an external cohort)."""
    paths = output_paths(outputs)
    if not panels or not all(panels.values()):
        raise ValueError("no ROC curves given; expected arm -> (y_true, y_score) per panel")
    linewidth = float(style_value(style, "roc", "linewidth"))
    band = bool(style_value(style, "roc", "ci_band"))
    dpi = int(style_value(style, "dpi"))
    with fixed_style():
        fig = Figure(figsize=(5.8 * len(panels), 5.8), layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, len(panels)))
        for ax, (title, curves) in zip(axes, panels.items(), strict=True):
            _draw_roc(ax, curves, linewidth, band, title)
        save_figure(fig, paths, dpi)


def plot_roc_step(
    predictions: Sequence[PathLike], *, title: str, outputs: list, style: dict
) -> None:
    test = read_test_subset(predictions)
    curves = {
        arm: (part.label.to_numpy(), part.prob.to_numpy(), part.patient.to_numpy())
        for arm, part in test.groupby("arm", sort=False)
    }
    plot_roc(curves, title, outputs, style)
