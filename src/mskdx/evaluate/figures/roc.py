"""ROC curves with DeLong AUCs and an optional bootstrap band (OLT Figs 3b/4b; gout AUCs of
Table I), one panel or several side by side (development vs external cohorts)."""

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


def roc_band(
    y_true: NDArray[np.integer],
    y_score: NDArray[np.floating],
    fpr_grid: NDArray[np.float64],
    *,
    resamples: int = ROC_BAND_RESAMPLES,
    seed: int = ROC_BAND_SEED,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Pointwise 95% bootstrap band of sensitivity at each false-positive rate of `fpr_grid`.

    Cases and controls are resampled separately (stratified, as pROC's `ci.se`), with a fixed
    seed. At each grid point x the curve's value is the best sensitivity reachable with
    1 - specificity <= x; the band is the 2.5th and 97.5th percentile over resamples. It is a
    pointwise band, not a simultaneous one.
    """
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y_true == 1), np.flatnonzero(y_true == 0)
    labels = np.r_[np.ones(len(pos), dtype=int), np.zeros(len(neg), dtype=int)]
    curves = np.empty((resamples, len(fpr_grid)))
    for b in range(resamples):
        idx = np.r_[rng.choice(pos, len(pos)), rng.choice(neg, len(neg))]
        fpr, tpr, _ = roc_curve(labels, y_score[idx])
        curves[b] = tpr[np.searchsorted(fpr, fpr_grid, side="right") - 1]
    low, high = np.percentile(curves, [2.5, 97.5], axis=0)
    return low, high


def _draw_roc(
    ax: Any,
    curves: Mapping[str, tuple[ArrayLike, ArrayLike]],
    linewidth: float,
    band: bool,
    title: str,
) -> None:
    """Draw the ROC curves of several arms on one axes, DeLong AUC and CI in the legend."""
    from mskdx.evaluate.stats.delong import delong_auc

    grid = np.linspace(0.0, 1.0, 201)
    handles = ax.plot([0, 1], [0, 1], linestyle="--", color="0.6", linewidth=1, label="Chance")
    for i, (arm, (y_true, y_score)) in enumerate(curves.items()):
        y_true = np.asarray(y_true).astype(int)
        y_score = np.asarray(y_score, dtype=float)
        if y_true.shape != y_score.shape or set(np.unique(y_true)) != {0, 1}:
            raise ValueError(
                f"ROC arm {arm!r}: y_true {y_true.shape} and y_score {y_score.shape}; "
                "expected equal lengths and both classes 0 and 1"
            )
        result = delong_auc(y_true, y_score)
        colour = f"C{i % 10}"
        fpr, tpr, _ = roc_curve(y_true, y_score)
        handles += ax.plot(
            fpr, tpr, color=colour, linewidth=linewidth, label=_roc_label(arm, result)
        )
        if band:
            low, high = roc_band(y_true, y_score, grid)
            ax.fill_between(grid, low, high, step="post", color=colour, alpha=0.15, linewidth=0)
    if band:
        handles.append(Patch(color="0.5", alpha=0.3, label="pointwise 95% bootstrap band"))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.005)
    ax.set_aspect("equal")
    ax.set_xlabel("1 − specificity (false-positive rate)")
    ax.set_ylabel("Sensitivity (true-positive rate)")
    ax.grid(alpha=0.3)
    ax.legend(handles=handles, loc="lower right", fontsize="small")
    ax.set_title(title)


def plot_roc(
    curves: Mapping[str, tuple[ArrayLike, ArrayLike]],
    title: str,
    outputs: Outputs,
    style: Mapping[str, Any] | None,
) -> None:
    """Overlay the ROC curves of several arms, with DeLong AUC and 95% CI in the legend.

    `curves` maps arm -> (y_true 0/1, y_score = P(positive)). AUC and CI come from
    `mskdx.evaluate.stats.delong.delong_auc` (DeLong et al. 1988); the curve points from
    `sklearn.metrics.roc_curve`. With `style.roc.ci_band` each curve gets the pointwise
    stratified bootstrap band of `roc_band` (fixed seed).
    """
    plot_roc_panels({title: curves}, outputs, style)


def plot_roc_panels(
    panels: Mapping[str, Mapping[str, tuple[ArrayLike, ArrayLike]]],
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
        arm: (part.label.to_numpy(), part.prob.to_numpy())
        for arm, part in test.groupby("arm", sort=False)
    }
    plot_roc(curves, title, outputs, style)
