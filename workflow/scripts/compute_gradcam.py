"""Grad-CAM maps and localisation scores of sampled test images of every fold of one arm
(rule compute_gradcam)."""

from mskdx.evaluate.localisation import compute_gradcam_step
from mskdx.io import log_to

log_to(snakemake.log[0])
compute_gradcam_step(
    snakemake.input.checkpoints,
    snakemake.input.predictions,
    snakemake.input.images,
    snakemake.input.masks,
    snakemake.input.manifest,
    study=snakemake.wildcards.study,
    arm=snakemake.wildcards.arm,
    folds=snakemake.params.folds,
    samples=snakemake.params.samples,
    seed=snakemake.params.seed,
    tolerance_px=snakemake.params.tolerance_px,
    layer=snakemake.params.layer,
    threads=snakemake.params.threads,
    **snakemake.output,
)
