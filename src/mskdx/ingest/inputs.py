"""What the extraction depends on besides its declared files: the whole input tree and the key.

Standard library only: `workflow/rules/common.smk` imports this module when the workflow is
parsed, to give the extraction rule two params, so that Snakemake reruns it when
- any file under the DICOM folder is added, removed or changed (`tree_digest`: a hash of every
  relative path, size and mtime; a directory input alone only tracks the folder's own mtime), or
- the pseudonym key changes (`key_fingerprint`: an HMAC of a fixed text under the key, never
  the key itself, so the params Snakemake stores do not reveal it).

`walk_tree` is also the file walk of `mskdx.ingest.dicom.walk_dicom`, so both see the same files:
links to folders and files are followed, a folder reached twice (a link loop, two links to one
folder) is walked once, a file reached twice is listed once, and a folder the operating system
refuses to list is reported, not skipped.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

#: Snakemake's marker in a directory() output (the synthetic cohort); not the user's file
SNAKEMAKE_MARKER = ".snakemake_timestamp"
#: what the key fingerprint is when no key is set (the public demo key is used)
DEMO_FINGERPRINT = "demo-key"
_FINGERPRINT_TEXT = b"mskdx pseudonym key fingerprint v1"


@dataclass
class Tree:
    """The regular files under a root, and the folders that could not be listed."""

    files: list[tuple[str, os.stat_result]] = field(default_factory=list)  # (relpath, stat)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (relpath, why)
    repeated: int = 0  # files and folders reached a second time through a link


def walk_tree(root: str | os.PathLike[str]) -> Tree:
    """Every regular file under `root` (links followed), sorted by relative POSIX path."""
    root = Path(root)
    tree = Tree()
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = set()

    def visit(folder: Path, rel: str) -> None:
        try:
            st = folder.stat()
            ident = (st.st_dev, st.st_ino)
            if ident in seen_dirs:
                tree.repeated += 1
                return
            seen_dirs.add(ident)
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            tree.unreadable.append((rel or ".", exc.strerror or type(exc).__name__))
            return
        for entry in entries:
            child = f"{rel}/{entry.name}" if rel else entry.name
            try:
                st = entry.stat(follow_symlinks=True)
            except OSError as exc:
                if entry.is_symlink():  # a broken link: nothing to read behind it
                    continue
                tree.unreadable.append((child, exc.strerror or type(exc).__name__))
                continue
            if stat.S_ISDIR(st.st_mode):
                visit(Path(entry.path), child)
            elif stat.S_ISREG(st.st_mode):
                if not rel and entry.name == SNAKEMAKE_MARKER:
                    continue
                ident = (st.st_dev, st.st_ino)
                if ident in seen_files:
                    tree.repeated += 1
                    continue
                seen_files.add(ident)
                tree.files.append((child, st))

    visit(root, "")
    tree.files.sort(key=lambda item: item[0])
    return tree


def tree_digest(root: str | os.PathLike[str]) -> str:
    """SHA-256 over (relative path, size, mtime in ns) of every file under `root`.

    Folders that cannot be listed enter by name, so that fixing their permissions reruns the
    extraction too. A missing root gives "missing" (the extraction then names the problem).
    """
    root = Path(root)
    if not root.is_dir():
        return "missing"
    tree = walk_tree(root)
    digest = hashlib.sha256()
    for rel, st in tree.files:
        digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    for rel, why in tree.unreadable:
        digest.update(f"unreadable\0{rel}\0{why}\n".encode("utf-8", "surrogateescape"))
    return f"{len(tree.files)} files, sha256 {digest.hexdigest()[:16]}"


def key_fingerprint(env_var: str) -> str:
    """A short fingerprint of the pseudonym key in `env_var` (never the key); DEMO_FINGERPRINT
    when it is unset."""
    value = os.environ.get(env_var, "")
    if not value.strip():
        return DEMO_FINGERPRINT
    return hmac.new(value.encode("utf-8"), _FINGERPRINT_TEXT, hashlib.sha256).hexdigest()[:12]


def demo_key_warning(env_var: str) -> str:
    """The terminal warning when `env_var` is unset and the public demo key is used; else ""."""
    if key_fingerprint(env_var) != DEMO_FINGERPRINT:
        return ""
    return (
        f"mskdx: {env_var} is not set: pseudonyms are made with the public demo key and are not "
        f"secret (anyone can recompute them from a PatientID). Fine for synthetic data; for real "
        f"data `export {env_var}=<a long secret>` (changing it reruns the extraction)."
    )
