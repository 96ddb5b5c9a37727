"""The `studies.<study>.train` config block of a training job, checked once (`TrainSettings`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mskdx.errors import ConfigError
from mskdx.learn import augment
from mskdx.learn.augment import AugmentSpec


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
