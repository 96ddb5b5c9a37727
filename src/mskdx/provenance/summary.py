"""The few lines a finished run prints on the terminal (Snakemake's `onsuccess`): where the
outputs, the report, the crate and the logs are, and the warnings that jobs wrote to their logs
(e.g. "no validation images"), which Snakemake itself never shows."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from mskdx.provenance.records import CRATE_NAME

#: a logging line of level WARNING as mskdx.io.log_to formats it; Python warnings too
WARNING_LINE = re.compile(r"\b(WARNING|UserWarning|RuntimeWarning)\b[: ]\s*(?P<text>.*)")
MAX_WARNINGS = 20


def job_warnings(logs: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """(log file relative to `logs`, warning text) of every WARNING line in the job logs,
    each distinct text once per file, in file order."""
    root = Path(logs)
    found = []
    for path in sorted(p for p in root.rglob("*.log") if p.is_file()):
        seen = set()
        for line in path.read_text(errors="replace").splitlines():
            match = WARNING_LINE.search(line)
            if match and match["text"] not in seen:
                seen.add(match["text"])
                found.append((path.relative_to(root).as_posix(), match["text"].strip()))
    return found


def run_summary(
    results_dir: str | os.PathLike[str],
    logs: str | os.PathLike[str],
    snakemake_log: str | Sequence[str] = "",
) -> str:
    """The terminal summary of a finished run (results/ and results/logs; `snakemake_log` is
    the log file, or list of them, that Snakemake passes to onsuccess)."""
    if not isinstance(snakemake_log, str):
        snakemake_log = ", ".join(str(f) for f in snakemake_log)
    results = Path(results_dir)
    lines = ["mskdx: run complete.", f"  outputs: {results}/ (tables under <study>/tables, "
             "figures under <study>/figures, model cards <study>/model_card_<arm>.md)"]  # fmt: skip
    crate = results / CRATE_NAME
    if crate.is_file():
        lines.append(f"  provenance: {crate} (check it later with `mskdx verify {crate}`)")
    lines.append(
        f"  report: snakemake --report {results}/report.html (add the --configfile you ran with)"
    )
    lines.append(f"  job logs: {logs}/<rule>/...")
    if snakemake_log:
        lines.append(f"  Snakemake's log: {snakemake_log}")
    warnings = job_warnings(logs) if Path(logs).is_dir() else []
    if warnings:
        lines.append(f"  warnings raised in jobs ({len(warnings)}):")
        for file, text in warnings[:MAX_WARNINGS]:
            lines.append(f"    {file}: {text}")
        if len(warnings) > MAX_WARNINGS:
            lines.append(f"    ... {len(warnings) - MAX_WARNINGS} more: grep WARNING {logs}")
    else:
        lines.append("  no warnings in the job logs")
    return "\n".join(lines)
