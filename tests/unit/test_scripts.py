"""The workflow's scripts are thin and call their own stage: every name a script imports from
mskdx exists where the script looks for it, and each script imports from one stage package.

A moved function otherwise shows up only when Snakemake runs the rule, minutes into a run.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((REPO / "workflow" / "scripts").glob("*.py"))
# what every stage may use: atomic writes and logging set-up, the error classes, the config,
# the report page of a table or model card written beside it (pandas and markdown only)
SHARED = {
    "mskdx.io",
    "mskdx.errors",
    "mskdx.config.checks",
    "mskdx.config.layout",
    "mskdx.provenance.pages",
}
# provenance: the run as a whole (its RO-Crate), after every other stage
STAGES = (
    "mskdx.synth",
    "mskdx.ingest",
    "mskdx.learn",
    "mskdx.evaluate",
    "mskdx.deploy",
    "mskdx.provenance",
)


def mskdx_imports(script: Path) -> list[tuple[str, str]]:
    """(module, name) of every `from mskdx... import name` in the script."""
    tree = ast.parse(script.read_text(), filename=str(script))
    return [
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mskdx")
        for alias in node.names
    ]


def test_there_are_scripts():
    assert len(SCRIPTS) > 20


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_imports_exist(script: Path):
    missing = []
    for module, name in mskdx_imports(script):
        if not hasattr(importlib.import_module(module), name):
            missing.append(f"{module}.{name}")
    assert not missing, f"{script.name} imports names that do not exist: {missing}"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_calls_one_stage(script: Path):
    modules = {module for module, _ in mskdx_imports(script)} - SHARED
    stages = {stage for stage in STAGES for m in modules if m == stage or m.startswith(stage + ".")}
    assert len(stages) == 1, f"{script.name} imports from {sorted(modules)}: one stage expected"
    assert all(m.count(".") >= 1 for m in modules), modules
