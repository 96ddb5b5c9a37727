"""The software and machine of a run: git commit and state, the lock's hash, versions, device."""

from __future__ import annotations

import logging
import os
import platform
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from mskdx.provenance.records import sha256_file

log = logging.getLogger(__name__)

UNKNOWN = "unknown"
#: distributions whose versions the crate records (those present)
DISTRIBUTIONS = ("mskdx", "snakemake", "torch", "torchvision", "numpy", "pandas", "rocrate")


@dataclass(frozen=True)
class GitState:
    """The checkout's commit, and whether tracked files differ from it (None: not known)."""

    commit: str
    dirty: bool | None


def git_state(repo_root: str | os.PathLike[str]) -> GitState:
    """HEAD and whether tracked files differ from it; UNKNOWN outside a git checkout (a copy).

    Untracked files do not count: results/, data/ and private/ are ignored, and a new file that
    a rule reads is caught by its hash only if it is under results/.
    """

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo_root), *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()

    try:
        top = Path(git("rev-parse", "--show-toplevel")).resolve()
        if top != Path(repo_root).resolve():
            return GitState(UNKNOWN, None)  # a copy inside some other repository
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return GitState(UNKNOWN, None)
    return GitState(commit, dirty)


def lock_digest(repo_root: str | os.PathLike[str], lock: str) -> str:
    """SHA-256 of the lock file (envs/constraints.txt), or "missing"."""
    path = Path(repo_root) / lock
    return sha256_file(path) if path.is_file() else "missing"


def versions() -> dict[str, str]:
    """Python and the installed versions of `DISTRIBUTIONS` (without importing them)."""
    out = {"python": platform.python_version()}
    for name in DISTRIBUTIONS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def machine() -> str:
    """The machine that builds the crate: OS, CPU architecture, cores, and the GPU if torch sees
    one (training jobs may have run elsewhere, e.g. on a cluster)."""
    text = f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores"
    try:
        import torch
    except ImportError:
        return text
    if torch.cuda.is_available():
        text += f", GPU {torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        text += ", Apple MPS"
    else:
        text += ", no GPU visible to torch"
    return text
