"""Confusion matrices, counts and row-normalised (gout Fig 4, OLT Figs 3a/4a)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from numpy.typing import ArrayLike
from sklearn.metrics import confusion_matrix

from mskdx.evaluate.figures.common import (
    Outputs,
    PathLike,
    fixed_style,
    output_paths,
    read_test_subset,
    save_figure,
    style_value,
)


def plot_confusion(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    class_names: Sequence[str],
    title: str,
    outputs: Outputs,
    style: Mapping[str, Any] | None,
) -> None:
    """Plot the confusion matrix as counts and row-normalised (share of each true class).

    Labels are class indices into `class_names` (0 = negative, 1 = positive). Rows are the true
    class, columns the prediction; a true class without cases shows a dash.
    """
    paths = output_paths(outputs)
    y_true = np.asarray(y_true).astype(int)
    y_pred = np.asarray(y_pred).astype(int)
    k = len(class_names)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape}; expected equal 1-D")
    if y_true.size == 0:
        raise ValueError("no cases; expected at least one prediction")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.min() < 0 or y.max() >= k:
            raise ValueError(f"{name} has labels outside 0..{k - 1} ({list(class_names)})")
    counts = confusion_matrix(y_true, y_pred, labels=list(range(k)))
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.full(counts.shape, np.nan)
    np.divide(counts, totals, out=shares, where=totals > 0)
    accuracy = np.trace(counts) / counts.sum()
    dpi = int(style_value(style, "dpi"))
    with fixed_style():
        fig = Figure(figsize=(9.5, 4.2), layout="constrained")
        axes = fig.subplots(1, 2)
        panels = (
            (axes[0], counts.astype(float), max(float(counts.max()), 1.0), "Counts"),
            (axes[1], shares, 1.0, "Row-normalised (per true class)"),
        )
        for ax, data, vmax, label in panels:
            image = ax.imshow(np.nan_to_num(data), cmap="Blues", vmin=0, vmax=vmax)
            for (r, c), value in np.ndenumerate(data):
                if not np.isfinite(value):
                    text = "–"
                elif label == "Counts":
                    text = f"{int(value)}"
                else:
                    text = f"{value:.1%}"
                dark = np.isfinite(value) and value > vmax / 2
                ax.text(c, r, text, ha="center", va="center", color="white" if dark else "black")
            ax.set_xticks(range(k), class_names)
            ax.set_yticks(range(k), class_names)
            ax.set_xlabel("Predicted")
            ax.set_ylabel("True")
            ax.set_title(label)
            bar = fig.colorbar(image, ax=ax, shrink=0.8)
            if label == "Counts":
                bar.locator = MaxNLocator(integer=True)
                bar.update_ticks()
        fig.suptitle(f"{title}\nn = {counts.sum()}, accuracy {accuracy:.1%}")
        save_figure(fig, paths, dpi)


def plot_confusion_step(
    predictions: Sequence[PathLike],
    *,
    class_names: list[str],
    image_threshold: float,
    title: str,
    outputs: list,
    style: dict,
) -> None:
    test = read_test_subset(predictions)
    pred = (test.prob > image_threshold).astype(int)  # as argmax: positive above
    plot_confusion(test.label.to_numpy(), pred.to_numpy(), class_names, title, outputs, style)
