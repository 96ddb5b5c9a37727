"""Self-contained HTML pages for the Snakemake report: a CSV table as one sortable table, a
Markdown file (a model card) rendered.

Snakemake embeds a report() output whose type is text/html and shows it in the report's
viewer; a CSV or Markdown file is only a download link. Each page is self-contained (its style
and the few lines of sorting script inline, nothing fetched) and deterministic (the same input
gives the same bytes), so the pages are byte-reproducible outputs of the crate. This module
needs only pandas and markdown: the table rules that write a page beside their CSV do not
depend on the crate's code.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mskdx.io import write_text

log = logging.getLogger(__name__)

_STYLE = """body{font-family:system-ui,sans-serif;font-size:14px;margin:1em}
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:3px 7px}
th{background:#f2f2f2;cursor:pointer;position:sticky;top:0}td.n{text-align:right}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
caption{text-align:left;padding:4px 0;color:#444}"""
# Click a header to sort by its column (numbers as numbers, empty cells last); again to reverse.
_SCRIPT = """document.querySelectorAll("table.sortable").forEach(function(t){
t.querySelectorAll("th").forEach(function(th,i){th.addEventListener("click",function(){
var asc=th.getAttribute("aria-sort")!=="ascending",b=t.tBodies[0],rows=Array.from(b.rows);
t.querySelectorAll("th").forEach(function(h){h.removeAttribute("aria-sort")});
th.setAttribute("aria-sort",asc?"ascending":"descending");
function key(r){var s=r.cells[i].textContent.trim(),n=parseFloat(s);
return s===""?null:(isNaN(n)||!/^[-+]?[0-9.]/.test(s))?s:n}
rows.sort(function(x,y){var a=key(x),c=key(y);if(a===null)return 1;if(c===null)return -1;
if(typeof a!==typeof c){a=String(a);c=String(c)}return (a<c?-1:a>c?1:0)*(asc?1:-1)});
rows.forEach(function(r){b.appendChild(r)})})})});"""


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>\n"
        f"<body>\n{body}\n<script>{_SCRIPT}</script>\n</body></html>\n"
    )


def table_html(
    df: pd.DataFrame, *, title: str, caption: str = "", numeric: Sequence[bool] | None = None
) -> str:
    """A self-contained HTML page with `df` as one sortable table; `numeric` columns (default:
    numeric dtypes) are right-aligned."""
    if numeric is None:
        numeric = [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns]
    head = "".join(f'<th scope="col">{html.escape(str(c))}</th>' for c in df.columns)
    rows = []
    for values in df.itertuples(index=False, name=None):
        cells = "".join(
            f'<td class="n">{_cell(v)}</td>' if num else f"<td>{_cell(v)}</td>"
            for v, num in zip(values, numeric, strict=True)
        )
        rows.append(f"<tr>{cells}</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    body = (
        f'<h3>{html.escape(title)}</h3>\n<table class="sortable">{cap}<thead><tr>{head}</tr>'
        "</thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody></table>"
    )
    return _page(title, body)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return html.escape(str(value))


def write_table_html(
    csv_path: str | os.PathLike[str],
    html_path: str | os.PathLike[str],
    *,
    title: str,
    caption: str = "",
) -> None:
    """Render a CSV table (as mskdx.io.write_table writes it) to a sortable HTML page; cells as
    the CSV spells them, columns of numbers right-aligned and sorted as numbers."""
    df = pd.read_csv(csv_path, keep_default_na=False, na_values=[""], dtype=str)
    numeric = []
    for column in df.columns:
        filled = df[column].dropna()
        parsed = pd.to_numeric(filled, errors="coerce")
        numeric.append(bool(len(filled)) and bool(parsed.notna().all()))
    write_text(html_path, table_html(df, title=title, caption=caption, numeric=numeric))
    log.info("wrote %s (%d rows)", html_path, len(df))


def write_markdown_html(
    md_path: str | os.PathLike[str], html_path: str | os.PathLike[str], *, title: str
) -> None:
    """Render a Markdown file (a model card) to a self-contained HTML page; its tables sortable."""
    import markdown

    body = markdown.markdown(
        Path(md_path).read_text(encoding="utf-8"), extensions=["tables", "sane_lists"]
    )
    body = body.replace("<table>", '<table class="sortable">')
    write_text(html_path, _page(title, body))
    log.info("wrote %s", html_path)


# ---- a rule's outputs: the tables and the pages written beside them -----------------------------

#: a rule's output named `page` is the page of its output `csv`; `<x>_page` that of `<x>_csv`
PAGE_KEY = "page"


def _csv_key(page_key: str) -> str:
    return page_key[: -len(PAGE_KEY)] + "csv"


def without_pages(outputs: Mapping[str, Any]) -> dict[str, str]:
    """A rule's named outputs less its pages: what the table writer itself takes."""
    return {k: str(v) for k, v in outputs.items() if not k.endswith(PAGE_KEY)}


def write_table_pages(outputs: Mapping[str, Any], titles: Mapping[str, str]) -> None:
    """Write each page output (`page`, `<x>_page`) from its CSV (`csv`, `<x>_csv`), titled
    `titles[<page key>]`."""
    outputs = dict(outputs.items())  # Snakemake's Namedlist iterates its values
    for key in [k for k in outputs if k.endswith(PAGE_KEY)]:
        csv = _csv_key(key)
        if csv not in outputs or key not in titles:
            raise KeyError(f"page output {key!r}: expected an output {csv!r} and a title")
        write_table_html(outputs[csv], outputs[key], title=titles[key])
