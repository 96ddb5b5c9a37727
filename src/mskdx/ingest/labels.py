"""Read the label sheet (one row per patient) and join it to the scanned DICOM headers.

Label sheets are user input holding PatientIDs, and error messages reach the terminal and the
logs, so messages name the sheet, row numbers (the header is row 1, as a spreadsheet shows
it), counts and pseudonyms: never a PatientID.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mskdx.errors import ConfigError, LabelError
from mskdx.ingest.deid import get_key, patient_pseudonym
from mskdx.ingest.dicom import DicomHeader

log = logging.getLogger(__name__)

_MAX_LISTED = 20  # problems listed per kind in one error message


def _rows_csv(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    first = text.splitlines()[0] if text.strip() else ""
    # Excel writes ';' in locales with a decimal comma; pick the most frequent separator
    delimiter = max((",", ";", "\t"), key=lambda d: (first.count(d), d == ","))
    return [list(r) for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # spreadsheet numbers: 1017.0 -> "1017"
    return str(value)


def _rows_xlsx(path: Path) -> list[list[str]]:
    try:
        import openpyxl  # optional dependency
    except ImportError:
        raise LabelError(
            f"{path}: reading .xlsx needs openpyxl (pip install openpyxl); or save the sheet as CSV"
        ) from None
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # zipfile/openpyxl errors on damaged files
        raise LabelError(
            f"{path}: cannot read the workbook ({type(exc).__name__}: {exc})"
        ) from None
    try:
        sheet = book.worksheets[0]
        # min_row=1 so that row numbers in messages are the spreadsheet's
        return [[_cell(v) for v in row] for row in sheet.iter_rows(min_row=1, values_only=True)]
    finally:
        book.close()


def _find_column(header: list[str], name: str) -> int | None:
    stripped = [h.strip() for h in header]
    if name in stripped:
        return stripped.index(name)
    folded = [h.casefold() for h in stripped]
    matches = [i for i, h in enumerate(folded) if h == name.strip().casefold()]
    return matches[0] if len(matches) == 1 else None


def _listing(items: list[str]) -> str:
    shown = "; ".join(items[:_MAX_LISTED])
    return shown + (f"; and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else "")


def _near_miss_hint(unlabelled: list[str], table: dict[str, int]) -> str:
    """Say so when the IDs differ only in leading zeros or letter case (spreadsheet damage)."""
    zeros = {k.lstrip("0") for k in table}
    cases = {k.casefold() for k in table}
    n_zeros = sum(1 for pid in unlabelled if pid.lstrip("0") in zeros)
    n_case = sum(1 for pid in unlabelled if pid.casefold() in cases)
    hints = []
    if n_zeros:
        hints.append(
            f"{n_zeros} of them match a sheet row once leading zeros are ignored: the sheet's "
            "IDs may have been turned into numbers (format the column as text)"
        )
    if n_case:
        hints.append(f"{n_case} of them match a sheet row except for upper/lower case")
    return "".join(h + ". " for h in hints)


def read_label_sheet(
    path: str | os.PathLike[str],
    patient_column: str,
    label_column: str,
    positive: str,
    negative: str,
) -> dict[str, int]:
    """Read a CSV (or .xlsx with openpyxl) label sheet into {PatientID: 1 positive / 0 negative}.

    Label values are matched case-insensitively, spaces around values are ignored, blank rows
    are skipped. Raises LabelError naming the sheet and the rows for: missing file or columns,
    empty sheet, empty patient ID, duplicated patient, label outside {positive, negative}.
    """
    path = Path(path)
    positive, negative = _label_values(positive, negative)
    rows = _sheet_rows(path, patient_column, label_column)
    pcol, lcol = _label_columns(path, rows[0], patient_column, label_column, positive, negative)
    wanted = {positive.casefold(): 1, negative.casefold(): 0}
    sheet = _read_rows(rows, pcol, lcol, wanted)
    problems = _problems(sheet, patient_column, label_column, positive, negative, wanted)
    if problems:
        raise LabelError(f"{path}: " + "\n  ".join(problems))
    labels = sheet.labels
    if not labels:
        raise LabelError(f"{path}: label sheet has a header but no patient rows")
    log.info(
        "label sheet: %d patients (%d %s, %d %s)",
        len(labels),
        sum(labels.values()),
        positive,
        len(labels) - sum(labels.values()),
        negative,
    )
    return labels


def _label_values(positive: str, negative: str) -> tuple[str, str]:
    """The configured label values, stripped; two different non-empty ones (else ConfigError)."""
    positive, negative = str(positive).strip(), str(negative).strip()
    if not positive or not negative or positive.casefold() == negative.casefold():
        raise ConfigError(
            f"studies.*.labels: positive {positive!r} and negative {negative!r} must be two "
            "different non-empty values"
        )
    return positive, negative


def _sheet_rows(path: Path, patient_column: str, label_column: str) -> list[list[str]]:
    """The sheet's rows as text cells, header first; LabelError if unreadable or empty."""
    if not path.is_file():
        raise LabelError(f"{path}: label sheet not found (config studies.*.input.labels)")
    if path.suffix.lower() in (".xls", ".ods", ".numbers"):
        raise LabelError(f"{path}: {path.suffix} sheets are not read; save the sheet as CSV")
    try:
        rows = _rows_xlsx(path) if path.suffix.lower() in (".xlsx", ".xlsm") else _rows_csv(path)
    except OSError as exc:
        raise LabelError(f"{path}: cannot read the label sheet ({exc.strerror or exc})") from None
    except csv.Error as exc:
        raise LabelError(f"{path}: not a readable CSV file ({exc})") from None
    if not rows or not any(c.strip() for c in rows[0]):
        raise LabelError(
            f"{path}: label sheet is empty; expected a header row with columns "
            f"{patient_column!r} and {label_column!r}"
        )
    return rows


def _label_columns(
    path: Path,
    header: list[str],
    patient_column: str,
    label_column: str,
    positive: str,
    negative: str,
) -> tuple[int, int]:
    """Indices of the patient and label columns in `header`; LabelError naming what is missing."""
    pcol, lcol = _find_column(header, patient_column), _find_column(header, label_column)
    missing = [c for c, i in ((patient_column, pcol), (label_column, lcol)) if i is None]
    if missing:
        values = {positive.casefold(), negative.casefold()}
        if any(h.strip().casefold() in values for h in header):
            # a sheet without a header row: its first row is a patient, do not print it
            raise LabelError(
                f"{path}: the first row holds a label value, not column names; add a header row "
                f"with columns {patient_column!r} and {label_column!r} (config studies.*.labels)"
            )
        found = [h.strip() for h in header if h.strip()]
        raise LabelError(
            f"{path}: missing column(s) {missing} (config studies.*.labels); the header row has "
            f"{found}"
        )
    assert pcol is not None and lcol is not None
    return pcol, lcol


@dataclass
class _SheetRows:
    """The patient rows of a sheet: labels read, and the rows that could not be."""

    labels: dict[str, int] = field(default_factory=dict)
    rows_of: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    empty_ids: list[str] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)  # "row N: 'value'" of labels not wanted
    bad_values: list[str] = field(default_factory=list)


def _read_rows(rows: list[list[str]], pcol: int, lcol: int, wanted: dict[str, int]) -> _SheetRows:
    """Read the rows after the header (numbered as a spreadsheet shows them: header = row 1)."""
    sheet = _SheetRows()
    for number, row in enumerate(rows[1:], start=2):  # spreadsheet numbering: header = row 1
        if not any(c.strip() for c in row):
            continue
        pid = row[pcol].strip() if pcol < len(row) else ""
        value = row[lcol].strip() if lcol < len(row) else ""
        if not pid:
            sheet.empty_ids.append(f"row {number}")
            continue
        sheet.rows_of[pid].append(number)
        label = wanted.get(value.casefold())
        if label is None:
            shown = value if len(value) <= 40 else value[:40] + "..."
            sheet.bad.append(f"row {number}: {shown!r}" if value else f"row {number}: empty")
            sheet.bad_values.append(value)
            continue
        sheet.labels[pid] = label
    return sheet


def _problems(
    sheet: _SheetRows,
    patient_column: str,
    label_column: str,
    positive: str,
    negative: str,
    wanted: dict[str, int],
) -> list[str]:
    """What is wrong with the rows, one text per kind: never a PatientID."""
    problems: list[str] = []
    if sheet.empty_ids:
        problems.append(f"no {patient_column!r} in " + _listing(sheet.empty_ids))
    duplicates = [r for r in sheet.rows_of.values() if len(r) > 1]
    if duplicates:
        groups = [
            " and ".join(str(n) for n in r) if len(r) == 2 else ", ".join(map(str, r))
            for r in duplicates
        ]
        problems.append(
            "the same patient appears in rows "
            + _listing(groups)
            + "; expected one row per patient"
        )
    if sheet.bad:
        problems.append(
            _bad_labels_problem(sheet, patient_column, label_column, positive, negative, wanted)
        )
    return problems


def _bad_labels_problem(
    sheet: _SheetRows,
    patient_column: str,
    label_column: str,
    positive: str,
    negative: str,
    wanted: dict[str, int],
) -> str:
    """The problem text of rows whose label is neither value (values hidden if they may be IDs)."""
    bad, labels, rows_of = sheet.bad, sheet.labels, sheet.rows_of
    rows_with_label = len(bad) + len(labels)
    not_empty = [v for v in sheet.bad_values if v]
    # mostly not labels, and mostly different values (as IDs are, and typos are not)
    if 2 * len(not_empty) > rows_with_label and 2 * len(set(not_empty)) > len(not_empty):
        # most of the column is not labels: a misnamed or swapped column, whose values may
        # be PatientIDs; name the rows, never the values
        ids_are_labels = sum(1 for pid in rows_of if pid.casefold() in wanted)
        swapped = (
            f"; its {patient_column!r} column holds the label values: are the two column "
            "names swapped?"
            if 2 * ids_are_labels > len(rows_of)
            else "; is it the right column (config studies.*.labels.label_column)?"
        )
        return (
            f"{label_column!r} must be {positive!r} or {negative!r}, but {len(bad)} of "
            f"{rows_with_label} rows hold something else (values not shown: they may be "
            f"IDs){swapped} Rows: " + _listing([b.split(":")[0] for b in bad])
        )
    return f"{label_column!r} must be {positive!r} or {negative!r}: " + _listing(bad)


def unlabelled_patients(
    headers: Sequence[DicomHeader], labels: dict[str, int]
) -> dict[str, list[DicomHeader]]:
    """{PatientID: its files} of the patients with images but no row in the label sheet."""
    table = {str(k).strip() for k in labels}
    out: dict[str, list[DicomHeader]] = defaultdict(list)
    for header in headers:
        pid = header.patient_id.strip()
        if pid not in table:
            out[pid].append(header)
    return dict(out)


def join_labels(
    headers: Sequence[DicomHeader],
    labels: dict[str, int],
    source: str | os.PathLike[str],
    key: bytes | None = None,
) -> dict[str, int]:
    """Return {PatientID: label} for every patient that has images.

    Raises LabelError if a patient with images has no label (counted and listed by pseudonym
    under `key`, default `deid.get_key()`). Sheet patients without images only get a logged
    warning: sheets often list more patients than were exported.
    """
    files_of: dict[str, int] = defaultdict(int)
    for header in headers:
        files_of[header.patient_id.strip()] += 1
    table = {str(k).strip(): v for k, v in labels.items()}
    unlabelled = [pid for pid in files_of if pid not in table]
    if unlabelled:
        key = get_key() if key is None else key
        names = sorted(
            f"{patient_pseudonym(pid, key)} ({files_of[pid]} files)" for pid in unlabelled
        )
        raise LabelError(
            f"{source}: {len(unlabelled)} of {len(files_of)} patients with images have no row in "
            f"the label sheet ({sum(files_of[p] for p in unlabelled)} files); by pseudonym: "
            f"{_listing(names)}. {_near_miss_hint(unlabelled, table)}"
            "Add their rows, or remove their files from the input folder"
        )
    without_images = sum(1 for pid in table if pid not in files_of)
    if without_images:
        log.warning(
            "%s: %d of %d label-sheet patients have no images; they are ignored",
            source,
            without_images,
            len(table),
        )
    joined = {pid: int(table[pid]) for pid in files_of}
    for value, name in ((1, "positive"), (0, "negative")):
        if value not in joined.values():
            log.warning("%s: no %s patient has images", source, name)
    return joined
