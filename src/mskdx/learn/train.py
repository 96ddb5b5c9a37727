"""Train one study x arm x fold job (rule train_fold): resumable, deterministic on the CPU.

The job reads like torchvision's reference training script: set up, resume, then per epoch train
one epoch, evaluate, select, save the last checkpoint; then restore the selected epoch and write
the outputs (`_train_fold`). Its pieces live beside it in `mskdx.learn`: the config block
(`settings`), the fold's images (`job_data`), how the device is used (`device.DevicePlan`, which
holds the images there as a `DeviceImages` bank, augmented and normalised on the device by
`mskdx.learn.augment.make_batch`), one epoch and evaluation (`loop`), and the checkpoints with the
per-epoch random streams that make a resumed run replay an uninterrupted one (`checkpoints`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from numpy.typing import NDArray
from torch import nn

from mskdx.io import table_columns, write_table
from mskdx.learn import arms, augment
from mskdx.learn.augment import Normalization
from mskdx.learn.checkpoints import (
    STREAM_GLOBAL,
    STREAM_INIT,
    cpu_state,
    derive_seed,
    epoch_generator,
    load_last,
    save_final,
    save_last,
    seed_everything,
    training_seed,
)
from mskdx.learn.device import DeviceImages, DevicePlan
from mskdx.learn.experiment_log import ExperimentLog
from mskdx.learn.job_data import SUBSETS, JobData, class_weights, load_job_data
from mskdx.learn.loop import PROB_DECIMALS, EpochResult, evaluate, predict, train_one_epoch
from mskdx.learn.settings import TrainSettings

log = logging.getLogger(__name__)

HISTORY_COLUMNS = [
    "epoch",
    "train_loss",
    "train_acc",
    "train_auc",
    "val_loss",
    "val_acc",
    "val_auc",
    "lr",
    "seconds",
]
#: the columns of predictions.csv, as workflow/schemas/predictions.schema.yaml lists them
PREDICTION_COLUMNS = table_columns("predictions")
# the modules of mskdx.learn a job runs: a checkpoint_last.pt written by other code is not resumed
CODE_MODULES = "models arms augment settings job_data device loop checkpoints train".split()


def train_fold(
    images: str | os.PathLike[str],
    manifest: str | os.PathLike[str],
    splits: str | os.PathLike[str],
    *,
    study: str,
    arm: str,
    fold: int,
    arm_spec: Mapping,
    train_spec: Mapping,
    seed: int,
    checkpoint: str | os.PathLike[str],
    history: str | os.PathLike[str],
    predictions: str | os.PathLike[str],
    last_checkpoint: str | os.PathLike[str] | None = None,
    threads: int | None = None,
    plan: DevicePlan | None = None,
    train_repeat: int = 0,
) -> None:
    """Train one fold of one arm; write checkpoint_final.pt, history.csv and predictions.csv.

    Uses the cache rows of the fold's patients (of `arm_spec["sequence"]` only, if given); raises
    SplitError when a patient is in two subsets of the fold or missing from it. Keeps the epoch
    that `train.select` picks (best_val_auc: highest validation AUC, the earlier epoch on ties)
    and predicts every train, val and test image with it, without augmentation. Resumes from
    `last_checkpoint` (default: checkpoint_last.pt beside `checkpoint`, rewritten after every
    epoch) when it was written for the same settings, data and code, and deletes it once the
    outputs are written. On the CPU the same seed gives byte-identical predictions.csv.

    `plan` (default `DevicePlan.for_settings(train_spec)`) says how the device is used; it
    changes how fast, not what is computed, so a run may resume under another plan.

    `train_repeat` t >= 1 (train.repeats) trains the same fold again from
    `training_seed(seed, t)`: another initialisation and augmentation stream, the same split.

    `threads` (default `train.threads` of the settings) is the intra-op thread count of the
    tensor maths. It changes what is computed (the order of floating-point sums), so it comes
    from the config, never from the cores a scheduler grants the job.
    """
    arm_spec, train_spec = _plain(arm_spec), _plain(train_spec)
    settings = TrainSettings.from_config(train_spec)
    checkpoint = Path(checkpoint)
    job = _Job(
        study=study,
        arm=arm,
        fold=int(fold),
        seed=training_seed(int(seed), int(train_repeat)),
        train_repeat=int(train_repeat),
        arm_spec=arm_spec,
        train_spec=train_spec,
        settings=settings,
        plan=plan or DevicePlan.for_settings(settings),
        checkpoint=checkpoint,
        last=Path(last_checkpoint) if last_checkpoint else checkpoint.parent / "checkpoint_last.pt",
        history=Path(history),
        predictions=Path(predictions),
    )
    with job.plan.runtime(settings.threads if threads is None else threads):
        _train_fold(job, images, manifest, splits)


@dataclass(frozen=True)
class _Job:
    study: str
    arm: str
    fold: int
    seed: int  # this job's: training_seed(the run's seed, train_repeat)
    train_repeat: int
    arm_spec: dict
    train_spec: dict
    settings: TrainSettings
    plan: DevicePlan
    checkpoint: Path
    last: Path
    history: Path
    predictions: Path

    @property
    def tag(self) -> str:
        repeat = f" training repeat {self.train_repeat}" if self.train_repeat else ""
        return f"{self.study}/{self.arm} fold {self.fold}{repeat}"


@dataclass
class _Fit:
    """What one job trains with, and where it stands (the state a checkpoint_last.pt holds)."""

    data: JobData
    norm: Normalization
    weights: NDArray | None  # class weights (host), for the final checkpoint
    bank: DeviceImages
    rows: dict[str, NDArray[np.int64]]  # bank rows of each subset
    idx: dict[str, torch.Tensor]  # the same, on the device
    weight: torch.Tensor | None  # class weights on the device
    model: nn.Module  # its state dict is what is saved
    net: nn.Module  # what is called: the model, or its compiled form
    optimizer: torch.optim.Optimizer
    select: str
    args: dict  # what the run computes (resume key)
    best: dict | None = None
    history: list[dict] = field(default_factory=list)
    start: int = 1

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.data.images.shape[1:])


def _train_fold(job: _Job, images, manifest, splits) -> None:
    """Set up, resume, train epoch by epoch (train, evaluate, select, save), write outputs."""
    fit = _setup(job, images, manifest, splits)
    _resume(job, fit)
    _log_start(job, fit)
    # TensorBoard event files beside history.csv (a side file: mskdx.learn.experiment_log)
    events = ExperimentLog(job.history.parent / "tensorboard", fresh=fit.start == 1)
    started, done = time.perf_counter(), 0
    try:
        for epoch in range(fit.start, job.settings.epochs + 1):
            t0 = time.perf_counter()
            tr = _train_epoch(job, fit, epoch)
            va = _evaluate_val(job, fit)
            _select(fit, epoch, va)
            fit.history.append(_history_row(fit, epoch, tr, va, time.perf_counter() - t0))
            events.log_epoch(fit.history[-1])
            _save_last(job, fit, epoch)
            done += 1
            eta = (time.perf_counter() - started) / done * (job.settings.epochs - epoch)
            _log_epoch(job, fit, tr, va, eta)
    finally:
        events.close()
    selected, val_auc = _restore_selected(job, fit)
    _write_outputs(job, fit, selected, val_auc)
    job.last.unlink(missing_ok=True)  # a later rerun (e.g. new code) must not resume a finished run


def _setup(job: _Job, images, manifest, splits) -> _Fit:
    """Read the fold's images, put them on the device, build model and optimizer."""
    settings, plan = job.settings, job.plan
    data = load_job_data(
        images, manifest, splits, fold=job.fold, sequence=job.arm_spec.get("sequence")
    )
    rows = {s: data.rows(s) for s in SUBSETS}
    labels = data.table["label"].to_numpy(np.int64)
    norm = augment.make_normalization(settings.normalization, data.images, rows["train"])
    weights = (
        class_weights(labels[rows["train"]], f"{splits}: fold {job.fold} training subset")
        if settings.class_weights
        else None
    )
    select = settings.select
    if select == "best_val_auc" and len(rows["val"]) == 0:
        log.warning(
            "%s: select best_val_auc but no validation images; keeping the last epoch", job.tag
        )
        select = "last"
    args = {
        "study": job.study,
        "arm": job.arm,
        "fold": job.fold,
        "seed": job.seed,
        "arm_spec": job.arm_spec,
        "train_spec": job.train_spec,
        "data": _data_hash(data),
        "code": _code_hash(),
        "versions": {"torch": str(torch.__version__), "numpy": str(np.__version__)},
    }
    seed_everything(job.seed)
    torch.manual_seed(derive_seed(job.seed, job.fold, 0, STREAM_INIT))
    model, net = plan.place(arms.build(job.arm_spec))
    return _Fit(
        data=data,
        norm=norm,
        weights=weights,
        bank=DeviceImages.for_plan(data.images, labels, norm, plan),
        rows=rows,
        idx={s: plan.to_device(torch.as_tensor(r)) for s, r in rows.items()},
        weight=(
            None if weights is None else plan.to_device(torch.tensor(weights, dtype=torch.float32))
        ),
        model=model,
        net=net,
        optimizer=plan.optimizer(settings, model.parameters()),
        select=select,
        args=args,
    )


def _resume(job: _Job, fit: _Fit) -> None:
    """Continue from checkpoint_last.pt if it was written for the same run."""
    state = load_last(job.last, fit.args)
    if state is None:
        return
    fit.model.load_state_dict(state["model"])
    fit.optimizer.load_state_dict(state["optimizer"])
    DevicePlan.set_rng_state(state["rng"])
    fit.best, fit.history, fit.start = state["best"], list(state["history"]), state["epoch"] + 1
    log.info("%s: resuming from %s after epoch %d", job.tag, job.last, state["epoch"])


def _train_epoch(job: _Job, fit: _Fit, epoch: int) -> EpochResult:
    """One pass over the shuffled training images with this epoch's augmentations."""
    settings, plan = job.settings, job.plan
    gen = epoch_generator(job.seed, job.fold, epoch)
    torch.manual_seed(derive_seed(job.seed, job.fold, epoch, STREAM_GLOBAL))
    train_rows = torch.as_tensor(fit.rows["train"])
    order = train_rows[torch.randperm(len(train_rows), generator=gen)]
    params = (
        augment.sample_params(len(train_rows), settings.augment, *fit.shape, gen)
        if settings.augment.active
        else None
    )
    tr = train_one_epoch(
        fit.net,
        fit.optimizer,
        fit.bank,
        plan.to_device(order),
        None if params is None else plan.to_device(params),
        batch_size=settings.batch_size,
        weight=fit.weight,
        amp=plan.amp,
        progress=sys.stderr.isatty(),
    )
    if not math.isfinite(tr.loss):
        raise FloatingPointError(
            f"{job.tag}: training loss {tr.loss} at epoch {epoch}; "
            f"expected a finite loss (lower train.lr={settings.lr}?)"
        )
    return tr


def _evaluate_val(job: _Job, fit: _Fit) -> EpochResult | None:
    if fit.idx["val"].numel() == 0:
        return None
    return evaluate(
        fit.net,
        fit.bank,
        fit.idx["val"],
        batch_size=job.settings.batch_size,
        weight=fit.weight,
        amp=job.plan.amp,
    )


def _select(fit: _Fit, epoch: int, va: EpochResult | None) -> None:
    """Keep the weights of the best validation AUC so far (ties: the earlier epoch)."""
    if (
        fit.select == "best_val_auc"
        and va is not None
        and va.auc is not None
        and (fit.best is None or va.auc > fit.best["val_auc"])
    ):
        fit.best = {"epoch": epoch, "val_auc": va.auc, "model": cpu_state(fit.model)}


def _history_row(
    fit: _Fit, epoch: int, tr: EpochResult, va: EpochResult | None, seconds: float
) -> dict:
    return {
        "epoch": epoch,
        "train_loss": round(tr.loss, 6),
        "train_acc": round(tr.acc, 6),
        "train_auc": None if tr.auc is None else round(tr.auc, 6),
        "val_loss": None if va is None else round(va.loss, 6),
        "val_acc": None if va is None else round(va.acc, 6),
        "val_auc": None if va is None or va.auc is None else round(va.auc, 6),
        "lr": fit.optimizer.param_groups[0]["lr"],
        "seconds": round(seconds, 3),
    }


def _save_last(job: _Job, fit: _Fit, epoch: int) -> None:
    """checkpoint_last.pt: everything a killed run needs to go on after `epoch`."""
    save_last(
        job.last,
        model=fit.model,
        optimizer=fit.optimizer,
        epoch=epoch,
        args=fit.args,
        rng=DevicePlan.rng_state(),
        best=fit.best,
        history=fit.history,
    )


def _restore_selected(job: _Job, fit: _Fit) -> tuple[int, float | None]:
    """Load the weights `train.select` keeps; return their epoch and validation AUC."""
    if fit.select == "best_val_auc" and fit.best is not None:
        fit.model.load_state_dict(fit.best["model"])
        selected, val_auc = fit.best["epoch"], fit.best["val_auc"]
    else:
        if fit.select == "best_val_auc":
            log.warning(
                "%s: validation AUC undefined in every epoch (one class); keeping the last epoch",
                job.tag,
            )
        selected, val_auc = job.settings.epochs, fit.history[-1]["val_auc"]
    log.info("%s: selected epoch %d (%s, val AUC %s)", job.tag, selected, fit.select, _fmt(val_auc))
    return selected, val_auc


def _write_outputs(job: _Job, fit: _Fit, selected: int, val_auc: float | None) -> None:
    """predictions.csv (every image, selected weights), history.csv, checkpoint_final.pt."""
    table = fit.data.table
    all_rows = job.plan.to_device(torch.arange(len(table)))
    prob = predict(
        fit.net, fit.bank, all_rows, batch_size=job.settings.batch_size, amp=job.plan.amp
    )
    out = table.assign(
        study=job.study, arm=job.arm, fold=job.fold, prob=np.round(prob, PROB_DECIMALS)
    )
    write_table(out[PREDICTION_COLUMNS], job.predictions, schema="predictions")
    history = pd.DataFrame(fit.history).reindex(columns=HISTORY_COLUMNS)
    write_table(history, job.history, schema="history")
    save_final(
        job.checkpoint,
        model=fit.model,
        epoch=selected,
        epochs=job.settings.epochs,
        select=fit.select,
        val_auc=val_auc,
        args=fit.args,
        arm_spec=job.arm_spec,
        normalization=fit.norm,
        class_weights=fit.weights,
        shape=fit.shape,
    )


def _log_start(job: _Job, fit: _Fit) -> None:
    table = fit.data.table
    log.info(
        "%s: %d train / %d val / %d test images of %d patients, 3x%dx%d, %.2fM params, %s, "
        "%d epochs of batch %d",
        job.tag,
        fit.idx["train"].numel(),
        fit.idx["val"].numel(),
        fit.idx["test"].numel(),
        table["patient"].nunique(),
        *fit.shape,
        sum(p.numel() for p in fit.model.parameters()) / 1e6,
        job.plan.describe(),
        job.settings.epochs,
        job.settings.batch_size,
    )


def _log_epoch(job: _Job, fit: _Fit, tr: EpochResult, va: EpochResult | None, eta: float) -> None:
    row = fit.history[-1]
    log.info(
        "%s epoch %d/%d (%d%%): train loss %.4f acc %.3f auc %s | val loss %s acc %s auc %s | "
        "lr %.2g | %.1f s, %.0f img/s | ETA %s",
        job.tag,
        row["epoch"],
        job.settings.epochs,
        100 * row["epoch"] // job.settings.epochs,
        tr.loss,
        tr.acc,
        _fmt(tr.auc),
        _fmt(va and va.loss),
        _fmt(va and va.acc),
        _fmt(va and va.auc),
        row["lr"],
        row["seconds"],
        tr.images / max(row["seconds"], 1e-9),
        _clock(eta),
    )


def _clock(seconds: float) -> str:
    """h:mm:ss of a duration (the time left of a job)."""
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def _fmt(value: float | None) -> str:
    return (
        "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"
    )


def _plain(obj):
    """Config mappings (possibly snakemake/OmegaConf-like) as plain JSON types."""
    return json.loads(json.dumps(obj, default=dict))


def _code_hash() -> str:
    h = hashlib.sha256()
    for name in CODE_MODULES:
        h.update(Path(__file__).with_name(f"{name}.py").read_bytes())
    return h.hexdigest()[:16]


def _data_hash(data: JobData) -> str:
    h = hashlib.blake2b(digest_size=16)
    for i in range(0, len(data.images), 256):  # the same digest as one update, in bounded memory
        h.update(memoryview(np.ascontiguousarray(data.images[i : i + 256])).cast("B"))
    h.update(data.table.to_csv(index=False, lineterminator="\n").encode())
    return h.hexdigest()
