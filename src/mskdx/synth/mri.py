"""Synthetic ankle MRI cohort (OLT study): coronal and sagittal T1 and fat-suppressed T2 slices.

Each slice shows the tibial plafond, the talar dome with trabecular marrow, the joint cartilage,
the malleoli (coronal) or calcaneus, navicular, Achilles tendon and Kager's fat (sagittal), fat,
muscle and tendons, with Rician noise, a coil bias field and a blurred point spread. An
osteochondral lesion (patients only, on every one of their slices) is a focal subchondral defect
at the talar dome: low signal on T1, fluid-bright with a dark sclerotic rim on T2, with marrow
oedema around it; the defect and rim form the mask. Confounders in both classes (joint effusion,
marrow islands and cysts away from the dome, shoulder partial volume, fat-suppression failure) grow
with `difficulty` and are stronger on T2, as the paper found T2 harder.

Pixels are stored as 12- or 16-bit, unsigned or signed, with RescaleSlope/RescaleIntercept that
map them back to the same MR intensity scale (e.g. slope 2, intercept -1024).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.uid import UID
from scipy import ndimage
from skimage.transform import resize

from mskdx.errors import ConfigError
from mskdx.synth.common import (
    SYNTAX_CYCLE,
    CohortWriter,
    Encoder,
    check_fraction,
    check_int,
    make_uid,
    new_file_dataset,
    rng_for,
    safe_name,
    spread_counts,
)
from mskdx.synth.phi import Identity, add_patient_study, make_identities

log = logging.getLogger(__name__)

SEQUENCES = ("T1", "T2")
ORIENTATIONS = ("COR", "SAG")
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4.1"

#: How stored values map to MR intensity: (PixelRepresentation, BitsStored, slope, intercept).
REPRESENTATIONS: dict[str, tuple[int, int, float, float]] = {
    "u12": (0, 12, 1.0, 0.0),
    "u12_scaled": (0, 12, 2.0, -1024.0),
    "s12": (1, 12, 1.0, 2048.0),
    "u16": (0, 16, 1.0, 0.0),
    "s16": (1, 16, 0.5, -1000.0),
}
_REPRESENTATION_CYCLE = ("u12", "u12", "s12", "u12", "u12_scaled", "u16", "u12", "s16")

_SCANNERS = (
    # manufacturer, model, field strength, naming style
    ("SIEMENS", "MAGNETOM Aera", 1.5, "siemens"),
    ("SIEMENS", "MAGNETOM Vida", 3.0, "siemens"),
    ("GE MEDICAL SYSTEMS", "SIGNA Artist", 1.5, "ge"),
    ("Philips", "Ingenia", 3.0, "philips"),
)
_SERIES_NAMES = {
    "siemens": {"T1": "t1_tse_{o}", "T2": "t2_tse_fs_{o}"},
    "ge": {"T1": "{O} T1 FSE", "T2": "{O} T2 FSE FS"},
    "philips": {"T1": "T1W_TSE_{O}", "T2": "T2W_SPAIR_{O}"},
}
_ORIENT_WORDS = {"COR": ("cor", "COR"), "SAG": ("sag", "SAG")}


# --------------------------------------------------------------------------------------------
# Plan
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OltFile:
    """One DICOM file: one slice, or (Enhanced MR) a stack of adjacent slices."""

    sequence: str  # T1 | T2
    orientation: str  # COR | SAG
    slices: tuple[float, ...]  # slice offsets relative to the lesion/dome centre, -1..1
    slice_numbers: tuple[int, ...]
    transfer_syntax: str
    representation: str

    @property
    def frames(self) -> int:
        return len(self.slices)


@dataclass(frozen=True)
class OltSubject:
    index: int
    identity: Identity
    diagnosis: str  # patient | healthy
    files: tuple[OltFile, ...]

    @property
    def patient_id(self) -> str:
        return self.identity.patient_id

    def images(self, sequence: str | None = None) -> int:
        """Images (frames) of this subject, of one sequence or all."""
        return sum(f.frames for f in self.files if sequence in (None, f.sequence))


@dataclass(frozen=True)
class OltPlan:
    subjects: tuple[OltSubject, ...]

    @property
    def images(self) -> int:
        return sum(s.images() for s in self.subjects)

    @property
    def files(self) -> int:
        return sum(len(s.files) for s in self.subjects)

    def count(self, sequence: str, diagnosis: str) -> int:
        """Images (frames) of `sequence` over the subjects with `diagnosis`."""
        return sum(s.images(sequence) for s in self.subjects if s.diagnosis == diagnosis)


def _check_images(images: Mapping) -> dict[str, dict[str, int]]:
    if not isinstance(images, Mapping) or not images:
        raise ConfigError(
            f"synthetic.olt.images = {images!r}; expected {{T1: {{patient: n, "
            "healthy: n}}, T2: {...}}"
        )
    out: dict[str, dict[str, int]] = {}
    for name, counts in images.items():
        seq = str(name).upper()
        if seq not in SEQUENCES:
            raise ConfigError(f"synthetic.olt.images.{name}: unknown sequence; expected T1 or T2")
        if not isinstance(counts, Mapping) or set(counts) != {"patient", "healthy"}:
            raise ConfigError(
                f"synthetic.olt.images.{name} = {counts!r}; expected keys patient and healthy"
            )
        out[seq] = {k: check_int(f"olt.images.{name}.{k}", v, 1) for k, v in counts.items()}
    return out


def _slice_plan(k: int, rng: np.random.Generator) -> tuple[tuple[float, ...], tuple[int, ...]]:
    # k adjacent (or every other) slices around the dome centre, within +-0.7 of its half-extent.
    stride = 1 if k > 2 or rng.random() < 0.6 else 2
    step = min(0.3 * stride, 1.4 / max(k - 1, 1))
    centre = rng.uniform(-0.15, 0.15)
    offsets = tuple(float(np.clip(centre + (j - (k - 1) / 2) * step, -0.7, 0.7)) for j in range(k))
    first = int(rng.integers(7, 11)) - (k - 1) // 2 * stride
    numbers = tuple(first + j * stride for j in range(k))
    return offsets, numbers


def plan_olt(
    *,
    subjects_patient: int,
    subjects_healthy: int,
    images: Mapping[str, Mapping[str, int]],
    seed: int = 1,
) -> OltPlan:
    """Plan the OLT cohort without rendering: subjects, series, slices, encodings.

    Images are counted in frames (a multi-frame Enhanced MR file of k slices counts k), so
    `plan.count(seq, diagnosis)` equals `images[seq][diagnosis]` exactly. Every subject gets at
    least one image of each sequence.
    """
    sp = check_int("olt.subjects_patient", subjects_patient, 1)
    sh = check_int("olt.subjects_healthy", subjects_healthy, 1)
    counts_cfg = _check_images(images)
    seed = check_int("seed", seed, 0)
    n = sp + sh
    rng = rng_for(seed, "olt", "plan")
    diagnoses = np.array(["patient"] * sp + ["healthy"] * sh)[rng.permutation(n)]
    people = make_identities(
        "olt",
        n,
        seed,
        male_share=0.55,
        ages=(16, 68),
        dates=(dt.date(2019, 1, 1), dt.date(2025, 8, 31)),
        id_digits=7,
    )
    per_subject = np.zeros((n, len(SEQUENCES)), dtype=np.int64)
    for diagnosis in ("patient", "healthy"):
        members = np.flatnonzero(diagnoses == diagnosis)
        for s, seq in enumerate(SEQUENCES):
            if seq not in counts_cfg:
                continue
            total = counts_cfg[seq][diagnosis]
            if total < members.size:
                raise ConfigError(
                    f"synthetic.olt.images.{seq}.{diagnosis} = {total}: fewer than the "
                    f"{members.size} {diagnosis} subjects; expected >= 1 image per subject"
                )
            per_subject[members, s] = spread_counts(total, members.size, rng, jitter=2)
    # Multi-frame stacks: about one per 40 subjects, where a subject has >= 2 slices of a sequence.
    pairs = np.argwhere(per_subject >= 2)
    n_mf = min(max(1, round(n / 40)), len(pairs))
    if n_mf == 0:
        log.warning("olt: every subject has one image per sequence; no multi-frame file")
    chosen = (
        {tuple(pairs[i]) for i in rng.choice(len(pairs), size=n_mf, replace=False)}
        if n_mf
        else set()
    )

    subjects = []
    index = 0
    for i in range(n):
        files = []
        for s, seq in enumerate(SEQUENCES):
            k = int(per_subject[i, s])
            if k == 0:
                continue
            if (i, s) in chosen and k == 2:
                split = {"COR": 2, "SAG": 0} if rng.random() < 0.5 else {"COR": 0, "SAG": 2}
            elif k == 1:
                split = {"COR": 1, "SAG": 0} if rng.random() < 0.5 else {"COR": 0, "SAG": 1}
            else:
                cor = 1 + int(rng.binomial(k - 2, 0.5))
                split = {"COR": cor, "SAG": k - cor}
            stacked = None
            if (i, s) in chosen:
                stacked = max(ORIENTATIONS, key=lambda o: (split[o], o == "COR"))
            for orientation in ORIENTATIONS:
                m = split[orientation]
                if m == 0:
                    continue
                offsets, numbers = _slice_plan(m, rng)
                groups = [list(range(m))] if orientation == stacked else [[j] for j in range(m)]
                for group in groups:
                    representation = _REPRESENTATION_CYCLE[index % len(_REPRESENTATION_CYCLE)]
                    if len(group) > 1:
                        representation = "u12"
                    files.append(
                        OltFile(
                            seq,
                            orientation,
                            tuple(offsets[j] for j in group),
                            tuple(numbers[j] for j in group),
                            str(SYNTAX_CYCLE[index % len(SYNTAX_CYCLE)]),
                            representation,
                        )
                    )
                    index += 1
        subjects.append(OltSubject(i, people[i], str(diagnoses[i]), tuple(files)))
    return OltPlan(tuple(subjects))


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------

# Tissue signal (fraction of the scanner scale) on T1 and fat-suppressed T2.
_SIGNAL = {
    "T1": dict(
        skin=0.5,
        fat=1.0,
        muscle=0.36,
        tendon=0.06,
        marrow=0.82,
        cortex=0.04,
        cartilage=0.42,
        fluid=0.24,
        lesion=0.28,
        rim=0.08,
    ),
    "T2": dict(
        skin=0.3,
        fat=0.13,
        muscle=0.27,
        tendon=0.05,
        marrow=0.19,
        cortex=0.03,
        cartilage=0.48,
        fluid=0.95,
        lesion=0.88,
        rim=0.05,
    ),
}


def _subject_anatomy(subject: OltSubject, seed: int) -> dict:
    rng = rng_for(seed, "olt", "anatomy", subject.index)
    scanner = _SCANNERS[int(rng.integers(len(_SCANNERS)))]
    medial = rng.random() < 0.62
    return dict(
        scanner=scanner,
        flip=bool(rng.random() < 0.5),  # left/right ankle
        scale=rng.uniform(0.92, 1.08),
        talus_w=rng.uniform(0.27, 0.32),
        talus_h=rng.uniform(0.21, 0.25),
        cart=rng.uniform(0.011, 0.016),
        fov_mm=rng.uniform(130, 160),
        level={"T1": rng.uniform(1500, 2600), "T2": rng.uniform(900, 1700)},
        warp_seed=int(rng.integers(2**31)),
        # lesion (used for patients only)
        les_cor_u=(-1 if medial else 1) * rng.uniform(0.35, 0.7),
        les_sag_u=rng.uniform(-0.45, 0.45),
        les_a=rng.uniform(0.05, 0.1),
        les_b=rng.uniform(0.04, 0.075),
        fragment=bool(rng.random() < 0.35),
        contrast=rng.uniform(0.8, 1.1),
    )


def _super(a, b, cx, cy, rx, ry, p=2.0, rot=0.0):
    """Approximate signed distance to a superellipse (negative inside)."""
    x, y = a - cx, b - cy
    if rot:
        c, s = np.cos(rot), np.sin(rot)
        x, y = c * x + s * y, -s * x + c * y
    r = (np.abs(x / rx) ** p + np.abs(y / ry) ** p) ** (1.0 / p)
    return (r - 1.0) * min(rx, ry)


def _dome_top(a, uc, vc, rx, ry, p):
    """Upper boundary v(u) of a superellipse, clamped to 93% of its half-width."""
    t = np.clip(np.abs((a - uc) / rx), 0, 0.93)
    return vc - ry * (1 - t**p) ** (1.0 / p)


def _render_slice(
    anatomy: dict,
    sequence: str,
    orientation: str,
    offset: float,
    lesion: bool,
    n: int,
    difficulty: float,
    rng: np.random.Generator,
) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Render one slice at n x n: MR intensity (float) and lesion mask."""
    d = difficulty
    sig = _SIGNAL[sequence]
    px = 2.0 / n
    g = (np.arange(n, dtype=np.float32) + 0.5) * px - 1.0
    V, U = np.meshgrid(g, g, indexing="ij")
    # Pose: small rotation, shift and zoom per image; subject size; left/right ankle.
    rot = rng.uniform(-0.07, 0.07)
    zoom = anatomy["scale"] * rng.uniform(0.95, 1.05)
    tu, tv = rng.uniform(-0.06, 0.06, 2)
    c, s = np.cos(rot), np.sin(rot)
    a = (c * (U - tu) + s * (V - tv)) / zoom
    b = (-s * (U - tu) + c * (V - tv)) / zoom
    if orientation == "COR" and anatomy["flip"]:
        a = -a
    wr = np.random.default_rng(anatomy["warp_seed"] + (orientation == "SAG"))
    for arr in (a, b):
        arr += 0.02 * ndimage.zoom(wr.normal(0, 1, (6, 6)), n / 6, order=3)[:n, :n]
    taper = 1 - 0.08 * offset**2  # structures narrow away from the centre slice

    img = np.zeros((n, n), dtype=np.float32)
    mask = np.zeros((n, n), dtype=bool)

    def soft(F):
        return np.clip(0.5 - F / px, 0.0, 1.0).astype(np.float32)

    def paint(m, value):
        nonlocal img
        img = img * (1 - m) + value * m

    tex = rng.normal(0, 1, (n, n)).astype(np.float32)
    trab = ndimage.gaussian_filter(tex, 0.7 * n / 256) - ndimage.gaussian_filter(tex, 2.0 * n / 256)
    trab /= max(float(trab.std()), 1e-6)
    musc = ndimage.gaussian_filter(rng.normal(0, 1, (n, n)).astype(np.float32), (0.6, 3.0))
    musc /= max(float(musc.std()), 1e-6)

    tw, th, cart = anatomy["talus_w"] * taper, anatomy["talus_h"], anatomy["cart"]
    uc, vd = 0.0, -0.02
    jsw = 2 * cart + 0.004
    if orientation == "COR":
        p_t = 2.5
        vc = vd + th
        F_env = _super(a, b, uc + 0.02, vd + 0.05, 0.64 * taper + 0.02, 1.35, 2.6)
        F_talus = _super(a, b, uc, vc, tw, th, p_t)
        top = _dome_top(a, uc, vc, tw, th, p_t)
        plafond = top - jsw
        w_tib = 0.21 + 0.12 / (1 + np.exp(-(b - (vd - 0.28)) / 0.06))
        F_tibia = np.maximum(b - plafond, np.abs(a - (uc - 0.02)) - w_tib)
        F_tibia = np.minimum(F_tibia, _super(a, b, uc - tw - 0.065, vd + 0.07, 0.055, 0.16, 2.2))
        F_tibia = np.maximum(F_tibia, -(b + 1.3))
        F_fibula = np.minimum(
            _super(a, b, uc + tw + 0.085, vd + 0.04, 0.068, 0.3, 2.2),
            _super(a, b, uc + tw + 0.11, vd - 0.55, 0.048, 0.45, 2.0),
        )
        F_calc = _super(a, b, uc + 0.04, vc + th + 0.21, 0.34, 0.17, 2.3)
        bones = [F_tibia, F_fibula, F_talus, F_calc]
        tendons = [
            _super(a, b, uc - tw - 0.16, vd + 0.0, 0.032, 0.026),
            _super(a, b, uc - tw - 0.13, vd + 0.09, 0.026, 0.022),
            _super(a, b, uc + tw + 0.2, vd + 0.12, 0.03, 0.024),
            _super(a, b, uc + tw + 0.17, vd + 0.18, 0.026, 0.02),
        ]
        fat_pads = [_super(a, b, uc - tw - 0.1, vd + 0.3, 0.07, 0.1)]
        lesion_u = uc + anatomy["les_cor_u"] * tw
    else:
        uc = -0.06  # leaves room for the Achilles tendon and the heel
        p_t = 2.2
        vc = vd + th * 0.95
        F_env = np.minimum(
            _super(a, b, uc + 0.1, vd - 0.65, 0.5 * taper + 0.02, 1.0, 4.0),
            _super(a, b, uc - 0.38, vd + 0.42, 1.0, 0.42, 3.0),
        )
        F_talus = np.minimum(
            _super(a, b, uc, vc, tw * 1.05, th * 0.95, p_t),
            _super(a, b, uc - 0.33, vd + 0.27, 0.2, 0.115, 2.0, rot=0.25),
        )
        top = _dome_top(a, uc, vc, tw * 1.05, th * 0.95, p_t)
        plafond = top - jsw
        F_tibia = np.maximum(b - plafond, np.abs(a - (uc + 0.03)) - (0.22 + 0.05 * (b > vd - 0.3)))
        F_tibia = np.maximum(F_tibia, -(b + 1.3))
        F_calc = np.minimum(
            _super(a, b, uc + 0.12, vd + 0.6, 0.47, 0.2, 2.4, rot=-0.12),
            _super(a, b, uc + 0.45, vd + 0.5, 0.14, 0.17, 2.2),
        )
        F_nav = _super(a, b, uc - 0.6, vd + 0.31, 0.09, 0.12, 2.2)
        bones = [F_tibia, F_talus, F_calc, F_nav]
        achilles = np.maximum(np.abs(a - (uc + 0.55 + 0.05 * (b - vd))) - 0.035, b - (vd + 0.5))
        tendons = [
            achilles,
            np.maximum(
                np.abs(a - (uc - 0.3 - 0.25 * np.clip(b - vd, 0, None))) - 0.022, b - (vd + 0.2)
            ),
            np.maximum(np.abs(a - (uc + 0.3)) - 0.02, np.abs(b - (vd - 0.05)) - 0.25),
        ]
        fat_pads = [
            _super(a, b, uc + 0.42, vd - 0.05, 0.1, 0.33, 2.0),  # Kager's fat
            _super(a, b, uc + 0.1, vd + 0.84, 0.45, 0.07, 2.5),  # heel pad
        ]
        lesion_u = uc + anatomy["les_sag_u"] * tw

    # Soft tissue: skin, subcutaneous fat, muscle; fat pads; tendons.
    env = soft(F_env)
    paint(env, sig["skin"])
    paint(soft(F_env + 0.012), sig["fat"] * (1 + 0.04 * musc))
    paint(soft(F_env + 0.06), sig["muscle"] * (1 + 0.12 * musc))
    for F in fat_pads:
        paint(soft(F) * env, sig["fat"] * (1 + 0.05 * musc))
    for F in tendons:
        paint(soft(F) * soft(F_env + 0.02), sig["tendon"])
    # Bones: cortex rim, trabecular marrow.
    ct = 0.012
    for F in bones:
        paint(soft(F), sig["cortex"])
        paint(soft(F + ct), sig["marrow"] * (1 + 0.1 * trab))
    # Joint: cartilage on both surfaces with a thin fluid line between.
    span = np.abs(a - uc) < tw * 0.9
    joint = (b > plafond - 0.002) & (b < top + 0.002) & span
    paint(joint.astype(np.float32), sig["cartilage"])
    line = (np.abs(b - (plafond + top) / 2) < 0.0025) & span
    paint(line.astype(np.float32) * 0.5, sig["fluid"])

    # Confounders (both classes); stronger on T2.
    p = (0.06 + 0.5 * d) * (1.3 if sequence == "T2" else 0.8)
    if rng.random() < p:  # joint effusion: recess/gutter fluid, plus a thin layer over the dome
        if orientation == "SAG":
            rec = np.minimum(
                _super(a, b, uc - tw * 0.95, vd + 0.01, 0.05 + 0.04 * d, 0.03),
                _super(a, b, uc + tw * 0.95, vd + 0.03, 0.05 + 0.04 * d, 0.03),
            )
        else:
            rec = np.minimum(
                _super(a, b, uc - tw - 0.01, vd + 0.06, 0.015, 0.06),
                _super(a, b, uc + tw + 0.01, vd + 0.06, 0.015, 0.06),
            )
        amount = rng.uniform(0.5, 1.0)
        paint(soft(rec) * amount, sig["fluid"])
        paint((line * amount * (0.3 + 0.5 * d)).astype(np.float32), sig["fluid"])
    if sequence == "T2" and rng.random() < p:  # fluid pocket / bright focus at the dome surface
        fu = uc + rng.uniform(-0.75, 0.75) * tw
        fv = float(_dome_top(np.float32(fu), uc, vc, tw, th, p_t))
        fr = rng.uniform(0.02, 0.045)
        deep = (
            rng.uniform(-0.3, 0.6) * fr
        )  # from just above the cartilage into the subchondral bone
        blob = soft(_super(a, b, fu, fv + deep, fr * rng.uniform(1.0, 1.8), fr))
        paint(blob * rng.uniform(0.35, 0.75) * (0.5 + 0.5 * d), sig["fluid"])
    if rng.random() < p:  # marrow island / small cyst away from the dome
        where = rng.choice(["tibia", "talus_low", "calc"])
        cx = uc + rng.uniform(-0.12, 0.12)
        cy = {
            "tibia": vd - rng.uniform(0.1, 0.3),
            "talus_low": vd + th * rng.uniform(1.2, 1.6),
            "calc": vd + 0.55,
        }[where]
        r = rng.uniform(0.02, 0.04)
        blob = soft(_super(a, b, cx, cy, r, r * rng.uniform(0.7, 1.2)))
        value = sig["lesion"] if rng.random() < 0.5 else sig["marrow"] * 0.6
        paint(blob * rng.uniform(0.5, 0.9), value)
    if rng.random() < p * 0.7:  # partial volume / shoulder darkening at the dome edge
        su = uc + (1 if rng.random() < 0.5 else -1) * tw * rng.uniform(0.75, 0.9)
        sv = float(_dome_top(np.float32(su), uc, vc, tw, th, p_t))
        paint(soft(_super(a, b, su, sv + 0.02, 0.035, 0.02)) * 0.5, sig["cortex"] * 3)
    if sequence == "T2" and rng.random() < p * 0.6:  # fat-suppression failure at the periphery
        edge = np.clip(-F_env / 0.15, 0, 1)
        side = np.clip((a * rng.choice([-1, 1]) - 0.2) / 0.4, 0, 1)
        img = img + (1 - edge) * side * env * 0.35 * (img < 0.3 * sig["fluid"]) * img

    if lesion:
        size = (1 - 0.35 * d) * np.sqrt(max(0.2, 1 - 0.9 * offset**2))
        la, lb = anatomy["les_a"] * size, anatomy["les_b"] * size
        lt = float(_dome_top(np.float32(lesion_u), uc, vc, tw, th, p_t))
        lv = lt + lb * 0.55
        F_les = _super(a, b, lesion_u, lv, la, lb, 2.0)
        talus_in = soft(F_talus)
        region = np.maximum(talus_in, (joint & (b > plafond + cart)).astype(np.float32))
        contrast = anatomy["contrast"] * (1 - 0.55 * d) * (0.6 if sequence == "T2" else 1.0)
        # Oedema around the defect.
        r_e = np.sqrt(((a - lesion_u) / (la * 2.4)) ** 2 + ((b - lv) / (lb * 2.6)) ** 2)
        oedema = np.clip(1 - r_e, 0, 1) * talus_in * contrast
        if sequence == "T1":
            img = img * (1 - 0.3 * oedema)
        else:
            img = img + 0.35 * sig["marrow"] * 1.6 * oedema
        rim = soft(F_les - 0.012 * size) * region
        core = soft(F_les) * region
        marrow = sig["marrow"]
        paint(rim, marrow + (sig["rim"] - marrow) * contrast)
        paint(core, marrow + (sig["lesion"] - marrow) * contrast * (1 + 0.1 * trab))
        if anatomy["fragment"]:
            frag = soft(_super(a, b, lesion_u, lv - lb * 0.25, la * 0.45, lb * 0.35)) * core
            paint(frag, marrow * (0.8 + 0.1 * trab))
        mask = (rim > 0.5) | (core > 0.5)

    # Scanner: point spread, coil bias field, Rician noise.
    img = ndimage.gaussian_filter(img, rng.uniform(0.45, 0.8) * n / 256)
    bias = 1 + rng.uniform(-0.12, 0.12) * U + rng.uniform(-0.12, 0.12) * V - 0.1 * (U**2 + V**2)
    level = anatomy["level"][sequence] * rng.uniform(0.9, 1.1)
    sigma = level * rng.uniform(0.012, 0.03) * (1.2 if sequence == "T2" else 1.0)
    clean = img * bias * level
    noisy = np.hypot(clean + sigma * rng.normal(0, 1, (n, n)), sigma * rng.normal(0, 1, (n, n)))
    return noisy.astype(np.float32), mask


def render_olt_file(
    f: OltFile,
    subject: OltSubject,
    *,
    size: int = 256,
    difficulty: float = 0.5,
    seed: int = 1,
    file_index: int = 0,
) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
    """Render one planned file: MR intensity (F, size, size) and masks (F, size, size)."""
    anatomy = _subject_anatomy(subject, seed)
    rng = rng_for(seed, "olt", "file", subject.index, file_index)
    n = max(size, 256)
    values = np.zeros((f.frames, size, size), dtype=np.float32)
    masks = np.zeros((f.frames, size, size), dtype=np.uint8)
    for k, offset in enumerate(f.slices):
        img, mask = _render_slice(
            anatomy,
            f.sequence,
            f.orientation,
            offset,
            subject.diagnosis == "patient",
            n,
            difficulty,
            rng,
        )
        if n != size:
            img = resize(img, (size, size), order=1, anti_aliasing=True, preserve_range=True)
            mask = resize(mask.astype(np.float32), (size, size), order=1, anti_aliasing=True) >= 0.5
        values[k] = img
        masks[k] = mask
    return values, masks


# --------------------------------------------------------------------------------------------
# DICOM
# --------------------------------------------------------------------------------------------


def _store(values: NDArray[np.float32], representation: str) -> tuple[NDArray, float, float]:
    pr, bits, slope, intercept = REPRESENTATIONS[representation]
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if pr else (0, 2**bits - 1)
    stored = np.clip(np.rint((values - intercept) / slope), lo, hi)
    return stored.astype(np.int16 if pr else np.uint16), slope, intercept


def _window(values: NDArray[np.float32]) -> tuple[float, float]:
    body = values[values > 0.05 * float(values.max())]
    if body.size < 16:
        body = values.ravel()
    p1, p99 = np.percentile(body, [1, 99.5])
    return round(float(p1 + p99) / 2, 1), round(max(float(p99 - p1), 1.0), 1)


def _mr_dataset(
    f: OltFile,
    subject: OltSubject,
    anatomy: dict,
    values: NDArray[np.float32],
    *,
    size: int,
    seed: int,
    file_index: int,
    series_number: int,
) -> tuple[Dataset, NDArray]:
    who = subject.identity
    manufacturer, model, tesla, style = anatomy["scanner"]
    enhanced = f.frames > 1
    uid = make_uid(seed, "olt", "sop", subject.index, file_index)
    ds = new_file_dataset(ENHANCED_MR_IMAGE_STORAGE if enhanced else MR_IMAGE_STORAGE, uid)
    ds.ImageType = (
        ["ORIGINAL", "PRIMARY", "M", "NONE"] if enhanced else ["ORIGINAL", "PRIMARY", "M", "ND"]
    )
    add_patient_study(ds, who)
    t = int(who.study_time[:2]) * 3600 + int(who.study_time[2:4]) * 60 + 120 * series_number
    ds.SeriesTime = f"{t // 3600 % 24:02d}{t // 60 % 60:02d}{t % 60:02d}"
    ds.AcquisitionTime = ds.SeriesTime
    ds.ContentTime = ds.SeriesTime
    ds.Modality = "MR"
    ds.Manufacturer = manufacturer
    ds.ManufacturerModelName = model
    ds.MagneticFieldStrength = tesla
    ds.StationName = f"MR{int(tesla * 10)}-{who.institution_short}"
    ds.DeviceSerialNumber = f"{5000 + subject.index % 7 * 111}"
    ds.SoftwareVersions = "syngo MR XA51" if style == "siemens" else "R11"
    ds.StudyDescription = "MR ANKLE"
    words = _ORIENT_WORDS[f.orientation]
    name = _SERIES_NAMES[style][f.sequence].format(o=words[0], O=words[1])
    ds.SeriesDescription = name
    ds.ProtocolName = f"ankle_{name}" if style == "siemens" else f"ANKLE {name}"
    ds.BodyPartExamined = "ANKLE"
    ds.Laterality = "L" if anatomy["flip"] else "R"
    ds.PatientPosition = "FFS"
    ds.StudyInstanceUID = make_uid(seed, "olt", "study", subject.index)
    ds.SeriesInstanceUID = make_uid(
        seed, "olt", "series", subject.index, f.sequence, f.orientation, int(enhanced)
    )
    ds.FrameOfReferenceUID = make_uid(seed, "olt", "for", subject.index)
    ds.SeriesNumber = series_number
    ds.InstanceNumber = f.slice_numbers[0]
    ds.ScanningSequence = "SE"
    ds.SequenceVariant = ["SK", "SP"]
    ds.ScanOptions = "FS" if f.sequence == "T2" else ""
    ds.MRAcquisitionType = "2D"
    tr, te = (550.0, 12.0) if f.sequence == "T1" else (3800.0, 78.0)
    ds.RepetitionTime = tr
    ds.EchoTime = te
    ds.EchoTrainLength = 3 if f.sequence == "T1" else 12
    ds.ImagingFrequency = round(42.577 * tesla, 4)
    ds.ReceiveCoilName = "Foot/Ankle 16"
    pixel_mm = round(anatomy["fov_mm"] / size, 4)
    thickness, spacing = 3.0, 3.3
    orientation = [1, 0, 0, 0, 0, -1] if f.orientation == "COR" else [0, 1, 0, 0, 0, -1]

    def position(number: int) -> list[float]:
        loc = (number - 10) * spacing
        half = anatomy["fov_mm"] / 2
        if f.orientation == "COR":
            return [round(-half, 3), round(loc, 3), round(half, 3)]
        return [round(loc, 3), round(-half, 3), round(half, 3)]

    stored = []
    windows = []
    for k in range(f.frames):
        arr, slope, intercept = _store(values[k], f.representation)
        stored.append(arr)
        windows.append(_window(values[k]))
    pr, bits, slope, intercept = REPRESENTATIONS[f.representation]
    ds.Rows = size
    ds.Columns = size
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = pr
    ds.RescaleIntercept = intercept
    ds.RescaleSlope = slope
    ds.RescaleType = "US"
    ds.WindowCenter = windows[0][0]
    ds.WindowWidth = windows[0][1]
    ds.LossyImageCompression = "00"
    if not enhanced:
        ds.SliceThickness = thickness
        ds.SpacingBetweenSlices = spacing
        ds.PixelSpacing = [pixel_mm, pixel_mm]
        ds.ImageOrientationPatient = orientation
        ds.ImagePositionPatient = position(f.slice_numbers[0])
        ds.SliceLocation = round((f.slice_numbers[0] - 10) * spacing, 3)
        ds.AcquisitionMatrix = [0, size, size, 0]
    else:
        ds.NumberOfFrames = f.frames
        ds.ContentQualification = "PRODUCT"
        ds.DimensionOrganizationType = "3D"
        shared = Dataset()
        measures = Dataset()
        measures.PixelSpacing = [pixel_mm, pixel_mm]
        measures.SliceThickness = thickness
        measures.SpacingBetweenSlices = spacing
        shared.PixelMeasuresSequence = [measures]
        plane = Dataset()
        plane.ImageOrientationPatient = orientation
        shared.PlaneOrientationSequence = [plane]
        transform = Dataset()
        transform.RescaleIntercept = intercept
        transform.RescaleSlope = slope
        transform.RescaleType = "US"
        shared.PixelValueTransformationSequence = [transform]
        ds.SharedFunctionalGroupsSequence = [shared]
        per_frame = []
        for k, number in enumerate(f.slice_numbers):
            item = Dataset()
            content = Dataset()
            content.StackID = "1"
            content.InStackPositionNumber = k + 1
            content.FrameAcquisitionNumber = number
            content.DimensionIndexValues = [1, k + 1]
            item.FrameContentSequence = [content]
            pos = Dataset()
            pos.ImagePositionPatient = position(number)
            item.PlanePositionSequence = [pos]
            voi = Dataset()
            voi.WindowCenter, voi.WindowWidth = windows[k]
            item.FrameVOILUTSequence = [voi]
            per_frame.append(item)
        ds.PerFrameFunctionalGroupsSequence = per_frame
    pixels = np.stack(stored) if enhanced else stored[0]
    ds.PixelData = pixels.astype("<i2" if pr else "<u2").tobytes()
    return ds, pixels


def synthesize_olt(
    out_dir: Path,
    *,
    subjects_patient: int,
    subjects_healthy: int,
    images: dict[str, dict[str, int]],
    size: int = 256,
    difficulty: float = 0.5,
    seed: int = 1,
) -> None:
    """Write the synthetic OLT cohort (dicom/, labels.csv, masks.npz) into `out_dir`."""
    size = check_int("olt.size", size, 64)
    difficulty = check_fraction("difficulty", difficulty)
    plan = plan_olt(
        subjects_patient=subjects_patient,
        subjects_healthy=subjects_healthy,
        images=images,
        seed=seed,
    )
    log.info("olt: %d subjects, %d files, %d images", len(plan.subjects), plan.files, plan.images)
    encoder = Encoder()
    file_index = 0
    with CohortWriter(Path(out_dir), image_key="path") as writer:
        for subject in plan.subjects:
            anatomy = _subject_anatomy(subject, seed)
            series: dict[tuple[str, str, bool], int] = {}
            for f in subject.files:
                key = (f.sequence, f.orientation, f.frames > 1)
                number = series.setdefault(key, 2 + len(series))
                values, masks = render_olt_file(
                    f, subject, size=size, difficulty=difficulty, seed=seed, file_index=file_index
                )
                ds, pixels = _mr_dataset(
                    f,
                    subject,
                    anatomy,
                    values,
                    size=size,
                    seed=seed,
                    file_index=file_index,
                    series_number=number,
                )
                data = encoder.encode(ds, UID(f.transfer_syntax), pixels)
                rel = (
                    f"{subject.patient_id}/{subject.identity.study_date:%Y%m%d}/"
                    f"{number:03d}_{safe_name(ds.SeriesDescription)}/"
                    f"IM_{f.slice_numbers[0]:04d}.dcm"
                )
                writer.add(rel, data, list(masks))
                file_index += 1
        writer.commit([(s.patient_id, s.diagnosis) for s in plan.subjects])
