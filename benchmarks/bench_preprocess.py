"""Preprocessing throughput: our ultrasound crop against a straightforward per-image reference.

Both crop the same decoded 1024x768 synthetic screen captures to 700x320; the reference segments
at full resolution (what one writes first: Otsu, opening, closing, largest component), ours works
on 8x8 block statistics (texture) with the same kind of operations. "ours" is the image finder
alone; "ours+record" is what extraction runs (region record read and checked, finder run for the
IoU and inside the record, flags). Prints images/s per core and the ratio, side by side in one run.
With --paper it also times the whole extraction stage (decode + de-identify + crop + cache) of the
paper-preset gout cohort (2,401 images) on all cores. Not a test: numbers depend on the machine.

    python benchmarks/bench_preprocess.py [--images 60] [--paper]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage import filters, measure, morphology

from mskdx.ingest import dicom, us_regions
from mskdx.ingest.extract import extract_study
from mskdx.ingest.preprocess import crop_regions, crop_ultrasound
from mskdx.synth import synthesize_gout

# the gout spec the extraction tests use, shared with them
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))
from study_specs import GOUT  # noqa: E402


def reference_crop(frame: np.ndarray, width: int = 700, height: int = 320) -> np.ndarray:
    """The straightforward version: full-resolution Otsu, opening, closing, largest component."""
    mask = frame > filters.threshold_otsu(frame) * 0.5
    mask = ndi.binary_opening(mask, morphology.disk(12))
    mask = ndi.binary_closing(mask, morphology.disk(16))
    mask = ndi.binary_fill_holes(mask)
    region = max(measure.regionprops(measure.label(mask)), key=lambda r: r.area)
    r0, c0, _, c1 = region.bbox
    x0 = int(np.clip((c0 + c1) // 2 - width // 2, 0, frame.shape[1] - width))
    y0 = int(np.clip(r0, 0, frame.shape[0] - height))
    return np.clip(frame[y0 : y0 + height, x0 : x0 + width], 0, 255).astype(np.uint8)


def rate(fn, frames) -> float:
    """Images per second of this process's CPU time (per core: the loop is single-threaded), so
    that other load on the machine does not count; wall-clock rates are printed beside."""
    start, wall = time.process_time(), time.perf_counter()
    for frame in frames:
        fn(frame)
    cpu, wall = time.process_time() - start, time.perf_counter() - wall
    print(f"  ({len(frames)} images: {cpu:.2f} s CPU, {wall:.2f} s wall)")
    return len(frames) / cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--paper", action="store_true", help="also time the paper-preset cohort")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        cohort = Path(tmp) / "gout"
        synthesize_gout(cohort, patients_gout=6, patients_control=6, images=args.images, seed=5)
        files = sorted((cohort / "dicom").rglob("*.dcm"))
        pairs = [
            (f, records)
            for path in files
            for records in [us_regions.read_ultrasound_regions(path)]
            for f in dicom.read_frames(path)
            if f.shape == (768, 1024)  # the target is at 1024x768 (the cohort has 640x480 too)
        ]
        frames = [f for f, _ in pairs]
        ours = rate(lambda f: crop_ultrasound(f, width=700, height=320), frames)
        full = rate(lambda p: crop_regions(p[0], width=700, height=320, records=p[1]), pairs)
        ref = rate(reference_crop, frames)
        print(f"{'method':<12}{'images':>8}{'img/s/core':>12}")
        print(f"{'reference':<12}{len(frames):>8}{ref:>12.1f}")
        print(f"{'ours':<12}{len(frames):>8}{ours:>12.1f}")
        print(f"{'ours+record':<12}{len(frames):>8}{full:>12.1f}")
        print(
            f"ratio ours/reference: {ours / ref:.1f}x, ours+record/reference: {full / ref:.1f}x "
            f"(target >= 50 img/s/core: {'ok' if min(ours, full) >= 50 else 'MISS'})"
        )
        if args.paper:
            paper = Path(tmp) / "paper"
            start = time.perf_counter()
            synthesize_gout(paper, patients_gout=149, patients_control=111, images=2401, seed=1)
            made = time.perf_counter() - start
            out = Path(tmp) / "cache"
            start = time.perf_counter()
            table = extract_study(
                paper / "dicom",
                paper / "labels.csv",
                spec=GOUT,
                masks_path=paper / "masks.npz",
                on_error="stop",
                key_env="MSKDX_PSEUDONYM_KEY",
                threads=cores,
                images=out / "images.npy",
                masks=out / "masks.npy",
                manifest=out / "manifest.csv",
                refused=out / "refused.csv",
            )
            took = time.perf_counter() - start
            print(
                f"paper preset: {len(table)} images generated in {made:.0f} s; extracted and "
                f"cropped in {took:.0f} s on {cores} cores (target < 120 s: "
                f"{'ok' if took < 120 else 'MISS'})"
            )


if __name__ == "__main__":
    main()
