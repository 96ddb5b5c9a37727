"""One owner for the config and the results layout (mskdx.config), and imports that run one way.

- config files: merged as Snakemake merges them, checked against the schema, one-line errors
  naming the file, the key path and the closest valid key;
- the layout: each job's settings and every path, asked by common.smk and the CLI alike;
- the data source of existing results is checked before any job;
- the library's imports follow the stages (a later stage may import an earlier one, never the
  reverse) and learn/ has no import circle.
"""

from __future__ import annotations

import ast
import json
import logging
import re
from pathlib import Path

import pytest

from mskdx.config import checks, load
from mskdx.config.layout import Layout
from mskdx.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src" / "mskdx"
QUICK = REPO / "config" / "quick.yaml"


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ---- config files ---------------------------------------------------------------------------


def test_an_overlay_alone_means_what_it_means_to_snakemake():
    """The workflow's config.yaml first, then the overlay (the CLI used to need both named)."""
    quick = load.load_config([QUICK])
    assert quick["studies"]["gout"]["splits"]["folds"] == 3  # the overlay's
    assert quick["studies"]["gout"]["evaluate"]["threshold_step"] == 0.02  # the base's
    assert load.load_config([load.DEFAULT_CONFIG, QUICK]) == quick  # the base named again


def test_a_misspelt_key_is_one_line_naming_file_key_and_the_key_meant(tmp_path):
    mine = _write(tmp_path / "mine.yaml", "studies:\n  gout:\n    trian: {epochs: 3}\n")
    with pytest.raises(ConfigError) as info:
        load.load_config([QUICK, mine])
    message = str(info.value)
    assert "\n" not in message and len(message) < 200
    assert "studies.gout.trian" in message and str(mine) in message
    assert "did you mean 'train'?" in message


def test_a_bad_value_names_the_overlay_that_set_it(tmp_path):
    mine = _write(tmp_path / "mine.yaml", "studies:\n  olt:\n    train: {lr: -1}\n")
    with pytest.raises(ConfigError, match=r"studies\.olt\.train\.lr=-1 \(set in .*mine\.yaml\)"):
        load.load_config([mine])
    bad = _write(tmp_path / "bad.yaml", "data: {source: pacs}\n")
    with pytest.raises(ConfigError, match=r"data\.source='pacs'.*expected one of"):
        load.load_config([bad])


def test_snakemake_gives_the_same_short_error(tmp_path):
    """common.smk validates with the library: the same line, not 95 lines of schema."""
    import subprocess
    import sys

    mine = _write(tmp_path / "mine.yaml", "studies:\n  gout:\n    trian: {epochs: 3}\n")
    snakemake = Path(sys.executable).parent / "snakemake"
    proc = subprocess.run(
        [str(snakemake), "-n", "--configfile", str(QUICK), str(mine)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "studies.gout.trian: not a valid key" in out and "did you mean 'train'?" in out
    assert "Additional properties" not in out


def test_schema_defaults_are_filled_in(tmp_path):
    config = load.load_config()
    # data.pseudonym_key_env has a schema default: present even where no file sets it
    assert config["data"]["pseudonym_key_env"]


# ---- the layout -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def layout() -> Layout:
    return Layout(load.load_config([QUICK]))


def test_folds_come_with_their_checkpoints(layout):
    checkpoints = layout.arm_checkpoints("gout", "blocks3")
    assert list(checkpoints) == [0, 1, 2]
    assert checkpoints[2] == Path("results/gout/models/blocks3/fold_2/checkpoint_final.pt")
    assert layout.model_dir("gout", "blocks3", 1, 2) == Path(
        "results/gout/models/blocks3/seed_2/fold_1"
    )


def test_predict_has_one_private_map(layout, tmp_path, monkeypatch):
    """Rule predict_folder and `mskdx predict` both run predict_arm, which takes the map's
    place from the layout: the same file whichever way predict starts."""
    from mskdx.deploy import predict
    from mskdx.learn.arm_settings import ARM_FORMAT, write_arm_settings

    assert layout.predict_private_map("gout", "blocks3") == Path(
        "private/gout/predict/blocks3/file_map.csv"
    )
    results = tmp_path / "results"
    write_arm_settings(
        results / "gout/models/blocks3/arm.json", layout.arm_settings("gout", "blocks3")
    )
    for fold in layout.folds("gout"):
        path = results / f"gout/models/blocks3/fold_{fold}/checkpoint_final.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    curves = results / "gout/tables/threshold_curves_blocks3.csv"
    curves.parent.mkdir(parents=True)
    curves.write_text("fold,threshold,chosen\n")
    seen = {}
    monkeypatch.setattr(predict, "predict_folder", lambda *a, **kw: seen.update(kw))
    predict.predict_arm("dicom", "out", study="gout", arm="blocks3", results=results)
    assert seen["private_map"] == Path("private/gout/predict/blocks3/file_map.csv")
    assert seen["spec"].preprocess == layout.extract_spec("gout")["preprocess"]
    assert (
        ARM_FORMAT == json.loads((results / "gout/models/blocks3/arm.json").read_text())["format"]
    )
    rule = (REPO / "workflow/scripts/predict_folder.py").read_text()
    assert "predict_step" in rule and "private_map" not in rule  # no second home


def test_a_disagreeing_config_is_reported_with_both_values(layout, caplog):
    from mskdx.deploy.predict import report_config_differences

    recorded = layout.arm_settings("gout", "blocks3")
    paper = Layout(load.load_config()).arm_settings("gout", "blocks3")
    with caplog.at_level(logging.WARNING):
        messages = report_config_differences(recorded, paper)
    scale = [m for m in messages if m.startswith("extract.preprocess.scale")]
    assert scale and "trained with 0.2" in scale[0] and "says 1.0" in scale[0]
    assert "using the arm's own setting" in caplog.text
    assert report_config_differences(recorded, recorded) == []


def test_rule_all_asks_for_every_arm_settings_file(layout):
    outputs = layout.final_outputs()
    assert "results/gout/models/blocks6/arm.json" in outputs
    assert "results/olt/models/T1/arm.json" in outputs


def test_the_image_label_sheets_are_inputs_where_the_config_names_them(tmp_path):
    """Synthetic: the cohorts' image_labels.csv while labels.images is set (null: none);
    own data: input.image_labels and an external cohort's image_labels when not empty."""
    quick = Layout(load.load_config([QUICK]))
    for study in ("gout", "olt"):
        assert quick.study_input(study)["image_labels"] == (
            f"data/synthetic/{study}/image_labels.csv"
        )
        assert quick.external_input(study, "site_b")["image_labels"] == (
            f"data/synthetic/external/{study}/site_b/image_labels.csv"
        )
    off = _write(tmp_path / "off.yaml", "studies:\n  olt:\n    labels: {images: null}\n")
    patient_only = Layout(load.load_config([QUICK, off]))
    assert "image_labels" not in patient_only.study_input("olt")
    assert "image_labels" not in patient_only.external_input("olt", "site_b")
    assert "image_labels" in patient_only.study_input("gout")
    mine = _write(
        tmp_path / "mine.yaml",
        "data: {source: dicom}\nstudies:\n  gout:\n"
        "    input: {dicom_dir: d, labels: l.csv, image_labels: i.csv}\n"
        "    external:\n      - {name: b, dicom_dir: e, labels: m.csv}\n"
        "      - {name: c, dicom_dir: f, labels: n.csv, image_labels: j.csv}\n"
        "  olt:\n    input: {dicom_dir: o, labels: p.csv, image_labels: ''}\n",
    )
    own = Layout(load.load_config([QUICK, mine]))
    assert own.study_input("gout") == {"dicom": "d", "labels": "l.csv", "image_labels": "i.csv"}
    assert own.study_input("olt") == {"dicom": "o", "labels": "p.csv"}
    assert "image_labels" not in own.external_input("gout", "b")
    assert own.external_input("gout", "c")["image_labels"] == "j.csv"
    gout_off = _write(tmp_path / "gout_off.yaml", off.read_text().replace("olt", "gout"))
    unset = Layout(load.load_config([QUICK, mine, gout_off]))
    with pytest.raises(ConfigError, match=r"studies\.gout\.input\.image_labels names .*"
                       r"studies\.gout\.labels\.images"):  # fmt: skip
        unset.study_input("gout")
    with pytest.raises(ConfigError, match=r"external \(cohort c\): image_labels"):
        unset.external_input("gout", "c")


# ---- checks beyond the schema ---------------------------------------------------------------


def test_results_of_another_data_source_stop_the_run(tmp_path):
    config = load.load_config([QUICK])
    results = tmp_path / "results"
    checks.write_source(results / "olt/cache/source.json", "synthetic")
    checks.check_data_source(config, results)  # the same source: fine
    mine = _write(
        tmp_path / "dicom.yaml",
        "data: {source: dicom}\nstudies:\n  gout:\n    input: {dicom_dir: x, labels: y}\n",
    )
    real = load.load_config([QUICK, mine])
    with pytest.raises(ConfigError, match=r"made from 'synthetic' data.*move .*results/olt"):
        checks.check_data_source(real, results)


def test_a_user_split_file_is_checked(tmp_path):
    bad = _write(tmp_path / "splits.csv", "patient,subset\nP-1,test\n")
    with pytest.raises(ConfigError, match="no column 'fold'"):
        checks.user_split_folds(str(bad), "gout")
    good = _write(tmp_path / "ok.csv", "fold,patient,subset\n1,P-1,test\n0,P-2,test\n")
    assert checks.user_split_folds(str(good), "gout") == [0, 1]


# ---- imports run one way --------------------------------------------------------------------

ORDER = ["config", "ingest", "learn", "evaluate", "deploy"]


def _imports(path: Path) -> list[str]:
    """Every mskdx module a file imports, at module level or inside functions."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mskdx"):
            found += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("mskdx")]
    return found


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ORDER else None


def test_no_stage_imports_a_later_one():
    wrong = []
    for path in SRC.rglob("*.py"):
        own = path.relative_to(SRC).parts[0]
        if own not in ORDER:
            continue
        for module in _imports(path):
            stage = _stage(module)
            if stage and ORDER.index(stage) > ORDER.index(own):
                wrong.append(f"{path.relative_to(SRC)} imports {module}")
    assert not wrong, "\n".join(sorted(set(wrong)))


def test_learn_has_no_import_circle():
    modules = {p.stem: p for p in (SRC / "learn").glob("*.py") if p.stem != "__init__"}
    graph = {
        name: {
            m.split(".")[2]
            for m in _imports(path)
            if re.match(r"mskdx\.learn\.\w+", m) and m.split(".")[2] in modules
        }
        - {name}
        for name, path in modules.items()
    }
    # mskdx.learn import x as well as mskdx.learn.x
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "mskdx.learn":
                graph[name] |= {a.name for a in node.names if a.name in modules} - {name}
    done, active = set(), []

    def visit(node):
        if node in active:
            raise AssertionError(f"import circle: {' -> '.join([*active, node])}")
        if node in done:
            return
        active.append(node)
        for nxt in sorted(graph[node]):
            visit(nxt)
        active.pop()
        done.add(node)

    for node in sorted(graph):
        visit(node)
