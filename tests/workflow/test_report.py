"""The Snakemake HTML report of the tiny run, opened in a real headless Chromium.

The report is a React app whose results (each a base64 data URI) are embedded in the page. The
browser test navigates it as a reader does: menu -> category -> subcategory -> each result's view
button, and each value of a toggle label (e.g. the fold). Every figure must be shown as an <img>
that Chromium decoded at the size of the PNG the workflow wrote, and a screenshot of it must be
that PNG, pixel for pixel, and not blank; every table and model card must be shown inside the
report as its HTML page (the page's bytes), and Table I's page must be a table that sorts when
a header is clicked; the landing page must describe the run from its config (its arms), and
the run's RO-Crate must be linked. Screenshots are kept under the test's tmp_path (printed on
failure).
"""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path

import pytest
from PIL import Image

from .browser import (
    BrowserUnavailable,
    chromium_page,
    chromium_version,
    distinct_colours,
    ensure_chromium,
    pixel_spread,
    unmatched_fraction,
)

pytestmark = pytest.mark.workflow

STUDIES = ("gout", "olt")

# The tables and model cards the report must show as pages (README, "Outputs of the main job");
# each pattern must match.
REPORT_PAGES = (
    "results/gout/tables/table1_image_level.html",
    "results/gout/tables/table2_complexity.html",
    "results/gout/tables/table3_patient_level_*.html",
    "results/olt/tables/table2_performance.html",
    "results/*/tables/localisation.html",
    "results/*/tables/calibration.html",
    "results/*/tables/precision.html",
    "results/*/tables/external_*.html",
    "results/paper_check.html",
    "results/*/model_card_*.html",
)
TABLE_I = "results/gout/tables/table1_image_level.html"
CRATE = "results/ro-crate-metadata.json"
# the tiny run's arms (config/test.yaml): the landing page names each
TINY_ARMS = ("blocks2", "blocks3", "blocks4", "blocks6", "T1", "T2")

ACTION_TIMEOUT_S = 20  # every browser action
BROWSE_BUDGET_S = 180  # the whole walk through the report (about 35 s on 2 busy cores)
MIN_COLOURS = 32  # a matplotlib figure shows hundreds; a blank or broken image a handful
MIN_SPREAD = 5.0  # grey-level standard deviation of a non-uniform screenshot
MAX_UNMATCHED = 0.002  # share of the PNG's pixels its 1:1 screenshot may miss (seen: 0.0)

# The content pane (right of the navbar) and the figure or page shown in it.
CONTENT_IMG = "#app > div > div.grow img"
CONTENT_IFRAME = "#app > div > div.grow iframe"
SHOWN_IMAGE_JS = f"""
(path) => {{
    const img = document.querySelector("{CONTENT_IMG}");
    return img !== null && img.getAttribute("src") === results[path].data_uri && img.complete;
}}
"""
RESULTS_JS = """
() => Object.fromEntries(Object.entries(results).map(([path, r]) => [path, {
    filename: r.filename, mime: r.mime_type, data_uri: r.data_uri}]))
"""


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, installed with apt-get if missing; the test is skipped if it cannot be."""
    try:
        return ensure_chromium()
    except BrowserUnavailable as exc:
        pytest.skip(f"no headless Chromium: {exc}")


def embedded(report: Path, name: str):
    """A JSON object the report embeds as `var <name> = ...;` in <script id="<name>">."""
    html = report.read_text(encoding="utf-8")
    match = re.search(rf'<script id="{name}">\s*var \w+ = (.*?);\s*</script>', html, re.DOTALL)
    assert match, f"{report}: no <script id={name!r}> with the embedded data"
    return json.loads(match.group(1))


def produced_figures(run: Path) -> set[str]:
    return {p.relative_to(run).as_posix() for p in run.glob("results/*/figures/*.png")}


def expected_pages(run: Path) -> set[str]:
    pages = set()
    for pattern in REPORT_PAGES:
        found = {p.relative_to(run).as_posix() for p in run.glob(pattern)}
        assert found, f"the run wrote no {pattern}"
        pages |= found
    return pages


def study_of(path: str) -> str | None:
    parts = Path(path).parts
    return parts[1] if len(parts) > 2 and parts[0] == "results" and parts[1] in STUDIES else None


class ReportWalk:
    """Open every category and subcategory of the report and every result in it, as a reader."""

    def __init__(self, page, report: Path, shots: Path):
        self.page, self.report, self.shots = page, report, shots
        self.deadline = time.monotonic() + BROWSE_BUDGET_S
        self.errors: list[str] = []
        self.shown: dict[str, dict] = {}  # figure path -> how Chromium showed it
        self.pages: dict[str, str] = {}  # page path -> where it was shown
        self.listed: dict[str, str] = {}  # downloadable result path -> where it is listed
        self.table: dict | None = None  # Table I's page as Chromium showed it, sorted
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", self.on_console)

    def on_console(self, msg) -> None:
        if msg.type == "error":
            self.errors.append(f"console.error: {msg.text}")

    def in_budget(self, where: str) -> None:
        assert time.monotonic() < self.deadline, (
            f"walking the report took over {BROWSE_BUDGET_S} s (at {where}); shots: {self.shots}"
        )

    def open(self) -> None:
        self.page.goto(self.report.as_uri(), wait_until="load")
        self.page.wait_for_function("() => typeof app !== 'undefined' && app.state !== undefined")
        self.page.locator("#app nav ul").first.wait_for(state="visible")

    def click_menu(self, text: str) -> None:
        items = self.page.locator("#app nav ul > li > a")
        items.filter(has=self.page.get_by_text(text, exact=True)).first.click()

    def menu(self) -> set[str]:
        return set(self.page.locator("#app nav ul > li > a span").all_inner_texts())

    def run(self) -> None:
        self.open()
        self.landing = self.page.locator("#app").inner_text()
        self.page.screenshot(path=self.shots / "00_menu.png")
        self.categories = self.page.evaluate("() => categories")
        self.results = self.page.evaluate(RESULTS_JS)
        self.menu_items = self.menu()
        for category in sorted(self.categories):
            for subcategory in sorted(self.categories[category]):
                self.walk_subcategory(category, subcategory)
        self.page.screenshot(path=self.shots / "99_last_figure.png")

    def walk_subcategory(self, category: str, subcategory: str) -> None:
        where = f"{category} / {subcategory}"
        self.in_budget(where)
        page = self.page
        self.open()
        self.click_menu("Results" if len(self.categories) == 1 else category)
        if len(self.categories[category]) > 1:
            self.click_menu(subcategory)
        page.locator("#app nav table tbody tr").first.wait_for(state="visible")
        # A label with two values (e.g. fold 0/1) is a toggle: rows show one value at a time.
        radios = page.locator("#app nav fieldset input[type=radio]")
        toggles = [radios.nth(i).get_attribute("id") for i in range(radios.count())]
        for toggle in toggles or [None]:
            if toggle is not None:
                page.locator(f'label[for="{toggle}"]').click()
                page.wait_for_function("(id) => document.getElementById(id).checked", arg=toggle)
            rows = page.locator("#app nav table tbody tr")
            for i in range(rows.count()):
                self.in_budget(where)
                self.open_row(rows.nth(i).locator("td").last.locator("a").first, f"{where} #{i}")

    def open_row(self, view, where: str) -> None:
        href = view.get_attribute("href")
        if href != "#":  # not a figure: a download link with the file's bytes as a data URI
            paths = [p for p, r in self.results.items() if r["data_uri"] == href]
            assert paths, f"{where}: the row links to no result of the report"
            assert view.get_attribute("download") == self.results[paths[0]]["filename"], where
            self.listed.update(dict.fromkeys(paths, where))
            return
        view.click()  # React renders the state change of a click before the click returns
        path = self.page.evaluate("() => app.state.resultPath")
        assert path in self.results, f"{where}: the view button selected {path!r}"
        content = self.page.evaluate("() => app.state.content")
        if content == "html":
            self.show_page(path, where)
            return
        assert content == "img", f"{where}: {path} shown as {content!r}, no image"
        assert path not in self.shown, f"{where}: shows {path}, already shown by another row"
        self.page.wait_for_function(SHOWN_IMAGE_JS, arg=path)
        img = self.page.locator(CONTENT_IMG)
        natural = img.evaluate("i => [i.naturalWidth, i.naturalHeight]")
        shot = self.shots / path.replace("/", "_")
        img.screenshot(path=shot)
        self.shown[path] = {"where": where, "natural": tuple(natural), "shot": shot}

    def show_page(self, path: str, where: str) -> None:
        """A table's or model card's page, shown in the content pane's frame."""
        assert path not in self.pages, f"{where}: shows {path}, already shown by another row"
        frame = self.page.locator(CONTENT_IFRAME)
        frame.wait_for(state="attached")
        assert frame.get_attribute("src") == self.results[path]["data_uri"], where
        self.pages[path] = where
        if path == TABLE_I:
            self.table = self.sort_table()

    def sort_table(self) -> dict:
        """Table I's page as Chromium shows it: its rows, and its column `arm` before and after
        one and two clicks on that column's header."""
        inner = self.page.frame_locator(CONTENT_IFRAME)
        rows = inner.locator("table.sortable tbody tr")
        rows.first.wait_for(state="visible")
        headers = inner.locator("table.sortable thead th")
        index = headers.all_inner_texts().index("arm")
        column = inner.locator(f"table.sortable tbody tr td:nth-child({index + 1})")
        header = headers.nth(index)
        seen = {"rows": rows.count(), "before": column.all_inner_texts()}
        header.click()
        seen["ascending"] = (header.get_attribute("aria-sort"), column.all_inner_texts())
        header.click()
        seen["descending"] = (header.get_attribute("aria-sort"), column.all_inner_texts())
        self.page.screenshot(path=self.shots / "table1_page.png")
        return seen


def load(path: Path) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return image.copy()


def test_report_renders_every_figure_in_chromium(tiny_run, tiny_report, chromium, tmp_path):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"report: {tiny_report}\nscreenshots: {shots}\nbrowser: {chromium_version(chromium)}")
    figures = produced_figures(tiny_run)
    pages = expected_pages(tiny_run)
    assert figures, "the run produced no results/*/figures/*.png"
    pngs = {path: load(tiny_run / path) for path in figures}

    # Wide enough to show every figure at 1:1 beside the navbar (the page scales wider ones down).
    width = max(1400, max(png.width for png in pngs.values()) + 800)
    height = max(1000, max(png.height for png in pngs.values()) + 200)
    with chromium_page(
        chromium, tmp_path / "profile", timeout_s=ACTION_TIMEOUT_S, width=width, height=height
    ) as page:
        walk = ReportWalk(page, tiny_report, shots)
        try:
            walk.run()
        except Exception:
            page.screenshot(path=shots / "failure.png")
            print(f"the page when the walk failed: {shots / 'failure.png'}")
            raise
    results = walk.results

    assert not walk.errors, f"the report raised errors in Chromium: {walk.errors[:10]}"

    # Each study is in the report, and every category is in the menu.
    assert set(STUDIES) <= {study_of(p) for p in results}, sorted(results)
    if len(walk.categories) > 1:
        missing = set(walk.categories) - walk.menu_items
        assert not missing, f"categories not in the menu: {sorted(missing)}"

    # Every result of the report can be reached through its menus.
    reached = set(walk.shown) | set(walk.pages) | set(walk.listed)
    assert reached == set(results), (
        f"results in the report that a reader cannot reach: {sorted(set(results) - reached)}"
    )

    # Figures: exactly the PNGs the workflow produced, each decoded and drawn by Chromium.
    report_pngs = {p for p, r in results.items() if r["mime"] == "image/png"}
    assert report_pngs == figures, (
        f"figures the run made but the report lacks: {sorted(figures - report_pngs)}; "
        f"in the report but not made: {sorted(report_pngs - figures)}"
    )
    assert set(walk.shown) == figures
    problems = []
    for path, seen in sorted(walk.shown.items()):
        png, screen = pngs[path], load(seen["shot"])
        colours, spread = distinct_colours(screen), pixel_spread(screen)
        unmatched = unmatched_fraction(screen, png)
        if seen["natural"] != png.size:
            problems.append(f"{path}: Chromium decoded {seen['natural']}, the PNG is {png.size}")
        if colours < MIN_COLOURS or spread < MIN_SPREAD:
            problems.append(f"{path}: blank ({colours} colours, grey spread {spread:.1f})")
        if unmatched > MAX_UNMATCHED:
            problems.append(f"{path}: {unmatched:.2%} of the PNG's pixels not on screen")
    assert not problems, f"figures that do not render (screenshots: {shots}):\n" + "\n".join(
        problems
    )

    # Tables and model cards: each shown inside the report as its page, the page's own bytes.
    unshown = pages - set(walk.pages)
    assert not unshown, f"tables or model cards not shown in the report: {sorted(unshown)}"
    for path in sorted(pages):
        assert payload(results[path]) == (tiny_run / path).read_bytes(), path
    # Table I is an HTML table in the report, one row per row of its CSV, sortable by a click.
    csv_rows = len((tiny_run / TABLE_I).with_suffix(".csv").read_text().splitlines()) - 1
    seen = walk.table
    assert seen is not None, f"{TABLE_I} was never opened"
    assert seen["rows"] == csv_rows > 1, seen
    assert seen["ascending"] == ("ascending", sorted(seen["before"])), seen
    assert seen["descending"] == ("descending", sorted(seen["before"], reverse=True)), seen

    # The landing page describes this run from its config, not a fixed text.
    for arm in TINY_ARMS:
        assert re.search(rf"\b{arm}\b", walk.landing), f"the front page does not name arm {arm}"
    assert "What this run trained" in walk.landing and "site_b" in walk.landing
    assert "ImageNet ResNet50 per sequence" not in walk.landing

    # The run's RO-Crate is linked, with its bytes.
    assert walk.listed.get(CRATE), f"{CRATE} is not linked from the report"
    assert payload(results[CRATE]) == (tiny_run / CRATE).read_bytes()


def payload(result: dict) -> bytes:
    return base64.b64decode(result["data_uri"].split(";base64,", 1)[1])


def test_report_groups_each_study_in_one_category(tiny_report):
    """A reader finds a study's tables and figures together, under one category of its own."""
    categories = embedded(tiny_report, "categories")
    by_study: dict[str, set[str]] = {study: set() for study in STUDIES}
    for category, subcategories in categories.items():
        for paths in subcategories.values():
            for path in paths:
                if study_of(path):
                    by_study[study_of(path)].add(category)
    for study, names in by_study.items():
        assert len(names) == 1, f"{study}'s results are split over categories {sorted(names)}"
    assert by_study["gout"] != by_study["olt"], "both studies share one category"


def test_every_report_result_has_a_caption(tiny_report):
    results = embedded(tiny_report, "results")
    missing = sorted(p for p, r in results.items() if not (r.get("caption") or "").strip())
    assert not missing, f"results without a caption: {missing}"
