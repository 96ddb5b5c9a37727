"""Gout paper (Xiao et al. 2025): can Table I's McNemar p-values come from its printed counts?

Table I prints, against the 3-block model, a p-value of McNemar's test for ACC, SEN and SPE
with each arm's counts of correct images. The discordant counts b and c are not printed, but
b - c is the difference of the two arms' correct counts, so b + c has its parity; each printed
p is searched for among every admissible b + c and each variant of the test.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binom, chi2

from mskdx.evaluate.papers import printed as papers
from mskdx.evaluate.papers.common import GOUT, INCONSISTENT, UNEXPLAINED, CheckRows
from mskdx.evaluate.papers.printed import Cell

__all__ = ["MCNEMAR_VARIANTS", "check_gout_mcnemar", "mcnemar_fits"]


#: McNemar variants tried on Table I's p-values; the first three are what software calls
#: "McNemar's test" (McNemar 1947; Edwards 1948; the exact binomial form), mid-p is not.
MCNEMAR_VARIANTS = ("McNemar 1947 (no correction)", "Edwards' correction", "exact", "mid-p")


def _mcnemar_pvalues(b: np.ndarray, c: np.ndarray, variant: str) -> np.ndarray:
    """Two-sided p of McNemar's test for arrays of discordant counts, by `variant`.

    Chi-square statistic (b - c)^2 / (b + c) (McNemar 1947), (|b - c| - 1)^2 / (b + c) with
    Edwards' (1948) correction; exact: 2 P(X <= min(b, c)), X ~ Binomial(b + c, 1/2), capped
    at 1 (as `mskdx.evaluate.stats.mcnemar`); mid-p: the exact p less P(X = min(b, c)).
    """
    s, low = b + c, np.minimum(b, c)
    if variant == "McNemar 1947 (no correction)":
        return chi2.sf((b - c) ** 2 / s, 1)
    if variant == "Edwards' correction":
        return chi2.sf(np.maximum(np.abs(b - c) - 1, 0) ** 2 / s, 1)
    exact = 2 * binom.cdf(low, s, 0.5)
    if variant == "exact":
        return np.minimum(1.0, exact)
    return np.minimum(1.0, exact - binom.pmf(low, s, 0.5))


def mcnemar_fits(k_reference: int, k_other: int, n: int, pvalue: Cell) -> dict[str, list[int]]:
    """Per McNemar variant, the discordant totals b + c that give `pvalue` (as printed).

    b (reference right, other wrong) - c (reference wrong, other right) = k_reference - k_other;
    b + c has the parity of that difference and is bounded by the counts.
    """
    d = k_reference - k_other
    s = np.arange(max(abs(d), 1), n + 1)
    s = s[(s - d) % 2 == 0]
    b, c = (s + d) // 2, (s - d) // 2
    keep = (b <= min(k_reference, n - k_other)) & (c <= min(n - k_reference, k_other))
    s, b, c = s[keep], b[keep], c[keep]
    tolerance = pvalue.half_unit + 1e-9
    return {
        variant: [
            int(x) for x in s[np.abs(_mcnemar_pvalues(b, c, variant) - pvalue.value) <= tolerance]
        ]
        for variant in MCNEMAR_VARIANTS
    }


def check_gout_mcnemar(rows: CheckRows) -> None:
    """Table I's McNemar p-values (ACC, SEN, SPE vs 3 blocks): can the printed counts give them?

    Consistent where a variant of McNemar's test gives the printed p for some discordant total;
    unexplained where only the mid-p variant does; inconsistent where none does.
    """
    table1 = papers.GOUT_TABLE1
    reference = table1["blocks3"]
    named = MCNEMAR_VARIANTS[:3]
    for arm, row in table1.items():
        if arm == "blocks3":
            continue
        label = papers.GOUT_ARM_LABELS[arm]
        for name, title in (("acc", "ACC"), ("sen", "SEN"), ("spe", "SPE")):
            ref, other, pvalue = reference[name], row[name], row[f"p_{name}"]
            fits = mcnemar_fits(ref.k, other.k, ref.n, pvalue)
            found = [v for v in MCNEMAR_VARIANTS if fits[v]]
            rows.add(
                GOUT,
                f"Table I {label} {title} p: McNemar from the counts",
                f"{pvalue} ({ref.k}/{ref.n} vs {other.k}/{other.n})",
                "; ".join(
                    f"{v}: b + c = {', '.join(map(str, fits[v][:4]))}"
                    + ("..." if len(fits[v]) > 4 else "")
                    if fits[v]
                    else f"{v}: none"
                    for v in MCNEMAR_VARIANTS
                ),
                f"every discordant total b + c with b - c = {ref.k} - {other.k}, by each variant "
                "of McNemar's test; the paper names McNemar's test",
                any(fits[v] for v in named),
                note=f"given by {', '.join(v for v in found if v in named)}"
                if any(v in named for v in found)
                else "",
                note_if_flagged=f"only the mid-p variant, which the paper does not name, gives "
                f"{pvalue}"
                if found
                else f"no discordant total gives {pvalue} by any variant: the p-value and the "
                "printed counts cannot both be right",
                flag=UNEXPLAINED if found else INCONSISTENT,
            )
