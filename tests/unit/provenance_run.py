"""A small finished run for the provenance tests: a git checkout with a Snakefile, results/,
an input DICOM tree whose folder names are PHI, a private map, and Snakemake's own job records
(written with snakemake's FilePersistence, so the format is the real one)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import matplotlib
import yaml

matplotlib.use("Agg")

#: PHI in the input tree's folder names and in the private map: must never reach the crate
PHI = ["OZTURK^AYSE", "MRN16576697", "19640312"]
CONFIG = {
    "seed": 0,
    "data": {"source": "dicom"},
    "studies": {
        "gout": {"input": {"dicom_dir": "/data/OZTURK^AYSE/dicom"}, "train": {"epochs": 2}}
    },
    "figures": {"formats": ["png"], "dpi": 60},
    "provenance": {"name": "test run", "license": "https://spdx.org/licenses/MIT"},
}


def git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"}  # fmt: skip
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    ).stdout.strip()


def record(persistence, output: str, rule: str, inputs, logs, start: float, end: float, job: int):
    from snakemake.persistence import RECORD_FORMAT_VERSION, MetadataRecord

    persistence._write_record(
        output,
        MetadataRecord(
            rule=rule, input=list(inputs), log=list(logs), starttime=start, endtime=end,
            job_hash=job, incomplete=False, record_format_version=RECORD_FORMAT_VERSION,
        ),
    )  # fmt: skip


def make_run(root: Path) -> Path:
    """The checkout at `root`/repo after a run; returns it."""
    import matplotlib.pyplot as plt

    from mskdx.evaluate.figures.common import fixed_style, save_figure

    repo = root / "repo"
    (repo / "workflow/rules").mkdir(parents=True)
    (repo / "envs").mkdir()
    (repo / "config").mkdir()
    (repo / "Snakefile").write_text('include: "workflow/rules/tables.smk"\n')
    (repo / "workflow/rules/tables.smk").write_text("rule tabulate:\n    output: 'x'\n")
    (repo / "envs/constraints.txt").write_text("numpy==2.4.6\n")
    (repo / "config/config.yaml").write_text(yaml.safe_dump(CONFIG))
    (repo / ".gitignore").write_text("results/\nprivate/\n.snakemake/\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "init")

    dicom = root / "inputs" / "OZTURK^AYSE" / "MRN16576697" / "19640312"
    dicom.mkdir(parents=True)
    (dicom / "1.dcm").write_bytes(b"\0" * 132 + b"DICM")
    (repo / "private/gout").mkdir(parents=True)
    (repo / "private/gout/file_map.csv").write_text("key,path\nP-1,OZTURK^AYSE\n")

    results = repo / "results"
    (results / "gout/tables").mkdir(parents=True)
    (results / "gout/tables/table1_image_level.csv").write_text("arm,auc\nblocks2,0.8\n")
    (results / "gout/cache").mkdir(parents=True)
    (results / "gout/cache/manifest.csv").write_text("image,patient\nI-1,P-1\n")
    (results / "gout/models/blocks2/fold_0").mkdir(parents=True)
    (results / "gout/models/blocks2/fold_0/history.csv").write_text("epoch,seconds\n1,3.2\n")
    (results / "logs/extract").mkdir(parents=True)
    (results / "logs/extract/gout.log").write_text("2026-12-07 10:00:01 INFO x: 12 images\n")
    (results / "logs/tabulate").mkdir(parents=True)
    (results / "logs/tabulate/gout.log").write_text(
        "2026-12-07 10:01:00 WARNING mskdx.learn.train: no validation images\n"
    )
    (results / "gout/figures").mkdir(parents=True)
    with fixed_style():
        fig = plt.figure(figsize=(2, 2))
        fig.gca().plot([0, 1], [0, 1])
        save_figure(fig, [results / "gout/figures/roc.png"], dpi=40)
        plt.close(fig)

    from snakemake.persistence.file import FilePersistence

    persistence = FilePersistence(path=repo / ".snakemake")
    record(persistence, "results/gout/cache/manifest.csv", "extract", [str(dicom)],
           ["results/logs/extract/gout.log"], 1000.0, 1010.0, job=1)  # fmt: skip
    record(persistence, "private/gout/file_map.csv", "extract", [str(dicom)],
           ["results/logs/extract/gout.log"], 1000.0, 1011.0, job=1)  # fmt: skip
    record(persistence, "results/gout/tables/table1_image_level.csv", "tabulate",
           ["results/gout/cache/manifest.csv", "src/mskdx/io.py"],
           ["results/logs/tabulate/gout.log"], 1020.0, 1030.0, job=2)  # fmt: skip
    record(persistence, "results/gout/figures/roc.png", "plot_roc",
           ["results/gout/tables/table1_image_level.csv"], [], 1031.0, 1032.0, job=3)  # fmt: skip
    return repo


def build(repo: Path) -> Path:
    from mskdx.provenance.crate import build_crate

    dicom = next((repo.parent / "inputs").rglob("19640312"))
    return build_crate(
        repo / "results",
        repo_root=repo,
        config=CONFIG,
        config_files=["config/config.yaml"],
        input_trees={"gout": str(dicom)},
        cwd=repo,
    )
