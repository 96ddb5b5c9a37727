rule make_splits:
    input:
        get_user_splits,
        manifest="results/{study}/cache/manifest.csv",
        code=library_sources("ingest/label_levels", "learn/splits"),
    output:
        "results/{study}/splits/splits.csv",
    log:
        "results/logs/make_splits/{study}.log",
    localrule: True
    conda:
        "../../envs/stats.yaml"
    params:
        splits=lookup(dpath="studies/{study}/splits", within=config),
        seed=lookup(dpath="seed", within=config),
        class_names=class_names,
    script:
        "../scripts/make_splits.py"
