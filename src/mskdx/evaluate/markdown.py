"""Result tables for people: one text cell per metric and GitHub Markdown, beside the CSV.

`compact_view` turns a table of the paper tables' column scheme (``m``, ``m_k``, ``m_n``,
``m_low``/``m_high``, ``paper_m``, ``p_m``; see `mskdx.evaluate.tables`) into one text cell per
metric ("83.3 (334/401) [81.2, 85.4]"); `to_markdown` renders any DataFrame as a GitHub table;
`write_table_pair` writes a result table as CSV and Markdown.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable

import numpy as np
import pandas as pd

from mskdx.io import write_table, write_text

#: Metrics stored in percent; all other metrics are on the 0-1 scale.
PERCENT_METRICS = ("acc", "sen", "spe", "accuracy")

PathLike = str | os.PathLike


def _fmt(x: object, digits: int) -> str:
    if x is None or x is pd.NA:
        return ""
    if isinstance(x, float | np.floating):
        if math.isnan(x):
            return ""
        text = f"{x:.{digits}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    if isinstance(x, np.integer):
        return str(int(x))
    if isinstance(x, np.bool_):
        return str(bool(x))
    return str(x)


def _fmt_p(p: float) -> str:
    if p is None or p is pd.NA or (isinstance(p, float) and math.isnan(p)):
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def compact_view(table: pd.DataFrame) -> pd.DataFrame:
    """Merge each metric's value, count and CI columns into one text cell for display.

    ``acc`` + ``acc_k``/``acc_n`` + ``acc_low``/``acc_high`` -> "83.3 (334/401) [81.2, 85.4]"
    (percent metrics with 1 decimal, others with 3); ``acc_low_independent`` +
    ``acc_high_independent`` -> a cell "acc independent", "[80.1, 86.2]"; ``p_*`` columns as
    "0.032" / "<0.001";
    discordant counts and z are dropped. Other columns are kept as they are.
    """
    out = pd.DataFrame(index=table.index)
    used: set[str] = set()
    columns = list(table.columns)
    drop = {c for c in columns if re.fullmatch(r"[bc]_(acc|sen|spe)|z_auc", c)}
    for column in columns:
        if column in used or column in drop:
            continue
        base = column
        parts = [f"{base}_k", f"{base}_n", f"{base}_low", f"{base}_high"]
        independent = re.fullmatch(r"(\w+)_low_independent", column)
        if independent and f"{independent[1]}_high_independent" in table.columns:
            metric = independent[1].removeprefix("paper_")
            digits = 1 if metric in PERCENT_METRICS else 3
            high = table[f"{independent[1]}_high_independent"]
            out[f"{independent[1]} independent"] = [
                "" if pd.isna(lo) else f"[{lo:.{digits}f}, {hi:.{digits}f}]"
                for lo, hi in zip(table[column], high, strict=True)
            ]
            used.update({column, f"{independent[1]}_high_independent"})
            continue
        if any(p in table.columns for p in parts[2:]):
            metric = base.removeprefix("paper_")
            digits = 1 if metric in PERCENT_METRICS else 3
            cells = []
            for _, row in table.iterrows():
                value = row[base]
                if (
                    value is None
                    or value is pd.NA
                    or (isinstance(value, float) and math.isnan(value))
                ):
                    cells.append("")
                    continue
                text = f"{value:.{digits}f}"
                if f"{base}_k" in table.columns and not pd.isna(row[f"{base}_k"]):
                    text += f" ({int(row[f'{base}_k'])}/{int(row[f'{base}_n'])})"
                low, high = row.get(f"{base}_low"), row.get(f"{base}_high")
                if low is not None and not pd.isna(low):
                    text += f" [{low:.{digits}f}, {high:.{digits}f}]"
                cells.append(text)
            out[base] = cells
            used.update(p for p in parts if p in table.columns)
        elif re.fullmatch(r"(paper_)?p_\w+", column):
            out[column] = [_fmt_p(v) for v in table[column]]
        else:
            out[column] = table[column]
        used.add(column)
    return out


def to_markdown(df: pd.DataFrame, title: str = "", digits: int = 3, compact: bool = True) -> str:
    """Render `df` as a GitHub Markdown table, after `compact_view` unless `compact` is False.

    Floats get `digits` decimals, NaN/NA are blank, "|" in cells is escaped and line breaks
    become spaces. A small renderer, so that the pipeline does not depend on ``tabulate``.
    """
    if compact:
        df = compact_view(df)

    def clean(value: object) -> str:
        return _fmt(value, digits).replace("|", "\\|").replace("\n", " ")

    header = [clean(c) for c in df.columns]
    lines = [f"### {title}", ""] if title else []
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" for _ in header) + "|")
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(clean(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def write_table_pair(
    df: pd.DataFrame,
    csv: PathLike,
    md: PathLike,
    title: str,
    *,
    view: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    notes: str = "",
) -> None:
    """Write a result table as CSV (machine-readable, every column) and Markdown (for people:
    `view` of it, e.g. without detail columns, and `notes` under the table)."""
    write_table(df, csv)
    text = to_markdown(view(df) if view else df, title)
    write_text(md, text + (f"\n{notes.rstrip()}\n" if notes else ""))
