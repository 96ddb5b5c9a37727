"""The failure gallery picks each arm's most confident errors."""

import pandas as pd

from mskdx.evaluate.figures.failures import select_failures


def test_most_confident_errors_per_arm():
    rows = []
    for arm in ("a", "b"):
        for i, (label, prob) in enumerate(
            [(0, 0.95), (0, 0.7), (0, 0.55), (0, 0.2), (1, 0.05), (1, 0.4), (1, 0.9), (1, 0.5)]
        ):
            rows.append(
                {"arm": arm, "fold": i % 2, "patient": f"P-{i:010x}", "image_id": f"I-{i:012x}",
                 "label": label, "prob": prob}
            )  # fmt: skip
    picked = select_failures(pd.DataFrame(rows), per_kind=2, image_threshold=0.5)
    a = picked[picked.arm == "a"]
    assert a[a.kind == "FP"].prob.tolist() == [0.95, 0.7]  # highest first
    assert a[a.kind == "FN"].prob.tolist() == [0.05, 0.4]  # lowest first; 0.5 is not > 0.5
    assert len(picked) == 8


def test_an_arm_without_errors_gets_none():
    test = pd.DataFrame(
        {"arm": ["a", "a"], "fold": [0, 0], "patient": ["P-0000000000"] * 2,
         "image_id": ["I-000000000000", "I-000000000001"], "label": [0, 1], "prob": [0.1, 0.9]}
    )  # fmt: skip
    assert select_failures(test, per_kind=3, image_threshold=0.5).empty
