"""Empirical size (type I error) and power of the clustered tests beside the image-independent ones.

Not a test: run ``python benchmarks/bench_inference.py`` and read the table (issue 37). Null
cohorts of the gout paper's shape: 260 patients, 5 to 13 images each (mean 9); half the patients
are diseased, and 80% of a diseased patient's images are positive (so patients hold both
classes), the others' images are all negative. Four arms of equal skill score every image:

    score_ijr = mu * label_ij + u_i + v_ir + e_ijr,   u ~ N(0, sd_shared), v ~ N(0, sd_arm),
    e ~ N(0, 1), call = score >= mu / 2

u_i is the patient effect shared by the arms (within-patient correlation), v_ir the arm-specific
patient effect (different networks fail on different patients). Per cohort:

- one named pair (arm 1 vs arm 2): AUC (Obuchowski vs DeLong), ACC, SEN, SPE (Durkalski vs
  McNemar with continuity correction, the papers' test);
- the family "named reference": arm 1 vs arms 2-4, any p < alpha (AUC and ACC): clustered with
  Holm over the 3, against the old independent tests without adjustment;
- the family "auto": the arm with the highest AUC vs the other 3, any p < alpha: clustered with
  Holm over all 6 pairs (`stats.multiplicity`), against the old independent unadjusted tests.

Monte Carlo error: a rejection rate r over R cohorts has SE sqrt(r (1 - r) / R); at r = 0.05
and R = 1000 (the default) that is 0.69%, so a rate within 0.05 +- 0.014 is consistent with
nominal size at 95%. Power: arm 1 with mu + delta (stated in the output) on the middle design.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time

import numpy as np
from scipy.stats import norm

from mskdx.evaluate.stats.clustered import clustered_auc_covariance
from mskdx.evaluate.stats.clustered_binary import clustered_mcnemar
from mskdx.evaluate.stats.delong import delong_covariance
from mskdx.evaluate.stats.mcnemar import mcnemar
from mskdx.evaluate.stats.multiplicity import holm

PAIRS = list(itertools.combinations(range(4), 2))


def cohort(rng, n_patients, sd_shared, sd_arm, mu=1.5, delta=0.0, arms=4):
    """One simulated cohort: labels (n,), patients (n,), scores (arms, n); arm 0 gets mu + delta."""
    sizes = rng.integers(5, 14, n_patients)
    patients = np.repeat(np.arange(n_patients), sizes)
    diseased = rng.random(n_patients) < 0.5
    y = (diseased[patients] & (rng.random(patients.size) < 0.8)).astype(int)
    u = rng.normal(0, sd_shared, n_patients)[patients]
    v = rng.normal(0, sd_arm, (arms, n_patients))[:, patients]
    mus = np.full((arms, 1), mu)
    mus[0] += delta
    scores = mus * y + u + v + rng.normal(size=(arms, patients.size))
    return y, patients, scores, scores >= mus / 2


def _pairwise_p(auc, cov):
    out = {}
    for a, b in PAIRS:
        var = cov[a, a] + cov[b, b] - 2 * cov[a, b]
        out[(a, b)] = 2 * norm.sf(abs(auc[a] - auc[b]) / math.sqrt(var)) if var > 0 else 1.0
    return out


def _binary_p(y, patients, calls, a, b, clustered):
    right = calls == (y == 1)
    out = {}
    for name, mask in (("acc", slice(None)), ("sen", y == 1), ("spe", y == 0)):
        if clustered:
            out[name] = clustered_mcnemar(right[a][mask], right[b][mask], patients[mask]).pvalue
        else:
            out[name] = mcnemar(right[a][mask], right[b][mask]).pvalue
    return out


def one_cohort(rng, n_patients, sd_shared, sd_arm, delta, alpha):
    """Rejections (booleans) of every test on one cohort, keyed by (test, method)."""
    y, patients, scores, calls = cohort(rng, n_patients, sd_shared, sd_arm, delta=delta)
    res = {}
    for method, (auc, cov) in (
        ("clustered", clustered_auc_covariance(y, scores, patients)),
        ("independent", delong_covariance(y, scores)),
    ):
        clustered = method == "clustered"
        p_auc = _pairwise_p(auc, cov)
        binary = {pair: _binary_p(y, patients, calls, *pair, clustered) for pair in PAIRS}
        res[("AUC, one pair", method)] = p_auc[(0, 1)] < alpha
        for name in ("acc", "sen", "spe"):
            res[(f"{name.upper()}, one pair", method)] = binary[(0, 1)][name] < alpha
        for metric, pvals in (("AUC", p_auc), ("ACC", {k: v["acc"] for k, v in binary.items()})):
            named = [pvals[(0, j)] for j in (1, 2, 3)]
            named = holm(named) if clustered else np.array(named)
            res[(f"{metric}, named reference, any of 3", method)] = bool((named < alpha).any())
            best = int(np.argmax(auc))
            if clustered:
                adj = dict(zip(PAIRS, holm([pvals[p] for p in PAIRS]), strict=True))
            else:
                adj = pvals
            against = [adj[tuple(sorted((best, j)))] for j in range(4) if j != best]
            res[(f"{metric}, auto reference, any of 3", method)] = bool(min(against) < alpha)
    return res


def run(settings, replicates, n_patients, delta, alpha, seed):
    rows = []
    for i, (sd_shared, sd_arm, eff) in enumerate(settings):
        rng = np.random.default_rng([seed, i])
        counts: dict = {}
        for _ in range(replicates):
            for key, rejected in one_cohort(rng, n_patients, sd_shared, sd_arm, eff, alpha).items():
                counts[key] = counts.get(key, 0) + int(rejected)
        rows.append(((sd_shared, sd_arm, eff), {k: v / replicates for k, v in counts.items()}))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=1000, help="cohorts per design")
    parser.add_argument("--patients", type=int, default=260)
    parser.add_argument("--delta", type=float, default=0.25, help="arm 1's extra mu for power")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    null = [(s, a, 0.0) for s in (0.0, 1.0) for a in (0.0, 0.5, 1.0)]
    rows = run(null + [(1.0, 0.5, args.delta)], args.replicates, args.patients, args.delta,
               args.alpha, args.seed)  # fmt: skip
    tests = list(rows[0][1])
    names = sorted({t for t, _ in tests}, key=[t for t, _ in tests].index)
    header = ["test"] + [
        f"{'power' if e else 'size'} sd_u={s:g} sd_v={a:g}" + (f" d={e:g}" if e else "")
        for (s, a, e), _ in rows
    ]
    print(f"# {args.replicates} cohorts per design, {args.patients} patients, alpha {args.alpha}")
    mc = math.sqrt(args.alpha * (1 - args.alpha) / args.replicates)
    print(f"# Monte Carlo SE of a rate at {args.alpha}: {mc:.4f} (95% band +-{1.96 * mc:.4f})")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name in names:
        for method in ("clustered", "independent"):
            cells = [f"{r[(name, method)]:.3f}" for _, r in rows]
            print(f"| {name} ({method}) | " + " | ".join(cells) + " |")
    print(f"# {time.perf_counter() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
