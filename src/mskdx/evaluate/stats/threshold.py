"""Patient-level diagnosis from image-level calls: the abnormal-fraction threshold.

Xiao et al. (gout paper, Methods): for each training patient, the fraction of images called
abnormal is compared with a threshold t on the grid 0, 0.02, ..., 1; the threshold with the
highest training accuracy is kept. A patient is diagnosed with gout iff fraction > t ("If it
exceeds the threshold, diagnose it as GA; otherwise, diagnose it as non-gout").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["ThresholdSearch", "diagnose", "search_threshold", "threshold_grid"]


def threshold_grid(step: float = 0.02) -> NDArray[np.float64]:
    """Return the grid {0, step, 2 step, ...} <= 1, rounded to 10 decimals (0.02 -> 51 points).

    Rounding makes grid points the same doubles as the decimal literals (0.28 == 7 / 25).
    """
    if not 0.0 < float(step) <= 1.0:
        raise ValueError(f"step={step!r}: expected 0 < step <= 1")
    return np.round(np.arange(0.0, 1.0 + step / 2.0, step), 10)


def diagnose(fraction_abnormal: ArrayLike, threshold: float) -> NDArray[np.bool_]:
    """Return True (positive) where the fraction of abnormal images exceeds `threshold`."""
    return np.asarray(fraction_abnormal, dtype=np.float64) > threshold


@dataclass(frozen=True, eq=False)
class ThresholdSearch:
    """Result of `search_threshold`: the chosen threshold and the whole accuracy curve.

    `accuracies[i]` is the training accuracy at `grid[i]`; `correct` the number of training
    patients classified correctly at the chosen threshold, out of `n`.
    """

    threshold: float
    accuracy: float
    correct: int
    n: int
    grid: NDArray[np.float64]
    accuracies: NDArray[np.float64]
    #: why the chosen threshold carries less than it seems (one class, a flat curve), else ""
    note: str = ""


def search_threshold(
    fraction_abnormal: ArrayLike, is_patient: ArrayLike, step: float = 0.02
) -> ThresholdSearch:
    """Pick the threshold on the grid with the highest patient-level accuracy (Xiao et al.).

    Rule: diagnose positive iff fraction > threshold. Tie rule (several thresholds share the
    best accuracy): take the widest run of consecutive tied-best grid points, and its middle
    point (the lower of the two middle points when the run has an even length); if several runs
    are equally wide, the one with the smallest thresholds. Within a run every threshold gives
    the same diagnoses on the training patients, so the middle keeps the largest margin to the
    training fractions on both sides (the smallest would sit right above one of them).
    Degenerate training sets get a `note`: one class only (the threshold is chosen but learns
    nothing about the other class) and a flat accuracy curve (every threshold ties).

    Args:
        fraction_abnormal: per training patient, the share of images called abnormal (0..1).
        is_patient: per training patient, True/1 for the positive (gout) diagnosis.
        step: grid spacing (the paper: 0.02).
    """
    frac = np.asarray(fraction_abnormal, dtype=np.float64)
    truth = np.asarray(is_patient)
    if frac.ndim != 1 or truth.shape != frac.shape:
        raise ValueError(
            f"fraction_abnormal has shape {frac.shape} and is_patient {truth.shape}; "
            "expected equal 1-d arrays"
        )
    if frac.size == 0:
        raise ValueError("no patients to search a threshold on; expected at least one")
    if not (np.isfinite(frac).all() and (frac >= 0).all() and (frac <= 1).all()):
        raise ValueError("fraction_abnormal has values outside [0, 1] or NaN; expected shares")
    if truth.dtype != np.bool_:
        if not np.isin(truth, (0, 1)).all():
            raise ValueError("is_patient holds values other than 0/1 or False/True")
        truth = truth.astype(bool)
    grid = threshold_grid(step)
    correct = ((frac[np.newaxis, :] > grid[:, np.newaxis]) == truth[np.newaxis, :]).sum(axis=1)
    best = correct.max()
    # Runs of consecutive grid points at the best count: [start, stop) pairs.
    at_best = np.concatenate([[False], correct == best, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(at_best))
    starts, stops = edges[0::2], edges[1::2]
    widest = int(np.argmax(stops - starts))  # argmax: first of equally wide runs
    index = int(starts[widest] + (stops[widest] - starts[widest] - 1) // 2)
    note = ""
    if truth.all() or not truth.any():
        called = "positive" if truth.all() else "negative"
        note = (
            f"one class only among the training patients: the threshold calls them all {called} "
            "and says nothing about the other class"
        )
    elif stops[widest] - starts[widest] == grid.size:
        note = "every threshold gives the same training accuracy: the tie rule, not the data, chose"
    return ThresholdSearch(
        threshold=float(grid[index]),
        accuracy=float(best / frac.size),
        correct=int(best),
        n=int(frac.size),
        grid=grid,
        accuracies=correct / frac.size,
        note=note,
    )
