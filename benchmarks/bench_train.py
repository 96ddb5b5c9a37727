"""Training throughput of mskdx's loop against a naive reference loop (same model, same device).

    python benchmarks/bench_train.py --scale 0.25 --steps 5            # CPU, about a minute
    python benchmarks/bench_train.py --device cuda --batch-size 256    # full scale on a GPU
    python benchmarks/bench_train.py --json out.json                   # also write the rows

naive:        a torch DataLoader over the same uint8 images whose workers apply per-sample
              torchvision transforms on CPU tensors (RandomAffine translate/rotate,
              RandomHorizontalFlip, Normalize), fp32, NCHW, plain Adam.
fast:         `mskdx.learn.loop.train_one_epoch` under the job's `DevicePlan`: the uint8
              images resident on the device, augmentation and normalization batched on the device
              (`mskdx.learn.augment.make_batch`); on CUDA bf16 autocast, channels_last, fused Adam.
fast+compile: the same with torch.compile (inductor); its compile time is reported apart.

Model FLOPs per training image = 3 x 2 x forward MACs: forward MACs from
`mskdx.learn.models.complexity` (thop convention: conv, batch norm, linear, pooling) at the
benchmark's input size, 2 FLOPs per multiply-accumulate, and the backward pass counted as twice the
forward. TFLOP/s = images/s x that. Targets on one H100 at full scale: gout 3-block at 700x320 >= 4x
naive and >= 150 TFLOP/s; ResNet50 at 224 >= 2x naive.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms as T
from torch.utils.data import DataLoader, Dataset, RandomSampler

from mskdx.learn import arms, augment, models
from mskdx.learn.device import DeviceImages, DevicePlan
from mskdx.learn.loop import train_one_epoch
from mskdx.learn.settings import TrainSettings

CASES = {
    # name: arm spec, full-size (H, W), augmentation, normalization, target (ratio, TFLOP/s)
    "gout_blocks3": (
        {"architecture": "resnet_blocks", "blocks": 3},
        (320, 700),
        augment.AugmentSpec(translate=0.1),
        "image_zscore",
        (4.0, 150.0),
    ),
    "olt_resnet50": (
        {"architecture": "resnet50", "weights": "none"},
        (224, 224),
        augment.AugmentSpec(hflip=True, rotate=10),
        "imagenet",
        (2.0, None),
    ),
}


class NaiveImages(Dataset):
    """Per-sample loading and torchvision transforms on CPU tensors, as a textbook loop does."""

    def __init__(
        self, images: np.ndarray, labels: np.ndarray, spec: augment.AugmentSpec, normalization: str
    ) -> None:
        self.images, self.labels = images, labels
        steps: list = []
        if spec.translate or spec.rotate:
            steps.append(
                T.RandomAffine(
                    degrees=spec.rotate,
                    translate=(spec.translate, spec.translate) if spec.translate else None,
                )
            )
        if spec.hflip:
            steps.append(T.RandomHorizontalFlip())
        self.transform = T.Compose(steps)
        self.normalization = normalization

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        x = torch.from_numpy(self.images[i]).unsqueeze(0)  # (1, H, W) uint8
        x = self.transform(x).float()
        if self.normalization == "imagenet":
            x = T.functional.normalize(
                x.expand(3, -1, -1) / 255, augment.IMAGENET_MEAN, augment.IMAGENET_STD
            )
        else:
            x = ((x - x.mean()) / x.std().clamp_min(1.0)).expand(3, -1, -1)
        return x.contiguous(), int(self.labels[i])


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fast_plan(device: torch.device, compile: bool) -> DevicePlan:
    """The plan a training job gets on `device` (CUDA: bf16, channels_last, fused), +compile."""
    settings = TrainSettings(
        optimizer="adam", lr=1e-4, epochs=1, batch_size=1, device=device.type, compile=compile
    )
    plan = DevicePlan.for_settings(settings, device)
    if compile and device.type != "cuda":
        plan = DevicePlan(device, compile=True)
    return plan


def bench_ours(spec, images, labels, aug, normalization, device, args, compile=False) -> tuple:
    """Images/s of the fast loop, and the seconds of its warm-up (compilation included)."""
    torch.manual_seed(0)
    plan = fast_plan(device, compile)
    model, net = plan.place(arms.build(spec))
    settings = TrainSettings(optimizer="adam", lr=1e-4, epochs=1, batch_size=args.batch_size)
    optimizer = plan.optimizer(settings, model.parameters())
    norm = augment.make_normalization(normalization, images, np.arange(len(images)))
    bank = DeviceImages.for_plan(images, labels, norm, plan)
    height, width = images.shape[1:]
    g = torch.Generator().manual_seed(0)

    def run(steps: int) -> None:
        n = steps * args.batch_size
        order = plan.to_device(torch.randint(len(images), (n,), generator=g))
        params = plan.to_device(augment.sample_params(n, aug, height, width, g))
        train_one_epoch(
            net, optimizer, bank, order, params, batch_size=args.batch_size, amp=plan.amp
        )

    t0 = time.perf_counter()
    with plan.runtime():
        run(args.warmup)
        synchronize(device)
        warmup = time.perf_counter() - t0
        t0 = time.perf_counter()
        run(args.steps)  # reads its metrics back at the end: synchronised
        synchronize(device)
    return args.steps * args.batch_size / (time.perf_counter() - t0), warmup


def bench_naive(spec, images, labels, aug, normalization, device, args) -> float:
    torch.manual_seed(0)
    model = arms.build(spec).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    total = (args.warmup + args.steps) * args.batch_size
    loader = DataLoader(
        NaiveImages(images, labels, aug, normalization),
        batch_size=args.batch_size,
        sampler=RandomSampler(range(len(images)), replacement=True, num_samples=total),
        num_workers=args.workers,
        pin_memory=device.type == "cuda",
        drop_last=True,
    )
    model.train()
    t0 = None
    for step, (x, y) in enumerate(loader):
        if step == args.warmup:
            synchronize(device)
            t0 = time.perf_counter()
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss.item()  # the textbook loop logs the loss every step
    synchronize(device)
    return args.steps * args.batch_size / (time.perf_counter() - t0), None


LOOPS = ("naive", "fast", "fast+compile")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="image size factor (1 = 700x320 gout, 224x224 ResNet50)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="default 128 on CUDA, 8 on the CPU"
    )
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 30/5)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps (default 5/2)")
    parser.add_argument("--images", type=int, default=512, help="images in the synthetic bank")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="naive DataLoader workers (default min(8, cores) on CUDA, 0 on CPU)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--loops",
        nargs="+",
        default=None,
        choices=LOOPS,
        help="default: all three on CUDA; naive and fast on the CPU (inductor compiles slowly)",
    )
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    args.batch_size = args.batch_size or (128 if cuda else 8)
    args.steps = args.steps or (30 if cuda else 5)
    args.warmup = args.warmup if args.warmup is not None else (5 if cuda else 2)
    args.loops = args.loops or (list(LOOPS) if cuda else ["naive", "fast"])
    if "naive" not in args.loops:
        args.loops = ["naive", *args.loops]  # the ratios are to naive
    args.workers = (
        args.workers if args.workers is not None else (min(8, os.cpu_count() or 1) if cuda else 0)
    )
    if args.threads:
        torch.set_num_threads(args.threads)
    if cuda:  # the naive loop gets cuDNN autotuning too, as the fast plan has
        torch.backends.cudnn.benchmark = True
    print(
        f"device: {name_of(device)}; torch {torch.__version__}; batch {args.batch_size}, "
        f"{args.warmup} warm-up + {args.steps} timed steps; naive workers {args.workers}; "
        f"loops {', '.join(args.loops)}; "
        f"scale {args.scale}"
    )
    print("FLOPs per training image = 3 x 2 x forward MACs (thop convention)\n")
    header = (
        f"{'case':<14} {'input':>11} {'loop':<13} {'img/s':>9} {'ms/step':>8} "
        f"{'TFLOP/s':>8} {'ratio':>6} {'warm-up s':>9}  target"
    )
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    rows = []
    for name in args.cases:
        spec, (h, w), aug, normalization, (ratio_target, tflops_target) = CASES[name]
        h, w = max(32, round(h * args.scale)), max(32, round(w * args.scale))
        images = rng.integers(0, 256, size=(args.images, h, w), dtype=np.uint8)
        labels = rng.integers(0, 2, size=args.images)
        macs = models.complexity(arms.build(spec), (3, h, w)).macs
        flops_per_image = 3 * 2 * macs
        results = {}
        for loop in args.loops:
            if loop == "naive":
                results[loop] = bench_naive(spec, images, labels, aug, normalization, device, args)
            else:
                compile = loop == "fast+compile"
                results[loop] = bench_ours(
                    spec, images, labels, aug, normalization, device, args, compile=compile
                )
        for loop, (ips, warmup) in results.items():
            ratio = ips / results["naive"][0]
            tflops = ips * flops_per_image / 1e12
            judged = cuda and args.scale == 1  # the targets are for full scale on a GPU
            ok = {"ratio": None, "tflops": None}
            target = ""
            if loop != "naive":
                goals = [f">= {ratio_target:g}x"]
                if judged:
                    ok["ratio"] = ratio >= ratio_target
                    goals[0] += f": {'ok' if ok['ratio'] else 'MISS'}"
                if tflops_target:
                    goals.append(f">= {tflops_target:g} TFLOP/s")
                    if judged:
                        ok["tflops"] = tflops >= tflops_target
                        goals[-1] += f": {'ok' if ok['tflops'] else 'MISS'}"
                target = "; ".join(goals) + ("" if judged else " (H100, full scale)")
            warm = "" if warmup is None else f"{warmup:9.1f}"
            print(
                f"{name:<14} {f'3x{h}x{w}':>11} {loop:<13} {ips:9.1f} "
                f"{1000 * args.batch_size / ips:8.1f} {tflops:8.3f} {ratio:6.2f} {warm:>9}  "
                f"{target}"
            )
            rows.append(
                {
                    "case": name,
                    "input": [3, h, w],
                    "loop": loop,
                    "images_per_s": ips,
                    "tflops": tflops,
                    "ratio_to_naive": ratio,
                    "warmup_s": warmup,
                    "target_ratio": ratio_target if loop != "naive" else None,
                    "target_tflops": tflops_target if loop != "naive" else None,
                    "ratio_ok": ok["ratio"],
                    "tflops_ok": ok["tflops"],
                }
            )
        sys.stdout.flush()
        if args.json:
            write_json(args.json, args, device, rows)
    return 0


def write_json(path: str, args, device: torch.device, rows: list[dict]) -> None:
    """The rows so far (rewritten after each case: a time-boxed run keeps what it measured)."""
    meta = {
        "device": name_of(device),
        "torch": str(torch.__version__),
        "batch_size": args.batch_size,
        "steps": args.steps,
        "warmup": args.warmup,
        "scale": args.scale,
    }
    with open(path, "w") as fh:
        json.dump({"meta": meta, "rows": rows}, fh, indent=1)


def name_of(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU, {torch.get_num_threads()} threads"


if __name__ == "__main__":
    sys.exit(main())
