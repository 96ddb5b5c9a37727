"""TensorBoard event files of a training job, beside its history.csv.

Each job writes `results/{study}/models/{arm}/fold_{fold}/tensorboard/`: loss, accuracy and AUC
of the training and validation images, the learning rate and the seconds of every epoch, at
step = epoch, so that `tensorboard --logdir results/` shows every arm and fold side by side
(run names are the folders). The folder is a side file of rule train_fold, not a declared
output: history.csv holds the same numbers and is what the tables and figures read. A job
that starts from epoch 1 clears the folder first, so a rerun never mixes two runs; a resumed one
adds the epochs it trains.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

#: history.csv column -> TensorBoard tag
SCALARS = {
    "train_loss": "loss/train",
    "val_loss": "loss/val",
    "train_acc": "accuracy/train",
    "val_acc": "accuracy/val",
    "train_auc": "auc/train",
    "val_auc": "auc/val",
    "lr": "lr",
    "seconds": "seconds_per_epoch",
}


class ExperimentLog:
    """Per-epoch scalars to TensorBoard (a no-op, with one warning, without tensorboard)."""

    def __init__(self, folder: Path, *, fresh: bool) -> None:
        self.folder = Path(folder)
        self.writer = None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:  # tensorboard is in the torch extra; a bare env goes on
            log.warning("no TensorBoard event files (%s); pip install tensorboard", exc)
            return
        if fresh and self.folder.exists():
            shutil.rmtree(self.folder)
        self.writer = SummaryWriter(log_dir=str(self.folder))

    def log_epoch(self, row: dict) -> None:
        """Write one history.csv row (missing values, e.g. no validation images, are left out)."""
        if self.writer is None:
            return
        for column, tag in SCALARS.items():
            value = row.get(column)
            if value is not None and value == value:  # not NaN
                self.writer.add_scalar(tag, float(value), global_step=int(row["epoch"]))
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
