"""Grad-CAM overlays of sampled test images (rule plot_gradcam)."""

from mskdx.evaluate.figures.gradcam import plot_gradcam_step
from mskdx.io import log_to

log_to(snakemake.log[0])
outputs = [snakemake.output.figure, *snakemake.output.extra]
plot_gradcam_step(
    snakemake.input.cams,
    outputs=outputs,
    style={"dpi": snakemake.params.dpi, "montage": snakemake.params.montage},
)
