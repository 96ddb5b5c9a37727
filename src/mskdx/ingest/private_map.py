"""The private file map: the way back from file keys and pseudonyms to real paths and IDs."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from mskdx.errors import MskdxError
from mskdx.ingest import deid
from mskdx.ingest.dicom import DicomHeader
from mskdx.ingest.refusals import Refusal
from mskdx.io import write_table

#: columns of the private file map
PRIVATE_COLUMNS = ["key", "kind", "reason", "path", "patient_id", "message"]
_TERMINAL_LINES = 20  # refused files or patients named on the terminal; the rest in the map


class PrivateMap:
    """The way back from keys to real files and PatientIDs: `private/<study>/file_map.csv`.

    It holds PHI (paths whose folder names hold IDs and dates, PatientIDs), so it lives outside
    results/ (git-ignored, never in the report) and is rewritten by every extraction run.
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self.rows: list[dict[str, str]] = []

    def add_refusals(self, refusals: list[Refusal]) -> None:
        for r in refusals:
            self.rows.append(
                {
                    "key": f"F-{r.key}",
                    "kind": "refused file",
                    "reason": str(r.reason),
                    "path": os.path.abspath(r.path),
                    "patient_id": "",
                    "message": r.message,
                }
            )

    def add_patients(self, unlabelled: dict[str, list[DicomHeader]], key: bytes) -> None:
        for pid, files in sorted(unlabelled.items()):
            self.rows.append(
                {
                    "key": deid.patient_pseudonym(pid, key),
                    "kind": "unlabelled patient",
                    "reason": "no_label",
                    "path": os.path.abspath(files[0].path.parent),
                    "patient_id": pid,
                    "message": f"{len(files)} files; no row in the label sheet",
                }
            )

    def write(self) -> None:
        if self.path is not None:
            write_table(pd.DataFrame(self.rows, columns=PRIVATE_COLUMNS), self.path)

    def attach(self, err: MskdxError, rows: list[Refusal] | None = None) -> MskdxError:
        """Give `err` a `terminal` text: the real paths behind its keys (never logged)."""
        wanted = {f"F-{r.key}" for r in rows} if rows is not None else None
        shown = [r for r in self.rows if wanted is None or r["key"] in wanted]
        if not shown:
            return err
        lines = [f"  {r['key']} = {r['path']}" for r in shown[:_TERMINAL_LINES]]
        if len(shown) > _TERMINAL_LINES:
            lines.append(f"  ... and {len(shown) - _TERMINAL_LINES} more")
        where = f"; all of them in {self.path} (holds PHI: keep it private)" if self.path else ""
        err.terminal = "real paths of the keys above" + where + ":\n" + "\n".join(lines)  # type: ignore[attr-defined]
        return err
