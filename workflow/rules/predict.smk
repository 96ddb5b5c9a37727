# New patients: not in rule all; ask for results/<study>/predict/<arm>/patients.csv.
# predict.dicom_out writes the DICOM results (PHI) under private/, predict.dicom_send sends them
# (a DICOMweb URL: STOW-RS; AET@host:port: C-STORE). A study in a PACS: `mskdx predict
# --from-pacs` (README).


rule predict_folder:
    input:
        dicom=get_predict_dicom,
        settings="results/{study}/models/{arm}/arm.json",
        checkpoints=get_arm_checkpoints,
        curves=get_arm_curves,
        ood="results/{study}/models/{arm}/ood.npz",
        code=library_sources(
            "config",
            "deploy/predict",
            "deploy/dicom_out",
            "deploy/maps",
            "deploy/ood",
            "deploy/pacs",
            "deploy/send",
            "deploy/sources",
            "deploy/stow",
            "deploy/traceability",
            "evaluate/external",
            "evaluate/markdown",
            "evaluate/stats/proportions",
            "ingest",
            "learn/inference",
            "learn/arm_settings",
            "learn/checkpoints",
            "learn/device",
            "learn/loop",
            "learn/models",
            "learn/weights",
            "learn/arms",
            "learn/augment",
            "learn/gradcam",
            "evaluate/figures/common",
            "evaluate/figures/gradcam",
        ),
    output:
        images="results/{study}/predict/{arm}/images.csv",
        patients="results/{study}/predict/{arm}/patients.csv",
        refused="results/{study}/predict/{arm}/refused.csv",
    log:
        "results/logs/predict_folder/{study}/{arm}.log",
    benchmark:
        "results/benchmarks/predict_folder/{study}/{arm}.tsv"
    conda:
        "../../envs/predict.yaml"
    threads: get_compute_threads
    resources:
        mem_mb=8000,
    params:
        gradcam=lookup(dpath="predict/gradcam", within=config, default=0),
        dicom_out=get_predict_dicom_out,
        dicom_send=lookup(dpath="predict/dicom_send", within=config, default=""),
        dicom_maps=lookup(dpath="predict/dicom_maps", within=config, default="pm"),
        dicom_sc=lookup(dpath="predict/dicom_sc", within=config, default=False),
    script:
        "../scripts/predict_folder.py"
