"""Calibration and decision curves (beyond the papers): the reliability diagram and net benefit
against threshold probability. Their rule steps are in `mskdx.evaluate.clinical`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from mskdx.evaluate.figures.common import (
    Outputs,
    check_table,
    fixed_style,
    output_paths,
    save_figure,
    style_value,
)


def plot_calibration(
    bins: pd.DataFrame,
    smooth: Mapping[str, tuple[ArrayLike, ArrayLike]],
    title: str,
    outputs: Outputs,
    style: Mapping[str, Any] | None,
) -> None:
    """Reliability diagram: observed vs predicted per bin (Wilson 95% CIs) and a LOWESS curve.

    `bins` has columns cohort, predicted, observed, observed_low, observed_high, n (one row per
    non-empty bin, `mskdx.evaluate.stats.calibration.reliability_bins`); `smooth` maps a cohort to
    its LOWESS curve (sorted probabilities, smoothed event rate). Marker area follows the bin count.
    """
    paths = output_paths(outputs)
    check_table(
        bins,
        ["cohort", "predicted", "observed", "observed_low", "observed_high", "n"],
        "reliability bins lack columns",
        "reliability bins have no rows; expected at least one non-empty bin",
    )
    dpi = int(style_value(style, "dpi"))
    with fixed_style():
        fig = Figure(figsize=(5.8, 5.8), layout="constrained")
        ax = fig.subplots()
        ax.plot([0, 1], [0, 1], linestyle="--", color="0.6", linewidth=1, label="Ideal")
        for i, (cohort, part) in enumerate(bins.groupby("cohort", sort=False)):
            colour = f"C{i % 10}"
            x = part["predicted"].to_numpy(float)
            y = part["observed"].to_numpy(float)
            err = np.vstack([y - part["observed_low"], part["observed_high"] - y])
            ax.errorbar(
                x, y, yerr=err, fmt="none", ecolor=colour, elinewidth=1, capsize=2, alpha=0.8
            )
            sizes = 12 + 60 * part["n"].to_numpy(float) / max(1.0, float(bins["n"].max()))
            ax.scatter(x, y, s=sizes, color=colour, label=f"{cohort}: bins (95% CI)", zorder=3)
            if cohort in smooth:
                sx, sy = (np.asarray(v, dtype=float) for v in smooth[cohort])
                ax.plot(sx, sy, color=colour, linewidth=1.5, label=f"{cohort}: LOWESS")
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.02, 1.02)
        ax.set_aspect("equal")
        ax.set_xlabel("Predicted probability")
        ax.set_ylabel("Observed proportion positive")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize="small")
        ax.set_title(title)
        save_figure(fig, paths, dpi)


def plot_decision_curve(
    curves: pd.DataFrame,
    title: str,
    outputs: Outputs,
    style: Mapping[str, Any] | None,
) -> None:
    """Net benefit against threshold probability for each arm, with treat-all and treat-none.

    `curves` has columns cohort, arm, threshold, net_benefit, treat_all
    (`mskdx.evaluate.clinical.decision_curve_table`); one panel per cohort.
    """
    paths = output_paths(outputs)
    check_table(
        curves,
        ["cohort", "arm", "threshold", "net_benefit", "treat_all"],
        "decision curves lack columns",
        "decision curves have no rows",
    )
    cohorts = list(dict.fromkeys(curves["cohort"]))
    dpi = int(style_value(style, "dpi"))
    with fixed_style():
        fig = Figure(figsize=(6.2 * len(cohorts), 4.8), layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, len(cohorts), sharey=True))
        for ax, cohort in zip(axes, cohorts, strict=True):
            part = curves[curves["cohort"] == cohort]
            first = part[part["arm"] == part["arm"].iloc[0]].sort_values("threshold")
            treat_all_top = float(first["treat_all"].max())
            ax.plot(
                first["threshold"],
                first["treat_all"],
                color="0.35",
                linewidth=1.2,
                label="Treat all",
            )
            ax.axhline(0.0, color="0.6", linestyle="--", linewidth=1, label="Treat none")
            for i, (arm, curve) in enumerate(part.groupby("arm", sort=True)):
                curve = curve.sort_values("threshold")
                ax.plot(
                    curve["threshold"],
                    curve["net_benefit"],
                    color=f"C{i % 10}",
                    linewidth=1.5,
                    label=arm,
                )
            top = max(float(part["net_benefit"].max()), treat_all_top, 0.05)
            ax.set_ylim(-0.05 * top - 0.02, 1.1 * top)
            ax.set_xlim(float(part["threshold"].min()), float(part["threshold"].max()))
            ax.set_xlabel("Threshold probability")
            ax.set_title(f"{title}: {cohort}" if len(cohorts) > 1 else title)
            ax.grid(alpha=0.3)
            ax.legend(loc="upper right", fontsize="small")
        axes[0].set_ylabel("Net benefit")
        save_figure(fig, paths, dpi)
