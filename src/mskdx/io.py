"""Atomic file writing and schema-checked tables.

Every output is written to a temporary name in the same folder and renamed into place, so a
killed job never leaves a file that a rerun could take as complete.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import yaml

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "workflow" / "schemas"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; outputs are ordinary files
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_npy(path: str | os.PathLike[str], array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array, allow_pickle=False)


def load_schema(name: str) -> dict:
    """Load `workflow/schemas/<name>.schema.yaml`."""
    with open(SCHEMA_DIR / f"{name}.schema.yaml") as fh:
        return yaml.safe_load(fh)


def table_columns(schema: str) -> list[str]:
    """The columns of a table schema in the order its properties list them: the order the
    table is written in (the schema is the one owner of an exchanged table's columns)."""
    return list(load_schema(schema).get("properties", {}))


def validate_table(df: pd.DataFrame, schema: str, source: str | os.PathLike[str] = "") -> None:
    """Check every row of `df` against a table schema; raise ValueError naming the row."""
    spec = load_schema(schema)
    missing = [c for c in spec.get("required", []) if c not in df.columns]
    if missing:
        raise ValueError(
            f"{source or schema}: missing columns {missing}; expected {spec['required']}"
        )
    validator = jsonschema.Draft7Validator(spec)
    records = df.astype(object).where(df.notna(), None).to_dict(orient="records")
    for i, row in enumerate(records):
        row = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
        error = jsonschema.exceptions.best_match(validator.iter_errors(row))
        if error is not None:
            raise ValueError(f"{source or schema}: row {i}: {error.message}")


def write_table(df: pd.DataFrame, path: str | os.PathLike[str], schema: str | None = None) -> None:
    """Validate `df` against `schema` (if given) and write it as CSV atomically."""
    if schema is not None:
        validate_table(df, schema, path)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, lineterminator="\n")


def read_table(path: str | os.PathLike[str], schema: str | None = None) -> pd.DataFrame:
    """Read a CSV table written by `write_table`, validating it if `schema` is given."""
    dtype = None
    if schema is not None:
        props = load_schema(schema).get("properties", {})
        dtype = {c: str for c, p in props.items() if "string" in np.atleast_1d(p.get("type", []))}
    df = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype=dtype)
    if schema is not None:
        validate_table(df, schema, path)
    return df


def log_to(path: str | os.PathLike[str]) -> None:
    """Send stderr and logging of a rule's script to its log file (Snakemake `log:`)."""
    import logging
    import sys

    sys.stderr = open(path, "w", buffering=1)  # noqa: SIM115 - lives as long as the job
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    logging.captureWarnings(True)
    sys.excepthook = _report_uncaught(str(path))


def _tell_terminal(err: BaseException) -> None:
    """First line of an expected failure and its `terminal` text (real paths) on the terminal."""
    import sys

    terminal = sys.__stderr__ or sys.stderr
    first, _, rest = str(err).partition("\n")
    more = f"\n{rest}" if rest else ""
    print(f"mskdx: {type(err).__name__}: {first}{more}", file=terminal)
    extra = getattr(err, "terminal", "")
    if extra:
        print(f"mskdx: {extra}", file=terminal)
    terminal.flush()


def _report_uncaught(log: str):
    """An excepthook for a rule's script: traceback to the log, the cause to the terminal.

    Snakemake shows a failed job as its rule and log file only ("message: None"). An expected
    failure (MskdxError, PHI-safe by design) prints its message; any other exception prints its
    type and where it was raised, not its text, which may name input files.
    """
    import sys
    import traceback

    def hook(kind, err, tb) -> None:
        traceback.print_exception(kind, err, tb)  # sys.stderr: the job's log
        sys.stderr.flush()
        from mskdx.errors import MskdxError

        if isinstance(err, MskdxError):
            _tell_terminal(err)
            return
        frames = traceback.extract_tb(tb)
        where = f" at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno}" if frames else ""
        terminal = sys.__stderr__ or sys.stderr
        print(
            f"mskdx: {kind.__name__}{where} (its message is in {log}: it may name input files)",
            file=terminal,
        )
        terminal.flush()

    return hook


def exit_on_error(err: Exception) -> None:
    """End a rule's script on an expected (MskdxError) failure, visibly and without PHI.

    The message (keys, never paths under the input folder) goes to the log; its first line,
    prefixed "mskdx:", and the error's `terminal` text (real paths behind the keys, which must
    not reach a log under results/) go to the terminal, where Snakemake itself shows only the
    rule and its log file. Exit status 1 fails the job.
    """
    import logging

    logging.getLogger("mskdx").error("%s: %s", type(err).__name__, err)
    _tell_terminal(err)
    raise SystemExit(1)


def read_predictions(paths: Sequence[str | Path]) -> pd.DataFrame:
    """Concatenate prediction tables (schema `predictions`) of several jobs."""
    return pd.concat([read_table(p, "predictions") for p in paths], ignore_index=True)
