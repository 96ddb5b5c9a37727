"""Checkpoints of the training job, and the random streams that let a resumed run replay.

The random numbers of epoch e (shuffling, augmentation, anything drawn from torch's global RNG)
come from generators seeded with (seed, fold, e), so a run resumed from `checkpoint_last.pt`
replays exactly the epochs an uninterrupted run would have. `checkpoint_last.pt` holds what a
killed run needs to go on (model, optimizer, epoch, args, RNG state, selection, history);
`checkpoint_final.pt` the selected weights and what rebuilds the network and its input
(`load_final`, `prepare_images`).
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from mskdx.io import atomic_path
from mskdx.learn import arms, augment
from mskdx.learn.augment import Normalization

log = logging.getLogger(__name__)

LAST_FORMAT = "mskdx.checkpoint_last/1"
FINAL_FORMAT = "mskdx.checkpoint_final/1"
# settings that change how a job runs, not what it computes: a resume may change them
EXECUTION_KEYS = ("device", "amp", "compile")
# independent random streams of one epoch
STREAM_BATCHES, STREAM_GLOBAL, STREAM_INIT, STREAM_TRAIN_REPEAT = 0, 1, 2, 3


# --------------------------------------------------------------------------------------------
# random streams


def derive_seed(*keys: int) -> int:
    """A 63-bit seed from integers (NumPy SeedSequence: well mixed, stable across versions)."""
    words = np.random.SeedSequence([int(k) for k in keys]).generate_state(2, dtype=np.uint32)
    return (int(words[0]) << 31 ^ int(words[1])) & (2**63 - 1)


def training_seed(seed: int, train_repeat: int = 0) -> int:
    """The seed of training repeat t of a job (train.repeats): the run's seed for t = 0 (the
    paper's job, unchanged), else one derived from (seed, t), so every initialisation,
    shuffling and augmentation stream of the job differs while its split and data do not."""
    if train_repeat < 0:
        raise ValueError(f"train_repeat={train_repeat}; expected >= 0")
    return int(seed) if train_repeat == 0 else derive_seed(seed, train_repeat, STREAM_TRAIN_REPEAT)


def epoch_generator(seed: int, fold: int, epoch: int) -> torch.Generator:
    """CPU generator for the shuffling and augmentation of one epoch."""
    g = torch.Generator()
    g.manual_seed(derive_seed(seed, fold, epoch, STREAM_BATCHES))
    return g


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------------------------
# checkpoint_last.pt: resume


def _resume_key(args: Mapping) -> dict:
    key = {k: v for k, v in args.items() if k not in ("versions", "threads")}
    key["train_spec"] = {
        k: v for k, v in dict(args.get("train_spec", {})).items() if k not in EXECUTION_KEYS
    }
    return key


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the model's state dict on the CPU (detached from training)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def save_last(
    path: Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    epoch: int,
    args: dict,
    rng: dict,
    best: dict | None,
    history: list[dict],
) -> None:
    """checkpoint_last.pt: everything a killed run needs to go on after `epoch`."""
    # through a handle: a path would name the zip's entries after the random temp name
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save(
            {
                "format": LAST_FORMAT,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": None,
                "epoch": epoch,
                "args": args,
                "rng": rng,
                "best": best,
                "history": history,
            },
            fh,
        )


def load_last(path: Path, args: dict) -> dict | None:
    """The state saved by `save_last` if it was written for the same run (`args`), else None."""
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
# checkpoint_final.pt: the trained model


def save_final(
    path: Path,
    *,
    model: nn.Module,
    epoch: int,
    epochs: int,
    select: str,
    val_auc: float | None,
    args: dict,
    arm_spec: dict,
    normalization: Normalization,
    class_weights: NDArray | None,
    shape: tuple[int, int],
) -> None:
    """checkpoint_final.pt: the selected weights (`epoch`) and what rebuilds network and input."""
    height, width = shape
    # through a handle: a path would name the zip's entries after the random temp name
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save(
            {
                "format": FINAL_FORMAT,
                "model": cpu_state(model),
                "epoch": epoch,
                "epochs": epochs,
                "select": select,
                "val_auc": val_auc,
                "args": args,
                "arm_spec": arm_spec,
                "normalization": normalization.to_dict(),
                "class_weights": None
                if class_weights is None
                else [float(w) for w in class_weights],
                "input_shape": [3, int(height), int(width)],
            },
            fh,
        )


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
    model = arms.build(spec)
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
