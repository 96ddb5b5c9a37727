"""The lock and the conda environments in envs/ fit the rules that use them.

envs/constraints.txt is the lock: the tested version of every distribution that
`pip install -e '.[all,dev]'` installs, written by `python3 envs/lock.py` from a fresh resolve.
It holds pyproject.toml's == pins, and the venv the tests run in was installed from it.

No conda channel is reachable where the tests run, so the envs are not built here. Instead:
each file is a well-formed, pinned conda env; its pins equal the lock's versions and its pip
section installs under the lock; every rule that runs code names an env; and every third-party
module that a rule's script imports, directly or through the mskdx modules it uses, is listed
in that env.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest
import yaml
from script_imports import library_files, third_party_imports

REPO = Path(__file__).resolve().parents[2]
ENVS = REPO / "envs"
ENV_FILES = sorted(ENVS.glob("*.yaml"))
LOCK = ENVS / "constraints.txt"
REFRESH = "python3 envs/lock.py"
# The pip section line that puts an env under the lock (relative to .snakemake/conda, as `-e ../..`)
ENV_LOCK_LINE = "-c ../../envs/constraints.txt"
SELF = "mskdx"
# Not in the lock (envs/lock.py): mskdx, installed from the checkout, and the venv's own pip
UNLOCKED = {SELF, "pip"}

# Loads the workflow with Snakemake's API in a subprocess (it changes the working directory and
# sets up logging) and prints, for every rule, its conda env, script and kind as JSON.
LOAD_RULES = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

with SnakemakeApi(OutputSettings()) as api:
    wf = api.workflow(
        resource_settings=ResourceSettings(),
        config_settings=ConfigSettings(configfiles=[Path("config/config.yaml").absolute()]),
        snakefile=Path("Snakefile").absolute(),
    )
    rules = {}
    for rule in wf._workflow.rules:
        base = Path(rule.basedir.get_path_or_uri(secret_free=True))
        rules[rule.name] = {
            "conda": None if rule.conda_env is None else str(base / str(rule.conda_env)),
            "script": None if rule.script is None else str(base / str(rule.script)),
            "shell": rule.shellcmd is not None,
            "norun": bool(rule.norun),
            "code": (
                [str(Path(f).absolute()) for f in rule.input.get("code")]
                if "code" in getattr(rule.input, "_names", {})
                else None
            ),
        }
print("RULES-JSON:" + json.dumps(rules))
"""


def normalize(name: str) -> str:
    """PEP 503 name: PyYAML and pyyaml, grad_cam and grad-cam are the same distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> str:
    return normalize(re.split(r"[\s<>=!~\[;@]", spec.strip(), maxsplit=1)[0])


def load_env(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def pip_section(env: dict) -> list[str]:
    for dep in env["dependencies"]:
        if isinstance(dep, dict) and "pip" in dep:
            return [str(item) for item in dep["pip"]]
    return []


def conda_specs(env: dict) -> list[str]:
    return [dep for dep in env["dependencies"] if isinstance(dep, str)]


def listed_packages(env: dict) -> set[str]:
    """Distributions the env file itself lists (pip and conda), not what they pull in."""
    pip = {requirement_name(item) for item in pip_section(env) if not item.startswith("-")}
    conda = {requirement_name(spec) for spec in conda_specs(env)}
    return pip | conda


@cache
def pyproject_pins() -> dict[str, str]:
    """Name -> version of every `name==version` in pyproject.toml, core and extras."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    specs = [*project["dependencies"], *sum(project["optional-dependencies"].values(), [])]
    pins = {}
    for spec in specs:
        # snakemake[reports]==9.27.1 too: the extra's distribution is pinned at that version
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(\[[^\]]*\])?\s*==\s*([^\s;]+)\s*", spec)
        if match:
            pins[normalize(match.group(1))] = match.group(3)
    return pins


def read_lock(text: str) -> dict[str, str]:
    """Name -> version of a constraints file of `name==version` lines and # comments."""
    pins = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line.strip())
        assert match, f"{LOCK.name}:{number}: {line!r} is not name==version"
        name = normalize(match.group(1))
        assert name not in pins, f"{LOCK.name}:{number}: {name} is pinned twice"
        pins[name] = match.group(2)
    return pins


@cache
def lock_pins() -> dict[str, str]:
    assert LOCK.is_file(), f"no lock {LOCK.relative_to(REPO)}: make it with `{REFRESH}`"
    return read_lock(LOCK.read_text())


@cache
def rules() -> dict[str, dict]:
    if not (REPO / "Snakefile").is_file():
        pytest.skip("no Snakefile yet")
    proc = subprocess.run(
        [sys.executable, "-c", LOAD_RULES],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    marker = [line for line in proc.stdout.splitlines() if line.startswith("RULES-JSON:")]
    assert proc.returncode == 0 and marker, (
        f"could not load the workflow (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    )
    return json.loads(marker[-1].removeprefix("RULES-JSON:"))


@cache
def import_to_distributions() -> dict[str, list[str]]:
    """Top-level import name -> distributions, from what is installed (skimage -> scikit-image)."""
    return {
        module: [normalize(dist) for dist in dists]
        for module, dists in importlib.metadata.packages_distributions().items()
    }


# --- the env files themselves ----------------------------------------------------------------


def test_there_are_env_files():
    names = {path.stem for path in ENV_FILES}
    assert {"dicom", "torch", "stats", "figures"} <= names, names


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_file_is_well_formed(path: Path):
    env = load_env(path)
    assert isinstance(env, dict), f"{path}: not a YAML mapping"
    assert {"name", "channels", "dependencies"} <= set(env), f"{path}: keys {sorted(env)}"
    assert env["name"] == f"mskdx-{path.stem}", f"{path}: name {env['name']!r}"
    assert "conda-forge" in env["channels"], f"{path}: channels {env['channels']}"
    assert "defaults" not in env["channels"], f"{path}: the defaults channel is not free to use"
    specs = {requirement_name(spec): spec for spec in conda_specs(env)}
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    # the script preamble falls back on the venv's site-packages: same Python minor version
    assert re.fullmatch(rf"python\s*=?=\s*{re.escape(version)}(\.\*)?", specs.get("python", "")), (
        f"{path}: python must be pinned to {version}, got {specs.get('python')!r}"
    )
    assert "pip" in specs, f"{path}: pip is needed for the pip section"
    pip = pip_section(env)
    assert pip, f"{path}: no pip section"
    editable = [item for item in pip if item.startswith("-e ")]
    assert len(editable) == 1, f"{path}: expected one `-e` line installing mskdx, got {editable}"
    # conda runs pip in the folder of the env file's copy, <workdir>/.snakemake/conda
    target = editable[0].removeprefix("-e ").strip()
    assert re.fullmatch(r"\.\./\.\.(\[[a-z0-9_,-]+\])?", target), (
        f"{path}: mskdx must be installed from ../.. (the working directory), got {target!r}"
    )


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_pins_match_the_lock(path: Path):
    problems = []
    for item in pip_section(load_env(path)):
        if item.startswith("-"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", item.strip())
        if not match:
            problems.append(f"{item!r} is not pinned with ==")
            continue
        name, version = normalize(match.group(1)), match.group(2)
        wanted = lock_pins().get(name)
        if wanted is None:
            problems.append(f"{name} is not in the lock: mskdx[all,dev] does not install it")
        elif version != wanted:
            problems.append(f"{name}=={version}, but the lock has {wanted}")
    assert not problems, (
        f"{path}:\n" + "\n".join(problems) + f"\n`{REFRESH}` sets the env pins from the lock"
    )


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_installs_under_the_lock(path: Path):
    """What the env's pins pull in (contourpy, joblib, ...) gets the lock's versions too."""
    pip = [" ".join(item.split()) for item in pip_section(load_env(path))]
    assert ENV_LOCK_LINE in pip, f"{path}: the pip section lacks `- {ENV_LOCK_LINE}`"


# --- the lock --------------------------------------------------------------------------------


def test_lock_is_one_pin_per_distribution():
    pins = lock_pins()
    assert not UNLOCKED & set(pins), f"{LOCK.name} pins {UNLOCKED & set(pins)}: see envs/lock.py"
    names = list(pins)
    assert names == sorted(names), f"{LOCK.name} is not sorted by name: refresh it with `{REFRESH}`"
    assert f"`{REFRESH}`" in LOCK.read_text(), f"{LOCK.name}: the header must name `{REFRESH}`"


def test_read_lock_refuses_what_is_not_a_pin():
    assert read_lock("# made today\nNumPy==2.4.6\n\npy-yaml==6.0.4\n") == {
        "numpy": "2.4.6",
        "py-yaml": "6.0.4",
    }
    for bad in ("numpy>=2.0\n", "numpy==2.4.6\nnumpy==2.4.7\n", "numpy @ file:///x.whl\n"):
        with pytest.raises(AssertionError):
            read_lock(bad)


def test_lock_holds_pyproject_pins():
    pins = lock_pins()
    wrong = {
        name: f"pyproject.toml pins {version}, the lock has {pins.get(name, 'none')}"
        for name, version in pyproject_pins().items()
        if pins.get(name) != version
    }
    assert not wrong, f"{LOCK.name} is stale: refresh it with `{REFRESH}`: {wrong}"


def venv_differences(installed: dict[str, str], pins: dict[str, str]) -> list[str]:
    """Distributions installed at a version the lock does not have (or not in the lock)."""
    return [
        f"{name}=={version} (lock: {pins.get(name, 'not in it')})"
        for name, version in sorted(installed.items())
        if name not in UNLOCKED and pins.get(name) != version
    ]


def test_venv_was_installed_from_the_lock():
    """The suite tests the locked versions: a venv that drifted (a dependency's new release, a
    package installed by hand) is named, with the two ways out."""
    installed = {
        normalize(dist.metadata["Name"]): dist.version
        for dist in importlib.metadata.distributions()
    }
    differences = venv_differences(installed, lock_pins())
    assert not differences, (
        f"this venv ({sys.prefix}) is not the locked one, {LOCK.relative_to(REPO)}: "
        + ", ".join(differences)
        + ". Install from the lock in a fresh venv (python3 -m venv .venv && .venv/bin/pip install"
        f" -c envs/constraints.txt -e '.[all,dev]'), or take the new versions: `{REFRESH}`"
        " resolves anew, rewrites the lock and runs the suite"
    )


def test_venv_check_names_a_drifted_dependency():
    """The check can fail: the upstream release of 2026-12-03 behind issue 22."""
    pins = {"opencv-python-headless": "5.0.0.93", "numpy": "2.4.6"}
    installed = {"opencv-python-headless": "5.1.0.95", "numpy": "2.4.6", "pip": "23.2.1"}
    assert venv_differences(installed, pins) == [
        "opencv-python-headless==5.1.0.95 (lock: 5.0.0.93)"
    ]
    assert venv_differences({"ipython": "9.0"}, pins) == ["ipython==9.0 (lock: not in it)"]


# --- rules against envs ----------------------------------------------------------------------


def code_rules() -> dict[str, dict]:
    """Rules that run code (script or shell); `rule all` and the like run nothing."""
    return {name: rule for name, rule in rules().items() if rule["script"] or rule["shell"]}


def test_every_rule_that_runs_code_names_an_env():
    missing = [name for name, rule in code_rules().items() if not rule["conda"]]
    assert not missing, f"rules without a conda: directive: {missing}"
    unknown = {
        name: rule["conda"]
        for name, rule in code_rules().items()
        if rule["conda"] and Path(rule["conda"]).resolve() not in ENV_FILES
    }
    assert not unknown, f"rules whose conda env is not one of {ENVS}/*.yaml: {unknown}"


def test_every_env_is_used():
    used = {Path(rule["conda"]).resolve() for rule in code_rules().values() if rule["conda"]}
    unused = [path.name for path in ENV_FILES if path not in used]
    assert not unused, f"env files no rule uses: {unused}"


def test_env_provides_every_import_of_its_rules():
    distributions = import_to_distributions()
    problems = []
    for name, rule in sorted(code_rules().items()):
        if not rule["script"] or not rule["conda"]:
            continue
        script = Path(rule["script"])
        if script.suffix != ".py":
            continue
        assert script.is_file(), f"rule {name}: script {script} does not exist"
        env_path = Path(rule["conda"]).resolve()
        listed = listed_packages(load_env(env_path))
        for module, files in sorted(third_party_imports(script).items()):
            dists = distributions.get(module)
            if not dists:
                problems.append(
                    f"rule {name}: {module} (imported by {files[0]}) is not installed in the "
                    "venv, so its distribution is unknown"
                )
            elif not set(dists) & listed:
                problems.append(
                    f"rule {name}: {env_path.name} lacks {'/'.join(dists)} "
                    f"(import {module} in {', '.join(sorted(set(files)))})"
                )
    assert not problems, "\n".join(problems)


def test_import_follower_reads_mskdx(tmp_path: Path):
    """The walk follows mskdx and skips stdlib, TYPE_CHECKING and optional imports."""
    script = tmp_path / "script.py"
    script.write_text(
        "import os\nfrom typing import TYPE_CHECKING\nimport mskdx.io\n"
        "if TYPE_CHECKING:\n    import torch\n"
        "try:\n    import not_installed_optional\nexcept ImportError:\n    pass\n"
    )
    found = third_party_imports(script)
    assert "torch" not in found and "os" not in found and "not_installed_optional" not in found
    # mskdx.io imports numpy, pandas, yaml and jsonschema
    assert {"numpy", "pandas", "yaml", "jsonschema"} <= set(found), found


def test_rule_code_inputs_cover_what_its_script_runs():
    """Every library file a rule's script runs is among the rule's `code` inputs
    (`library_sources`), so that editing it reruns the rule: a missing one would leave stale
    results after a library change."""
    problems = []
    for name, rule in sorted(code_rules().items()):
        script = Path(rule["script"]) if rule["script"] else None
        if script is None or script.suffix != ".py":
            continue
        if rule["code"] is None:
            problems.append(f"rule {name}: no `code=library_sources(...)` input")
            continue
        listed = {Path(f).resolve() for f in rule["code"]}
        missing = sorted(
            str(f.relative_to(REPO)) for f in library_files(script) if f.resolve() not in listed
        )
        if missing:
            problems.append(f"rule {name}: runs {', '.join(missing)}, not in its code inputs")
    assert not problems, "\n".join(problems)


def test_library_follower_sees_a_lazy_import(tmp_path: Path):
    """The follower behind the check above reads imports inside called functions too."""
    script = tmp_path / "script.py"
    script.write_text("from mskdx.evaluate.complexity import write_complexity_table\n")
    found = {str(f.relative_to(REPO / "src")) for f in library_files(script)}
    # complexity_table imports learn.models inside the function
    assert {"mskdx/evaluate/complexity.py", "mskdx/learn/models.py"} <= found, found
    assert "mskdx/evaluate/stats/delong.py" not in found
