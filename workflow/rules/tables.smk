rule tabulate_image_level:
    input:
        predictions=get_predictions,
        code=library_sources(
            "provenance/pages",
            "ingest/label_levels",
            "evaluate/stats",
            "evaluate/tables",
            "evaluate/comparisons",
            "evaluate/comparison",
            "evaluate/markdown",
            "evaluate/papers",
        ),
    output:
        csv="results/{study}/tables/table1_image_level.csv",
        page=report(
            "results/{study}/tables/table1_image_level.html",
            caption="../report/table1_image_level.rst",
            category=study_category,
            subcategory="Tables",
            labels={"table": "Table I: image level"},
        ),
        md="results/{study}/tables/table1_image_level.md",
    log:
        "results/logs/tabulate_image_level/{study}.log",
    wildcard_constraints:
        study="gout",
    localrule: True
    conda:
        "../../envs/stats.yaml"
    params:
        pages=page_titles(page="Table I: image level"),
        reference=get_comparison_reference,
        image_threshold=lookup(
            dpath="studies/{study}/evaluate/image_threshold", within=config
        ),
    script:
        "../scripts/tabulate_image_level.py"


rule tabulate_complexity:
    input:
        code=library_sources(
            "provenance/pages",
            "evaluate/complexity",
            "evaluate/markdown",
            "evaluate/papers/printed",
            "learn/models",
            "learn/weights",
            "learn/arms",
            "learn/gradcam",
        ),
    output:
        csv="results/{study}/tables/table2_complexity.csv",
        page=report(
            "results/{study}/tables/table2_complexity.html",
            caption="../report/table2_complexity.rst",
            category=study_category,
            subcategory="Tables",
            labels={"table": "Table II: FLOPs and parameters"},
        ),
        md="results/{study}/tables/table2_complexity.md",
    log:
        "results/logs/tabulate_complexity/{study}.log",
    wildcard_constraints:
        study="gout",
    localrule: True
    conda:
        "../../envs/torch.yaml"
    params:
        pages=page_titles(page="Table II: parameters and MACs per arm"),
        arms=get_model_specs,
        input_shape=get_study_input_shape,
        title="Gout Table II: parameters and MACs per arm (ours vs paper)",
    script:
        "../scripts/tabulate_complexity.py"


# OLT: the same count for its arms (its paper prints none), under a name of its own: the OLT
# paper's Table II is the per-sequence performance
use rule tabulate_complexity as tabulate_complexity_olt with:
    output:
        csv="results/{study}/tables/complexity.csv",
        page=report(
            "results/{study}/tables/complexity.html",
            caption="../report/table2_complexity.rst",
            category=study_category,
            subcategory="Tables",
            labels={"table": "complexity: FLOPs and parameters"},
        ),
        md="results/{study}/tables/complexity.md",
    log:
        "results/logs/tabulate_complexity/{study}.log",
    wildcard_constraints:
        study="olt",
    params:
        arms=get_model_specs,
        input_shape=get_study_input_shape,
        title="OLT: parameters and MACs per arm",
        pages=page_titles(page="Parameters and MACs per arm"),


rule tabulate_patient_level:
    input:
        predictions=get_arm_predictions,
        code=library_sources(
            "provenance/pages",
            "ingest/label_levels",
            "evaluate/stats",
            "evaluate/tables",
            "evaluate/comparisons",
            "evaluate/comparison",
            "evaluate/markdown",
            "evaluate/papers",
        ),
    output:
        csv="results/{study}/tables/table3_patient_level_{arm}.csv",
        page=report(
            "results/{study}/tables/table3_patient_level_{arm}.html",
            caption="../report/table3_patient_level.rst",
            category=study_category,
            subcategory="Tables",
            labels={"table": "Table III: patient level", "arm": "{arm}"},
        ),
        md="results/{study}/tables/table3_patient_level_{arm}.md",
        curves="results/{study}/tables/threshold_curves_{arm}.csv",
    log:
        "results/logs/tabulate_patient_level/{study}/{arm}.log",
    wildcard_constraints:
        study="gout",
    localrule: True
    conda:
        "../../envs/stats.yaml"
    params:
        pages=page_titles(page="Table III: patient level, {arm}"),
        step=lookup(dpath="studies/{study}/evaluate/threshold_step", within=config),
        image_threshold=lookup(
            dpath="studies/{study}/evaluate/image_threshold", within=config
        ),
    script:
        "../scripts/tabulate_patient_level.py"


rule tabulate_sequences:
    input:
        predictions=get_predictions,
        code=library_sources(
            "provenance/pages",
            "ingest/label_levels",
            "evaluate/stats",
            "evaluate/tables",
            "evaluate/comparisons",
            "evaluate/comparison",
            "evaluate/markdown",
            "evaluate/papers",
        ),
    output:
        csv="results/{study}/tables/table2_performance.csv",
        page=report(
            "results/{study}/tables/table2_performance.html",
            caption="../report/table2_performance.rst",
            category=study_category,
            subcategory="Tables",
            labels={"table": "Table II: per sequence"},
        ),
        md="results/{study}/tables/table2_performance.md",
    log:
        "results/logs/tabulate_sequences/{study}.log",
    wildcard_constraints:
        study="olt",
    localrule: True
    conda:
        "../../envs/stats.yaml"
    params:
        pages=page_titles(page="Table II: per sequence"),
        image_threshold=lookup(
            dpath="studies/{study}/evaluate/image_threshold", within=config
        ),
    script:
        "../scripts/tabulate_sequences.py"


rule check_papers:
    input:
        code=library_sources(
            "provenance/pages",
            "evaluate/papers",
            "evaluate/stats",
            "evaluate/markdown",
        ),
    output:
        csv="results/paper_check.csv",
        page=report(
            "results/paper_check.html",
            caption="../report/paper_check.rst",
            category="Paper check",
            labels={"table": "printed numbers recomputed"},
        ),
        md="results/paper_check.md",
    log:
        "results/logs/check_papers/all.log",
    localrule: True
    conda:
        "../../envs/stats.yaml"
    params:
        pages=page_titles(page="Paper check: printed numbers recomputed"),
    script:
        "../scripts/check_papers.py"


rule tabulate_checklist:
    input:
        manifest="results/{study}/cache/manifest.csv",
        refused="results/{study}/extract/refused.csv",
        splits="results/{study}/splits/splits.csv",
        precision="results/{study}/tables/precision.csv",
        code=library_sources(
            "provenance/pages",
            "ingest/label_levels",
            "evaluate/checklist",
            "evaluate/precision",
            "evaluate/stats/hanley",
            "evaluate/markdown",
        ),
    output:
        csv="results/{study}/tables/claim_checklist.csv",
        page=report(
            "results/{study}/tables/claim_checklist.html",
            caption="../report/claim_checklist.rst",
            category=study_category,
            subcategory="Reporting checklist",
            labels={"table": "CLAIM 2024 / TRIPOD+AI"},
        ),
        md="results/{study}/tables/claim_checklist.md",
    log:
        "results/logs/tabulate_checklist/{study}.log",
    localrule: True
    conda:
        "../../envs/stats.yaml"
    params:
        pages=page_titles(page="Reporting checklist: CLAIM 2024 / TRIPOD+AI"),
        settings=get_checklist_settings,
        formats=lookup(dpath="figures/formats", within=config),
    script:
        "../scripts/tabulate_checklist.py"
