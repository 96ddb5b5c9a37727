"""Train one study x arm x fold job (rule train_fold): resumable, deterministic on the CPU.

The job's images (uint8, from the cache) are held on the training device once; each batch is
gathered, augmented and normalised there by `mskdx.augment.make_batch` (the same code on CPU and
GPU). On CUDA the forward/backward pass runs under bf16 autocast in channels_last layout, optionally
through `torch.compile`; on the CPU it runs in fp32 with deterministic algorithms, so the same seed
gives byte-identical outputs.

The random numbers of epoch e (shuffling, augmentation, anything drawn from torch's global RNG)
come from generators seeded with (seed, fold, e), so a run resumed from `checkpoint_last.pt`
replays exactly the epochs an uninterrupted run would have.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import random
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from sklearn.metrics import roc_auc_score
from torch import nn
from tqdm.auto import tqdm

from mskdx import augment, models
from mskdx.augment import AugmentSpec, Normalization
from mskdx.errors import ConfigError, PreprocessError, SplitError
from mskdx.io import atomic_path, read_table, write_table

log = logging.getLogger(__name__)

SUBSETS = ("train", "val", "test")
PROB_DECIMALS = 8
HISTORY_COLUMNS = [
    "epoch",
    "train_loss",
    "train_acc",
    "train_auc",
    "val_loss",
    "val_acc",
    "val_auc",
    "lr",
    "seconds",
]
PREDICTION_COLUMNS = ["study", "arm", "fold", "subset", "patient", "image_id", "label", "prob"]
# settings that change how a job runs, not what it computes: a resume may change them
EXECUTION_KEYS = ("device", "amp", "compile")
# independent random streams of one epoch
STREAM_BATCHES, STREAM_GLOBAL, STREAM_INIT = 0, 1, 2


# --------------------------------------------------------------------------------------------
# settings


@dataclass(frozen=True)
class TrainSettings:
    """The `studies.<study>.train` config block, with defaults for the optional keys."""

    optimizer: str
    lr: float
    epochs: int
    batch_size: int
    weight_decay: float = 0.0
    class_weights: bool = False
    augment: AugmentSpec = field(default_factory=AugmentSpec)
    normalization: str = "image_zscore"
    select: str = "best_val_auc"
    device: str = "auto"
    amp: bool = True
    compile: bool = False

    @classmethod
    def from_config(cls, spec: Mapping) -> TrainSettings:
        spec = dict(spec)
        missing = [k for k in ("optimizer", "lr", "epochs", "batch_size") if k not in spec]
        if missing:
            raise ConfigError(f"train: missing keys {missing}")
        unknown = set(spec) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"train: unknown keys {sorted(unknown)}")
        out = cls(
            optimizer=str(spec["optimizer"]),
            lr=float(spec["lr"]),
            epochs=int(spec["epochs"]),
            batch_size=int(spec["batch_size"]),
            weight_decay=float(spec.get("weight_decay", 0.0)),
            class_weights=bool(spec.get("class_weights", False)),
            augment=AugmentSpec.from_config(spec.get("augment")),
            normalization=str(spec.get("normalization", "image_zscore")),
            select=str(spec.get("select", "best_val_auc")),
            device=str(spec.get("device", "auto")),
            amp=bool(spec.get("amp", True)),
            compile=bool(spec.get("compile", False)),
        )
        choices = {
            "optimizer": ("adam", "adamw", "sgd"),
            "normalization": augment.NORMALIZATIONS,
            "select": ("best_val_auc", "last"),
            "device": ("auto", "cpu", "cuda"),
        }
        for key, allowed in choices.items():
            if getattr(out, key) not in allowed:
                raise ConfigError(f"train.{key}={getattr(out, key)!r}; expected one of {allowed}")
        if out.lr <= 0 or out.epochs < 1 or out.batch_size < 1 or out.weight_decay < 0:
            raise ConfigError(
                f"train={spec}: expected lr > 0, epochs >= 1, batch_size >= 1, weight_decay >= 0"
            )
        return out


def resolve_device(name: str) -> torch.device:
    """Map the config's `device` (auto/cpu/cuda) to a torch device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device=cuda but torch sees no CUDA device; expected auto or cpu")
    return torch.device(name)


def make_optimizer(settings: TrainSettings, params, device: torch.device) -> torch.optim.Optimizer:
    """Adam, AdamW or SGD (momentum 0.9) with the configured lr and weight decay."""
    fused = {"fused": True} if device.type == "cuda" else {}
    if settings.optimizer == "adam":
        return torch.optim.Adam(params, lr=settings.lr, weight_decay=settings.weight_decay, **fused)
    if settings.optimizer == "adamw":
        return torch.optim.AdamW(
            params, lr=settings.lr, weight_decay=settings.weight_decay, **fused
        )
    return torch.optim.SGD(
        params, lr=settings.lr, momentum=0.9, weight_decay=settings.weight_decay, **fused
    )


# --------------------------------------------------------------------------------------------
# data


@dataclass
class JobData:
    """The images of one job and their table, rows sorted by subset, patient, image_id."""

    images: NDArray[np.uint8]  # (n, H, W), row i = table row i
    table: pd.DataFrame  # index (cache row), image_id, patient, label, subset

    def rows(self, subset: str) -> NDArray[np.int64]:
        return np.flatnonzero(self.table["subset"].to_numpy() == subset)


def check_split(split: pd.DataFrame, source: str | os.PathLike[str] = "splits") -> None:
    """Raise SplitError if a patient is in two subsets of one fold (leakage)."""
    subsets = split.groupby(["fold", "patient"])["subset"].nunique()
    leaked = subsets[subsets > 1]
    if len(leaked):
        examples = [f"fold {f}: {p}" for f, p in leaked.index[:5]]
        raise SplitError(
            f"{source}: {len(leaked)} patient(s) in more than one subset ({', '.join(examples)}); "
            "expected each patient in exactly one of train/val/test per fold"
        )


def load_job_data(
    images: str | os.PathLike[str],
    manifest: str | os.PathLike[str],
    splits: str | os.PathLike[str],
    *,
    fold: int,
    sequence: str | None = None,
) -> JobData:
    """Read the cache rows of one fold (and one MRI sequence) with their subset."""
    cache = np.load(images, mmap_mode="r")
    if cache.ndim != 3 or cache.dtype != np.uint8:
        raise PreprocessError(
            f"{images}: array {cache.dtype} {cache.shape}; expected uint8 (N, H, W)"
        )
    table = read_table(manifest, schema="manifest")
    if sequence is not None:
        available = sorted(table["series"].astype(str).unique())
        table = table[table["series"].astype(str) == str(sequence)]
        if table.empty:
            raise ConfigError(
                f"{manifest}: no images of sequence {sequence!r} (arm `sequence`); "
                f"series present: {available}"
            )
    if table.empty:
        raise PreprocessError(f"{manifest}: no images")
    index = table["index"].to_numpy(np.int64)
    if index.min() < 0 or index.max() >= len(cache) or len(np.unique(index)) != len(index):
        raise PreprocessError(
            f"{manifest}: column index must be unique rows of {images} (0..{len(cache) - 1})"
        )

    split = read_table(splits, schema="splits")
    check_split(split, splits)
    split = split[split["fold"] == fold]
    if split.empty:
        raise SplitError(
            f"{splits}: no rows for fold {fold}; folds present: "
            f"{sorted(read_table(splits)['fold'].unique().tolist())}"
        )
    subset_of = split.drop_duplicates("patient").set_index("patient")["subset"]
    missing = sorted(set(table["patient"]) - set(subset_of.index))
    if missing:
        raise SplitError(
            f"{splits}: fold {fold} has no subset for {len(missing)} patient(s) of "
            f"{manifest} (e.g. {missing[:3]}); expected every patient in the split"
        )
    table = table.assign(subset=table["patient"].map(subset_of))
    order = {s: i for i, s in enumerate(SUBSETS)}
    table = (
        table.assign(_order=table["subset"].map(order))
        .sort_values(["_order", "patient", "image_id", "index"], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)[["index", "image_id", "patient", "label", "subset"]]
    )
    table["label"] = table["label"].astype(np.int64)
    if not (table["subset"] == "train").any():
        raise SplitError(f"{splits}: fold {fold} has no training images")
    rows = table["index"].to_numpy(np.int64)
    # read the cache in file order, then put the rows in table order
    sorter = np.argsort(rows, kind="stable")
    data = np.empty((len(rows), *cache.shape[1:]), dtype=np.uint8)
    data[sorter] = cache[rows[sorter]]
    return JobData(data, table)


def class_weights(labels: NDArray[np.integer], source: str = "training subset") -> NDArray:
    """Inverse class frequencies, n / (2 n_c), of the training labels."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=2)[:2]
    if (counts == 0).any():
        raise SplitError(
            f"{source}: class counts {counts.tolist()}; class weights need images "
            "of both classes in the training subset"
        )
    return counts.sum() / (2.0 * counts)


@dataclass
class DeviceImages:
    """A job's images, labels and normalization coefficients, resident on the training device."""

    images: torch.Tensor  # (N, H, W) uint8
    labels: torch.Tensor  # (N,) int64
    scale: torch.Tensor  # (N, C) float32
    shift: torch.Tensor  # (N, C) float32
    dtype: torch.dtype = torch.float32  # of the batches
    channels_last: bool = False

    @classmethod
    def create(
        cls,
        images: NDArray[np.uint8],
        labels: NDArray[np.integer],
        norm: Normalization,
        device: torch.device,
        *,
        dtype: torch.dtype = torch.float32,
        channels_last: bool = False,
    ) -> DeviceImages:
        scale, shift = augment.coefficients(norm, images)
        return cls(
            torch.from_numpy(np.ascontiguousarray(images)).to(device),
            torch.tensor(np.asarray(labels), dtype=torch.int64).to(device),
            scale.to(device),
            shift.to(device),
            dtype,
            channels_last,
        )

    @property
    def device(self) -> torch.device:
        return self.images.device

    def batch(self, idx: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        return augment.make_batch(
            self.images,
            idx,
            self.scale,
            self.shift,
            params,
            dtype=self.dtype,
            channels_last=self.channels_last,
        )


# --------------------------------------------------------------------------------------------
# one epoch, evaluation


@dataclass(frozen=True)
class EpochResult:
    """Loss (class-weighted mean), accuracy and AUC (None if one class) of one pass."""

    loss: float
    acc: float
    auc: float | None
    images: int


def auc_or_none(labels: NDArray, probs: NDArray) -> float | None:
    """ROC AUC, or None when only one class is present."""
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        return None
    return float(roc_auc_score(labels, probs))


def _autocast(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def batch_slices(n: int, batch_size: int, *, drop_single: bool) -> list[slice]:
    """Consecutive batches; with `drop_single` a trailing 1-image batch is left out.

    Batch norm cannot train on one image whose feature map is 1x1 (small inputs, ResNet50).
    """
    slices = [slice(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    if drop_single and len(slices) > 1 and slices[-1].stop - slices[-1].start == 1:
        slices.pop()
    return slices


def train_one_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: DeviceImages,
    order: torch.Tensor,
    params: torch.Tensor | None,
    *,
    batch_size: int,
    weight: torch.Tensor | None = None,
    amp: bool = False,
    max_steps: int | None = None,
    progress: bool = False,
) -> EpochResult:
    """Train one pass over `order` (device tensor of bank rows) with augmentation `params`.

    Metrics are accumulated on the device and read back once at the end (no per-step sync).
    """
    model.train()
    device = data.device
    slices = batch_slices(order.numel(), batch_size, drop_single=True)[:max_steps]
    loss_sum = torch.zeros((), device=device)
    weight_sum = torch.zeros((), device=device)
    probs, labels = [], []
    for sl in tqdm(slices, desc="train", leave=False, disable=not progress):
        idx = order[sl]
        x = data.batch(idx, None if params is None else params[sl])
        y = data.labels.index_select(0, idx)
        with _autocast(device, amp):
            logits = model(x)
        logits = logits.float()
        per_image = F.cross_entropy(logits, y, weight=weight, reduction="none")
        w = weight.index_select(0, y) if weight is not None else torch.ones_like(per_image)
        loss = per_image.sum() / w.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += per_image.detach().sum()
        weight_sum += w.sum()
        probs.append(torch.softmax(logits.detach(), dim=1)[:, 1])
        labels.append(y)
    if not slices:
        return EpochResult(float("nan"), float("nan"), None, 0)
    p = torch.cat(probs).double().cpu().numpy()
    y = torch.cat(labels).cpu().numpy()
    loss_value = float((loss_sum / weight_sum).item())
    return EpochResult(loss_value, float(((p > 0.5) == y).mean()), auc_or_none(y, p), len(y))


def predict_logits(
    model: nn.Module,
    data: DeviceImages,
    idx: torch.Tensor,
    *,
    batch_size: int,
    amp: bool = False,
) -> torch.Tensor:
    """Logits (n, 2) float32 of bank rows `idx`, eval mode, no augmentation, on the device."""
    model.eval()
    out = []
    with torch.inference_mode():
        for sl in batch_slices(idx.numel(), batch_size, drop_single=False):
            with _autocast(data.device, amp):
                out.append(model(data.batch(idx[sl])).float())
    if not out:
        return torch.zeros(0, 2, device=data.device)
    return torch.cat(out)


def predict(
    model: nn.Module, data: DeviceImages, idx: torch.Tensor, *, batch_size: int, amp: bool = False
) -> NDArray[np.float64]:
    """P(positive) of bank rows `idx` (no augmentation), float64."""
    logits = predict_logits(model, data, idx, batch_size=batch_size, amp=amp)
    return torch.softmax(logits, dim=1)[:, 1].double().cpu().numpy()


def evaluate(
    model: nn.Module,
    data: DeviceImages,
    idx: torch.Tensor,
    *,
    batch_size: int,
    weight: torch.Tensor | None = None,
    amp: bool = False,
) -> EpochResult:
    """Loss (same class weights as training), accuracy and AUC of bank rows `idx`."""
    logits = predict_logits(model, data, idx, batch_size=batch_size, amp=amp)
    if logits.shape[0] == 0:
        return EpochResult(float("nan"), float("nan"), None, 0)
    y = data.labels.index_select(0, idx)
    with torch.inference_mode():
        loss = float(F.cross_entropy(logits, y, weight=weight).item())
        p = torch.softmax(logits, dim=1)[:, 1].double().cpu().numpy()
    yn = y.cpu().numpy()
    return EpochResult(loss, float(((p > 0.5) == yn).mean()), auc_or_none(yn, p), len(yn))


# --------------------------------------------------------------------------------------------
# randomness, checkpoints


def derive_seed(*keys: int) -> int:
    """A 63-bit seed from integers (NumPy SeedSequence: well mixed, stable across versions)."""
    words = np.random.SeedSequence([int(k) for k in keys]).generate_state(2, dtype=np.uint32)
    return (int(words[0]) << 31 ^ int(words[1])) & (2**63 - 1)


def epoch_generator(seed: int, fold: int, epoch: int) -> torch.Generator:
    """CPU generator for the shuffling and augmentation of one epoch."""
    g = torch.Generator()
    g.manual_seed(derive_seed(seed, fold, epoch, STREAM_BATCHES))
    return g


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    npst = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            npst["keys"].numpy().astype(np.uint32),
            npst["pos"],
            npst["has_gauss"],
            npst["cached_gaussian"],
        )
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError):  # fewer devices than when saved
            torch.cuda.set_rng_state_all(state["cuda"])


def _plain(obj):
    """Config mappings (possibly snakemake/OmegaConf-like) as plain JSON types."""
    return json.loads(json.dumps(obj, default=dict))


def _code_hash() -> str:
    h = hashlib.sha256()
    for module in (models, augment, sys.modules[__name__]):
        h.update(Path(module.__file__).read_bytes())
    return h.hexdigest()[:16]


def _data_hash(data: JobData) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(memoryview(np.ascontiguousarray(data.images)).cast("B"))
    h.update(data.table.to_csv(index=False, lineterminator="\n").encode())
    return h.hexdigest()


def _resume_key(args: Mapping) -> dict:
    key = {k: v for k, v in args.items() if k not in ("versions", "threads")}
    key["train_spec"] = {
        k: v for k, v in dict(args.get("train_spec", {})).items() if k not in EXECUTION_KEYS
    }
    return key


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _load_last(path: Path, args: dict) -> dict | None:
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unreadable: start over rather than fail
        log.warning("%s: cannot be read (%s); starting from epoch 1", path, exc)
        return None
    if not isinstance(state, dict) or _resume_key(state.get("args", {})) != _resume_key(args):
        log.warning("%s: written for other settings, data or code; starting from epoch 1", path)
        return None
    return state


@contextlib.contextmanager
def _torch_runtime(device: torch.device, threads: int | None) -> Iterator[None]:
    """Threads and determinism for the job; restored afterwards."""
    saved = (
        torch.get_num_threads(),
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.benchmark,
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
    )
    try:
        if threads:
            torch.set_num_threads(int(threads))
        if device.type == "cpu":
            torch.use_deterministic_algorithms(True)
        else:  # speed over bitwise reproducibility on the GPU
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        yield
    finally:
        torch.set_num_threads(saved[0])
        torch.use_deterministic_algorithms(saved[1])
        torch.backends.cudnn.benchmark = saved[2]
        torch.backends.cuda.matmul.allow_tf32 = saved[3]
        torch.backends.cudnn.allow_tf32 = saved[4]


# --------------------------------------------------------------------------------------------
# the job


def train_fold(
    images: str | os.PathLike[str],
    manifest: str | os.PathLike[str],
    splits: str | os.PathLike[str],
    *,
    study: str,
    arm: str,
    fold: int,
    arm_spec: Mapping,
    train_spec: Mapping,
    seed: int,
    checkpoint: str | os.PathLike[str],
    history: str | os.PathLike[str],
    predictions: str | os.PathLike[str],
    last_checkpoint: str | os.PathLike[str] | None = None,
    threads: int | None = None,
) -> None:
    """Train one fold of one arm; write checkpoint_final.pt, history.csv and predictions.csv.

    Uses the cache rows of the fold's patients (of `arm_spec["sequence"]` only, if given); raises
    SplitError when a patient is in two subsets of the fold or missing from it. Keeps the epoch
    that `train.select` picks (best_val_auc: highest validation AUC, the earlier epoch on ties)
    and predicts every train, val and test image with it, without augmentation. Resumes from
    `last_checkpoint` (default: checkpoint_last.pt beside `checkpoint`, rewritten after every
    epoch) when it was written for the same settings, data and code, and deletes it once the
    outputs are written. On the CPU the same seed gives byte-identical predictions.csv.
    """
    arm_spec, train_spec = _plain(arm_spec), _plain(train_spec)
    settings = TrainSettings.from_config(train_spec)
    checkpoint = Path(checkpoint)
    job = _Job(
        study=study,
        arm=arm,
        fold=int(fold),
        seed=int(seed),
        arm_spec=arm_spec,
        train_spec=train_spec,
        settings=settings,
        device=resolve_device(settings.device),
        checkpoint=checkpoint,
        last=Path(last_checkpoint) if last_checkpoint else checkpoint.parent / "checkpoint_last.pt",
        history=Path(history),
        predictions=Path(predictions),
    )
    with _torch_runtime(job.device, threads):
        _train_fold(job, images, manifest, splits)


@dataclass(frozen=True)
class _Job:
    study: str
    arm: str
    fold: int
    seed: int
    arm_spec: dict
    train_spec: dict
    settings: TrainSettings
    device: torch.device
    checkpoint: Path
    last: Path
    history: Path
    predictions: Path


def _train_fold(job: _Job, images, manifest, splits) -> None:
    study, arm, fold, seed = job.study, job.arm, job.fold, job.seed
    arm_spec, train_spec, settings, device = job.arm_spec, job.train_spec, job.settings, job.device
    last = job.last
    tag = f"{study}/{arm} fold {fold}"
    data = load_job_data(images, manifest, splits, fold=fold, sequence=arm_spec.get("sequence"))
    table = data.table
    rows = {s: data.rows(s) for s in SUBSETS}
    labels = table["label"].to_numpy(np.int64)
    norm = augment.make_normalization(settings.normalization, data.images, rows["train"])
    weights = (
        class_weights(labels[rows["train"]], f"{splits}: fold {fold} training subset")
        if settings.class_weights
        else None
    )
    cuda = device.type == "cuda"
    amp = settings.amp and cuda
    bank = DeviceImages.create(
        data.images,
        labels,
        norm,
        device,
        dtype=torch.bfloat16 if amp else torch.float32,
        channels_last=cuda,
    )
    height, width = data.images.shape[1:]
    select = settings.select
    if select == "best_val_auc" and len(rows["val"]) == 0:
        log.warning("%s: select best_val_auc but no validation images; keeping the last epoch", tag)
        select = "last"

    args = {
        "study": study,
        "arm": arm,
        "fold": fold,
        "seed": seed,
        "arm_spec": arm_spec,
        "train_spec": train_spec,
        "data": _data_hash(data),
        "code": _code_hash(),
        "versions": {"torch": str(torch.__version__), "numpy": str(np.__version__)},
    }

    _seed_everything(seed)
    torch.manual_seed(derive_seed(seed, fold, 0, STREAM_INIT))
    model = models.build(arm_spec).to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(settings, model.parameters(), device)
    net = torch.compile(model) if settings.compile and cuda else model
    weight = (
        torch.tensor(weights, dtype=torch.float32, device=device) if weights is not None else None
    )

    history_rows: list[dict] = []
    best: dict | None = None
    start = 1
    state = _load_last(last, args)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        _set_rng_state(state["rng"])
        best, history_rows, start = state["best"], list(state["history"]), state["epoch"] + 1
        log.info("%s: resuming from %s after epoch %d", tag, last, state["epoch"])
        del state

    n_params = sum(p.numel() for p in model.parameters())
    log.info(
        "%s: %d train / %d val / %d test images of %d patients, 3x%dx%d, %.2fM params, %s%s%s, "
        "%d epochs of batch %d",
        tag,
        len(rows["train"]),
        len(rows["val"]),
        len(rows["test"]),
        table["patient"].nunique(),
        height,
        width,
        n_params / 1e6,
        device.type,
        ", bf16" if amp else "",
        ", compiled" if net is not model else "",
        settings.epochs,
        settings.batch_size,
    )
    idx = {s: torch.as_tensor(r, device=device) for s, r in rows.items()}
    train_rows = torch.as_tensor(rows["train"])
    progress = sys.stderr.isatty()
    for epoch in range(start, settings.epochs + 1):
        t0 = time.perf_counter()
        gen = epoch_generator(seed, fold, epoch)
        torch.manual_seed(derive_seed(seed, fold, epoch, STREAM_GLOBAL))
        order = train_rows[torch.randperm(len(train_rows), generator=gen)].to(device)
        params = (
            augment.sample_params(len(train_rows), settings.augment, height, width, gen).to(device)
            if settings.augment.active
            else None
        )
        tr = train_one_epoch(
            net,
            optimizer,
            bank,
            order,
            params,
            batch_size=settings.batch_size,
            weight=weight,
            amp=amp,
            progress=progress,
        )
        if not math.isfinite(tr.loss):
            raise FloatingPointError(
                f"{tag}: training loss {tr.loss} at epoch {epoch}; "
                f"expected a finite loss (lower train.lr={settings.lr}?)"
            )
        va = (
            evaluate(net, bank, idx["val"], batch_size=settings.batch_size, weight=weight, amp=amp)
            if len(rows["val"])
            else None
        )
        if (
            select == "best_val_auc"
            and va is not None
            and va.auc is not None
            and (best is None or va.auc > best["val_auc"])
        ):
            best = {"epoch": epoch, "val_auc": va.auc, "model": _cpu_state(model)}
        seconds = time.perf_counter() - t0
        history_rows.append(
            {
                "epoch": epoch,
                "train_loss": round(tr.loss, 6),
                "train_acc": round(tr.acc, 6),
                "train_auc": None if tr.auc is None else round(tr.auc, 6),
                "val_loss": None if va is None else round(va.loss, 6),
                "val_acc": None if va is None else round(va.acc, 6),
                "val_auc": None if va is None or va.auc is None else round(va.auc, 6),
                "lr": optimizer.param_groups[0]["lr"],
                "seconds": round(seconds, 3),
            }
        )
        with atomic_path(last) as tmp:
            torch.save(
                {
                    "format": "mskdx.checkpoint_last/1",
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": None,
                    "epoch": epoch,
                    "args": args,
                    "rng": _rng_state(),
                    "best": best,
                    "history": history_rows,
                },
                tmp,
            )
        log.info(
            "%s epoch %d/%d: train loss %.4f acc %.3f auc %s | val loss %s acc %s auc %s | "
            "lr %.2g | %.1f s, %.0f img/s",
            tag,
            epoch,
            settings.epochs,
            tr.loss,
            tr.acc,
            _fmt(tr.auc),
            _fmt(va and va.loss),
            _fmt(va and va.acc),
            _fmt(va and va.auc),
            optimizer.param_groups[0]["lr"],
            seconds,
            tr.images / max(seconds, 1e-9),
        )

    if select == "best_val_auc" and best is not None:
        model.load_state_dict(best["model"])
        selected, val_auc = best["epoch"], best["val_auc"]
    else:
        if select == "best_val_auc":
            log.warning(
                "%s: validation AUC undefined in every epoch (one class); keeping the last epoch",
                tag,
            )
        selected, val_auc = settings.epochs, history_rows[-1]["val_auc"]
    log.info("%s: selected epoch %d (%s, val AUC %s)", tag, selected, select, _fmt(val_auc))

    all_rows = torch.arange(len(table), device=device)
    prob = predict(net, bank, all_rows, batch_size=settings.batch_size, amp=amp)
    out = table.assign(study=study, arm=arm, fold=fold, prob=np.round(prob, PROB_DECIMALS))
    write_table(out[PREDICTION_COLUMNS], job.predictions, schema="predictions")
    write_table(pd.DataFrame(history_rows, columns=HISTORY_COLUMNS), job.history, schema="history")
    with atomic_path(job.checkpoint) as tmp:
        torch.save(
            {
                "format": "mskdx.checkpoint_final/1",
                "model": _cpu_state(model),
                "epoch": selected,
                "epochs": settings.epochs,
                "select": select,
                "val_auc": val_auc,
                "args": args,
                "arm_spec": arm_spec,
                "normalization": norm.to_dict(),
                "class_weights": None if weights is None else [float(w) for w in weights],
                "input_shape": [3, int(height), int(width)],
            },
            tmp,
        )
    last.unlink(missing_ok=True)  # a later rerun (e.g. new code) must not resume a finished run


def _fmt(value: float | None) -> str:
    return (
        "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"
    )


# --------------------------------------------------------------------------------------------
# using a trained model


def load_final(
    checkpoint: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict]:
    """Rebuild the model of a checkpoint_final.pt (eval mode) and return it with the checkpoint.

    The checkpoint's `normalization` goes to `prepare_images` to rebuild the network input.
    """
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    spec = dict(state["arm_spec"])
    spec["weights"] = "none"  # the checkpoint holds the weights
    spec.pop("weights_path", None)
    if spec.get("architecture") == "resnet_blocks":
        spec.pop("weights")
    model = models.build(spec)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), state


def prepare_images(
    images: NDArray[np.uint8], normalization: Mapping, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """Turn uint8 grey images (n, H, W) into the network input (n, 3, H, W) float32."""
    images = np.ascontiguousarray(images)
    norm = Normalization.from_dict(normalization)
    scale, shift = augment.coefficients(norm, images)
    bank = torch.from_numpy(images).to(device)
    idx = torch.arange(len(images), device=device)
    return augment.make_batch(bank, idx, scale.to(device), shift.to(device))
