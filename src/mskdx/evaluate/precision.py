"""Precision and sample size: what a cohort of clustered images can say, and what it would need.

Per cohort and arm (`precision_table`):
- the images and patients, the design effect of sensitivity and specificity (images clustered
  by patient; Kish 1965, Survey Sampling, sec. 5.4), the effective number of positive and
  negative images (images / design effect), and the 95% CI half-width the cohort gives: for the
  AUC by Hanley & McNeil (1982, Radiology 143:29) at the observed AUC and the effective class
  sizes, for SEN and SPE by Wilson (1927) at the effective n;
- for external cohorts, the events (positive patients) and non-events, and whether both reach
  the commonly required minimum of 100 (Vergouwe et al. 2005, J Clin Epidemiol 58:475;
  Collins, Ogundimu & Altman 2016, Stat Med 35:214; Riley et al. 2021, Stat Med 40:4230, which
  shows that 100 can be too few and gives criteria of its own);
- for the development cohort, Riley et al.'s criterion of a precise overall risk (margin 0.05)
  at the observed patient prevalence, and, when an anticipated Cox-Snell R2 and a number of
  candidate parameters are given, the full minimum sample size of Riley et al. (2019, Stat Med
  38:1276, part II; 2020, BMJ 368:m441), `riley_sample_size`, as R's pmsampsize computes it.

The design effects are computed per arm and class by the clustered engine,
`mskdx.evaluate.stats.clustered_binary.clustered_proportion` (the same ratio-estimator
variance as `design_effect` here: with patients as clusters, over the simple-random-sampling
variance s^2/n, the survey package's convention, so that one image per patient gives exactly
1), with the intraclass correlation it implies; the AUC's design effect is Obuchowski's
clustered variance over DeLong's (`stats.clustered.clustered_auc`). One design effect may be
given instead (`deff`). A design effect below 1 (chance negative correlation) is taken as 1: a
cohort never claims more information than its images hold.

Image labels: SEN, SPE, the AUC and the design effects are image-level (`label`, the image's
own); events and non-events count patients by their diagnosis (`patient_label` where the
predictions carry it, else `label`, then one per patient).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats as sps
from statsmodels.stats.proportion import proportion_confint

from mskdx.evaluate.stats.hanley import hanley_mcneil_se
from mskdx.ingest.label_levels import patient_level

log = logging.getLogger(__name__)

__all__ = [
    "EVENTS_MINIMUM",
    "RileySampleSize",
    "design_effect",
    "precision_markdown",
    "precision_table",
    "riley_sample_size",
    "tabulate_precision_step",
    "write_precision_table",
]

#: events and non-events an external validation cohort commonly needs (Collins et al. 2016)
EVENTS_MINIMUM = 100
COLUMNS = ("cohort", "arm", "patient", "label", "prob", "call")


def design_effect(patient: ArrayLike, successes: ArrayLike) -> float:
    """Return the design effect of the proportion of `successes` (0/1) with patients as clusters.

    Ratio estimator p = sum_g a_g / sum_g m_g with the between-patient variance
    G/(G-1) sum_g (a_g - p m_g)^2 / n^2 (as `survey::svymean` under `ids = ~patient`), divided
    by s^2 / n with s^2 = sum (x - p)^2 / (n - 1). NaN where it does not exist: fewer than two
    images or two patients, or a proportion of 0 or 1 (no variance either way).
    """
    x = np.asarray(successes, dtype=float)
    codes, uniques = pd.factorize(pd.Series(np.asarray(patient, dtype=object)))
    if len(codes) != len(x):
        raise ValueError(f"patient ({len(codes)}) and successes ({len(x)}): expected one each")
    n, groups = len(x), len(uniques)
    if n < 2 or groups < 2:
        return math.nan
    p = x.mean()
    if p in (0.0, 1.0):
        return math.nan
    a = np.bincount(codes, weights=x, minlength=groups)
    m = np.bincount(codes, minlength=groups)
    between = groups / (groups - 1) * float(((a - p * m) ** 2).sum()) / n**2
    simple = float(((x - p) ** 2).sum()) / (n - 1) / n
    return between / simple


@dataclass(frozen=True)
class RileySampleSize:
    """Minimum development sample size for a binary outcome (Riley et al. 2019, 2020).

    Criteria: (1) expected uniform shrinkage >= `shrinkage`; (2) apparent minus adjusted
    Nagelkerke R2 <= `optimism`; (3) overall risk estimated within +-`margin` (95%); `n_required`
    is the largest. `events_required` is ceil(n_required * prevalence), as pmsampsize prints it.
    """

    r2_cs: float
    parameters: int
    prevalence: float
    shrinkage: float
    optimism: float
    margin: float
    max_r2_cs: float
    r2_nagelkerke: float
    n_shrinkage: int
    n_optimism: int
    n_overall_risk: int
    n_required: int
    events_required: int
    epp: float
    #: the shrinkage expected at n_required (criterion 2's, where it is the larger)
    shrinkage_expected: float

    def table(self) -> pd.DataFrame:
        """The criteria as pmsampsize's results table: criterion, n, shrinkage, events, EPP."""
        rows = [
            ("shrinkage", self.n_shrinkage, self.shrinkage),
            ("optimism in Nagelkerke R2", self.n_optimism, self._s2()),
            ("overall risk", self.n_overall_risk, self.shrinkage_expected),
            ("required", self.n_required, self.shrinkage_expected),
        ]
        return pd.DataFrame(
            [
                {
                    "criterion": name,
                    "n": n,
                    "shrinkage": round(s, 3),
                    "events": n * self.prevalence,
                    "epp": round(n * self.prevalence / self.parameters, 2),
                }
                for name, n, s in rows
            ]
        )

    def _s2(self) -> float:
        return self.r2_cs / (self.r2_cs + self.optimism * self.max_r2_cs)


def _n_for_shrinkage(parameters: int, r2_cs: float, shrinkage: float) -> int:
    """Riley et al. 2019 eq. 11: n = p / ((S - 1) ln(1 - R2_CS / S))."""
    return math.ceil(parameters / ((shrinkage - 1) * math.log(1 - r2_cs / shrinkage)))


def riley_sample_size(
    r2_cs: float,
    parameters: int,
    prevalence: float,
    shrinkage: float = 0.9,
    optimism: float = 0.05,
    margin: float = 0.05,
) -> RileySampleSize:
    """Return the minimum sample size to develop a logistic model (Riley et al. 2020, BMJ).

    `r2_cs`: the anticipated Cox-Snell R2 (adjusted, e.g. from a previous model); `parameters`:
    the candidate predictor parameters; `prevalence`: the anticipated outcome proportion.
    """
    if isinstance(parameters, bool) or int(parameters) != parameters or parameters < 1:
        raise ValueError(f"parameters={parameters!r}: expected a whole number >= 1")
    for name, value in (("prevalence", prevalence), ("shrinkage", shrinkage)):
        if not 0 < value < 1:
            raise ValueError(f"{name}={value!r}: expected a value strictly between 0 and 1")
    if not (0 < optimism < 1 and 0 < margin < 1):
        raise ValueError(f"optimism={optimism!r}, margin={margin!r}: expected values in (0, 1)")
    phi = prevalence
    # the largest Cox-Snell R2 a model of this prevalence can reach (Riley et al. 2019, eq. 23)
    max_r2 = 1 - math.exp(2 * (phi * math.log(phi) + (1 - phi) * math.log(1 - phi)))
    if not 0 < r2_cs < min(max_r2, shrinkage):
        raise ValueError(
            f"r2_cs={r2_cs!r}: expected 0 < R2_CS < {min(max_r2, shrinkage):.4f} (the largest "
            f"Cox-Snell R2 at prevalence {phi:g} is {max_r2:.4f}, and R2_CS < shrinkage)"
        )
    n1 = _n_for_shrinkage(parameters, r2_cs, shrinkage)
    # criterion 2: the shrinkage that keeps the Nagelkerke optimism at `optimism` (eq. 26)
    s2 = r2_cs / (r2_cs + optimism * max_r2)
    n2 = _n_for_shrinkage(parameters, r2_cs, s2)
    n3 = math.ceil((1.96 / margin) ** 2 * phi * (1 - phi))
    n = max(n1, n2, n3)
    return RileySampleSize(
        r2_cs=r2_cs,
        parameters=int(parameters),
        prevalence=phi,
        shrinkage=shrinkage,
        optimism=optimism,
        margin=margin,
        max_r2_cs=max_r2,
        r2_nagelkerke=r2_cs / max_r2,
        n_shrinkage=n1,
        n_optimism=n2,
        n_overall_risk=n3,
        n_required=n,
        events_required=math.ceil(n * phi),
        epp=round(n * phi / parameters, 2),
        shrinkage_expected=max(shrinkage, s2),
    )


def _wilson_half_width(p: float, n_eff: float, level: float) -> float:
    if not n_eff > 0 or math.isnan(p):
        return math.nan
    low, high = proportion_confint(p * n_eff, n_eff, alpha=1 - level, method="wilson")
    return float(high - low) / 2


def _auc(label: np.ndarray, prob: np.ndarray) -> float:
    from mskdx.evaluate.stats.delong import delong_auc

    if label.min() == label.max():
        return math.nan
    return delong_auc(label, prob).auc


def _effective(n: int, deff: float, notes: list[str], what: str) -> float:
    if math.isnan(deff):
        notes.append(f"{what}: design effect not estimable, taken as 1")
        return float(n)
    if deff < 1:
        notes.append(f"{what}: design effect {deff:.2f} < 1 taken as 1")
        return float(n)
    return n / deff


def _clustered_deff(patient: np.ndarray, correct: np.ndarray) -> tuple[float, float]:
    """(design effect, ICC) of the share of correct calls, patients as clusters."""
    from mskdx.evaluate.stats.clustered_binary import clustered_proportion

    if not len(correct):
        return math.nan, math.nan
    result = clustered_proportion(correct.astype(bool), patient)
    return result.design_effect, result.icc


def _auc_deff(label: np.ndarray, prob: np.ndarray, patient: np.ndarray) -> float:
    """Obuchowski's clustered AUC variance over DeLong's (NaN where either does not exist)."""
    from mskdx.evaluate.stats.clustered import clustered_auc

    if label.min() == label.max():
        return math.nan
    result = clustered_auc(label, prob, patient)
    return math.nan if result.note else result.design_effect  # no CI: no design effect


def _diagnosis(part: pd.DataFrame) -> pd.Series:
    """Each patient's diagnosis: `patient_label` where present, else its images' `label`."""
    column = "patient_label" if "patient_label" in part.columns else "label"
    if column == "patient_label" and part[column].isna().any():
        column = "label"
    return part.groupby("patient")[column].max()


def _arm_row(part: pd.DataFrame, deff: float | None, level: float) -> dict:
    label = part["label"].to_numpy().astype(int)
    correct = (part["call"].to_numpy().astype(int) == label).astype(float)
    pos, neg = label == 1, label == 0
    patient = part["patient"].to_numpy(dtype=object)
    prob = part["prob"].to_numpy(dtype=float)
    patients = _diagnosis(part)
    notes: list[str] = []
    if deff is None:
        d_pos, icc_pos = _clustered_deff(patient[pos], correct[pos])
        d_neg, icc_neg = _clustered_deff(patient[neg], correct[neg])
        d_auc = _auc_deff(label, prob, patient)
    else:
        d_pos = d_neg = d_auc = float(deff)
        icc_pos = icc_neg = math.nan
    n_pos = _effective(int(pos.sum()), d_pos, notes, "positives")
    n_neg = _effective(int(neg.sum()), d_neg, notes, "negatives")
    sen = float(correct[pos].mean()) if pos.any() else math.nan
    spe = float(correct[neg].mean()) if neg.any() else math.nan
    auc = _auc(label, prob)
    z = float(sps.norm.ppf(0.5 + level / 2))
    auc_half = math.nan
    if not math.isnan(auc) and n_pos >= 1 and n_neg >= 1:
        auc_half = z * hanley_mcneil_se(auc, n_pos, n_neg)
    return {
        "n_images": len(part),
        "n_patients": len(patients),
        "positive_images": int(pos.sum()),
        "negative_images": int(neg.sum()),
        "events": int((patients == 1).sum()),
        "non_events": int((patients == 0).sum()),
        "deff_positive": d_pos,
        "deff_negative": d_neg,
        "icc_positive": icc_pos,
        "icc_negative": icc_neg,
        "deff_auc": d_auc,
        "deff_source": "clustered (patients)" if deff is None else "given",
        "n_eff_positive": n_pos,
        "n_eff_negative": n_neg,
        "auc": auc,
        "auc_half_width": auc_half,
        "sen": sen,
        "sen_half_width": _wilson_half_width(sen, n_pos, level),
        "spe": spe,
        "spe_half_width": _wilson_half_width(spe, n_neg, level),
        "note": "; ".join(notes),
    }


def _check_columns(frame: pd.DataFrame, cohort: str) -> None:
    missing = [c for c in COLUMNS[1:] if c not in frame.columns]
    if missing:
        raise ValueError(f"cohort {cohort!r}: predictions lack columns {missing}")
    for column in ("label", "call"):
        bad = np.flatnonzero(~frame[column].isin([0, 1]).to_numpy())
        if len(bad):
            raise ValueError(
                f"cohort {cohort!r}: column {column!r} holds values other than 0/1 at rows "
                f"{bad[:10].tolist()}"
            )
    # image labels may differ within a patient; its diagnosis (patient_label) may not
    mixed = patient_level(frame).groupby(["arm", "patient"])["label"].nunique()
    if (mixed > 1).any():
        first = mixed[mixed > 1].index[0]
        raise ValueError(
            f"cohort {cohort!r}: patient {first[1]} (arm {first[0]}) has images of both labels; "
            "expected one diagnosis per patient"
        )


def precision_table(
    cohorts: Mapping[str, pd.DataFrame],
    external: Iterable[str] = (),
    deff: float | Mapping[str, float] | None = None,
    riley: RileySampleSize | None = None,
    level: float = 0.95,
) -> pd.DataFrame:
    """One row per cohort and arm: counts, design effects, effective n and CI half-widths.

    `cohorts` maps a cohort's name to its scored images (columns arm, patient, label 0/1: the
    image label, prob, call 0/1: the image called positive; optional patient_label: the
    patient's diagnosis, which events count, else label); `external` names the external
    cohorts; `deff` is one design effect for every cohort, a mapping cohort -> design effect, or
    None to compute them per arm and class (`clustered_proportion`); `riley` the development
    cohort's planned sample size.

    Columns: cohort, external, arm; n_images, n_patients; positive_images, negative_images;
    events, non_events (positive and negative PATIENTS, by `patient_label` where present);
    deff_positive, deff_negative (design effects of SEN among positive and SPE among negative
    images, `clustered_proportion`), icc_positive, icc_negative (the ICCs they imply), deff_auc
    (Obuchowski over DeLong variance of the AUC) and deff_source ("clustered (patients)" or
    "given": then the ICCs are blank);
    n_eff_positive, n_eff_negative (images / max(deff, 1)); auc and auc_half_width (Hanley &
    McNeil at the effective class sizes, z * SE); sen, spe and their half-widths ((high - low)/2
    of the Wilson interval at the effective n); events_reach_100 (external cohorts: events and
    non-events both >= 100, else blank); n_required_overall_risk (development: Riley's
    criterion 3 at the observed patient prevalence, margin 0.05); n_required_riley and
    riley_met (development, when `riley` is given: its n_required, and n_patients >= it);
    note (design effects taken as 1, and why).
    """
    external = set(external)
    unknown = external - set(cohorts)
    if unknown:
        raise ValueError(f"external cohorts {sorted(unknown)}: not among {sorted(cohorts)}")
    rows = []
    for cohort, frame in cohorts.items():
        _check_columns(frame, cohort)
        given = deff.get(cohort) if isinstance(deff, Mapping) else deff
        for arm, part in frame.groupby("arm", sort=True):
            row = {"cohort": cohort, "external": cohort in external, "arm": arm}
            row.update(_arm_row(part, given, level))
            is_external = cohort in external
            least = min(row["events"], row["non_events"])
            row["events_reach_100"] = least >= EVENTS_MINIMUM if is_external else pd.NA
            phi = row["events"] / row["n_patients"]
            row["n_required_overall_risk"] = (
                pd.NA if is_external else math.ceil((1.96 / 0.05) ** 2 * phi * (1 - phi))
            )
            if riley is not None and not is_external:
                row["n_required_riley"] = riley.n_required
                row["riley_met"] = row["n_patients"] >= riley.n_required
            else:
                row["n_required_riley"] = row["riley_met"] = pd.NA
            rows.append(row)
    table = pd.DataFrame(rows)
    note = table.pop("note")
    table["note"] = note
    return table


def precision_markdown(table: pd.DataFrame, title: str = "") -> str:
    """The precision table as GitHub Markdown, half-widths as "± x", a legend below."""
    from mskdx.evaluate.markdown import to_markdown

    view = table.copy()
    for metric in ("auc", "sen", "spe"):
        view[metric] = [
            "" if math.isnan(v) else f"{v:.3f} ± {h:.3f}"
            for v, h in zip(view[metric], view.pop(f"{metric}_half_width"), strict=True)
        ]
    for column in (
        "deff_positive",
        "deff_negative",
        "deff_auc",
        "n_eff_positive",
        "n_eff_negative",
    ):
        view[column] = view[column].round(1 if column.startswith("n_") else 2)
    for column in ("icc_positive", "icc_negative"):
        view[column] = view[column].round(3)
    legend = (
        "\n\nDesign effects (deff) of SEN among the positive and SPE among the negative "
        "images, patients as clusters, and the ICCs they imply; deff_auc: the clustered "
        "(Obuchowski) over the image-independent (DeLong) variance of the AUC. "
        "Effective n = images / design effect (images clustered by patient); ± is the 95% "
        "CI half-width the cohort gives: Hanley-McNeil for the AUC at the effective class "
        "sizes, Wilson for SEN and SPE at the effective n. events: positive patients; "
        f"events_reach_100: external cohorts with at least {EVENTS_MINIMUM} events and "
        "non-events (Collins et al. 2016). n_required_overall_risk: Riley et al. 2020's "
        "criterion of a precise overall risk (margin 0.05).\n"
    )
    return to_markdown(view, title or "Precision and sample size") + legend


def write_precision_table(
    table: pd.DataFrame,
    csv: str | os.PathLike[str],
    md: str | os.PathLike[str],
    riley: RileySampleSize | None = None,
) -> None:
    """Write the precision table as CSV and Markdown (with Riley's criteria when planned)."""
    from mskdx.evaluate.markdown import to_markdown
    from mskdx.io import write_table, write_text

    for row in table[table["note"] != ""].itertuples():
        log.info("precision %s %s: %s", row.cohort, row.arm, row.note)
    write_table(table, csv)
    text = precision_markdown(table)
    if riley is not None:
        title = (
            f"Riley et al. (2020) minimum development sample size: anticipated Cox-Snell R2 "
            f"{riley.r2_cs:g}, candidate parameters {riley.parameters}, prevalence "
            f"{riley.prevalence:g}"
        )
        text += "\n" + to_markdown(riley.table(), title)
    write_text(md, text)


def tabulate_precision_step(
    predictions: Iterable[str | os.PathLike[str]],
    *,
    study: str,
    image_threshold: float,
    csv: str | os.PathLike[str],
    md: str | os.PathLike[str],
    external: Iterable[str | os.PathLike[str]] = (),
    riley: Mapping | None = None,
) -> pd.DataFrame:
    """Rule tabulate_precision: the precision table of a study's development predictions (the
    test subsets of every fold, pooled) and its external cohorts' ensemble scores.

    An image is called positive iff prob > `image_threshold` (as the paper tables). `riley` is
    the config's `studies.<study>.precision.riley` ({r2_cs, parameters, prevalence}; None: off).
    """
    from mskdx.errors import ConfigError
    from mskdx.evaluate.clinical import read_cohorts, scored_rows

    plan = None
    if riley:
        try:
            plan = riley_sample_size(riley["r2_cs"], riley["parameters"], riley["prevalence"])
        except ValueError as exc:
            raise ConfigError(f"studies.{study}.precision.riley: {exc}") from None
    cohorts = {
        name: scored_rows(frame).assign(call=lambda f: (f["prob"] > image_threshold).astype(int))
        for name, frame in read_cohorts(list(predictions), list(external)).items()
    }
    others = [name for name in cohorts if name != "development"]
    table = precision_table(cohorts, external=others, riley=plan)
    write_precision_table(table, csv, md, plan)
    return table
