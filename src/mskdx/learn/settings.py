"""The `studies.<study>.train` config block of a training job, checked once (`TrainSettings`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

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
    # intra-op CPU threads of the job's tensor maths: a fixed number, not the cores the scheduler
    # grants, because the thread count sets the order of floating-point sums (measured: --cores 1
    # vs 2 reversed the quick demo's ranking of the gout arms)
    threads: int = 2

    @classmethod
    def from_config(cls, spec: Mapping) -> TrainSettings:
        """The settings of a train block the config schema has checked (`mskdx.config.load`:
        required keys, names, choices and bounds); only the defaults of optional keys are
        filled in here, nothing is checked twice."""
        spec = dict(spec)
        return cls(
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
            threads=int(spec.get("threads", 2)),
        )
