"""The papers' figures: training curves, confusion matrices, ROC, thresholds, montages, Grad-CAM.

Each `plot_*` function draws one figure and writes it to every path in `outputs`; the format
follows the suffix (.png, .pdf, .svg). Files are written atomically (`mskdx.io.atomic_path`).
`style` is the config's `figures` section: `dpi`, `roc.linewidth`, `roc.ci_band`,
`montage.images`, `montage.columns` (missing keys take the defaults of `config/config.yaml`).

Figures are built as `matplotlib.figure.Figure` objects, never registered with pyplot: no backend
is selected, no global figure stays open, and nothing needs closing. Drawing and saving run under
matplotlib's default style (a user's matplotlibrc does not leak in), with a fixed `svg.hashsalt`
and without creation dates, so identical input gives byte-identical PNG, PDF and SVG files for a
given matplotlib version and font set (`tests/unit/test_figures.py` checks this).

Only pseudonymous image ids (`I-` + 12 hex digits, `mskdx.ingest.deid`) may appear in captions; the
montage functions refuse anything else.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.style
import numpy as np
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from numpy.typing import ArrayLike, NDArray
from sklearn.metrics import confusion_matrix, roc_curve

from mskdx.io import atomic_path, read_predictions, read_table

log = logging.getLogger(__name__)
PathLike = str | os.PathLike

FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}
# Drop the creation dates; the remaining metadata (matplotlib version) is constant.
_METADATA: dict[str, dict[str, Any]] = {
    "png": {},
    "pdf": {"CreationDate": None},
    "svg": {"Date": None},
}
_RC = {
    "svg.hashsalt": "mskdx",
    "pdf.fonttype": 42,  # TrueType: text stays text in the PDF
    "savefig.facecolor": "white",
}
DEFAULT_STYLE: dict[str, Any] = {
    "dpi": 150,
    "roc": {"linewidth": 1.5, "ci_band": False},
    "montage": {"images": 16, "columns": 4},
}
TRAIN_COLOUR = "#1f77b4"  # blue, like the OLT paper's Figures 1-2
VAL_COLOUR = "#ff7f0e"  # orange
CORRECT_COLOUR = (0, 170, 0)  # montage frames (OLT paper Figure 5)
WRONG_COLOUR = (220, 0, 0)
TILE_INCHES = 2.2  # width of one montage tile
ROC_BAND_RESAMPLES = 1000
ROC_BAND_SEED = 0
IMAGE_ID = re.compile(r"^I-[0-9a-f]{12}$")


# -- shared plumbing --------------------------------------------------------------------------


def _style(style: Mapping[str, Any] | None, *keys: str) -> Any:
    """Look up `style[k1][k2]...`, falling back to `DEFAULT_STYLE`."""
    for source in (style or {}, DEFAULT_STYLE):
        value: Any = source
        for key in keys:
            if not isinstance(value, Mapping) or key not in value:
                break
            value = value[key]
        else:
            return value
    raise KeyError(f"figures style has no {'.'.join(keys)}")


def _paths(outputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Check the output paths before drawing: at least one, each .png, .pdf or .svg."""
    if isinstance(outputs, (str, os.PathLike)):
        outputs = [outputs]
    paths = [Path(p) for p in outputs]
    if not paths:
        raise ValueError("no output path given; expected at least one .png, .pdf or .svg")
    for path in paths:
        if path.suffix.lower() not in FORMATS:
            raise ValueError(f"{path}: unknown figure format; expected one of {sorted(FORMATS)}")
    return paths


@contextlib.contextmanager
def _rc() -> Iterator[None]:
    """Matplotlib's default style plus our fixed settings, for drawing and saving."""
    with mpl.style.context("default"), mpl.rc_context(_RC):
        yield


def _save(fig: Figure, paths: Sequence[Path], dpi: int) -> None:
    for path in paths:
        fmt = FORMATS[path.suffix.lower()]
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=_METADATA[fmt])
        log.info("wrote %s", path)


def _check_ids(image_ids: Sequence[str], n: int) -> list[str]:
    ids = [str(i) for i in image_ids]
    if len(ids) != n:
        raise ValueError(f"{len(ids)} image ids for {n} images; expected one per image")
    bad = [k for k, i in enumerate(ids) if not IMAGE_ID.match(i)]
    if bad:
        # The value itself is not echoed: it may be the PHI the check keeps out of the logs.
        raise ValueError(
            f"image id at position {bad[0]} ({len(bad)} in all) is not a pseudonym; "
            "captions show only ids 'I-' + 12 hex digits"
        )
    return ids


def _check_images(images: ArrayLike) -> NDArray[np.uint8]:
    array = np.asarray(images)
    if array.ndim != 3 or array.dtype != np.uint8:
        raise ValueError(f"images have shape {array.shape} {array.dtype}; expected (N, H, W) uint8")
    return array


def _check_table(df: pd.DataFrame, needed: list[str], lacks: str, empty: str) -> None:
    """Raise unless `df` has the `needed` columns ("<lacks> [...]; expected [...]") and rows."""
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ValueError(f"{lacks} {missing}; expected {needed}")
    if df.empty:
        raise ValueError(empty)


def _grid(n: int, style: Mapping[str, Any] | None) -> tuple[int, int]:
    columns = max(1, min(int(_style(style, "montage", "columns")), n))
    return math.ceil(n / columns), columns


def _hide_axes(ax: Any) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


# -- training curves (OLT Figures 1-2) --------------------------------------------------------


def plot_training_curves(
    history: pd.DataFrame,
    title: str,
    outputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    style: Mapping[str, Any] | None,
) -> None:
    """Plot loss and accuracy per epoch, training (blue) vs validation (orange).

    `history` follows the `history` schema. With a `fold` column holding several folds, each fold
    is drawn as a thin line in the same colours. Missing validation values are left out.
    """
    paths = _paths(outputs)
    _check_table(
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
    dpi = int(_style(style, "dpi"))
    with _rc():
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
        _save(fig, paths, dpi)


# -- confusion matrices (gout Fig 4, OLT Figs 3a/4a) -------------------------------------------


def plot_confusion(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    class_names: Sequence[str],
    title: str,
    outputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    style: Mapping[str, Any] | None,
) -> None:
    """Plot the confusion matrix as counts and row-normalised (share of each true class).

    Labels are class indices into `class_names` (0 = negative, 1 = positive). Rows are the true
    class, columns the prediction; a true class without cases shows a dash.
    """
    paths = _paths(outputs)
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
    dpi = int(_style(style, "dpi"))
    with _rc():
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
        _save(fig, paths, dpi)


# -- ROC curves (OLT Figs 3b/4b; gout AUCs of Table I) ------------------------------------------


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
    outputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
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
    outputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    style: Mapping[str, Any] | None,
) -> None:
    """ROC curves side by side, one panel per title (e.g. development vs an external cohort)."""
    paths = _paths(outputs)
    if not panels or not all(panels.values()):
        raise ValueError("no ROC curves given; expected arm -> (y_true, y_score) per panel")
    linewidth = float(_style(style, "roc", "linewidth"))
    band = bool(_style(style, "roc", "ci_band"))
    dpi = int(_style(style, "dpi"))
    with _rc():
        fig = Figure(figsize=(5.8 * len(panels), 5.8), layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, len(panels)))
        for ax, (title, curves) in zip(axes, panels.items(), strict=True):
            _draw_roc(ax, curves, linewidth, band, title)
        _save(fig, paths, dpi)


# -- patient-level threshold search (gout supplementary Fig S1) ---------------------------------


def plot_threshold_curve(
    curves: pd.DataFrame,
    chosen: Mapping[int, float],
    title: str,
    outputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    style: Mapping[str, Any] | None,
) -> None:
    """Plot patient-level training accuracy against the threshold per fold, marking the chosen.

    `curves` has columns fold, threshold (share of a patient's images called abnormal, 0..1 in
    steps of 0.02) and train_accuracy; `chosen` maps fold -> the threshold selected on its
    training patients (marked with a dot and a dotted vertical line).
    """
    paths = _paths(outputs)
    _check_table(
        curves,
        ["fold", "threshold", "train_accuracy"],
        "threshold curves lack columns",
        "threshold curves have no rows; expected fold x threshold",
    )
    folds = sorted(int(f) for f in curves["fold"].unique())
    unknown = sorted(set(int(f) for f in chosen) - set(folds))
    if unknown:
        raise ValueError(f"chosen thresholds for folds {unknown} that have no curve; have {folds}")
    dpi = int(_style(style, "dpi"))
    with _rc():
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
        _save(fig, paths, dpi)


# -- montages ------------------------------------------------------------------------------------


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
    outputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
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
    paths = _paths(outputs)
    images = _check_images(images)
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
    ids = _check_ids(image_ids, n)
    shown = min(n, int(_style(style, "montage", "images")))
    if shown < n:
        log.info("montage shows the first %d of %d images", shown, n)
    rows, columns = _grid(shown, style)
    height, width = images.shape[1:]
    dpi = int(_style(style, "dpi"))
    with _rc():
        tile_h = TILE_INCHES * height / width
        fig = Figure(
            figsize=(columns * TILE_INCHES, rows * (tile_h + 0.75) + (0.4 if title else 0)),
            layout="constrained",
        )
        axes = fig.subplots(rows, columns, squeeze=False).ravel()
        for i, ax in enumerate(axes):
            _hide_axes(ax)
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
        _save(fig, paths, dpi)


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
    outputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
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
    paths = _paths(outputs)
    images = _check_images(images)
    n = len(images)
    if len(series) != n:
        raise ValueError(f"{len(series)} series for {n} images; expected one per image")
    if n == 0:
        raise ValueError("no images for the crop QC; expected at least one")
    ids = _check_ids(image_ids, n)
    columns = max(1, int(_style(style, "montage", "columns")))
    marks = [str(f) if isinstance(f, str) and f else "" for f in (flags or [""] * n)]
    if len(marks) != n:
        raise ValueError(f"{len(marks)} flags for {n} images; expected one per image")
    chosen = select_qc(series, columns, seed)
    for view, members in chosen.items():  # flagged crops first: they must be seen
        flagged = [i for i in range(n) if marks[i] and str(series[i]) == view][:columns]
        chosen[view] = (flagged + [i for i in members if i not in flagged])[:columns]
    counts = pd.Series([str(s) for s in series]).value_counts()
    height, width = images.shape[1:]
    dpi = int(_style(style, "dpi"))
    with _rc():
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
                _hide_axes(ax)
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
        _save(fig, paths, dpi)


# -- Grad-CAM --------------------------------------------------------------------------------------


def plot_localisation(
    scores: pd.DataFrame,
    outputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    style: Mapping[str, Any] | None,
    *,
    title: str | None = None,
) -> None:
    """Plot Grad-CAM localisation per arm: energy inside the lesion and pointing-game hit rate.

    `scores` are `mskdx.learn.gradcam.localisation_scores` rows with an `arm` column (one group
    "all" without it). Left: box plot and points (seeded jitter) of `energy_inside`, with the chance
    level (mean lesion area share) as a black dash. Right: pointing-game hit rate with Wilson 95%
    intervals. Empty scores (no lesion masks) give a figure that says localisation was not scored,
    so the workflow's output exists.
    """
    from mskdx.learn.gradcam import summarise_localisation

    paths = _paths(outputs)
    dpi = int(_style(style, "dpi"))
    summary = summarise_localisation(scores, by="arm")
    with _rc():
        if summary.empty:
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
            _save(fig, paths, dpi)
            return
        arms = summary["arm"].astype(str).tolist()
        if "arm" not in scores.columns:
            scores = scores.assign(arm="all")
        fig = Figure(figsize=(max(8, 2.2 * len(arms) + 4), 4.4), layout="constrained")
        ax_energy, ax_hits = fig.subplots(1, 2)
        rng = np.random.default_rng(0)
        positions = np.arange(len(arms))
        energies = []
        for arm in arms:
            values = scores.loc[scores["arm"].astype(str) == arm, "energy_inside"]
            energies.append(values.to_numpy(float)[np.isfinite(values.to_numpy(float))])
        ax_energy.boxplot(
            [e if len(e) else [np.nan] for e in energies],
            positions=positions,
            widths=0.5,
            showfliers=False,
        )
        for x, values in zip(positions, energies, strict=True):
            jitter = rng.uniform(-0.15, 0.15, size=len(values))
            ax_energy.scatter(x + jitter, values, s=10, alpha=0.5, color="C0", zorder=3)
        chance = summary["mask_fraction_mean"].to_numpy(float)
        ax_energy.scatter(
            positions,
            chance,
            marker="_",
            s=600,
            color="black",
            zorder=4,
            label="chance (mean lesion area share)",
        )
        ax_energy.set_xticks(
            positions, [f"{a}\nn = {len(e)}" for a, e in zip(arms, energies, strict=True)]
        )
        ax_energy.set_ylim(0, 1.02)
        ax_energy.set_ylabel("Grad-CAM energy inside lesion mask")
        ax_energy.set_title("Energy inside the lesion")
        ax_energy.legend(loc="upper right", fontsize="small")

        rate = summary["pointing_hit_rate"].to_numpy(float)
        err = np.vstack(
            [
                rate - summary["pointing_ci_low"].to_numpy(float),
                summary["pointing_ci_high"].to_numpy(float) - rate,
            ]
        )
        ax_hits.bar(positions, rate, width=0.6, color="C1", yerr=err, capsize=4)
        ax_hits.scatter(
            positions,
            summary["pointing_chance_mean"].to_numpy(float),
            marker="_",
            s=600,
            color="black",
            zorder=4,
            label="chance (random maximum)",
        )
        ax_hits.legend(loc="upper right", fontsize="small")
        hit_labels = [
            f"{a}\n{h}/{k} hits"
            for a, h, k in zip(arms, summary["pointing_hits"], summary["n"], strict=True)
        ]
        ax_hits.set_xticks(positions, hit_labels)
        ax_hits.set_ylim(0, 1.05)
        ax_hits.set_ylabel("Pointing-game hit rate (95% Wilson CI)")
        tolerance = summary["tolerance_px"].max()
        ax_hits.set_title(
            f"CAM maximum within {tolerance:g} px of the lesion"
            if tolerance > 0
            else "CAM maximum inside the lesion"
        )
        for ax in (ax_energy, ax_hits):
            ax.grid(axis="y", alpha=0.3)
        fig.suptitle(title or "Grad-CAM localisation against lesion masks")
        _save(fig, paths, dpi)


def plot_gradcam_grid(
    images: ArrayLike,
    cams: ArrayLike,
    masks_or_None: ArrayLike | Sequence[ArrayLike | None] | None,
    captions: Sequence[str],
    outputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
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
    paths = _paths(outputs)
    images = _check_images(images)
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
    rows, columns = _grid(n, style)
    height, width = images.shape[1:]
    dpi = int(_style(style, "dpi"))
    with _rc():
        tile_h = TILE_INCHES * height / width
        fig = Figure(
            figsize=(columns * TILE_INCHES + 0.8, rows * (tile_h + 0.45) + (0.4 if title else 0)),
            layout="constrained",
        )
        axes = fig.subplots(rows, columns, squeeze=False).ravel()
        for i, ax in enumerate(axes):
            _hide_axes(ax)
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
        _save(fig, paths, dpi)


# -- calibration and decision curves (beyond the papers) ----------------------------------------


def plot_calibration(
    bins: pd.DataFrame,
    smooth: Mapping[str, tuple[ArrayLike, ArrayLike]],
    title: str,
    outputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    style: Mapping[str, Any] | None,
) -> None:
    """Reliability diagram: observed vs predicted per bin (Wilson 95% CIs) and a LOWESS curve.

    `bins` has columns cohort, predicted, observed, observed_low, observed_high, n (one row per
    non-empty bin, `mskdx.evaluate.stats.calibration.reliability_bins`); `smooth` maps a cohort to
    its LOWESS curve (sorted probabilities, smoothed event rate). Marker area follows the bin count.
    """
    paths = _paths(outputs)
    _check_table(
        bins,
        ["cohort", "predicted", "observed", "observed_low", "observed_high", "n"],
        "reliability bins lack columns",
        "reliability bins have no rows; expected at least one non-empty bin",
    )
    dpi = int(_style(style, "dpi"))
    with _rc():
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
        _save(fig, paths, dpi)


def plot_decision_curve(
    curves: pd.DataFrame,
    title: str,
    outputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    style: Mapping[str, Any] | None,
) -> None:
    """Net benefit against threshold probability for each arm, with treat-all and treat-none.

    `curves` has columns cohort, arm, threshold, net_benefit, treat_all
    (`mskdx.evaluate.clinical.decision_curve_table`); one panel per cohort.
    """
    paths = _paths(outputs)
    _check_table(
        curves,
        ["cohort", "arm", "threshold", "net_benefit", "treat_all"],
        "decision curves lack columns",
        "decision curves have no rows",
    )
    cohorts = list(dict.fromkeys(curves["cohort"]))
    dpi = int(_style(style, "dpi"))
    with _rc():
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
        _save(fig, paths, dpi)


# ---------------------------------------------------------------------------------------------
# What the figure rules call: read the jobs' tables and arrays, then plot
# ---------------------------------------------------------------------------------------------


def read_test_subset(paths: Sequence[PathLike]) -> pd.DataFrame:
    """The test-subset rows of prediction tables (each image once over the folds)."""
    preds = read_predictions(paths)
    return preds[preds.subset == "test"].reset_index(drop=True)


def plot_training_curves_step(history: PathLike, *, title: str, outputs: list, style: dict) -> None:
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
    test = read_test_subset(predictions)
    pred = (test.prob > image_threshold).astype(int)  # as argmax: positive above
    plot_confusion(test.label.to_numpy(), pred.to_numpy(), class_names, title, outputs, style)


def plot_roc_step(
    predictions: Sequence[PathLike], *, title: str, outputs: list, style: dict
) -> None:
    test = read_test_subset(predictions)
    curves = {
        arm: (part.label.to_numpy(), part.prob.to_numpy())
        for arm, part in test.groupby("arm", sort=False)
    }
    plot_roc(curves, title, outputs, style)


def plot_threshold_step(curves: PathLike, *, title: str, outputs: list, style: dict) -> None:
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
