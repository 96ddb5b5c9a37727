"""Complexity table (gout: Table II): parameters and MACs of each arm at the study's input size.

Any arm is counted (the papers' nets, torchvision and user-built ones); the gout paper's printed
values stand beside its own arms.
"""

from __future__ import annotations

import os

import pandas as pd

from mskdx.evaluate.markdown import write_table_pair
from mskdx.evaluate.papers import printed as papers

PathLike = str | os.PathLike
PAPER_INPUT = (3, 320, 700)  # C, H, W of the gout paper's Table II


def complexity_table(
    arms: dict[str, dict], input_shape: tuple[int, ...] = (3, 320, 700)
) -> pd.DataFrame:
    """Tabulate parameters and MACs (millions) of each arm at `input_shape` (C, H, W), beside
    the gout paper's Table II values for its arms.

    Differences are (ours - paper) / paper in percent; the paper rounds to 0.01 M, so parameter
    differences up to about 0.1% are rounding. Arms without a paper row (and every arm at another
    input size than the paper's 3x320x700) get empty paper columns. The paper's 3-block row is
    0.3% above our 3-block net and repeats the 4-block parameter count: most likely a copy error in
    the paper. MACs follow `mskdx.learn.models.complexity` (convolutions, batch norms, linear
    layers, adaptive pooling; as in thop, attention products and layer norms are not counted).
    """
    from mskdx.learn.arms import build  # torch: only for this table
    from mskdx.learn.models import complexity

    printed = papers.gout_table2()
    rows = []
    for arm, spec in arms.items():
        spec = dict(spec)
        # the count does not depend on the weights: none are read
        counts = complexity(build(spec, load=False), tuple(input_shape))
        paper = (
            printed.get(spec.get("blocks"))
            if spec.get("architecture") == "resnet_blocks" and tuple(input_shape) == PAPER_INPUT
            else None
        )
        params_m, macs_m = counts.params / 1e6, counts.macs / 1e6
        row = {
            "arm": arm,
            "architecture": _architecture(spec),
            "input": "x".join(str(int(n)) for n in input_shape),
            "params_m": round(params_m, 4),
            "macs_m": round(macs_m, 2),
            "paper_params_m": paper["params_m"] if paper else None,
            "paper_macs_m": paper["macs_m"] if paper else None,
            "params_diff_pct": (
                round(100 * (params_m - paper["params_m"]) / paper["params_m"], 3)
                if paper
                else None
            ),
            "macs_diff_pct": (
                round(100 * (macs_m - paper["macs_m"]) / paper["macs_m"], 3) if paper else None
            ),
        }
        rows.append(row)
    return pd.DataFrame(
        rows,
        columns=[
            "arm",
            "architecture",
            "input",
            "params_m",
            "macs_m",
            "paper_params_m",
            "paper_macs_m",
            "params_diff_pct",
            "macs_diff_pct",
        ],
    )


def _architecture(spec: dict) -> str:
    kind = spec.get("architecture")
    if kind == "resnet_blocks":
        return f"resnet_blocks {spec.get('blocks')}"
    if kind == "torchvision":
        return f"torchvision {spec.get('name')}"
    if kind == "python":
        return f"python {spec.get('builder')}"
    return str(kind)


def write_complexity_table(
    arms: dict,
    input_shape: tuple[int, int, int],
    csv: PathLike,
    md: PathLike,
    title: str = "Gout Table II: parameters and MACs per arm (ours vs paper)",
) -> None:
    table = complexity_table(arms, input_shape)
    write_table_pair(table, csv, md, title)
