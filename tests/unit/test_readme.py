"""Every command in the README runs in the environment the README builds for it.

The commands are the lines of the README's ```bash blocks and its inline `snakemake ...` and
`pip install ...` spans. Each runs in the environment of the nearest `pip install -e '.[extras]'`
before it in its section, else in the main command's (`.[all]`). What a command needs:

- the distribution that provides its program (`snakemake`, `pytest`: console scripts);
- for `snakemake --report`: Snakemake's `reports` extra (pygments);
- for an executor (`--executor X`, or `executor: X` in the workflow profile it loads, named or
  profiles/default): the plugin snakemake-executor-plugin-X.

What an environment holds is the closure of mskdx[extras] computed from requirements only:
pyproject.toml for mskdx, the installed distributions' metadata (importlib.metadata) for the
rest -- never what happens to be installed in the test venv. There the dev extra pulls pygments
in through pytest, which hid a report command that failed after `pip install -e '.[all]'`.
Non-Python tools (conda for `--use-conda`) are out of reach of this check.

Every README command that installs mskdx installs it under the lock (`-c envs/constraints.txt`,
see tests/unit/test_envs.py), and .ci/run runs the README's test command as written.
"""

from __future__ import annotations

import importlib.metadata
import re
import shlex
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
SELF = "mskdx"
# Programs the fresh venv has without installing anything
BUILTIN_PROGRAMS = {"python", "python3", "pip", "pip3"}
# Snakemake's own executors (no plugin)
BUILTIN_EXECUTORS = {"local", "dryrun", "touch"}
# Options whose values are rule names
RULE_OPTIONS = {"--forcerun", "-R", "--until", "-U", "--omit-from", "-O", "--allowed-rules"}
LOCK = "envs/constraints.txt"
CI = REPO / ".ci" / "run"


def normalize(name: str) -> str:
    """PEP 503 name: PyYAML and pyyaml, grad_cam and grad-cam are the same distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    section: str
    extras: frozenset[str]  # what `pip install -e '.[...]'` built the environment it runs in

    @property
    def program(self) -> str:
        return Path(self.argv[0]).name

    def __str__(self) -> str:
        return shlex.join(self.argv)


def _install_extras(argv: tuple[str, ...]) -> frozenset[str] | None:
    """The extras of `pip install -e .[a,b]`; None for any other command."""
    if Path(argv[0]).name not in {"pip", "pip3"} or "install" not in argv:
        return None
    for arg in argv:
        match = re.fullmatch(r"\.\[([A-Za-z0-9_,-]+)\]", arg)
        if match:
            return frozenset(match.group(1).split(","))
    return frozenset() if "." in argv else None


def _split(line: str) -> list[tuple[str, ...]]:
    """`a && b  # comment` -> [a, b] as argument vectors."""
    commands, current = [], []
    for token in shlex.split(line, comments=True):
        if token in {"&&", ";", "||"}:
            commands.append(tuple(current))
            current = []
        else:
            current.append(token)
    commands.append(tuple(current))
    return [argv for argv in commands if argv]


def bash_lines(text: str) -> list[tuple[str, str]]:
    """(section, line) of every non-empty line in the README's ```bash blocks."""
    lines, section, in_block = [], "", False
    for line in text.splitlines():
        if line.startswith("```"):
            in_block = line.strip() in {"```bash", "```sh", "```console"} and not in_block
        elif in_block and line.strip():
            lines.append((section, line))
        elif line.startswith("## "):
            section = line[3:].strip()
    return lines


def readme_commands(text: str) -> list[Command]:
    """The README's commands in order, each with the extras of the environment it runs in."""
    pieces: list[tuple[str, str]] = []  # (section, command line)
    section, in_block = "", False
    for line in text.splitlines():
        if line.startswith("```"):
            in_block = line.strip() in {"```bash", "```sh", "```console"} and not in_block
            continue
        if in_block:
            if line.strip():
                pieces.append((section, line))
            continue
        if line.startswith("## "):
            section = line[3:].strip()
        for span in re.findall(r"`([^`]+)`", line):
            if re.match(r"(\.venv/bin/)?(snakemake|pip install) ", span) and "..." not in span:
                pieces.append((section, span))
    commands: list[Command] = []
    main: frozenset[str] | None = None
    extras: frozenset[str] | None = None
    last_section = None
    for section, line in pieces:
        if section != last_section:
            extras, last_section = main, section
        for argv in _split(line):
            if argv[1:3] == ("-m", "venv"):  # a fresh venv holds nothing yet
                extras = frozenset()
            installed = _install_extras(argv)
            if installed is not None:
                extras = installed
                main = installed if main is None else main
            commands.append(Command(argv, section, extras or frozenset()))
    return commands


# --- what an environment holds -----------------------------------------------------------------


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _wanted(req: Requirement, extras: set[str]) -> bool:
    """Whether `req`, a requirement of a distribution installed with `extras`, is installed."""
    if req.marker is None:
        return True
    return any(
        req.marker.evaluate({**default_environment(), "extra": extra}) for extra in extras | {""}
    )


def closure(extras: set[str], project: dict | None = None) -> set[str]:
    """Distributions `pip install -e '.[extras]'` installs, from requirements alone."""
    project = project or _pyproject()
    own = {normalize(k): v for k, v in project.get("optional-dependencies", {}).items()}
    found: set[str] = set()
    done: set[tuple[str, str]] = set()  # (distribution, extra or "")
    todo: list[tuple[str, set[str]]] = [(SELF, set(extras))]
    while todo:
        name, wanted = todo.pop()
        new = {extra for extra in wanted | {""} if (name, extra) not in done}
        if not new:
            continue
        done.update((name, extra) for extra in new)
        found.add(name)
        if name == SELF:
            specs = [*project["dependencies"], *(s for e in new - {""} for s in own[normalize(e)])]
        else:
            try:
                specs = importlib.metadata.requires(name) or []
            except importlib.metadata.PackageNotFoundError:
                raise AssertionError(
                    f"{name} is required by {SELF}[{','.join(sorted(extras))}] but not installed "
                    "here, so its own requirements cannot be read: pip install -e '.[all,dev]'"
                ) from None
        for spec in specs:
            req = Requirement(spec)
            if _wanted(req, new):
                todo.append((normalize(req.name), {normalize(e) for e in req.extras}))
    return found


def extra_requirements(dist: str, extra: str) -> set[str]:
    """Distributions that `dist[extra]` adds to `dist` (snakemake[reports] -> pygments)."""
    added = set()
    for spec in importlib.metadata.requires(dist) or []:
        req = Requirement(spec)
        if req.marker is not None and _wanted(req, {extra}) and not _wanted(req, set()):
            added.add(normalize(req.name))
    return added


# --- what a command needs ----------------------------------------------------------------------


@cache
def _console_scripts() -> dict[str, str]:
    return {
        ep.name: normalize(ep.dist.name)
        for ep in importlib.metadata.entry_points(group="console_scripts")
        if ep.dist is not None
    }


def _option(argv: tuple[str, ...], *names: str) -> list[str]:
    """Values of an option, in `--opt value` and `--opt=value` form (several for nargs='+')."""
    values = []
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name:
                values += [a for a in argv[i + 1 :][:1] if not a.startswith("-")]
            elif arg.startswith(name + "="):
                values.append(arg.split("=", 1)[1])
    return values


def snakemake_profile(argv: tuple[str, ...], root: Path = REPO) -> Path | None:
    """The workflow profile folder a snakemake command loads (named, or profiles/default)."""
    named = _option(argv, "--workflow-profile")
    if named:
        return None if named[0] == "none" else root / named[0]
    default = root / "profiles" / "default"
    return default if default.is_dir() else None


def needs(command: Command, root: Path = REPO) -> dict[str, str]:
    """Distribution -> why the command needs it."""
    if command.program in BUILTIN_PROGRAMS:
        return {}
    dist = _console_scripts().get(command.program)
    assert dist, f"README command `{command}`: no installed distribution provides {command.program}"
    wanted = {dist: f"the {command.program} command"}
    if command.program != "snakemake":
        return wanted
    if "--report" in command.argv or _option(command.argv, "--report"):
        wanted |= {d: "--report (snakemake[reports])" for d in extra_requirements(dist, "reports")}
    executor = _option(command.argv, "--executor", "-e")
    profile = snakemake_profile(command.argv, root)
    if not executor and profile is not None and (profile / "config.yaml").is_file():
        value = (yaml.safe_load((profile / "config.yaml").read_text()) or {}).get("executor")
        executor = [value] if value else []
    for name in executor:
        if name not in BUILTIN_EXECUTORS:
            wanted[f"snakemake-executor-plugin-{name}"] = f"the {name} executor"
    return wanted


# --- the tests ---------------------------------------------------------------------------------


COMMANDS = readme_commands(README.read_text())


def test_readme_commands_are_found():
    """The parse sees the commands this file is about, in the environments the README builds."""
    by_text = {str(c): c for c in COMMANDS}
    assert any(c.program == "snakemake" and c.extras == {"all"} for c in COMMANDS), by_text
    report = [c for c in COMMANDS if "--report" in c.argv]
    assert report and all(c.extras == {"all"} for c in report), report
    slurm = [c for c in COMMANDS if "profiles/slurm" in c.argv]
    assert slurm and all("slurm" in c.extras or "dev" in c.extras for c in slurm), slurm
    assert any(c.program == "pytest" and "dev" in c.extras for c in COMMANDS), by_text


@pytest.mark.parametrize("command", COMMANDS, ids=str)
def test_readme_command_has_what_it_needs(command: Command):
    installed = closure(set(command.extras))
    missing = {d: why for d, why in needs(command).items() if d not in installed}
    assert not missing, (
        f"README, section {command.section!r}: `{command}` runs after "
        f"pip install -e '.[{','.join(sorted(command.extras))}]', which does not install "
        + "; ".join(f"{d} (for {why})" for d, why in sorted(missing.items()))
    )


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.program == "snakemake"], ids=str)
def test_readme_snakemake_command_names_what_exists(command: Command):
    """Profiles, config files and rules that a command names are there (a moved profile or a
    renamed rule leaves no stale command behind)."""
    problems = []
    profile = snakemake_profile(command.argv)
    if profile is not None and not (profile / "config.yaml").is_file():
        problems.append(f"no profile {profile.relative_to(REPO)}/config.yaml")
    for config in _option(command.argv, "--configfile", "--configfiles"):
        if not (REPO / config).is_file():
            problems.append(f"no config file {config}")
    rule_text = "\n".join(
        p.read_text() for p in [REPO / "Snakefile", *REPO.glob("workflow/rules/*.smk")]
    )
    for option in RULE_OPTIONS:
        for rule in _option(command.argv, option):
            if not re.search(rf"(?m)^rule {re.escape(rule)}:", rule_text):
                problems.append(f"no rule {rule}")
    assert not problems, f"README command `{command}`: " + "; ".join(problems)


def test_check_finds_the_report_dependency_the_dev_extra_hid():
    """The check can fail: with the workflow extra as it was (snakemake without its reports
    extra) the README's report command lacks pygments after `.[all]`, although `.[all,dev]`
    has it through pytest."""
    project = _pyproject()
    old = {**project, "optional-dependencies": dict(project["optional-dependencies"])}
    old["optional-dependencies"]["workflow"] = ["snakemake==9.27.1"]
    report = next(c for c in COMMANDS if "--report" in c.argv)
    assert needs(report)["pygments"].startswith("--report")
    assert "pygments" not in closure({"all"}, old)
    assert "pygments" in closure({"all", "dev"}, old)
    assert "pygments" in closure({"all"})


def test_check_reads_the_executor_from_the_profile(tmp_path: Path):
    (tmp_path / "profiles" / "default").mkdir(parents=True)
    (tmp_path / "profiles" / "default" / "config.yaml").write_text("executor: slurm\n")
    plain = Command(("snakemake", "--cores", "all"), "test", frozenset({"all"}))
    assert "snakemake-executor-plugin-slurm" in needs(plain, tmp_path)
    assert "snakemake-executor-plugin-slurm" not in closure({"all"})
    local = Command(("snakemake", "--executor", "local"), "test", frozenset({"all"}))
    assert "snakemake-executor-plugin-slurm" not in needs(local, tmp_path)


def uses_lock(argv: tuple[str, ...]) -> bool:
    """Whether a pip command is constrained by the lock (`-c FILE`, `--constraint[=]FILE`)."""
    pairs = zip(argv, argv[1:], strict=False)
    return any(opt in {"-c", "--constraint"} and value == LOCK for opt, value in pairs) or (
        f"--constraint={LOCK}" in argv
    )


INSTALLS = [c for c in COMMANDS if _install_extras(c.argv) is not None]


def test_readme_installs_are_found():
    """The two commands of the README's contract are among the installs checked below."""
    found = {_install_extras(c.argv) for c in INSTALLS}
    assert {frozenset({"all"}), frozenset({"all", "dev"})} <= found, [str(c) for c in INSTALLS]


@pytest.mark.parametrize("command", INSTALLS, ids=str)
def test_readme_install_uses_the_lock(command: Command):
    assert uses_lock(command.argv), (
        f"README, section {command.section!r}: `{command}` resolves anew and gets whatever "
        f"upstream released last; install under the lock: pip install -c {LOCK} -e ..."
    )


def test_lock_check_can_fail():
    assert not uses_lock(("pip", "install", "-e", ".[all]"))
    assert not uses_lock(("pip", "install", "-c", "other.txt", "-e", ".[all]"))
    assert uses_lock(("pip", "install", f"--constraint={LOCK}", "-e", ".[all]"))


def test_ci_runs_the_readme_test_command():
    """.ci/run is the README's test command as written, so CI installs what a user does."""
    tests = [line for _, line in bash_lines(README.read_text()) if ".venv/bin/pytest" in line]
    assert len(tests) == 1, f"expected one README test command, got {tests}"
    ci = [
        line.strip()
        for line in CI.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert tests[0].strip() in ci, f"{CI.relative_to(REPO)} does not run `{tests[0]}`: {ci}"
