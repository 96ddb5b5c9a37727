"""Extraction specs of the small synthetic cohorts that the tests and benchmarks/ extract.

What the workflow builds from config/config.yaml (get_extract_spec in common.smk), spelled out
here so that the tests do not change with the config: gout at the paper's 700x320 crop, OLT at
64x64 instead of 224x224. benchmarks/bench_preprocess.py imports this file too.
"""

from __future__ import annotations

from mskdx.ingest.extract import StudySpec

GOUT = StudySpec(
    study="gout",
    modalities=["US", "SC", "OT"],
    preprocess={"kind": "ultrasound", "crop_width": 700, "crop_height": 320, "scale": 1.0},
    labels={
        "patient_column": "patient_id",
        "label_column": "diagnosis",
        "positive": "gout",
        "negative": "control",
    },
)
OLT = StudySpec(
    study="olt",
    modalities=["MR"],
    preprocess={"kind": "mri", "size": 64},
    labels={
        "patient_column": "patient_id",
        "label_column": "diagnosis",
        "positive": "patient",
        "negative": "healthy",
    },
    sequences={"T1": "(?i)t1", "T2": "(?i)t2"},
)
