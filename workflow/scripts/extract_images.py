"""Extract, de-identify and preprocess a study's DICOM images (rule extract_images)."""

from mskdx.extract import StudySpec, extract_study
from mskdx.io import log_to

log_to(snakemake.log[0])
extract_study(
    snakemake.input.dicom,
    snakemake.input.labels,
    spec=StudySpec(**snakemake.params.spec),
    masks_path=snakemake.input.get("truth"),
    on_error=snakemake.params.on_error,
    key_env=snakemake.params.key_env,
    threads=snakemake.threads,
    **snakemake.output,
)
