"""How a training job uses its device: `DevicePlan`, and the images it holds there (`DeviceImages`).

Every CUDA-specific choice of the training code is made here: bf16 autocast, channels_last, fused
optimizer, torch.compile, pinned transfers, determinism, the RNG state of every device. On CUDA a
plan is the fast path by default, on the CPU fp32 with deterministic algorithms, so the same seed
gives byte-identical outputs. A plan can switch the fast-path pieces on for the CPU too (the tests
do), so the code the GPU runs is exercised without one.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from mskdx.errors import ConfigError
from mskdx.learn import augment
from mskdx.learn.augment import Normalization

if TYPE_CHECKING:  # only read, never built, here
    from mskdx.learn.settings import TrainSettings


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


def bf16_autocast(device: torch.device, amp: bool):
    """bf16 autocast on `device` (CUDA or CPU) when `amp`, else nothing."""
    if amp:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


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
        return bf16_autocast(self.device, self.amp)

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


#: share of the free device memory a bank may take to be held there whole (CUDA)
RESIDENT_SHARE = 0.5
_FILL_ROWS = 256  # rows copied at a time when a bank is filled from its file


@dataclass
class DeviceImages:
    """A job's images, labels and normalization coefficients for the training device.

    The images are either resident on the device (`images`: the fast path on CUDA when the bank
    fits in `RESIDENT_SHARE` of the free memory, and any bank built from an array by `create`) or
    left in the cache file (`source`, a `mskdx.learn.job_data.CacheRows`) and read batch by batch:
    the CPU path, and CUDA for a bank too large for the device. The batches are the same.
    """

    images: torch.Tensor | None  # (N, H, W) uint8 on the device, or None: read from `source`
    labels: torch.Tensor  # (N,) int64
    scale: torch.Tensor  # (N, C) float32
    shift: torch.Tensor  # (N, C) float32
    dtype: torch.dtype = torch.float32  # of the batches
    channels_last: bool = False
    source: object = None  # host rows, indexable by an int array (when `images` is None)
    pin_memory: bool = False

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
        images,
        labels: NDArray[np.integer],
        norm: Normalization,
        plan: DevicePlan,
    ) -> DeviceImages:
        """The bank as `plan` wants it: its device, batch dtype, layout and transfers.

        An ndarray is copied to the device whole (`create`). Rows still in their file (`CacheRows`)
        are read batch by batch on the CPU, and on CUDA copied to the device once when they fit.
        """
        if isinstance(images, np.ndarray):
            return cls.create(
                images,
                labels,
                norm,
                plan.device,
                dtype=plan.batch_dtype,
                channels_last=plan.channels_last,
                pin_memory=plan.pin_memory,
            )
        scale, shift = augment.coefficients(norm, images)  # reads the rows in chunks
        bank = cls(
            None,
            plan.to_device(torch.tensor(np.asarray(labels), dtype=torch.int64)),
            plan.to_device(scale),
            plan.to_device(shift),
            plan.batch_dtype,
            plan.channels_last,
            source=images,
            pin_memory=plan.pin_memory,
        )
        if plan.device.type == "cuda" and _fits(images.shape, plan.device):
            bank.images = _fill(images, plan)
        return bank

    @property
    def device(self) -> torch.device:
        return self.labels.device

    def batch(self, idx: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        if self.images is not None:
            images, scale, shift = self.images, self.scale, self.shift
        else:  # gather the batch's rows from the file, then the same make_batch
            host = torch.from_numpy(self.source[idx.cpu().numpy()])
            if self.pin_memory:
                host = host.pin_memory()
            images = host.to(self.device, non_blocking=self.pin_memory)
            scale, shift = self.scale.index_select(0, idx), self.shift.index_select(0, idx)
            idx = torch.arange(len(host), device=self.device)
        return augment.make_batch(
            images,
            idx,
            scale,
            shift,
            params,
            dtype=self.dtype,
            channels_last=self.channels_last,
        )


def _fits(shape: tuple[int, ...], device: torch.device) -> bool:
    free, _ = torch.cuda.mem_get_info(device)
    return int(np.prod(shape)) <= RESIDENT_SHARE * free


def _fill(images, plan: DevicePlan) -> torch.Tensor:
    """Copy host rows to one device tensor, `_FILL_ROWS` at a time (bounded host memory)."""
    out = torch.empty(tuple(images.shape), dtype=torch.uint8, device=plan.device)
    for i in range(0, len(images), _FILL_ROWS):
        out[i : i + _FILL_ROWS] = plan.to_device(torch.from_numpy(images[i : i + _FILL_ROWS]))
    return out


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
