"""Grad-CAM localisation against the lesion masks, per arm (rule summarise_localisation)."""

from mskdx.evaluate.localisation import summarise_localisation_step
from mskdx.io import log_to

log_to(snakemake.log[0])
summarise_localisation_step(snakemake.input.scores, **snakemake.output)
