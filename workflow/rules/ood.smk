# Issue 40: each arm's out-of-distribution reference (mskdx.deploy.ood), fitted on the
# development images once the fold models are trained; predict (rule and command) reads it
# beside arm.json and flags images outside what the arm was trained on.


rule ood_reference:
    input:
        checkpoints=get_arm_checkpoints,
        images="results/{study}/cache/images.npy",
        manifest="results/{study}/cache/manifest.csv",
        splits="results/{study}/splits/splits.csv",
        code=library_sources(
            "deploy/ood",
            "learn/inference",
            "learn/arms",
            "learn/augment",
            "learn/checkpoints",
            "learn/device",
            "learn/gradcam",
            "learn/loop",
            "learn/models",
            "learn/weights",
        ),
    output:
        reference="results/{study}/models/{arm}/ood.npz",
    log:
        "results/logs/ood_reference/{study}/{arm}.log",
    benchmark:
        "results/benchmarks/ood_reference/{study}/{arm}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: get_compute_threads
    resources:
        mem_mb=8000,
    params:
        folds=get_arm_folds,
        sequence=get_arm_sequence,
        threads=get_compute_threads,
    script:
        "../scripts/fit_ood_reference.py"
