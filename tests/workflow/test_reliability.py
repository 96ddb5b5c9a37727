"""Interruption and determinism of real workflow runs: a killed job resumes to the same result,
a killed extraction leaves nothing half-written, and two runs give byte-identical tables."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import SNAKEMAKE, copy_workflow, snakemake

pytestmark = pytest.mark.workflow

FOLD = "results/gout/models/blocks3/fold_0"
SLOW_ARM = (
    "studies:\n  gout:\n    arms:\n      blocks3:\n        architecture: resnet_blocks\n"
    "        blocks: 3\n        train: {epochs: 4, batch_size: 2}\n"
)


def clone(run: Path, dest: Path) -> Path:
    """A copy of a finished run (metadata and mtimes kept), as a user's second checkout."""
    shutil.copytree(run, dest, symlinks=True)
    return dest


def start(workdir: Path, *args: str) -> subprocess.Popen:
    cmd = [str(SNAKEMAKE), "--cores", "2", *args]  # profiles/default loads by itself
    env = {**os.environ, "MSKDX_PSEUDONYM_KEY": "tests-key"}
    return subprocess.Popen(
        cmd,
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def kill_when(proc: subprocess.Popen, ready, timeout: float = 300) -> None:
    """SIGKILL snakemake and its jobs (the whole session) once `ready()` is true."""
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if proc.poll() is not None:
                raise AssertionError("the run ended before it could be interrupted")
            if time.monotonic() > deadline:
                raise AssertionError("the run never reached the point to interrupt it")
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_killed_training_job_resumes_to_the_same_predictions(tiny_run, tmp_path):
    target = f"{FOLD}/predictions.csv"
    whole = clone(tiny_run, tmp_path / "whole")
    killed = clone(tiny_run, tmp_path / "killed")
    for run in (whole, killed):
        (run / "config/slow_arm.yaml").write_text(SLOW_ARM)
    config = ["--configfile", "config/test.yaml", "config/slow_arm.yaml"]
    snakemake(whole, target, *config)

    proc = start(killed, target, *config)
    last = killed / FOLD / "checkpoint_last.pt"
    kill_when(proc, lambda: last.exists() and time.sleep(0.3) is None)
    assert not (killed / target).exists(), "training finished before it was killed"
    snakemake(killed, "--unlock")  # the kill left snakemake's lock behind, as a crash would
    snakemake(killed, target, "--rerun-incomplete", *config)

    assert (killed / target).read_bytes() == (whole / target).read_bytes()
    log = (killed / "results/logs/train_fold/gout/blocks3/0.log").read_text()
    assert "resum" in log.lower()


def test_killed_extraction_leaves_nothing_half_written(tiny_run, tmp_path):
    run = clone(tiny_run, tmp_path / "run")
    cache = run / "results/gout/cache"
    shutil.rmtree(cache)
    proc = start(run, "results/gout/cache/manifest.csv", "--configfile", "config/test.yaml")
    log = run / "results/logs/extract_images/gout.log"
    kill_when(proc, lambda: log.exists() and "scanned" in log.read_text())
    assert not (cache / "manifest.csv").exists(), "extraction finished before it was killed"
    snakemake(run, "--unlock")
    snakemake(run, "--rerun-incomplete", "results/gout/cache/manifest.csv")
    for name in ("images.npy", "masks.npy", "manifest.csv"):
        clean = (tiny_run / "results/gout/cache" / name).read_bytes()
        assert (cache / name).read_bytes() == clean, f"{name} differs from a clean run's"
    assert not list(cache.glob(".*.part")), "a temporary file was left behind"


@pytest.fixture(scope="module")
def second_run(tmp_path_factory) -> Path:
    workdir = copy_workflow(tmp_path_factory.mktemp("again") / "mskdx")
    snakemake(workdir)
    return workdir


def without_timing(path: Path) -> bytes:
    """A table's bytes; a training history without its wall-clock column (seconds per epoch)."""
    if path.name != "history.csv":
        return path.read_bytes()
    import pandas as pd

    return pd.read_csv(path).drop(columns="seconds").to_csv(index=False).encode()


def test_two_runs_give_byte_identical_tables(tiny_run, second_run):
    tables = sorted(p.relative_to(tiny_run) for p in (tiny_run / "results").rglob("*.csv"))
    tables = [p for p in tables if "benchmarks" not in p.parts]
    assert len(tables) > 20
    differ = [
        str(p) for p in tables if without_timing(tiny_run / p) != without_timing(second_run / p)
    ]
    assert not differ, f"tables differ between two runs with the same seed: {differ}"
