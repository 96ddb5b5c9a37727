"""Train one study x arm x fold job (rule train_fold)."""

from mskdx.io import log_to
from mskdx.learn.train import train_fold

log_to(snakemake.log[0])
train_fold(
    snakemake.input.images,
    snakemake.input.manifest,
    snakemake.input.splits,
    study=snakemake.wildcards.study,
    arm=snakemake.wildcards.arm,
    fold=int(snakemake.wildcards.fold),
    arm_spec=snakemake.params.arm_spec,
    train_spec=snakemake.params.train_spec,
    seed=snakemake.params.seed,
    train_repeat=snakemake.params.train_repeat,
    **snakemake.output,
)
