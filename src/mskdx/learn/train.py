"""Train one study x arm x fold job (rule train_fold): resumable, deterministic on the CPU.

The job's images (uint8, from the cache) are held on the training device once; each batch is
gathered, augmented and normalised there by `mskdx.learn.augment.make_batch` (the same code on CPU
and GPU). How the device is used (bf16 autocast, channels_last, fused optimizer, torch.compile,
pinned transfers, determinism, RNG state of every device) is decided in one place, `DevicePlan`: on
CUDA the fast path by default, on the CPU fp32 with deterministic algorithms, so the same seed gives
byte-identical outputs. A plan can switch the fast-path pieces on for the CPU too (the tests do), so
the code the GPU runs is exercised without one.

The random numbers of epoch e (shuffling, augmentation, anything drawn from torch's global RNG)
come from generators seeded with (seed, fold, e), so a run resumed from `checkpoint_last.pt`
replays exactly the epochs an uninterrupted run would have.

The job reads like torchvision's reference training script: set up, resume, then per epoch train
one epoch, evaluate, select, save the last checkpoint; then restore the selected epoch and write
the outputs (`_train_fold`).
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

from mskdx.errors import ConfigError, PreprocessError, SplitError
from mskdx.io import atomic_path, read_table, write_table
from mskdx.learn import augment, models
from mskdx.learn.augment import AugmentSpec, Normalization

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


def make_optimizer(
    settings: TrainSettings, params, device: torch.device, *, fused: bool | None = None
) -> torch.optim.Optimizer:
    """Adam, AdamW or SGD (momentum 0.9) with the configured lr and weight decay.

    `fused` (default: on CUDA) runs the update as one fused kernel; torch offers it on the CPU too.
    """
    fused = device.type == "cuda" if fused is None else fused
    extra = {"fused": True} if fused else {}
    if settings.optimizer == "adam":
        return torch.optim.Adam(params, lr=settings.lr, weight_decay=settings.weight_decay, **extra)
    if settings.optimizer == "adamw":
        return torch.optim.AdamW(
            params, lr=settings.lr, weight_decay=settings.weight_decay, **extra
        )
    return torch.optim.SGD(
        params, lr=settings.lr, momentum=0.9, weight_decay=settings.weight_decay, **extra
    )


@dataclass(frozen=True)
class DevicePlan:
    """How a job uses its device: every CUDA-specific choice of the training code, in one place.

    `for_settings` gives the fast path on CUDA (bf16 autocast if `train.amp`, channels_last, fused
    optimizer, torch.compile if `train.compile`, pinned host-to-device copies, cuDNN autotuning)
    and the plain deterministic fp32 path on the CPU. Any field may be set by hand: with
    device=cpu, bf16 autocast, channels_last, the fused optimizer and torch.compile (inductor) all
    run on the CPU as well, which is how the tests exercise the GPU's code without a GPU. Pinned
    memory needs CUDA and is refused on the CPU.
    """

    device: torch.device
    amp: bool = False  # bf16 autocast of forward passes
    channels_last: bool = False  # NHWC batches and weights
    fused: bool = False  # fused optimizer step
    compile: bool = False  # torch.compile (inductor) of the model
    pin_memory: bool = False  # page-locked staging for host->device copies
    deterministic: bool = True  # deterministic algorithms (else cuDNN autotuning and TF32)

    def __post_init__(self) -> None:
        if self.pin_memory and self.device.type != "cuda":
            raise ConfigError(f"DevicePlan: pinned transfers need CUDA, not {self.device}")

    @classmethod
    def for_settings(
        cls, settings: TrainSettings, device: torch.device | None = None
    ) -> DevicePlan:
        device = resolve_device(settings.device) if device is None else torch.device(device)
        if device.type != "cuda":
            return cls(device)
        return cls(
            device,
            amp=settings.amp,
            channels_last=True,
            fused=True,
            compile=settings.compile,
            pin_memory=True,
            deterministic=False,
        )

    @property
    def batch_dtype(self) -> torch.dtype:
        """dtype of the augmented batches: bf16 under autocast (halves their memory traffic)."""
        return torch.bfloat16 if self.amp else torch.float32

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def describe(self) -> str:
        flags = [
            name
            for name, on in (
                ("bf16", self.amp),
                ("channels_last", self.channels_last),
                ("fused", self.fused),
                ("compiled", self.compile),
                ("pinned", self.pin_memory),
                ("deterministic", self.deterministic),
            )
            if on
        ]
        return ", ".join([self.device.type, *flags])

    def autocast(self) -> contextlib.AbstractContextManager:
        return _autocast(self.device, self.amp)

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        """Copy a host tensor to the device, through page-locked memory if the plan says so."""
        if self.pin_memory:
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor.to(self.device)

    def place(self, model: nn.Module) -> tuple[nn.Module, nn.Module]:
        """Move `model` to the device in the plan's layout; return it and the module to call.

        The second is `torch.compile(model)` when compiling (sharing its parameters), else the
        model itself; state dicts are read from and loaded into the first.
        """
        model = model.to(self.device, memory_format=self.memory_format)
        return model, torch.compile(model) if self.compile else model

    def optimizer(self, settings: TrainSettings, params) -> torch.optim.Optimizer:
        return make_optimizer(settings, params, self.device, fused=self.fused)

    @contextlib.contextmanager
    def runtime(self, threads: int | None = None) -> Iterator[None]:
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
            if self.deterministic:
                torch.use_deterministic_algorithms(True)
            else:  # speed over bitwise reproducibility
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

    @staticmethod
    def rng_state() -> dict:
        """The global RNG state: torch (CPU), NumPy, Python and every CUDA device there is."""
        return _rng_state()

    @staticmethod
    def set_rng_state(state: dict) -> None:
        _set_rng_state(state)


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
        pin_memory: bool = False,
    ) -> DeviceImages:
        """Copy the bank to `device` once (through page-locked memory with `pin_memory`)."""
        scale, shift = augment.coefficients(norm, images)

        def put(t: torch.Tensor) -> torch.Tensor:
            if pin_memory:
                return t.pin_memory().to(device, non_blocking=True)
            return t.to(device)

        return cls(
            put(torch.from_numpy(np.ascontiguousarray(images))),
            put(torch.tensor(np.asarray(labels), dtype=torch.int64)),
            put(scale),
            put(shift),
            dtype,
            channels_last,
        )

    @classmethod
    def for_plan(
        cls,
        images: NDArray[np.uint8],
        labels: NDArray[np.integer],
        norm: Normalization,
        plan: DevicePlan,
    ) -> DeviceImages:
        """The bank as `plan` wants it: its device, batch dtype, layout and transfers."""
        return cls.create(
            images,
            labels,
            norm,
            plan.device,
            dtype=plan.batch_dtype,
            channels_last=plan.channels_last,
            pin_memory=plan.pin_memory,
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
    """bf16 autocast on `device` (CUDA or CPU) when `amp`, else nothing."""
    if amp:
        return torch.autocast(device.type, dtype=torch.bfloat16)
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
    plan: DevicePlan | None = None,
) -> None:
    """Train one fold of one arm; write checkpoint_final.pt, history.csv and predictions.csv.

    Uses the cache rows of the fold's patients (of `arm_spec["sequence"]` only, if given); raises
    SplitError when a patient is in two subsets of the fold or missing from it. Keeps the epoch
    that `train.select` picks (best_val_auc: highest validation AUC, the earlier epoch on ties)
    and predicts every train, val and test image with it, without augmentation. Resumes from
    `last_checkpoint` (default: checkpoint_last.pt beside `checkpoint`, rewritten after every
    epoch) when it was written for the same settings, data and code, and deletes it once the
    outputs are written. On the CPU the same seed gives byte-identical predictions.csv.

    `plan` (default `DevicePlan.for_settings(train_spec)`) says how the device is used; it
    changes how fast, not what is computed, so a run may resume under another plan.
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
        plan=plan or DevicePlan.for_settings(settings),
        checkpoint=checkpoint,
        last=Path(last_checkpoint) if last_checkpoint else checkpoint.parent / "checkpoint_last.pt",
        history=Path(history),
        predictions=Path(predictions),
    )
    with job.plan.runtime(threads):
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
    plan: DevicePlan
    checkpoint: Path
    last: Path
    history: Path
    predictions: Path

    @property
    def tag(self) -> str:
        return f"{self.study}/{self.arm} fold {self.fold}"


@dataclass
class _Fit:
    """What one job trains with, and where it stands (the state a checkpoint_last.pt holds)."""

    data: JobData
    norm: Normalization
    weights: NDArray | None  # class weights (host), for the final checkpoint
    bank: DeviceImages
    rows: dict[str, NDArray[np.int64]]  # bank rows of each subset
    idx: dict[str, torch.Tensor]  # the same, on the device
    weight: torch.Tensor | None  # class weights on the device
    model: nn.Module  # its state dict is what is saved
    net: nn.Module  # what is called: the model, or its compiled form
    optimizer: torch.optim.Optimizer
    select: str
    args: dict  # what the run computes (resume key)
    best: dict | None = None
    history: list[dict] = field(default_factory=list)
    start: int = 1

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.data.images.shape[1:])


def _train_fold(job: _Job, images, manifest, splits) -> None:
    """Set up, resume, train epoch by epoch (train, evaluate, select, save), write outputs."""
    fit = _setup(job, images, manifest, splits)
    _resume(job, fit)
    _log_start(job, fit)
    for epoch in range(fit.start, job.settings.epochs + 1):
        t0 = time.perf_counter()
        tr = _train_epoch(job, fit, epoch)
        va = _evaluate_val(job, fit)
        _select(fit, epoch, va)
        fit.history.append(_history_row(fit, epoch, tr, va, time.perf_counter() - t0))
        _save_last(job, fit, epoch)
        _log_epoch(job, fit, tr, va)
    selected, val_auc = _restore_selected(job, fit)
    _write_outputs(job, fit, selected, val_auc)
    job.last.unlink(missing_ok=True)  # a later rerun (e.g. new code) must not resume a finished run


def _setup(job: _Job, images, manifest, splits) -> _Fit:
    """Read the fold's images, put them on the device, build model and optimizer."""
    settings, plan = job.settings, job.plan
    data = load_job_data(
        images, manifest, splits, fold=job.fold, sequence=job.arm_spec.get("sequence")
    )
    rows = {s: data.rows(s) for s in SUBSETS}
    labels = data.table["label"].to_numpy(np.int64)
    norm = augment.make_normalization(settings.normalization, data.images, rows["train"])
    weights = (
        class_weights(labels[rows["train"]], f"{splits}: fold {job.fold} training subset")
        if settings.class_weights
        else None
    )
    select = settings.select
    if select == "best_val_auc" and len(rows["val"]) == 0:
        log.warning(
            "%s: select best_val_auc but no validation images; keeping the last epoch", job.tag
        )
        select = "last"
    args = {
        "study": job.study,
        "arm": job.arm,
        "fold": job.fold,
        "seed": job.seed,
        "arm_spec": job.arm_spec,
        "train_spec": job.train_spec,
        "data": _data_hash(data),
        "code": _code_hash(),
        "versions": {"torch": str(torch.__version__), "numpy": str(np.__version__)},
    }
    _seed_everything(job.seed)
    torch.manual_seed(derive_seed(job.seed, job.fold, 0, STREAM_INIT))
    model, net = plan.place(models.build(job.arm_spec))
    return _Fit(
        data=data,
        norm=norm,
        weights=weights,
        bank=DeviceImages.for_plan(data.images, labels, norm, plan),
        rows=rows,
        idx={s: plan.to_device(torch.as_tensor(r)) for s, r in rows.items()},
        weight=(
            None if weights is None else plan.to_device(torch.tensor(weights, dtype=torch.float32))
        ),
        model=model,
        net=net,
        optimizer=plan.optimizer(settings, model.parameters()),
        select=select,
        args=args,
    )


def _resume(job: _Job, fit: _Fit) -> None:
    """Continue from checkpoint_last.pt if it was written for the same run."""
    state = _load_last(job.last, fit.args)
    if state is None:
        return
    fit.model.load_state_dict(state["model"])
    fit.optimizer.load_state_dict(state["optimizer"])
    DevicePlan.set_rng_state(state["rng"])
    fit.best, fit.history, fit.start = state["best"], list(state["history"]), state["epoch"] + 1
    log.info("%s: resuming from %s after epoch %d", job.tag, job.last, state["epoch"])


def _train_epoch(job: _Job, fit: _Fit, epoch: int) -> EpochResult:
    """One pass over the shuffled training images with this epoch's augmentations."""
    settings, plan = job.settings, job.plan
    gen = epoch_generator(job.seed, job.fold, epoch)
    torch.manual_seed(derive_seed(job.seed, job.fold, epoch, STREAM_GLOBAL))
    train_rows = torch.as_tensor(fit.rows["train"])
    order = train_rows[torch.randperm(len(train_rows), generator=gen)]
    params = (
        augment.sample_params(len(train_rows), settings.augment, *fit.shape, gen)
        if settings.augment.active
        else None
    )
    tr = train_one_epoch(
        fit.net,
        fit.optimizer,
        fit.bank,
        plan.to_device(order),
        None if params is None else plan.to_device(params),
        batch_size=settings.batch_size,
        weight=fit.weight,
        amp=plan.amp,
        progress=sys.stderr.isatty(),
    )
    if not math.isfinite(tr.loss):
        raise FloatingPointError(
            f"{job.tag}: training loss {tr.loss} at epoch {epoch}; "
            f"expected a finite loss (lower train.lr={settings.lr}?)"
        )
    return tr


def _evaluate_val(job: _Job, fit: _Fit) -> EpochResult | None:
    if fit.idx["val"].numel() == 0:
        return None
    return evaluate(
        fit.net,
        fit.bank,
        fit.idx["val"],
        batch_size=job.settings.batch_size,
        weight=fit.weight,
        amp=job.plan.amp,
    )


def _select(fit: _Fit, epoch: int, va: EpochResult | None) -> None:
    """Keep the weights of the best validation AUC so far (ties: the earlier epoch)."""
    if (
        fit.select == "best_val_auc"
        and va is not None
        and va.auc is not None
        and (fit.best is None or va.auc > fit.best["val_auc"])
    ):
        fit.best = {"epoch": epoch, "val_auc": va.auc, "model": _cpu_state(fit.model)}


def _history_row(
    fit: _Fit, epoch: int, tr: EpochResult, va: EpochResult | None, seconds: float
) -> dict:
    return {
        "epoch": epoch,
        "train_loss": round(tr.loss, 6),
        "train_acc": round(tr.acc, 6),
        "train_auc": None if tr.auc is None else round(tr.auc, 6),
        "val_loss": None if va is None else round(va.loss, 6),
        "val_acc": None if va is None else round(va.acc, 6),
        "val_auc": None if va is None or va.auc is None else round(va.auc, 6),
        "lr": fit.optimizer.param_groups[0]["lr"],
        "seconds": round(seconds, 3),
    }


def _save_last(job: _Job, fit: _Fit, epoch: int) -> None:
    """checkpoint_last.pt: everything a killed run needs to go on after `epoch`."""
    with atomic_path(job.last) as tmp:
        torch.save(
            {
                "format": "mskdx.checkpoint_last/1",
                "model": fit.model.state_dict(),
                "optimizer": fit.optimizer.state_dict(),
                "scheduler": None,
                "epoch": epoch,
                "args": fit.args,
                "rng": DevicePlan.rng_state(),
                "best": fit.best,
                "history": fit.history,
            },
            tmp,
        )


def _restore_selected(job: _Job, fit: _Fit) -> tuple[int, float | None]:
    """Load the weights `train.select` keeps; return their epoch and validation AUC."""
    if fit.select == "best_val_auc" and fit.best is not None:
        fit.model.load_state_dict(fit.best["model"])
        selected, val_auc = fit.best["epoch"], fit.best["val_auc"]
    else:
        if fit.select == "best_val_auc":
            log.warning(
                "%s: validation AUC undefined in every epoch (one class); keeping the last epoch",
                job.tag,
            )
        selected, val_auc = job.settings.epochs, fit.history[-1]["val_auc"]
    log.info("%s: selected epoch %d (%s, val AUC %s)", job.tag, selected, fit.select, _fmt(val_auc))
    return selected, val_auc


def _write_outputs(job: _Job, fit: _Fit, selected: int, val_auc: float | None) -> None:
    """predictions.csv (every image, selected weights), history.csv, checkpoint_final.pt."""
    table = fit.data.table
    all_rows = job.plan.to_device(torch.arange(len(table)))
    prob = predict(
        fit.net, fit.bank, all_rows, batch_size=job.settings.batch_size, amp=job.plan.amp
    )
    out = table.assign(
        study=job.study, arm=job.arm, fold=job.fold, prob=np.round(prob, PROB_DECIMALS)
    )
    write_table(out[PREDICTION_COLUMNS], job.predictions, schema="predictions")
    history = pd.DataFrame(fit.history).reindex(columns=HISTORY_COLUMNS)
    write_table(history, job.history, schema="history")
    height, width = fit.shape
    with atomic_path(job.checkpoint) as tmp:
        torch.save(
            {
                "format": "mskdx.checkpoint_final/1",
                "model": _cpu_state(fit.model),
                "epoch": selected,
                "epochs": job.settings.epochs,
                "select": fit.select,
                "val_auc": val_auc,
                "args": fit.args,
                "arm_spec": job.arm_spec,
                "normalization": fit.norm.to_dict(),
                "class_weights": None if fit.weights is None else [float(w) for w in fit.weights],
                "input_shape": [3, int(height), int(width)],
            },
            tmp,
        )


def _log_start(job: _Job, fit: _Fit) -> None:
    table = fit.data.table
    log.info(
        "%s: %d train / %d val / %d test images of %d patients, 3x%dx%d, %.2fM params, %s, "
        "%d epochs of batch %d",
        job.tag,
        fit.idx["train"].numel(),
        fit.idx["val"].numel(),
        fit.idx["test"].numel(),
        table["patient"].nunique(),
        *fit.shape,
        sum(p.numel() for p in fit.model.parameters()) / 1e6,
        job.plan.describe(),
        job.settings.epochs,
        job.settings.batch_size,
    )


def _log_epoch(job: _Job, fit: _Fit, tr: EpochResult, va: EpochResult | None) -> None:
    row = fit.history[-1]
    log.info(
        "%s epoch %d/%d: train loss %.4f acc %.3f auc %s | val loss %s acc %s auc %s | "
        "lr %.2g | %.1f s, %.0f img/s",
        job.tag,
        row["epoch"],
        job.settings.epochs,
        tr.loss,
        tr.acc,
        _fmt(tr.auc),
        _fmt(va and va.loss),
        _fmt(va and va.acc),
        _fmt(va and va.auc),
        row["lr"],
        row["seconds"],
        tr.images / max(row["seconds"], 1e-9),
    )


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
