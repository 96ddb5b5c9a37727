"""Predictions as DICOM for the PACS: a Comprehensive SR per patient, Grad-CAM as Secondary Capture.

Written with highdicom (`hd.sr.ComprehensiveSR`, `hd.sc.SCImage`), never by hand:

- **SR** (one per patient, filed in the study of the patient's first scored image; images of
  other studies are listed as other evidence): a TID 1500 measurement report whose imaging
  measurements hold one TID 1501 group per image (tracking identifier = the image's `I-` key,
  source image = the source SOP Instance and frame, measurement = the ensemble probability,
  qualitative evaluation = the call against the image threshold) and one patient group (mean
  probability, share of images called positive, the number of images flagged outside the
  training distribution and, for gout, the patient threshold and the patient call); each image
  group also says whether the image lies outside the training distribution (`mskdx.deploy.ood`).
  Every group carries the algorithm identification (TID 4019): model name `mskdx <study>/<arm>`,
  version (mskdx version + a digest of the fold checkpoints), parameters (arm, folds,
  thresholds).
- **Secondary Capture** per Grad-CAM image (an option: the maps of `mskdx.deploy.maps` are
  what viewers can window and toggle): the network input (the crop, at the model's size)
  with the first fold model's map burned in as a jet colour overlay, RGB, in the source study,
  referencing its source image.

Both are new series in the source study whose description says "AI result, not for diagnosis
alone". UIDs are derived (UUID-derived `2.25.` UIDs from the source UIDs and the model version),
so a rerun of the same model on the same images writes the same instances and the send ledger
(`mskdx.deploy.send`) can skip what the PACS already holds. These objects hold PHI (the source
patient and study modules): they go only to `--dicom-out` / `private/`, never to results/.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mskdx.deploy.sources import Source
from mskdx.errors import ConfigError
from mskdx.io import atomic_path, write_table

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]

SERIES_DESCRIPTION = "AI result (mskdx {study}/{arm}), not for diagnosis alone"
SR_SERIES_NUMBER = 9901
SC_SERIES_NUMBER = 9902
MANUFACTURER = "mskdx"
#: private coding scheme of the concepts DICOM has no code for
SCHEME = "99MSKDX"
_UID_NAMESPACE = uuid.UUID("6f1c2a4e-9d3b-5e7a-8c1f-2b4d6e8f0a1c")
INDEX_COLUMNS = ["patient", "image_id", "kind", "file", "sop_class_uid", "sop_instance_uid"]


@dataclass(frozen=True)
class ModelInfo:
    """Who made the result: written into every object (algorithm identification)."""

    study: str
    arm: str
    version: str
    folds: tuple[int, ...]
    positive: str  # the class names of the study's label sheet, e.g. gout / control
    negative: str
    image_threshold: float
    patient_threshold: float | None = None
    parameters: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"mskdx {self.study}/{self.arm}"


def model_version(checkpoints: Sequence[PathLike]) -> str:
    """mskdx's version + 12 hex digits of SHA-256 over the fold checkpoints' bytes."""
    from mskdx import __version__

    digest = hashlib.sha256()
    for path in sorted(map(str, checkpoints)):
        digest.update(Path(path).read_bytes())
    return f"{__version__}+{digest.hexdigest()[:12]}"


def derived_uid(*parts: object) -> str:
    """A `2.25.` UID of a name-based UUID (v5) of `parts`: the same result, the same UID."""
    return f"2.25.{uuid.uuid5(_UID_NAMESPACE, '|'.join(map(str, parts))).int}"


def check_writable(folder: PathLike, what: str = "--dicom-out") -> Path:
    """Create `folder` and prove a file can be written there; a clear error naming it if not."""
    import tempfile

    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-"):
            pass
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot write there ({what}: {exc.strerror or exc}); expected a writable "
            "folder (outside results/: the DICOM results hold the source patient's identity)"
        ) from None
    return path


def write_dicom_results(
    out_dir: PathLike,
    sources: Mapping[str, Source],
    images: pd.DataFrame,
    patients: pd.DataFrame,
    model: ModelInfo,
    overlays: Mapping[str, np.ndarray] | None = None,
    maps: Sequence[tuple[str, str, str, object]] = (),
) -> pd.DataFrame:
    """Build every object first, then write each atomically; return (and write) the index.

    `images`/`patients` are predict's images.csv/patients.csv tables; `overlays` maps an
    image_id to an RGB uint8 (H, W, 3) Grad-CAM overlay. The index (`index.csv` in `out_dir`,
    private) lists each file with its SOP Instance UID. `maps` are the Grad-CAM Parametric
    Map / Segmentation objects of `mskdx.deploy.maps.build_maps` (patient, image_id, kind,
    dataset): written beside the SR, which lists them as evidence.
    """
    from pydicom import dcmread

    out = check_writable(out_dir)
    datasets = {
        image_id: dcmread(s.path, stop_before_pixels=True) for image_id, s in sources.items()
    }
    objects = []
    for patient, rows in images.sort_values("image_id").groupby("patient", sort=True):
        summary = patients.set_index("patient").loc[patient]
        derived = [m[3] for m in maps if m[0] == patient]
        sr = build_sr(
            rows, summary, [sources[i] for i in rows["image_id"]], datasets, model, derived
        )
        objects.append((patient, "", "sr", Path(str(patient), f"SR_{model.arm}.dcm"), sr))
    for k, (image_id, rgb) in enumerate(sorted((overlays or {}).items()), start=1):
        source = sources[image_id]
        sc = build_overlay(rgb, source, datasets[image_id], model, instance_number=k)
        name = Path(source.patient, f"SC_{model.arm}_{image_id}.dcm")
        objects.append((source.patient, image_id, "sc", name, sc))
    for patient, image_id, kind, ds in maps:
        objects.append(
            (
                patient,
                image_id,
                kind,
                Path(patient, f"{kind.upper()}_{model.arm}_{image_id}.dcm"),
                ds,
            )
        )
    rows = []
    for patient, image_id, kind, name, ds in objects:
        with atomic_path(out / name) as tmp:
            ds.save_as(tmp, enforce_file_format=True)
        rows.append(
            {
                "patient": patient,
                "image_id": image_id,
                "kind": kind,
                "file": str(name),
                "sop_class_uid": str(ds.SOPClassUID),
                "sop_instance_uid": str(ds.SOPInstanceUID),
            }
        )
    index = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    write_table(index, out / "index.csv")
    log.info(
        "DICOM results: %d SR, %d Secondary Capture, %d map objects written",
        int((index["kind"] == "sr").sum()),
        int((index["kind"] == "sc").sum()),
        len(maps),
    )
    return index


def _code(value: str, meaning: str):
    from pydicom.sr.coding import Code

    return Code(value, SCHEME, meaning)


def _algorithm(model: ModelInfo):
    import highdicom as hd

    params = [f"arm={model.arm}", f"folds={','.join(map(str, model.folds))}"]
    params.append(f"image_threshold={model.image_threshold:g}")
    if model.patient_threshold is not None:
        params.append(f"patient_threshold={model.patient_threshold:.4f}")
    params += [f"{k}={v}" for k, v in sorted(model.parameters.items())]
    return hd.sr.AlgorithmIdentification(
        name=model.name, version=model.version, parameters=params, manufacturer=MANUFACTURER
    )


def _call_code(positive: bool, model: ModelInfo):
    name = model.positive if positive else model.negative
    return _code(name.upper(), f"{name} (AI call)")


def _image_group(row, source: Source, ds, model: ModelInfo):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    prob = hd.sr.Measurement(
        name=_code("PROB", f"Probability of {model.positive}"),
        value=float(row["prob"]),
        unit=codes.UCUM.NoUnits,
    )
    evaluations = [
        hd.sr.QualitativeEvaluation(
            name=_code("IMAGECALL", "Image-level call"),
            value=_call_code(bool(row["call"]), model),
        )
    ]
    if "ood" in row and pd.notna(row["ood"]):
        evaluations.append(_ood_evaluation(row))
    frames = [source.frame + 1] if source.number_of_frames > 1 else None
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=derived_uid(model.version, "tracking", source.sop_instance_uid, row["image_id"]),
            identifier=str(row["image_id"]),
        ),
        algorithm_id=_algorithm(model),
        measurements=[prob],
        qualitative_evaluations=evaluations,
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(ds, frames)],
    )


#: SNOMED CT yes / no, the answer of the OOD qualitative evaluation
_YES = ("373066001", "SCT", "Yes")
_NO = ("373067005", "SCT", "No")


def _ood_evaluation(row):
    """Whether the image lies outside what the model was trained on (`mskdx.deploy.ood`)."""
    import highdicom as hd

    value = hd.sr.CodedConcept(*(_YES if int(row["ood"]) else _NO))
    return hd.sr.QualitativeEvaluation(
        name=_code("OOD", "Outside the training distribution"), value=value
    )


def _patient_group(patient: str, summary, model: ModelInfo, study_uid: str):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    def measure(value: str, meaning: str, number: float):
        return hd.sr.Measurement(
            name=_code(value, meaning), value=float(number), unit=codes.UCUM.NoUnits
        )

    measurements = [
        measure(
            "MEANPROB",
            f"Mean probability of {model.positive} over the images",
            summary["mean_prob"],
        ),
        measure("SHARE", "Share of images called positive", summary["share"]),
    ]
    if "ood_images" in summary.index and pd.notna(summary.get("ood_images")):
        measurements.append(
            measure(
                "OODCOUNT",
                "Number of images outside the training distribution",
                summary["ood_images"],
            )
        )
    evaluations = []
    if "call" in summary.index and pd.notna(summary.get("call")):
        measurements.append(
            measure("PTHRESH", "Patient threshold on the share", summary["threshold"])
        )
        evaluations.append(
            hd.sr.QualitativeEvaluation(
                name=_code("PATIENTCALL", "Patient-level call"),
                value=_call_code(bool(summary["call"]), model),
            )
        )
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=derived_uid(model.version, "patient", study_uid, patient), identifier=patient
        ),
        algorithm_id=_algorithm(model),
        measurements=measurements,
        qualitative_evaluations=evaluations or None,
    )


def build_sr(
    rows: pd.DataFrame, summary, sources: list[Source], datasets, model: ModelInfo, derived=()
):
    """The Comprehensive SR of one patient: one group per image and one for the patient.

    `derived` (the patient's Grad-CAM map objects) join the evidence the SR references.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    first = sources[0]
    evidence = [datasets[s.image_id] for s in sources] + list(derived)
    groups = [
        _image_group(row, s, datasets[s.image_id], model)
        for row, s in zip(rows.to_dict("records"), sources, strict=True)
    ]
    groups.append(
        _patient_group(str(rows["patient"].iloc[0]), summary, model, first.study_instance_uid)
    )
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=derived_uid(model.version, "device"),
        name=model.name,
        manufacturer_name=MANUFACTURER,
        model_name=model.version,
    )
    context = hd.sr.ObservationContext(
        observer_device_context=hd.sr.ObserverContext(
            observer_type=codes.DCM.Device, observer_identifying_attributes=device
        )
    )
    procedure = (
        hd.sr.CodedConcept("16310003", "SCT", "Ultrasonography")
        if model.study == "gout"
        else hd.sr.CodedConcept("113091000", "SCT", "Magnetic resonance imaging")
    )
    report = hd.sr.MeasurementReport(
        observation_context=context, procedure_reported=procedure, imaging_measurements=groups
    )
    series = derived_uid(model.version, "sr-series", first.study_instance_uid, model.arm)
    sr = hd.sr.ComprehensiveSR(
        evidence=evidence,
        content=report[0],
        series_instance_uid=series,
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=derived_uid(series, str(rows["patient"].iloc[0])),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
        is_final=False,
        is_verified=False,
        series_description=SERIES_DESCRIPTION.format(study=model.study, arm=model.arm),
    )
    return sr


def overlay_rgb(image: np.ndarray, cam: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """Grey uint8 (H, W) with a CAM in [0, 1] burned in as jet colours: RGB uint8 (H, W, 3)."""
    from matplotlib import colormaps

    grey = np.repeat(np.asarray(image, np.float64)[..., None] / 255.0, 3, axis=2)
    heat = colormaps["jet"](np.clip(cam, 0.0, 1.0))[..., :3]
    weight = alpha * np.clip(cam, 0.0, 1.0)[..., None]
    return np.round(255.0 * ((1.0 - weight) * grey + weight * heat)).astype(np.uint8)


def _laterality(ds) -> str | None:
    """The source's laterality (R/L) for the derived series: the foot of a paired structure."""
    for keyword in ("Laterality", "ImageLaterality"):
        value = str(ds.get(keyword, "") or "").strip()
        if value in ("R", "L"):
            return value
    return None


def build_overlay(rgb: np.ndarray, source: Source, ds, model: ModelInfo, *, instance_number: int):
    """A Secondary Capture of a Grad-CAM overlay in the source study, referencing its source."""
    import highdicom as hd
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DicomSequence

    series = derived_uid(model.version, "sc-series", source.study_instance_uid, model.arm)
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=ds,
        pixel_array=np.ascontiguousarray(rgb, dtype=np.uint8),
        photometric_interpretation="RGB",
        bits_allocated=8,
        coordinate_system="PATIENT",
        series_instance_uid=series,
        series_number=SC_SERIES_NUMBER,
        sop_instance_uid=derived_uid(series, source.image_id),
        instance_number=instance_number,
        manufacturer=MANUFACTURER,
        # highdicom wants an orientation; the crop has none we know, so the Type 2 attribute
        # is emptied below unless the source has one
        patient_orientation=("A", "F"),
        laterality=_laterality(ds),
        transfer_syntax_uid="1.2.840.10008.1.2.1",
    )
    sc.PatientOrientation = ds.get("PatientOrientation") or None
    sc.SeriesDescription = SERIES_DESCRIPTION.format(study=model.study, arm=model.arm)
    sc.ImageType = ["DERIVED", "SECONDARY"]
    sc.BurnedInAnnotation = "NO"
    sc.DerivationDescription = (
        f"Grad-CAM of {model.name} {model.version} (first fold model) over the network input "
        "(the preprocessed crop), jet colour overlay"
    )
    ref = Dataset()
    ref.ReferencedSOPClassUID = source.sop_class_uid
    ref.ReferencedSOPInstanceUID = source.sop_instance_uid
    if source.number_of_frames > 1:
        ref.ReferencedFrameNumber = source.frame + 1
    sc.SourceImageSequence = DicomSequence([ref])
    return sc
