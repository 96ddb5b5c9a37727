# Beyond the papers: are the probabilities calibrated, is acting on them useful, and how
# precise can the cohorts' estimates be (issue 37: images clustered by patient)?
# Each output reads the pooled test-fold predictions (development) and the external cohorts'
# ensemble scores, and takes only its own settings,
# so changing a calibration, decision-curve or precision setting reruns only that output.


rule tabulate_calibration:
    input:
        predictions=get_predictions,
        external=get_all_external_ensembles,
        code=library_sources(
            "provenance/pages",
            "ingest/label_levels",
            "evaluate/clinical",
            "evaluate/stats",
            "evaluate/markdown",
        ),
    output:
        csv="results/{study}/tables/calibration.csv",
        page=report(
            "results/{study}/tables/calibration.html",
            caption="../report/calibration_table.rst",
            category=study_category,
            subcategory="Calibration and decision curves",
            labels={"table": "calibration"},
        ),
        md="results/{study}/tables/calibration.md",
    log:
        "results/logs/tabulate_calibration/{study}.log",
    localrule: True
    conda:
        "../../envs/stats.yaml"
    params:
        pages=page_titles(page="Calibration"),
        levels=lookup(dpath="studies/{study}/calibration/levels", within=config),
        method=lookup(
            dpath="studies/{study}/calibration/method", within=config, default="ml"
        ),
    script:
        "../scripts/tabulate_calibration.py"


rule tabulate_precision:
    input:
        predictions=get_predictions,
        external=get_all_external_ensembles,
        code=library_sources(
            "provenance/pages",
            "ingest/label_levels",
            "evaluate/precision",
            "evaluate/clinical",
            "evaluate/stats",
            "evaluate/markdown",
        ),
    output:
        csv="results/{study}/tables/precision.csv",
        page=report(
            "results/{study}/tables/precision.html",
            caption="../report/precision_table.rst",
            category=study_category,
            subcategory="Calibration and decision curves",
            labels={"table": "precision and sample size"},
        ),
        md="results/{study}/tables/precision.md",
    log:
        "results/logs/tabulate_precision/{study}.log",
    localrule: True
    conda:
        "../../envs/stats.yaml"
    params:
        pages=page_titles(page="Precision and sample size"),
        image_threshold=lookup(
            dpath="studies/{study}/evaluate/image_threshold", within=config
        ),
        riley=get_riley_plan,
    script:
        "../scripts/tabulate_precision.py"


rule plot_calibration:
    input:
        predictions=get_arm_predictions,
        external=get_arm_external_ensembles,
        code=library_sources(
            "ingest/label_levels",
            "evaluate/clinical",
            "evaluate/stats",
            "evaluate/figures/common",
            "evaluate/figures/calibration",
        ),
    output:
        figure=report(
            figure("results/{study}/figures/calibration_{arm}"),
            caption="../report/calibration.rst",
            category=study_category,
            subcategory="Calibration and decision curves",
            labels={"figure": "reliability diagram", "arm": "{arm}"},
        ),
        extra=figure_extra("results/{study}/figures/calibration_{arm}"),
        table="results/{study}/tables/reliability_{arm}.csv",
    log:
        "results/logs/plot_calibration/{study}/{arm}.log",
    localrule: True
    conda:
        "../../envs/figures.yaml"
    params:
        dpi=lookup(dpath="figures/dpi", within=config),
        level=lookup(dpath="studies/{study}/calibration/figure_level", within=config),
        bins=lookup(dpath="studies/{study}/calibration/bins", within=config),
        strategy=lookup(dpath="studies/{study}/calibration/strategy", within=config),
        lowess_frac=lookup(
            dpath="studies/{study}/calibration/lowess_frac", within=config
        ),
    script:
        "../scripts/plot_calibration.py"


rule plot_decision_curve:
    input:
        predictions=get_predictions,
        external=get_all_external_ensembles,
        code=library_sources(
            "ingest/label_levels",
            "evaluate/clinical",
            "evaluate/stats",
            "evaluate/figures/common",
            "evaluate/figures/calibration",
        ),
    output:
        figure=report(
            figure("results/{study}/figures/decision_curve"),
            caption="../report/decision_curve.rst",
            category=study_category,
            subcategory="Calibration and decision curves",
            labels={"figure": "decision curve"},
        ),
        extra=figure_extra("results/{study}/figures/decision_curve"),
        table="results/{study}/tables/decision_curve.csv",
    log:
        "results/logs/plot_decision_curve/{study}.log",
    localrule: True
    conda:
        "../../envs/figures.yaml"
    params:
        dpi=lookup(dpath="figures/dpi", within=config),
        curve=lookup(dpath="studies/{study}/decision_curve", within=config),
    script:
        "../scripts/plot_decision_curve.py"
