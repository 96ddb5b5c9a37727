"""`mskdx verify`: does results/ still hold what the crate lists, made by this checkout?

Every file the crate lists is hashed again (changed, missing), every file under results/ that it
does not list is named (unlisted); the commit, the lock (envs/constraints.txt) and the
configuration are compared with the checkout. Files the crate lists as not byte-reproducible
(logs, benchmarks, TensorBoard events, training histories with wall-clock seconds, the report)
are reported apart and never fail the check; neither do unlisted files of those kinds (the
crate job's own benchmark, a report made after the crate). File names are relative to results/.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml

from mskdx.provenance import crate as crate_mod
from mskdx.provenance import environment, records

log = logging.getLogger(__name__)

SCHEMA = "workflow/schemas/config.schema.yaml"


@dataclass(frozen=True)
class VerifyReport:
    """What differs between a crate and the results/ and checkout it describes."""

    checked: int
    changed: tuple[str, ...]
    missing: tuple[str, ...]
    unlisted: tuple[str, ...]
    #: (file, what happened: changed / missing / unlisted / unchanged, why it may differ)
    not_reproducible: tuple[tuple[str, str, str], ...]
    #: commit, lock and configuration differences, one line each
    differences: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.unlisted or self.differences)

    def lines(self) -> list[str]:
        """The report as text lines, failures first."""
        out = [f"changed: {f}" for f in self.changed]
        out += [f"missing: {f}" for f in self.missing]
        out += [f"unlisted: {f}" for f in self.unlisted]
        out += list(self.differences)
        varied = [(f, what, why) for f, what, why in self.not_reproducible if what != "unchanged"]
        out += [f"not byte-reproducible, {what}: {f} ({why})" for f, what, why in varied]
        verdict = "OK" if self.ok else "FAILED"
        out.append(
            f"{verdict}: {self.checked} files checked, {len(self.changed)} changed, "
            f"{len(self.missing)} missing, {len(self.unlisted)} unlisted, "
            f"{len(self.differences)} differences of commit, lock or configuration; "
            f"{len(self.not_reproducible)} not byte-reproducible files not compared"
        )
        return out


def _graph(crate_path: Path) -> dict[str, dict]:
    try:
        data = json.loads(crate_path.read_text(encoding="utf-8"))
        graph = data["@graph"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise records.ProvenanceError(
            f"{crate_path}: cannot read an RO-Crate metadata file ({exc}); expected "
            "results/ro-crate-metadata.json of a run"
        ) from exc
    return {e["@id"]: e for e in graph}


def _types(entity: Mapping) -> list[str]:
    kind = entity.get("@type", [])
    return [kind] if isinstance(kind, str) else list(kind)


def _ids(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [i["@id"] for i in items if isinstance(i, Mapping) and "@id" in i]


def load_current_config(repo_root: Path, files: list[str]) -> dict:
    """The checkout's configuration from `files` (merge order), with the schema's defaults set
    as Snakemake sets them (snakemake.utils.validate) when the schema is there."""
    from mskdx.config.load import deep_merge

    config: dict = {}
    for name in files:
        with open(repo_root / name) as fh:
            config = deep_merge(config, yaml.safe_load(fh) or {})
    schema = repo_root / SCHEMA
    if schema.is_file():
        from snakemake.utils import validate

        validate(config, str(schema), set_default=True)
    return config


def _config_differences(
    graph: Mapping[str, dict], repo_root: Path, current: Mapping | None
) -> list[str]:
    files = sorted(
        (e for e in graph.values() if e["@id"].startswith("#configfile-")),
        key=lambda e: int(e.get("position", 0)),
    )
    out = []
    names = []
    complete = True
    for entity in files:
        name = entity["name"]
        path = repo_root / name
        if name.startswith("("):
            out.append(f"configuration: file {entity['position']} was outside the checkout")
            complete = False
        elif not path.is_file():
            out.append(f"configuration: {name} is missing from the checkout")
            complete = False
        else:
            names.append(name)
            if records.sha256_file(path) != entity.get("sha256"):
                out.append(f"configuration: {name} differs from the run's (sha256)")
    if current is None:
        if not complete:  # the run's configuration cannot be rebuilt from this checkout
            return out
        current = load_current_config(repo_root, names)
    recorded = {e["name"]: e.get("value") for i, e in graph.items() if i.startswith("#pv-")}
    now = {
        k: crate_mod._value_text(v)
        for k, v in crate_mod.flatten_config(crate_mod.redact_config(current)).items()
    }
    for key in sorted(recorded.keys() | now.keys()):
        if key not in now:
            out.append(f"configuration: {key} was {recorded[key]!r} in the run, unset now")
        elif key not in recorded:
            out.append(f"configuration: {key} is {now[key]!r} now, unset in the run")
        elif recorded[key] != now[key]:
            out.append(f"configuration: {key} was {recorded[key]!r} in the run, {now[key]!r} now")
    return out


def _checkout_differences(graph: Mapping[str, dict], repo_root: Path) -> list[str]:
    out = []
    commit = graph.get("#git-commit", {}).get("value", environment.UNKNOWN)
    state = environment.git_state(repo_root)
    if commit != state.commit:
        out.append(f"commit: {commit} in the run, {state.commit} in the checkout")
    if state.dirty:
        out.append("commit: tracked files of the checkout differ from its commit")
    lock = graph.get("#lock-sha256", {}).get("value")
    now = environment.lock_digest(repo_root, crate_mod.LOCK)
    if lock != now:
        out.append(f"lock: {crate_mod.LOCK} sha256 {lock} in the run, {now} in the checkout")
    return out


def verify(
    crate_path: str | os.PathLike[str],
    *,
    repo_root: str | os.PathLike[str],
    current_config: Mapping | None = None,
) -> VerifyReport:
    """Compare the crate at `crate_path` with the files beside it and the checkout at
    `repo_root` (`current_config`: the checkout's merged configuration; default: the run's
    config files read from the checkout)."""
    crate_path = Path(crate_path)
    results_dir = crate_path.parent
    graph = _graph(crate_path)
    listed = {
        unquote(i): e.get("sha256")
        for i, e in graph.items()
        if "File" in _types(e) and "sha256" in e
    }
    flagged = {
        unquote(i) for i in _ids(graph.get(crate_mod.NOT_REPRODUCIBLE_ID, {}).get("hasPart"))
    }
    present = set(records.list_results(results_dir))
    changed, missing, varied = [], [], []
    for rel, digest in sorted(listed.items()):
        reason = records.not_reproducible_reason(rel) if rel in flagged else None
        if rel not in present:
            what = "missing"
        elif records.sha256_file(results_dir / rel) != digest:
            what = "changed"
        else:
            what = "unchanged"
        if reason:
            varied.append((rel, what, reason))
        elif what == "missing":
            missing.append(rel)
        elif what == "changed":
            changed.append(rel)
    unlisted = []
    for rel in sorted(present - listed.keys()):
        reason = records.not_reproducible_reason(rel)
        if reason:
            varied.append((rel, "unlisted", reason))
        else:
            unlisted.append(rel)
    repo_root = Path(repo_root)
    differences = _checkout_differences(graph, repo_root)
    differences += _config_differences(graph, repo_root, current_config)
    return VerifyReport(
        checked=len(listed),
        changed=tuple(changed),
        missing=tuple(missing),
        unlisted=tuple(unlisted),
        not_reproducible=tuple(sorted(varied)),
        differences=tuple(differences),
    )


def verify_command(
    crate_path: str | os.PathLike[str],
    *,
    repo_root: str | os.PathLike[str],
    write: Callable[[str], None],
    current_config: Mapping | None = None,
) -> int:
    """`mskdx verify [CRATE]`: write the report's lines; exit status 0 only when all match."""
    report = verify(crate_path, repo_root=repo_root, current_config=current_config)
    for line in report.lines():
        write(line)
    return 0 if report.ok else 1
