"""Grad-CAM heat maps of a trained network, and the layer they are taken at.

`compute_cams` wraps the maintained `pytorch_grad_cam` library (Selvaraju et al., Grad-CAM, IJCV
2020). The target layer is `cam_layer(model, stage)`: the last ResNet stage with convolutions,
for other networks the last module with a convolution that gives a (N, C, H, W) map
(`last_conv_stage`), or a module path (`module_by_path`; config `studies.<study>.gradcam.layer`
or the arm's own `gradcam.layer`).

How well the maps point at the lesions (energy inside the mask, the pointing game) is scored by
`mskdx.evaluate.localisation`, a later stage.
"""

from __future__ import annotations

import difflib
import logging

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from mskdx.learn.models import forward_once

log = logging.getLogger(__name__)


def compute_cams(
    model: nn.Module,
    batch: torch.Tensor,
    target_layer: nn.Module,
    target_class: int = 1,
    *,
    batch_size: int = 16,
) -> NDArray[np.float32]:
    """Compute Grad-CAM maps of `target_class` for a normalised batch.

    Args:
        batch: (N, 3, H, W) float, normalised as for training. It may come from
            `torch.inference_mode()`; it is cloned into a tensor that requires grad.
        target_layer: a submodule of `model`, usually the last residual stage
            (`mskdx.learn.models.cam_layer`).
        batch_size: images per forward/backward pass (memory bound only; results do not depend
            on it because the model runs in eval mode).

    Returns:
        (N, H, W) float32 in [0, 1] on the CPU: ReLU of the gradient-weighted activations,
        upsampled bilinearly to H x W and min-max scaled per image by the library (so the maximum
        is 1; a map with no positive evidence for the class is all zeros).

    The model is put in eval mode (BatchNorm/Dropout deterministic) and its training flag and the
    parameters' requires_grad flags are restored afterwards; the library clears the parameters'
    `.grad`. Runs on the model's device.
    """
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    if batch.ndim != 4 or batch.shape[1] != 3:
        raise ValueError(f"Grad-CAM batch has shape {tuple(batch.shape)}; expected (N, 3, H, W)")
    if not any(m is target_layer for m in model.modules()):
        raise ValueError(
            f"target_layer {type(target_layer).__name__} is not a submodule of the model; "
            "expected e.g. model.layer4[-1]"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size {batch_size}; expected >= 1")
    n, _, height, width = batch.shape
    if n == 0:
        return np.zeros((0, height, width), dtype=np.float32)

    was_training = model.training
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    cam = GradCAM(model=model, target_layers=[target_layer])  # puts the model in eval mode
    out: list[np.ndarray] = []
    try:
        # The library needs autograd: leave any inference_mode/no_grad of the caller, and make the
        # input require grad so the target layer's output has a graph even if the weights are
        # frozen. The weights themselves need no gradient (saves memory and time).
        with torch.inference_mode(False), torch.enable_grad():
            for p in params:
                p.requires_grad_(False)
            for start in range(0, n, batch_size):
                chunk = batch[start : start + batch_size].detach().clone().float()
                chunk.requires_grad_(True)
                targets = [ClassifierOutputTarget(target_class) for _ in range(len(chunk))]
                try:
                    maps = cam(input_tensor=chunk, targets=targets)
                except IndexError as err:
                    raise ValueError(
                        f"target_class {target_class} is not an output of the model ({err}); "
                        "expected a class index of its logits"
                    ) from err
                out.append(np.asarray(maps, dtype=np.float32))
                cam.outputs = None  # drop the retained graph before the next chunk
    finally:
        cam.activations_and_grads.release()
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)
        model.train(was_training)
    cams = np.concatenate(out, axis=0)
    if cams.shape != (n, height, width):
        raise ValueError(f"Grad-CAM returned shape {cams.shape}; expected {(n, height, width)}")
    return np.clip(cams, 0.0, 1.0)


#: the ResNet stages a Grad-CAM may target, shallowest first
CAM_STAGES = ("layer1", "layer2", "layer3", "layer4")


def _has_convolutions(stage: object) -> bool:
    return isinstance(stage, nn.Module) and any(isinstance(m, nn.Conv2d) for m in stage.modules())


def cam_layer(
    model: nn.Module, stage: str = "last", input_shape: tuple[int, ...] | None = None
) -> nn.Module:
    """Return the Grad-CAM target layer: the last convolutional stage, or the named one.

    Args:
        stage: "last" (the last stage with convolutions; the default and Grad-CAM's usual
            choice), one of `CAM_STAGES` or a module path such as "features.7" (config
            `studies.<study>.gradcam.layer`, or the arm's own `gradcam.layer`). An earlier
            stage gives a map twice as fine per stage (layer3: 16x coarser than the input
            instead of 32x), at some cost in class specificity.
        input_shape: (C, H, W) of the input, for networks without ResNet stages, whose last
            convolutional stage is found by a forward pass (`last_conv_stage`; 3x224x224
            when not given).

    Raises:
        ValueError: an unknown module path, or a ResNet stage without convolutions in this
            network (the 2-block net has no layer1 or layer2 blocks).
        TypeError: the model has no convolution that gives a (N, C, H, W) map.
    """
    if stage in CAM_STAGES:
        chosen = getattr(model, stage, None)
        if chosen is None and not hasattr(model, "layer4"):
            raise ValueError(
                f"Grad-CAM layer {stage!r}: {type(model).__name__} has no ResNet stages; "
                "expected 'last' or a module path of this network"
            )
        if not _has_convolutions(chosen):
            raise ValueError(
                f"Grad-CAM layer {stage!r}: {type(model).__name__} has no convolutions in that "
                "stage; choose a later one or 'last'"
            )
        return chosen
    if stage != "last":
        return module_by_path(model, stage)
    for name in reversed(CAM_STAGES):
        if _has_convolutions(chosen := getattr(model, name, None)):
            return chosen
    return last_conv_stage(model, tuple(input_shape or (3, 224, 224)))


def last_conv_stage(model: nn.Module, input_shape: tuple[int, ...] = (3, 224, 224)) -> nn.Module:
    """The last module (in execution order) that holds a convolution and gives a (N, C, H, W)
    map: the outermost of those ending with the last feature map (efficientnet/densenet/convnext:
    `features`; vit: the patch embedding `conv_proj`, its only convolution)."""
    convs = {
        name
        for name, m in model.named_modules()
        if name and any(isinstance(c, nn.modules.conv._ConvNd) for c in m.modules())
    }
    order: list[str] = []
    handles = [
        m.register_forward_hook(
            lambda mod, i, out, name=name: (
                order.append(name) if torch.is_tensor(out) and out.ndim == 4 else None
            )
        )
        for name, m in model.named_modules()
        if name in convs
    ]
    forward_once(model, input_shape, handles)
    if not order:
        raise TypeError(f"{type(model).__name__}: no convolution gives a (N, C, H, W) map")
    return model.get_submodule(order[-1])


def module_by_path(model: nn.Module, path: str) -> nn.Module:
    """The submodule at a dotted path (`features.7`); the error lists close paths."""
    try:
        return model.get_submodule(path)
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n]
        close = difflib.get_close_matches(path, names, n=5, cutoff=0.5)
        raise ValueError(
            f"Grad-CAM layer {path!r}: {type(model).__name__} has no such module; expected 'last' "
            f"or a module path{' such as ' + ', '.join(close) if close else ''}"
        ) from None
