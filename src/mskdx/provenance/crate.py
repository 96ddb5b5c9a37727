"""results/ro-crate-metadata.json: the run as a Workflow Run RO-Crate, Provenance Run Crate
profile 0.5 (https://w3id.org/ro/wfrun/provenance/0.5), built with ro-crate-py (`rocrate`).

results/ is the crate. It holds:
- the workflow: copies of the Snakefile (the main workflow: File, SoftwareSourceCode,
  ComputationalWorkflow, HowTo), the rule files and envs/constraints.txt under results/workflow/;
  each rule as a HowToStep with its tool (SoftwareApplication);
- the run: one CreateAction per finished job, read from Snakemake's records (inputs as `object`,
  outputs as `result`, start and end times), a ControlAction tying each to its step, an
  OrganizeAction for Snakemake, a CreateAction of the whole workflow with the configuration;
- the configuration: each setting a FormalParameter of the workflow with its PropertyValue;
  paths of the user's data are withheld (`WITHHELD`);
- the software: git commit and whether tracked files differ from it, the lock's SHA-256, Python,
  torch, snakemake and mskdx versions, the machine;
- every file under results/ with its size and SHA-256; the files that cannot be identical from
  run to run in the `#not-byte-reproducible` list, each with the reason;
- each input DICOM tree only as its inventory digest and file count (never a path or a name);
  private/ is never described.

RO-Crate 1.1: the run-crate profiles' shapes expect the 1.1 context's terms.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mskdx.io import atomic_path
from mskdx.provenance import environment, records
from mskdx.provenance.records import CRATE_NAME, WORKFLOW_COPY

log = logging.getLogger(__name__)

PROFILES = {
    "https://w3id.org/ro/wfrun/process/0.5": ("Process Run Crate", "0.5"),
    "https://w3id.org/ro/wfrun/workflow/0.5": ("Workflow Run Crate", "0.5"),
    "https://w3id.org/ro/wfrun/provenance/0.5": ("Provenance Run Crate", "0.5"),
    "https://w3id.org/workflowhub/workflow-ro-crate/1.0": ("Workflow RO-Crate", "1.0"),
}
#: the Workflow Run terms' definition of sha256, inline (no context to fetch)
EXTRA_TERMS = {"sha256": "https://w3id.org/ro/terms/workflow-run#sha256"}
NOT_REPRODUCIBLE_ID = "#not-byte-reproducible"
WORKFLOW_FILES = ("Snakefile", "workflow/rules/*.smk", "envs/constraints.txt")
LOCK = "envs/constraints.txt"
#: configuration keys whose string values are paths of the user's data or machine
PATH_KEYS = {
    "dicom_dir",
    "labels",
    "image_labels",
    "masks",
    "file",
    "weights_path",
    "dicom_out",
    "dicom_send",
}
WITHHELD = "(withheld: a local path)"
#: checkout folders whose files a job may read and the crate may name
CODE_DIRS = ("src", "workflow", "envs", "config", "Snakefile", "profiles")
DEFAULT_NAME = "mskdx run"
DEFAULT_DESCRIPTION = (
    "A run of mskdx, a reproducibility pipeline for deep-learning diagnosis on "
    "musculoskeletal images (gout ultrasound; osteochondral lesions of the talus on MRI)."
)
#: the repository states no licence: none is claimed unless config provenance.license names one
DEFAULT_LICENSE = "#license-not-stated"


def redact_config(config: Any, key: str = "") -> Any:
    """`config` with the string values of path keys (`PATH_KEYS`) and of any key under an
    `input` mapping replaced by `WITHHELD`: they name the user's folders, which may carry PHI."""
    if isinstance(config, Mapping):
        return {
            k: (
                WITHHELD
                if isinstance(v, str) and (k in PATH_KEYS or key == "input")
                else redact_config(v, k)
            )
            for k, v in config.items()
        }
    if isinstance(config, list):
        return [redact_config(v, key) for v in config]
    if key == "weights" and isinstance(config, str) and config not in ("imagenet", "none"):
        return WITHHELD
    return config


def flatten_config(config: Mapping, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> value of every leaf (lists and empty mappings are leaves)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten_config(value, f"{name}."))
        else:
            out[name] = value
    return out


def _additional_type(value: Any) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Float"
    return "Text"


def _value_text(value: Any) -> Any:
    """A PropertyValue's value: numbers and text as they are, anything else as JSON."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, sort_keys=True)


def copy_workflow_files(repo_root: Path, results_dir: Path) -> list[str]:
    """Copy the Snakefile, rule files and lock into results/workflow/; their crate ids."""
    ids = []
    for pattern in WORKFLOW_FILES:
        for src in sorted(repo_root.glob(pattern)):
            rel = src.relative_to(repo_root).as_posix()
            dest = results_dir / WORKFLOW_COPY / rel
            with atomic_path(dest) as tmp:
                shutil.copyfile(src, tmp)
            ids.append(f"{WORKFLOW_COPY}/{rel}")
    if f"{WORKFLOW_COPY}/Snakefile" not in ids:
        raise records.ProvenanceError(f"{repo_root}: no Snakefile; expected the checkout's root")
    return ids


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).isoformat(timespec="seconds")


class _Builder:
    """Holds the crate while it is filled; one instance per build."""

    def __init__(self, results_dir: Path, repo_root: Path, cwd: Path, trees: Mapping[str, str]):
        from rocrate.rocrate import ROCrate

        self.crate = ROCrate(version="1.1")
        self.crate.metadata.extra_terms = dict(EXTRA_TERMS)
        self.results_dir = results_dir
        self.repo_root = repo_root
        self.cwd = cwd
        # input tree (relative to cwd, or absolute) -> entity id
        self.trees = {
            os.path.normpath(cwd / path): f"#input-{label.replace('/', '-')}"
            for label, path in trees.items()
        }
        self.files: dict[str, Any] = {}
        self.withheld = 0

    def add_entity(self, props: dict) -> Any:
        from rocrate.model.contextentity import ContextEntity

        props = dict(props)
        ident = props.pop("@id")
        existing = self.crate.get(ident)
        if existing is not None:
            return existing
        return self.crate.add(ContextEntity(self.crate, ident, properties=props))

    def add_result_file(self, rel: str) -> Any:
        path = self.results_dir / rel
        props = {
            "name": Path(rel).name,
            "contentSize": str(path.stat().st_size),
            "sha256": records.sha256_file(path),
            "encodingFormat": _media_type(rel),
        }
        reason = records.not_reproducible_reason(rel)
        if reason:
            props["description"] = f"Not byte-reproducible: {reason}"
        entity = self.crate.add_file(dest_path=rel, properties=props)
        self.files[rel] = entity
        return entity

    def entity_for_path(self, path: str) -> Any | None:
        """The entity a job's input or output path stands for; None for a file under results/
        that is gone. Paths outside results/ and the code folders are never written."""
        full = os.path.normpath(self.cwd / path)
        for root, ident in self.trees.items():
            if full == root or full.startswith(root + os.sep):
                return self.crate.get(ident)
        rel = records.relative_to(path, self.results_dir, self.cwd)
        if rel is not None:
            return self.files.get(rel)
        code = records.relative_to(path, self.repo_root, self.cwd)
        if code is not None and records.within(code, CODE_DIRS):
            return self.add_entity(
                {
                    "@id": f"#checkout/{code}",
                    "@type": "CreativeWork",
                    "name": code,
                    "description": "a file of the checkout (see the commit)",
                }
            )
        self.withheld += 1
        return self.add_entity(
            {
                "@id": "#withheld-input",
                "@type": "CreativeWork",
                "name": "files outside results/ and the checkout's code (paths withheld)",
            }
        )


def _media_type(rel: str) -> str:
    suffix = Path(rel).suffix.lower()
    return {
        ".csv": "text/csv",
        ".md": "text/markdown",
        ".png": "image/png",
        ".svg": "image/svg+xml",
        ".pdf": "application/pdf",
        ".json": "application/json",
        ".html": "text/html",
        ".log": "text/plain",
        ".tsv": "text/tab-separated-values",
        ".txt": "text/plain",
        ".yaml": "application/yaml",
        ".npy": "application/octet-stream",
        ".pt": "application/octet-stream",
    }.get(suffix, "application/octet-stream")


def build_crate(
    results_dir: str | os.PathLike[str],
    *,
    repo_root: str | os.PathLike[str],
    config: Mapping[str, Any],
    config_files: Sequence[str | os.PathLike[str]] = (),
    input_trees: Mapping[str, str | os.PathLike[str]] | None = None,
    metadata_dir: str | os.PathLike[str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> Path:
    """Write results/ro-crate-metadata.json for the run whose records are in `metadata_dir`.

    Args:
        config: the merged configuration the run used (Snakemake's `config`).
        config_files: the configuration files in merge order (config/config.yaml first).
        input_trees: label (e.g. "gout", "gout/site_b") -> DICOM folder of the run: described
            by inventory digest and file count only.
        metadata_dir: Snakemake's records (default `<cwd>/.snakemake/metadata`).
        cwd: the folder Snakemake ran in, which job paths are relative to (default: current).
    """
    results_dir = Path(results_dir).resolve()
    repo_root = Path(repo_root).resolve()
    cwd = Path(cwd or os.getcwd()).resolve()
    jobs = records.read_job_records(metadata_dir or cwd / ".snakemake" / "metadata")
    copy_workflow_files(repo_root, results_dir)
    b = _Builder(results_dir, repo_root, cwd, {k: str(v) for k, v in (input_trees or {}).items()})
    end = max((j.end for j in jobs), default=None)
    _describe_root(b, config.get("provenance") or {}, end)
    for rel in records.list_results(results_dir):
        if rel != f"{WORKFLOW_COPY}/Snakefile":
            b.add_result_file(rel)
    _add_input_trees(b, input_trees or {})
    workflow = _add_workflow(b, repo_root)
    tools = _add_steps(b, workflow, sorted({j.rule for j in jobs}))
    controls, actions = _add_jobs(b, jobs, tools)
    run = _add_run(b, workflow, config, config_files, jobs, repo_root, cwd)
    _add_engine(b, controls, run, jobs)
    not_repro = [e for rel, e in b.files.items() if records.not_reproducible_reason(rel)]
    listing = b.add_entity(
        {
            "@id": NOT_REPRODUCIBLE_ID,
            "@type": "CreativeWork",
            "name": "Files that are not byte-reproducible",
            "description": "Files that differ between two runs of the same commit, "
            "configuration and machine; each file's description says why. `mskdx verify` "
            "reports them apart and does not fail on them.",
        }
    )
    listing["hasPart"] = not_repro
    b.crate.root_dataset["hasPart"] = [b.files[r] for r in sorted(b.files)] + [workflow]
    b.crate.root_dataset.append_to("mentions", listing)
    out = results_dir / CRATE_NAME
    text = json.dumps(b.crate.metadata.generate(), indent=2, ensure_ascii=False) + "\n"
    with atomic_path(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
    log.info(
        "wrote %s: %d files, %d jobs, %d not byte-reproducible, %d withheld input references",
        out,
        len(b.files) + 1,
        len(actions),
        len(not_repro),
        b.withheld,
    )
    return out


def _describe_root(b: _Builder, prov: Mapping[str, Any], end: float | None) -> None:
    root = b.crate.root_dataset
    root["name"] = prov.get("name") or DEFAULT_NAME
    root["description"] = prov.get("description") or DEFAULT_DESCRIPTION
    license_id = prov.get("license") or DEFAULT_LICENSE
    license_name = (
        license_id if license_id != DEFAULT_LICENSE else "no licence stated (provenance.license)"
    )
    root["license"] = b.add_entity(
        {"@id": license_id, "@type": "CreativeWork", "name": license_name}
    )
    root["datePublished"] = _iso(end) if end else dt.date.today().isoformat()
    if prov.get("author"):
        author = prov["author"]
        ident = author.get("orcid") or f"#author-{author['name'].replace(' ', '-')}"
        person = {"@id": ident, "@type": "Person", "name": author["name"]}
        if prov.get("organisation"):
            org = b.add_entity(
                {
                    "@id": prov["organisation"].get("ror") or "#organisation",
                    "@type": "Organization",
                    "name": prov["organisation"]["name"],
                }
            )
            person["affiliation"] = {"@id": org.id}
            root["publisher"] = org
        root["author"] = b.add_entity(person)
    for url, (name, version) in PROFILES.items():
        profile = b.add_entity(
            {"@id": url, "@type": "CreativeWork", "name": name, "version": version}
        )
        root.append_to("conformsTo", profile)


def _add_input_trees(b: _Builder, trees: Mapping[str, str | os.PathLike[str]]) -> None:
    """Each input DICOM tree as its inventory digest and file count, never its path."""
    from mskdx.ingest import inputs

    for label, folder in sorted(trees.items()):
        path = b.cwd / folder
        tree = inputs.walk_tree(path) if path.is_dir() else None
        count = len(tree.files) if tree else 0
        size = sum(st.st_size for _, st in tree.files) if tree else 0
        b.add_entity(
            {
                "@id": f"#input-{label.replace('/', '-')}",
                "@type": "Dataset",
                "name": f"input DICOM tree of {label}",
                "description": f"{count} files, {size} bytes; known by its inventory digest "
                "(SHA-256 over every relative path, size and modification time) only: paths "
                "and names are withheld",
                "identifier": inputs.tree_digest(path),
                "contentSize": str(size),
            }
        )


def _add_workflow(b: _Builder, repo_root: Path) -> Any:
    vers = environment.versions()
    snakefile = b.results_dir / WORKFLOW_COPY / "Snakefile"
    state = environment.git_state(repo_root)
    workflow = b.crate.add_workflow(
        dest_path=f"{WORKFLOW_COPY}/Snakefile",
        main=True,
        lang="snakemake",
        lang_version=vers.get("snakemake"),
        properties={
            "name": "mskdx Snakefile",
            "contentSize": str(snakefile.stat().st_size),
            "sha256": records.sha256_file(snakefile),
            "version": state.commit,
        },
    )
    workflow._jsonld["@type"].append("HowTo")  # it lists steps (Provenance Run Crate)
    dirty = {True: "yes", False: "no", None: "unknown"}[state.dirty]
    checkout = b.add_entity(
        {
            "@id": "#checkout",
            "@type": "SoftwareSourceCode",
            "name": "mskdx checkout",
            "version": state.commit,
            "description": f"git commit {state.commit}; tracked files differ from it: {dirty}",
            "additionalProperty": [
                b.add_entity(
                    {
                        "@id": "#git-commit",
                        "@type": "PropertyValue",
                        "propertyID": "git-commit",
                        "name": "git commit",
                        "value": state.commit,
                    }
                ),
                b.add_entity(
                    {
                        "@id": "#git-dirty",
                        "@type": "PropertyValue",
                        "propertyID": "git-dirty",
                        "name": "tracked files changed",
                        "value": dirty,
                    }
                ),
                b.add_entity(
                    {
                        "@id": "#lock-sha256",
                        "@type": "PropertyValue",
                        "propertyID": "lock-sha256",
                        "name": LOCK,
                        "value": environment.lock_digest(repo_root, LOCK),
                    }
                ),
                b.add_entity(
                    {
                        "@id": "#machine",
                        "@type": "PropertyValue",
                        "propertyID": "machine",
                        "name": "machine that built the crate",
                        "value": environment.machine(),
                    }
                ),
            ],
        }
    )
    workflow["isBasedOn"] = checkout
    workflow["softwareRequirements"] = [
        b.add_entity(
            {
                "@id": f"#software-{name}",
                "@type": "SoftwareApplication",
                "name": name,
                "softwareVersion": version,
            }
        )
        for name, version in vers.items()
    ]
    return workflow


def _add_steps(b: _Builder, workflow: Any, rules: list[str]) -> dict[str, Any]:
    tools = {}
    for position, rule in enumerate(rules):
        tool = b.add_entity(
            {"@id": f"#rule-{rule}", "@type": "SoftwareApplication", "name": f"rule {rule}"}
        )
        step = b.add_entity(
            {
                "@id": f"#step-{rule}",
                "@type": "HowToStep",
                "name": rule,
                "position": str(position),
                "workExample": {"@id": tool.id},
            }
        )
        workflow.append_to("hasPart", tool)
        workflow.append_to("step", step)
        tools[rule] = (tool, step)
    return tools


def _add_jobs(b: _Builder, jobs: list[records.JobRecord], tools: Mapping) -> tuple[list, list]:
    controls, actions = [], []
    for i, job in enumerate(jobs, start=1):
        tool, step = tools[job.rule]
        used = [b.entity_for_path(p) for p in job.inputs]
        made = [b.entity_for_path(p) for p in (*job.outputs, *job.logs)]
        action = b.crate.add_action(
            tool,
            identifier=f"#job-{i}",
            object=list({e.id: e for e in used if e is not None}.values()),
            result=list({e.id: e for e in made if e is not None}.values()),
            properties={
                "name": f"{job.rule} (job {i})",
                "startTime": _iso(job.start),
                "endTime": _iso(job.end),
            },
        )
        control = b.add_entity(
            {
                "@id": f"#control-{i}",
                "@type": "ControlAction",
                "name": f"run {job.rule}",
                "instrument": {"@id": step.id},
                "object": {"@id": action.id},
            }
        )
        actions.append(action)
        controls.append(control)
    return controls, actions


def _add_run(
    b: _Builder,
    workflow: Any,
    config: Mapping,
    config_files: Sequence,
    jobs: list[records.JobRecord],
    repo_root: Path,
    cwd: Path,
) -> Any:
    values = []
    for key, value in flatten_config(redact_config(config)).items():
        pv = b.add_entity(
            {
                "@id": f"#pv-{key}",
                "@type": "PropertyValue",
                "name": key,
                "value": _value_text(value),
            }
        )
        fp = b.add_entity(
            {
                "@id": f"#param-{key}",
                "@type": "FormalParameter",
                "name": key,
                "additionalType": _additional_type(value),
                "valueRequired": False,
                "workExample": {"@id": pv.id},
            }
        )
        pv["exampleOfWork"] = fp
        workflow.append_to("input", fp)
        values.append(pv)
    files = []
    for n, path in enumerate(config_files, start=1):
        full = Path(os.path.normpath(cwd / path))
        rel = records.relative_to(str(full), repo_root, cwd)
        files.append(
            b.add_entity(
                {
                    "@id": f"#configfile-{n}",
                    "@type": "CreativeWork",
                    "name": rel if rel is not None else "(a file outside the checkout)",
                    "position": str(n),
                    "sha256": records.sha256_file(full),
                }
            )
        )
    trees = [e for e in (b.crate.get(i) for i in b.trees.values()) if e is not None]
    start = min((j.start for j in jobs), default=None)
    end = max((j.end for j in jobs), default=None)
    props = {"name": "mskdx workflow run"}
    if start is not None:
        props |= {"startTime": _iso(start), "endTime": _iso(end)}
    run = b.crate.add_action(
        workflow,
        identifier="#run",
        object=values + files + trees,
        result=[b.files[r] for r in sorted(b.files)],
        properties=props,
    )
    b.crate.root_dataset.append_to("mentions", run)
    return run


def _add_engine(b: _Builder, controls: list, run: Any, jobs: list[records.JobRecord]) -> None:
    version = environment.versions().get("snakemake", environment.UNKNOWN)
    engine = b.add_entity(
        {
            "@id": "https://snakemake.github.io/",
            "@type": "SoftwareApplication",
            "name": "Snakemake",
            "softwareVersion": version,
        }
    )
    props = {
        "@id": "#organize",
        "@type": "OrganizeAction",
        "name": "Snakemake run",
        "instrument": {"@id": engine.id},
        "result": {"@id": run.id},
        "object": [{"@id": c.id} for c in controls],
    }
    if jobs:
        props |= {
            "startTime": _iso(min(j.start for j in jobs)),
            "endTime": _iso(max(j.end for j in jobs)),
        }
    b.add_entity(props)
