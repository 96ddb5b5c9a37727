"""QC montage of random ultrasound crops per view (rule plot_crop_qc)."""

from mskdx.evaluate.figures.montage import plot_crop_qc_step
from mskdx.io import log_to

log_to(snakemake.log[0])
outputs = [snakemake.output.figure, *snakemake.output.extra]
plot_crop_qc_step(
    snakemake.input.images,
    snakemake.input.manifest,
    seed=snakemake.params.seed,
    outputs=outputs,
    style={"dpi": snakemake.params.dpi, "montage": snakemake.params.montage},
)
