"""Config files: read, merged in order and checked against the schema, for Snakemake and the CLI.

Snakemake reads `config/config.yaml` (the `configfile:` directive) and then each `--configfile`
overlay, later files winning key by key; `common.smk` hands the merged config and the files to
`validate`. The `mskdx` command does the same with `load_config`: the workflow's own
`config/config.yaml` first, then the overlays it is given, so an overlay alone
(`--configfile config/quick.yaml`) means what it means to Snakemake.

Both check the merged config against `workflow/schemas/config.schema.yaml` (JSON Schema 2020-12,
with the schema's defaults filled in, as `snakemake.utils.validate` does) and turn the first
error into one short line: the file that set the value, the key path, what is wrong and, for a
misspelt key, the closest valid one (`studies.gout.trian: not a valid key (set in
config/mine.yaml); did you mean 'train'?`).
"""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import jsonschema
import yaml
from referencing import Registry, Resource

from mskdx.errors import ConfigError

PathLike = str | os.PathLike[str]

REPO = Path(__file__).resolve().parents[3]
#: the workflow's own config, read first (Snakefile's `configfile:`)
DEFAULT_CONFIG = REPO / "config" / "config.yaml"
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def deep_merge(base: Mapping, override: Mapping) -> dict:
    """Return `base` updated by `override` recursively (mappings merge, other values replace),
    as Snakemake's `update_config` merges overlays."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_config_file(path: PathLike) -> dict:
    """One YAML config file as a mapping; a clear error for a missing or malformed file."""
    try:
        with open(path) as fh:
            data = yaml.safe_load(fh) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: top level is {type(data).__name__}; expected a mapping")
    return dict(data)


def load_config(overlays: Sequence[PathLike] = (), *, base: PathLike | None = DEFAULT_CONFIG):
    """The workflow's config as Snakemake builds it: `base`, then each overlay, checked.

    Returns the merged config with the schema's defaults filled in.

    Raises:
        ConfigError: an unreadable file or the first schema error, in one line naming the file
            that set the offending value and the key path.
    """
    files = [base] if base is not None else []
    seen = {Path(base).resolve()} if base is not None else set()
    for path in overlays:  # the base named again (as Snakemake users do) is read once
        if Path(path).resolve() not in seen:
            files.append(path)
    sources = [(str(path), read_config_file(path)) for path in files]
    config: dict = {}
    for _, data in sources:
        config = deep_merge(config, data)
    validate(config, sources)
    return config


def _schema() -> dict:
    with open(SCHEMA) as fh:
        return yaml.safe_load(fh)


def _validator():
    """A 2020-12 validator of the config schema that fills in its defaults."""
    schema = _schema()
    schema["$id"] = SCHEMA.as_uri()
    registry = Registry().with_resource(SCHEMA.as_uri(), Resource.from_contents(schema))
    base = jsonschema.Draft202012Validator
    validate_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if isinstance(sub, Mapping) and "default" in sub:
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    extended = jsonschema.validators.extend(base, {"properties": set_defaults})
    return extended(schema, registry=registry)


def validate(config: dict, sources: Sequence[tuple[str, Mapping]] = ()) -> None:
    """Check `config` (filled in with the schema's defaults, in place) against the schema.

    `sources` are the (file, its own mapping) pairs the config was merged from, in order; they
    name the file that set an offending value.

    Raises:
        ConfigError: one line for the first error (the deepest, most specific one).
    """
    validator = _validator()
    errors = list(validator.iter_errors(config))
    if not errors:
        return
    error = jsonschema.exceptions.best_match(errors)
    raise ConfigError(describe_error(error, sources))


def _key_path(parts: Sequence) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def set_by(path: Sequence, sources: Sequence[tuple[str, Mapping]]) -> str | None:
    """The last of `sources` whose own mapping holds the key path `path`."""
    for name, data in reversed(sources):
        node: object = data
        for part in path:
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                node = node[part]
            else:
                break
        else:
            return name
    return None


def _where(path: Sequence, sources) -> str:
    name = set_by(path, sources)
    return f" (set in {name})" if name else ""


#: keys that moved: (parent key, old key) -> the new key path under the study
RENAMED = {("evaluate", "best_arm"): "comparison.reference"}


def describe_error(error: jsonschema.ValidationError, sources=()) -> str:
    """One line for a schema error: key path, file, the problem and the expectation."""
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        allowed = set(error.schema.get("properties") or {})
        extra = [k for k in error.instance if k not in allowed]
        if extra:
            key = extra[0]
            moved = RENAMED.get((path[-1] if path else None, key))
            if moved:  # issue 37: one study key, e.g. studies.gout.evaluate.best_arm
                new = _key_path([*path[:-1], *moved.split(".")])
                where = _where([*path, key], sources)
                return (
                    f"config: {_key_path([*path, key])}: renamed to {new}{where}; set {new} (an "
                    "arm named in advance, or auto) instead"
                )
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}?" if close else f"expected one of {sorted(allowed)}"
            where = _where([*path, key], sources)
            return f"config: {_key_path([*path, key])}: not a valid key{where}; {hint}"
    if error.validator == "required":
        return f"config: {_key_path(path)}: {error.message}{_where(path, sources)}"
    value = repr(error.instance)
    if len(value) > 60:
        value = value[:57] + "..."
    expected = error.message
    if error.validator == "enum":
        expected = f"expected one of {error.validator_value}"
    elif error.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        expected = f"expected {error.validator} {error.validator_value}"
    elif error.validator == "type":
        expected = f"expected {error.validator_value}"
    return f"config: {_key_path(path)}={value}{_where(path, sources)}: {expected}"
