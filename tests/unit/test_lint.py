"""The checks CI runs on the code: snakemake --lint, snakefmt, ruff check and ruff format.

Each test runs the tool as a developer would from the repository root and, on failure, shows
its full output. The tools come with the dev extra: `pip install -e .[dev]`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# What ruff checks (pyproject.toml holds its settings); folders not there yet are left out
PYTHON_PATHS = [
    p for p in ("src", "tests", "workflow/scripts", "benchmarks", "envs") if (REPO / p).exists()
]


def run(tool: str, *args: str, timeout: int = 300) -> tuple[int, str]:
    exe = BIN / tool
    assert exe.exists(), f"{exe} is missing: install the dev extra (pip install -e .[dev])"
    proc = subprocess.run(
        [str(exe), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return proc.returncode, f"$ {tool} {' '.join(args)}\n{proc.stdout}{proc.stderr}"


def test_snakemake_lint():
    if not (REPO / "Snakefile").is_file():
        pytest.skip("no Snakefile yet")
    rc, out = run("snakemake", "--lint", "--configfile", "config/config.yaml")
    assert rc == 0, out
    assert "Lints for" not in out, out
    assert "Congratulations, your workflow is in a good condition!" in out, out


def test_snakefmt():
    rc, out = run("snakefmt", "--check", "--diff", ".")
    assert rc == 0, out


def test_ruff_check():
    rc, out = run("ruff", "check", "--no-cache", *PYTHON_PATHS)
    assert rc == 0, out


def test_ruff_format():
    rc, out = run("ruff", "format", "--check", "--diff", "--no-cache", *PYTHON_PATHS)
    assert rc == 0, out
