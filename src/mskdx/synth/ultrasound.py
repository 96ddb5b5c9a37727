"""Synthetic first-MTPJ ultrasound cohort (gout study): screen captures with burned-in annotations.

Each image is a `width` x `height` RGB (some YBR) screen capture: black surround, a B-mode region
of varying size and position (always large enough for the paper's 700x320 crop), and around it
burned-in text, a depth ruler, a grey-scale bar and a logo. The B-mode region holds a longitudinal
view of the first metatarsophalangeal joint: skin, subcutaneous tissue, tendon or muscle, the
joint recess, anechoic cartilage over the metatarsal head, the phalanx base, bright cortex and the
acoustic shadow below, under Rayleigh-like speckle and log compression.

Gout lesions (OMERACT): double contour sign, tophus, aggregates, bone erosion; their pixels form
the ground-truth mask. Only `lesion_fraction` of a gout patient's images show a lesion. Synovial
distension is more common in gout (not masked). Confounders shared by both classes (cartilage
interface sign, bright normal-variant spots, anisotropy streaks, osteophytes) grow with
`difficulty`, while lesion contrast and size shrink.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.pixels import convert_color_space
from pydicom.tag import Tag
from pydicom.uid import UID, ExplicitVRLittleEndian
from scipy import ndimage
from skimage import transform

from mskdx.errors import ConfigError
from mskdx.synth import glyphs
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

VIEWS = ("dorsal", "medial", "plantar")
LESION_TYPES = ("double_contour", "tophus", "aggregates", "erosion")
#: the image label sheet's finding columns, one per lesion type (the paper's abbreviations)
IMAGE_FINDINGS = ("DCs", "tophus", "aggregates", "erosion")
CROP_W, CROP_H = 700, 320  # the paper's crop; every lesion lies inside it
_WINDOW_INSET = 12  # lesions keep this far inside the centred crop
_SIDE_MARGIN = 36  # room left and right of the B-mode region for ruler and annotations
_TOP_MARGIN = 44  # room above it for the header text
_BOTTOM_MARGIN = 6

US_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.6.1"
US_MULTIFRAME_STORAGE = "1.2.840.10008.5.1.4.1.1.3.1"
SECONDARY_CAPTURE_STORAGE = "1.2.840.10008.5.1.4.1.1.7"


# --------------------------------------------------------------------------------------------
# Plan
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoutFile:
    """One DICOM file of the plan: a still image, or a cine of `frames` frames."""

    view: str
    frames: int
    lesion: bool
    transfer_syntax: str
    photometric: str
    secondary_capture: bool = False


@dataclass(frozen=True)
class GoutPatient:
    index: int
    identity: Identity
    diagnosis: str  # gout | control
    lesion_types: tuple[str, ...]
    files: tuple[GoutFile, ...]

    @property
    def patient_id(self) -> str:
        return self.identity.patient_id

    @property
    def images(self) -> int:
        """Images of this patient: frames, a cine counting once per frame."""
        return sum(f.frames for f in self.files)

    @property
    def lesion_images(self) -> int:
        return sum(f.frames for f in self.files if f.lesion)


@dataclass(frozen=True)
class GoutPlan:
    patients: tuple[GoutPatient, ...]

    @property
    def images(self) -> int:
        return sum(p.images for p in self.patients)

    @property
    def files(self) -> int:
        return sum(len(p.files) for p in self.patients)

    def count(self, diagnosis: str) -> int:
        return sum(p.diagnosis == diagnosis for p in self.patients)


def _lesion_profile(rng: np.random.Generator) -> tuple[str, ...]:
    # The paper's gout group: a tophus, or two or more of DCs, erosion and aggregates.
    others = ["double_contour", "aggregates", "erosion"]
    if rng.random() < 0.35:
        chosen = ["tophus"] + [t for t in others if rng.random() < 0.4]
    else:
        k = 2 if rng.random() < 0.6 else 3
        chosen = list(rng.choice(others, size=k, replace=False))
    return tuple(t for t in LESION_TYPES if t in chosen)


def plan_gout(
    *,
    patients_gout: int,
    patients_control: int,
    images: int,
    lesion_fraction: float = 0.62,
    seed: int = 1,
) -> GoutPlan:
    """Plan the gout cohort without rendering: patients, files, views, lesions, encodings.

    Images are counted in frames: a cine file of k frames counts as k images, so
    `plan.images == images`. Each patient gets >= 1 image, near-evenly spread (+-2).
    """
    pg = check_int("gout.patients_gout", patients_gout, 1)
    pc = check_int("gout.patients_control", patients_control, 1)
    n = pg + pc
    total = check_int("gout.images", images, n)
    fraction = check_fraction("gout.lesion_fraction", lesion_fraction, open_low=True)
    seed = check_int("seed", seed, 0)
    rng = rng_for(seed, "gout", "plan")
    diagnoses = np.array(["gout"] * pg + ["control"] * pc)[rng.permutation(n)]
    people = make_identities(
        "gout",
        n,
        seed,
        male_share=0.82,
        ages=(25, 82),
        dates=(dt.date(2023, 2, 1), dt.date(2023, 7, 31)),
        id_digits=8,
    )
    counts = spread_counts(total, n, rng)
    # Cines: about one per 50 patients, at least one wherever a patient has two or more images.
    eligible = np.flatnonzero(counts >= 3)
    if eligible.size == 0:
        eligible = np.flatnonzero(counts >= 2)
    n_cine = min(max(1, round(n / 50)), eligible.size)
    if n_cine == 0:
        log.warning("gout: every patient has one image; the cohort has no multi-frame file")
    cine = set(rng.choice(eligible, size=n_cine, replace=False).tolist()) if n_cine else set()

    drafts = []
    for i in range(n):
        c = int(counts[i])
        units = [1] * c
        if i in cine:
            frames = int(rng.integers(3, 6))
            frames = min(frames, c - 1) if c >= 4 else c
            units = [frames] + [1] * (c - frames)
        start = int(rng.integers(3))
        views = [VIEWS[(start + k) % 3] for k in range(len(units))]
        lesion = [False] * len(units)
        types: tuple[str, ...] = ()
        if diagnoses[i] == "gout":
            types = _lesion_profile(rng)
            target = fraction * c
            k = int(np.floor(target)) + int(rng.random() < target - np.floor(target))
            k = max(1, k)
            got = 0
            for u in rng.permutation(len(units)):
                if got >= k:
                    break
                if got == 0 or got + units[u] <= k:
                    lesion[u] = True
                    got += units[u]
        order = sorted(range(len(units)), key=lambda u: (VIEWS.index(views[u]), u))
        drafts.append((i, types, [(views[u], units[u], lesion[u]) for u in order]))

    patients = []
    index = 0
    sc_done = False
    for i, types, units in drafts:
        files = []
        for view, frames, lesion in units:
            syntax = SYNTAX_CYCLE[index % len(SYNTAX_CYCLE)]
            photometric = "RGB"
            if syntax == ExplicitVRLittleEndian and index % 20 == 2:
                photometric = "YBR_FULL"
            elif syntax == ExplicitVRLittleEndian and index % 20 == 8:
                photometric = "YBR_FULL_422"
            sc = (
                index % 50 == 4
                and frames == 1
                and syntax == ExplicitVRLittleEndian
                and photometric == "RGB"
            )
            sc_done |= sc
            files.append(GoutFile(view, frames, lesion, str(syntax), photometric, sc))
            index += 1
        patients.append(
            GoutPatient(
                i,
                people[i],
                str(diagnoses[i]),
                types if any(u[2] for u in units) else (),
                tuple(files),
            )
        )
    if not sc_done:
        # Small cohorts: make the first plain single-frame RGB file a secondary capture.
        for p, patient in enumerate(patients):
            for f, gf in enumerate(patient.files):
                if gf.frames == 1 and gf.photometric == "RGB" and not sc_done:
                    if gf.transfer_syntax == str(ExplicitVRLittleEndian):
                        files = list(patient.files)
                        files[f] = GoutFile(gf.view, 1, gf.lesion, gf.transfer_syntax, "RGB", True)
                        patients[p] = GoutPatient(
                            patient.index,
                            patient.identity,
                            patient.diagnosis,
                            patient.lesion_types,
                            tuple(files),
                        )
                        sc_done = True
    return GoutPlan(tuple(patients))


# --------------------------------------------------------------------------------------------
# Scene: everything about one file that stays fixed across its frames
# --------------------------------------------------------------------------------------------


@dataclass
class _Lesion:
    kind: str
    params: dict


@dataclass
class _Scene:
    width: int
    height: int
    bw: int
    bh: int
    x0: int
    y0: int
    inset: int  # trapezoid: top edge narrower by `inset` on each side; 0 = rectangle
    view: str
    flip: bool
    mm_per_px: float
    # anatomy (region coordinates, unflipped)
    gel: float
    skin: float
    skin_curve: float
    fat: float
    x_j: float
    gap: float
    y_h: float
    radius: float
    x_hm: float
    y_pb: float
    lip: float
    cart: float
    recess: float
    synovitis: bool
    tendon: tuple[float, float] | None  # (distance above bone, thickness)
    muscle: bool
    irregular: NDArray[np.float32]
    # rendering
    gain_db: float
    dr_db: float
    att: float
    noise: float
    speckle_sigma: tuple[float, float]
    lesions: list[_Lesion] = field(default_factory=list)
    confounders: list[_Lesion] = field(default_factory=list)
    #: a colour-flow box (x0, y0, x1, y1) in region pixels, on devices that show one
    flow_box: tuple[int, int, int, int] | None = None

    @property
    def window(self) -> tuple[int, int, int, int]:
        """(x_lo, x_hi, y_lo, y_hi) in region coordinates where lesions may lie."""
        cx0 = self.bw // 2 - CROP_W // 2
        cy0 = self.bh // 2 - CROP_H // 2
        return (
            cx0 + _WINDOW_INSET,
            cx0 + CROP_W - _WINDOW_INSET,
            cy0 + _WINDOW_INSET,
            cy0 + CROP_H - 3 * _WINDOW_INSET,
        )


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


def _region_limits(width: int, height: int) -> tuple[int, int, int, int]:
    bw_max = min(900, width - 2 * _SIDE_MARGIN)
    bh_max = min(520, height - _TOP_MARGIN - _BOTTOM_MARGIN)
    if bw_max < CROP_W + 2 * _WINDOW_INSET or bh_max < CROP_H + 4 * _WINDOW_INSET:
        raise ConfigError(
            f"synthetic.gout width x height = {width}x{height} leaves no room for a "
            f"{CROP_W}x{CROP_H} B-mode crop plus annotations; expected at least "
            f"{CROP_W + 2 * _WINDOW_INSET + 2 * _SIDE_MARGIN}x"
            f"{CROP_H + 4 * _WINDOW_INSET + _TOP_MARGIN + _BOTTOM_MARGIN}"
        )
    return min(760, bw_max), bw_max, min(380, bh_max), bh_max


def _make_scene(
    gf: GoutFile,
    patient: GoutPatient,
    anatomy: dict,
    width: int,
    height: int,
    difficulty: float,
    rng: np.random.Generator,
    synovitis: Mapping[str, float] | None = None,
) -> _Scene:
    d = difficulty
    bw_min, bw_max, bh_min, bh_max = _region_limits(width, height)
    bw = int(rng.integers(bw_min, bw_max + 1))
    bh = int(rng.integers(bh_min, bh_max + 1))
    x0 = int(rng.integers(_SIDE_MARGIN, width - _SIDE_MARGIN - bw + 1))
    y0 = int(rng.integers(_TOP_MARGIN, height - _BOTTOM_MARGIN - bh + 1))
    max_inset = bw // 2 - CROP_W // 2 - 4
    inset = (
        int(rng.integers(8, min(40, max_inset) + 1)) if max_inset >= 8 and rng.random() < 0.2 else 0
    )
    cx, cy0 = bw / 2, bh / 2 - CROP_H / 2
    view = gf.view
    radius = anatomy["radius"] * rng.uniform(0.93, 1.07)
    x_j = cx + rng.uniform(-95, 95)
    deeper = 25.0 if view == "plantar" else 0.0
    y_h = cy0 + rng.uniform(118, 175) + deeper * rng.uniform(0.5, 1.0)
    gel = rng.uniform(12, 38) if view == "medial" else rng.uniform(0, 6)
    skin = gel + rng.uniform(6, 12)
    space = y_h - skin
    tendon = None
    muscle = False
    if view == "dorsal":
        tendon = (rng.uniform(10, 18), rng.uniform(14, 22))
    elif view == "plantar":
        tendon = (rng.uniform(8, 14), rng.uniform(22, 32))
    else:
        muscle = True
    gout = patient.diagnosis == "gout"
    # Synovial distension: common in gout, sometimes in controls (e.g. osteoarthritis).
    if synovitis is None:
        p_syn = _lerp(0.92, 0.6, d) if gout else _lerp(0.02, 0.25, d)
    else:  # set by the config: e.g. equal in both classes, so that lesions are the only cue
        p_syn = synovitis["gout" if gout else "control"]
    synovitis = bool(rng.random() < p_syn)
    irregular = ndimage.gaussian_filter1d(rng.normal(0, 1.0, bw), 6).astype(np.float32)
    irregular *= 1.4 / max(float(irregular.std()), 1e-6)
    scene = _Scene(
        width=width,
        height=height,
        bw=bw,
        bh=bh,
        x0=x0,
        y0=y0,
        inset=inset,
        view=view,
        flip=anatomy["flip"],
        mm_per_px=anatomy["mm_per_px"] * rng.uniform(0.95, 1.05),
        gel=gel,
        skin=skin,
        skin_curve=(rng.uniform(0.8, 2.0) if view == "medial" else rng.uniform(0.0, 0.3)) / 1e4,
        fat=min(space * 0.35, rng.uniform(18, 45) * (1.4 if view == "plantar" else 1.0)),
        x_j=x_j,
        gap=rng.uniform(14, 28),
        y_h=y_h,
        radius=radius,
        x_hm=x_j - radius * rng.uniform(0.45, 0.62),
        y_pb=y_h + radius * 0.13 + rng.uniform(-4, 12),
        lip=rng.uniform(4, 12),
        cart=anatomy["cart"] * rng.uniform(0.85, 1.15),
        recess=rng.uniform(16, 34) if synovitis else rng.uniform(2, 7),
        synovitis=synovitis,
        tendon=tendon,
        muscle=muscle,
        irregular=irregular,
        gain_db=rng.uniform(-4, 4),
        dr_db=rng.uniform(46, 60),
        att=rng.uniform(0.2, 0.7),
        noise=rng.uniform(0.0006, 0.0015),
        speckle_sigma=(rng.uniform(0.7, 1.0), rng.uniform(1.1, 1.7)),
    )
    _add_findings(scene, gf, patient, d, rng)
    return scene


def _add_findings(scene: _Scene, gf: GoutFile, patient: GoutPatient, d, rng) -> None:
    s = scene
    x_lo, x_hi, y_lo, y_hi = s.window
    contrast = _lerp(1.0, 0.35, d)
    size = _lerp(1.15, 0.7, d)
    if gf.lesion:
        types = list(patient.lesion_types) or ["double_contour"]
        # Each lesion image shows one to all of the patient's lesion types.
        k = int(rng.integers(1, len(types) + 1))
        picked = {str(t) for t in rng.choice(types, size=k, replace=False)}
        shown = [t for t in types if t in picked]
        for kind in shown:
            if kind == "double_contour":
                length = rng.uniform(90, 230) * size
                a = rng.uniform(
                    *sorted((s.x_hm - 0.55 * s.radius, s.x_j - s.gap / 2 - 20 - length * 0.6))
                )
                b = min(a + length, s.x_j - s.gap / 2 - 6)
                a, b = max(a, x_lo + 4), min(b, x_hi - 4)
                params = dict(
                    a=a,
                    b=max(b, a + 30),
                    thick=_lerp(4.2, 2.2, d) * rng.uniform(0.85, 1.2),
                    level=rng.uniform(0.55, 0.9) * contrast,
                    seed=int(rng.integers(2**31)),
                )
            elif kind == "tophus":
                rx = rng.uniform(22, 48) * size
                ry = rng.uniform(12, 24) * size
                xt = float(
                    np.clip(
                        rng.uniform(s.x_hm - 0.2 * s.radius, s.x_j + 30),
                        x_lo + rx + 8,
                        x_hi - rx - 8,
                    )
                )
                params = dict(
                    x=xt,
                    rx=rx,
                    ry=ry,
                    lift=rng.uniform(1, 10),
                    rim=rng.uniform(2.5, 5.5),
                    level=rng.uniform(0.22, 0.4) * _lerp(1.0, 0.55, d),
                    seed=int(rng.integers(2**31)),
                )
            elif kind == "aggregates":
                n = int(rng.integers(6, 18) * _lerp(1.0, 0.55, d)) + 2
                params = dict(
                    x=rng.uniform(s.x_hm - 0.25 * s.radius, s.x_j + 35, n),
                    up=rng.uniform(3, 38, n),
                    r=rng.uniform(1.6, 3.2, n) * size,
                    level=rng.uniform(0.5, 1.0, n) * contrast,
                )
            else:  # erosion
                we = rng.uniform(22, 46) * size
                lo = max(s.x_hm - 0.4 * s.radius, x_lo + we)
                hi = s.x_j - s.gap / 2 - we / 2 - 4
                params = dict(
                    x=rng.uniform(lo, max(lo + 1, hi)),
                    w=we,
                    depth=_lerp(22, 9, d) * rng.uniform(0.8, 1.2),
                    fill=rng.uniform(0.03, 0.07),
                )
            s.lesions.append(_Lesion(kind, params))
    # Confounders, both classes alike; more and more lesion-like with difficulty.
    p = _lerp(0.05, 0.5, d)
    if rng.random() < p:  # cartilage interface sign: thin faint line over the cartilage
        a = rng.uniform(s.x_hm - 0.5 * s.radius, s.x_hm)
        s.confounders.append(
            _Lesion(
                "interface",
                dict(
                    a=max(a, x_lo),
                    b=min(a + rng.uniform(60, 160), s.x_j - s.gap / 2 - 6),
                    thick=rng.uniform(1.0, 1.8),
                    level=_lerp(0.06, 0.3, d) * rng.uniform(0.7, 1),
                    seed=int(rng.integers(2**31)),
                ),
            )
        )
    if rng.random() < p:  # bright normal-variant spots in the soft tissue
        n = int(rng.integers(1, 5))
        s.confounders.append(
            _Lesion(
                "spots",
                dict(
                    x=rng.uniform(x_lo + 10, x_hi - 10, n),
                    up=rng.uniform(_lerp(60, 8, d), 90, n),
                    r=rng.uniform(1.4, 2.6, n),
                    level=rng.uniform(0.3, 0.8, n),
                ),
            )
        )
    if rng.random() < p:  # anisotropy: bright streaks along fibres
        n = int(rng.integers(1, 4))
        s.confounders.append(
            _Lesion(
                "streaks",
                dict(
                    x=rng.uniform(x_lo + 40, x_hi - 120, n),
                    length=rng.uniform(40, 130, n),
                    up=rng.uniform(20, 70, n),
                    slope=rng.uniform(-0.08, 0.08, n),
                    level=rng.uniform(0.2, 0.5, n),
                ),
            )
        )
    if rng.random() < p * 0.6:  # osteophyte at the dorsal margin of the metatarsal head
        s.confounders.append(
            _Lesion(
                "osteophyte",
                dict(
                    x=s.x_j - s.gap / 2 - rng.uniform(8, 20),
                    w=rng.uniform(10, 22),
                    h=rng.uniform(4, 10),
                ),
            )
        )


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def _upsample(field_: NDArray, factor: int, shape: tuple[int, int]) -> NDArray[np.float32]:
    up = ndimage.zoom(field_, factor, order=1, prefilter=False)
    return up[: shape[0], : shape[1]].astype(np.float32, copy=False)


def _smooth_field(rng, shape, factor, sigma=1.0) -> NDArray[np.float32]:
    small = rng.normal(0, 1, (shape[0] // factor + 2, shape[1] // factor + 2)).astype(np.float32)
    small = ndimage.gaussian_filter(small, sigma)
    small /= max(float(small.std()), 1e-6)
    return _upsample(small, factor, shape)


def _bump(t: NDArray) -> NDArray:
    """Raised cosine on [-1, 1], zero outside."""
    return np.where(np.abs(t) < 1, 0.5 + 0.5 * np.cos(np.pi * np.clip(t, -1, 1)), 0.0)


def _render_region(
    s: _Scene,
    shift: float,
    rng: np.random.Generator,
    speckle: NDArray[np.complex64] | None,
    moved: float = 0.0,
) -> tuple[NDArray[np.uint8], NDArray[np.bool_], NDArray[np.complex64]]:
    """Render one B-mode frame: grey (bh, bw) uint8 >= 1 inside, lesion mask, speckle field."""
    bh, bw = s.bh, s.bw
    Y = np.arange(bh, dtype=np.float32)[:, None]
    x = np.arange(bw, dtype=np.float32) - np.float32(shift)
    X = x[None, :]
    mask = np.zeros((bh, bw), dtype=bool)
    x_lo, x_hi, y_lo, y_hi = s.window
    window = np.zeros((bh, bw), dtype=np.float32)
    window[y_lo:y_hi, x_lo:x_hi] = 1.0

    # Bone surface: metatarsal head (parabolic dome, plateau toward the shaft), joint gap,
    # phalanx base with a small lip; small cortical irregularity everywhere.
    m_end, p_start = s.x_j - s.gap / 2, s.x_j + s.gap / 2
    head = s.y_h + (x - s.x_hm) ** 2 / (2 * s.radius)
    head = np.minimum(head, s.y_h + 0.32 * s.radius)
    phal = s.y_pb - s.lip * np.exp(-(((x - p_start - 10) / 16) ** 2)) + 0.03 * (x - p_start)
    surf0 = np.where(x < m_end, head, np.where(x > p_start, phal, np.inf)).astype(np.float32)
    surf0 = surf0 + s.irregular
    for c in s.confounders:
        if c.kind == "osteophyte":
            surf0 = surf0 - c.params["h"] * _bump((x - c.params["x"]) / c.params["w"])
    surf = surf0.copy()
    erosion_depth = np.zeros(bw, dtype=np.float32)
    for les in s.lesions:
        if les.kind == "erosion":
            p = les.params
            erosion_depth += p["depth"] * _bump((x - p["x"]) / (p["w"] / 2)) ** 0.7
    surf = np.where(x < m_end, surf + erosion_depth, surf)
    # Reference curve over the gap (for tendon, recess) by interpolation and smoothing.
    finite = np.isfinite(surf0)
    ref = np.interp(x, x[finite], surf0[finite]).astype(np.float32)
    ref = ndimage.gaussian_filter1d(ref, 12)
    ref_far = ndimage.gaussian_filter1d(ref, 50)

    cart = s.cart * np.sqrt(
        np.clip(1 - ((x - s.x_hm - 0.15 * s.radius) / (0.95 * s.radius)) ** 2, 0, 1)
    )
    cart = np.where(
        x < m_end,
        cart,
        np.where(x > p_start, 0.3 * s.cart * np.exp(-(((x - p_start) / 40) ** 2)), 0),
    )
    cart = np.where(erosion_depth > 1.0, 0.0, cart).astype(np.float32)
    ctop = np.where(np.isfinite(surf), surf - cart, ref)

    skin = s.gel + s.skin_curve * (x - bw / 2) ** 2
    fat_bottom = skin + s.fat
    lf = np.clip(1.0 + 0.22 * _smooth_field(rng, (bh, bw), 16, 1.0), 0.4, 1.6)
    E = (0.04 * lf).astype(np.float32)
    # Subcutaneous fat: darker, with bright septa (laterally elongated blobs).
    septa = _smooth_field(rng, (bh, bw), 4, (0.8, 3.0))
    fat_zone = (Y >= skin + 3) & (Y < fat_bottom)
    E = np.where(fat_zone, 0.02 * lf + 0.1 * (septa > 1.3), E)
    if s.muscle:
        theta = rng.uniform(-0.35, 0.35)
        period = rng.uniform(14, 26)
        phase = 2 * np.pi * (X * np.sin(theta) + Y * np.cos(theta)) / period
        fib = np.maximum(np.sin(phase + 0.8 * septa), 0) ** 6
        zone = (Y >= fat_bottom) & (Y < ref_far - s.cart - s.recess - 10)
        E = np.where(zone, 0.035 * lf + 0.09 * fib, E)
    if s.tendon is not None:
        above, thick = s.tendon
        t_bot = ref_far - s.cart - max(s.recess, 4) - above
        t_top = np.maximum(t_bot - thick, fat_bottom + 2)
        stripes = _smooth_field(rng, (bh, bw), 2, (0.6, 10.0))
        zone = (Y >= t_top) & (Y < t_bot)
        E = np.where(zone, (0.16 + 0.07 * np.clip(stripes, -2, 3)) * lf, E)
        # Tendon margins are bright, thin lines.
        edge = np.exp(-(((Y - t_top) / 1.3) ** 2)) + np.exp(-(((Y - t_bot) / 1.3) ** 2))
        E = E + 0.12 * edge * ((X > 0) & (Y > fat_bottom))
    # Joint recess (synovium / fluid) above the cartilage, centred over the head-neck and joint.
    rec_h = s.recess * np.exp(-(((x - (s.x_j - 0.2 * s.radius)) / (0.5 * s.radius)) ** 2))
    rec_zone = (Y >= ctop - rec_h) & (Y < ctop)
    rec_level = 0.010 + (0.02 * np.clip(septa, 0, None) if s.synovitis else 0.0)
    E = np.where(rec_zone, rec_level, E)
    capsule = np.exp(-(((Y - (ctop - rec_h - 1.5)) / 1.4) ** 2)) * (rec_h > 1.5)
    E = E + 0.12 * capsule
    # Joint space between the bones: hypoechoic.
    in_gap = ~np.isfinite(surf)[None, :] & (Y > ref)
    E = np.where(in_gap, 0.015 * lf, E)
    # Hyaline cartilage: anechoic band with a faint superficial interface.
    cart_zone = (Y >= ctop) & (Y < surf)
    E = np.where(cart_zone, 0.0015, E)
    E = E + 0.04 * np.exp(-(((Y - ctop) / 0.9) ** 2)) * (cart > 1)
    # Erosion floor fill: soft tissue inside the cortical defect.
    for les in s.lesions:
        if les.kind == "erosion":
            defect = (Y >= surf0) & (Y < surf) & (erosion_depth > 1.2)
            E = np.where(defect, les.params["fill"] * lf, E)
            mask |= defect
    # Skin line and coupling gel.
    E = np.where(Y < skin, 0.0008, E)
    E = E + 0.55 * np.exp(-(((Y - skin - 2) / 1.8) ** 2))

    # Lesions drawn over the soft tissue (inside the lesion window only).
    for les in s.lesions:
        p = les.params
        if les.kind == "double_contour":
            lr = np.random.default_rng(p["seed"])
            along = 1 + 0.35 * ndimage.gaussian_filter1d(lr.normal(0, 1, bw), 5) / 0.16
            along = (
                np.clip(along, 0.25, 1.4)
                * _bump((x - (p["a"] + p["b"]) / 2) / ((p["b"] - p["a"]) / 2)) ** 0.25
            )
            line_y = ctop - 0.5
            prof = np.exp(-(((Y - line_y) / (p["thick"] / 2)) ** 2))
            F = p["level"] * along * prof * window
            E = np.maximum(E, F)
            mask |= (np.abs(Y - line_y) <= p["thick"] / 2 + 0.5) & (along > 0.3) & (window > 0)
        elif les.kind == "tophus":
            xt = p["x"]
            ctop_t = float(np.interp(xt, x, ctop))
            yt = ctop_t - rec_h.max() * 0.3 - p["ry"] - p["rim"] - p["lift"]
            yt = float(np.clip(yt, y_lo + p["ry"] + p["rim"] + 2, y_hi - p["ry"] - p["rim"] - 2))
            lr = np.random.default_rng(p["seed"])
            ang = np.arctan2((Y - yt) / p["ry"], (X - xt) / p["rx"])
            wobble = 1 + 0.1 * np.sin(3 * ang + lr.uniform(0, 6)) + 0.06 * np.sin(5 * ang)
            r = np.sqrt(((X - xt) / p["rx"]) ** 2 + ((Y - yt) / p["ry"]) ** 2) / wobble
            rim_rel = p["rim"] / p["ry"]
            lumpy = _smooth_field(lr, (bh, bw), 3, 1.0)
            inside = r < 1
            E = np.where((r >= 1) & (r < 1 + rim_rel) & (window > 0), 0.003, E)
            core = p["level"] * np.clip(0.75 + 0.45 * lumpy, 0.2, 1.8)
            E = np.where(inside & (window > 0), core, E)
            mask |= (r < 1 + rim_rel) & (window > 0)
            below = (Y > yt + p["ry"]) & (np.abs(X - xt) < 0.7 * p["rx"])
            E = np.where(below, E * 0.6, E)
        elif les.kind == "aggregates":
            for xa, up, ra, level in zip(p["x"], p["up"], p["r"], p["level"], strict=True):
                ya = float(np.interp(xa, x, ctop)) - up
                ys, xs = int(ya), int(round(xa + shift))
                if not (y_lo + 4 <= ys < y_hi - 4 and x_lo + 4 <= xs < x_hi - 4):
                    continue
                sl = (slice(ys - 6, ys + 7), slice(xs - 6, xs + 7))
                d2 = (Y[sl[0]] - ya) ** 2 + (X[:, sl[1]] - xa) ** 2
                E[sl] = np.maximum(E[sl], level * np.exp(-d2 / (ra * ra)))
                mask[sl] |= d2 <= ra * ra
    for c in s.confounders:
        p = c.params
        if c.kind == "interface":
            lr = np.random.default_rng(p["seed"])
            along = np.clip(1 + 2 * ndimage.gaussian_filter1d(lr.normal(0, 1, bw), 6), 0, 1.3)
            along *= (x > p["a"]) & (x < p["b"])
            E = np.maximum(E, p["level"] * along * np.exp(-(((Y - ctop + 0.3) / p["thick"]) ** 2)))
        elif c.kind == "spots":
            for xa, up, ra, level in zip(p["x"], p["up"], p["r"], p["level"], strict=True):
                ya = float(np.interp(xa, x, ref)) - s.cart - up
                ys, xs = int(ya), int(round(xa + shift))
                if not (8 <= ys < bh - 8 and 8 <= xs < bw - 8) or ya < skin[xs] + 6:
                    continue
                sl = (slice(ys - 6, ys + 7), slice(xs - 6, xs + 7))
                d2 = (Y[sl[0]] - ya) ** 2 + (X[:, sl[1]] - xa) ** 2
                E[sl] = np.maximum(E[sl], level * np.exp(-d2 / (ra * ra)))
        elif c.kind == "streaks":
            for xs_, length, up, slope, level in zip(
                p["x"], p["length"], p["up"], p["slope"], p["level"], strict=True
            ):
                base = float(np.interp(xs_, x, ref)) - s.cart - up
                yl = base + slope * (X - xs_)
                seg = (X >= xs_) & (X < xs_ + length)
                E = np.maximum(E, level * seg * np.exp(-(((Y - yl) / 1.2) ** 2)))

    # Cortex (bright) and acoustic shadow below the bone.
    depth = Y - surf[None, :]
    E = E + 1.1 * np.exp(-((depth / 2.2) ** 2))
    shadow = np.where(depth > 3.0, 0.01 + 0.06 * np.exp(-(depth - 3.0) / 12.0), 1.0)
    E = E * shadow
    # Depth attenuation (imperfect TGC) and a slight fall-off at the lateral edges.
    E = E * np.exp(-s.att * Y / bh) * (0.85 + 0.15 * np.exp(-(((Y - 0.35 * bh) / (0.3 * bh)) ** 2)))
    edge = np.minimum(np.arange(bw), np.arange(bw)[::-1]).astype(np.float32)
    E = E * (0.7 + 0.3 * np.clip(edge / 25.0, 0, 1))[None, :]
    if s.flip:
        E = E[:, ::-1]
        mask = mask[:, ::-1]

    # Speckle: filtered complex Gaussian field at half resolution -> Rayleigh amplitude.
    hs, ws = bh // 2 + 2, bw // 2 + 2
    fresh = (rng.normal(0, 1, (hs, ws)) + 1j * rng.normal(0, 1, (hs, ws))).astype(np.complex64)
    if speckle is None:
        field_ = fresh
    else:
        field_ = 0.75 * np.roll(speckle, int(round(moved / 2)), axis=1) + 0.66 * fresh
    sa, sl_ = s.speckle_sigma
    re = ndimage.gaussian_filter(field_.real, (sa, sl_))
    im = ndimage.gaussian_filter(field_.imag, (sa, sl_))
    amp = np.hypot(re, im)
    amp /= float(amp.mean())
    amp = _upsample(amp, 2, (bh, bw))
    noise = s.noise * np.abs(rng.normal(0, 1, (bh, bw))).astype(np.float32)
    A = np.maximum(E, 0) * amp + noise
    db = 20 * np.log10(A + 1e-6)
    lo = -s.dr_db + 3 - s.gain_db
    grey = np.clip((db - lo) * (255.0 / s.dr_db), 1, 255).astype(np.uint8)
    if s.inset:
        half = bw / 2 - s.inset * (1 - np.arange(bh) / (bh - 1))
        outside = np.abs(np.arange(bw)[None, :] + 0.5 - bw / 2) > half[:, None]
        grey[outside] = 0
        mask = mask & ~outside
    return grey, mask, field_


# --------------------------------------------------------------------------------------------
# Screen annotations
# --------------------------------------------------------------------------------------------

_TEXT_COLOURS = ((235, 235, 235), (255, 255, 255), (230, 215, 120), (170, 220, 240))
_LOGO_COLOURS = ((210, 30, 45), (30, 100, 210), (240, 140, 20), (40, 160, 90))


def _draw_overlays(canvas, s: _Scene, who: Identity, gf: GoutFile, rng, time: str) -> None:
    H, W = s.height, s.width
    x0, y0, bw, bh = s.x0, s.y0, s.bw, s.bh
    colour = _TEXT_COLOURS[int(rng.integers(len(_TEXT_COLOURS)))]
    # Header band: patient / date left or right, device right or left, logo at one end.
    band = y0 - 8
    scale = 2 if band >= 36 else 1
    lh = 7 * scale + 3 * scale
    name = who.name.replace("^", " ")
    left_lines = [
        f"{who.institution_short}  {name}",
        f"ID:{who.patient_id}  {who.study_date:%Y/%m/%d} {time[:2]}:{time[2:4]}:{time[4:6]}",
    ]
    right_lines = ["ARIETTA 70", f"MSK  {gf.view.upper()[:4]}  L55"]
    logo_w, logo_h = 22 * scale // 2 + 10, 14 * scale // 2 + 6
    logo_left = rng.random() < 0.5
    lx = int(rng.integers(4, 24))
    if logo_left:
        logo_x, text_x = lx, lx + logo_w + 8
    else:
        logo_x, text_x = W - lx - logo_w, lx
    ty = int(rng.integers(3, max(4, band - 2 * lh + 3 * scale)))
    for k, line in enumerate(left_lines):
        glyphs.draw_text(canvas, line, text_x, ty + k * lh, scale, colour)
    rw = max(glyphs.text_size(t, 1)[0] for t in right_lines)
    rx = (logo_x - rw - 10) if not logo_left else W - rw - int(rng.integers(6, 30))
    left_end = text_x + max(glyphs.text_size(t, scale)[0] for t in left_lines)
    if rx > left_end + 10:
        for k, line in enumerate(right_lines):
            glyphs.draw_text(canvas, line, rx, ty + k * 11, 1, colour)
    logo_y = int(rng.integers(3, max(4, band - logo_h)))
    lc = _LOGO_COLOURS[int(rng.integers(len(_LOGO_COLOURS)))]
    yy, xx = np.mgrid[0:logo_h, 0:logo_w]
    ellipse = ((xx - logo_w / 2 + 0.5) / (logo_w / 2)) ** 2 + (
        (yy - logo_h / 2 + 0.5) / (logo_h / 2)
    ) ** 2 < 1
    glyphs.blit(canvas, ellipse, logo_x, logo_y, lc)
    glyphs.draw_text(
        canvas,
        "A",
        logo_x + logo_w // 2 - 2 * scale // 2 - 2,
        logo_y + logo_h // 2 - 4,
        1,
        (255, 255, 255),
    )

    # Depth ruler on one side, parameters and grey bar on the other.
    ruler_left = rng.random() < 0.5
    gap = int(rng.integers(5, 9))
    xr = x0 - gap - 1 if ruler_left else x0 + bw - 1 + gap
    out = -1 if ruler_left else 1
    ruler_colour = (200, 200, 200)
    canvas[y0 : y0 + bh, xr] = ruler_colour
    step = 5.0 / s.mm_per_px  # a tick every 5 mm
    k = 0
    while k * step < bh:
        yt = y0 + int(round(k * step))
        length = 8 if k % 2 == 0 else 4
        xa, xb = sorted((xr, xr + out * length))
        canvas[yt, xa : xb + 1] = ruler_colour
        if k % 2 == 0 and k > 0:
            label = str(k // 2)
            lw = glyphs.text_size(label)[0]
            lxp = xr + out * 11 if out > 0 else xr - 11 - lw
            glyphs.draw_text(canvas, label, lxp, yt - 3, 1, ruler_colour)
        k += 1
    focus = y0 + int(bh * rng.uniform(0.3, 0.55))
    counts = np.array([1, 2, 3, 4, 5, 4, 3, 2, 1])
    tri = np.arange(5)[None, :] < counts[:, None]  # a triangle pointing right
    if out > 0:
        tri = tri[:, ::-1]
    glyphs.blit(canvas, tri, xr + out * 2 - (4 if out < 0 else 0), focus - 4, (240, 200, 60))

    side_x0 = x0 + bw + 8 if ruler_left else 4
    side_x1 = W - 4 if ruler_left else x0 - 8
    room = side_x1 - side_x0
    lines = [
        "B",
        f"G{int(rng.integers(40, 75))}",
        f"DR{int(rng.integers(50, 80))}",
        f"FR{int(rng.integers(18, 40))}",
        f"D{bh * s.mm_per_px / 10:.1f}",
    ]
    sc = 2 if room >= 70 else 1
    width_needed = max(glyphs.text_size(t, sc)[0] for t in lines)
    sx = side_x0 + int(rng.integers(0, max(1, room - width_needed)))
    sy = y0 + int(rng.integers(0, 40))
    for line in lines:
        glyphs.draw_text(canvas, line, sx, sy, sc, colour)
        sy += 10 * sc
    bar_h = int(min(128, max(40, bh - (sy - y0) - 20)))
    bar_w = 8
    bx = side_x0 + int(rng.integers(0, max(1, room - bar_w)))
    by = sy + int(rng.integers(8, 20))
    if by + bar_h < y0 + bh:
        ramp = np.linspace(255, 0, bar_h).astype(np.uint8)
        canvas[by : by + bar_h, bx : bx + bar_w] = ramp[:, None, None]
    if H - (y0 + bh) >= 16 and gf.frames > 1:
        glyphs.draw_text(canvas, "CINE", x0 + 10, y0 + bh + 5, 1, colour)


# --------------------------------------------------------------------------------------------
# DICOM
# --------------------------------------------------------------------------------------------


def _ybr_422(rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Pack RGB (..., H, W, 3) as native YBR_FULL_422: Y0 Y1 Cb Cr for each pixel pair."""
    ybr = convert_color_space(rgb, "RGB", "YBR_FULL")
    y = ybr[..., 0]
    cb = ybr[..., 1].astype(np.uint16)
    cr = ybr[..., 2].astype(np.uint16)
    cbp = ((cb[..., 0::2] + cb[..., 1::2] + 1) // 2).astype(np.uint8)
    crp = ((cr[..., 0::2] + cr[..., 1::2] + 1) // 2).astype(np.uint8)
    return np.stack([y[..., 0::2], y[..., 1::2], cbp, crp], axis=-1)


def _time_plus(time: str, seconds: int) -> str:
    t = int(time[:2]) * 3600 + int(time[2:4]) * 60 + int(time[4:6]) + seconds
    t %= 86400
    return f"{t // 3600:02d}{t // 60 % 60:02d}{t % 60:02d}"


def _us_dataset(
    gf: GoutFile,
    patient: GoutPatient,
    anatomy: dict,
    scene: _Scene,
    frames: NDArray[np.uint8],
    *,
    seed: int,
    file_index: int,
    series_number: int,
    instance: int,
    time: str,
):
    who = patient.identity
    sop_class = (
        SECONDARY_CAPTURE_STORAGE
        if gf.secondary_capture
        else US_MULTIFRAME_STORAGE
        if gf.frames > 1
        else US_IMAGE_STORAGE
    )
    uid = make_uid(seed, "gout", "sop", patient.index, file_index)
    ds = new_file_dataset(sop_class, uid)
    ds.ImageType = ["DERIVED", "SECONDARY"] if gf.secondary_capture else ["ORIGINAL", "PRIMARY"]
    add_patient_study(ds, who)
    ds.SeriesTime = _time_plus(who.study_time, 60 * series_number)
    ds.AcquisitionTime = time
    ds.ContentTime = time
    ds.Modality = "OT" if gf.secondary_capture else "US"
    ds.Manufacturer, ds.ManufacturerModelName = DEVICE_MODELS[device_of(patient)["name"]]
    ds.SoftwareVersions = "V3.1.0"
    ds.DeviceSerialNumber = anatomy["serial"]
    ds.StationName = anatomy["station"]
    ds.StudyDescription = "US FOOT 1ST MTPJ BILAT" if anatomy["bilateral"] else "US FOOT 1ST MTPJ"
    ds.SeriesDescription = f"1st MTPJ {gf.view}"
    ds.ViewName = gf.view.upper()
    ds.BodyPartExamined = "FOOT"
    ds.Laterality = anatomy["laterality"]
    ds.ImageLaterality = anatomy["laterality"]
    ds.StudyInstanceUID = make_uid(seed, "gout", "study", patient.index)
    ds.SeriesInstanceUID = make_uid(
        seed, "gout", "series", patient.index, gf.view, int(gf.secondary_capture)
    )
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance
    ds.FrameOfReferenceUID = make_uid(seed, "gout", "for", patient.index)
    device = device_of(patient)
    scale = device["scale"] if device["record"] == "present" else 1.0
    if gf.secondary_capture:
        ds.ConversionType = "WSD"
        ds.SecondaryCaptureDeviceManufacturer = "mskdx"
    else:
        ds.TransducerData = "P42" if device.get("field") == "sector" else "L55"
    if not gf.secondary_capture and device["record"] != "absent":
        ds.SequenceOfUltrasoundRegions = [
            _region_item(scene, scale, scene.x0 + v * scene.width, scene.y0, scene.bw, scene.bh)
            for v in range(device.get("views", 1))
        ]
        if scene.flow_box is not None:
            bx0, by0, bx1, by1 = scene.flow_box
            item = _region_item(
                scene, scale, scene.x0 + bx0, scene.y0 + by0, bx1 - bx0, by1 - by0, data_type=2
            )
            ds.SequenceOfUltrasoundRegions.append(item)
    ds.BurnedInAnnotation = "YES"
    ds.LossyImageCompression = "00"
    ds.Rows = frames.shape[1]
    ds.Columns = frames.shape[2]
    ds.SamplesPerPixel = 3
    ds.PlanarConfiguration = 0
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    if gf.frames > 1:
        ds.NumberOfFrames = gf.frames
        ds.FrameTime = "33.3"
        ds.FrameIncrementPointer = Tag("FrameTime")
        ds.CineRate = 30
        ds.RecommendedDisplayFrameRate = 30
    pixels = frames if gf.frames > 1 else frames[0]
    photometric = gf.photometric
    if photometric == "YBR_FULL_422" and frames.shape[2] % 2:
        photometric = "YBR_FULL"
    ds.PhotometricInterpretation = photometric
    if photometric == "RGB":
        ds.PixelData = pixels.tobytes()
        expected = pixels
    elif photometric == "YBR_FULL":
        ds.PixelData = convert_color_space(pixels, "RGB", "YBR_FULL").tobytes()
        expected = None
    else:
        ds.PixelData = _ybr_422(pixels).tobytes()
        expected = None
    return ds, expected


def _region_item(
    scene: _Scene, scale: float, x0: int, y0: int, w: int, h: int, data_type: int = 1
) -> Dataset:
    """One SequenceOfUltrasoundRegions item: 2D, tissue (1) or colour flow (2), in cm."""
    item = Dataset()
    item.RegionSpatialFormat = 1
    item.RegionDataType = data_type
    item.RegionFlags = 0
    item.RegionLocationMinX0 = int(x0 * scale)
    item.RegionLocationMinY0 = int(y0 * scale)
    item.RegionLocationMaxX1 = int((x0 + w) * scale) - 1
    item.RegionLocationMaxY1 = int((y0 + h) * scale) - 1
    item.PhysicalUnitsXDirection = 3
    item.PhysicalUnitsYDirection = 3
    item.PhysicalDeltaX = round(scene.mm_per_px / 10 / scale, 6)
    item.PhysicalDeltaY = round(scene.mm_per_px / 10 / scale, 6)
    item.ReferencePixelX0 = int(w * scale) // 2
    item.ReferencePixelY0 = 0
    return item


# --------------------------------------------------------------------------------------------
# Cohort
# --------------------------------------------------------------------------------------------


def _patient_anatomy(patient: GoutPatient, seed: int) -> dict:
    rng = rng_for(seed, "gout", "anatomy", patient.index)
    return dict(
        radius=rng.uniform(150, 215),
        cart=rng.uniform(7, 12),
        flip=bool(rng.random() < 0.5),
        mm_per_px=rng.uniform(0.055, 0.075),
        laterality="R" if rng.random() < 0.6 else "L",
        bilateral=bool(rng.random() < 0.3),
        serial=f"{int(rng.integers(100000, 999999))}",
        station=f"US{int(rng.integers(1, 6))}-{patient.identity.institution_short}",
    )


#: capture devices, cycled over the patients so that every small cohort has each: the image
#: size (1.0 = the cohort's width x height; 0.625 = 640x480 from 1024x768, a smaller screen),
#: what the region record holds (present, absent, stale = written for the full-size screen and
#: not updated, as in pydicom's resized copies), header/footer bars, a colour bar beside the
#: field, a colour-flow box inside it (listed in the record as a colour-flow region), the field's
#: shape (linear, a share of them curvilinear; or a sector fan) and the views per capture (2 = a
#: dual view: two views of the same scene side by side on a screen twice as wide, each with its
#: own tissue region in the record)
DEVICES = (
    dict(name="main", scale=1.0, record="present", bars=True, colour_bar=False),
    dict(name="no-record", scale=1.0, record="absent", bars=False, colour_bar=True),
    dict(name="small", scale=0.625, record="present", bars=True, colour_bar=False),
    dict(
        name="main-colour",
        scale=1.0,
        record="present",
        bars=False,
        colour_bar=True,
        colour_box=True,
    ),
    dict(name="small-stale", scale=0.625, record="stale", bars=True, colour_bar=True),
    dict(name="sector", scale=1.0, record="absent", bars=True, colour_bar=False, field="sector"),
    dict(name="dual", scale=1.0, record="present", bars=False, colour_bar=False, views=2),
)
#: Manufacturer and ManufacturerModelName in the headers of each device's files (the subgroup
#: tables' scanners); header only: the pixels, burned-in text included, do not depend on them
DEVICE_MODELS = {
    "main": ("FUJIFILM Healthcare Corporation", "ARIETTA 70"),
    "no-record": ("GE Healthcare", "LOGIQ E10"),
    "small": ("FUJIFILM SonoSite, Inc.", "SonoSite Edge II"),
    "main-colour": ("Canon Medical Systems", "Aplio i800"),
    "small-stale": ("Esaote", "MyLab X8"),
    "sector": ("Philips", "EPIQ 7"),
    "dual": ("Siemens Healthineers", "ACUSON Sequoia"),
}
#: share of the linear devices' files with a curvilinear field (convex top edge)
CURVILINEAR_SHARE = 0.3


def device_of(patient: GoutPatient) -> dict:
    """The capture device of a patient's files (cycled by patient index: deterministic)."""
    return DEVICES[patient.index % len(DEVICES)]


def _add_bars(canvas: NDArray[np.uint8], s: _Scene, rng) -> None:
    """Flat grey header and footer bars where the margins leave room (text is drawn on top)."""
    grey = int(rng.integers(55, 95))
    top = s.y0 - 6
    if top >= 20:
        canvas[: min(top, 40)] = grey
    bottom = s.height - (s.y0 + s.bh) - 6
    if bottom >= 18:
        canvas[s.height - min(bottom, 30) :] = grey
        glyphs.draw_text(canvas, "GEN  2D  MSK  PAGE 1/2", 12, s.height - 14, 1, (220, 220, 220))


def _add_colour_bar(canvas: NDArray[np.uint8], s: _Scene) -> None:
    """A colour-flow scale bar (red to blue) in the margin left of the field."""
    x = max(2, s.x0 - 30)
    y = s.y0 + 20
    n = min(160, s.bh - 40)
    t = np.linspace(0.0, 1.0, n)[:, None]
    bar = np.concatenate([255 * (1 - t), 60 + 0 * t, 255 * t], axis=1).astype(np.uint8)
    canvas[y : y + n, x : x + 12] = bar[:, None, :]


def _curvilinear_cut(s: _Scene) -> NDArray[np.bool_]:
    """Pixels of the region above a convex top arc (blank in a curvilinear field).

    The arc's radius keeps its sag above the lesion window (_Scene.window), so no finding is
    cut; the field's corners at the top are black, as on a convex probe.
    """
    xlo, xhi, ylo, _ = s.window
    half = max(s.bw / 2 - xlo, xhi - s.bw / 2, 1.0)
    sag = max(6.0, ylo - 6.0)  # sag at the window's edges
    radius = (half**2 + sag**2) / (2 * sag)
    yy, xx = np.mgrid[0 : s.bh, 0 : s.bw].astype(np.float32)
    return np.hypot(xx - s.bw / 2, yy - radius) > radius


def _sector_cut(s: _Scene, rng) -> NDArray[np.bool_]:
    """Pixels of the region outside a sector fan (blank on a phased-array probe).

    The fan's (virtual) apex lies above the region's top edge, its sides open at 60-72 degrees
    from the vertical and its far edge is an arc through the region's bottom centre; it spans
    the region's full width where the sides meet the arc, so the region (and its record) is the
    fan's bounding box. The top corners of the crop fall outside the fan; lesions lie deeper,
    where the fan is at least 2 x 300 pixels wide.
    """
    theta = np.deg2rad(rng.uniform(60.0, 72.0))
    radius = max((s.bw / 2 + 2) / np.sin(theta), s.bh + 20.0)
    theta = np.arcsin(min(1.0, (s.bw / 2 + 2) / radius))
    apex = radius - s.bh  # above the top edge
    yy, xx = np.mgrid[0 : s.bh, 0 : s.bw].astype(np.float32)
    dx, dy = xx + 0.5 - s.bw / 2, yy + 0.5 + apex
    return (np.hypot(dx, dy) > radius) | (np.abs(np.arctan2(dx, dy)) > theta)


def _colour_box(s: _Scene, rng) -> tuple[tuple[int, int, int, int], NDArray[np.uint8]]:
    """A colour-flow (Doppler) box in the soft tissue above the joint: its (x0, y0, x1, y1) in
    region pixels and an RGB overlay (zero where no flow signal) with the box's outline."""
    w, h = int(rng.uniform(160, 260)), int(rng.uniform(60, 110))
    x0 = int(np.clip(s.x_j - w / 2 + rng.uniform(-40, 40), 4, s.bw - w - 4))
    y0 = int(np.clip(s.skin + 4, 4, s.bh - h - 4))
    blob = _smooth_field(rng, (h, w), 8, 1.5)
    flow = np.zeros((h, w, 3), np.uint8)
    towards, away = blob > np.quantile(blob, 0.9), blob < np.quantile(blob, 0.05)
    flow[towards] = (230, 40, 30)
    flow[away] = (40, 90, 235)
    flow[[0, -1], :] = (200, 200, 90)
    flow[:, [0, -1]] = (200, 200, 90)
    return (x0, y0, x0 + w, y0 + h), flow


def render_gout_file(
    gf: GoutFile,
    patient: GoutPatient,
    *,
    width: int = 1024,
    height: int = 768,
    difficulty: float = 0.5,
    seed: int = 1,
    file_index: int = 0,
    synovitis: Mapping[str, float] | None = None,
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], _Scene]:
    """Render one planned file: RGB frames (F, H, W, 3), masks (F, H, W) and its scene."""
    anatomy = _patient_anatomy(patient, seed)
    rng = rng_for(seed, "gout", "file", patient.index, file_index)
    scene = _make_scene(gf, patient, anatomy, width, height, difficulty, rng, synovitis)
    time = _time_plus(patient.identity.study_time, 30 * file_index + 90)
    overlay = np.zeros((height, width, 3), dtype=np.uint8)
    _draw_overlays(
        overlay,
        scene,
        patient.identity,
        gf,
        rng_for(seed, "gout", "overlay", patient.index, file_index),
        time,
    )
    device = device_of(patient)
    look = rng_for(seed, "gout", "device", patient.index, file_index)
    if device["bars"]:
        bars = np.zeros_like(overlay)
        _add_bars(bars, scene, look)
        overlay = np.where(overlay.any(axis=2, keepdims=True), overlay, bars)
    if device["colour_bar"]:
        _add_colour_bar(overlay, scene)
    curved = look.random() < CURVILINEAR_SHARE
    if device.get("field") == "sector":
        cut = _sector_cut(scene, look)
    else:
        cut = _curvilinear_cut(scene) if curved else None
    flow = _colour_box(scene, look) if device.get("colour_box") else None
    scene.flow_box = flow[0] if flow is not None else None
    views = device.get("views", 1)
    overlay = np.concatenate([overlay] * views, axis=1)
    frames = np.zeros((gf.frames, height, width * views, 3), dtype=np.uint8)
    masks = np.zeros((gf.frames, height, width * views), dtype=np.uint8)
    speckle = [None] * views
    shift = 0.0
    for f in range(gf.frames):
        moved = float(rng.integers(-3, 4)) if f else 0.0
        shift += moved
        frames[f] = overlay
        for v in range(views):  # a dual view: the same scene, another speckle realisation
            grey, mask, speckle[v] = _render_region(scene, shift, rng, speckle[v], moved)
            if cut is not None:
                grey = np.where(cut, 0, grey)
                mask = np.where(cut, 0, mask)
            x0 = scene.x0 + v * width
            sl = (slice(scene.y0, scene.y0 + scene.bh), slice(x0, x0 + scene.bw))
            frames[f][sl] = grey[:, :, None]
            masks[f][sl] = mask
            if flow is not None:  # flow signal replaces grey pixels, never a lesion's
                (bx0, by0, bx1, by1), rgb = flow
                box = frames[f][scene.y0 + by0 : scene.y0 + by1, x0 + bx0 : x0 + bx1]
                keep = rgb.any(axis=2) & (mask[by0:by1, bx0:bx1] == 0)
                box[keep] = rgb[keep]
    if device["scale"] != 1.0:
        frames, masks = _shrink(frames, masks, device["scale"])
    return frames, masks, scene


def _shrink(frames, masks, scale: float):
    """The smaller device's screen: frames and masks resized by `scale` (area-averaged)."""
    rows, cols = round(frames.shape[1] * scale), round(frames.shape[2] * scale)
    small = np.empty((frames.shape[0], rows, cols, 3), np.uint8)
    small_masks = np.empty((frames.shape[0], rows, cols), np.uint8)
    for f in range(frames.shape[0]):
        out = transform.resize(
            frames[f].astype(np.float32),
            (rows, cols),
            order=1,
            anti_aliasing=True,
            preserve_range=True,
        )
        small[f] = np.clip(np.rint(out), 0, 255).astype(np.uint8)
        mask = transform.resize(
            masks[f].astype(np.float32),
            (rows, cols),
            order=1,
            anti_aliasing=False,
            preserve_range=True,
        )
        small_masks[f] = (mask > 0.25).astype(np.uint8)
    return small, small_masks


def _check_synovitis(synovitis: Mapping[str, float] | None) -> dict[str, float] | None:
    if synovitis is None:
        return None
    if not isinstance(synovitis, Mapping) or set(synovitis) != {"gout", "control"}:
        raise ConfigError(
            f"synthetic.gout.synovitis = {synovitis!r}; expected {{gout: p, control: p}}"
        )
    return {k: check_fraction(f"gout.synovitis.{k}", v) for k, v in synovitis.items()}


def synthesize_gout(
    out_dir: Path,
    *,
    patients_gout: int,
    patients_control: int,
    images: int,
    lesion_fraction: float = 0.62,
    width: int = 1024,
    height: int = 768,
    difficulty: float = 0.5,
    seed: int = 1,
    synovitis: Mapping[str, float] | None = None,
) -> None:
    """Write the synthetic gout cohort (dicom/, labels.csv, masks.npz) into `out_dir`.

    `synovitis` ({gout: p, control: p}) sets the share of images with synovial distension per
    class; by default it follows `difficulty` (0.92 vs 0.02 at 0, 0.6 vs 0.25 at 1).
    """
    width = check_int("gout.width", width, 1)
    synovitis = _check_synovitis(synovitis)
    height = check_int("gout.height", height, 1)
    difficulty = check_fraction("difficulty", difficulty)
    _region_limits(width, height)
    plan = plan_gout(
        patients_gout=patients_gout,
        patients_control=patients_control,
        images=images,
        lesion_fraction=lesion_fraction,
        seed=seed,
    )
    log.info("gout: %d patients, %d files, %d images", len(plan.patients), plan.files, plan.images)
    encoder = Encoder()
    file_index = 0
    findings = dict(zip(LESION_TYPES, IMAGE_FINDINGS, strict=True))
    with CohortWriter(Path(out_dir), "SOPInstanceUID", IMAGE_FINDINGS) as writer:
        for patient in plan.patients:
            anatomy = _patient_anatomy(patient, seed)
            series: dict[tuple[str, bool], int] = {}
            instances: dict[int, int] = {}
            for gf in patient.files:
                key = (gf.view, gf.secondary_capture)
                number = series.setdefault(key, len(series) + 1)
                instances[number] = instances.get(number, 0) + 1
                frames, masks, scene = render_gout_file(
                    gf,
                    patient,
                    width=width,
                    height=height,
                    difficulty=difficulty,
                    seed=seed,
                    file_index=file_index,
                    synovitis=synovitis,
                )
                time = _time_plus(patient.identity.study_time, 30 * file_index + 90)
                ds, expected = _us_dataset(
                    gf,
                    patient,
                    anatomy,
                    scene,
                    frames,
                    seed=seed,
                    file_index=file_index,
                    series_number=number,
                    instance=instances[number],
                    time=time,
                )
                data = encoder.encode(ds, UID(gf.transfer_syntax), expected)
                desc = safe_name(("SC " if gf.secondary_capture else "") + ds.SeriesDescription)
                rel = (
                    f"{patient.patient_id}/{patient.identity.study_date:%Y%m%d}/"
                    f"{number:03d}_{desc}/IM_{instances[number]:04d}.dcm"
                )
                shown = [findings[les.kind] for les in scene.lesions]
                writer.add(rel, data, list(masks), uid=str(ds.SOPInstanceUID), shown=shown)
                file_index += 1
            if (
                writer.frames * 10 // plan.images
                != (writer.frames - patient.images) * 10 // plan.images
            ):
                log.info("gout: %d of %d images written", writer.frames, plan.images)
        writer.commit([(p.patient_id, p.diagnosis) for p in plan.patients])
