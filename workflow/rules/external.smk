# External validation: another site's cohort goes through the development cohort's own rules
# (`use rule`: same script, params and library code), then every arm's fold models score it.


use rule synthesize_cohort as synthesize_external with:
    output:
        dicom=directory("data/synthetic/external/{study}/{cohort}/dicom"),
        labels="data/synthetic/external/{study}/{cohort}/labels.csv",
        image_labels="data/synthetic/external/{study}/{cohort}/image_labels.csv",
        truth="data/synthetic/external/{study}/{cohort}/masks.npz",
    log:
        "results/logs/synthesize_external/{study}/{cohort}.log",
    benchmark:
        "results/benchmarks/synthesize_external/{study}/{cohort}.tsv"
    params:
        cohort=get_synthetic_external,
        seed=lookup(dpath="synthetic/external/{study}/{cohort}/seed", within=config),
        difficulty=lookup(
            dpath="synthetic/external/{study}/{cohort}/difficulty", within=config
        ),


use rule extract_images as extract_external with:
    input:
        unpack(get_external_input),
        code=library_sources("ingest", "config/checks"),
    output:
        images="results/{study}/external/{cohort}/cache/images.npy",
        masks="results/{study}/external/{cohort}/cache/masks.npy",
        manifest="results/{study}/external/{cohort}/cache/manifest.csv",
        refused="results/{study}/external/{cohort}/extract/refused.csv",
        source="results/{study}/external/{cohort}/cache/source.json",
    log:
        "results/logs/extract_external/{study}/{cohort}.log",
    benchmark:
        "results/benchmarks/extract_external/{study}/{cohort}.tsv"
    params:
        inventory=get_external_inventory,
        private_map=get_external_private_map,


rule score_external:
    input:
        checkpoints=get_arm_checkpoints,
        images="results/{study}/external/{cohort}/cache/images.npy",
        manifest="results/{study}/external/{cohort}/cache/manifest.csv",
        code=library_sources(
            "ingest/label_levels",
            "evaluate/external",
            "learn/inference",
            "learn/gradcam",
            "learn/checkpoints",
            "learn/device",
            "learn/loop",
            "learn/models",
            "learn/weights",
            "learn/arms",
            "learn/augment",
        ),
    output:
        per_fold="results/{study}/external/{cohort}/predictions_{arm}.csv",
        ensemble="results/{study}/external/{cohort}/ensemble_{arm}.csv",
    log:
        "results/logs/score_external/{study}/{cohort}/{arm}.log",
    benchmark:
        "results/benchmarks/score_external/{study}/{cohort}/{arm}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: get_compute_threads
    resources:
        gpu=gpu_wanted,
        mem_mb=8000,
    params:
        sequence=get_arm_sequence,
        folds=get_arm_folds,
        threads=get_compute_threads,
        device=lookup(dpath="studies/{study}/train/device", within=config),
    script:
        "../scripts/score_external.py"


rule tabulate_external:
    input:
        unpack(get_external_scores),
        curves=get_development_curves,
        code=library_sources(
            "provenance/pages",
            "ingest/label_levels",
            "evaluate/external",
            "evaluate/stats",
            "evaluate/tables",
            "evaluate/comparisons",
            "evaluate/comparison",
            "evaluate/markdown",
            "evaluate/papers",
        ),
    output:
        csv="results/{study}/tables/external_{cohort}.csv",
        page=report(
            "results/{study}/tables/external_{cohort}.html",
            caption="../report/external_table.rst",
            category=study_category,
            subcategory="External validation",
            labels={"table": "image level", "cohort": "{cohort}"},
        ),
        md="results/{study}/tables/external_{cohort}.md",
        patient_csv="results/{study}/tables/external_{cohort}_patients.csv",
        patient_page=report(
            "results/{study}/tables/external_{cohort}_patients.html",
            caption="../report/external_patients.rst",
            category=study_category,
            subcategory="External validation",
            labels={"table": "patient level", "cohort": "{cohort}"},
        ),
        patient_md="results/{study}/tables/external_{cohort}_patients.md",
    log:
        "results/logs/tabulate_external/{study}/{cohort}.log",
    localrule: True
    conda:
        "../../envs/stats.yaml"
    params:
        pages=page_titles(
            page="External cohort {cohort}: image level",
            patient_page="External cohort {cohort}: patient level",
        ),
        image_threshold=lookup(
            dpath="studies/{study}/evaluate/image_threshold", within=config
        ),
        reference=get_comparison_reference,
    script:
        "../scripts/tabulate_external.py"


rule plot_roc_external:
    input:
        development=get_predictions,
        external=get_all_external_ensembles,
        code=library_sources(
            "ingest/label_levels",
            "evaluate/external",
            "evaluate/clinical",
            "evaluate/figures/common",
            "evaluate/figures/roc",
            "evaluate/stats",
        ),
    output:
        figure=report(
            figure("results/{study}/figures/roc_external"),
            caption="../report/roc_external.rst",
            category=study_category,
            subcategory="External validation",
            labels={"figure": "ROC: development vs external"},
        ),
        extra=figure_extra("results/{study}/figures/roc_external"),
    log:
        "results/logs/plot_roc_external/{study}.log",
    localrule: True
    conda:
        "../../envs/figures.yaml"
    params:
        dpi=lookup(dpath="figures/dpi", within=config),
        roc=lookup(dpath="figures/roc", within=config),
    script:
        "../scripts/plot_roc_external.py"
