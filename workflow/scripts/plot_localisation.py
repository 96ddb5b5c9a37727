"""Grad-CAM localisation scores per arm (rule plot_localisation)."""

from mskdx.evaluate.figures.gradcam import plot_localisation_step
from mskdx.io import log_to

log_to(snakemake.log[0])
outputs = [snakemake.output.figure, *snakemake.output.extra]
plot_localisation_step(snakemake.input.scores, outputs=outputs, style={"dpi": snakemake.params.dpi})
