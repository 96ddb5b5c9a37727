"""predict's private map: the way back from every pseudonym to the patient, study and file.

`mskdx predict` writes pseudonyms only (`P-`, `I-`, `F-`) into results/ and the logs; the map
(`Layout.predict_private_map`: `private/<study>/predict/<arm>/file_map.csv`, one home whichever
way predict runs) holds the rest and is PHI: for every scored patient and image its PatientID,
StudyInstanceUID, AccessionNumber, SOPInstanceUID (and frame) and source path, beside the rows
the extraction wrote for refused files. A clinician looks a result up there by its pseudonym.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from mskdx.deploy.sources import Source
from mskdx.ingest.private_map import PRIVATE_COLUMNS
from mskdx.io import read_table, write_table

PathLike = str | os.PathLike[str]

#: the map's columns: the extraction's, then the identifiers of the scored instances
MAP_COLUMNS = [
    *PRIVATE_COLUMNS,
    "study_instance_uid",
    "accession_number",
    "sop_instance_uid",
    "frame",
]


def scored_rows(sources: Mapping[str, Source], note: str = "") -> pd.DataFrame:
    """One row per scored image and one per scored patient (its first image's study)."""
    from pydicom import dcmread

    headers: dict[Path, object] = {}
    rows = []
    for image_id in sorted(sources):
        s = sources[image_id]
        if s.path not in headers:
            headers[s.path] = dcmread(s.path, stop_before_pixels=True)
        ds = headers[s.path]
        rows.append(
            {
                "key": image_id,
                "kind": "scored image",
                "reason": "",
                "path": os.path.abspath(s.path),
                "patient_id": str(ds.get("PatientID", "") or ""),
                "message": f"patient {s.patient}{note}",
                "study_instance_uid": s.study_instance_uid,
                "accession_number": str(ds.get("AccessionNumber", "") or ""),
                "sop_instance_uid": s.sop_instance_uid,
                "frame": s.frame,
                "_patient": s.patient,
            }
        )
    images = pd.DataFrame(rows, columns=[*MAP_COLUMNS, "_patient"])
    patients = []
    for patient, group in images.groupby("_patient", sort=True):
        patients.append(
            {
                "key": patient,
                "kind": "scored patient",
                "reason": "",
                "path": os.path.commonpath(list(group["path"])),
                "patient_id": ";".join(sorted(set(group["patient_id"]))),
                "message": f"{len(group)} images scored{note}",
                "study_instance_uid": ";".join(sorted(set(group["study_instance_uid"]))),
                "accession_number": ";".join(sorted(set(group["accession_number"]) - {""})),
                "sop_instance_uid": "",
                "frame": "",
            }
        )
    return pd.concat(
        [pd.DataFrame(patients, columns=MAP_COLUMNS), images[MAP_COLUMNS]], ignore_index=True
    )


def write_private_map(path: PathLike, sources: Mapping[str, Source], note: str = "") -> Path:
    """Add the scored patients and images to the extraction's map at `path` (its refused
    files stay); rewritten whole, atomically."""
    path = Path(path)
    refused = (
        read_table(path).astype(str).reindex(columns=MAP_COLUMNS, fill_value="")
        if path.is_file()
        else pd.DataFrame(columns=MAP_COLUMNS)
    )
    refused = refused[~refused["kind"].isin(["scored image", "scored patient"])]
    table = pd.concat([scored_rows(sources, note), refused], ignore_index=True)
    write_table(table, path)
    return path
