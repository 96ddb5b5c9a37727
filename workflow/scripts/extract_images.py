"""Extract, de-identify and preprocess a study's DICOM images (rule extract_images)."""

from mskdx.config.checks import write_source
from mskdx.errors import MskdxError
from mskdx.ingest.extract import StudySpec, extract_study
from mskdx.io import exit_on_error, log_to

log_to(snakemake.log[0])
try:
    extract_study(
        snakemake.input.dicom,
        snakemake.input.labels,
        spec=StudySpec(**snakemake.params.spec),
        masks_path=snakemake.input.get("truth"),
        image_labels_path=snakemake.input.get("image_labels"),
        on_error=snakemake.params.on_error,
        key_env=snakemake.params.key_env,
        key_fingerprint=snakemake.params.key_fingerprint,
        private_map=snakemake.params.private_map,
        threads=snakemake.threads,
        images=snakemake.output.images,
        masks=snakemake.output.masks,
        manifest=snakemake.output.manifest,
        refused=snakemake.output.refused,
    )
    write_source(snakemake.output.source, snakemake.params.source)
except MskdxError as err:
    exit_on_error(err)
