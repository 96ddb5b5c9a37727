"""The run's RO-Crate: Provenance Run Crate 0.5 as rocrate-validator checks it (offline), every
results file with its hash, every job an action, and no PHI."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
from provenance_run import CONFIG, PHI, build, make_run

from mskdx.provenance import records
from mskdx.provenance.crate import NOT_REPRODUCIBLE_ID, WITHHELD, redact_config
from mskdx.provenance.validate import validate_offline

pytest.importorskip("rocrate_validator")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    repo = make_run(tmp_path_factory.mktemp("prov"))
    build(repo)
    return repo


def graph(repo: Path) -> dict[str, dict]:
    data = json.loads((repo / "results/ro-crate-metadata.json").read_text())
    return {e["@id"]: e for e in data["@graph"]}


def types(entity: dict) -> list[str]:
    kind = entity["@type"]
    return [kind] if isinstance(kind, str) else kind


def test_validator_passes_the_crate_offline_and_fails_a_broken_copy(run, tmp_path):
    report = validate_offline(run / "results", tmp_path / "cache", tmp_path / "report.json")
    assert report["passed"], [i["message"] for i in report["issues"]]
    # the same crate without the steps' HowTo type on the workflow must fail: the check is real
    broken = tmp_path / "broken"
    shutil.copytree(run / "results", broken)
    data = json.loads((broken / "ro-crate-metadata.json").read_text())
    for entity in data["@graph"]:
        if entity["@id"] == "workflow/Snakefile":
            entity["@type"].remove("HowTo")
    (broken / "ro-crate-metadata.json").write_text(json.dumps(data))
    failed = validate_offline(broken, tmp_path / "cache", tmp_path / "broken.json")
    assert not failed["passed"]
    assert any("HowTo" in i["message"] for i in failed["issues"])


def test_every_results_file_is_listed_with_its_size_and_hash(run):
    g = graph(run)
    results = run / "results"
    files = records.list_results(results)
    assert "workflow/Snakefile" in files and "workflow/envs/constraints.txt" in files
    for rel in files:
        entity = g[rel]
        assert "File" in types(entity), rel
        assert entity["sha256"] == records.sha256_file(results / rel), rel
        assert int(entity["contentSize"]) == (results / rel).stat().st_size, rel
    flagged = {e["@id"] for e in g[NOT_REPRODUCIBLE_ID]["hasPart"]}
    assert flagged == {
        "logs/extract/gout.log",
        "logs/tabulate/gout.log",
        "gout/models/blocks2/fold_0/history.csv",
    }
    assert "wall-clock" in g["gout/models/blocks2/fold_0/history.csv"]["description"]


def test_every_job_is_an_action_with_inputs_outputs_and_times(run):
    g = graph(run)
    jobs = sorted((e for i, e in g.items() if i.startswith("#job-")), key=lambda e: e["@id"])
    assert [j["instrument"]["@id"] for j in jobs] == [
        "#rule-extract",
        "#rule-tabulate",
        "#rule-plot_roc",
    ]
    extract, tabulate, plot = jobs
    assert extract["startTime"] == "1970-01-01T00:16:40+00:00"
    assert extract["endTime"] == "1970-01-01T00:16:51+00:00"  # the later of its two outputs
    results = {r["@id"] for r in extract["result"]}
    # the private map is an output of the job, but only as a withheld reference
    assert results == {"gout/cache/manifest.csv", "logs/extract/gout.log", "#withheld-input"}
    assert extract["object"] == [{"@id": "#input-gout"}]
    assert {o["@id"] for o in tabulate["object"]} == {
        "gout/cache/manifest.csv",
        "#checkout/src/mskdx/io.py",
    }
    assert g["#control-3"]["instrument"]["@id"] == "#step-plot_roc"
    assert g["#organize"]["result"]["@id"] == "#run"
    assert g["#git-commit"]["value"] == g["workflow/Snakefile"]["version"]
    assert len(g["#git-commit"]["value"]) == 40
    assert g["#git-dirty"]["value"] == "no"
    assert g["#pv-studies.gout.train.epochs"]["value"] == 2
    assert g["#param-studies.gout.train.epochs"]["additionalType"] == "Integer"


def test_the_crate_names_no_input_path_and_no_phi(run):
    text = (run / "results/ro-crate-metadata.json").read_text()
    for value in [*PHI, "inputs/", "private/", "file_map", str(run.parent)]:
        assert value not in text, value
    g = graph(run)
    assert g["#pv-studies.gout.input.dicom_dir"]["value"] == WITHHELD
    tree = g["#input-gout"]
    assert tree["identifier"].startswith("1 files, sha256 ")
    assert tree["description"].startswith("1 files, 136 bytes")


def test_redaction_withholds_every_path_key():
    config = {
        "studies": {
            "gout": {
                "input": {"dicom_dir": "/d", "labels": "/l.csv"},
                "labels": {"positive": "gout"},
                "external": [{"name": "b", "dicom_dir": "/e", "masks": "/m", "image_labels": "/i"}],
                "splits": {"file": "/s.csv", "folds": 3},
                "arms": {"a": {"weights": "/w.pt"}, "b": {"weights": "imagenet"}},
            }
        },
        "predict": {"dicom_dir": "/p", "dicom_out": True},
    }
    red = redact_config(config)["studies"]["gout"]
    assert red["input"] == {"dicom_dir": WITHHELD, "labels": WITHHELD}
    assert red["labels"] == {"positive": "gout"}
    assert red["external"] == [
        {"name": "b", "dicom_dir": WITHHELD, "masks": WITHHELD, "image_labels": WITHHELD}
    ]
    assert red["splits"] == {"file": WITHHELD, "folds": 3}
    assert red["arms"] == {"a": {"weights": WITHHELD}, "b": {"weights": "imagenet"}}
    assert redact_config(config)["predict"] == {"dicom_dir": WITHHELD, "dicom_out": True}


def test_record_names_decode_as_snakemake_writes_them(tmp_path):
    """Long paths are cut into '@' folders by Snakemake's FilePersistence; both read back."""
    from snakemake.persistence import MetadataRecord
    from snakemake.persistence.file import FilePersistence

    persistence = FilePersistence(path=tmp_path / ".snakemake")
    long = "results/" + "/".join(["x" * 60] * 6) + "/table.csv"
    for output in ("results/a.csv", long):
        persistence._write_record(output, MetadataRecord(rule="r", input=[], job_hash=1))
    jobs = records.read_job_records(tmp_path / ".snakemake/metadata")
    assert [j.outputs for j in jobs] == [tuple(sorted(["results/a.csv", long]))]
    assert any(p.name.startswith("@") for p in (tmp_path / ".snakemake/metadata").rglob("*"))
    with pytest.raises(records.ProvenanceError, match="not a Snakemake metadata record"):
        records.decode_record_name("%%%")
    assert records.decode_record_name(base64.urlsafe_b64encode(b"results/x").decode()) == (
        "results/x"
    )


def test_no_metadata_folder_is_a_clear_error(tmp_path):
    with pytest.raises(records.ProvenanceError, match="no Snakemake metadata folder"):
        records.read_job_records(tmp_path / "nothing")


def test_default_config_fixture_is_what_the_crate_records(run):
    assert graph(run)["./"]["name"] == CONFIG["provenance"]["name"]
