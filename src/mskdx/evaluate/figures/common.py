"""What every figure shares: the style lookup, the output paths, deterministic saving and the
checks of images, image ids and tables.

Drawing and saving run under `fixed_style()`: matplotlib's default style (a user's matplotlibrc
does not leak in) with a fixed `svg.hashsalt`; `save_figure` drops creation dates. So identical
input gives byte-identical PNG, PDF and SVG files for a given matplotlib version and font set.
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
from matplotlib.figure import Figure
from numpy.typing import ArrayLike, NDArray

from mskdx.io import atomic_path, read_predictions

log = logging.getLogger(__name__)
PathLike = str | os.PathLike
# One output path or several; the format follows each suffix
Outputs = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]

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
TILE_INCHES = 2.2  # width of one montage tile
IMAGE_ID = re.compile(r"^I-[0-9a-f]{12}$")


def style_value(style: Mapping[str, Any] | None, *keys: str) -> Any:
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


def output_paths(outputs: Outputs) -> list[Path]:
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
def fixed_style() -> Iterator[None]:
    """Matplotlib's default style plus our fixed settings, for drawing and saving."""
    with mpl.style.context("default"), mpl.rc_context(_RC):
        yield


def save_figure(fig: Figure, paths: Sequence[Path], dpi: int) -> None:
    """Write `fig` to every path, atomically, in the format of its suffix, without dates."""
    for path in paths:
        fmt = FORMATS[path.suffix.lower()]
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=_METADATA[fmt])
        log.info("wrote %s", path)


def check_ids(image_ids: Sequence[str], n: int) -> list[str]:
    """Return the `n` image ids as text; raise unless each is a pseudonym (`IMAGE_ID`)."""
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


def check_images(images: ArrayLike) -> NDArray[np.uint8]:
    """Return `images` as an array; raise unless it is (N, H, W) uint8."""
    array = np.asarray(images)
    if array.ndim != 3 or array.dtype != np.uint8:
        raise ValueError(f"images have shape {array.shape} {array.dtype}; expected (N, H, W) uint8")
    return array


def check_table(df: pd.DataFrame, needed: list[str], lacks: str, empty: str) -> None:
    """Raise unless `df` has the `needed` columns ("<lacks> [...]; expected [...]") and rows."""
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ValueError(f"{lacks} {missing}; expected {needed}")
    if df.empty:
        raise ValueError(empty)


def grid_shape(n: int, style: Mapping[str, Any] | None) -> tuple[int, int]:
    """Rows and columns for `n` tiles in `style.montage.columns` columns (fewer if `n` is less)."""
    columns = max(1, min(int(style_value(style, "montage", "columns")), n))
    return math.ceil(n / columns), columns


def hide_axes(ax: Any) -> None:
    """Remove the ticks and the frame of an image tile."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def read_test_subset(paths: Sequence[PathLike]) -> pd.DataFrame:
    """The test-subset rows of prediction tables (each image once over the folds)."""
    preds = read_predictions(paths)
    return preds[preds.subset == "test"].reset_index(drop=True)
