"""Extraction stage: a DICOM folder + label sheet -> de-identified, preprocessed tensor cache.

One pass per study: walk and classify the files, join the label sheet, decode every frame, crop
(ultrasound) or resize (MRI), and write images.npy, masks.npy, manifest.csv and refused.csv. PHI
stays in memory: the manifest holds keyed pseudonyms, never names, IDs, dates or paths.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mskdx.errors import ConfigError, DicomError, LabelError, MskdxError, PreprocessError
from mskdx.ingest import deid, dicom, image_labels, inputs, preprocess
from mskdx.ingest import labels as label_sheet
from mskdx.ingest.private_map import PrivateMap
from mskdx.ingest.refusals import Refusal, refusal_listing
from mskdx.ingest.us_regions import read_ultrasound_regions
from mskdx.io import atomic_path, write_table

log = logging.getLogger(__name__)

VIEWS = ("dorsal", "medial", "plantar", "lateral")
PLANES = {"cor": "coronal", "sag": "sagittal", "ax": "axial", "tra": "axial"}


@dataclass(frozen=True)
class StudySpec:
    """What the extraction of one study needs from the config."""

    study: str
    modalities: list[str]
    preprocess: dict
    labels: dict
    frames: str = "all"
    sequences: dict[str, str] = field(default_factory=dict)


@dataclass
class FileResult:
    """Everything extracted from one file (one entry per kept frame)."""

    checksum: str
    frames: list[int]
    images: list[np.ndarray]
    boxes: list[preprocess.Box | None]
    regions: list[preprocess.Region | None] = field(default_factory=list)
    views: list[int] = field(default_factory=list)  # index of the region within the frame
    fitted: list[bool] = field(default_factory=list)


def extract_study(
    dicom_dir: str | Path,
    labels_path: str | Path | None,
    *,
    spec: StudySpec,
    masks_path: str | Path | None,
    on_error: str,
    key_env: str,
    images: str | Path,
    masks: str | Path,
    manifest: str | Path,
    refused: str | Path,
    threads: int = 1,
    private_map: str | Path | None = None,
    key_fingerprint: str = "",
    image_labels_path: str | Path | None = None,
) -> pd.DataFrame:
    """Run the extraction stage for one study and write its cache (see docs/architecture.md).

    Logs, tables and error messages name refused files (F-...) and patients (P-...) by key
    only. The way back to the real file or PatientID is `private_map` (outside results/; it
    holds PHI), rewritten on every run, and the `terminal` attribute of a raised error.
    `key_fingerprint`, when given, must be that of the key in `key_env` now (the key the
    workflow saw when it scheduled the job).

    Without a label sheet (`labels_path` None, used by `mskdx predict`) the manifest's labels
    are empty; such a cache can be scored, never trained on. With an image label sheet
    (`image_labels_path`, columns in `spec.labels["images"]`) the manifest's `label` is the
    image's own label and `patient_label` the patient's diagnosis; without one both are the
    patient's diagnosis.
    """
    root = Path(dicom_dir)
    key = _pseudonym_key(key_env, key_fingerprint)
    private = PrivateMap(private_map)
    headers, refusals = _scan_folder(root, spec, on_error, private)
    patient_label = _patient_labels(labels_path, spec, headers, key, private)
    sheet = image_labels.load_image_labels(
        image_labels_path,
        spec.labels.get("images"),
        headers,
        root,
        refused=[r.relpath for r in refusals],
        kept=[_frame_choice(max(h.number_of_frames, 1), spec.frames) for h in headers],
        patient_label=patient_label,
        key=key,
    )
    with (
        _open_masks(masks_path) as truth,
        atomic_path(images) as images_tmp,
        atomic_path(masks) as masks_tmp,
        NpyRows(images_tmp) as image_rows,
        NpyRows(masks_tmp) as mask_rows,
    ):
        # each file's crops go to the cache as they come: memory holds one file's, not all
        results, rows = [], []
        decoded = zip(headers, _decode_files(headers, spec, threads), strict=True)
        for index, (h, result) in enumerate(decoded):
            if not isinstance(result, MskdxError):
                labelled = (patient_label, sheet, index)
                for row, img, gt in _image_rows(h, result, labelled, truth, spec, key):
                    rows.append({"index": len(rows), **row})
                    image_rows.append(img)
                    mask_rows.append(gt)
                result.images = []
            results.append(result)
        refusals = refusals + _refuse_failed(headers, results, root, on_error, private)
        refusals = refusals + _refuse_flagged(headers, results, root, spec, private)
        refused_rows = [
            {"file_key": f"F-{r.key}", "reason": str(r.reason), "message": r.message}
            for r in refusals
        ]
        if not rows:
            raise private.attach(
                DicomError(
                    f"{root}: no image could be extracted ({len(refused_rows)} files refused)"
                )
            )
    table = _manifest_table(rows, spec)
    _write_tables(table, refused_rows, manifest, refused)
    log.info(
        "%s: %d images of %d patients (%d positive images), %d files refused",
        spec.study,
        len(table),
        table.patient.nunique(),
        int(table.label.fillna(0).sum()),
        len(refused_rows),
    )
    return table


def _pseudonym_key(key_env: str, key_fingerprint: str) -> bytes:
    """The pseudonym key in `key_env`; refuse one other than the workflow was started with."""
    if key_fingerprint and key_fingerprint != inputs.key_fingerprint(key_env):
        raise ConfigError(
            f"{key_env} is not the pseudonym key the workflow was started with; run the whole "
            "workflow with one key"
        )
    return deid.get_key(key_env)


def _scan_folder(
    root: Path, spec: StudySpec, on_error: str, private: PrivateMap
) -> tuple[list[dicom.DicomHeader], list[Refusal]]:
    """Scan the input tree; map its refusals privately; apply `on_error` (stop raises)."""
    scan = dicom.scan_tree(root, spec.modalities)
    private.add_refusals(scan.refusals)
    private.write()
    try:
        dicom.check_scan(scan, root, on_error)
    except DicomError as err:
        raise private.attach(err) from None
    return scan.headers, scan.refusals


def _patient_labels(
    labels_path: str | Path | None,
    spec: StudySpec,
    headers: list[dicom.DicomHeader],
    key: bytes,
    private: PrivateMap,
) -> dict[str, int | None]:
    """{PatientID: label} from the label sheet; None labels without one (mskdx predict).

    Patients with images but no row are mapped privately before join_labels refuses them.
    """
    if labels_path is None:  # new patients to diagnose (mskdx predict): no label sheet
        return {h.patient_id: None for h in headers}
    lab = spec.labels
    sheet = label_sheet.read_label_sheet(
        labels_path,
        lab["patient_column"],
        lab["label_column"],
        lab["positive"],
        lab["negative"],
    )
    unlabelled = label_sheet.unlabelled_patients(headers, sheet)
    if unlabelled:
        private.add_patients(unlabelled, key)
        private.write()
    try:
        return label_sheet.join_labels(headers, sheet, str(labels_path), key=key)
    except LabelError as err:
        raise private.attach(err) from None


# files a decoder process takes at a time; a chunk's crops come back (and are held) together
MAX_DECODE_CHUNK = 8


def decode_chunksize(files: int, threads: int) -> int:
    """Files per task of the decoder pool: a few per worker for small cohorts, never more than
    MAX_DECODE_CHUNK. A chunk's results travel as one list, so a chunk that grew with the cohort
    (it was files / (8 threads): 1,500 files at 24,010 captures) made the extraction's peak
    memory grow with it; decoding one file takes far longer than sending it."""
    return max(1, min(MAX_DECODE_CHUNK, files // (8 * max(threads, 1))))


def _decode_files(
    headers: list[dicom.DicomHeader], spec: StudySpec, threads: int
) -> Iterator[FileResult | MskdxError]:
    """Decode and crop (or resize) every accepted file, in `threads` processes; one per header,
    in header order, as they are done."""
    jobs = [(h.path, spec) for h in headers]
    if threads > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=threads) as pool:
            yield from pool.map(_process_file, jobs, chunksize=decode_chunksize(len(jobs), threads))
        return
    for job in jobs:
        yield _process_file(job)


def _refuse_failed(
    headers: list[dicom.DicomHeader],
    results: list[FileResult | MskdxError],
    root: Path,
    on_error: str,
    private: PrivateMap,
) -> list[Refusal]:
    """Refusals of the files that failed to decode or crop; under `on_error` stop, raise."""
    failed = [(h, r) for h, r in zip(headers, results, strict=True) if isinstance(r, MskdxError)]
    decode_refusals = [_decode_refusal(h.path, err, root) for h, err in failed]
    if decode_refusals:
        private.add_refusals(decode_refusals)
        private.write()
    if failed and on_error == "stop":
        err = DicomError(
            f"{root}: {len(failed)} files could not be extracted (by file key; set "
            f"data.on_error: skip to go on without them):\n" + refusal_listing(decode_refusals)
        )
        raise private.attach(err, decode_refusals)
    return decode_refusals


def _refuse_flagged(
    headers: list[dicom.DicomHeader],
    results: list[FileResult | MskdxError],
    root: Path,
    spec: StudySpec,
    private: PrivateMap,
) -> list[Refusal]:
    """Apply preprocess.on_flag to images with an implausible region: the refusals it adds."""
    flagged = _flagged_regions(headers, results, root)
    if not flagged:
        return []
    private.add_refusals(flagged)
    private.write()
    policy = _on_flag(spec)
    if policy == "stop":
        err = PreprocessError(
            f"{root}: {len(flagged)} images have an implausible ultrasound region (by file "
            f"key; set studies.{spec.study}.preprocess.on_flag to skip or keep to go on):\n"
            + refusal_listing(flagged)
        )
        raise private.attach(err, flagged)
    if policy == "skip":
        return flagged
    for r in flagged:
        log.warning("kept flagged image of file F-%s: %s", r.key, r.message)
    return []


def _image_rows(
    h: dicom.DicomHeader,
    result: FileResult,
    labelled: tuple[dict[str, int | None], image_labels.ImageLabels | None, int],
    truth: Mapping[str, np.ndarray] | None,
    spec: StudySpec,
    key: bytes,
) -> Iterator[tuple[dict, np.ndarray, np.ndarray]]:
    """The manifest row (without its index), image and mask of every kept image of one file, in
    frame order. `labelled`: the patients' labels, the image sheet (or None) and the file's
    index in it; frames the sheet skips (on_missing skip) are left out."""
    patient_label, sheet, index = labelled
    series = _series(h, spec)
    for i, (frame, img, box) in enumerate(
        zip(result.frames, result.images, result.boxes, strict=True)
    ):
        region = result.regions[i] if result.regions else None
        view = result.views[i] if result.views else 0
        if region is not None and region.flags and _on_flag(spec) == "skip":
            continue
        if sheet is not None and (index, frame) in sheet.skipped:
            continue
        sheet_row = sheet.row(index, frame) if sheet is not None else None
        gt = (
            _truth_mask(truth, result.checksum, frame, img.shape, box, spec)
            if truth is not None
            else None
        )
        row = {
            "image_id": deid.image_pseudonym(
                h.sop_instance_uid + (f".{view}" if view else ""), frame, key
            ),
            "patient": deid.patient_pseudonym(h.patient_id, key),
            "study": spec.study,
            "series": series,
            "plane": _plane(h),
            "frame": frame,
            "label": sheet_row.label if sheet_row else patient_label[h.patient_id],
            "patient_label": patient_label[h.patient_id],
            "checksum": result.checksum,
            "crop_x0": box.x0 if box else None,
            "crop_y0": box.y0 if box else None,
            "crop_x1": box.x1 if box else None,
            "crop_y1": box.y1 if box else None,
            **_region_columns(region, view, result.fitted[i] if result.fitted else False),
            "has_mask": gt is not None,
            "lesion": bool(gt.any()) if gt is not None else None,
            "manufacturer": h.manufacturer,
            "model": h.model,
            "sex": h.sex,
            "age_band": h.age_band,
            **(sheet_row.findings if sheet_row else {}),
        }
        yield row, img, gt if gt is not None else np.zeros_like(img)


def _manifest_table(rows: list[dict], spec: StudySpec) -> pd.DataFrame:
    """The manifest of `rows`, its integer columns nullable; log regions and unmatched series."""
    table = pd.DataFrame(rows)
    _log_regions(table)
    unmatched = int((table.series == "unknown").sum())
    if spec.sequences and unmatched:
        log.warning(
            "%d images match none of the sequence patterns %s: series 'unknown', cached but "
            "used by no arm",
            unmatched,
            sorted(spec.sequences),
        )
    findings = [c for c in table.columns if c.startswith(image_labels.FINDING_PREFIX)]
    for col in ("crop_x0", "crop_y0", "crop_x1", "crop_y1", *_REGION_INT_COLUMNS, *findings):
        table[col] = table[col].astype("Int64")
    return table


def _write_tables(
    table: pd.DataFrame,
    refused_rows: list[dict],
    manifest: str | Path,
    refused: str | Path,
) -> None:
    """Log the refused files by key, then write refused.csv and the manifest (after the cache)."""
    refused_table = pd.DataFrame(refused_rows, columns=["file_key", "reason", "message"])
    for row in refused_rows:
        log.warning("refused file %s (%s): %s", row["file_key"], row["reason"], row["message"])
    write_table(refused_table, refused)
    write_table(table, manifest, schema="manifest")


class NpyRows:
    """A uint8 (N, H, W) .npy written one (H, W) row at a time, N unknown until it is closed.

    The header is written first for N = 0 and rewritten with the count on a clean exit: numpy
    leaves room in every header for the first axis to grow (`np.lib.format`), so the data does
    not move and the file is byte for byte what `np.save` writes of the stacked rows.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.count = 0
        self._fh = None
        self._shape: tuple[int, ...] | None = None

    def __enter__(self) -> NpyRows:
        return self

    def append(self, row: np.ndarray) -> None:
        row = np.ascontiguousarray(row, dtype=np.uint8)
        if self._fh is None:
            self._shape = row.shape
            self._fh = open(self.path, "wb")
            self._header_size = self._write_header(0)
        elif row.shape != self._shape:
            raise PreprocessError(
                f"{self.path}: image {self.count} is {row.shape}; expected {self._shape} like the "
                "first (every cached image has one size)"
            )
        self._fh.write(memoryview(row).cast("B"))
        self.count += 1

    def _write_header(self, n: int) -> int:
        start = self._fh.tell()
        header = {"descr": "|u1", "fortran_order": False, "shape": (n, *self._shape)}
        np.lib.format.write_array_header_1_0(self._fh, header)
        return self._fh.tell() - start

    def __exit__(self, exc_type, *exc) -> None:
        if self._fh is None:
            return
        try:
            if exc_type is None:
                end = self._fh.tell()
                self._fh.seek(0)
                if self._write_header(self.count) != self._header_size:
                    raise PreprocessError(f"{self.path}: header grew with {self.count} rows")
                self._fh.seek(end)
        finally:
            self._fh.close()


@contextlib.contextmanager
def _open_masks(path) -> Iterator[Mapping[str, np.ndarray] | None]:
    """The ground-truth masks by key, read from the .npz one at a time when asked (or None)."""
    if not path:
        yield None
        return
    with np.load(path) as data:
        yield data


def _process_file(job: tuple[str, StudySpec]) -> FileResult | MskdxError:
    """Decode and preprocess one file (runs in a worker process); errors are returned."""
    path, spec = job
    try:
        frames = dicom.read_frames(path)
        keep = _frame_choice(frames.shape[0], spec.frames)
        result = FileResult(dicom.file_sha256(path), [], [], [])
        if spec.preprocess["kind"] != "ultrasound":
            for i in keep:
                img = preprocess.resize_mri(frames[i], spec.preprocess["size"], f"{path} frame {i}")
                result.frames.append(i)
                result.images.append(img)
                result.boxes.append(None)
            return result
        records = read_ultrasound_regions(path)
        for i in keep:
            for view, crop in enumerate(_crop_frame(frames[i], records, spec, f"{path} frame {i}")):
                result.frames.append(i)
                result.images.append(crop.image)
                result.boxes.append(crop.box)
                result.regions.append(crop.region)
                result.views.append(view)
                result.fitted.append(crop.fitted)
        return result
    except (DicomError, PreprocessError) as err:
        return err


def _crop_frame(frame, records, spec: StudySpec, source: str) -> list[preprocess.Crop]:
    pp = spec.preprocess
    return preprocess.crop_regions(
        frame,
        width=pp["crop_width"],
        height=pp["crop_height"],
        scale=pp.get("scale", 1.0),
        records=records,
        region=pp.get("region", "auto"),
        multi=pp.get("multi_region", "largest"),
        small_capture=pp.get("small_capture", "fit"),
        source=source,
    )


_REGION_INT_COLUMNS = ("region_x0", "region_y0", "region_x1", "region_y1")


def _region_columns(region: preprocess.Region | None, view: int, fitted: bool) -> dict:
    """Manifest columns of an image's region: which method gave it, agreement, QC flags."""
    if region is None:
        return {
            "region": None,
            "region_method": None,
            **dict.fromkeys(_REGION_INT_COLUMNS),
            "region_iou": None,
            "region_flags": None,
            "region_note": None,
            "crop_fitted": None,
        }
    b = region.box
    return {
        "region": view,
        "region_method": region.method,
        "region_x0": b.x0,
        "region_y0": b.y0,
        "region_x1": b.x1,
        "region_y1": b.y1,
        "region_iou": region.iou,
        "region_flags": ";".join(region.flags),
        "region_note": region.note or None,
        "crop_fitted": fitted,
    }


def _log_regions(table: pd.DataFrame) -> None:
    """Which method gave the regions, and why records were not used (no paths: counts)."""
    if "region_method" not in table or table.region_method.isna().all():
        return
    for method, count in table.region_method.value_counts().items():
        log.info("%d images: region from the %s", count, method)
    reasons = table.region_note.dropna().str.replace(
        r" ?\([-0-9,]+\)(-\([-0-9,]+\))?", "", regex=True
    )
    for reason, count in reasons.value_counts().items():
        log.info("%d images: region record not used: %s", count, reason)
    if table.crop_fitted.fillna(False).astype(bool).any():
        log.info(
            "%d images smaller than the crop: box of the crop's aspect resized (small_capture fit)",
            int(table.crop_fitted.fillna(False).astype(bool).sum()),
        )


def _on_flag(spec: StudySpec) -> str:
    return spec.preprocess.get("on_flag", "stop")


def _flagged_regions(headers, results, root: Path) -> list[Refusal]:
    """Images whose region is implausible (QC flags), one Refusal each (reason flagged_region).

    preprocess.on_flag decides (docs/architecture.md): stop raises listing every one by file
    key; skip leaves them out and tables them as refused; keep keeps them with a warning (the
    manifest has the flags).
    """
    flagged = []
    for h, result in zip(headers, results, strict=True):
        if isinstance(result, MskdxError) or not result.regions:
            continue
        for frame, view, region in zip(result.frames, result.views, result.regions, strict=True):
            if region is not None and region.flags:
                message = (
                    f"frame {frame} region {view} ({region.method}): {', '.join(region.flags)}"
                )
                flagged.append(
                    Refusal(Path(h.path), "flagged_region", message, _relative(h.path, root))
                )
    return flagged


def _truth_mask(truth, checksum, frame, shape, box, spec) -> np.ndarray | None:
    key = f"{checksum}_{frame}"
    if key not in truth:
        return None
    mask = truth[key]
    pp = spec.preprocess
    if box is not None:
        return preprocess.crop_mask(
            mask, box, pp["crop_width"], pp["crop_height"], pp.get("scale", 1.0)
        )
    return preprocess.resize_mask(mask, shape)


def _frame_choice(n: int, policy: str) -> list[int]:
    if policy == "first":
        return [0]
    if policy == "middle":
        return [n // 2]
    return list(range(n))


def _series(h: dicom.DicomHeader, spec: StudySpec) -> str:
    text = f"{h.series_description or ''} {h.protocol_name or ''}"
    if spec.sequences:
        for name, pattern in spec.sequences.items():
            if re.search(pattern, text):
                return name
        return "unknown"
    low = text.lower()
    return next((v for v in VIEWS if v in low), "unknown")


def _plane(h: dicom.DicomHeader) -> str:
    low = f"{h.series_description or ''} {h.protocol_name or ''}".lower()
    return next((name for tag, name in PLANES.items() if re.search(rf"\b{tag}", low)), "unknown")


def _relative(path: str | Path, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def _decode_refusal(path: str | Path, err: MskdxError, root: Path) -> Refusal:
    """A file that passed the walk but failed to decode or crop, as the walk's refusals are:
    keyed by a hash of its relative path, the message without the path (paths may hold PHI)."""
    detail = getattr(err, "detail", None) or str(err).replace(str(path), "").lstrip(" :")
    reason = getattr(err, "reason", type(err).__name__)
    return Refusal(Path(path), str(reason), detail, _relative(path, root))
