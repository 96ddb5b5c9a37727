"""Batched, device-agnostic augmentation and normalization of uint8 grey images.

One code path for CPU and GPU: a batch of rows of a uint8 image bank (N, H, W) that lives on the
training device is turned into a float batch (B, 3, H, W) by

1. a random affine transform per image (horizontal flip, rotation, translation), one
   `affine_grid`/`grid_sample` call for the whole batch, bilinear, black (0) outside the image;
2. normalization as a per-image affine map of the intensities, `x * scale + shift`, whose
   coefficients come from the un-augmented image (`image_zscore`), the training subset
   (`train_stats`) or ImageNet (`imagenet`), so that the black fill of (1) maps to the same value
   an all-black pixel would;
3. grey repeated to 3 channels (`imagenet` gives the 3 channels different coefficients).

The random parameters are drawn on the CPU from an explicit `torch.Generator`, so a CPU run and a
GPU run see the same augmentations and a resumed run redraws exactly those of an uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from mskdx.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NORMALIZATIONS = ("image_zscore", "train_stats", "imagenet")
MIN_STD = 1.0  # grey levels: a blank image is centred, not blown up


@dataclass(frozen=True)
class AugmentSpec:
    """Random augmentation of one training image, as in torchvision's RandomAffine.

    translate: largest shift as a fraction of the width (x) and of the height (y); shifts are
    whole pixels. hflip: mirror with probability 1/2. rotate: angle uniform in +-rotate degrees.
    """

    translate: float = 0.0
    hflip: bool = False
    rotate: float = 0.0

    @classmethod
    def from_config(cls, spec: Mapping | None) -> AugmentSpec:
        spec = dict(spec or {})
        unknown = set(spec) - {"translate", "hflip", "rotate"}
        if unknown:
            raise ConfigError(
                f"train.augment: unknown keys {sorted(unknown)}; expected translate, hflip, rotate"
            )
        out = cls(
            float(spec.get("translate", 0.0)),
            bool(spec.get("hflip", False)),
            float(spec.get("rotate", 0.0)),
        )
        if not 0 <= out.translate <= 0.5 or not 0 <= out.rotate <= 180:
            raise ConfigError(
                f"train.augment={spec}: expected translate in [0, 0.5] and "
                "rotate in [0, 180] degrees"
            )
        return out

    @property
    def active(self) -> bool:
        return self.translate > 0 or self.hflip or self.rotate > 0


def sample_params(
    n: int, spec: AugmentSpec, height: int, width: int, generator: torch.Generator
) -> torch.Tensor:
    """Draw augmentation parameters for `n` images: (n, 4) float32 on the CPU.

    Columns: angle (degrees), x shift, y shift (pixels, whole numbers), flip (-1 mirror, +1 not).
    Always draws the same number of random numbers, whatever `spec` switches on.
    """
    u = torch.rand(n, 4, generator=generator, dtype=torch.float64)
    angle = (2 * u[:, 0] - 1) * spec.rotate
    tx = torch.round((2 * u[:, 1] - 1) * spec.translate * width)
    ty = torch.round((2 * u[:, 2] - 1) * spec.translate * height)
    flip = torch.where(u[:, 3] < 0.5, -1.0, 1.0) if spec.hflip else torch.ones(n, dtype=u.dtype)
    return torch.stack([angle, tx, ty, flip], dim=1).float()


def affine_theta(params: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Turn (B, 4) parameters into `affine_grid` matrices (B, 2, 3) (align_corners=False).

    The image is mirrored, rotated about its centre, then shifted; affine_grid wants the inverse
    map, output -> input, in coordinates normalised to [-1, 1] separately along x and y, so the
    pixel-space inverse M = F R(-angle) is conjugated with S = diag(W/2, H/2).
    """
    params = params.float()
    rad = params[:, 0] * (math.pi / 180.0)
    cos, sin = torch.cos(rad), torch.sin(rad)
    flip = params[:, 3]
    # M = F @ R(-a) with F = diag(flip, 1), R(-a) = [[cos, sin], [-sin, cos]]
    m00, m01 = flip * cos, flip * sin
    m10, m11 = -sin, cos
    sx, sy = width / 2.0, height / 2.0
    tx, ty = params[:, 1], params[:, 2]
    # theta = [S^-1 M S | -S^-1 M t]
    a00, a01 = m00, m01 * (sy / sx)
    a10, a11 = m10 * (sx / sy), m11
    b0 = -(m00 * tx + m01 * ty) / sx
    b1 = -(m10 * tx + m11 * ty) / sy
    return torch.stack(
        [torch.stack([a00, a01, b0], dim=1), torch.stack([a10, a11, b1], dim=1)], dim=1
    )


def apply_affine(x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Transform a float batch (B, C, H, W) with per-image `params` (B, 4); zeros outside."""
    b, c, h, w = x.shape
    theta = affine_theta(params.to(x.device), h, w).to(x.dtype)
    grid = F.affine_grid(theta, [b, c, h, w], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def image_stats(images: NDArray[np.uint8], chunk: int = 64) -> tuple[NDArray, NDArray]:
    """Mean and (population) standard deviation of each image, float64, in grey levels."""
    n = len(images)
    mean, std = np.empty(n), np.empty(n)
    for i in range(0, n, chunk):
        block = np.asarray(images[i : i + chunk], dtype=np.float64)
        block = block.reshape(len(block), -1)
        m = block.mean(axis=1)
        mean[i : i + chunk] = m
        std[i : i + chunk] = np.sqrt(np.maximum((block * block).mean(axis=1) - m * m, 0.0))
    return mean, std


def training_stats(images: NDArray[np.uint8], rows: NDArray[np.integer]) -> tuple[float, float]:
    """Mean and standard deviation over all pixels of `images[rows]` (the training subset)."""
    rows = np.asarray(rows)
    if rows.size == 0:
        raise ConfigError("normalization train_stats: the training subset has no images")
    rows = np.sort(rows)
    # per-image values, so reading the rows in chunks changes nothing (and bounds the memory)
    parts = [image_stats(images[rows[i : i + 256]]) for i in range(0, len(rows), 256)]
    mean = np.concatenate([m for m, _ in parts])
    std = np.concatenate([s for _, s in parts])
    grand = float(mean.mean())
    # images share one size, so the pooled variance is the mean of E[x^2] minus grand^2
    var = float((std**2 + mean**2).mean() - grand**2)
    return grand, math.sqrt(max(var, 0.0))


@dataclass(frozen=True)
class Normalization:
    """How grey levels become network input; per-channel mean/std in grey levels (0..255).

    `image_zscore` has no fixed mean/std: each image uses its own.
    """

    kind: str
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    def to_dict(self) -> dict:
        return {"kind": self.kind, "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: Mapping) -> Normalization:
        return cls(
            str(d["kind"]),
            tuple(float(v) for v in d.get("mean", ())),
            tuple(float(v) for v in d.get("std", ())),
        )


def make_normalization(
    kind: str, images: NDArray[np.uint8], train_rows: NDArray[np.integer]
) -> Normalization:
    """Fix the normalization of a job; `train_stats` looks only at `images[train_rows]`."""
    if kind == "image_zscore":
        return Normalization(kind)
    if kind == "train_stats":
        mean, std = training_stats(images, train_rows)
        return Normalization(kind, (mean,), (std,))
    if kind == "imagenet":
        return Normalization(
            kind, tuple(255.0 * m for m in IMAGENET_MEAN), tuple(255.0 * s for s in IMAGENET_STD)
        )
    raise ConfigError(f"train.normalization={kind!r}; expected one of {list(NORMALIZATIONS)}")


def coefficients(
    norm: Normalization, images: NDArray[np.uint8]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image `scale`, `shift` (N, C) float32, C = 1 or 3, with x_norm = x * scale + shift."""
    n = len(images)
    if norm.kind == "image_zscore":
        mean, std = image_stats(images)
        scale = 1.0 / np.maximum(std, MIN_STD)
        shift = -mean * scale
        return (torch.from_numpy(scale[:, None]).float(), torch.from_numpy(shift[:, None]).float())
    mean = np.asarray(norm.mean, dtype=np.float64)
    std = np.maximum(np.asarray(norm.std, dtype=np.float64), 1e-12)
    scale = np.broadcast_to(1.0 / std, (n, len(std)))
    shift = np.broadcast_to(-mean / std, (n, len(std)))
    return torch.from_numpy(scale.copy()).float(), torch.from_numpy(shift.copy()).float()


def make_batch(
    images: torch.Tensor,
    idx: torch.Tensor,
    scale: torch.Tensor,
    shift: torch.Tensor,
    params: torch.Tensor | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
) -> torch.Tensor:
    """Gather rows `idx` of a uint8 bank (N, H, W), augment, normalise: (B, 3, H, W) `dtype`.

    All tensors live on the same device; nothing here synchronises with the host.
    """
    x = images.index_select(0, idx).unsqueeze(1).float()  # (B, 1, H, W), grey levels
    if params is not None:
        x = apply_affine(x, params)
    s = scale.index_select(0, idx)[:, :, None, None]
    b = shift.index_select(0, idx)[:, :, None, None]
    x = torch.addcmul(b, x, s).to(dtype)  # (B, C, H, W), C = 1 or 3
    x = x.expand(-1, 3, -1, -1)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return x.contiguous(memory_format=fmt)
