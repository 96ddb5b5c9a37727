# Comparisons a reviewer asks for beyond the papers' tables: where does a model work (subgroups),
# where does it fail (the failure gallery), does the ranking of the arms hold (repeated CV).


rule tabulate_subgroups:
    input:
        predictions=get_predictions,
        manifest="results/{study}/cache/manifest.csv",
        external=get_all_external_ensembles,
        external_manifests=get_external_manifests,
        code=library_sources(
            "provenance/pages",
            "ingest/label_levels",
            "evaluate/subgroups",
            "evaluate/stats",
            "evaluate/comparisons",
            "evaluate/comparison",
            "evaluate/markdown",
        ),
    output:
        csv="results/{study}/tables/subgroups.csv",
        page=report(
            "results/{study}/tables/subgroups.html",
            caption="../report/subgroups.rst",
            category=study_category,
            subcategory="Subgroups and failures",
            labels={"table": "subgroups"},
        ),
        md="results/{study}/tables/subgroups.md",
    log:
        "results/logs/tabulate_subgroups/{study}.log",
    localrule: True
    conda:
        "../../envs/stats.yaml"
    params:
        pages=page_titles(page="Subgroups"),
        image_threshold=lookup(
            dpath="studies/{study}/evaluate/image_threshold", within=config
        ),
        min_patients=lookup(
            dpath="studies/{study}/evaluate/subgroups/min_patients",
            within=config,
            default=5,
        ),
    script:
        "../scripts/tabulate_subgroups.py"


rule plot_failures:
    input:
        predictions=get_predictions,
        checkpoints=get_all_checkpoints,
        images="results/{study}/cache/images.npy",
        masks="results/{study}/cache/masks.npy",
        manifest="results/{study}/cache/manifest.csv",
        code=library_sources(
            "evaluate/figures/common",
            "evaluate/figures/gradcam",
            "evaluate/figures/failures",
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
        figure=report(
            figure("results/{study}/figures/failures"),
            caption="../report/failures.rst",
            category=study_category,
            subcategory="Subgroups and failures",
            labels={"figure": "failure gallery"},
        ),
        extra=figure_extra("results/{study}/figures/failures"),
        table="results/{study}/tables/failures.csv",
    log:
        "results/logs/plot_failures/{study}.log",
    benchmark:
        "results/benchmarks/plot_failures/{study}.tsv"
    conda:
        "../../envs/predict.yaml"
    threads: get_compute_threads
    params:
        dpi=lookup(dpath="figures/dpi", within=config),
        per_kind=lookup(dpath="figures/failures/per_kind", within=config, default=3),
        image_threshold=lookup(
            dpath="studies/{study}/evaluate/image_threshold", within=config
        ),
        runs=get_all_runs,
        layers=get_gradcam_layers,
        threads=get_compute_threads,
    script:
        "../scripts/plot_failures.py"


rule tabulate_repeats:
    input:
        predictions=get_repeat_predictions,
        code=library_sources(
            "evaluate/repeats",
            "evaluate/stats/resampled",
            "evaluate/stats/multiplicity",
            "provenance/pages",
        ),
    output:
        csv="results/{study}/tables/table1_repeats.csv",
        page=report(
            "results/{study}/tables/table1_repeats.html",
            caption="../report/table1_repeats.rst",
            category=study_category,
            subcategory="Tables",
            labels={"table": "Table I companion: repeated CV"},
        ),
        md="results/{study}/tables/table1_repeats.md",
    log:
        "results/logs/tabulate_repeats/{study}.log",
    localrule: True
    conda:
        "../../envs/stats.yaml"
    params:
        pages=page_titles(page="Table I companion: repeated CV"),
        folds=lookup(dpath="studies/{study}/splits/folds", within=config),
        train_repeats=get_repeat_train_repeats,
        image_threshold=lookup(
            dpath="studies/{study}/evaluate/image_threshold", within=config
        ),
        reference=get_comparison_reference,
    script:
        "../scripts/tabulate_repeats.py"
