rule plot_training_curves:
    input:
        history="results/{study}/models/{arm}/fold_{fold}/history.csv",
        code=library_sources("evaluate/figures/common", "evaluate/figures/curves"),
    output:
        figure=report(
            figure("results/{study}/figures/curves_{arm}_fold{fold}"),
            caption="../report/training_curves.rst",
            category=study_category,
            subcategory="Training curves",
            labels={"arm": "{arm}", "fold": "{fold}"},
        ),
        extra=figure_extra("results/{study}/figures/curves_{arm}_fold{fold}"),
    log:
        "results/logs/plot_training_curves/{study}/{arm}/{fold}.log",
    localrule: True
    conda:
        "../../envs/figures.yaml"
    params:
        dpi=lookup(dpath="figures/dpi", within=config),
    script:
        "../scripts/plot_training_curves.py"


rule plot_confusion:
    input:
        predictions=get_arm_predictions,
        code=library_sources("evaluate/figures/common", "evaluate/figures/confusion"),
    output:
        figure=report(
            figure("results/{study}/figures/confusion_{arm}"),
            caption="../report/confusion.rst",
            category=study_category,
            subcategory="Confusion matrices",
            labels={"arm": "{arm}"},
        ),
        extra=figure_extra("results/{study}/figures/confusion_{arm}"),
    log:
        "results/logs/plot_confusion/{study}/{arm}.log",
    localrule: True
    conda:
        "../../envs/figures.yaml"
    params:
        dpi=lookup(dpath="figures/dpi", within=config),
        class_names=class_names,
        image_threshold=lookup(
            dpath="studies/{study}/evaluate/image_threshold", within=config
        ),
    script:
        "../scripts/plot_confusion.py"


rule plot_roc:
    input:
        predictions=get_predictions,
        code=library_sources(
            "evaluate/figures/common", "evaluate/figures/roc", "evaluate/stats"
        ),
    output:
        figure=report(
            figure("results/{study}/figures/roc"),
            caption="../report/roc.rst",
            category=study_category,
            subcategory="ROC curves",
            labels={"figure": "ROC"},
        ),
        extra=figure_extra("results/{study}/figures/roc"),
    log:
        "results/logs/plot_roc/{study}.log",
    localrule: True
    conda:
        "../../envs/figures.yaml"
    params:
        dpi=lookup(dpath="figures/dpi", within=config),
        roc=lookup(dpath="figures/roc", within=config),
    script:
        "../scripts/plot_roc.py"


rule plot_threshold:
    input:
        curves="results/{study}/tables/threshold_curves_{arm}.csv",
        code=library_sources("evaluate/figures/common", "evaluate/figures/threshold"),
    output:
        figure=report(
            figure("results/{study}/figures/threshold_{arm}"),
            caption="../report/threshold.rst",
            category=study_category,
            subcategory="Patient threshold",
            labels={"arm": "{arm}"},
        ),
        extra=figure_extra("results/{study}/figures/threshold_{arm}"),
    log:
        "results/logs/plot_threshold/{study}/{arm}.log",
    wildcard_constraints:
        study="gout",
    localrule: True
    conda:
        "../../envs/figures.yaml"
    params:
        dpi=lookup(dpath="figures/dpi", within=config),
    script:
        "../scripts/plot_threshold.py"


rule plot_montage:
    input:
        predictions=get_first_fold_predictions,
        images="results/{study}/cache/images.npy",
        manifest="results/{study}/cache/manifest.csv",
        code=library_sources("evaluate/figures/common", "evaluate/figures/montage"),
    output:
        figure=report(
            figure("results/{study}/figures/montage_{arm}"),
            caption="../report/montage.rst",
            category=study_category,
            subcategory="Prediction montage",
            labels={"arm": "{arm}"},
        ),
        extra=figure_extra("results/{study}/figures/montage_{arm}"),
    log:
        "results/logs/plot_montage/{study}/{arm}.log",
    localrule: True
    conda:
        "../../envs/figures.yaml"
    params:
        dpi=lookup(dpath="figures/dpi", within=config),
        montage=lookup(dpath="figures/montage", within=config),
        class_names=class_names,
        seed=lookup(dpath="seed", within=config),
    script:
        "../scripts/plot_montage.py"


rule plot_crop_qc:
    input:
        images="results/{study}/cache/images.npy",
        manifest="results/{study}/cache/manifest.csv",
        code=library_sources("evaluate/figures/common", "evaluate/figures/montage"),
    output:
        figure=report(
            figure("results/{study}/figures/crop_qc"),
            caption="../report/crop_qc.rst",
            category=study_category,
            subcategory="Preprocessing QC",
            labels={"figure": "crops"},
        ),
        extra=figure_extra("results/{study}/figures/crop_qc"),
    log:
        "results/logs/plot_crop_qc/{study}.log",
    wildcard_constraints:
        study="gout",
    localrule: True
    conda:
        "../../envs/figures.yaml"
    params:
        dpi=lookup(dpath="figures/dpi", within=config),
        montage=lookup(dpath="figures/montage", within=config),
        seed=lookup(dpath="seed", within=config),
    script:
        "../scripts/plot_crop_qc.py"


rule plot_gradcam:
    input:
        cams="results/{study}/gradcam/{arm}.npz",
        code=library_sources("evaluate/figures/common", "evaluate/figures/gradcam"),
    output:
        figure=report(
            figure("results/{study}/figures/gradcam_{arm}"),
            caption="../report/gradcam.rst",
            category=study_category,
            subcategory="Grad-CAM",
            labels={"arm": "{arm}"},
        ),
        extra=figure_extra("results/{study}/figures/gradcam_{arm}"),
    log:
        "results/logs/plot_gradcam/{study}/{arm}.log",
    localrule: True
    conda:
        "../../envs/figures.yaml"
    params:
        dpi=lookup(dpath="figures/dpi", within=config),
        montage=lookup(dpath="figures/montage", within=config),
    script:
        "../scripts/plot_gradcam.py"


rule plot_localisation:
    input:
        scores="results/{study}/tables/localisation_scores.csv",
        code=library_sources(
            "evaluate/figures/common",
            "evaluate/figures/gradcam",
            "evaluate/localisation",
            "evaluate/stats/proportions",
        ),
    output:
        figure=report(
            figure("results/{study}/figures/localisation"),
            caption="../report/localisation.rst",
            category=study_category,
            subcategory="Grad-CAM",
            labels={"figure": "localisation score"},
        ),
        extra=figure_extra("results/{study}/figures/localisation"),
    log:
        "results/logs/plot_localisation/{study}.log",
    localrule: True
    conda:
        "../../envs/figures.yaml"
    params:
        dpi=lookup(dpath="figures/dpi", within=config),
    script:
        "../scripts/plot_localisation.py"
