rule train_fold:
    input:
        images="results/{study}/cache/images.npy",
        manifest="results/{study}/cache/manifest.csv",
        splits="results/{study}/splits/splits.csv",
        weights=get_pretrained_weights,
        code=library_sources(
            "learn/train",
            "learn/settings",
            "learn/job_data",
            "learn/device",
            "learn/loop",
            "learn/checkpoints",
            "learn/models",
            "learn/weights",
            "learn/arms",
            "learn/gradcam",
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
    threads: get_compute_threads
    resources:
        gpu=gpu_wanted,
        mem_mb=16000,
        runtime=240,
    params:
        arm_spec=get_arm_spec,
        train_spec=get_train_spec,
        seed=lookup(dpath="seed", within=config),
        train_repeat=0,
    script:
        "../scripts/train_fold.py"


# train.repeats R: R - 1 more runs of every fold (split and data unchanged; own initialisation
# and augmentation streams), for the spread that comes from training alone (table1_repeats)
use rule train_fold as train_fold_repeat with:
    output:
        checkpoint="results/{study}/models/{arm}/seed_{train_repeat}/fold_{fold}/checkpoint_final.pt",
        history="results/{study}/models/{arm}/seed_{train_repeat}/fold_{fold}/history.csv",
        predictions="results/{study}/models/{arm}/seed_{train_repeat}/fold_{fold}/predictions.csv",
    log:
        "results/logs/train_fold/{study}/{arm}/seed_{train_repeat}/{fold}.log",
    benchmark:
        "results/benchmarks/train_fold/{study}/{arm}/seed_{train_repeat}/{fold}.tsv"
    params:  # keyword params are merged: arm_spec, train_spec and seed are train_fold's
        train_repeat=lambda wildcards: int(wildcards.train_repeat),


# arm.json: the settings the trained arm is run with again (mskdx predict / export read them)
rule describe_arm:
    input:
        checkpoints=get_arm_checkpoints,
        code=library_sources("learn/arm_settings"),
    output:
        settings="results/{study}/models/{arm}/arm.json",
    log:
        "results/logs/describe_arm/{study}/{arm}.log",
    localrule: True
    conda:
        "../../envs/stats.yaml"
    params:
        settings=get_arm_settings,
    script:
        "../scripts/describe_arm.py"
