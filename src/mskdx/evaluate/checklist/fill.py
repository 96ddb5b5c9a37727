"""Fill the CLAIM 2024 and TRIPOD+AI items of `items.yaml` from one study's run.

The items (numbers as the guidelines print them, section, topic, who answers) are data, read from
`items.yaml`; this module only decides each item's `status` and fills its `evidence` and `where`
from the run's facts (`mskdx.evaluate.checklist.facts.study_facts`):
- "reported": the run produced it; `evidence` names the numbers and `where` the files;
- "partly": the run reports part of it; `evidence` says which part is missing;
- "authors": only the study's authors can answer it (clinical context, ethics, funding, ...);
- "not applicable": the run shows that the item does not apply (no model updating, ...).
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Mapping
from importlib import resources

import pandas as pd
import yaml

from mskdx.evaluate.checklist.facts import study_facts
from mskdx.io import write_table, write_text

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]

GUIDELINES = ("CLAIM 2024", "TRIPOD+AI")
ANSWERS = {"run": "reported", "both": "partly", "authors": "authors"}  # default status
STATUSES = ("reported", "partly", "authors", "not applicable")
COLUMNS = ["guideline", "item", "section", "topic", "answers", "status", "evidence", "where"]
FIELDS = {"item", "section", "topic", "answers", "status", "evidence", "where", "with_external"}


@functools.cache
def load_items() -> dict:
    """`items.yaml`, checked: {"outputs": {...}, "CLAIM 2024": [item, ...], "TRIPOD+AI": [...]}."""
    text = resources.files(__package__).joinpath("items.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    for guideline in GUIDELINES:
        seen = set()
        for item in data[guideline]:
            where = f"items.yaml: {guideline} item {item.get('item')!r}"
            if set(item) - FIELDS or not {"item", "section", "topic", "answers"} <= set(item):
                raise ValueError(f"{where}: fields {sorted(item)}; expected some of {FIELDS}")
            if not isinstance(item["item"], str) or item["item"] in seen:
                raise ValueError(f"{where}: item numbers are unique strings")
            if item["answers"] not in ANSWERS:
                raise ValueError(f"{where}: answers {item['answers']!r}; expected {list(ANSWERS)}")
            for variant in (item, item.get("with_external", {})):
                if variant.get("status", "reported") not in STATUSES:
                    raise ValueError(f"{where}: status {variant['status']!r}; expected {STATUSES}")
            seen.add(item["item"])
    return data


def _where(entries: list[str], study: str, figure_format: str, outputs: Mapping) -> str:
    """The files of an item: "@name" lists expanded, {study}/{format} filled, {arm} -> <arm>."""
    paths = []
    for entry in entries:
        paths += outputs[entry[1:]].get(study, []) if entry.startswith("@") else [entry]
    paths = [p.replace("{study}", study).replace("{format}", figure_format) for p in paths]
    return "; ".join(re.sub(r"\{(\w+)\}", r"<\1>", p) for p in paths)


def _row(guideline: str, item: Mapping, facts: Mapping[str, str], figure_format: str) -> dict:
    if facts["external"] != "none" and "with_external" in item:
        item = {**item, **item["with_external"]}
    study = facts["study"]
    return {
        "guideline": guideline,
        "item": item["item"],
        "section": item["section"],
        "topic": item["topic"],
        "answers": item["answers"],
        "status": item.get("status", ANSWERS[item["answers"]]),
        "evidence": item.get("evidence", "").format_map(facts),
        "where": _where(item.get("where", []), study, figure_format, load_items()["outputs"]),
    }


def checklist_table(
    facts: Mapping[str, str], study: str, figure_format: str = "png"
) -> pd.DataFrame:
    """Every item of both guidelines, in the order they print them, filled from `facts`."""
    facts = {**facts, "study": study}
    items = load_items()
    rows = [_row(g, item, facts, figure_format) for g in GUIDELINES for item in items[g]]
    return pd.DataFrame(rows, columns=COLUMNS)


def write_checklist(
    *,
    study: str,
    manifest: PathLike,
    refused: PathLike,
    splits: PathLike,
    settings: Mapping,
    csv: PathLike,
    md: PathLike,
    figure_format: str = "png",
    precision: PathLike | None = None,
) -> None:
    """The checklist of one study as CSV and Markdown (`figure_format`: the figures' first);
    with `precision` (the precision table's CSV) the sample-size items are filled from it
    (`sample_size.fill_sample_size_items`)."""
    from mskdx.evaluate.markdown import to_markdown

    facts = study_facts(
        study=study, manifest=manifest, refused=refused, splits=splits, settings=settings
    )
    table = checklist_table(facts, study, figure_format)
    if precision is not None:
        from mskdx.evaluate.checklist.sample_size import fill_sample_size_items

        table = fill_sample_size_items(table, pd.read_csv(precision), study)
    counts = table["status"].value_counts()
    log.info("%s checklist: %s", study, ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES))
    write_table(table, csv)
    title = f"{study}: CLAIM 2024 and TRIPOD+AI items, filled from the run"
    write_text(md, to_markdown(table, title, compact=False))
