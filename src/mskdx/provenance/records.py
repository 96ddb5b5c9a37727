"""What a run leaves to describe: Snakemake's job records, the files under results/ and their
hashes, and which of them cannot be byte-identical from one run to the next.

Snakemake (9.x, `snakemake.persistence.file.FilePersistence`) keeps one JSON record per output
file under `.snakemake/metadata/`, named by the URL-safe base64 of the output's path; a name
longer than the file system allows is cut into folders whose names start with "@". Its own
reader needs the running workflow (a DAG) and cannot list records, so they are read here, with
the same fields (`MetadataRecord`: rule, input, log, starttime, endtime, job_hash, ...). The
tests write their records with Snakemake's own `FilePersistence`, so a change of format fails
them.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mskdx.errors import MskdxError

log = logging.getLogger(__name__)

CRATE_NAME = "ro-crate-metadata.json"
#: folder under results/ with the copies of the workflow files the crate describes
WORKFLOW_COPY = "workflow"

#: (pattern relative to results/, reason): files that differ between two runs of the same
#: commit, configuration and machine. fnmatch patterns: "*" also matches "/".
NOT_REPRODUCIBLE: tuple[tuple[str, str], ...] = (
    ("logs/*", "job log: every line starts with the time it was written"),
    ("benchmarks/*", "Snakemake benchmark: wall-clock seconds and memory of the job"),
    (
        "*/tensorboard/*",
        "TensorBoard event file: wall-clock time of every event, host name in the file name",
    ),
    ("*/history.csv", "training history: column 'seconds' is the wall-clock time per epoch"),
    ("*/checkpoint_last.pt", "resume state: holds the history with its wall-clock seconds"),
    ("report.html", "Snakemake report: states when it was made"),
    ("report.zip", "Snakemake report: states when it was made"),
)
#: never listed: the crate itself, and temporary files of a job being written
IGNORED = (CRATE_NAME, "*.part", "*/.snakemake_timestamp", ".snakemake_timestamp")


class ProvenanceError(MskdxError):
    """The records of a run cannot be read or do not describe it."""


@dataclass(frozen=True)
class JobRecord:
    """One finished job: its rule, inputs, outputs and logs (paths as Snakemake gives them)."""

    rule: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    logs: tuple[str, ...]
    start: float
    end: float


def decode_record_name(relpath: str) -> str:
    """The output path a record file under .snakemake/metadata/ stands for."""
    parts = Path(relpath).parts
    encoded = "".join(p[1:] if p.startswith("@") else p for p in parts)
    try:
        return base64.b64decode(encoded.encode(), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError) as exc:  # binascii.Error is a ValueError
        raise ProvenanceError(
            f"{relpath}: not a Snakemake metadata record name (URL-safe base64 of a path)"
        ) from exc


def read_job_records(metadata_dir: str | os.PathLike[str]) -> list[JobRecord]:
    """Every finished job recorded under `metadata_dir` (.snakemake/metadata), in start order.

    Records of one job (one per output) share rule, job hash, inputs and logs; their outputs
    are gathered. Records marked incomplete are left out (a killed job).
    """
    root = Path(metadata_dir)
    if not root.is_dir():
        raise ProvenanceError(
            f"{root}: no Snakemake metadata folder; expected .snakemake/metadata of a run "
            "(records are kept unless snakemake ran with --drop-metadata)"
        )
    jobs: dict[tuple, dict] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            log.warning("skipped unreadable Snakemake record %s (%s)", rel, exc)
            continue
        if record.get("incomplete") or not record.get("rule"):
            continue
        output = decode_record_name(rel)
        key = (
            record["rule"],
            record.get("job_hash"),
            tuple(record.get("input") or ()),
            tuple(record.get("log") or ()),
        )
        job = jobs.setdefault(key, {"outputs": [], "start": [], "end": []})
        job["outputs"].append(output)
        job["start"].append(float(record.get("starttime") or 0.0))
        job["end"].append(float(record.get("endtime") or 0.0))
    records = [
        JobRecord(
            rule=key[0],
            inputs=key[2],
            outputs=tuple(sorted(job["outputs"])),
            logs=key[3],
            start=min(job["start"]),
            end=max(job["end"]),
        )
        for key, job in jobs.items()
    ]
    return sorted(records, key=lambda r: (r.start, r.rule, r.outputs))


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _matches(rel: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(rel, p) for p in patterns)


def not_reproducible_reason(rel: str) -> str | None:
    """Why the file at `rel` (relative to results/) differs between runs; None if it does not."""
    for pattern, reason in NOT_REPRODUCIBLE:
        if fnmatch.fnmatchcase(rel, pattern):
            return reason
    return None


def list_results(results_dir: str | os.PathLike[str]) -> list[str]:
    """Every regular file under results/ (POSIX paths relative to it), sorted; the crate itself
    and temporary files left out."""
    root = Path(results_dir)
    files = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            rel = path.relative_to(root).as_posix()
            if not _matches(rel, IGNORED):
                files.append(rel)
    return sorted(files)


def relative_to(path: str, base: Path, cwd: Path) -> str | None:
    """`path` (absolute, or relative to `cwd`) as a POSIX path relative to `base`, or None when
    it lies outside `base`."""
    full = Path(os.path.normpath(cwd / path))
    try:
        return full.relative_to(base).as_posix()
    except ValueError:
        return None


def within(path: str, roots: Sequence[str]) -> str | None:
    """The first of `roots` (POSIX, relative) that `path` equals or lies under, else None."""
    for root in roots:
        if path == root or path.startswith(root.rstrip("/") + "/"):
            return root
    return None
