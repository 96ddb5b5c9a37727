rule extract_images:
    input:
        unpack(get_study_input),
        code=library_sources("ingest", "config/checks"),
    output:
        images="results/{study}/cache/images.npy",
        masks="results/{study}/cache/masks.npy",
        manifest="results/{study}/cache/manifest.csv",
        refused="results/{study}/extract/refused.csv",
        source="results/{study}/cache/source.json",
    log:
        "results/logs/extract_images/{study}.log",
    benchmark:
        "results/benchmarks/extract_images/{study}.tsv"
    conda:
        "../../envs/dicom.yaml"
    threads: 8
    resources:
        mem_mb=8000,
    params:
        spec=get_extract_spec,
        on_error=lookup(dpath="data/on_error", within=config),
        key_env=lookup(dpath="data/pseudonym_key_env", within=config),
        key_fingerprint=get_key_fingerprint,
        inventory=get_dicom_inventory,
        private_map=get_private_map,
        source=lookup(dpath="data/source", within=config),
    script:
        "../scripts/extract_images.py"
