"""The patient-level threshold search: training accuracy against the threshold per fold
(gout supplementary Fig S1)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mskdx.evaluate.figures.common import (
    Outputs,
    PathLike,
    check_table,
    fixed_style,
    output_paths,
    save_figure,
    style_value,
)
from mskdx.io import read_table

log = logging.getLogger(__name__)


def plot_threshold_curve(
    curves: pd.DataFrame,
    chosen: Mapping[int, float],
    title: str,
    outputs: Outputs,
    style: Mapping[str, Any] | None,
) -> None:
    """Plot patient-level training accuracy against the threshold per fold, marking the chosen.

    `curves` has columns fold, threshold (share of a patient's images called abnormal, 0..1 in
    steps of 0.02) and train_accuracy; `chosen` maps fold -> the threshold selected on its
    training patients (marked with a dot and a dotted vertical line).
    """
    paths = output_paths(outputs)
    check_table(
        curves,
        ["fold", "threshold", "train_accuracy"],
        "threshold curves lack columns",
        "threshold curves have no rows; expected fold x threshold",
    )
    folds = sorted(int(f) for f in curves["fold"].unique())
    unknown = sorted(set(int(f) for f in chosen) - set(folds))
    if unknown:
        raise ValueError(f"chosen thresholds for folds {unknown} that have no curve; have {folds}")
    dpi = int(style_value(style, "dpi"))
    with fixed_style():
        fig = Figure(figsize=(7, 4.8), layout="constrained")
        ax = fig.subplots()
        for i, fold in enumerate(folds):
            part = curves[curves["fold"] == fold].sort_values("threshold")
            x = part["threshold"].to_numpy(float)
            y = part["train_accuracy"].to_numpy(float)
            colour = f"C{i % 10}"
            if fold in chosen:
                t = float(chosen[fold])
                acc = float(y[np.argmin(np.abs(x - t))])
                label = f"fold {fold}: threshold {t:.2f} (accuracy {acc:.1%})"
            else:
                log.warning("no chosen threshold for fold %d; drawn without a marker", fold)
                label = f"fold {fold}"
            ax.plot(x, y, color=colour, linewidth=1.3, label=label)
            if fold in chosen:
                ax.axvline(t, color=colour, linestyle=":", linewidth=1)
                ax.plot([t], [acc], marker="o", color=colour, markersize=6, zorder=3)
        legend_title = None
        if chosen:
            legend_title = f"mean threshold {np.mean([float(v) for v in chosen.values()]):.2f}"
        ax.set_xlim(0, 1)
        ax.set_ylim(top=1.01)
        ax.set_xlabel("Threshold (share of a patient's images called abnormal)")
        ax.set_ylabel("Patient-level accuracy (training set)")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small", title=legend_title)
        ax.set_title(title)
        save_figure(fig, paths, dpi)


def plot_threshold_step(curves: PathLike, *, title: str, outputs: list, style: dict) -> None:
    table = read_table(curves)
    chosen = {
        int(fold): float(part.loc[part.chosen.astype(bool), "threshold"].iloc[0])
        for fold, part in table.groupby("fold")
    }
    plot_threshold_curve(table, chosen, title, outputs, style)
