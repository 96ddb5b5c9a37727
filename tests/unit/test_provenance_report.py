"""The report's inline pages: CSV tables as sortable HTML, model cards rendered, and a front
page written from the run's configuration (checked through Jinja and docutils, as Snakemake
renders it)."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
import yaml
from docutils.core import publish_parts

from mskdx.config.load import deep_merge
from mskdx.provenance.pages import write_markdown_html, write_table_html
from mskdx.provenance.report import front_page_rst, write_front_page

REPO = Path(__file__).resolve().parents[2]


def test_a_csv_table_becomes_one_sortable_self_contained_page(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("arm,auc,note\nblocks2,0.81,<b>x</b>\nblocks10,0.9,\n")
    write_table_html(csv, tmp_path / "t.html", title="Table I", caption="pooled test folds")
    page = (tmp_path / "t.html").read_text()
    assert '<table class="sortable"><caption>pooled test folds</caption>' in page
    assert '<tr><td>blocks2</td><td class="n">0.81</td><td>&lt;b&gt;x&lt;/b&gt;</td></tr>' in page
    assert '<tr><td>blocks10</td><td class="n">0.9</td><td></td></tr>' in page
    assert "addEventListener" in page and "http" not in page  # nothing fetched
    first = page
    write_table_html(csv, tmp_path / "t.html", title="Table I", caption="pooled test folds")
    assert (tmp_path / "t.html").read_text() == first


def test_a_model_card_is_rendered_with_its_tables(tmp_path):
    md = tmp_path / "card.md"
    md.write_text("# Model card: blocks2\n\n| metric | value |\n|---|---|\n| AUC | 0.81 |\n")
    write_markdown_html(md, tmp_path / "card.html", title="blocks2")
    page = (tmp_path / "card.html").read_text()
    assert "<h1>Model card: blocks2</h1>" in page
    assert '<table class="sortable">' in page and "<td>0.81</td>" in page


def config(*overlays: str) -> dict:
    merged: dict = {}
    for name in ("config.yaml", *overlays):
        merged = deep_merge(merged, yaml.safe_load((REPO / "config" / name).read_text()))
    return merged


def render(rst: str) -> str:
    """As Snakemake renders the front page: Jinja, then docutils (errors raise)."""
    text = jinja2.Environment().from_string(rst).render(snakemake=None)
    return publish_parts(
        text, writer="html", settings_overrides={"halt_level": 2, "report_level": 2}
    )["html_body"]


def test_the_front_page_describes_the_quick_run_from_its_config():
    quick, paper = config("quick.yaml"), config()
    text = front_page_rst(quick, external={"gout": ["site_b"], "olt": []}, paper_config=paper)
    # the quick overlay's OLT arms: the 3-block net from random weights, not ImageNet ResNet50
    assert "- arm **T1**: ResNet18-style CNN with 3 residual blocks" in text
    assert "ImageNet" not in text.split("Not run")[0].split("Osteochondral")[1]
    assert "stored at scale 0.2 (140x64 pixels)" in text
    assert "- external validation: site_b" in text
    assert "- olt: no external validation cohort" in text
    assert "``studies.gout.preprocess.scale``: ``0.2`` (paper preset: ``1.0``)" in text
    html = render(text)
    assert "What this run trained" in html and "Departures from the paper preset" in html


def test_the_front_page_of_the_paper_preset_names_imagenet_and_no_departures(tmp_path):
    paper = config()
    path = write_front_page(paper, tmp_path / "front.rst", paper_config=paper)
    text = Path(path).read_text()
    assert "- arm **T1**: ResNet50 from ImageNet weights, fully fine-tuned, sequence T1" in text
    assert "None: this run uses the paper preset." in text
    render(text)
    stamp = Path(path).stat().st_mtime_ns
    write_front_page(paper, tmp_path / "front.rst", paper_config=paper)
    assert Path(path).stat().st_mtime_ns == stamp  # unchanged text: not rewritten


def test_a_rules_pages_are_written_beside_its_csvs(tmp_path):
    """A table rule's outputs: `page` is the page of `csv`, `patient_page` that of
    `patient_csv`; the table writer gets the outputs without the pages."""
    from mskdx.provenance.pages import without_pages, write_table_pages

    outputs = {
        "csv": tmp_path / "ext.csv",
        "md": tmp_path / "ext.md",
        "page": tmp_path / "ext.html",
        "patient_csv": tmp_path / "ext_patients.csv",
        "patient_page": tmp_path / "ext_patients.html",
    }
    assert without_pages(outputs) == {
        k: str(v) for k, v in outputs.items() if k in ("csv", "md", "patient_csv")
    }
    outputs["csv"].write_text("arm,auc\nblocks2,0.8\n")
    outputs["patient_csv"].write_text("arm,patients\nblocks2,12\n")
    titles = {"page": "image level", "patient_page": "patient level"}
    write_table_pages(outputs, titles)
    assert "<title>image level</title>" in outputs["page"].read_text()
    assert '<td class="n">12</td>' in outputs["patient_page"].read_text()
    with pytest.raises(KeyError, match="'page'"):
        write_table_pages(outputs, {"patient_page": "patient level"})
