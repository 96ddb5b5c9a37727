# New patients: not in rule all; ask for results/<study>/predict/<arm>/patients.csv.


rule predict_folder:
    input:
        dicom=get_predict_dicom,
        checkpoints=get_arm_checkpoints,
        curves=get_arm_curves,
        code=library_sources(
            "deploy/predict",
            "evaluate/external",
            "evaluate/markdown",
            "evaluate/stats/proportions",
            "ingest",
            "learn/checkpoints",
            "learn/device",
            "learn/loop",
            "learn/models",
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
    threads: 2
    resources:
        mem_mb=8000,
    params:
        spec=get_extract_spec,
        arm_spec=get_arm_spec,
        image_threshold=lookup(
            dpath="studies/{study}/evaluate/image_threshold", within=config
        ),
        key_env=lookup(dpath="data/pseudonym_key_env", within=config),
        private_map="private/{study}/predict/{arm}/file_map.csv",
        gradcam=lookup(dpath="predict/gradcam", within=config, default=0),
    script:
        "../scripts/predict_folder.py"
