"""Diagnose the new patients of config predict.dicom_dir with one arm (rule predict_folder)."""

from mskdx.deploy.predict import predict_step
from mskdx.io import log_to

log_to(snakemake.log[0])
predict_step(
    snakemake.input.dicom,
    spec=snakemake.params.spec,
    images=snakemake.output.images,
    arm=snakemake.wildcards.arm,
    arm_spec=snakemake.params.arm_spec,
    checkpoints=list(snakemake.input.checkpoints),
    curves=snakemake.input.curves[0] if snakemake.input.curves else None,
    image_threshold=snakemake.params.image_threshold,
    key_env=snakemake.params.key_env,
    private_map=snakemake.params.private_map,
    gradcam=snakemake.params.gradcam,
    threads=snakemake.params.threads,
    dicom_out=snakemake.params.dicom_out or None,
    dicom_send=snakemake.params.dicom_send or None,
)
