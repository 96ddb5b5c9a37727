"""Cost of the paper preset's training, measured on a bounded slice and projected to the full run.

    python benchmarks/bench_paper.py --device cuda                  # one fold of every arm, GPU
    python benchmarks/bench_paper.py --device cpu --scale 0.1 --epochs 2 --images-scale 0.05

The slice: fold 0 of every gout arm and both OLT arms, each a real `mskdx.learn.train.train_fold`
job in its own Python process (as the workflow runs it: process start-up, imports, CUDA
initialisation and compilation included), on banks of the paper preset's shapes (config/config.yaml:
2,401 gout crops of 700x320, OLT T1 595 and T2 665 slices of 224x224; the cohort sizes and the split
method of the preset), for `--epochs` epochs (default 3). The pixels are noise with a bright square
on positives: the cost of an epoch does not depend on them, and the loss stays finite.

Projection of one job at the preset's E epochs, from its history.csv and wall clock:
    overhead (wall - sum of epoch seconds: start-up, loading, outputs) + first epoch
    + (E - 1) x mean of the later epochs;
the full run = sum over gout arms of 5 folds x their job + both OLT jobs, the jobs one after the
other (the workflow's default profile gives each training job the one GPU), plus Grad-CAM
(one process per job: its start-up, measured here as `python -c "import torch, mskdx.learn.train"`
plus CUDA initialisation, times the number of jobs) and `--cpu-stages` seconds for synthesis,
extraction, tables and figures (default: 242 s, the 2-core development machine's synthesis 189 s +
extraction 53 s of 2026-11-26; an upper bound for a 16-core GPU machine). Printed beside the target:
the whole paper preset <= 15 minutes on one H100.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from mskdx.io import read_table, save_npy, write_table
from mskdx.learn.splits import holdout_split, kfold_splits

TARGET_S = 15 * 60
ROOT = Path(__file__).resolve().parents[1]

JOB = textwrap.dedent("""
    import json, sys
    from mskdx.learn.train import train_fold
    train_fold(**json.loads(sys.argv[1]))
""")
STARTUP = textwrap.dedent("""
    import sys, torch, mskdx.learn.train
    if sys.argv[1] == "cuda":
        torch.zeros(1, device="cuda"); torch.cuda.synchronize()
""")


def build_study(folder: Path, study: str, cfg: dict, args) -> dict:
    """Write images.npy, manifest.csv and splits.csv of the preset's shapes for one study."""
    syn, spec = cfg["synthetic"][study], cfg["studies"][study]
    rng = np.random.default_rng(0)
    if study == "gout":
        h = round(spec["preprocess"]["crop_height"] * args.scale)
        w = round(spec["preprocess"]["crop_width"] * args.scale)
        n_pos, n_neg = syn["patients_gout"], syn["patients_control"]
        total = max(8, round(syn["images"] * args.images_scale))
        series = {"dorsal": total}
    else:
        h = w = round(spec["preprocess"]["size"] * args.scale)
        n_pos, n_neg = syn["subjects_patient"], syn["subjects_healthy"]
        series = {
            s: max(8, round((c["patient"] + c["healthy"]) * args.images_scale))
            for s, c in syn["images"].items()
        }
    n_pos = max(3, round(n_pos * min(1.0, args.images_scale * 4)))
    n_neg = max(3, round(n_neg * min(1.0, args.images_scale * 4)))
    patients = [f"P-{i:010x}" for i in range(n_pos + n_neg)]
    label_of = {p: int(i < n_pos) for i, p in enumerate(patients)}
    rows, images = [], []
    for name, count in series.items():
        for k in range(count):
            patient = patients[k % len(patients)]
            label = label_of[patient]
            img = rng.integers(0, 120, size=(h, w), dtype=np.uint8)
            if label:
                y, x = rng.integers(0, h - h // 8), rng.integers(0, w - w // 8)
                img[y : y + h // 8, x : x + w // 8] = 230
            rows.append(
                {
                    "index": len(images),
                    "image_id": f"I-{len(images):012x}",
                    "patient": patient,
                    "study": study,
                    "series": name,
                    "frame": 0,
                    "label": label,
                    "checksum": f"{len(images):064x}",
                }
            )
            images.append(img)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {k: folder / f"{k}.{ext}" for k, ext in (("images", "npy"), ("manifest", "csv"))}
    save_npy(paths["images"], np.stack(images))
    write_table(pd.DataFrame(rows), paths["manifest"], schema="manifest")
    labels = pd.Series(label_of).sort_index()
    split = spec["splits"]
    if split["method"] == "kfold":
        splits = kfold_splits(
            labels,
            folds=split["folds"],
            validation_fraction=split["validation_fraction"],
            seed=cfg["seed"],
        )
    else:
        splits = holdout_split(labels, fractions=split["fractions"], seed=cfg["seed"])
    paths["splits"] = folder / "splits.csv"
    write_table(splits, paths["splits"], schema="splits")
    return paths | {"shape": (h, w), "images_n": len(images)}


def run_job(paths: dict, folder: Path, study: str, arm: str, arm_spec: dict, train: dict, args):
    arm_spec = dict(arm_spec)
    if arm_spec.get("architecture") == "resnet50":
        arm_spec["weights"] = "none"  # the cost does not depend on the starting weights
    kwargs = {
        "images": str(paths["images"]),
        "manifest": str(paths["manifest"]),
        "splits": str(paths["splits"]),
        "study": study,
        "arm": arm,
        "fold": 0,
        "arm_spec": arm_spec,
        "train_spec": {**train, "epochs": args.epochs, "device": args.device},
        "seed": 1,
        "threads": args.threads,
        "checkpoint": str(folder / "checkpoint_final.pt"),
        "history": str(folder / "history.csv"),
        "predictions": str(folder / "predictions.csv"),
    }
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", JOB, json.dumps(kwargs)],
        check=True,
        timeout=args.job_timeout,
        env=os.environ | {"PYTHONPATH": str(ROOT / "src")},
    )
    wall = time.perf_counter() - t0
    seconds = read_table(folder / "history.csv")["seconds"].to_numpy(float)
    return wall, seconds


def startup_seconds(device: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", STARTUP, device],
        check=True,
        timeout=300,
        env=os.environ | {"PYTHONPATH": str(ROOT / "src")},
    )
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "config" / "config.yaml"))
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--epochs", type=int, default=3, help="epochs measured per job (>= 2)")
    parser.add_argument("--scale", type=float, default=1.0, help="image size factor (CPU check)")
    parser.add_argument("--images-scale", type=float, default=1.0, help="cohort size factor")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--job-timeout", type=float, default=600)
    parser.add_argument("--cpu-stages", type=float, default=242.0, help="seconds; see above")
    parser.add_argument("--compile", action="store_true", help="train.compile: true")
    parser.add_argument("--workdir", default=None, help="default: a temporary folder")
    parser.add_argument(
        "--only", nargs="+", default=None, help="measure only these jobs (study/arm; CPU checks)"
    )
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (the first epoch includes warm-up)")
    cfg = yaml.safe_load(Path(args.config).read_text())
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_paper_"))
    print(
        f"paper preset slice on {args.device}: fold 0 of every arm, {args.epochs} epochs each, "
        f"image scale {args.scale}, cohort scale {args.images_scale}; work folder {work}"
    )
    startup = startup_seconds(args.device)
    print(f"process start-up (python, torch, mskdx, CUDA init): {startup:.1f} s")
    header = (
        f"{'job':<12} {'input':>10} {'wall s':>7} {'overhead':>8} {'epoch 1':>8} {'later':>7} "
        f"{'E':>3} {'x folds':>7} {'projected s':>11}"
    )
    print(header)
    print("-" * len(header))
    jobs, total_train, n_jobs = [], 0.0, 0
    for study in ("gout", "olt"):
        spec = cfg["studies"][study]
        if args.only and not any(j.startswith(f"{study}/") for j in args.only):
            continue
        paths = build_study(work / study / "data", study, cfg, args)
        train = {**spec["train"], "compile": bool(args.compile)}
        folds = spec["splits"]["folds"] if spec["splits"]["method"] == "kfold" else 1
        for arm, arm_spec in spec["arms"].items():
            if args.only and f"{study}/{arm}" not in args.only:
                continue
            wall, seconds = run_job(paths, work / study / arm, study, arm, arm_spec, train, args)
            epochs = int(spec["train"]["epochs"])
            overhead = wall - float(seconds.sum())
            later = float(seconds[1:].mean())
            job_s = overhead + float(seconds[0]) + (epochs - 1) * later
            projected = folds * job_s
            total_train += projected
            n_jobs += folds
            h, w = paths["shape"]
            print(
                f"{study + '/' + arm:<12} {f'{h}x{w}':>10} {wall:7.1f} {overhead:8.1f} "
                f"{seconds[0]:8.2f} {later:7.2f} {epochs:3d} {folds:7d} {projected:11.1f}"
            )
            sys.stdout.flush()
            jobs.append(
                {
                    "job": f"{study}/{arm}",
                    "input": [h, w],
                    "images": paths["images_n"],
                    "wall_s": wall,
                    "overhead_s": overhead,
                    "epoch_s": seconds.tolist(),
                    "epochs": epochs,
                    "folds": folds,
                    "projected_s": projected,
                }
            )
    gradcam = n_jobs * startup
    full = total_train + gradcam + args.cpu_stages
    verdict = "ok" if full <= TARGET_S else "MISS"
    partial = ", only the jobs measured" if args.only else ""
    print(
        f"\nprojected training {total_train:.0f} s ({n_jobs} jobs, one after the other) + "
        f"Grad-CAM start-ups {gradcam:.0f} s + CPU stages {args.cpu_stages:.0f} s "
        f"= {full:.0f} s ({full / 60:.1f} min){partial}; "
        f"target <= {TARGET_S / 60:.0f} min on one H100: "
        f"{verdict if args.device == 'cuda' and args.scale == 1 else 'not judged (not full scale)'}"
    )
    if args.json:
        result = {
            "device": args.device,
            "epochs_measured": args.epochs,
            "scale": args.scale,
            "images_scale": args.images_scale,
            "startup_s": startup,
            "jobs": jobs,
            "projected_training_s": total_train,
            "projected_gradcam_s": gradcam,
            "cpu_stages_s": args.cpu_stages,
            "projected_full_s": full,
            "target_s": TARGET_S,
        }
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
