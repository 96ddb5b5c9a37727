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
from typing import NamedTuple

import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock

from mskdx.errors import ConfigError
from mskdx.learn import weights as weights_module

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
        state = weights_module.resnet50_imagenet_state(weights_path)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise weights_module.WeightsUnavailableError(
                f"ResNet50 ImageNet weights do not fit torchvision's resnet50: {exc}"
            ) from exc
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


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
