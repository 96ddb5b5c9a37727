"""Grad-CAM maps as DICOM a viewer can window and toggle: Parametric Map and Segmentation.

Made with highdicom (`hd.pm.ParametricMap`, `hd.seg.Segmentation`), one object per scored
image, each a new series in the source study that references its source instance (and frame):

- **Parametric Map**: the map as float32 in the source frame's geometry, with a real-world value
  mapping 0..1 "Grad-CAM activation" (no unit);
- **Segmentation** (binary): the region where the activation is at least `threshold`.

**Geometry.** The network sees a crop, not the frame: for ultrasound the manifest records the
crop box in the source frame's pixels (`crop_x0/y0/x1/y1`, the box `mskdx.ingest.preprocess`
cut and resized), for MRI the whole frame was resized (no box). `place_map` resamples the map
(bilinear, `skimage.transform.resize`) onto the box and writes 0 outside it (not analysed), so
the object overlays its source pixel for pixel; the derivation description says so. The geometry
is always recoverable from the manifest; there is no "derived image of the crop" fallback.

**Multi-frame sources without a frame of reference** (ultrasound cine, US Multi-frame / SC):
highdicom only derives from one frame of such sources, so the object is built from a
single-frame view of the header and its source references then name the frame
(ReferencedFrameNumber), as `dicom_out.build_overlay` does for Secondary Capture.

UIDs are derived from the model version, the kind and the source SOP Instance UID (and frame)
with `dicom_out.derived_uid`: a rerun writes the same instances and the send ledgers skip them.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping

import numpy as np

from mskdx.deploy.dicom_out import MANUFACTURER, SERIES_DESCRIPTION, ModelInfo, derived_uid
from mskdx.deploy.sources import Source
from mskdx.errors import ConfigError

log = logging.getLogger(__name__)

PM_SERIES_NUMBER = 9903
SEG_SERIES_NUMBER = 9904
KINDS = ("pm", "seg")
PM_CLASS = "1.2.840.10008.5.1.4.1.1.30"
SEG_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
#: Type 2 patient/study attributes highdicom copies from the source (empty when absent)
_TYPE2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
)


#: the single-frame class a one-frame view of a multi-frame capture is derived as
_SINGLE_FRAME = {
    "1.2.840.10008.5.1.4.1.1.3.1": "1.2.840.10008.5.1.4.1.1.6.1",  # US Multi-frame -> US
    "1.2.840.10008.5.1.4.1.1.7.2": "1.2.840.10008.5.1.4.1.1.7",  # Multi-frame SC -> SC
    "1.2.840.10008.5.1.4.1.1.7.3": "1.2.840.10008.5.1.4.1.1.7",
    "1.2.840.10008.5.1.4.1.1.7.4": "1.2.840.10008.5.1.4.1.1.7",
    "1.2.840.10008.5.1.4.1.1.4.1": "1.2.840.10008.5.1.4.1.1.4",  # Enhanced MR -> MR
    "1.2.840.10008.5.1.4.1.1.2.1": "1.2.840.10008.5.1.4.1.1.2",  # Enhanced CT -> CT
}

#: functional-group macros whose attributes a one-frame view lifts to the top level
_FRAME_MACROS = ("PlanePositionSequence", "PlaneOrientationSequence", "PixelMeasuresSequence")


def has_frame_of_reference(ds) -> bool:
    """A Parametric Map needs a frame of reference in patient coordinates (its IOD's Frame of
    Reference module and plane position / orientation are mandatory): a FrameOfReferenceUID
    with ImagePositionPatient, ImageOrientationPatient and PixelSpacing (MR, CT). Screen
    captures (US, SC) have none, even where they carry a FrameOfReferenceUID (ultrasound
    regions are not patient coordinates)."""
    return bool(str(ds.get("FrameOfReferenceUID", "") or "").strip()) and all(
        ds.get(k) for k in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")
    )


def crop_box(row: Mapping) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of a manifest row's crop in source pixels; None where the whole frame
    was resized (MRI, or a row without a box)."""
    keys = ("crop_x0", "crop_y0", "crop_x1", "crop_y1")
    values = [row.get(k) for k in keys]
    if any(v is None or v != v for v in values):  # missing or NaN/NA
        return None
    return tuple(int(v) for v in values)  # type: ignore[return-value]


def place_map(
    cam: np.ndarray, frame_shape: tuple[int, int], box: tuple[int, int, int, int] | None
) -> np.ndarray:
    """The (h, w) map of the network input resampled onto `box` of a (rows, cols) frame.

    Outside the box the map is 0 (not analysed). `box` None: the map covers the whole frame.
    """
    from skimage.transform import resize

    rows, cols = (int(n) for n in frame_shape)
    x0, y0, x1, y1 = box if box is not None else (0, 0, cols, rows)
    if not (0 <= x0 < x1 <= cols and 0 <= y0 < y1 <= rows):
        raise ConfigError(
            f"crop box {(x0, y0, x1, y1)} is not inside the {cols}x{rows} source frame; the "
            "manifest does not belong to this source"
        )
    cam = np.clip(np.asarray(cam, np.float32), 0.0, 1.0)
    out = np.zeros((rows, cols), np.float32)
    out[y0:y1, x0:x1] = resize(cam, (y1 - y0, x1 - x0), order=1, preserve_range=True)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _source_view(ds, source: Source):
    """The header highdicom derives from: Type 2 attributes present, one frame."""
    view = copy.deepcopy(ds)
    for keyword in _TYPE2:
        if keyword not in view:
            setattr(view, keyword, None)
    for keyword in ("Laterality", "PatientOrientation"):
        if keyword not in view:
            setattr(view, keyword, None)
    if source.number_of_frames > 1:
        view.SOPClassUID = _SINGLE_FRAME.get(str(view.SOPClassUID), view.SOPClassUID)
        _lift_frame_geometry(view, source.frame)
        for keyword in (
            "NumberOfFrames",
            "FrameIncrementPointer",
            "FrameTime",
            "SharedFunctionalGroupsSequence",
            "PerFrameFunctionalGroupsSequence",
        ):
            if keyword in view:
                delattr(view, keyword)
    return view


def _lift_frame_geometry(view, frame: int) -> None:
    """Give a one-frame view of an enhanced multi-frame image (Enhanced MR/CT) the plane
    position, orientation and pixel measures of `frame` at the top level, as a single-frame
    image carries them (the per-frame functional group overrides the shared one)."""
    groups = []
    per_frame = view.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and frame < len(per_frame):
        groups.append(per_frame[frame])
    shared = view.get("SharedFunctionalGroupsSequence")
    if shared:
        groups.append(shared[0])
    for macro in _FRAME_MACROS:
        item = next((g[macro][0] for g in groups if g.get(macro)), None)
        if item is None:
            continue
        for elem in item:
            if elem.keyword and elem.keyword not in view:
                view[elem.tag] = copy.deepcopy(elem)


def _name_the_frame(obj, source: Source) -> None:
    """Every reference to a multi-frame source names the frame the map was made from."""
    if source.number_of_frames <= 1:
        return

    def walk(dataset) -> None:
        for elem in dataset:
            if elem.VR != "SQ":
                continue
            for item in elem.value:
                if item.get("ReferencedSOPInstanceUID") == source.sop_instance_uid:
                    item.ReferencedSOPClassUID = source.sop_class_uid
                    if "ReferencedSOPSequence" not in elem.keyword:
                        item.ReferencedFrameNumber = source.frame + 1
                walk(item)

    walk(obj)


def _describe(obj, ds, model: ModelInfo, what: str, box) -> None:
    # Type 2C attributes highdicom leaves out (as dciodvfy evaluates their conditions: the
    # Parametric Map's General Series wants Laterality, the Segmentation's General Image a
    # PatientOrientation): the source's value, else empty (unknown)
    wanted = {PM_CLASS: ("Laterality",), SEG_CLASS: ("PatientOrientation",)}
    for keyword in wanted.get(str(obj.SOPClassUID), ()):
        if keyword not in obj:
            setattr(obj, keyword, ds.get(keyword) or None)
    where = "the crop box recorded at extraction" if box is not None else "the whole frame"
    obj.SeriesDescription = SERIES_DESCRIPTION.format(study=model.study, arm=model.arm)
    obj.DerivationDescription = (
        f"{what} of {model.name} {model.version} (first fold model), resampled from the network "
        f"input onto {where}; 0 outside it (not analysed)"
    )[:1024]


def _parametric_map_class():
    """highdicom's ParametricMap, repaired for sources without a frame of reference.

    highdicom 0.28 indexes such maps by FrameLabel but writes neither the label nor the index
    value, then refuses its own object ("Unexpected mismatch between dimension index values");
    the subclass fills both in (one frame: label GRADCAM, index 1) before that check.
    """
    import highdicom as hd

    class ParametricMap(hd.pm.ParametricMap):
        def _build_luts(self) -> None:
            pointers = [int(d.DimensionIndexPointer) for d in self.DimensionIndexSequence]
            if pointers == [0x00209453]:  # FrameLabel
                for item in self.PerFrameFunctionalGroupsSequence:
                    content = item.FrameContentSequence[0]
                    if not content.get("DimensionIndexValues"):
                        content.FrameLabel = "GRADCAM"
                        content.DimensionIndexValues = [1]
            super()._build_luts()

    return ParametricMap


def build_parametric_map(
    cam: np.ndarray, source: Source, ds, model: ModelInfo, *, box, instance_number: int
):
    """The float32 Parametric Map of one image's Grad-CAM in its source frame's geometry."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    pixels = place_map(cam, (int(ds.Rows), int(ds.Columns)), box)
    mapping = hd.pm.RealWorldValueMapping(
        lut_label="GRADCAM",
        lut_explanation="Grad-CAM activation",
        unit=codes.UCUM.NoUnits,
        value_range=(0.0, 1.0),
        slope=1.0,
        intercept=0.0,
    )
    series = derived_uid(model.version, "pm-series", source.study_instance_uid, model.arm)
    pm = _parametric_map_class()(
        source_images=[_source_view(ds, source)],
        pixel_array=pixels[None],
        series_instance_uid=series,
        series_number=PM_SERIES_NUMBER,
        sop_instance_uid=derived_uid(series, source.sop_instance_uid, source.frame),
        instance_number=instance_number,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=model.name,
        software_versions=model.version,
        device_serial_number=model.version,
        contains_recognizable_visual_features=False,
        real_world_value_mappings=[mapping],
        voi_lut_transformations=[
            hd.VOILUTTransformation(
                window_center=0.5, window_width=1.0, window_explanation="Grad-CAM 0..1"
            )
        ],
        content_label="GRADCAM",
        content_description=f"Grad-CAM of {model.name}",
        content_qualification=hd.ContentQualificationValues.RESEARCH,
        image_flavor=hd.pm.ImageFlavorValues.VOLUME,
        derived_pixel_contrast=hd.pm.DerivedPixelContrastValues.QUANTITY,
    )
    _name_the_frame(pm, source)
    _describe(pm, ds, model, "Grad-CAM", box)
    return pm


def build_segmentation(
    cam: np.ndarray,
    source: Source,
    ds,
    model: ModelInfo,
    *,
    box,
    instance_number: int,
    threshold: float = 0.5,
):
    """The binary Segmentation of the region where one image's Grad-CAM is >= `threshold`."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    if not 0.0 < threshold < 1.0:
        raise ConfigError(f"Grad-CAM segmentation threshold {threshold}: expected in (0, 1)")
    mask = (place_map(cam, (int(ds.Rows), int(ds.Columns)), box) >= threshold).astype(np.uint8)
    algorithm = hd.AlgorithmIdentificationSequence(
        name=model.name, version=model.version, family=codes.DCM.ArtificialIntelligence
    )
    segment = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label=f"Grad-CAM >= {threshold:g}",
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.MorphologicallyAbnormalStructure,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm,
    )
    series = derived_uid(model.version, "seg-series", source.study_instance_uid, model.arm)
    seg = hd.seg.Segmentation(
        source_images=[_source_view(ds, source)],
        pixel_array=mask[None],
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[segment],
        series_instance_uid=series,
        series_number=SEG_SERIES_NUMBER,
        sop_instance_uid=derived_uid(series, source.sop_instance_uid, source.frame, threshold),
        instance_number=instance_number,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=model.name,
        software_versions=model.version,
        device_serial_number=model.version,
        content_label="GRADCAM",
        content_description=f"Grad-CAM of {model.name} at {threshold:g}",
        omit_empty_frames=False,
    )
    _name_the_frame(seg, source)
    _describe(seg, ds, model, f"Grad-CAM region (>= {threshold:g})", box)
    return seg


def build_maps(
    cams: Mapping[str, np.ndarray],
    sources: Mapping[str, Source],
    datasets: Mapping,
    boxes: Mapping[str, tuple[int, int, int, int] | None],
    model: ModelInfo,
    *,
    kinds: tuple[str, ...] = ("pm",),
    threshold: float = 0.5,
) -> list[tuple[str, str, str, object]]:
    """(patient, image_id, kind, dataset) of every map object: `kinds` of "pm" and "seg".

    A Parametric Map needs a frame of reference: for a source without one (ultrasound and
    secondary captures) "pm" gives the Segmentation instead (once per image), logged by count.

    `cams` maps image_id to the network-input Grad-CAM in [0, 1], `boxes` to the crop box
    (`crop_box` of its manifest row), `datasets` to the source header (pydicom, no pixels).
    """
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or not kinds:
        raise ConfigError(f"map kinds {list(kinds)}: expected some of {list(KINDS)}")
    out, instead = [], 0
    for k, image_id in enumerate(sorted(cams), start=1):
        source, ds = sources[image_id], datasets[image_id]
        box = boxes.get(image_id)
        want_seg = "seg" in kinds
        if "pm" in kinds and has_frame_of_reference(_source_view(ds, source)):
            pm = build_parametric_map(cams[image_id], source, ds, model, box=box, instance_number=k)
            out.append((source.patient, image_id, "pm", pm))
        elif "pm" in kinds and not want_seg:
            want_seg, instead = True, instead + 1
        if want_seg:
            seg = build_segmentation(
                cams[image_id], source, ds, model, box=box, instance_number=k, threshold=threshold
            )
            out.append((source.patient, image_id, "seg", seg))
    if instead:
        log.info(
            "Grad-CAM maps: %d sources have no frame of reference (screen captures): "
            "Segmentation instead of Parametric Map",
            instead,
        )
    log.info("Grad-CAM maps: %d objects (%s) of %d images", len(out), "+".join(kinds), len(cams))
    return out
