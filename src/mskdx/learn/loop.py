"""One epoch of training, evaluation and prediction over the images a `DeviceImages` bank holds.

Training is kept apart from evaluation; evaluation and prediction run in eval mode under
`torch.inference_mode()`, without augmentation. Metrics stay on the device until the end of a pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from sklearn.metrics import roc_auc_score
from torch import nn
from tqdm.auto import tqdm

from mskdx.learn.device import DeviceImages, bf16_autocast

# decimals of a probability in the prediction tables
PROB_DECIMALS = 8


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
        with bf16_autocast(device, amp):
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
            with bf16_autocast(data.device, amp):
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
