"""Read the ultrasound region record (SequenceOfUltrasoundRegions, 0018,6011) of a file."""

from __future__ import annotations

import os
from pathlib import Path

from mskdx.ingest.parse import no_bare_errors, quiet_pydicom, read_dataset
from mskdx.ingest.preprocess import RegionRecord


def read_ultrasound_regions(path: str | os.PathLike[str]) -> list[RegionRecord]:
    """The items of the file's SequenceOfUltrasoundRegions (0018,6011), [] if it has none.

    Values are returned as written; whether they are usable for the pixels is decided by
    `mskdx.ingest.preprocess.record_regions`. An item missing a location is left out.
    """
    path = Path(path)
    with quiet_pydicom(), no_bare_errors(path):
        ds, _ = read_dataset(path)
        out = []
        for item in ds.get("SequenceOfUltrasoundRegions") or []:
            try:
                x0, y0, x1, y1 = (
                    int(item[k].value)
                    for k in (
                        "RegionLocationMinX0",
                        "RegionLocationMinY0",
                        "RegionLocationMaxX1",
                        "RegionLocationMaxY1",
                    )
                )
            except (KeyError, TypeError, ValueError):
                continue
            fmt, kind = item.get("RegionSpatialFormat"), item.get("RegionDataType")
            out.append(
                RegionRecord(
                    None if fmt is None else int(fmt),
                    None if kind is None else int(kind),
                    x0,
                    y0,
                    x1,
                    y1,
                )
            )
        return out
