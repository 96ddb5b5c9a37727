"""Running a trained arm: its fold models, loaded from their checkpoints, on cached images.

One helper for every caller that needs a trained arm's outputs outside its training job: the
Grad-CAM maps and their localisation scores (`mskdx.evaluate.localisation`), the failure gallery
(`mskdx.evaluate.figures.failures`), external cohorts (`mskdx.evaluate.external`) and new
patients (`mskdx.deploy.predict`). A `FoldModel` is the network of one `checkpoint_final.pt`
with what rebuilds its input (the checkpoint's normalization and input size) and its batch
size; `probabilities` runs the very functions that wrote the development predictions
(`mskdx.learn.loop.predict` on a `DeviceImages` bank), `cams` the Grad-CAM of
`mskdx.learn.gradcam`.

Folds are given by the caller with their checkpoints (`{fold: path}`, from
`mskdx.config.layout`), never parsed back out of a path.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from mskdx.errors import PreprocessError
from mskdx.learn import augment, gradcam
from mskdx.learn.checkpoints import load_final, prepare_images

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]


@dataclass
class FoldModel:
    """One fold model of a trained arm, in eval mode on `device`."""

    fold: int
    checkpoint: str
    model: nn.Module
    state: dict
    device: torch.device

    @property
    def input_size(self) -> tuple[int, int]:
        """(rows, columns) of the images the model was trained on."""
        _, rows, cols = (int(v) for v in self.state["input_shape"])
        return rows, cols

    @property
    def batch_size(self) -> int:
        return int(self.state["args"]["train_spec"]["batch_size"])

    def check_images(self, images: NDArray, source: PathLike | str) -> None:
        """Images of another size than the model's input: a clear error naming both sizes."""
        if tuple(images.shape[1:]) != self.input_size:
            rows, cols = self.input_size
            raise PreprocessError(
                f"{source}: images are {images.shape[2]}x{images.shape[1]} (width x height), "
                f"the model of fold {self.fold} was trained on {cols}x{rows}; expected the "
                "preprocessing the arm was trained with (its arm.json)"
            )

    def probabilities(self, images: NDArray[np.uint8], source: PathLike | str = "images"):
        """P(positive) of each uint8 grey image (n, H, W), as the training job computes it."""
        from mskdx.learn.device import DeviceImages
        from mskdx.learn.loop import predict

        self.check_images(images, source)
        norm = augment.Normalization.from_dict(self.state["normalization"])
        labels = np.zeros(len(images), dtype=np.int64)  # the bank needs labels; unused here
        bank = DeviceImages.create(np.ascontiguousarray(images), labels, norm, self.device)
        index = torch.arange(len(images), device=self.device)
        return predict(self.model, bank, index, batch_size=self.batch_size)

    def cams(
        self, images: NDArray[np.uint8], layer: str = "last", source: PathLike | str = "images"
    ) -> NDArray[np.float32]:
        """Grad-CAM maps (n, H, W) in [0, 1] of the positive class at `layer`."""
        self.check_images(images, source)
        batch = prepare_images(images, self.state["normalization"], self.device)
        target = gradcam.cam_layer(self.model, layer, tuple(batch.shape[1:]))
        return gradcam.compute_cams(self.model, batch, target)


def load_fold(fold: int, checkpoint: PathLike, device: str | torch.device = "cpu") -> FoldModel:
    """The fold model of one `checkpoint_final.pt` (eval mode, on `device`)."""
    device = torch.device(device)
    model, state = load_final(checkpoint, device)
    return FoldModel(int(fold), str(checkpoint), model, state, device)


def fold_models(
    checkpoints: Mapping[int, PathLike],
    device: str | torch.device = "cpu",
    threads: int | None = None,
) -> Iterator[FoldModel]:
    """The fold models of an arm in fold order, loaded one at a time (one in memory at once).

    `threads` fixes torch's intra-op threads (config `train.threads`): the thread count sets the
    order of floating-point sums, so it is the config's, never the scheduler's grant.
    """
    if not checkpoints:
        raise ValueError("no fold model given; expected {fold: checkpoint_final.pt}")
    if threads:
        torch.set_num_threads(int(threads))
    for fold in sorted(checkpoints):
        yield load_fold(fold, checkpoints[fold], device)
