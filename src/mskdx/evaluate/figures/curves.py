"""Training curves: loss and accuracy per epoch, training vs validation (OLT Figures 1-2)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

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

TRAIN_COLOUR = "#1f77b4"  # blue, like the OLT paper's Figures 1-2
VAL_COLOUR = "#ff7f0e"  # orange


def plot_training_curves(
    history: pd.DataFrame,
    title: str,
    outputs: Outputs,
    style: Mapping[str, Any] | None,
) -> None:
    """Plot loss and accuracy per epoch, training (blue) vs validation (orange).

    `history` follows the `history` schema. With a `fold` column holding several folds, each fold
    is drawn as a thin line in the same colours. Missing validation values are left out.
    """
    paths = output_paths(outputs)
    check_table(
        history,
        ["epoch", "train_loss", "train_acc", "val_loss", "val_acc"],
        "history lacks columns",
        "history has no rows; expected one per epoch",
    )
    if "fold" in history.columns and history["fold"].nunique() > 1:
        groups = [part for _, part in history.groupby("fold", sort=True)]
    else:
        groups = [history]
    thin = len(groups) > 1
    dpi = int(style_value(style, "dpi"))
    with fixed_style():
        fig = Figure(figsize=(10, 4), layout="constrained")
        ax_loss, ax_acc = fig.subplots(1, 2)
        for g, part in enumerate(groups):
            part = part.sort_values("epoch")
            epochs = part["epoch"].to_numpy(float)
            for metric, ax in (("loss", ax_loss), ("acc", ax_acc)):
                for subset, colour, name in (
                    ("train", TRAIN_COLOUR, "Training"),
                    ("val", VAL_COLOUR, "Validation"),
                ):
                    y = pd.to_numeric(part[f"{subset}_{metric}"], errors="coerce").to_numpy(float)
                    keep = np.isfinite(y)
                    if keep.any():
                        ax.plot(
                            epochs[keep],
                            y[keep],
                            color=colour,
                            linewidth=1.0 if thin else 1.5,
                            alpha=0.7 if thin else 1.0,
                            marker="o" if keep.sum() == 1 else None,  # one epoch: a point
                            label=name if g == 0 else "_nolegend_",
                        )
        last = float(history["epoch"].max())
        for ax in (ax_loss, ax_acc):
            ax.set_xlabel("Epoch")
            ax.set_xlim(0, max(last, 1))
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
            ax.legend(loc="best")
        ax_loss.set_ylabel("Cross-entropy loss")
        ax_loss.set_title("Loss")
        ax_loss.set_ylim(bottom=0)
        ax_acc.set_ylabel("Accuracy")
        ax_acc.set_title("Accuracy")
        ax_acc.set_ylim(0, 1.02)
        fig.suptitle(title)
        save_figure(fig, paths, dpi)


def plot_training_curves_step(history: PathLike, *, title: str, outputs: list, style: dict) -> None:
    plot_training_curves(read_table(history, "history"), title, outputs, style)
