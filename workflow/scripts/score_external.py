"""Score an external cohort with every fold model of one arm (rule score_external)."""

from mskdx.evaluate.external import score_cohort_step
from mskdx.io import log_to

log_to(snakemake.log[0])
score_cohort_step(
    dict(zip(snakemake.params.folds, snakemake.input.checkpoints, strict=True)),
    snakemake.input.images,
    snakemake.input.manifest,
    study=snakemake.wildcards.study,
    arm=snakemake.wildcards.arm,
    sequence=snakemake.params.sequence,
    device="cpu" if snakemake.resources.get("gpu", 0) == 0 else snakemake.params.device,
    threads=snakemake.params.threads,
    **snakemake.output,
)
