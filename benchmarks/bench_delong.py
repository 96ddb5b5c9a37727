"""Time the fast DeLong algorithm (Sun & Xu 2014) against the O(n m) definition.

Not a test: run ``python benchmarks/bench_delong.py`` and read the table. The reference computes
every positive-negative comparison (ties 1/2), as DeLong et al. (1988) define the placements.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mskdx.evaluate.comparison import compare_predictions
from mskdx.evaluate.stats.clustered import clustered_auc, clustered_auc_test
from mskdx.evaluate.stats.delong import delong_auc, delong_covariance, delong_test


def reference_covariance(y: np.ndarray, scores: np.ndarray, chunk: int = 1024):
    """AUCs and DeLong covariance from all m x n comparisons (chunked to bound memory)."""
    scores = np.atleast_2d(scores)
    pos, neg = scores[:, y == 1], scores[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    v10 = np.empty((scores.shape[0], m))
    v01 = np.zeros((scores.shape[0], n))
    for start in range(0, m, chunk):
        x = pos[:, start : start + chunk, None]
        psi = (x > neg[:, None, :]) + 0.5 * (x == neg[:, None, :])
        v10[:, start : start + chunk] = psi.sum(axis=2) / n
        v01 += psi.sum(axis=1)
    v01 /= m
    auc = v10.mean(axis=1)
    cov = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    return auc, cov


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def time_compare(y: np.ndarray, scores: np.ndarray, pid: np.ndarray) -> float:
    """Seconds of one `compare_predictions` run (reading the CSV included) on these images."""
    probs = np.round(1.0 / (1.0 + np.exp(-scores)), 4)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pred.csv"
        frames = [
            pd.DataFrame({"patient": pid, "image": np.arange(y.size), "label": y, "arm": arm,
                          "prob": probs[i]})
            for i, arm in enumerate(("A", "B"))
        ]  # fmt: skip
        pd.concat(frames).to_csv(path, index=False)
        start = time.perf_counter()
        compare_predictions(path, reference="A", threshold=0.5, out_dir=Path(tmp) / "out")
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="cases for fast vs reference")
    parser.add_argument("--large", type=int, default=1_000_000, help="cases for the fast-only run")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--clustered", type=int, default=500_000, help="images, clustered run")
    parser.add_argument("--patients", type=int, default=100_000, help="patients, clustered run")
    parser.add_argument("--compare", action="store_true", help="also time compare_predictions")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)

    def data(size: int) -> tuple[np.ndarray, np.ndarray]:
        y = (rng.random(size) < 0.5).astype(np.int64)
        # two correlated classifiers with ties (scores rounded to 3 decimals)
        base = rng.normal(size=size) + y
        scores = np.round(np.vstack([base, base + rng.normal(size=size)]), 3)
        return y, scores

    y, s = data(args.n)
    auc_fast, cov_fast = delong_covariance(y, s)
    auc_ref, cov_ref = reference_covariance(y, s)
    error = max(np.abs(auc_fast - auc_ref).max(), np.abs(cov_fast - cov_ref).max())
    t_fast = best_of(lambda: delong_covariance(y, s), args.repeat)
    t_ref = best_of(lambda: reference_covariance(y, s), args.repeat)

    y_big, s_big = data(args.large)
    t_big = best_of(lambda: delong_covariance(y_big, s_big[:1]), args.repeat)
    t_big2 = best_of(lambda: delong_covariance(y_big, s_big), args.repeat)

    # Obuchowski (1997) clustered AUC + paired test against DeLong on the same 2 arms
    pid = np.sort(rng.integers(0, args.patients, args.clustered))
    y_c = (rng.random(args.clustered) < 0.4).astype(np.int64)
    base_c = rng.normal(size=args.patients)[pid] + y_c + rng.normal(size=args.clustered)
    s_c = np.round(np.vstack([base_c, base_c + rng.normal(size=args.clustered)]), 3)

    def clustered() -> None:
        clustered_auc(y_c, s_c[0], pid)
        clustered_auc_test(y_c, s_c[0], s_c[1], pid)

    def independent() -> None:
        delong_auc(y_c, s_c[0])
        delong_test(y_c, s_c[0], s_c[1])

    t_clus = best_of(clustered, args.repeat)
    t_ind = best_of(independent, args.repeat)
    size = f"{args.clustered:,} / {args.patients:,} patients"

    rows = [
        ("cases", "classifiers", "method", "seconds", ""),
        (f"{args.n:,}", "2", "fast (midranks)", f"{t_fast:.4f}", ""),
        (f"{args.n:,}", "2", "reference O(n m)", f"{t_ref:.4f}", ""),
        ("", "", "speed-up", f"{t_ref / t_fast:.0f}x", f"max |diff| {error:.1e}"),
        (f"{args.large:,}", "1", "fast (midranks)", f"{t_big:.4f}", "one AUC + variance"),
        (f"{args.large:,}", "2", "fast (midranks)", f"{t_big2:.4f}", "paired test inputs"),
        (size, "2", "clustered (Obuchowski)", f"{t_clus:.4f}", "AUC + CI, paired test"),
        (size, "2", "independent (DeLong)", f"{t_ind:.4f}", "AUC + CI, paired test"),
    ]
    if args.compare:
        rows.append((size, "2", "compare_predictions", f"{time_compare(y_c, s_c, pid):.4f}",
                     "CSV in, comparison.csv + .md out"))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    main()
