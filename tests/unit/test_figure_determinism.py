"""save_figure writes the same bytes twice, with no date in PNG, SVG or PDF metadata: the
crate lists figures as byte-reproducible (issue 39)."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mskdx.evaluate.figures.common import fixed_style, output_paths, save_figure  # noqa: E402


def draw_and_save(folder):
    paths = output_paths([folder / "f.png", folder / "f.svg", folder / "f.pdf"])
    with fixed_style():
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.plot([0, 1], [0, 1], label="roc")
        ax.legend()
        save_figure(fig, paths, dpi=40)
        plt.close(fig)
    return {p.suffix: p.read_bytes() for p in paths}


def png_text_keys(data: bytes) -> list[bytes]:
    keys, i = [], 8
    while i + 8 <= len(data):
        n = int.from_bytes(data[i : i + 4], "big")
        kind = data[i + 4 : i + 8]
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            keys.append(data[i + 8 : i + 8 + n].split(b"\0")[0])
        i += 12 + n
    return keys


def test_figures_are_byte_identical_and_carry_no_dates(tmp_path, monkeypatch):
    # a writer that stamped the time would stamp these two different dates
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1000000000")
    (tmp_path / "a").mkdir()
    first = draw_and_save(tmp_path / "a")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1900000000")
    (tmp_path / "b").mkdir()
    second = draw_and_save(tmp_path / "b")
    assert first == second
    assert png_text_keys(first[".png"]) == [b"Software"]  # "Matplotlib version<x>": locked
    assert b"CreationDate" not in first[".pdf"] and b"ModDate" not in first[".pdf"]
    assert b"<dc:date>" not in first[".svg"]
    assert not re.search(rb"20\d\d-\d\d-\d\d", first[".svg"] + first[".pdf"])
