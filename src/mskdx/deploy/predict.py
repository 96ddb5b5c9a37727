"""Diagnose new patients with a trained arm: `mskdx predict` (and rule `predict_folder`).

A folder of DICOM studies without a label sheet goes through the training data's own path:
`mskdx.ingest.extract.extract_study` with the study's extraction spec from the same config (walk,
refusal rules, de-identification, region, crop, resize), then `mskdx.evaluate.external.score_cohort`
scores every image with each fold model of the arm (`mskdx.learn.loop.predict`, the checkpoint's
normalization and batch size). Outputs carry pseudonymous keys only:

- `images.csv`: per image and fold model its probability, and the ensemble (mean) with its call,
  and, with the arm's ood.npz, the out-of-distribution check (`mskdx.deploy.ood`: `ood`,
  `ood_reasons`, `ood_distance`, `ood_sd`);
- `patients.csv`: per patient the number of images, the mean probability, the number of images
  flagged out of distribution (`ood_images`) and, for gout, the share of images called abnormal
  against the development threshold (the mean of the thresholds each fold searched on its
  training patients, Table III) and the patient call;
- `refused.csv`: files that were not used, with the reason;
- `gradcam.png` (optional): Grad-CAM overlays of the first fold model on a sample of images.

With `dicom_out` the same results go out as DICOM for the PACS (`mskdx.deploy.dicom_out`: a
Comprehensive SR per patient; `mskdx.deploy.maps`: the Grad-CAM of every scored image as a
Parametric Map or Segmentation; Secondary Capture overlays on request), referencing the source
instances that `mskdx.deploy.sources` finds again, and with `dicom_send` to a PACS
(`mskdx.deploy.stow.send_to`: STOW-RS or C-STORE). Those objects hold PHI: `dicom_out` must lie
outside results/. The study may come from a PACS (`from_pacs`, `mskdx.deploy.pacs`).

A folder whose images the model was not trained for is refused: no file of the study's
modalities, or images whose preprocessed size differs from the model's input.

The rule and the command run the same `predict_arm`: the trained arm's own settings
(`results/<study>/models/<arm>/arm.json`, `mskdx.learn.arm_settings`) give the
extraction, the model and the thresholds, so no config is needed; paths come from
`mskdx.config.layout`, among them the one home of the map of pseudonyms to patients and files
(`private/<study>/predict/<arm>/file_map.csv`, PHI).
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from mskdx.deploy import dicom_out as dcm_out
from mskdx.deploy import ood, send, stow
from mskdx.deploy.sources import find_sources
from mskdx.deploy.traceability import write_private_map
from mskdx.errors import ConfigError, DicomError
from mskdx.evaluate import external
from mskdx.ingest import deid
from mskdx.io import read_table, write_table

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]


def predict_folder(
    dicom_dir: PathLike,
    out_dir: PathLike,
    *,
    spec,
    arm: str,
    arm_spec: Mapping,
    checkpoints: Mapping[int, PathLike],
    curves: PathLike | None,
    image_threshold: float,
    key_env: str,
    private_map: PathLike | None = None,
    gradcam: int = 0,
    threads: int = 1,
    dicom_out: PathLike | None = None,
    dicom_send: str | None = None,
    ood_reference: PathLike | None = None,
    dicom_maps: tuple[str, ...] = ("pm",),
    dicom_sc: bool = False,
    origin: str = "",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every image of `dicom_dir` with an arm's fold models; write the tables to `out_dir`.

    `private_map` (outside results/, it holds PHI) maps every scored patient and image, and
    each refused file, to its identifiers and real path (`mskdx.deploy.traceability`).
    `ood_reference` (the arm's ood.npz) flags images outside the training distribution
    (`mskdx.deploy.ood`: columns ood, ood_reasons, ood_distance, ood_sd; a count per patient).
    `dicom_out` (a folder outside results/) receives the DICOM results: the SR per patient and
    the Grad-CAM map of every scored image (`dicom_maps`: "pm" = Parametric Map where the
    source has a frame of reference, else Segmentation; "seg" = Segmentation), with
    `dicom_sc` also the Secondary Capture overlays of the `gradcam` images; `dicom_send` (a
    DICOMweb URL: STOW-RS, or AET@host:port: C-STORE) the PACS they are sent to.

    `spec` is the study's extraction spec (`mskdx.ingest.extract.StudySpec`), `checkpoints` the
    fold models ({fold: checkpoint_final.pt}), `curves` the arm's development threshold curves
    (gout; None for OLT, diagnosed per image). The tables are written once everything has run:
    an error leaves no table of this run in `out_dir`.
    """
    from mskdx.ingest.extract import extract_study

    if not checkpoints:
        raise ConfigError(f"{spec.study}/{arm}: no fold model given")
    check_send_target(dicom_send)
    if dicom_send and dicom_out is None:
        raise ConfigError("--dicom-send needs --dicom-out: the objects are sent from there")
    out = dcm_out.check_writable(out_dir, "--out")
    if dicom_out is not None:
        dcm_out.check_writable(dicom_out)
    reference = ood.load_reference(ood_reference) if ood_reference else None
    threshold = external.development_threshold(curves) if curves else None
    with tempfile.TemporaryDirectory(dir=out, prefix=".cache-") as tmp:
        cache = {
            name: Path(tmp, f"{name}.{ext}")
            for name, ext in (("images", "npy"), ("masks", "npy"), ("manifest", "csv"))
        }
        log.info("1/3 extracting the DICOM folder with the %s study's preprocessing", spec.study)
        try:
            extract_study(
                dicom_dir,
                None,
                spec=spec,
                masks_path=None,
                on_error="skip",
                key_env=key_env,
                private_map=private_map,
                refused=Path(tmp, "refused.csv"),
                threads=threads,
                **cache,
            )
        except DicomError as exc:
            raise DicomError(
                f"{exc}\nThe {spec.study} models were trained on {'/'.join(spec.modalities)} "
                "images; nothing in this folder can be scored"
            ) from exc
        log.info("2/3 scoring with %d fold models of %s/%s", len(checkpoints), spec.study, arm)
        per_fold, ensemble = external.score_cohort(
            checkpoints,
            cache["images"],
            cache["manifest"],
            study=spec.study,
            arm=arm,
            sequence=arm_spec.get("sequence"),
            threads=threads,
        )
        manifest = read_table(cache["manifest"], "manifest")
        manifest = manifest[manifest["image_id"].isin(ensemble["image_id"])]
        flags = _ood_flags(reference, checkpoints, cache, manifest, per_fold, ensemble)
        cams = {}
        if gradcam or (dicom_out is not None and dicom_maps):
            log.info("3/3 Grad-CAM")
            first = {min(checkpoints): checkpoints[min(checkpoints)]}
            every = ensemble["image_id"] if dicom_out is not None and dicom_maps else []
            cams = _gradcam(first, cache, ensemble, gradcam, out / "gradcam.png", threads, every)
        sources = None
        if dicom_out is not None or private_map is not None:
            sources = find_sources(dicom_dir, manifest, spec.modalities, deid.get_key(key_env))
        refused = read_table(Path(tmp, "refused.csv"))
    images = _image_table(per_fold, ensemble, image_threshold, flags)
    patients = _patient_table(images, image_threshold, threshold)
    write_table(refused, out / "refused.csv")
    write_table(images, out / "images.csv")
    write_table(patients, out / "patients.csv")
    if private_map is not None:
        write_private_map(private_map, sources, origin)
    if dicom_out is not None:
        model = _model_info(spec, arm, checkpoints, image_threshold, threshold)
        _write_dicom(dicom_out, sources, images, patients, model, cams, manifest, dicom_maps,
                     dicom_sc, gradcam)  # fmt: skip
        if dicom_send:
            stow.send_to(dicom_out, dicom_send)
    log.info(
        "%s/%s: %d images of %d patients scored (%s flagged out of distribution), %d files "
        "refused; tables in %s",
        spec.study,
        arm,
        len(ensemble),
        len(patients),
        int(images["ood"].sum()) if "ood" in images else "none",
        len(refused),
        out,
    )
    return images, patients


def check_send_target(target: str | None) -> None:
    """`--dicom-send`: a DICOMweb URL or AET@host:port, else a ConfigError saying both forms."""
    if target and not stow.is_dicomweb(target):
        send.parse_peer(target)


def _ood_flags(reference, checkpoints, cache, manifest, per_fold, ensemble):
    """The OOD columns of the scored images, or None without a reference."""
    if reference is None:
        return None
    rows = manifest.set_index("image_id").loc[ensemble["image_id"]]
    pixels = np.asarray(np.load(cache["images"], mmap_mode="r")[rows["index"].to_numpy(np.int64)])
    probs = per_fold.pivot(index="image_id", columns="fold", values="prob").loc[
        ensemble["image_id"]
    ]
    flags = rows["region_flags"].tolist() if "region_flags" in rows else None
    return ood.check_images(
        reference, checkpoints, pixels, ensemble["image_id"], probs.to_numpy(), flags
    )


def _write_dicom(dicom_out, sources, images, patients, model, cams, manifest, kinds, sc, n):
    """The SR, the Grad-CAM maps of every scored image and (`sc`) the Secondary Captures of
    the first `n` images, written to `dicom_out`."""
    from pydicom import dcmread

    from mskdx.deploy import maps

    boxes = {row["image_id"]: maps.crop_box(row) for row in manifest.to_dict("records")}
    objects = []
    if kinds:
        datasets = {i: dcmread(s.path, stop_before_pixels=True) for i, s in sources.items()}
        objects = maps.build_maps(
            {i: cams[i][1] for i in images["image_id"]}, sources, datasets, boxes, model,
            kinds=tuple(kinds),
        )  # fmt: skip
    overlays = {}
    if sc:
        shown = sorted(images["image_id"])[:n]
        overlays = {i: dcm_out.overlay_rgb(*cams[i]) for i in shown if i in cams}
    dcm_out.write_dicom_results(dicom_out, sources, images, patients, model, overlays, objects)


def _model_info(spec, arm: str, checkpoints, image_threshold: float, threshold: float | None):
    """What the DICOM results say about the model that made them."""
    return dcm_out.ModelInfo(
        study=spec.study,
        arm=arm,
        version=dcm_out.model_version(list(checkpoints.values())),
        folds=tuple(sorted(checkpoints)),
        positive=str(spec.labels["positive"]),
        negative=str(spec.labels["negative"]),
        image_threshold=float(image_threshold),
        patient_threshold=threshold,
    )


def predict_arm(
    dicom_dir: PathLike | None,
    out_dir: PathLike,
    *,
    study: str,
    arm: str,
    results: PathLike = "results",
    private: PathLike = "private",
    config: Mapping | None = None,
    gradcam: int = 0,
    threads: int | None = None,
    dicom_out: PathLike | None = None,
    dicom_send: str | None = None,
    dicom_maps: tuple[str, ...] = ("pm",),
    dicom_sc: bool = False,
    from_pacs: str | None = None,
    study_uid: str | None = None,
    accession: str | None = None,
    keep_retrieved: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score a folder (or, `from_pacs`, one study of a PACS) with a trained arm as it was
    trained: `mskdx predict` and rule predict_folder.

    The arm's recorded settings (arm.json) give the extraction, network, input size and
    thresholds; its ood.npz beside them the out-of-distribution check (absent: a warning, no
    check). A `config` (the command's --configfile) that disagrees with them is not used for
    the arm: each difference is logged, naming both values. `from_pacs` (a DICOMweb URL or
    [dimse://]AET@host:port) with `study_uid` or `accession`: the study is retrieved into a
    private temporary folder under `Layout.predict_retrieved` (`mskdx.deploy.pacs`), scored
    exactly as a folder, and removed afterwards unless `keep_retrieved`. Everything a user can
    get wrong (no trained arm, a DICOM output folder inside results/, a PACS address) is
    checked before any work.
    """
    from mskdx.config.layout import Layout
    from mskdx.deploy import pacs
    from mskdx.ingest.extract import StudySpec

    if (dicom_dir is None) == (from_pacs is None):
        raise ConfigError("predict needs exactly one of --dicom DIR and --from-pacs URL")
    if from_pacs is not None:
        pacs.parse_pacs(from_pacs)
        pacs.check_query(study_uid, accession)
    elif study_uid or accession or keep_retrieved:
        raise ConfigError("--study-uid, --accession and --keep-retrieved go with --from-pacs")
    if dicom_out is not None:
        refuse_under_results(dicom_out, results)
    check_send_target(dicom_send)
    layout = Layout(config or {}, results=results, private=private)
    settings, checkpoints = trained_arm(layout, study, arm, config)
    curves = None
    if study == "gout":
        curves = layout.threshold_curves(study, arm)
        if not curves.is_file():
            raise ConfigError(f"{curves}: missing; the patient threshold comes from training")
    reference = layout.ood_reference(study, arm)
    if not reference.is_file():
        log.warning(
            "%s: missing; images are NOT checked for inputs outside the training distribution "
            "(make it with `snakemake %s` and the run's configs)",
            reference,
            reference,
        )
        reference = None
    run = functools.partial(
        predict_folder,
        out_dir=out_dir,
        spec=StudySpec(**settings["extract"]),
        arm=arm,
        arm_spec=settings["model"],
        checkpoints=checkpoints,
        curves=curves,
        image_threshold=float(settings["image_threshold"]),
        key_env=settings["key_env"],
        private_map=layout.predict_private_map(study, arm),
        gradcam=gradcam,
        threads=int(threads or settings["threads"]),
        dicom_out=dicom_out,
        dicom_send=dicom_send,
        ood_reference=reference,
        dicom_maps=tuple(dicom_maps),
        dicom_sc=dicom_sc,
    )
    if from_pacs is None:
        return run(dicom_dir)
    kept = " (kept)" if keep_retrieved else " (removed after the run)"
    with pacs.retrieve_study(
        from_pacs,
        layout.predict_retrieved(study, arm),
        study_uid=study_uid,
        accession=accession,
        keep=keep_retrieved,
    ) as folder:
        return run(folder, origin=f"; retrieved from {from_pacs}{kept}")


def trained_arm(layout, study: str, arm: str, config: Mapping | None = None):
    """(arm.json's settings, {fold: checkpoint_final.pt}) of a trained arm, checked: an arm the
    given config does not have, an arm never trained (the trained ones are listed) or a missing
    fold model is a ConfigError naming it. A disagreeing `config` is reported (warnings)."""
    from mskdx.config.layout import Layout
    from mskdx.learn.arm_settings import read_arm_settings

    if config is not None:
        Layout(config).check_arm_name(study, arm)
    path = layout.arm_settings_file(study, arm)
    if not path.is_file():
        trained = sorted(p.parent.name for p in path.parent.parent.glob("*/arm.json"))
        raise ConfigError(
            f"{study}/{arm}: not a trained arm ({path} is missing); trained arms of {study} in "
            f"{layout.results}: {trained or 'none'}. Run the workflow for this study first"
        )
    settings = read_arm_settings(path)
    if config is not None:
        report_config_differences(settings, Layout(config).arm_settings(study, arm))
    checkpoints = {fold: layout.checkpoint(study, arm, fold) for fold in settings["folds"]}
    missing = [str(p) for p in checkpoints.values() if not p.is_file()]
    if missing:
        raise ConfigError(
            f"{study}/{arm}: fold models missing ({', '.join(missing)}); run the workflow for "
            "this study first"
        )
    return settings, checkpoints


def report_config_differences(recorded: Mapping, given: Mapping, prefix: str = "") -> list[str]:
    """Each setting where a given config disagrees with the arm's record (the record is what
    runs), logged as a warning naming both values; returns the messages."""
    messages = []
    for key in sorted(set(recorded) | set(given)):
        if key in ("format", "key_env"):
            continue
        mine, theirs = recorded.get(key), given.get(key)
        if isinstance(mine, Mapping) and isinstance(theirs, Mapping):
            messages += report_config_differences(mine, theirs, f"{prefix}{key}.")
        elif mine != theirs:
            messages.append(
                f"{prefix}{key}: the arm was trained with {mine!r}, the given config says "
                f"{theirs!r}; using the arm's own setting (arm.json)"
            )
    if not prefix:
        for message in messages:
            log.warning("%s", message)
    return messages


def refuse_under_results(dicom_out: PathLike, results: PathLike) -> None:
    """The DICOM results hold PHI: never inside the workflow's results folder."""
    target, banned = Path(dicom_out).resolve(), Path(results).resolve()
    if target == banned or banned in target.parents:
        raise ConfigError(
            f"--dicom-out {dicom_out}: inside the results folder {results}; the DICOM results "
            "carry the source patient's identity, so they go outside it (e.g. "
            "private/<study>/predict/<arm>/dicom)"
        )


def _image_table(per_fold, ensemble, image_threshold: float, flags=None) -> pd.DataFrame:
    wide = per_fold.pivot(index=["patient", "image_id"], columns="fold", values="prob")
    wide.columns = [f"prob_fold{f}" for f in wide.columns]
    table = ensemble.set_index(["patient", "image_id"])[["study", "arm", "prob"]].join(wide)
    table["call"] = (table["prob"] > image_threshold).astype(int)
    table = table.reset_index()
    if flags is not None:
        columns = ["image_id", "ood", "ood_reasons", "ood_distance", "ood_sd"]
        table = table.merge(flags[columns], on="image_id", how="left", validate="1:1")
    return table


def _patient_table(images: pd.DataFrame, image_threshold: float, threshold: float | None):
    grouped = images.assign(abnormal=images["prob"] > image_threshold).groupby("patient", sort=True)
    table = grouped.agg(
        images=("image_id", "size"), mean_prob=("prob", "mean"), share=("abnormal", "mean")
    )
    if "ood" in images:
        table["ood_images"] = grouped["ood"].sum().astype(int)
    if threshold is not None:
        table["threshold"] = round(threshold, 4)
        table["call"] = (table["share"] > threshold).astype(int)
    return table.reset_index()


def _gradcam(checkpoint, cache, ensemble, n: int, figure: Path, threads: int, every=()) -> dict:
    """The Grad-CAM figure of the first `n` images by one fold model; {image_id: (image, cam)}
    of those and of `every` image asked for (the DICOM maps), computed in batches."""
    from mskdx.evaluate.figures.gradcam import plot_gradcam_grid
    from mskdx.learn.inference import fold_models

    manifest = read_table(cache["manifest"], "manifest").set_index("image_id")
    pick = ensemble.sort_values("image_id").head(n)
    wanted = sorted(set(pick["image_id"]) | set(every))
    bank = np.load(cache["images"], mmap_mode="r")
    (model,) = fold_models(checkpoint, "cpu", threads)
    out = {}
    for start in range(0, len(wanted), 32):
        ids = wanted[start : start + 32]
        images = np.asarray(bank[manifest.loc[ids, "index"].to_numpy(np.int64)])
        for image_id, image, cam in zip(ids, images, model.cams(images), strict=True):
            out[image_id] = (image, cam)
    if n:
        ids = list(pick["image_id"])
        captions = [f"{i}\np={p:.2f}" for i, p in zip(ids, pick["prob"], strict=True)]
        plot_gradcam_grid(
            np.stack([out[i][0] for i in ids]),
            np.stack([out[i][1] for i in ids]),
            [None] * len(ids),
            captions,
            [figure],
            {"dpi": 100},
        )
    return out


def predict_step(dicom_dir, *, images: PathLike, study: str, arm: str, **kwargs) -> None:
    """Rule predict_folder: the outputs go to the folder of `images` (the layout's predict_dir)."""
    predict_arm(dicom_dir, Path(images).parent, study=study, arm=arm, **kwargs)
