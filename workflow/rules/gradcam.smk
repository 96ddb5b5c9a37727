rule compute_gradcam:
    # one job per arm over its folds: a process start and a cache read per arm, not per fold
    input:
        checkpoints=get_arm_checkpoints,
        predictions=get_arm_predictions,
        images="results/{study}/cache/images.npy",
        masks="results/{study}/cache/masks.npy",
        manifest="results/{study}/cache/manifest.csv",
        code=library_sources(
            "evaluate/localisation",
            "learn/inference",
            "learn/device",
            "learn/loop",
            "learn/gradcam",
            "learn/models",
            "learn/weights",
            "learn/arms",
            "learn/checkpoints",
            "learn/augment",
            "evaluate/stats/proportions",
        ),
    output:
        cams="results/{study}/gradcam/{arm}.npz",
        scores="results/{study}/gradcam/{arm}_scores.csv",
    log:
        "results/logs/compute_gradcam/{study}/{arm}.log",
    benchmark:
        "results/benchmarks/compute_gradcam/{study}/{arm}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: get_compute_threads
    resources:
        gpu=gpu_wanted,
    params:
        folds=get_arm_folds,
        threads=get_compute_threads,
        samples=lookup(dpath="studies/{study}/gradcam/samples", within=config),
        # unset: the library's default (mskdx.evaluate.localisation.POINTING_TOLERANCE_PX)
        tolerance_px=lookup(
            dpath="studies/{study}/gradcam/pointing_tolerance_px",
            within=config,
            default=None,
        ),
        layer=get_gradcam_layer,
        seed=lookup(dpath="seed", within=config),
    script:
        "../scripts/compute_gradcam.py"


rule summarise_localisation:
    input:
        scores=get_gradcam_scores,
        code=library_sources(
            "provenance/pages",
            "evaluate/localisation",
            "evaluate/stats",
            "evaluate/markdown",
        ),
    output:
        csv="results/{study}/tables/localisation.csv",
        page=report(
            "results/{study}/tables/localisation.html",
            caption="../report/localisation_table.rst",
            category=study_category,
            subcategory="Grad-CAM",
            labels={"table": "localisation score"},
        ),
        md="results/{study}/tables/localisation.md",
        all_scores="results/{study}/tables/localisation_scores.csv",
    log:
        "results/logs/summarise_localisation/{study}.log",
    localrule: True
    conda:
        "../../envs/stats.yaml"
    params:
        pages=page_titles(page="Grad-CAM localisation"),
    script:
        "../scripts/summarise_localisation.py"
