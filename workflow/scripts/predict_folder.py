"""Diagnose the new patients of config predict.dicom_dir with one arm (rule predict_folder):
the same `predict_arm` as `mskdx predict`, with the arm's own settings (arm.json) and the
layout's paths (the private map: private/<study>/predict/<arm>/file_map.csv)."""

from mskdx.deploy.predict import predict_step
from mskdx.io import log_to

log_to(snakemake.log[0])
predict_step(
    snakemake.input.dicom,
    images=snakemake.output.images,
    study=snakemake.wildcards.study,
    arm=snakemake.wildcards.arm,
    gradcam=snakemake.params.gradcam,
    dicom_out=snakemake.params.dicom_out or None,
    dicom_send=snakemake.params.dicom_send or None,
    dicom_maps=() if snakemake.params.dicom_maps == "none" else (snakemake.params.dicom_maps,),
    dicom_sc=bool(snakemake.params.dicom_sc),
)
