"""Networks of both studies, their size (gout paper Table II) and pretrained-weight loading.

Gout (first-MTPJ ultrasound): ResNet18-style nets with 2, 3, 4 or 6 residual blocks. The paper's
Table II is reproduced by ResNet18 variants that keep ResNet18's stem (7x7/2 conv, BN, ReLU,
3x3/2 max-pool) and its four stages (64, 128, 256, 512 channels; stride 1, 2, 2, 2 on the first
block of a stage, 1x1/s conv + BN shortcut when the shape changes) but drop leading blocks:

    blocks  blocks per stage (layer1..layer4)  stem width
    2       0, 0, 1, 1                         128 (block 128->256/2, block 256->512/2)
    3       0, 1, 1, 1                         64
    4       1, 1, 1, 1                         64
    6       2, 2, 1, 1                         64

followed by global average pooling and a 2-class linear head; the input is grey repeated to 3
channels.

OLT (talus MRI): torchvision ResNet50 with ImageNet weights (``ResNet50_Weights.IMAGENET1K_V1``,
the original torchvision/Caffe-era weights: the paper only says "ImageNet"; V1 is what
``pretrained=True`` meant when the paper was written) and a new ``nn.Linear(2048, 2)`` head, all
layers fine-tuned.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import NamedTuple

import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock

from mskdx.errors import ConfigError, MskdxError

log = logging.getLogger(__name__)

NUM_CLASSES = 2

#: blocks -> (BasicBlocks in layer1..layer4, stem width)
BLOCK_PLANS: dict[int, tuple[tuple[int, int, int, int], int]] = {
    2: ((0, 0, 1, 1), 128),
    3: ((0, 1, 1, 1), 64),
    4: ((1, 1, 1, 1), 64),
    6: ((2, 2, 1, 1), 64),
}
STAGE_WIDTHS = (64, 128, 256, 512)
STAGE_STRIDES = (1, 2, 2, 2)
TABLE_II_INPUT = (3, 320, 700)  # C, H, W: the paper's 700x320 (WxH) crop

RESNET50_WEIGHTS = torchvision.models.ResNet50_Weights.IMAGENET1K_V1
RESNET50_WEIGHTS_ENV = "MSKDX_RESNET50_WEIGHTS"


class WeightsUnavailableError(MskdxError, RuntimeError):
    """Pretrained weights that are neither cached nor downloadable."""


class ResidualNet(nn.Module):
    """ResNet18-style net with `stage_blocks` BasicBlocks per stage (0 = stage left out)."""

    def __init__(
        self,
        stage_blocks: tuple[int, int, int, int],
        stem_width: int = 64,
        num_classes: int = NUM_CLASSES,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if len(stage_blocks) != 4 or sum(stage_blocks) < 1 or min(stage_blocks) < 0:
            raise ConfigError(f"stage_blocks={stage_blocks}: expected 4 counts >= 0, sum >= 1")
        self.stage_blocks = tuple(stage_blocks)
        self.conv1 = nn.Conv2d(in_channels, stem_width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        width = stem_width
        for i, (n, planes, stride) in enumerate(
            zip(stage_blocks, STAGE_WIDTHS, STAGE_STRIDES, strict=True), start=1
        ):
            blocks = []
            for j in range(n):
                s = stride if j == 0 else 1
                downsample = None
                if s != 1 or width != planes:
                    downsample = nn.Sequential(
                        nn.Conv2d(width, planes, 1, stride=s, bias=False), nn.BatchNorm2d(planes)
                    )
                blocks.append(BasicBlock(width, planes, s, downsample))
                width = planes
            # an empty stage is an empty Sequential (identity), so layer names stay ResNet18's
            self.add_module(f"layer{i}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width, num_classes)
        # torchvision's ResNet initialisation
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet_blocks(blocks: int, num_classes: int = NUM_CLASSES) -> ResidualNet:
    """Build the gout net with `blocks` residual blocks (2, 3, 4 or 6)."""
    if blocks not in BLOCK_PLANS:
        raise ConfigError(f"blocks={blocks!r}: expected one of {sorted(BLOCK_PLANS)}")
    stage_blocks, stem_width = BLOCK_PLANS[blocks]
    return ResidualNet(stage_blocks, stem_width, num_classes)


def resnet50_cache_file() -> Path:
    """Path where torchvision looks for the ImageNet ResNet50 weights (torch hub cache)."""
    url = RESNET50_WEIGHTS.url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict):
        raise WeightsUnavailableError(f"{path}: not a state dict; expected a mapping of tensors")
    return state


def _missing_weights_message(cache_file: Path, reason: str) -> str:
    url = RESNET50_WEIGHTS.url
    return (
        f"ImageNet weights for ResNet50 (torchvision {RESNET50_WEIGHTS}) are not available: "
        f"{reason}. Put the file {cache_file.name} at {cache_file} (download it from {url}, e.g. "
        f"`mkdir -p {cache_file.parent} && curl -L -o {cache_file} {url}`; the folder follows "
        f"TORCH_HOME, default ~/.cache/torch), or point {RESNET50_WEIGHTS_ENV} (or the arm's "
        f"weights_path) at a copy of it, or set the arm's `weights: none` to train from scratch."
    )


def resnet50_imagenet_state(weights_path: str | os.PathLike[str] | None = None) -> dict:
    """Load the ImageNet ResNet50 state dict (1000-class head).

    Looks, in order, at `weights_path`, the environment variable MSKDX_RESNET50_WEIGHTS and
    torchvision's cache file (`resnet50_cache_file()`), each checked against the hash in its name;
    only when none is given and the cache file is missing does it try torchvision's download into
    that cache (`mskdx.learn.weights.resnet50_file`).
    """
    from mskdx.learn import weights  # imports this module

    path = weights.resnet50_file(weights_path)
    log.info("ResNet50 ImageNet weights from %s", path)
    return _read_state_dict(path)


def resnet50(
    weights: str = "imagenet",
    weights_path: str | os.PathLike[str] | None = None,
    num_classes: int = NUM_CLASSES,
) -> nn.Module:
    """Build torchvision ResNet50 (ImageNet V1 weights or random) with a new `num_classes` head."""
    if weights not in ("imagenet", "none"):
        raise ConfigError(f"weights={weights!r}: expected 'imagenet' or 'none'")
    model = torchvision.models.resnet50(weights=None)
    if weights == "imagenet":
        state = resnet50_imagenet_state(weights_path)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise WeightsUnavailableError(
                f"ResNet50 ImageNet weights do not fit torchvision's resnet50: {exc}"
            ) from exc
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


def build(arm_spec: dict) -> nn.Module:
    """Build an arm's network from its config spec (`architecture`, `blocks`, `weights`).

    The random initialisation draws from torch's global RNG: seed it first.
    """
    architecture = arm_spec.get("architecture")
    if architecture == "resnet_blocks":
        if "blocks" not in arm_spec:
            raise ConfigError(f"arm {dict(arm_spec)}: architecture resnet_blocks needs `blocks`")
        if arm_spec.get("weights", "none") != "none":
            raise ConfigError(
                f"arm {dict(arm_spec)}: resnet_blocks has no pretrained weights; "
                "expected weights: none or no weights key"
            )
        return resnet_blocks(int(arm_spec["blocks"]))
    if architecture == "resnet50":
        return resnet50(arm_spec.get("weights", "imagenet"), arm_spec.get("weights_path"))
    if architecture in ("torchvision", "python"):
        from mskdx.learn import arms

        return arms.build_arm(arm_spec)
    raise ConfigError(
        f"arm {dict(arm_spec)}: architecture={architecture!r}; expected resnet_blocks, resnet50, "
        "torchvision or python"
    )


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
            convolutional stage is found by a forward pass (`arms.last_conv_stage`; 3x224x224
            when not given).

    Raises:
        ValueError: an unknown module path, or a ResNet stage without convolutions in this
            network (the 2-block net has no layer1 or layer2 blocks).
        TypeError: the model has no convolution that gives a (N, C, H, W) map.
    """
    from mskdx.learn import arms

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
        return arms.module_by_path(model, stage)
    for name in reversed(CAM_STAGES):
        if _has_convolutions(chosen := getattr(model, name, None)):
            return chosen
    return arms.last_conv_stage(model, tuple(input_shape or (3, 224, 224)))


class Complexity(NamedTuple):
    """Parameter count and multiply-accumulates of one forward pass of one image."""

    params: int
    macs: int


def _module_macs(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    if isinstance(m, nn.modules.conv._ConvNd):
        kernel = 1
        for k in m.kernel_size:
            kernel *= k
        return y.numel() * (m.in_channels // m.groups * kernel + (m.bias is not None))
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        return 2 * x.numel() * (2 if m.affine else 1)
    if isinstance(m, nn.Linear):
        return m.in_features * y.numel()
    if isinstance(m, nn.AdaptiveAvgPool2d):
        kernel = (x.shape[-2] // y.shape[-2]) * (x.shape[-1] // y.shape[-1])
        return (kernel + 1) * y.numel()
    return 0  # ReLU, max-pool, identity, residual additions: thop counts them as 0


def forward_once(model: nn.Module, input_shape: tuple[int, ...], handles: list) -> None:
    """Run one image of zeros of `input_shape` through `model` in eval mode, for the forward
    hooks `handles` to see it; then restore the model's mode and remove the hooks."""
    was_training = model.training
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    try:
        model.eval()
        with torch.inference_mode():
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()


def complexity(model: nn.Module, input_shape: tuple[int, ...] = TABLE_II_INPUT) -> Complexity:
    """Count parameters and forward MACs of `model` for one image of `input_shape` (C, H, W).

    Convention of thop >= 0.1 (ultralytics-thop), which reproduces the gout paper's Table II:
    conv = output elements x (Cin/groups x kh x kw + bias); batch norm = 4 x elements (2, doubled
    for the affine part); linear = in_features x output elements; adaptive average pooling =
    (pool window + 1) x output elements; ReLU, max-pooling and residual additions = 0. FLOPs in the
    usual sense are about 2 x MACs.
    """
    total = 0
    handles = []

    def hook(m: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        total += _module_macs(m, inputs[0], output)

    for m in model.modules():
        if next(m.children(), None) is None:  # leaves only
            handles.append(m.register_forward_hook(hook))
    forward_once(model, input_shape, handles)
    params = sum(p.numel() for p in model.parameters())
    return Complexity(params=params, macs=int(total))
