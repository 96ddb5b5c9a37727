"""Each job's settings from the config, and every path of results/ and private/.

`Layout(config)` is asked by `workflow/rules/common.smk` (the rules' input functions and params),
by the `mskdx` command (`predict`, `export`) and by the library steps that need a path of
another stage: nobody else builds these paths or parses a fold number back out of one.

Paths are relative to the run directory (as Snakemake wants them) under `results` (default
"results") and `private` (default "private": the PHI-holding maps, outside results/).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from mskdx.config import checks
from mskdx.errors import ConfigError

PathLike = str | os.PathLike[str]

STUDIES = ("gout", "olt")
#: report category of each study: its tables and figures are found together under this title
STUDY_TITLES = {"gout": "Gout ultrasound", "olt": "OLT MRI"}
#: the papers' own networks (mskdx.learn.models) and their stages: fixed code, checked by the
#: schema; any other arm, or a Grad-CAM module path, is built once before any job
PAPER_ARCHITECTURES = ("resnet_blocks", "resnet50")
RESNET_STAGES = ("last", "layer1", "layer2", "layer3", "layer4")
#: what arm.json records: the settings a trained arm needs to be run again (predict, export);
#: mskdx.learn.arm_settings reads and writes it
ARM_FORMAT = "mskdx.arm/1"


class Layout:
    """The job settings and paths of one (checked) config."""

    def __init__(
        self, config: Mapping, *, results: PathLike = "results", private: PathLike = "private"
    ) -> None:
        self.config = config
        self.results = Path(results)
        self.private = Path(private)

    # ---- the config, per study ---------------------------------------------------------------

    def study(self, study: str) -> Mapping:
        if study not in self.config.get("studies", {}):
            raise ConfigError(f"studies.{study}: not in the config; expected gout or olt")
        return self.config["studies"][study]

    @property
    def source(self) -> str:
        return self.config["data"]["source"]

    @property
    def key_env(self) -> str:
        return self.config["data"]["pseudonym_key_env"]

    def arms(self, study: str) -> list[str]:
        """Arm names, sorted: an overlay that redefines an arm must not reorder params."""
        return sorted(self.study(study)["arms"])

    def check_arm_name(self, study: str, arm: str) -> None:
        if arm not in self.study(study)["arms"]:
            raise ConfigError(
                f"studies.{study}.arms.{arm}: not an arm of {study}; expected one of "
                f"{self.arms(study)}"
            )

    def folds(self, study: str) -> list[int]:
        """The folds of the study's split (repeat 0): k-fold, holdout (0) or a user's file."""
        splits = self.study(study)["splits"]
        if splits.get("file"):
            return checks.user_split_folds(splits["file"], study)
        if splits["method"] == "kfold":
            return list(range(splits["folds"]))
        return [0]

    def repeated_cv(self, study: str) -> bool:
        """Whether the study has the companion table of repeated CV (k-fold, or a split file)."""
        splits = self.study(study)["splits"]
        return splits["method"] == "kfold" or bool(splits.get("file"))

    def repeat_folds(self, study: str) -> list[int]:
        """Every fold of every repeat of repeated k-fold CV (repeat 0 = folds(study))."""
        splits = self.study(study)["splits"]
        if splits.get("repeats", 1) == 1 or splits.get("file"):
            return self.folds(study)
        return list(range(splits["folds"] * splits["repeats"]))

    def train_repeats(self, study: str) -> list[int]:
        """Training runs per fold (train.repeats; absent: 1): repeat 0 is the paper's job."""
        return list(range(self.study(study)["train"].get("repeats", 1)))

    def repeat_runs(self, study: str) -> list[tuple[str, int, int]]:
        """(arm, fold id, training repeat) of every job of repeated CV, in one fixed order."""
        return [
            (arm, fold, t)
            for arm in self.arms(study)
            for fold in self.repeat_folds(study)
            for t in self.train_repeats(study)
        ]

    def extract_spec(self, study: str) -> dict:
        """The extraction settings (`mskdx.ingest.extract.StudySpec`'s fields)."""
        cfg = self.study(study)
        return {
            "study": study,
            "modalities": list(cfg["modalities"]),
            "preprocess": dict(cfg["preprocess"]),
            "labels": dict(cfg["labels"]),
            "frames": cfg.get("frames", "all"),
            "sequences": dict(cfg.get("sequences", {})),
        }

    def train_spec(self, study: str, arm: str) -> dict:
        """The study's training settings with the arm's own overrides applied (train.repeats
        aside: it says how many jobs there are, not what one computes)."""
        cfg = self.study(study)
        train = {k: v for k, v in cfg["train"].items() if k != "repeats"}
        return {**train, **cfg["arms"][arm].get("train", {})}

    def model_spec(self, study: str, arm: str) -> dict:
        """An arm's model settings (its training overrides go to train_spec, its Grad-CAM layer
        to gradcam_layer: neither retrains nor recounts another job)."""
        self.check_arm_name(study, arm)
        spec = self.study(study)["arms"][arm]
        return {k: v for k, v in spec.items() if k not in ("train", "gradcam")}

    def arms_to_check(self) -> list[tuple[str, str]]:
        """(study, arm) of the arms `mskdx.learn.arms.check_config_arms` must build before any
        job: torchvision and python arms, and any arm with a Grad-CAM module path."""
        return [
            (study, arm)
            for study in STUDIES
            for arm in self.arms(study)
            if self.model_spec(study, arm)["architecture"] not in PAPER_ARCHITECTURES
            or self.gradcam_layer(study, arm) not in RESNET_STAGES
        ]

    def gradcam_layer(self, study: str, arm: str) -> str:
        """The arm's Grad-CAM target layer, else the study's, else the last convolutional stage."""
        own = self.study(study)["arms"][arm].get("gradcam") or {}
        return own.get("layer") or self.study(study).get("gradcam", {}).get("layer") or "last"

    def input_shape(self, study: str) -> list[int]:
        """(C, H, W) of the study's full-size input (the crop or the MRI size): the complexity
        table counts at this size."""
        pre = self.study(study)["preprocess"]
        if pre["kind"] == "ultrasound":
            return [3, pre["crop_height"], pre["crop_width"]]
        return [3, pre["size"], pre["size"]]

    def training_input_shape(self, study: str) -> list[int]:
        """(C, H, W) of what the networks see: the cached images (the crop resized by `scale`)."""
        pre = self.study(study)["preprocess"]
        if pre["kind"] == "ultrasound":
            scale = pre.get("scale", 1.0)
            rows = max(1, round(pre["crop_height"] * scale))
            return [3, rows, max(1, round(pre["crop_width"] * scale))]
        return [3, pre["size"], pre["size"]]

    def threads(self, study: str) -> int:
        return int(self.study(study)["train"]["threads"])

    def image_threshold(self, study: str) -> float:
        return float(self.study(study)["evaluate"]["image_threshold"])

    def comparison_reference(self, study: str) -> str:
        """The arm the image-level tests compare the others with, or "auto" (issue 37)."""
        reference = str(self.study(study).get("comparison", {}).get("reference", "auto"))
        if reference != "auto" and reference not in self.arms(study):
            raise ConfigError(
                f"studies.{study}.comparison.reference={reference!r} is not an arm of {study}; "
                f"expected auto or one of {self.arms(study)}"
            )
        return reference

    def riley_plan(self, study: str) -> dict | None:
        """The planned development sample size (precision.riley: r2_cs, parameters, prevalence)
        the precision table checks the cohort against; None when the study states none."""
        riley = (self.study(study).get("precision") or {}).get("riley")
        return dict(riley) if riley else None

    def external_cohorts(self, study: str) -> list[str]:
        """Names of a study's external cohorts: synthetic ones, or those listed for own data."""
        if self.source == "synthetic":
            return sorted((self.config["synthetic"].get("external") or {}).get(study) or {})
        return [c["name"] for c in self.study(study).get("external", [])]

    # ---- inputs ------------------------------------------------------------------------------

    def study_input(self, study: str) -> dict[str, str]:
        """DICOM folder, label sheet and the optional image label sheet and lesion masks of a
        study's own data (keys dicom, labels, image_labels, truth)."""
        if self.source == "synthetic":
            return self._synthetic(f"data/synthetic/{study}", self.image_sheet_columns(study))
        paths = checks.study_input_paths(self.study(study), study)
        given = self.study(study)["input"]
        return self._with_image_sheet(study, paths, given, f"studies.{study}.input.image_labels")

    def external_input(self, study: str, cohort: str) -> dict[str, str]:
        """DICOM folder, label sheet, (optional) image label sheet and masks of one external
        cohort."""
        if self.source == "synthetic":
            return self._synthetic(
                f"data/synthetic/external/{study}/{cohort}", self.image_sheet_columns(study)
            )
        given = next(c for c in self.study(study)["external"] if c["name"] == cohort)
        paths = {"dicom": given["dicom_dir"], "labels": given["labels"]}
        if given.get("masks"):
            paths["truth"] = given["masks"]
        key = f"studies.{study}.external (cohort {cohort}): image_labels"
        return self._with_image_sheet(study, paths, given, key)

    def image_sheet_columns(self, study: str) -> bool:
        """Whether the study names an image label sheet's columns (`labels.images`): the
        synthetic cohorts' sheets are read only then (`labels.images: null` = every image
        carries its patient's diagnosis)."""
        return bool(self.study(study)["labels"].get("images"))

    def _with_image_sheet(
        self, study: str, paths: dict[str, str], given: Mapping, key: str
    ) -> dict[str, str]:
        sheet = str(given.get("image_labels") or "").strip()
        if not sheet:
            return paths
        if not self.image_sheet_columns(study):
            raise ConfigError(
                f"{key} names an image label sheet but studies.{study}.labels.images (its key, "
                "columns and values) is not set"
            )
        return {**paths, "image_labels": sheet}

    @staticmethod
    def _synthetic(base: str, image_sheet: bool) -> dict[str, str]:
        paths = {
            "dicom": f"{base}/dicom",
            "labels": f"{base}/labels.csv",
            "truth": f"{base}/masks.npz",
        }
        if image_sheet:
            paths["image_labels"] = f"{base}/image_labels.csv"
        return paths

    # ---- results/ ------------------------------------------------------------------------------

    def model_dir(self, study: str, arm: str, fold: int, train_repeat: int = 0) -> Path:
        """A job's folder; training repeat t >= 1 of the same fold under seed_<t>/."""
        arm_dir = self.results / study / "models" / arm
        if train_repeat:
            return arm_dir / f"seed_{train_repeat}" / f"fold_{fold}"
        return arm_dir / f"fold_{fold}"

    def checkpoint(self, study: str, arm: str, fold: int) -> Path:
        return self.model_dir(study, arm, fold) / "checkpoint_final.pt"

    def arm_checkpoints(self, study: str, arm: str) -> dict[int, Path]:
        """{fold: checkpoint_final.pt} of an arm's paper jobs, in fold order."""
        return {fold: self.checkpoint(study, arm, fold) for fold in self.folds(study)}

    def predictions(self, study: str, arm: str, fold: int, train_repeat: int = 0) -> Path:
        return self.model_dir(study, arm, fold, train_repeat) / "predictions.csv"

    def arm_predictions(self, study: str, arm: str) -> list[Path]:
        return [self.predictions(study, arm, fold) for fold in self.folds(study)]

    def study_predictions(self, study: str) -> list[Path]:
        """Prediction tables of every arm and fold of a study."""
        return [p for arm in self.arms(study) for p in self.arm_predictions(study, arm)]

    def arm_settings_file(self, study: str, arm: str) -> Path:
        """arm.json: what the trained arm needs to be run again (`arm_settings`)."""
        return self.results / study / "models" / arm / "arm.json"

    def ood_reference(self, study: str, arm: str) -> Path:
        """ood.npz: the arm's out-of-distribution reference (`mskdx.deploy.ood`; feature
        statistics of the development images, no PHI), beside arm.json."""
        return self.results / study / "models" / arm / "ood.npz"

    def cache(self, study: str, name: str, cohort: str | None = None) -> Path:
        """images.npy, masks.npy, manifest.csv or source.json of a study's (or cohort's) cache."""
        base = self.results / study if cohort is None else self.external_dir(study, cohort)
        return base / "cache" / name

    def external_dir(self, study: str, cohort: str) -> Path:
        return self.results / study / "external" / cohort

    def external_scores(self, study: str, cohort: str, kind: str, arm: str) -> Path:
        """`predictions` (each fold model) or `ensemble` scores of an arm on a cohort."""
        return self.external_dir(study, cohort) / f"{kind}_{arm}.csv"

    def tables(self, study: str) -> Path:
        return self.results / study / "tables"

    def threshold_curves(self, study: str, arm: str) -> Path:
        """Gout: the arm's per-fold patient thresholds (Table III), used on new cohorts."""
        return self.tables(study) / f"threshold_curves_{arm}.csv"

    def predict_dir(self, study: str, arm: str) -> Path:
        """Where rule predict_folder writes new patients' tables (the CLI's --out is free)."""
        return self.results / study / "predict" / arm

    def export_dir(self, study: str, arm: str) -> Path:
        return self.results / study / "export" / arm

    # ---- private/ (PHI: outside results/, git-ignored) ----------------------------------------

    def private_map(self, study: str, cohort: str | None = None) -> Path:
        """The extraction's map from keys to real paths and PatientIDs."""
        if cohort is None:
            return self.private / study / "file_map.csv"
        return self.private / study / "external" / cohort / "file_map.csv"

    def predict_private_map(self, study: str, arm: str) -> Path:
        """The one home of predict's map of pseudonyms to patients and files, whichever way
        predict is started (rule predict_folder or `mskdx predict`)."""
        return self.private / study / "predict" / arm / "file_map.csv"

    def predict_retrieved(self, study: str, arm: str) -> Path:
        """Where `mskdx predict --from-pacs` retrieves a study (a private temporary folder is
        made inside, removed afterwards unless kept: the files carry the patient's identity)."""
        return self.private / study / "predict" / arm / "retrieved"

    def predict_dicom_dir(self, study: str, arm: str) -> Path:
        """Default folder of predict's DICOM results (they carry the source PHI)."""
        return self.private / study / "predict" / arm / "dicom"

    # ---- what a trained arm records -------------------------------------------------------

    def arm_settings(self, study: str, arm: str) -> dict:
        """The settings a trained arm needs to be run on new images, recorded in arm.json by the
        workflow (rule describe_arm) like a MONAI bundle's or nnU-Net's plans: `mskdx predict`
        and `mskdx export` read them, so a user need not remember which overlays trained it."""
        return {
            "format": ARM_FORMAT,
            "study": study,
            "arm": arm,
            "folds": self.folds(study),
            "extract": self.extract_spec(study),
            "model": self.model_spec(study, arm),
            "input_shape": self.training_input_shape(study),
            "gradcam_layer": self.gradcam_layer(study, arm),
            "image_threshold": self.image_threshold(study),
            "threads": self.threads(study),
            "key_env": self.key_env,
        }

    # ---- provenance ------------------------------------------------------------------------------

    def crate(self) -> Path:
        """The run's Workflow Run RO-Crate (mskdx.provenance.crate): results/ is the crate."""
        return self.results / "ro-crate-metadata.json"

    def input_trees(self) -> dict[str, str]:
        """Label ("gout", "gout/site_b") -> DICOM folder of every input tree of the run, which
        the crate describes by inventory digest only; a study whose input is unset is left out
        (a run of the other study's results)."""
        trees = {}
        for study in STUDIES:
            try:
                trees[study] = self.study_input(study)["dicom"]
            except ConfigError:
                continue
            for cohort in self.external_cohorts(study):
                trees[f"{study}/{cohort}"] = self.external_input(study, cohort)["dicom"]
        return trees

    # ---- rule all ------------------------------------------------------------------------------

    def figure(self, stem: PathLike) -> str:
        """The primary (report) file of a figure; `figure_extra` gives its other formats."""
        return f"{stem}.{self.config['figures']['formats'][0]}"

    def figure_extra(self, stem: PathLike) -> list[str]:
        return [f"{stem}.{ext}" for ext in self.config["figures"]["formats"][1:]]

    def final_outputs(self) -> list[str]:
        """Every table and figure of both papers and beyond (rule all)."""
        r = self.results
        out = [
            r / "gout/tables/table1_image_level.csv",
            r / "gout/tables/table2_complexity.csv",
            r / "olt/tables/complexity.csv",
            r / "olt/tables/table2_performance.csv",
            r / "paper_check.csv",
            self.figure(r / "gout/figures/crop_qc"),
        ]
        for study in STUDIES:
            tables, figures = self.tables(study), r / study / "figures"
            if self.repeated_cv(study):
                out.append(tables / "table1_repeats.csv")
            names = ("localisation", "calibration", "precision", "claim_checklist", "subgroups")
            for name in names:
                out.append(tables / f"{name}.csv")
            stems = [figures / n for n in ("roc", "localisation", "decision_curve", "failures")]
            for arm in self.arms(study):
                stems += [
                    figures / f"{kind}_{arm}" for kind in ("confusion", "gradcam", "calibration")
                ]
                stems += [figures / f"curves_{arm}_fold{fold}" for fold in self.folds(study)]
                out.append(self.arm_settings_file(study, arm))
                out.append(self.ood_reference(study, arm))
            out += [self.figure(stem) for stem in stems]
            if self.external_cohorts(study):
                out.append(self.figure(figures / "roc_external"))
            out += [tables / f"external_{c}.csv" for c in self.external_cohorts(study)]
        for arm in self.arms("gout"):
            out.append(self.tables("gout") / f"table3_patient_level_{arm}.csv")
            out.append(self.figure(r / f"gout/figures/threshold_{arm}"))
        for arm in self.arms("olt"):
            out.append(self.figure(r / f"olt/figures/montage_{arm}"))
        for study in STUDIES:
            out += [r / study / f"model_card_{arm}.md" for arm in self.arms(study)]
        return [str(p) for p in out]
