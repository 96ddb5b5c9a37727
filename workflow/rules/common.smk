# Glue between the config and the rules: the library owns the config, its checks, every job's
# settings and every path (mskdx.config: load, checks, layout); these functions only hand its
# answers to the rules' input functions and params.
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

# the checkout's library, installed in this environment or not
sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from mskdx.config import checks
from mskdx.config import load as config_load
from mskdx.config.layout import STUDIES, STUDY_TITLES, Layout
from mskdx.errors import MskdxError
from mskdx.ingest import inputs  # standard library only


def config_sources():
    """(file, its own mapping) in the order Snakemake merged them: the Snakefile's configfile,
    then the --configfile overlays, then --config values."""
    given = [str(f) for f in workflow.overwrite_configfiles]
    files = [str(f) for f in workflow.configfiles if str(f) not in given] + given
    sources = [(f, config_load.read_config_file(f)) for f in files]
    if workflow.config_settings.config:
        sources.append(("--config", dict(workflow.config_settings.config)))
    return sources


try:
    config_load.validate(config, config_sources())
    checks.check_repeats(config)
    checks.check_data_source(config)
except MskdxError as exc:
    raise WorkflowError(str(exc)) from None

LAYOUT = Layout(config)
KEY_ENV = LAYOUT.key_env
if inputs.demo_key_warning(KEY_ENV):
    # on the terminal, at every start: the job logs under results/ are not where users look
    print(inputs.demo_key_warning(KEY_ENV), file=sys.stderr)

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


def glue(answer):
    """A library answer for Snakemake: a config error as a WorkflowError, paths as strings."""
    try:
        value = answer()
    except MskdxError as exc:
        raise WorkflowError(str(exc)) from None
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: str(v) if isinstance(v, Path) else v for k, v in value.items()}
    if isinstance(value, list):
        return [str(v) if isinstance(v, Path) else v for v in value]
    return value


def schema(name):
    return workflow.source_path(f"../schemas/{name}.schema.yaml")


def study_category(wildcards):
    """The report category of a study's results (report() takes a function of the wildcards)."""
    return STUDY_TITLES[wildcards.study]


def arms(study):
    return LAYOUT.arms(study)


def folds(study):
    return glue(lambda: LAYOUT.folds(study))


try:
    if LAYOUT.arms_to_check():
        from mskdx.learn import arms as arm_checks  # torch: only with such arms

        arm_checks.check_config_arms(LAYOUT)
except MskdxError as exc:
    raise WorkflowError(str(exc)) from None


# ---- inputs ---------------------------------------------------------------------------------


def get_study_input(wildcards):
    """DICOM folder, label sheet, (optional) image label sheet and lesion masks of a study."""
    return glue(lambda: LAYOUT.study_input(wildcards.study))


def get_external_input(wildcards):
    return glue(lambda: LAYOUT.external_input(wildcards.study, wildcards.cohort))


def get_dicom_inventory(wildcards):
    """A digest of every path, size and mtime under a user's DICOM folder: a file changed deep
    in the tree reruns the extraction. The synthetic tree is a Snakemake output, tracked as such.
    """
    if LAYOUT.source == "synthetic":
        return "synthetic"
    return inputs.tree_digest(get_study_input(wildcards)["dicom"])


def get_external_inventory(wildcards):
    if LAYOUT.source == "synthetic":
        return "synthetic"
    return inputs.tree_digest(get_external_input(wildcards)["dicom"])


def get_key_fingerprint(wildcards):
    """A fingerprint of the pseudonym key (never the key): a new key reruns the extraction."""
    return inputs.key_fingerprint(KEY_ENV)


def get_private_map(wildcards):
    return str(LAYOUT.private_map(wildcards.study))


def get_external_private_map(wildcards):
    return str(LAYOUT.private_map(wildcards.study, wildcards.cohort))


def get_user_splits(wildcards):
    file = LAYOUT.study(wildcards.study)["splits"].get("file")
    return [file] if file else []


def get_synthetic_external(wildcards):
    """A synthetic external cohort's size and capture settings (without its seed/difficulty)."""
    spec = config["synthetic"]["external"][wildcards.study][wildcards.cohort]
    return {k: v for k, v in spec.items() if k not in ("seed", "difficulty")}


# ---- job settings -----------------------------------------------------------------------------


def get_extract_spec(wildcards):
    return LAYOUT.extract_spec(wildcards.study)


def get_train_spec(wildcards):
    return LAYOUT.train_spec(wildcards.study, wildcards.arm)


def get_arm_spec(wildcards):
    return LAYOUT.model_spec(wildcards.study, wildcards.arm)


def get_model_specs(wildcards):
    return {
        arm: LAYOUT.model_spec(wildcards.study, arm) for arm in arms(wildcards.study)
    }


def get_arm_sequence(wildcards):
    return LAYOUT.model_spec(wildcards.study, wildcards.arm).get("sequence")


def get_gradcam_layer(wildcards):
    return LAYOUT.gradcam_layer(wildcards.study, wildcards.arm)


def get_gradcam_layers(wildcards):
    return {
        arm: LAYOUT.gradcam_layer(wildcards.study, arm) for arm in arms(wildcards.study)
    }


def get_study_input_shape(wildcards):
    return LAYOUT.input_shape(wildcards.study)


def get_compute_threads(wildcards):
    """The study's intra-op thread count (train.threads): a job computes with exactly this many
    threads whatever --cores grants, since the count changes the numbers (the order of sums).
    """
    return LAYOUT.threads(wildcards.study)


def get_arm_folds(wildcards):
    return folds(wildcards.study)


def get_arm_settings(wildcards):
    return LAYOUT.arm_settings(wildcards.study, wildcards.arm)


def get_all_runs(wildcards):
    """(arm, fold) of get_all_checkpoints' files, in its order."""
    return [
        [arm, fold] for arm in arms(wildcards.study) for fold in folds(wildcards.study)
    ]


def gpu_wanted(wildcards):
    return 0 if LAYOUT.study(wildcards.study)["train"].get("device") == "cpu" else 1


def get_pretrained_weights(wildcards):
    """The verified ImageNet weight file an arm with `weights: imagenet` trains from, as an input.

    Evaluated while the DAG is built, only for train_fold jobs the requested targets need, so a
    missing or damaged file stops the run before any job starts (README, "ImageNet weights").
    """
    spec = LAYOUT.model_spec(wildcards.study, wildcards.arm)
    if (
        spec.get("architecture") != "resnet50"
        or spec.get("weights", "imagenet") != "imagenet"
    ):
        return []
    return pretrained_weights_file(spec.get("weights_path") or "")


def pretrained_weights_file(weights_path):
    """[path] of the ResNet50 ImageNet weights (mskdx.learn.weights.resnet50_file); downloaded
    into torch hub's cache only by a run that executes jobs (not -n, --report, --lint).
    """
    from mskdx.learn import weights  # imports torch: only for runs that need it

    executes = (
        workflow.is_main_process
        and workflow.executor_plugin is not None
        and not workflow.dryrun
    )
    try:
        path = weights.resnet50_file(weights_path or None, download=executes)
    except MskdxError as exc:
        raise WorkflowError(str(exc)) from None
    if path is None:  # not downloaded by a dry run: the run itself will try
        print(
            f"ImageNet ResNet50 weights not cached at {weights.resnet50_cache_file()}; "
            "the run will download them (torchvision) before its first job",
            file=sys.stderr,
        )
        return []
    return [str(path)]


# ---- results ----------------------------------------------------------------------------------


def figure(stem):
    """The primary (report) file of a figure; `figure_extra` gives its other formats."""
    return LAYOUT.figure(stem)


def figure_extra(stem):
    return LAYOUT.figure_extra(stem)


def class_names(wildcards):
    labels = LAYOUT.study(wildcards.study)["labels"]
    return [labels["negative"], labels["positive"]]


def get_predictions(wildcards):
    """Prediction tables of every arm and fold of a study."""
    return glue(lambda: LAYOUT.study_predictions(wildcards.study))


def get_arm_predictions(wildcards):
    return glue(lambda: LAYOUT.arm_predictions(wildcards.study, wildcards.arm))


def get_first_fold_predictions(wildcards):
    return get_arm_predictions(wildcards)[0]


def get_arm_checkpoints(wildcards):
    return glue(
        lambda: list(LAYOUT.arm_checkpoints(wildcards.study, wildcards.arm).values())
    )


def get_all_checkpoints(wildcards):
    return [
        str(LAYOUT.checkpoint(wildcards.study, arm, fold))
        for arm, fold in get_all_runs(wildcards)
    ]


def get_gradcam_scores(wildcards):
    return [
        f"results/{wildcards.study}/gradcam/{arm}_scores.csv"
        for arm in arms(wildcards.study)
    ]


def get_repeat_predictions(wildcards):
    return [
        str(LAYOUT.predictions(wildcards.study, arm, fold, t))
        for arm, fold, t in LAYOUT.repeat_runs(wildcards.study)
    ]


def get_repeat_train_repeats(wildcards):
    """The training repeat of each of get_repeat_predictions' files, in its order."""
    return [t for _, _, t in LAYOUT.repeat_runs(wildcards.study)]


def external_cohorts(study):
    return LAYOUT.external_cohorts(study)


def get_external_scores(wildcards):
    """Per-fold and ensemble scores of every arm on one external cohort."""
    study, cohort = wildcards.study, wildcards.cohort
    return {
        kind: [str(LAYOUT.external_scores(study, cohort, name, a)) for a in arms(study)]
        for kind, name in (("per_fold", "predictions"), ("ensemble", "ensemble"))
    }


def get_all_external_ensembles(wildcards):
    """Ensemble scores of every arm on every external cohort of a study."""
    study = wildcards.study
    return [
        str(LAYOUT.external_scores(study, cohort, "ensemble", arm))
        for cohort in external_cohorts(study)
        for arm in arms(study)
    ]


def get_arm_external_ensembles(wildcards):
    study = wildcards.study
    return [
        str(LAYOUT.external_scores(study, cohort, "ensemble", wildcards.arm))
        for cohort in external_cohorts(study)
    ]


def get_external_manifests(wildcards):
    return [
        str(LAYOUT.cache(wildcards.study, "manifest.csv", cohort))
        for cohort in external_cohorts(wildcards.study)
    ]


def get_development_curves(wildcards):
    """Gout: each arm's per-fold patient thresholds (Table III), applied to external cohorts."""
    if wildcards.study != "gout":
        return []
    return [str(LAYOUT.threshold_curves("gout", arm)) for arm in arms("gout")]


def get_arm_curves(wildcards):
    """Gout: the arm's development threshold curves (the patient threshold); OLT: none."""
    if wildcards.study != "gout":
        return []
    return [str(LAYOUT.threshold_curves("gout", wildcards.arm))]


def get_final_output():
    """Every table and figure of both papers, the Grad-CAM scores and the paper check."""
    return glue(LAYOUT.final_outputs)


# ---- predict and the model cards --------------------------------------------------------------


def get_predict_dicom(wildcards):
    """The folder of new patients for rule predict_folder (config predict.dicom_dir)."""
    folder = (config.get("predict") or {}).get("dicom_dir")
    if not folder:
        raise WorkflowError(
            "predict.dicom_dir is empty; set it to a folder of DICOM studies, e.g. "
            "--config predict='{dicom_dir: /data/new_patients}'"
        )
    return folder


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
        return str(LAYOUT.predict_dicom_dir(wildcards.study, wildcards.arm))
    return str(given).format(study=wildcards.study, arm=wildcards.arm)


def get_predict_private_map(wildcards):
    return str(LAYOUT.predict_private_map(wildcards.study, wildcards.arm))


def get_checklist_settings(wildcards):
    """The settings the checklist reports (the study's method settings, not figure styles)."""
    cfg = LAYOUT.study(wildcards.study)
    return {
        "source": LAYOUT.source,
        "on_error": config["data"]["on_error"],
        "seed": config["seed"],
        "modalities": cfg["modalities"],
        "preprocess": cfg["preprocess"],
        "splits": cfg["splits"],
        "arms": cfg["arms"],
        "train": cfg["train"],
        "external": external_cohorts(wildcards.study),
    }


def get_model_card_tables(wildcards):
    """The run's tables a model card is generated from."""
    study, arm = wildcards.study, wildcards.arm
    tables = LAYOUT.tables(study)
    out = {
        "manifest": str(LAYOUT.cache(study, "manifest.csv")),
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
    study, arm = wildcards.study, wildcards.arm
    cfg = LAYOUT.study(study)
    splits = cfg["splits"]
    return {
        "source": LAYOUT.source,
        "arm_spec": LAYOUT.model_spec(study, arm),
        "train": LAYOUT.train_spec(study, arm),
        "preprocess": cfg["preprocess"],
        "labels": {
            "positive": cfg["labels"]["positive"],
            "negative": cfg["labels"]["negative"],
        },
        "folds": len(folds(study)),
        "split": "user file" if splits.get("file") else splits["method"],
        "image_threshold": LAYOUT.image_threshold(study),
    }


# ---- issue 37: comparison ----------------------------------------------------------------------

try:  # a reference that is not an arm stops the run before any job, not in the tables' jobs
    for _study in config["studies"]:
        LAYOUT.comparison_reference(_study)
except MskdxError as exc:
    raise WorkflowError(str(exc)) from None


def get_comparison_reference(wildcards):
    """The arm the image-level tests compare the others with, or "auto"."""
    return glue(lambda: LAYOUT.comparison_reference(wildcards.study))


# ---- issue 37: precision and sample size ------------------------------------------------------


def get_riley_plan(wildcards):
    """The study's planned development sample size (precision.riley), or None: off."""
    return LAYOUT.riley_plan(wildcards.study)


# ---- issue 39: report pages, provenance -------------------------------------------------------


def page_titles(**titles):
    """Titles of a rule's report pages by output name ({wildcards} filled in), each under its
    study's title: params `pages` of the rules that write a table's page beside its CSV.
    """

    def titled(wildcards):
        values = dict(wildcards.items())
        study = STUDY_TITLES.get(values.get("study"))
        return {
            key: (f"{study}: " if study else "") + text.format(**values)
            for key, text in titles.items()
        }

    return titled


def get_config_files():
    """The run's config files in merge order (the Snakefile's configfile, then the --configfile
    overlays), relative to the run directory: the crate records each with its SHA-256.
    """
    return [os.path.relpath(f) for f, _ in config_sources() if f != "--config"]


def get_input_trees():
    return glue(LAYOUT.input_trees)


def get_repo_root():
    """The checkout, relative to the run directory (a moved checkout reruns nothing)."""
    return os.path.relpath(workflow.basedir)


def front_page():
    """The report's front page, written from this run's config (arms, data, split, training,
    external cohorts, what was not run, departures from the paper preset config/config.yaml)
    into .snakemake/mskdx/ when its text changed; its absolute path for `report:`."""
    from mskdx.provenance.report import write_front_page

    try:
        paper = config_load.load_config()
    except MskdxError as exc:
        raise WorkflowError(str(exc)) from None
    external = {study: external_cohorts(study) for study in STUDIES}
    path = Path(".snakemake") / "mskdx" / "front_page.rst"
    return write_front_page(config, path, external=external, paper_config=paper)


from mskdx.provenance.summary import run_summary  # onsuccess: the terminal summary
