#!/usr/bin/env python3
"""Refresh the lock: resolve mskdx[all,dev] anew, write envs/constraints.txt, run the suite.

Run from anywhere with the Python the README uses (no venv needed, standard library only):

    python3 envs/lock.py            # then commit pyproject.toml (if edited) and envs/
    python3 envs/lock.py tests/unit # arguments go to pytest: run part of the suite only

Steps, each stopping the refresh on failure:
1. (Re)create the venv (.venv, or $MSKDX_LOCK_VENV) and install `-e '.[all,dev]'` there WITHOUT
   the lock, so pip resolves everything anew within pyproject.toml's requirements (and the
   machine's own pip configuration, e.g. a global constraint file).
2. Write envs/constraints.txt from that venv's `pip freeze --all`: every distribution but mskdx
   and pip (the venv's own installer), name==version, with a header saying how. setuptools stays
   in: something in the tree requires it at run time.
3. Set the pip pins of envs/*.yaml to the lock's versions (each env keeps its package list).
4. Run pytest in that venv. The venv then holds exactly the lock: it is the tested environment.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "envs" / "constraints.txt"
EXTRAS = "all,dev"
SELF = "mskdx"
# Not locked: the venv's own installer (pip freeze leaves it out too, with setuptools and wheel)
UNLOCKED = {SELF, "pip"}
# A pip pin in an env file: `      - name==version`
PIN = re.compile(r"^(?P<head>\s*-\s+)(?P<name>[A-Za-z0-9_.\-]+)==(?P<version>\S+)\s*$")


def normalize(name: str) -> str:
    """PEP 503 name: PyYAML and pyyaml, grad_cam and grad-cam are the same distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def run(*argv: str | Path) -> None:
    print("$", " ".join(str(a) for a in argv), flush=True)
    subprocess.run([str(a) for a in argv], cwd=REPO, check=True)


def resolve(venv: Path) -> None:
    """A fresh venv with mskdx[all,dev] resolved anew (the lock is not used)."""
    if venv.exists():
        shutil.rmtree(venv)
    run(sys.executable, "-m", "venv", venv)
    run(venv / "bin" / "pip", "install", "-e", f".[{EXTRAS}]")


def frozen(venv: Path) -> dict[str, str]:
    """Normalized name -> version of every distribution in the venv but mskdx and pip."""
    out = subprocess.run(
        [str(venv / "bin" / "pip"), "freeze", "--all", "--exclude-editable"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    pins = {}
    for line in out.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line.strip())
        if not match:
            raise SystemExit(f"pip freeze gave {line!r}; expected name==version (a PyPI release)")
        if normalize(match.group(1)) not in UNLOCKED:
            pins[normalize(match.group(1))] = match.group(2)
    return pins


def pip_version(venv: Path) -> str:
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "--version"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.split()[1]


def write_lock(pins: dict[str, str], venv: Path) -> None:
    header = [
        f"# The tested versions of everything `pip install -e '.[{EXTRAS}]'` installs, but mskdx.",
        f"# Made by `python3 envs/lock.py` on {date.today().isoformat()}: Python "
        f"{platform.python_version()}, {platform.system()} {platform.machine()}, "
        f"pip {pip_version(venv)};",
        "# there pip resolved pyproject.toml's requirements anew; the suite runs on exactly these",
        "# versions before the lock is committed.",
        "# A pip constraints file, used by the README's commands and .ci/run:",
        f"#   .venv/bin/pip install -c envs/constraints.txt -e '.[{EXTRAS}]'",
        "# and by the pip sections of envs/*.yaml, whose pins equal it (tests/unit/test_envs.py).",
        "# Do not edit by hand: change pyproject.toml, then run `python3 envs/lock.py`.",
    ]
    body = [f"{name}=={version}" for name, version in sorted(pins.items())]
    LOCK.write_text("\n".join(header + body) + "\n")
    print(f"wrote {LOCK.relative_to(REPO)}: {len(body)} distributions")


def sync_envs(pins: dict[str, str]) -> None:
    """Set each env file's pip pins to the lock's versions, leaving all else as it is."""
    missing = []
    for path in sorted((REPO / "envs").glob("*.yaml")):
        lines = path.read_text().splitlines(keepends=True)
        for i, line in enumerate(lines):
            match = PIN.match(line)
            if not match:
                continue
            name = normalize(match.group("name"))
            if name not in pins:
                missing.append(f"{path.name}: {match.group('name')}")
                continue
            lines[i] = f"{match.group('head')}{match.group('name')}=={pins[name]}\n"
        path.write_text("".join(lines))
    if missing:
        raise SystemExit(
            f"env files pin distributions that mskdx[{EXTRAS}] does not install: "
            + ", ".join(missing)
        )


def main(pytest_args: list[str]) -> int:
    venv = Path(os.environ.get("MSKDX_LOCK_VENV", REPO / ".venv")).absolute()
    resolve(venv)
    pins = frozen(venv)
    write_lock(pins, venv)
    sync_envs(pins)
    try:
        run(venv / "bin" / "pytest", *pytest_args)
    except subprocess.CalledProcessError as err:
        print(f"\nthe suite failed (pytest exit {err.returncode}) with the new lock: fix, rerun")
        return 1
    print("\nthe suite passed with the new lock; review and commit it:")
    print("  git diff --stat && git add envs/ pyproject.toml && git commit -m 'Lock: refresh'")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
