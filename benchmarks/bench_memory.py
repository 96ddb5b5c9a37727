"""Peak memory (VmHWM) of the paper preset's jobs, each in its own process (issue 23).

    python benchmarks/bench_memory.py extract --images 2401          # gout extraction, 1024x768
    python benchmarks/bench_memory.py train --arm blocks2 --images 2401 --steps 1
    python benchmarks/bench_memory.py train --arm resnet50 --images 595 --steps 1
    python benchmarks/bench_memory.py train --arm resnet50 --images 5950 --steps 0  # whole epoch
    python benchmarks/bench_memory.py train ... --bank resident      # the old in-RAM bank

`extract` synthesises a gout cohort of that many 1024x768 captures (not timed; `--synth-jobs`
shards of other seeds side by side, merged) and runs the
extraction stage (`extract_study`, 2 processes) in a child process. `train` writes a cache of
random uint8 images (700x320 for the gout arms, 224x224 for ResNet50) and runs a training job's
data path in a child: the fold's rows (`CacheRows`), image_zscore / ImageNet coefficients over
every image, the `DeviceImages` bank, then `--steps` batches of `train_one_epoch` (batch 32) and
one batch of `predict`: the job's peak without its hours of epochs. `--steps 0` trains a whole
epoch over a fold's training share (60% for ResNet50, as OLT's split; 80% for the gout arms' 5
folds) and predicts the rest. Each child prints its own peak resident set (VmHWM, so file
pages a memory map touched would count too; ru_maxrss beside it, which on Linux also holds the
high-water mark of the parent that started it), the largest of its own worker processes'
(ru_maxrss of the extraction's decoders), the CPU time of both and, for `train`, its resident
set after each phase (the peak so far, anonymous memory and file pages, from /proc/self/status).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def child_extract(folder: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "unit"))
    from study_specs import GOUT

    from mskdx.ingest.extract import extract_study

    out = folder / "cache"
    table = extract_study(
        folder / "dicom",
        folder / "labels.csv",
        spec=GOUT,
        masks_path=folder / "masks.npz",
        on_error="stop",
        key_env="MSKDX_PSEUDONYM_KEY",
        threads=2,
        images=out / "images.npy",
        masks=out / "masks.npy",
        manifest=out / "manifest.csv",
        refused=out / "refused.csv",
    )
    report({"images": len(table), "cache_mb": (out / "images.npy").stat().st_size / 2**20})


def status_mb() -> dict:
    """This process's resident set now, its peak so far, and the now split into anonymous memory
    and file pages (a memory map's), from /proc/self/status, in MB."""
    fields = {"VmRSS": "rss", "VmHWM": "peak", "RssAnon": "anon", "RssFile": "file"}
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in fields:
            out[fields[key]] = round(int(value.split()[0]) / 1024, 1)
    return out


def child_train(folder: Path, arm: str, steps: int, bank_kind: str) -> None:
    import torch

    from mskdx.learn import arms, augment
    from mskdx.learn.device import DeviceImages, DevicePlan
    from mskdx.learn.job_data import CacheRows
    from mskdx.learn.loop import predict, train_one_epoch

    torch.set_num_threads(2)
    phases = {"start": status_mb()}
    path = folder / "images.npy"
    n = np.load(path, mmap_mode="r").shape[0]
    rows = np.random.default_rng(0).permutation(n)  # table order is not file order
    images = CacheRows(path, rows)
    if bank_kind == "resident":  # before issue 23: the fold's rows read into one array
        images = np.asarray(images)
    labels = np.arange(n) % 2
    kind = "imagenet" if arm == "resnet50" else "image_zscore"
    norm = augment.make_normalization(kind, images, np.arange(n))
    plan = DevicePlan(torch.device("cpu"))
    bank = DeviceImages.for_plan(images, labels, norm, plan)
    phases["bank"] = status_mb()
    spec = (
        {"architecture": "resnet50", "weights": "none"}
        if arm == "resnet50"
        else {"architecture": "resnet_blocks", "blocks": int(arm.removeprefix("blocks"))}
    )
    model = arms.build(spec)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    phases["model"] = status_mb()
    order = torch.randperm(n)
    # steps 0: a whole epoch, over the training share of a fold (OLT 60/20/20, gout 5-fold), and
    # a prediction of the rest (validation and test rows)
    n_train = round(n * (0.6 if arm == "resnet50" else 0.8)) if steps == 0 else n
    train, rest = order[:n_train], order[n_train:] if steps == 0 else order[:32]
    params = augment.sample_params(
        n_train, augment.AugmentSpec(translate=0.1), *images.shape[1:], None
    )
    first = train_one_epoch(model, optimizer, bank, train[:32], params[:32], batch_size=32)
    phases["step 1"] = status_mb()
    start, trained = time.perf_counter(), first.images
    if steps != 1:  # the other steps: --steps in all, or the rest of the epoch
        more = train_one_epoch(
            model,
            optimizer,
            bank,
            train[32:],
            params[32:],
            batch_size=32,
            max_steps=None if steps == 0 else steps - 1,
        )
        trained += more.images
        phases["epoch" if steps == 0 else f"{steps} steps"] = status_mb()
    predict(model, bank, rest, batch_size=32)
    phases["predict"] = status_mb()
    report(
        {
            "images": n,
            "cache_mb": path.stat().st_size / 2**20,
            "bank": bank_kind,
            "trained": trained,
            "predicted": len(rest),
            "train_s": round(time.perf_counter() - start, 1),
            "phases": phases,
        }
    )


def report(extra: dict) -> None:
    use = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)  # the extraction's decode processes
    print(
        json.dumps(
            {
                # VmHWM: this process's own peak. Not ru_maxrss: subprocess starts the child by
                # vfork + exec, and exec carries the parent's high-water mark into the child's
                # ru_maxrss (the parent that wrote a 5.1 GB cache through a memory map gave a 10x
                # child 5,207 MB while its own peak was 4,601 MB)
                "peak_rss_mb": status_mb()["peak"],
                "ru_maxrss_mb": round(use.ru_maxrss / 1024, 1),
                "worker_peak_rss_mb": round(workers.ru_maxrss / 1024, 1),
                "cpu_s": round(
                    use.ru_utime + use.ru_stime + workers.ru_utime + workers.ru_stime, 1
                ),
                **extra,
            }
        )
    )


def make_cache(path: Path, n: int, shape: tuple[int, int]) -> None:
    """A uint8 cache of random images, written in chunks (bounded memory here too)."""
    cache = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, *shape))
    rng = np.random.default_rng(1)
    for i in range(0, n, 256):
        cache[i : i + 256] = rng.integers(0, 256, (min(256, n - i), *shape), dtype=np.uint8)
    cache.flush()
    del cache


def _synthesise_shard(folder: Path, images: int, seed: int) -> None:
    from mskdx.synth import synthesize_gout

    gout = round(images * 149 / 2401) or 1  # the paper's 149 gout and 111 control patients
    control = round(images * 111 / 2401) or 1
    synthesize_gout(folder, patients_gout=gout, patients_control=control, images=images, seed=seed)


def synthesise(folder: Path, images: int, jobs: int) -> None:
    """A gout cohort of `images` captures (not timed). With jobs > 1, `jobs` shards of other
    seeds, synthesised side by side and merged: dicom/part<k>/, one label sheet, one masks.npz
    (its keys are the files' digests, so they do not collide)."""
    if jobs <= 1:
        _synthesise_shard(folder, images, 1)
        return
    from concurrent.futures import ProcessPoolExecutor

    sizes = [images // jobs + (k < images % jobs) for k in range(jobs)]
    shards = [folder / f"shard{k}" for k in range(jobs)]
    with ProcessPoolExecutor(jobs) as pool:
        for done in [
            pool.submit(_synthesise_shard, shard, n, 1 + k)
            for k, (shard, n) in enumerate(zip(shards, sizes, strict=True))
        ]:
            done.result()
    (folder / "dicom").mkdir()
    header, rows = None, []
    with zipfile.ZipFile(folder / "masks.npz", "w", allowZip64=True) as out:
        for k, shard in enumerate(shards):
            os.replace(shard / "dicom", folder / "dicom" / f"part{k}")
            header, *lines = (shard / "labels.csv").read_text().splitlines()
            rows += lines
            with zipfile.ZipFile(shard / "masks.npz") as part:
                for info in part.infolist():
                    out.writestr(info, part.read(info))
    if len({row.split(",")[0] for row in rows}) != len(rows):
        raise SystemExit("two shards made the same patient id; use other seeds")
    (folder / "labels.csv").write_text("\n".join([header, *sorted(rows)]) + "\n")


def run_child(*args: str) -> dict:
    env = {**os.environ, "MSKDX_PSEUDONYM_KEY": "bench-key"}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode:
        raise SystemExit(proc.stderr[-4000:])
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall_s"] = round(time.perf_counter() - start, 1)
    out["load"] = os.getloadavg()[0]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["extract", "train"])
    parser.add_argument("--images", type=int, default=2401)
    parser.add_argument("--arm", default="blocks2")
    parser.add_argument(
        "--steps", type=int, default=1, help="train: batches after the first; 0: a whole epoch"
    )
    parser.add_argument("--bank", choices=["file", "resident"], default="file")
    parser.add_argument("--dir", help="work folder (default: a temporary one)")
    parser.add_argument(
        "--synth-jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="extract: processes that synthesise the cohort (shards of other seeds, merged)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.child:
        folder = Path(args.dir)
        if args.what == "extract":
            child_extract(folder)
        else:
            child_train(folder, args.arm, args.steps, args.bank)
        return
    if args.dir:
        Path(args.dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        if args.what == "extract":
            start = time.perf_counter()
            synthesise(folder, args.images, args.synth_jobs)
            print(f"synthesised {args.images} captures in {time.perf_counter() - start:.0f} s")
            out = run_child("extract", "--dir", str(folder))
        else:
            shape = (224, 224) if args.arm == "resnet50" else (320, 700)
            make_cache(folder / "images.npy", args.images, shape)
            out = run_child(
                "train",
                "--dir",
                str(folder),
                "--arm",
                args.arm,
                "--steps",
                str(args.steps),
                "--bank",
                args.bank,
            )
        print(json.dumps({"what": args.what, "arm": args.arm, **out}))


if __name__ == "__main__":
    main()
