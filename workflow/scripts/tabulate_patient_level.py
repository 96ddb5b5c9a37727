"""Gout Table III: patient diagnosis by a training-fold threshold (rule tabulate_patient_level)."""

from mskdx.io import log_to
from mskdx.steps import write_patient_level_table

log_to(snakemake.log[0])
write_patient_level_table(
    snakemake.input.predictions,
    step=snakemake.params.step,
    image_threshold=snakemake.params.image_threshold,
    **snakemake.output,
)
