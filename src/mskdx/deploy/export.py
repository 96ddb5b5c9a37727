"""Portable models: each fold model of an arm as ONNX and TorchScript, with its preprocessing.

`mskdx export --study S --arm A` writes, per fold, `fold_<k>.onnx`, `fold_<k>.pt` (TorchScript)
and `fold_<k>.json`. Both models take the normalised network input (float32, N x 3 x H x W)
and return P(positive) (float32, N): the softmax of the two logits, class 1, as the workflow's
predictions.csv holds it. The JSON says how an image becomes that input, from the checkpoint
itself (input size, the grey level repeated to 3 identical channels, the normalization with
its mean/std) and from the extraction settings (the crop rule), so that a user outside this
pipeline can reproduce the workflow's probabilities; `prepare_input` is that recipe in numpy
and nothing else (the export test runs it with onnxruntime against predictions.csv).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from mskdx.io import atomic_path, write_text

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]

FORMAT = "mskdx.export/1"
ONNX_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "input", "probability"


def crop_rule(preprocess: Mapping) -> str:
    """The extraction's crop and resize, in words, from the study's preprocess settings."""
    if preprocess.get("kind") == "ultrasound":
        w, h, scale = preprocess["crop_width"], preprocess["crop_height"], preprocess["scale"]
        return (
            f"ultrasound: tissue (B-mode) region from SequenceOfUltrasoundRegions, else the "
            f"image finder; a {w}x{h} box centred horizontally on it from its top edge, shifted "
            f"to stay inside the frame (small_capture={preprocess.get('small_capture', 'fit')}: a "
            f"box of the {w}:{h} aspect resized); grey level; resized by {scale} (bilinear, "
            "anti-aliased) to uint8 (mskdx.ingest.preprocess)"
        )
    size = preprocess["size"]
    return (
        f"MRI: each slice windowed to its 0.5-99.5th percentiles, to uint8, resized to "
        f"{size}x{size} (bilinear, anti-aliased) (mskdx.ingest.preprocess.resize_mri)"
    )


def describe(state: Mapping, *, study: str, arm: str, fold: int, preprocess: Mapping) -> dict:
    """The JSON beside an exported model: what its input is and how to make it."""
    channels, height, width = (int(v) for v in state["input_shape"])
    norm = dict(state["normalization"])
    formulas = {
        "image_zscore": "x = (g - mean(g)) / max(std(g), 1) per image (population std of "
        "its grey levels g in 0..255), the same value in all 3 channels",
        "train_stats": "x = (g - mean[0]) / std[0], mean/std of the training fold's grey "
        "levels (0..255), the same value in all 3 channels",
        "imagenet": "x[c] = (g - mean[c]) / std[c] for c = R, G, B; mean/std are ImageNet's "
        "scaled to grey levels 0..255",
    }
    return {
        "format": FORMAT,
        "study": study,
        "arm": arm,
        "fold": fold,
        "architecture": dict(state["arm_spec"]),
        "input": {
            "name": INPUT_NAME,
            "shape": ["N", channels, height, width],
            "dtype": "float32",
            "height": height,
            "width": width,
            "channel_order": "RGB, each channel the same grey image (grey repeated 3 times)",
        },
        "output": {
            "name": OUTPUT_NAME,
            "shape": ["N"],
            "meaning": "probability of the positive class (softmax of the 2 logits, class 1)",
        },
        "normalization": {**norm, "min_std": 1.0, "formula": formulas.get(norm["kind"], "")},
        "preprocessing": {**dict(preprocess), "rule": crop_rule(preprocess)},
        "selected_epoch": state.get("epoch"),
    }


def prepare_input(images: np.ndarray, meta: Mapping) -> np.ndarray:
    """The network input (N, 3, H, W) float32 of uint8 grey images, from the JSON alone."""
    grey = np.asarray(images, dtype=np.float64)
    norm = meta["normalization"]
    if norm["kind"] == "image_zscore":
        flat = grey.reshape(len(grey), -1)
        mean = flat.mean(axis=1)
        std = np.sqrt(np.maximum((flat * flat).mean(axis=1) - mean * mean, 0.0))
        scale = 1.0 / np.maximum(std, float(norm.get("min_std", 1.0)))
        scale, shift = scale[:, None], (-mean * scale)[:, None]
    else:
        mean = np.asarray(norm["mean"], dtype=np.float64)
        std = np.maximum(np.asarray(norm["std"], dtype=np.float64), 1e-12)
        scale, shift = (1.0 / std)[None, :], (-mean / std)[None, :]
    # float32 as the workflow computes it: x * scale + shift
    x = grey.astype(np.float32)[:, None] * scale.astype(np.float32)[:, :, None, None]
    x = x + shift.astype(np.float32)[:, :, None, None]
    return np.ascontiguousarray(np.broadcast_to(x, (len(grey), 3, *grey.shape[1:])), np.float32)


def _probability_model(model):
    import torch

    class Probability(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return torch.softmax(self.net(x), dim=1)[:, 1]

    return Probability(model).eval()


def export_checkpoint(
    checkpoint: PathLike, stem: PathLike, *, study: str, arm: str, fold: int, preprocess: Mapping
) -> dict[str, Path]:
    """Write `<stem>.onnx`, `<stem>.pt` (TorchScript) and `<stem>.json` of one fold model."""
    import warnings

    import torch

    from mskdx.learn.checkpoints import load_final

    model, state = load_final(checkpoint, "cpu")
    wrapped = _probability_model(model)
    example = torch.zeros(2, *(int(v) for v in state["input_shape"]))
    stem = Path(stem)
    paths = {ext: stem.with_suffix(f".{ext}") for ext in ("onnx", "pt", "json")}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter says it is legacy
        with atomic_path(paths["onnx"]) as tmp:
            torch.onnx.export(
                wrapped,
                (example,),
                str(tmp),
                dynamo=False,
                opset_version=ONNX_OPSET,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "N"}, OUTPUT_NAME: {0: "N"}},
            )
        traced = torch.jit.trace(wrapped, example)
        with atomic_path(paths["pt"]) as tmp:
            traced.save(str(tmp))
    meta = describe(state, study=study, arm=arm, fold=fold, preprocess=preprocess)
    meta["files"] = {
        ext: {"name": paths[ext].name, "sha256": _sha256(paths[ext])} for ext in ("onnx", "pt")
    }
    meta["checkpoint_sha256"] = _sha256(Path(checkpoint))
    write_text(paths["json"], json.dumps(meta, indent=2, sort_keys=True) + "\n")
    log.info("exported %s/%s fold %d to %s.{onnx,pt,json}", study, arm, fold, stem.name)
    return paths


def export_arm(
    checkpoints: Mapping[int, PathLike],
    out_dir: PathLike,
    *,
    study: str,
    arm: str,
    preprocess: Mapping,
) -> list[dict[str, Path]]:
    """Every fold model of an arm ({fold: checkpoint_final.pt}) into `out_dir`
    (fold_<k>.onnx/.pt/.json)."""
    out = Path(out_dir)
    return [
        export_checkpoint(
            checkpoints[fold],
            out / f"fold_{fold}",
            study=study,
            arm=arm,
            fold=fold,
            preprocess=preprocess,
        )
        for fold in sorted(checkpoints)
    ]


def export_trained_arm(
    study: str,
    arm: str,
    *,
    results: PathLike = "results",
    out_dir: PathLike | None = None,
    config: Mapping | None = None,
) -> tuple[Path, list[dict[str, Path]]]:
    """`mskdx export`: an arm's fold models with the settings it was trained with (arm.json;
    a disagreeing `config` is reported and not used). Returns the folder and the files."""
    from mskdx.config.layout import Layout
    from mskdx.deploy.predict import trained_arm

    layout = Layout(config or {}, results=results)
    settings, checkpoints = trained_arm(layout, study, arm, config)
    out = Path(out_dir) if out_dir else layout.export_dir(study, arm)
    preprocess = settings["extract"]["preprocess"]
    return out, export_arm(checkpoints, out, study=study, arm=arm, preprocess=preprocess)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
