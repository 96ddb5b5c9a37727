"""What the Snakemake report shows inline: every table as a sortable HTML page, every model card
rendered, and a front page written from the run's own configuration.

Snakemake embeds a report() output whose type is text/html and shows it in the report's
viewer; a CSV or Markdown file is only a download link. Each page here is self-contained (its
style and the few lines of sorting script inline, nothing fetched) and deterministic (the same
input gives the same bytes), so the pages are byte-reproducible outputs of the crate.
"""

from __future__ import annotations

import html
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mskdx.io import write_text
from mskdx.provenance.crate import flatten_config, redact_config

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


# ---- the front page --------------------------------------------------------------------------

STUDY_TITLES = {
    "gout": "Gout on first-MTPJ ultrasound",
    "olt": "Osteochondral lesions of the talus on MRI",
}


def describe_arm(spec: Mapping[str, Any]) -> str:
    """One line for an arm of the configuration: what network, from which weights."""
    kind = spec.get("architecture")
    if kind == "resnet_blocks":
        text = (
            f"ResNet18-style CNN with {spec.get('blocks')} residual blocks, random initial weights"
        )
    elif kind == "resnet50":
        weights = spec.get("weights", "imagenet")
        text = "ResNet50 " + (
            "from ImageNet weights, fully fine-tuned"
            if weights == "imagenet"
            else "from random initial weights"
            if weights == "none"
            else "from a local weights file"
        )
    elif kind == "torchvision":
        text = f"torchvision {spec.get('name')}, weights {spec.get('weights', 'none')}"
    else:
        text = f"the builder {spec.get('builder')}"
    if spec.get("sequence"):
        text += f", sequence {spec['sequence']}"
    return text


def _input_size(pre: Mapping[str, Any]) -> str:
    if pre.get("kind") == "ultrasound":
        w, h, scale = pre.get("crop_width"), pre.get("crop_height"), pre.get("scale", 1.0)
        text = f"B-mode crop {w}x{h}"
        if scale != 1.0:
            text += f" stored at scale {scale} ({round(w * scale)}x{round(h * scale)} pixels)"
        return text
    return f"images resized to {pre.get('size')}x{pre.get('size')}"


def _splits(splits: Mapping[str, Any]) -> str:
    if splits.get("file"):
        return "the user's split file"
    if splits.get("method") == "kfold":
        text = f"{splits.get('folds')}-fold patient-level cross-validation"
        if splits.get("repeats", 1) > 1:
            text += f", repeated {splits['repeats']} times"
        return text
    fractions = "/".join(str(round(f * 100)) for f in splits.get("fractions", []))
    return f"patient-level holdout split {fractions} (train/validation/test, %)"


def _study_lines(study: str, cfg: Mapping[str, Any], external: list[str]) -> list[str]:
    train = cfg.get("train", {})
    lines = [STUDY_TITLES.get(study, study), "~" * len(STUDY_TITLES.get(study, study)), ""]
    lines += [f"- arm **{arm}**: {describe_arm(spec)}" for arm, spec in sorted(cfg["arms"].items())]
    lines += [
        f"- input: {_input_size(cfg.get('preprocess', {}))}",
        f"- split: {_splits(cfg.get('splits', {}))}",
        f"- training: {train.get('epochs')} epochs, batch {train.get('batch_size')}, "
        f"{train.get('optimizer', 'adam')} lr {train.get('lr')}, "
        f"device {train.get('device', 'auto')}"
        + (f", {train['repeats']} training runs per fold" if train.get("repeats", 1) > 1 else ""),
        f"- external validation: {', '.join(external) if external else 'none configured'}",
        "",
    ]
    return lines


def _departures(config: Mapping, paper: Mapping) -> list[str]:
    """`studies.*` settings of the run that differ from the paper preset, one line each."""
    run = flatten_config(redact_config({"studies": config.get("studies", {})}))
    ref = flatten_config(redact_config({"studies": paper.get("studies", {})}))
    out = []
    for key in sorted(run.keys() | ref.keys()):
        if run.get(key) != ref.get(key):
            out.append(f"- ``{key}``: {_show(run.get(key))} (paper preset: {_show(ref.get(key))})")
    return out


def _show(value: Any) -> str:
    return "unset" if value is None else f"``{json.dumps(value, sort_keys=True)}``"


def front_page_rst(
    config: Mapping[str, Any],
    *,
    external: Mapping[str, list[str]] | None = None,
    paper_config: Mapping[str, Any] | None = None,
) -> str:
    """The report's front page (reStructuredText) written from the run's configuration: data
    source, arms, input size, split and training of each study, external cohorts, the settings
    that depart from the paper preset (`paper_config`, config/config.yaml) and what was not run.
    """
    source = config.get("data", {}).get("source")
    name = (config.get("provenance") or {}).get("name") or "mskdx run"
    if source == "synthetic":
        data = (
            f"the synthetic DICOM cohort the pipeline generates (seed {config.get('seed')}, "
            "fake PHI in the headers, lesions with known masks)"
        )
    else:
        data = "the user's DICOM studies and label sheets (paths withheld)"
    lines = [
        name,
        "=" * len(name),
        "",
        "mskdx reproduces two published deep-learning diagnosis studies on " + data + ". Every "
        "table shows the paper's printed values beside ours; the paper check recomputes the "
        "papers' own numbers from their counts. Patients and images appear only under keyed "
        "pseudonyms.",
        "",
        "What this run trained",
        "---------------------",
        "",
    ]
    external = external or {}
    for study in sorted(config.get("studies", {})):
        lines += _study_lines(study, config["studies"][study], external.get(study, []))
    not_run = []
    for study, cfg in sorted(config.get("studies", {}).items()):
        if cfg.get("splits", {}).get("method") == "kfold" and cfg["splits"].get("repeats", 1) == 1:
            if cfg.get("train", {}).get("repeats", 1) == 1:
                not_run.append(
                    f"- {study}: one split and one training run (``splits.repeats`` and "
                    "``train.repeats`` 1): the order of the arms is not a finding"
                )
        if not external.get(study):
            not_run.append(f"- {study}: no external validation cohort")
    not_run.append("- deployment (``mskdx predict`` on new patients) is not part of a run")
    lines += ["Not run", "-------", "", *not_run, ""]
    if paper_config is not None:
        departures = _departures(config, paper_config)
        lines += ["Departures from the paper preset", "--------------------------------", ""]
        lines += departures or ["None: this run uses the paper preset."]
        lines.append("")
    lines += [
        "Provenance",
        "----------",
        "",
        "``results/ro-crate-metadata.json`` is the run's Workflow Run RO-Crate (Provenance Run "
        "Crate 0.5): commit, lock, configuration, every job and every file with its SHA-256. "
        "``mskdx verify results/ro-crate-metadata.json`` checks a results folder against it "
        "(docs/provenance.md).",
        "",
    ]
    # Snakemake renders the front page with Jinja: nothing in it is a template
    return "{% raw %}\n" + "\n".join(lines) + "{% endraw %}\n"


def write_front_page(
    config: Mapping[str, Any],
    path: str | os.PathLike[str],
    *,
    external: Mapping[str, list[str]] | None = None,
    paper_config: Mapping[str, Any] | None = None,
) -> str:
    """Write `front_page_rst` to `path` when its text changed; the absolute path (for the
    Snakefile's `report:`)."""
    path = Path(path).resolve()
    text = front_page_rst(config, external=external, paper_config=paper_config)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        write_text(path, text)
    return str(path)
