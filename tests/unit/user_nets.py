"""A user's own networks, importable as `user_nets:<function>` (the arm spec's `builder`)."""

from torch import nn


def tiny_net(width: int = 8) -> nn.Module:
    """A two-convolution net with 2 logits."""
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.Conv2d(width, width, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(width, 2),
    )


def three_logits() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))


def not_a_module() -> str:
    return "a string"


NOT_CALLABLE = 3
