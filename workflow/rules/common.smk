import csv
import os
import sys
from functools import cache
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")

# the checkout's library, installed in this environment or not
sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from mskdx.ingest import inputs  # standard library only

KEY_ENV = config["data"]["pseudonym_key_env"]
if inputs.demo_key_warning(KEY_ENV):
    # on the terminal, at every start: the job logs under results/ are not where users look
    print(inputs.demo_key_warning(KEY_ENV), file=sys.stderr)

STUDIES = ["gout", "olt"]
# report category of each study: its tables and figures are found together under this title
STUDY_TITLES = {"gout": "Gout ultrasound", "olt": "OLT MRI"}
# relative to the run directory, so that a moved checkout does not look like changed inputs
LIBRARY = Path(os.path.relpath(workflow.basedir)) / "src" / "mskdx"


wildcard_constraints:
    study="|".join(STUDIES),
    arm=r"[A-Za-z0-9]+",
    cohort=r"[A-Za-z0-9_]+",
    fold=r"\d+",
    train_repeat=r"[1-9]\d*",


def library_sources(*modules):
    """The library files a rule runs, so that editing them reruns exactly that rule and later ones.

    A module is named by its path under src/mskdx ("learn/train", "evaluate/stats"); a package
    stands for all its files: its code and the data files shipped beside it (*.yaml, *.csv, as
    the checklist's items.yaml). The `__init__.py` of every package on the way is included too:
    importing a module runs them."""
    files = [LIBRARY / name for name in ("__init__.py", "errors.py", "io.py")]
    for module in modules:
        path = LIBRARY / module
        for parent in reversed(Path(module).parents[:-1]):
            files.append(LIBRARY / parent / "__init__.py")
        files += (
            sorted(f for ext in ("*.py", "*.yaml", "*.csv") for f in path.rglob(ext))
            if path.is_dir()
            else [path.with_suffix(".py")]
        )
        missing = [f for f in files if not f.is_file()]
        if missing:
            raise WorkflowError(f"library_sources: no such library file {missing[0]}")
    return [str(f) for f in dict.fromkeys(files)]


def schema(name):
    return workflow.source_path(f"../schemas/{name}.schema.yaml")


def study_category(wildcards):
    """The report category of a study's results (report() takes a function of the wildcards)."""
    return STUDY_TITLES[wildcards.study]


def study_config(study):
    return config["studies"][study]


def arms(study):
    """Arm names, sorted: an overlay that redefines an arm must not reorder params."""
    return sorted(study_config(study)["arms"])


def folds(study):
    splits = study_config(study)["splits"]
    if splits.get("file"):
        return user_split_folds(splits["file"], study)
    if splits["method"] == "kfold":
        return list(range(splits["folds"]))
    return [0]


@cache
def user_split_folds(path, study):
    """The folds of a user's split file; a clear error for a missing file or column."""
    expected = "expected a CSV with columns fold,patient,subset (optional label)"
    key = f"studies.{study}.splits.file"
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise WorkflowError(
            f"{path} ({key}): split file cannot be read ({exc.strerror}); {expected}"
        ) from None
    columns = list(rows[0]) if rows else []
    if "fold" not in columns:
        raise WorkflowError(
            f"{path} ({key}): no column 'fold' (the header has {columns}); {expected}"
        )
    try:
        return sorted({int(row["fold"]) for row in rows})
    except (TypeError, ValueError):
        raise WorkflowError(
            f"{path} ({key}): column 'fold' must hold integers; {expected}"
        ) from None


def study_input_paths(study):
    """{dicom, labels[, truth]} of a study's own data; names a config key left unset."""
    given = study_config(study).get("input") or {}
    missing = [k for k in ("dicom_dir", "labels") if not given.get(k)]
    if missing:
        keys = ", ".join(f"studies.{study}.input.{k}" for k in missing)
        raise WorkflowError(
            f"data.source is dicom but {keys} {'is' if len(missing) == 1 else 'are'} not set: give the study's DICOM folder and "
            f"label sheet, or leave {study} out of the run by asking for the other study's "
            "results only (see README, Your own data)"
        )
    paths = {"dicom": given["dicom_dir"], "labels": given["labels"]}
    if given.get("masks"):
        paths["truth"] = given["masks"]
    return paths


def get_study_input(wildcards):
    """DICOM folder, label sheet and (optional) lesion masks of a study."""
    study = wildcards.study
    if config["data"]["source"] == "synthetic":
        base = f"data/synthetic/{study}"
        return {
            "dicom": f"{base}/dicom",
            "labels": f"{base}/labels.csv",
            "truth": f"{base}/masks.npz",
        }
    return study_input_paths(study)


@cache
def dicom_inventory(study):
    """A digest of every path, size and mtime under a user's DICOM folder: a file changed deep
    in the tree reruns the extraction (a directory input alone tracks only its own mtime).
    The synthetic tree is a Snakemake output, tracked as such."""
    if config["data"]["source"] == "synthetic":
        return "synthetic"
    return inputs.tree_digest(study_input_paths(study)["dicom"])


def get_dicom_inventory(wildcards):
    return dicom_inventory(wildcards.study)


def get_key_fingerprint(wildcards):
    """A fingerprint of the pseudonym key (never the key): a new key reruns the extraction."""
    return inputs.key_fingerprint(KEY_ENV)


def get_private_map(wildcards):
    """Where the real paths and PatientIDs behind refused files' and patients' keys go (PHI:
    outside results/, git-ignored)."""
    return f"private/{wildcards.study}/file_map.csv"


def get_user_splits(wildcards):
    file = study_config(wildcards.study)["splits"].get("file")
    return [file] if file else []


def get_extract_spec(wildcards):
    cfg = study_config(wildcards.study)
    return {
        "study": wildcards.study,
        "modalities": cfg["modalities"],
        "preprocess": cfg["preprocess"],
        "labels": cfg["labels"],
        "frames": cfg.get("frames", "all"),
        "sequences": cfg.get("sequences", {}),
    }


def get_train_spec(wildcards):
    """The study's training settings with the arm's own overrides applied (train.repeats aside:
    it says how many jobs there are, not what one computes, so changing it retrains nothing).
    """
    cfg = study_config(wildcards.study)
    train = {k: v for k, v in cfg["train"].items() if k != "repeats"}
    return {**train, **cfg["arms"][wildcards.arm].get("train", {})}


def model_spec(study, arm):
    """An arm's model settings (its training overrides go to get_train_spec, its Grad-CAM
    layer to get_gradcam_layer: neither retrains nor recounts another job)."""
    spec = study_config(study)["arms"][arm]
    return {k: v for k, v in spec.items() if k not in ("train", "gradcam")}


def gradcam_layer(study, arm):
    """The arm's Grad-CAM target layer, else the study's, else the last convolutional stage."""
    own = study_config(study)["arms"][arm].get("gradcam") or {}
    return (
        own.get("layer")
        or study_config(study).get("gradcam", {}).get("layer")
        or "last"
    )


def get_gradcam_layer(wildcards):
    return gradcam_layer(wildcards.study, wildcards.arm)


def study_input_shape(study):
    """(C, H, W) of the study's full-size input: the crop (ultrasound) or the MRI size. The
    complexity table counts at this size."""
    pre = study_config(study)["preprocess"]
    if pre["kind"] == "ultrasound":
        return [3, pre["crop_height"], pre["crop_width"]]
    return [3, pre["size"], pre["size"]]


def training_input_shape(study):
    """(C, H, W) of what the networks see: the cached images (the crop resized by `scale`)."""
    pre = study_config(study)["preprocess"]
    if pre["kind"] == "ultrasound":
        scale = pre.get("scale", 1.0)
        rows = max(1, round(pre["crop_height"] * scale))
        return [3, rows, max(1, round(pre["crop_width"] * scale))]
    return [3, pre["size"], pre["size"]]


def get_study_input_shape(wildcards):
    return study_input_shape(wildcards.study)


def check_arms():
    """Stop before any job for an arm that cannot train or be explained (mskdx.learn.arms.
    check_arm: unknown torchvision name, builder not importable or giving no module, weights
    whose keys do not fit, output not 2 logits, a Grad-CAM layer it lacks). Checked: torchvision
    and python arms, and any arm with a Grad-CAM module path; the papers' arms with their own
    stages are fixed code, checked by the schema, and need no torch import here."""
    papers = {"resnet_blocks", "resnet50"}
    stages = {"last", "layer1", "layer2", "layer3", "layer4"}
    todo = [
        (study, arm)
        for study in STUDIES
        for arm in arms(study)
        if model_spec(study, arm)["architecture"] not in papers
        or gradcam_layer(study, arm) not in stages
    ]
    if not todo:
        return
    from mskdx.errors import MskdxError
    from mskdx.learn import arms as arm_checks  # torch: only with such arms

    for study, arm in todo:
        try:
            arm_checks.check_arm(
                model_spec(study, arm),
                tuple(training_input_shape(study)),
                where=f"studies.{study}.arms.{arm}",
                gradcam_layer=gradcam_layer(study, arm),
            )
        except MskdxError as exc:
            raise WorkflowError(f"{exc}") from None


check_arms()


def repeated_cv(study):
    """Whether the study has the companion table of repeated CV (k-fold CV, or a split file)."""
    splits = study_config(study)["splits"]
    return splits["method"] == "kfold" or bool(splits.get("file"))


def check_repeats():
    """splits.repeats and train.repeats feed the companion table of k-fold CV: on a holdout
    study they would train jobs that no table reads, so they stop the run instead."""
    for study in STUDIES:
        cfg = study_config(study)
        asked = {
            key: value
            for key, value in (
                ("splits.repeats", cfg["splits"].get("repeats", 1)),
                ("train.repeats", cfg["train"].get("repeats", 1)),
            )
            if value > 1
        }
        if asked and not repeated_cv(study):
            raise WorkflowError(
                f"studies.{study}: {', '.join(f'{k}: {v}' for k, v in asked.items())} asked, "
                f"but its splits.method is {cfg['splits']['method']!r}: repeats are for k-fold "
                "CV (the companion table of Table I); remove them or use method: kfold"
            )


check_repeats()


def get_arm_spec(wildcards):
    return model_spec(wildcards.study, wildcards.arm)


def get_model_specs(wildcards):
    return {arm: model_spec(wildcards.study, arm) for arm in arms(wildcards.study)}


def get_compute_threads(wildcards):
    """The study's intra-op thread count (train.threads): a job computes with exactly this many
    threads whatever --cores grants, since the count changes the numbers (the order of sums).
    """
    return study_config(wildcards.study)["train"]["threads"]


def get_pretrained_weights(wildcards):
    """The verified ImageNet weight file an arm with `weights: imagenet` trains from, as an input.

    Evaluated while the DAG is built, only for train_fold jobs the requested targets need, so a
    missing or damaged file stops the run before any job starts (README, "ImageNet weights").
    """
    spec = model_spec(wildcards.study, wildcards.arm)
    if (
        spec.get("architecture") != "resnet50"
        or spec.get("weights", "imagenet") != "imagenet"
    ):
        return []
    return pretrained_weights_file(spec.get("weights_path") or "")


@cache
def pretrained_weights_file(weights_path):
    """[path] of the ResNet50 ImageNet weights: the arm's weights_path, MSKDX_RESNET50_WEIGHTS or
    torch hub's cache file, checked against the hash in its name; downloaded into that cache by
    torchvision only by a run that executes jobs (not -n, --report, --lint, nor inside a job).
    """
    from mskdx.learn import models, weights  # imports torch: only for runs that need it

    executes = (
        workflow.is_main_process
        and workflow.executor_plugin is not None
        and not workflow.dryrun
    )
    try:
        path = weights.resnet50_file(weights_path or None, download=executes)
    except models.WeightsUnavailableError as exc:
        raise WorkflowError(str(exc)) from None
    if path is None:  # not downloaded by a dry run: the run itself will try
        print(
            f"ImageNet ResNet50 weights not cached at {models.resnet50_cache_file()}; "
            "the run will download them (torchvision) before its first job",
            file=sys.stderr,
        )
        return []
    return [str(path)]


def gpu_wanted(wildcards):
    return 0 if study_config(wildcards.study)["train"].get("device") == "cpu" else 1


def model_dir(study, arm, fold, train_repeat=0):
    """A job's folder; training repeat t >= 1 of the same fold (train.repeats) under seed_<t>/."""
    if train_repeat:
        return f"results/{study}/models/{arm}/seed_{train_repeat}/fold_{fold}"
    return f"results/{study}/models/{arm}/fold_{fold}"


def get_predictions(wildcards):
    """Prediction tables of every arm and fold of a study."""
    return [
        f"{model_dir(wildcards.study, arm, fold)}/predictions.csv"
        for arm in arms(wildcards.study)
        for fold in folds(wildcards.study)
    ]


def get_arm_predictions(wildcards):
    return [
        f"{model_dir(wildcards.study, wildcards.arm, fold)}/predictions.csv"
        for fold in folds(wildcards.study)
    ]


FIGURE_FORMATS = config["figures"]["formats"]


def figure(stem):
    """The primary (report) file of a figure; `figure_extra` gives its other formats."""
    return f"{stem}.{FIGURE_FORMATS[0]}"


def figure_extra(stem):
    return [f"{stem}.{ext}" for ext in FIGURE_FORMATS[1:]]


def class_names(wildcards):
    labels = study_config(wildcards.study)["labels"]
    return [labels["negative"], labels["positive"]]


def get_arm_checkpoints(wildcards):
    return [
        f"{model_dir(wildcards.study, wildcards.arm, fold)}/checkpoint_final.pt"
        for fold in folds(wildcards.study)
    ]


def get_gradcam_scores(wildcards):
    return [
        f"results/{wildcards.study}/gradcam/{arm}_scores.csv"
        for arm in arms(wildcards.study)
    ]


def get_first_fold_predictions(wildcards):
    fold = folds(wildcards.study)[0]
    return f"{model_dir(wildcards.study, wildcards.arm, fold)}/predictions.csv"


def get_final_output():
    """Every table and figure of both papers, the Grad-CAM scores and the paper check."""
    out = [
        "results/gout/tables/table1_image_level.csv",
        "results/gout/tables/table2_complexity.csv",
        "results/olt/tables/complexity.csv",
        "results/olt/tables/table2_performance.csv",
        "results/paper_check.csv",
        figure("results/gout/figures/crop_qc"),
    ]
    for study in STUDIES:
        if repeated_cv(study):
            out.append(f"results/{study}/tables/table1_repeats.csv")
        out.append(f"results/{study}/tables/localisation.csv")
        out.append(f"results/{study}/tables/calibration.csv")
        out.append(f"results/{study}/tables/claim_checklist.csv")
        out.append(f"results/{study}/tables/subgroups.csv")
        stems = [
            f"results/{study}/figures/roc",
            f"results/{study}/figures/localisation",
            f"results/{study}/figures/decision_curve",
            f"results/{study}/figures/failures",
        ]
        for arm in arms(study):
            stems += [
                f"results/{study}/figures/confusion_{arm}",
                f"results/{study}/figures/gradcam_{arm}",
                f"results/{study}/figures/calibration_{arm}",
            ]
            stems += [
                f"results/{study}/figures/curves_{arm}_fold{fold}"
                for fold in folds(study)
            ]
        out += [figure(stem) for stem in stems]
    for study in STUDIES:
        if external_cohorts(study):
            out.append(figure(f"results/{study}/figures/roc_external"))
        for cohort in external_cohorts(study):
            out.append(f"results/{study}/tables/external_{cohort}.csv")
    for arm in arms("gout"):
        out.append(f"results/gout/tables/table3_patient_level_{arm}.csv")
        out.append(figure(f"results/gout/figures/threshold_{arm}"))
    for arm in arms("olt"):
        out.append(figure(f"results/olt/figures/montage_{arm}"))
    for study in STUDIES:
        out += [f"results/{study}/model_card_{arm}.md" for arm in arms(study)]
    return out


# ---- external cohorts ---------------------------------------------------------------------------


def external_cohorts(study):
    """Names of a study's external cohorts: synthetic ones, or those listed for your own data."""
    if config["data"]["source"] == "synthetic":
        return sorted((config["synthetic"].get("external") or {}).get(study) or {})
    return [c["name"] for c in study_config(study).get("external", [])]


def get_external_input(wildcards):
    """DICOM folder, label sheet and (optional) masks of one external cohort."""
    study, cohort = wildcards.study, wildcards.cohort
    if config["data"]["source"] == "synthetic":
        base = f"data/synthetic/external/{study}/{cohort}"
        return {
            "dicom": f"{base}/dicom",
            "labels": f"{base}/labels.csv",
            "truth": f"{base}/masks.npz",
        }
    given = next(c for c in study_config(study)["external"] if c["name"] == cohort)
    paths = {"dicom": given["dicom_dir"], "labels": given["labels"]}
    if given.get("masks"):
        paths["truth"] = given["masks"]
    return paths


def get_external_inventory(wildcards):
    """Like the development folder's: a file changed deep in an external folder reruns it."""
    if config["data"]["source"] == "synthetic":
        return "synthetic"
    return inputs.tree_digest(get_external_input(wildcards)["dicom"])


def get_synthetic_external(wildcards):
    """A synthetic external cohort's size and capture settings (without its seed/difficulty)."""
    spec = config["synthetic"]["external"][wildcards.study][wildcards.cohort]
    return {k: v for k, v in spec.items() if k not in ("seed", "difficulty")}


def get_arm_checkpoints(wildcards):
    return [
        f"{model_dir(wildcards.study, wildcards.arm, fold)}/checkpoint_final.pt"
        for fold in folds(wildcards.study)
    ]


def get_arm_sequence(wildcards):
    return model_spec(wildcards.study, wildcards.arm).get("sequence")


def external_file(study, cohort, kind, arm):
    return f"results/{study}/external/{cohort}/{kind}_{arm}.csv"


def get_external_scores(wildcards):
    """Per-fold and ensemble scores of every arm on one external cohort."""
    study, cohort = wildcards.study, wildcards.cohort
    return {
        "per_fold": [
            external_file(study, cohort, "predictions", a) for a in arms(study)
        ],
        "ensemble": [external_file(study, cohort, "ensemble", a) for a in arms(study)],
    }


def get_all_external_ensembles(wildcards):
    """Ensemble scores of every arm on every external cohort of a study."""
    study = wildcards.study
    return [
        external_file(study, cohort, "ensemble", arm)
        for cohort in external_cohorts(study)
        for arm in arms(study)
    ]


def get_arm_external_ensembles(wildcards):
    study = wildcards.study
    return [
        external_file(study, cohort, "ensemble", wildcards.arm)
        for cohort in external_cohorts(study)
    ]


def get_development_curves(wildcards):
    """Gout: each arm's per-fold patient thresholds (Table III), applied to external cohorts."""
    if wildcards.study != "gout":
        return []
    return [
        f"results/gout/tables/threshold_curves_{arm}.csv"
        for arm in arms(wildcards.study)
    ]


def get_predict_dicom(wildcards):
    """The folder of new patients for rule predict_folder (config predict.dicom_dir)."""
    folder = (config.get("predict") or {}).get("dicom_dir")
    if not folder:
        raise ValueError(
            "predict.dicom_dir is empty; set it to a folder of DICOM studies, e.g. "
            "--config predict='{dicom_dir: /data/new_patients}'"
        )
    return folder


def get_arm_curves(wildcards):
    """Gout: the arm's development threshold curves (the patient threshold); OLT: none."""
    if wildcards.study != "gout":
        return []
    return [f"results/gout/tables/threshold_curves_{wildcards.arm}.csv"]


def get_checklist_settings(wildcards):
    """The settings the checklist reports (the study's method settings, not figure styles)."""
    cfg = study_config(wildcards.study)
    return {
        "source": config["data"]["source"],
        "on_error": config["data"]["on_error"],
        "seed": config["seed"],
        "modalities": cfg["modalities"],
        "preprocess": cfg["preprocess"],
        "splits": cfg["splits"],
        "arms": cfg["arms"],
        "train": cfg["train"],
        "external": external_cohorts(wildcards.study),
    }


# ---- comparisons (compare.smk) ------------------------------------------------------------------


def get_all_checkpoints(wildcards):
    return [
        f"{model_dir(wildcards.study, arm, fold)}/checkpoint_final.pt"
        for arm in arms(wildcards.study)
        for fold in folds(wildcards.study)
    ]


def get_external_manifests(wildcards):
    return [
        f"results/{wildcards.study}/external/{cohort}/cache/manifest.csv"
        for cohort in external_cohorts(wildcards.study)
    ]


def repeat_folds(study):
    """Every fold of every repeat of repeated k-fold CV (repeat 0 = folds(study))."""
    splits = study_config(study)["splits"]
    if splits.get("repeats", 1) == 1 or splits.get("file"):
        return folds(study)
    return list(range(splits["folds"] * splits["repeats"]))


def train_repeats(study):
    """Training runs per fold (train.repeats; absent: 1): repeat 0 is the paper's job."""
    return list(range(study_config(study)["train"].get("repeats", 1)))


def repeat_runs(study):
    """(arm, fold id, training repeat) of every job of repeated CV, in one fixed order."""
    return [
        (arm, fold, t)
        for arm in arms(study)
        for fold in repeat_folds(study)
        for t in train_repeats(study)
    ]


def get_repeat_predictions(wildcards):
    return [
        f"{model_dir(wildcards.study, arm, fold, t)}/predictions.csv"
        for arm, fold, t in repeat_runs(wildcards.study)
    ]


def get_repeat_train_repeats(wildcards):
    """The training repeat of each of get_repeat_predictions' files, in its order."""
    return [t for _, _, t in repeat_runs(wildcards.study)]


# ---- deployment: predict's DICOM results, model cards ------------------------------------------


def get_predict_dicom_out(wildcards):
    """Where predict_folder writes its DICOM results, from config predict.dicom_out (true =
    private/<study>/predict/<arm>/dicom; a path ({study}, {arm} filled in); false/empty = none).
    They hold the source patients' identity: never under results/ (the library refuses).
    """
    given = (config.get("predict") or {}).get("dicom_out")
    # --config predict='{dicom_out: true}' arrives as the text "true"
    if not given or str(given).lower() == "false":
        return ""
    if given is True or str(given).lower() == "true":
        return f"private/{wildcards.study}/predict/{wildcards.arm}/dicom"
    return str(given).format(study=wildcards.study, arm=wildcards.arm)


def get_model_card_tables(wildcards):
    """The run's tables a model card is generated from."""
    study, arm = wildcards.study, wildcards.arm
    tables = f"results/{study}/tables"
    out = {
        "manifest": f"results/{study}/cache/manifest.csv",
        "calibration": f"{tables}/calibration.csv",
        "localisation": f"{tables}/localisation.csv",
        "subgroups": f"{tables}/subgroups.csv",
        "external": [f"{tables}/external_{c}.csv" for c in external_cohorts(study)],
    }
    if study == "gout":
        out["performance"] = f"{tables}/table1_image_level.csv"
        out["patients"] = f"{tables}/table3_patient_level_{arm}.csv"
    else:
        out["performance"] = f"{tables}/table2_performance.csv"
    return out


def get_model_card_settings(wildcards):
    """What the card reports of the config: the arm, its training, the crop, the labels."""
    cfg = study_config(wildcards.study)
    splits = cfg["splits"]
    return {
        "source": config["data"]["source"],
        "arm_spec": model_spec(wildcards.study, wildcards.arm),
        "train": get_train_spec(wildcards),
        "preprocess": cfg["preprocess"],
        "labels": {
            "positive": cfg["labels"]["positive"],
            "negative": cfg["labels"]["negative"],
        },
        "folds": len(folds(wildcards.study)),
        "split": "user file" if splits.get("file") else splits["method"],
        "image_threshold": cfg["evaluate"]["image_threshold"],
    }
