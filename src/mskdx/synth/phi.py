"""Fake but realistic protected health information for the synthetic cohorts.

Names, IDs, dates, institutions and staff are drawn from seeded streams, so a patient has the same
identity in every file and the same seed always gives the same people. None of them is real.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from mskdx.synth.common import rng_for

FEMALE_NAMES = (
    "JANE",
    "MARY",
    "ANNA",
    "LINDA",
    "SARAH",
    "EMMA",
    "OLIVIA",
    "SOFIA",
    "ELENA",
    "MEI",
    "YUKI",
    "FATMA",
    "AYSE",
    "ZEYNEP",
    "LI",
    "HANNAH",
    "CLARA",
    "NORA",
    "LAURA",
    "JULIA",
    "GRACE",
    "CHLOE",
    "IRIS",
    "MAYA",
    "LENA",
    "RUTH",
    "PAULA",
    "ROSA",
    "XIAOLING",
    "ELIF",
)
MALE_NAMES = (
    "JOHN",
    "JAMES",
    "ROBERT",
    "DAVID",
    "MICHAEL",
    "PETER",
    "THOMAS",
    "DANIEL",
    "MARK",
    "PAUL",
    "WEI",
    "JUN",
    "HAO",
    "MEHMET",
    "AHMET",
    "MUSTAFA",
    "EMRE",
    "LUCAS",
    "HENRY",
    "OMAR",
    "ALEX",
    "VICTOR",
    "SAMUEL",
    "FELIX",
    "OSCAR",
    "IVAN",
    "KENJI",
    "TOMAS",
    "NIKOLA",
    "ARJUN",
)
LAST_NAMES = (
    "DOE",
    "ROE",
    "SMITH",
    "JOHNSON",
    "BROWN",
    "TAYLOR",
    "MILLER",
    "WILSON",
    "MOORE",
    "CLARK",
    "LEWIS",
    "WALKER",
    "HALL",
    "YOUNG",
    "KING",
    "WRIGHT",
    "GREEN",
    "BAKER",
    "ADAMS",
    "NELSON",
    "WANG",
    "ZHANG",
    "LIU",
    "CHEN",
    "YANG",
    "ZHAO",
    "HUANG",
    "ZHOU",
    "WU",
    "XU",
    "YILMAZ",
    "KAYA",
    "DEMIR",
    "SAHIN",
    "CELIK",
    "YILDIZ",
    "AYDIN",
    "OZTURK",
    "ARSLAN",
    "DOGAN",
    "MUELLER",
    "SCHMIDT",
    "ROSSI",
    "GARCIA",
    "MARTIN",
    "BERNARD",
    "NOVAK",
    "HORVATH",
    "SILVA",
    "COSTA",
)
STAFF_LAST = (
    "HOUSE",
    "GREY",
    "SHEPHERD",
    "KILDARE",
    "WELBY",
    "QUINN",
    "CARTER",
    "ROSS",
    "BENTON",
    "LEWIS",
    "ROMANO",
    "CORDAY",
    "KOVAC",
    "PRATT",
    "RASGOTRA",
    "BARNETT",
    "GATES",
    "MORRIS",
)
STAFF_FIRST = ("A", "B", "C", "D", "E", "F", "G", "H", "J", "K", "L", "M", "N", "P", "R", "S")

INSTITUTIONS = {
    "gout": (
        ("LAKESIDE UNIVERSITY HOSPITAL", "LUH", "12 Harbour Road, Seaport 26600"),
        ("NORTH BAY RHEUMATOLOGY CENTRE", "NBRC", "3 Pine Street, Seaport 26611"),
    ),
    "olt": (
        ("HILLVIEW ORTHOPAEDIC HOSPITAL", "HOH", "88 Summit Avenue, Hillview 06510"),
        ("HILLVIEW IMAGING CENTER", "HIC", "5 Valley Lane, Hillview 06520"),
    ),
}


@dataclass(frozen=True)
class Identity:
    """One fake patient as every file of theirs names them."""

    patient_id: str
    name: str  # DICOM PN, FAMILY^GIVEN
    sex: str  # M | F
    birth_date: dt.date
    study_date: dt.date
    study_time: str  # HHMMSS.ffffff
    accession: str
    study_id: str
    institution: str
    institution_short: str
    address: str
    referring: str
    performing: str
    operator: str

    @property
    def age(self) -> str:
        years = self.study_date.year - self.birth_date.year
        if (self.study_date.month, self.study_date.day) < (
            self.birth_date.month,
            self.birth_date.day,
        ):
            years -= 1
        return f"{years:03d}Y"


def _staff(rng: np.random.Generator) -> str:
    return f"{STAFF_LAST[rng.integers(len(STAFF_LAST))]}^{STAFF_FIRST[rng.integers(16)]}"


def make_identities(
    study: str,
    n: int,
    seed: int,
    *,
    male_share: float,
    ages: tuple[int, int],
    dates: tuple[dt.date, dt.date],
    id_digits: int,
) -> list[Identity]:
    """Return `n` distinct fake patients for `study`."""
    rng = rng_for(seed, study, "identities")
    span = (dates[1] - dates[0]).days
    ids = rng.choice(9 * 10 ** (id_digits - 1), size=n, replace=False) + 10 ** (id_digits - 1)
    accessions = rng.choice(9_000_000, size=n, replace=False) + 1_000_000
    staff_rng = rng_for(seed, study, "staff")
    referrers = [_staff(staff_rng) for _ in range(6)]
    performers = [_staff(staff_rng) for _ in range(4)]
    operators = [_staff(staff_rng) for _ in range(5)]
    people: list[Identity] = []
    used: set[str] = set()
    for i in range(n):
        sex = "M" if rng.random() < male_share else "F"
        given = FEMALE_NAMES if sex == "F" else MALE_NAMES
        # Distinct names while the lists allow; then middle initials; then (as in real
        # cohorts) namesakes.
        for attempt in range(60):
            name = f"{LAST_NAMES[rng.integers(len(LAST_NAMES))]}^{given[rng.integers(len(given))]}"
            if attempt >= 30:
                name += f"^{STAFF_FIRST[rng.integers(len(STAFF_FIRST))]}"
            if name not in used:
                break
        used.add(name)
        study_date = dates[0] + dt.timedelta(days=int(rng.integers(0, span + 1)))
        age_days = int(rng.integers(ages[0] * 365, ages[1] * 365))
        birth = study_date - dt.timedelta(days=age_days)
        seconds = int(rng.integers(8 * 3600, 18 * 3600))
        time = f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"
        time += f".{int(rng.integers(0, 1000)) * 1000:06d}"
        inst = INSTITUTIONS[study][int(rng.random() < 0.2)]
        people.append(
            Identity(
                patient_id=f"MRN{int(ids[i]):0{id_digits}d}",
                name=name,
                sex=sex,
                birth_date=birth,
                study_date=study_date,
                study_time=time,
                accession=f"A{study_date:%y}{int(accessions[i]):07d}",
                study_id=f"{int(rng.integers(1000, 99999))}",
                institution=inst[0],
                institution_short=inst[1],
                address=inst[2],
                referring=referrers[rng.integers(len(referrers))],
                performing=performers[rng.integers(len(performers))],
                operator=operators[rng.integers(len(operators))],
            )
        )
    return people


def add_patient_study(ds, who: Identity) -> None:
    """Set the patient and study attributes (PHI included) of `who` on `ds`."""
    date = f"{who.study_date:%Y%m%d}"
    ds.PatientName = who.name
    ds.PatientID = who.patient_id
    ds.IssuerOfPatientID = who.institution_short
    ds.PatientBirthDate = f"{who.birth_date:%Y%m%d}"
    ds.PatientSex = who.sex
    ds.PatientAge = who.age
    ds.StudyDate = date
    ds.SeriesDate = date
    ds.AcquisitionDate = date
    ds.ContentDate = date
    ds.StudyTime = who.study_time
    ds.AccessionNumber = who.accession
    ds.StudyID = who.study_id
    ds.InstitutionName = who.institution
    ds.InstitutionAddress = who.address
    ds.ReferringPhysicianName = who.referring
    ds.PerformingPhysicianName = who.performing
    ds.OperatorsName = who.operator
