"""The paper preset's code paths through the workflow (issue 23).

- The whole DAG under config/rehearsal.yaml (the paper preset with only cohort sizes, epochs and
  Grad-CAM samples cut): every output the README lists, at the paper's shapes, and the report.
  Marked `rehearsal` and run only with MSKDX_REHEARSAL=1 (it takes longer than the default suite
  can afford; command and time in benchmarks/README.md):
      MSKDX_REHEARSAL=1 pytest -m rehearsal tests/workflow/test_rehearsal.py
- In the default suite, smaller: the weights are checked before any job (a missing file stops
  the DAG; dry runs and gout-only runs download nothing), and one gout train_fold at 700x320
  (scale 1.0) plus one OLT ResNet50 train_fold from ImageNet-style weights at 224.

Nothing can be downloaded here, so the weights are a randomly initialised torchvision resnet50
saved under torch hub's naming convention, resnet50-<its sha256[:8]>.pth, which the real loading
code verifies like torchvision's own file.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch

from .conftest import PROFILE_LOADED, REPO, SNAKEMAKE, copy_workflow

# ResNet50 with the 2-class head: 25,557,032 - 2,049,000 (1000-class fc) + 4,098
RESNET50_PARAMS = 23_512_130
CACHE_NAME = "resnet50-0676ba61.pth"
# a proxy that refuses at once: torchvision's download fails fast instead of waiting on a network
NO_NETWORK = {"https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}

# the paper's 700x320 crop at scale 1.0, MRI at 224, ImageNet ResNet50: on the tiny cohort
PAPER_PATHS = """\
studies:
  gout:
    preprocess: {scale: 1.0}
  olt:
    preprocess: {size: 224}
    arms:
      T1: {architecture: resnet50, weights: imagenet, sequence: T1}
      T2: {architecture: resnet50, weights: imagenet, sequence: T2}
"""


@pytest.fixture(scope="session")
def resnet50_weights(tmp_path_factory) -> Path:
    """A random-init torchvision resnet50 state dict saved as resnet50-<sha256[:8]>.pth."""
    import torchvision

    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    tmp = folder / "tmp.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    return tmp.rename(folder / f"resnet50-{digest[:8]}.pth")


def run(workdir: Path, configs, *args, env=None, check=True, timeout=3600):
    """snakemake with the given config overlays, as a user types it (profiles/default loads)."""
    cmd = [str(SNAKEMAKE), "--configfile", *configs, "--cores", "2", *args]
    run_env = {**os.environ, "MSKDX_PSEUDONYM_KEY": "tests-key", **(env or {})}
    run_env.pop("MSKDX_RESNET50_WEIGHTS", None)
    run_env.update(env or {})
    proc = subprocess.run(
        cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=run_env
    )
    if check:
        assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stderr[-6000:]}"
        assert PROFILE_LOADED in proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def paper_paths(tmp_path_factory) -> Path:
    workdir = copy_workflow(tmp_path_factory.mktemp("paper_paths") / "mskdx")
    (workdir / "config" / "paper_paths.yaml").write_text(PAPER_PATHS)
    return workdir


PAPER_CONFIGS = ("config/test.yaml", "config/paper_paths.yaml")


@pytest.mark.workflow
def test_missing_weights_stop_the_run_before_any_job(paper_paths, tmp_path):
    env = {"TORCH_HOME": str(tmp_path / "torch"), **NO_NETWORK}
    proc = run(paper_paths, PAPER_CONFIGS, env=env, check=False)
    assert proc.returncode != 0
    cache = tmp_path / "torch" / "hub" / "checkpoints" / CACHE_NAME
    out = proc.stdout + proc.stderr
    assert f"Put the file {CACHE_NAME} at {cache}" in out, out[-3000:]
    assert "download failed" in out
    assert not (paper_paths / "results").exists()  # not one job ran
    assert not (paper_paths / "data").exists()

    dry = run(paper_paths, PAPER_CONFIGS, "-n", env=env)
    assert "the run will download them" in dry.stderr
    assert "Downloading" not in dry.stdout + dry.stderr
    gout_only = run(paper_paths, PAPER_CONFIGS, "-n", "results/gout/tables/table1_image_level.csv")
    assert "ResNet50" not in gout_only.stdout + gout_only.stderr


@pytest.mark.workflow
def test_damaged_weights_stop_the_run(paper_paths, resnet50_weights, tmp_path):
    damaged = tmp_path / resnet50_weights.name
    data = bytearray(resnet50_weights.read_bytes())
    data[-100] ^= 0xFF
    damaged.write_bytes(bytes(data))
    env = {"TORCH_HOME": str(tmp_path / "torch"), "MSKDX_RESNET50_WEIGHTS": str(damaged)}
    proc = run(paper_paths, PAPER_CONFIGS, "-n", env=env, check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr  # a dry run prints the error on stdout
    assert f"{damaged}: SHA-256" in out and "does not start with" in out


@pytest.mark.workflow
def test_paper_paths_train(paper_paths, resnet50_weights, tmp_path):
    """One gout fold at 700x320 and one OLT ResNet50 fold from the (fixture) ImageNet weights."""
    env = {"TORCH_HOME": str(tmp_path / "torch"), "MSKDX_RESNET50_WEIGHTS": str(resnet50_weights)}
    gout = "results/gout/models/blocks3/fold_0"
    olt = "results/olt/models/T1/fold_0"
    run(paper_paths, PAPER_CONFIGS, f"{gout}/predictions.csv", f"{olt}/predictions.csv", env=env)
    gout_ckpt = torch.load(paper_paths / gout / "checkpoint_final.pt", weights_only=True)
    assert tuple(gout_ckpt["input_shape"]) == (3, 320, 700)
    olt_ckpt = torch.load(paper_paths / olt / "checkpoint_final.pt", weights_only=True)
    assert tuple(olt_ckpt["input_shape"]) == (3, 224, 224)
    assert sum(v.numel() for k, v in olt_ckpt["model"].items() if _is_param(k)) == RESNET50_PARAMS
    log = (paper_paths / "results/logs/train_fold/olt/T1/0.log").read_text()
    assert f"ResNet50 ImageNet weights from {resnet50_weights}" in log
    for path in (gout, olt):
        preds = pd.read_csv(paper_paths / path / "predictions.csv")
        assert preds["prob"].between(0, 1).all() and len(preds)


def _is_param(key: str) -> bool:
    """State-dict entries that are parameters (not batch-norm running statistics)."""
    return not key.endswith(("running_mean", "running_var", "num_batches_tracked"))


# ---- the whole rehearsal --------------------------------------------------------------------


def readme_outputs() -> list[str]:
    """The paths of the README's table "Outputs of the main job", one pattern each."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    table = text.split("### Outputs of the main job", 1)[1].split("\n\n", 1)[0]
    return [m for line in table.splitlines() for m in re.findall(r"^\| `([^`]+)`", line)]


def expand(pattern: str, arms: dict[str, list[str]], cohorts: list[str]) -> list[str]:
    """Expand {a,b} alternatives, then <arm> (the study's arms) and <cohort>."""
    parts = re.split(r"\{([^}]*)\}", pattern)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    out = []
    for combo in itertools.product(*choices):
        path = "".join(combo)
        study = path.split("/")[1] if path.startswith("results/") else None
        names = [path]
        if "<arm>" in path:
            names = [n.replace("<arm>", a) for n in names for a in arms[study]]
        if "<cohort>" in path:
            names = [n.replace("<cohort>", c) for n in names for c in cohorts]
        out += names
    return out


@pytest.mark.rehearsal
@pytest.mark.skipif(
    os.environ.get("MSKDX_REHEARSAL") != "1",
    reason="the whole paper-preset rehearsal runs with MSKDX_REHEARSAL=1 (benchmarks/README.md)",
)
def test_rehearsal(tmp_path_factory, resnet50_weights):
    workdir = copy_workflow(tmp_path_factory.mktemp("rehearsal") / "mskdx")
    configs = ("config/rehearsal.yaml",)
    env = {
        "TORCH_HOME": str(workdir / "torch_home"),
        "MSKDX_RESNET50_WEIGHTS": str(resnet50_weights),
        **NO_NETWORK,
    }
    run(workdir, configs, env=env, timeout=7200)
    report = workdir / "results" / "report.html"
    run(workdir, configs, "--report", str(report), env=env)
    assert report.stat().st_size > 100_000

    arms = {"gout": ["blocks2", "blocks3", "blocks4", "blocks6"], "olt": ["T1", "T2"]}
    patterns = readme_outputs()
    assert len(patterns) >= 10, patterns
    for pattern in patterns:
        for name in expand(pattern, arms, ["site_b"]):
            if name.startswith("results/report"):
                continue  # built above
            found = list(workdir.glob(name))
            assert found and all(p.stat().st_size > 0 for p in found), f"README lists {name}"

    table2 = pd.read_csv(workdir / "results/gout/tables/table2_complexity.csv").set_index("arm")
    # MACs at 3x320x700 are the paper's for blocks2/4/6 (tests/unit/test_models.py)
    assert table2.loc["blocks2", "macs_m"] == pytest.approx(7558.27, abs=0.01)
    for arm in arms["gout"]:
        table3 = pd.read_csv(workdir / f"results/gout/tables/table3_patient_level_{arm}.csv")
        assert {0, 1, 2, 3, 4} <= set(pd.to_numeric(table3["fold"], errors="coerce").dropna())
        for fold in range(5):
            ckpt = torch.load(
                workdir / f"results/gout/models/{arm}/fold_{fold}/checkpoint_final.pt",
                weights_only=True,
            )
            assert tuple(ckpt["input_shape"]) == (3, 320, 700)
    for arm in arms["olt"]:
        ckpt = torch.load(
            workdir / f"results/olt/models/{arm}/fold_0/checkpoint_final.pt", weights_only=True
        )
        assert tuple(ckpt["input_shape"]) == (3, 224, 224)
        params = sum(v.numel() for k, v in ckpt["model"].items() if _is_param(k))
        assert params == RESNET50_PARAMS
    table = pd.read_csv(workdir / "results/olt/tables/table2_performance.csv")
    assert {"T1", "T2"} <= set(table.astype(str).stack())
