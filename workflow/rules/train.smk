rule train_fold:
    input:
        images="results/{study}/cache/images.npy",
        manifest="results/{study}/cache/manifest.csv",
        splits="results/{study}/splits/splits.csv",
        code=library_sources(
            "learn/train",
            "learn/settings",
            "learn/job_data",
            "learn/device",
            "learn/loop",
            "learn/checkpoints",
            "learn/models",
            "learn/arms",
            "learn/augment",
            "learn/experiment_log",
        ),
    output:
        checkpoint="results/{study}/models/{arm}/fold_{fold}/checkpoint_final.pt",
        history="results/{study}/models/{arm}/fold_{fold}/history.csv",
        predictions="results/{study}/models/{arm}/fold_{fold}/predictions.csv",
    log:
        "results/logs/train_fold/{study}/{arm}/{fold}.log",
    benchmark:
        "results/benchmarks/train_fold/{study}/{arm}/{fold}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        gpu=gpu_wanted,
        mem_mb=16000,
        runtime=240,
    params:
        arm_spec=get_arm_spec,
        train_spec=get_train_spec,
        seed=lookup(dpath="seed", within=config),
    script:
        "../scripts/train_fold.py"
