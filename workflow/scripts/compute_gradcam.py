"""Grad-CAM maps and localisation scores of sampled test images (rule compute_gradcam)."""

from mskdx.io import log_to
from mskdx.steps import compute_gradcam_step

log_to(snakemake.log[0])
compute_gradcam_step(
    snakemake.input.checkpoint,
    snakemake.input.predictions,
    snakemake.input.images,
    snakemake.input.masks,
    snakemake.input.manifest,
    study=snakemake.wildcards.study,
    arm=snakemake.wildcards.arm,
    fold=int(snakemake.wildcards.fold),
    samples=snakemake.params.samples,
    seed=snakemake.params.seed,
    threads=snakemake.threads,
    **snakemake.output,
)
