"""Cost of the DICOM tree inventory (mskdx.ingest.inputs.tree_digest) that the extraction depends
on.

The workflow computes it whenever it schedules extraction from a user's folder (a param of
extract_images), so it must stay small next to Snakemake's own start-up for large exports.
Builds a tree of N empty files in a layout like an export (patient/study/series/image) and
times the digest, cold (first walk) and warm (file system cache filled).

    python benchmarks/bench_inventory.py --files 100000 [--root /tmp/inventory-bench]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from mskdx.ingest.inputs import tree_digest


def build(root: Path, files: int) -> None:
    per_series = 50
    for i in range(files):
        patient, rest = divmod(i, 500)
        series, image = divmod(rest, per_series)
        folder = root / f"PAT{patient:05d}" / "20240131" / f"SER{series:03d}"
        if image == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"IMG{image:05d}").touch()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--root", type=Path, default=None)
    args = parser.parse_args()
    base = args.root or Path(tempfile.mkdtemp(prefix="mskdx-inventory-"))
    try:
        start = time.perf_counter()
        build(base, args.files)
        print(f"built {args.files} files in {time.perf_counter() - start:.1f} s")
        for run in ("first", "second"):
            start = time.perf_counter()
            digest = tree_digest(base)
            print(f"{run} digest: {time.perf_counter() - start:.2f} s ({digest})")
    finally:
        if args.root is None:
            shutil.rmtree(base)


if __name__ == "__main__":
    main()
