"""Write the patient-level split file of a study (rule make_splits)."""

from mskdx.errors import MskdxError
from mskdx.io import exit_on_error, log_to
from mskdx.learn.splits import make_splits

log_to(snakemake.log[0])
cfg = snakemake.params.splits
try:
    make_splits(
        snakemake.input.manifest,
        snakemake.output[0],
        method=cfg["method"],
        seed=snakemake.params.seed,
        folds=cfg.get("folds", 5),
        validation_fraction=cfg.get("validation_fraction", 0.0),
        fractions=cfg.get("fractions"),
        user_file=cfg.get("file", ""),
        class_names=tuple(snakemake.params.class_names),
        repeats=cfg.get("repeats", 1),
    )
except MskdxError as err:
    exit_on_error(err)
