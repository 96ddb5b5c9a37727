"""Read the image label sheet (one row per image, or per file) and match it to the scanned files.

The patient sheet (`mskdx.ingest.labels`) gives each patient a diagnosis; the optional image
sheet gives each image its own label (abnormal/normal) and optional findings (e.g. double
contours, tophus). An image is named by what a user has: its SOPInstanceUID or its path relative
to the DICOM folder (config `studies.<study>.labels.images.key`: uid | path), with an optional
frame number (1-based, as DICOM viewers count; blank = every frame of the file).

The keys are PHI-bearing: they stay in memory, are matched to the files and become the
pseudonymous image keys (`I-...`) of the manifest. Error messages name the sheet's rows by line
number (the header is line 1, as a spreadsheet shows it), counts and pseudonyms, never a key;
the keys behind the rows of an error go to the terminal only (the error's `terminal` text).
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from mskdx.errors import ConfigError, LabelError
from mskdx.ingest import labels as patient_sheet
from mskdx.ingest.deid import image_pseudonym, patient_pseudonym
from mskdx.ingest.dicom import DicomHeader

log = logging.getLogger(__name__)

_MAX_LISTED = 20
_TERMINAL_LINES = 20
#: finding values read as yes (1) / no (0); integers are kept as counts
_YES = {"yes", "y", "true", "x", "present", "+"}
_NO = {"no", "n", "false", "absent", "-"}
#: manifest column of a finding: finding_<name in lower case, non-alphanumerics as _>
FINDING_PREFIX = "finding_"


def finding_column(name: str) -> str:
    """The manifest column of finding `name` ("Double contour" -> "finding_double_contour")."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.strip().casefold()).strip("_")
    return FINDING_PREFIX + slug


@dataclass(frozen=True)
class ImageLabelSpec:
    """The image sheet's columns and policies (config `studies.<study>.labels.images`)."""

    key: str  # "uid" (SOPInstanceUID) or "path" (relative to the DICOM folder)
    key_column: str
    label_column: str
    positive: str
    negative: str
    frame_column: str | None = None
    findings: tuple[str, ...] = ()
    on_missing: str = "stop"  # images without a row: stop | skip
    on_control_abnormal: str = "warn"  # abnormal images of a negative patient: warn | stop

    @classmethod
    def from_config(cls, cfg: Mapping) -> ImageLabelSpec:
        where = "studies.*.labels.images"
        missing = [k for k in ("key", "key_column", "label_column", "positive", "negative")
                   if not str(cfg.get(k) or "").strip()]  # fmt: skip
        if missing:
            raise ConfigError(f"{where}: missing {missing}")
        spec = cls(
            key=str(cfg["key"]),
            key_column=str(cfg["key_column"]).strip(),
            label_column=str(cfg["label_column"]).strip(),
            positive=str(cfg["positive"]).strip(),
            negative=str(cfg["negative"]).strip(),
            frame_column=(str(cfg["frame_column"]).strip() or None)
            if cfg.get("frame_column")
            else None,
            findings=tuple(str(f).strip() for f in cfg.get("findings") or ()),
            on_missing=str(cfg.get("on_missing", "stop")),
            on_control_abnormal=str(cfg.get("on_control_abnormal", "warn")),
        )
        checks = (
            ("key", spec.key, ("uid", "path")),
            ("on_missing", spec.on_missing, ("stop", "skip")),
            ("on_control_abnormal", spec.on_control_abnormal, ("warn", "stop")),
        )
        for name, value, allowed in checks:
            if value not in allowed:
                raise ConfigError(f"{where}.{name} = {value!r}; expected one of {list(allowed)}")
        if spec.positive.casefold() == spec.negative.casefold():
            raise ConfigError(f"{where}: positive and negative must be two different values")
        columns = [spec.key_column, spec.label_column, spec.frame_column, *spec.findings]
        named = [c.casefold() for c in columns if c]
        if len(set(named)) != len(named):
            raise ConfigError(f"{where}: a column is named twice in {[c for c in columns if c]}")
        slugs = [finding_column(f) for f in spec.findings]
        if len(set(slugs)) != len(slugs) or FINDING_PREFIX in slugs:
            raise ConfigError(f"{where}.findings: {list(spec.findings)} give columns {slugs}")
        return spec


@dataclass(frozen=True)
class ImageRow:
    """One row of the image sheet. `key` is PHI (a UID or a path): memory only."""

    line: int
    key: str
    frame: int | None  # 0-based (the sheet's 1-based number - 1); None = every frame
    label: int
    findings: dict[str, int | None] = field(default_factory=dict)


@dataclass
class ImageSheet:
    """The rows of an image label sheet, read and checked."""

    path: Path
    spec: ImageLabelSpec
    rows: list[ImageRow]


def normalise_path(text: str) -> str:
    """A relative path as the sheet may write it, in the walk's form (POSIX, no leading ./)."""
    parts = [p for p in PurePosixPath(text.strip().replace("\\", "/")).parts if p not in (".", "")]
    return "/".join(parts)


def read_image_sheet(path: str | os.PathLike[str], spec: ImageLabelSpec) -> ImageSheet:
    """Read a CSV (or .xlsx) image label sheet; LabelError naming every bad row by line number.

    Problems: missing file or columns, no header, an empty key, a frame that is not a positive
    integer, a label other than `positive`/`negative` (case-insensitive), a finding that is not
    yes/no or a count, the same image twice (also a whole-file row beside a frame row).
    """
    path = Path(path)
    rows = _sheet_rows(path, spec)
    cols = _columns(path, rows[0], spec)
    out: list[ImageRow] = []
    bad: dict[str, list[int]] = defaultdict(list)
    bad_values: list[str] = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        cell = {name: (row[i].strip() if i < len(row) else "") for name, i in cols.items()}
        key = cell["key"]
        key = normalise_path(key) if spec.key == "path" else key
        if not key:
            bad[f"no {spec.key_column!r}"].append(line)
            continue
        frame = _frame(cell.get("frame", ""))
        if frame == -1:
            bad[f"{spec.frame_column!r} is not a frame number 1, 2, ... (or blank)"].append(line)
            continue
        label = {spec.positive.casefold(): 1, spec.negative.casefold(): 0}.get(
            cell["label"].casefold()
        )
        if label is None:
            bad[f"{spec.label_column!r} must be {spec.positive!r} or {spec.negative!r}"].append(
                line
            )
            bad_values.append(cell["label"])
            continue
        findings = {}
        for name in spec.findings:
            value = _finding(cell[f"finding:{name}"])
            if value == -1:
                bad[f"finding {name!r} must be yes/no, 1/0, a count or blank"].append(line)
            findings[finding_column(name)] = value
        out.append(ImageRow(line, key, frame, label, findings))
    problems = [f"{what}: lines {_lines(lines)}" for what, lines in bad.items()]
    if bad_values:
        problems.append(_shown_values(bad_values))
    problems += _duplicates(out)
    if problems:
        raise LabelError(f"{path}: image label sheet: " + "\n  ".join(problems))
    if not out:
        raise LabelError(f"{path}: image label sheet has a header but no image rows")
    positives = sum(r.label for r in out)
    log.info(
        "image label sheet: %d rows (%d %s, %d %s)",
        len(out),
        positives,
        spec.positive,
        len(out) - positives,
        spec.negative,
    )
    return ImageSheet(path, spec, out)


def _sheet_rows(path: Path, spec: ImageLabelSpec) -> list[list[str]]:
    if not path.is_file():
        raise LabelError(
            f"{path}: image label sheet not found (config studies.*.input.image_labels)"
        )
    try:
        if path.suffix.lower() in (".xlsx", ".xlsm"):
            rows = patient_sheet._rows_xlsx(path)
        elif path.suffix.lower() in (".xls", ".ods", ".numbers"):
            raise LabelError(f"{path}: {path.suffix} sheets are not read; save the sheet as CSV")
        else:
            rows = patient_sheet._rows_csv(path)
    except OSError as exc:
        raise LabelError(f"{path}: cannot read the image label sheet ({exc.strerror})") from None
    except csv.Error as exc:
        raise LabelError(f"{path}: not a readable CSV file ({exc})") from None
    if not rows or not any(c.strip() for c in rows[0]):
        raise LabelError(
            f"{path}: image label sheet is empty; expected a header row with columns "
            f"{spec.key_column!r} and {spec.label_column!r}"
        )
    return rows


def _columns(path: Path, header: list[str], spec: ImageLabelSpec) -> dict[str, int]:
    """{role: column index}; LabelError naming the configured columns the header lacks."""
    wanted = {"key": spec.key_column, "label": spec.label_column}
    if spec.frame_column:
        wanted["frame"] = spec.frame_column
    wanted.update({f"finding:{f}": f for f in spec.findings})
    found = {role: patient_sheet._find_column(header, name) for role, name in wanted.items()}
    missing = [wanted[role] for role, i in found.items() if i is None]
    if missing:
        values = {spec.positive.casefold(), spec.negative.casefold()}
        if any(h.strip().casefold() in values for h in header):
            raise LabelError(
                f"{path}: line 1 holds a label value, not column names; add a header row with "
                f"columns {list(wanted.values())} (config studies.*.labels.images)"
            )
        raise LabelError(
            f"{path}: missing column(s) {missing} (config studies.*.labels.images); the header "
            f"row has {[h.strip() for h in header if h.strip()]}"
        )
    return {role: i for role, i in found.items() if i is not None}


def _frame(text: str) -> int | None:
    """0-based frame of a 1-based cell; None if blank; -1 if not a positive integer."""
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        return -1
    return int(value) - 1 if value.is_integer() and value >= 1 else -1


def _finding(text: str) -> int | None:
    """1/0 of yes/no words, a count of an integer, None if blank, -1 if neither."""
    low = text.casefold()
    if not low:
        return None
    if low in _YES:
        return 1
    if low in _NO:
        return 0
    try:
        value = float(low)
    except ValueError:
        return -1
    return int(value) if value.is_integer() and value >= 0 else -1


def _lines(lines: Sequence[int]) -> str:
    shown = ", ".join(str(n) for n in lines[:_MAX_LISTED])
    return shown + (f" and {len(lines) - _MAX_LISTED} more" if len(lines) > _MAX_LISTED else "")


def _shown_values(values: list[str]) -> str:
    """The unknown label values, shown only when few and short (a misnamed column of UIDs or
    paths gives many different values: then they are not shown)."""
    distinct = sorted({v for v in values if v})
    if distinct and len(distinct) <= 5 and all(len(v) <= 20 and "/" not in v for v in distinct):
        if 2 * len(distinct) <= len(values) or len(values) <= 2:
            return f"unknown label values: {distinct}"
    return "label values not shown (they may be identifiers: is it the right column?)"


def _duplicates(rows: list[ImageRow]) -> list[str]:
    """The same image twice: rows of one key and frame, or a whole-file row and a frame row."""
    by_key: dict[str, list[ImageRow]] = defaultdict(list)
    for row in rows:
        by_key[row.key].append(row)
    groups = []
    for same in by_key.values():
        if len(same) < 2:
            continue
        whole = [r.line for r in same if r.frame is None]
        frames: dict[int, list[int]] = defaultdict(list)
        for r in same:
            if r.frame is not None:
                frames[r.frame].append(r.line)
        if whole:
            groups.append([r.line for r in same])
        else:
            groups += [lines for lines in frames.values() if len(lines) > 1]
    if not groups:
        return []
    text = "; ".join(" and ".join(map(str, g)) for g in groups[:_MAX_LISTED])
    more = f"; and {len(groups) - _MAX_LISTED} more" if len(groups) > _MAX_LISTED else ""
    return [f"the same image appears in lines {text}{more}; expected one row per image"]


@dataclass
class ImageLabels:
    """The sheet matched to the files: the row of every (file, frame) it covers."""

    spec: ImageLabelSpec
    by_file: dict[int, list[ImageRow]]  # header index -> its rows
    skipped: set[tuple[int, int]] = field(default_factory=set)  # (header index, frame) left out

    def row(self, index: int, frame: int) -> ImageRow | None:
        """The row labelling frame `frame` (0-based) of header `index`, or None."""
        for r in self.by_file.get(index, ()):
            if r.frame is None or r.frame == frame:
                return r
        return None

    def finding_columns(self) -> list[str]:
        return [finding_column(f) for f in self.spec.findings]


def _terminal(err: LabelError, rows: list[ImageRow], what: str) -> LabelError:
    lines = [f"  line {r.line}: {r.key}" for r in rows[:_TERMINAL_LINES]]
    if len(rows) > _TERMINAL_LINES:
        lines.append(f"  ... and {len(rows) - _TERMINAL_LINES} more")
    err.terminal = f"{what} (identifiers: keep them private):\n" + "\n".join(lines)  # type: ignore[attr-defined]
    return err


def match_image_sheet(
    sheet: ImageSheet,
    headers: Sequence[DicomHeader],
    root: str | os.PathLike[str],
    *,
    refused: Sequence[str] = (),
) -> ImageLabels:
    """Match the sheet's rows to the accepted files under `root` (`headers`).

    Raises LabelError for rows naming no accepted file (rows naming a file the walk refused,
    `refused` relative paths, are left out with a warning: the file is in refused.csv) and for
    frame numbers beyond their file's frames.
    """
    root = Path(root)
    index_of: dict[str, list[int]] = defaultdict(list)
    for i, h in enumerate(headers):
        key = _relative(h.path, root) if sheet.spec.key == "path" else h.sop_instance_uid.strip()
        index_of[key].append(i)
    refused_set = {normalise_path(p) for p in refused}
    by_file: dict[int, list[ImageRow]] = defaultdict(list)
    unknown, of_refused, beyond = [], 0, []
    for row in sheet.rows:
        found = index_of.get(row.key)
        if not found:
            if sheet.spec.key == "path" and row.key in refused_set:
                of_refused += 1
            else:
                unknown.append(row)
            continue
        for i in found:
            if row.frame is not None and row.frame >= max(headers[i].number_of_frames, 1):
                beyond.append(row)
                break
            by_file[i].append(row)
    if of_refused:
        log.warning("%s: %d rows name files that were refused; left out", sheet.path, of_refused)
    problems = []
    if unknown:
        what = "SOPInstanceUID" if sheet.spec.key == "uid" else "path"
        problems.append(
            f"{len(unknown)} of {len(sheet.rows)} rows name no image of the DICOM folder (no "
            f"accepted file has that {what}; a refused file's rows must go, see refused.csv): "
            f"lines {_lines([r.line for r in unknown])}"
        )
    if beyond:
        problems.append(
            f"{len(beyond)} rows give a frame beyond their file's frames: "
            f"lines {_lines([r.line for r in beyond])}"
        )
    if problems:
        raise _terminal(
            LabelError(f"{sheet.path}: image label sheet: " + "\n  ".join(problems)),
            unknown + beyond,
            "the keys of those lines",
        )
    return ImageLabels(sheet.spec, dict(by_file))


def _relative(path: str | Path, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return normalise_path(str(path))


def check_coverage(
    labels: ImageLabels,
    headers: Sequence[DicomHeader],
    kept_frames: Sequence[Sequence[int]],
    source: str | os.PathLike[str],
    key: bytes,
) -> list[tuple[int, int]]:
    """The (header index, frame) of kept images without a row; raise (on_missing stop) or
    record them as skipped (skip), logged with counts. The LabelError lists them by image key
    (`I-...`) and patient pseudonym; its `terminal` text has their SOPInstanceUIDs."""
    missing = [
        (i, frame)
        for i, frames in enumerate(kept_frames)
        for frame in frames
        if labels.row(i, frame) is None
    ]
    if not missing:
        return []
    patients = {headers[i].patient_id for i, _ in missing}
    total = sum(len(f) for f in kept_frames)
    if labels.spec.on_missing == "skip":
        log.warning(
            "%s: %d of %d images (of %d patients) have no row in the image label sheet; left "
            "out (labels.images.on_missing: skip)",
            source,
            len(missing),
            total,
            len(patients),
        )
        labels.skipped = set(missing)
        return missing
    names = sorted(
        f"{image_pseudonym(headers[i].sop_instance_uid, frame, key)} "
        f"({patient_pseudonym(headers[i].patient_id, key)}, frame {frame + 1})"
        for i, frame in missing
    )
    err = LabelError(
        f"{source}: {len(missing)} of {total} images (of {len(patients)} patients) have no row "
        f"in the image label sheet; by image key: {'; '.join(names[:_MAX_LISTED])}"
        + (f"; and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else "")
        + ". Add their rows, or set labels.images.on_missing: skip to leave them out"
    )
    shown = [f"  {headers[i].sop_instance_uid} frame {frame + 1}" for i, frame in missing]
    err.terminal = (
        "SOPInstanceUIDs of those images (identifiers: keep them private):\n"
        + "\n".join(  # type: ignore[attr-defined]
            shown[:_TERMINAL_LINES]
        )
        + (
            f"\n  ... and {len(shown) - _TERMINAL_LINES} more"
            if len(shown) > _TERMINAL_LINES
            else ""
        )
    )
    raise err


def check_agreement(
    labels: ImageLabels,
    headers: Sequence[DicomHeader],
    patient_label: Mapping[str, int | None],
    source: str | os.PathLike[str],
    key: bytes,
) -> None:
    """Abnormal images of a negative patient: warn or refuse (labels.images.on_control_abnormal);
    a positive patient without an abnormal image is logged."""
    abnormal_of: dict[str, set[int]] = defaultdict(set)
    rows_of: dict[str, set[int]] = defaultdict(set)
    for i, rows in labels.by_file.items():
        pid = headers[i].patient_id
        rows_of[pid].update(r.line for r in rows)
        abnormal_of[pid].update(r.line for r in rows if r.label == 1)
    controls = sorted(
        pid for pid, lines in abnormal_of.items() if lines and patient_label.get(pid) == 0
    )
    silent = sorted(
        pid for pid in rows_of if patient_label.get(pid) == 1 and not abnormal_of.get(pid)
    )
    if silent:
        log.warning(
            "%s: %d positive patients have no abnormal image in the image label sheet",
            source,
            len(silent),
        )
    if not controls:
        return
    lines = sorted(n for pid in controls for n in abnormal_of[pid])
    names = sorted(patient_pseudonym(pid, key) for pid in controls)
    text = (
        f"{source}: {len(controls)} patients labelled negative in the patient sheet have "
        f"{len(lines)} abnormal images in the image sheet (lines {_lines(lines)}; patients "
        f"{', '.join(names[:_MAX_LISTED])})"
    )
    if labels.spec.on_control_abnormal == "stop":
        raise LabelError(
            text + "; correct either sheet, or set labels.images.on_control_abnormal: warn"
        )
    log.warning("%s; kept (labels.images.on_control_abnormal: warn)", text)


def load_image_labels(
    path: str | os.PathLike[str] | None,
    config: Mapping | None,
    headers: Sequence[DicomHeader],
    root: str | os.PathLike[str],
    *,
    refused: Sequence[str],
    kept: Sequence[Sequence[int]],
    patient_label: Mapping[str, int | None],
    key: bytes,
) -> ImageLabels | None:
    """The image label sheet at `path` read, matched to the files and checked (None without
    one). `config`: `studies.<study>.labels.images`; `kept`: the 0-based frames extracted of
    each header; `refused`: relative paths of the files the walk refused."""
    if path is None:
        return None
    if not config:
        raise ConfigError(
            f"{path}: an image label sheet needs its columns in studies.*.labels.images"
        )
    sheet = read_image_sheet(path, ImageLabelSpec.from_config(config))
    matched = match_image_sheet(sheet, headers, root, refused=refused)
    check_coverage(matched, headers, kept, str(path), key)
    check_agreement(matched, headers, patient_label, str(path), key)
    return matched
