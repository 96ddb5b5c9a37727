"""A real Snakemake run of the tiny config (config/test.yaml) in a temporary workflow copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
# What Snakemake prints when it picks up profiles/default (beside the Snakefile) by itself
PROFILE_LOADED = "Using workflow specific profile profiles/default"
WORKFLOW_FILES = ("Snakefile", "workflow", "profiles", "config", "src", "envs")


def copy_workflow(dest: Path) -> Path:
    """Copy what a user's checkout holds (not results) into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(
                src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
            )
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


def snakemake(workdir: Path, *args: str, timeout: int = 1800, check: bool = True, env=None):
    """Run snakemake with the tiny config in `workdir`, as a user types it: Snakemake loads
    profiles/default by itself."""
    cmd = [
        str(SNAKEMAKE),
        "--configfile",
        "config/test.yaml",
        "--cores",
        "2",
        *args,
    ]
    run_env = {**os.environ, "MSKDX_PSEUDONYM_KEY": "tests-key", **(env or {})}
    proc = subprocess.run(
        cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=run_env
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-6000:]}"
        )
    if check:
        assert PROFILE_LOADED in proc.stdout + proc.stderr, f"no profile loaded:\n{proc.stderr}"
    return proc


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The tiny config run end to end once; tests read its results (and must not change them)."""
    workdir = copy_workflow(tmp_path_factory.mktemp("tiny") / "mskdx")
    snakemake(workdir)
    return workdir


@pytest.fixture(scope="session")
def tiny_report(tiny_run) -> Path:
    """The self-contained HTML report of the tiny run."""
    report = tiny_run / "report.html"
    snakemake(tiny_run, "--report", str(report))
    return report
