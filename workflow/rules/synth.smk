rule synthesize_cohort:
    input:
        code=library_sources("synth"),
    output:
        dicom=directory("data/synthetic/{study}/dicom"),
        labels="data/synthetic/{study}/labels.csv",
        image_labels="data/synthetic/{study}/image_labels.csv",
        truth="data/synthetic/{study}/masks.npz",
    log:
        "results/logs/synthesize_cohort/{study}.log",
    benchmark:
        "results/benchmarks/synthesize_cohort/{study}.tsv"
    conda:
        "../../envs/dicom.yaml"
    params:
        cohort=lookup(dpath="synthetic/{study}", within=config),
        seed=lookup(dpath="synthetic/seed", within=config),
        difficulty=lookup(dpath="synthetic/difficulty", within=config),
    script:
        "../scripts/synthesize_cohort.py"
