"""Training job: outputs, determinism, resume after SIGKILL, leakage, OLT settings, stats."""

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mskdx import augment, train
from mskdx.errors import SplitError
from mskdx.io import read_table, save_npy, write_table

torch.set_num_threads(2)

H, W = 32, 70
GOUT_ARM = {"architecture": "resnet_blocks", "blocks": 3}
GOUT_TRAIN = {
    "optimizer": "adam",
    "lr": 0.001,
    "weight_decay": 0.0001,
    "epochs": 2,
    "batch_size": 4,
    "class_weights": False,
    "augment": {"translate": 0.1, "hflip": False, "rotate": 0},
    "normalization": "image_zscore",
    "select": "best_val_auc",
    "device": "cpu",
    "amp": True,
    "compile": False,
}
PATIENTS = [f"P-{i:010x}" for i in range(8)]


def make_cohort(
    folder: Path,
    *,
    per_patient: int = 3,
    series: tuple[str, ...] = ("dorsal",),
    height: int = H,
    width: int = W,
    seed: int = 0,
) -> dict[str, Path]:
    """8 patients (even = positive), `per_patient` images per series; positives show a blob."""
    rng = np.random.default_rng(seed)
    images, rows = [], []
    for p, patient in enumerate(PATIENTS):
        label = int(p % 2 == 0)
        for s in series:
            for k in range(per_patient):
                img = rng.integers(0, 90, size=(height, width)).astype(np.uint8)
                if label:
                    y, x = rng.integers(4, height - 12), rng.integers(4, width - 12)
                    img[y : y + 8, x : x + 8] = 230
                rows.append(
                    {
                        "index": len(images),
                        "image_id": f"I-{len(images) * 7919:012x}",
                        "patient": patient,
                        "study": "gout",
                        "series": s,
                        "frame": k,
                        "label": label,
                        "checksum": f"{p:064x}",
                    }
                )
                images.append(img)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "images": folder / "images.npy",
        "manifest": folder / "manifest.csv",
        "splits": folder / "splits.csv",
    }
    save_npy(paths["images"], np.stack(images))
    # shuffle the manifest rows: the job must not rely on their order
    manifest = pd.DataFrame(rows).sample(frac=1, random_state=1)
    write_table(manifest, paths["manifest"], schema="manifest")
    write_table(make_splits(), paths["splits"], schema="splits")
    return paths


def make_splits() -> pd.DataFrame:
    rows = []
    for fold in (0, 1):
        order = PATIENTS if fold == 0 else PATIENTS[4:] + PATIENTS[:4]
        subsets = ["train"] * 4 + ["val"] * 2 + ["test"] * 2
        rows += [
            {"fold": fold, "patient": p, "subset": s} for p, s in zip(order, subsets, strict=True)
        ]
    return pd.DataFrame(rows)


def outputs(folder: Path) -> dict[str, Path]:
    return {
        "checkpoint": folder / "checkpoint_final.pt",
        "history": folder / "history.csv",
        "predictions": folder / "predictions.csv",
    }


def run(
    paths, folder, *, arm="blocks3", arm_spec=GOUT_ARM, train_spec=GOUT_TRAIN, fold=0, seed=7, **kw
):
    out = outputs(folder)
    train.train_fold(
        paths["images"],
        paths["manifest"],
        paths["splits"],
        study="gout",
        arm=arm,
        fold=fold,
        arm_spec=arm_spec,
        train_spec=train_spec,
        seed=seed,
        threads=1,
        **out,
        **kw,
    )
    return out


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return make_cohort(tmp_path_factory.mktemp("cohort"))


@pytest.fixture(scope="module")
def first_run(cohort, tmp_path_factory):
    return run(cohort, tmp_path_factory.mktemp("run1"))


def test_outputs_exist_and_validate(first_run):
    pred = read_table(first_run["predictions"], schema="predictions")
    hist = read_table(first_run["history"], schema="history")
    assert len(pred) == 24 and set(pred["subset"]) == {"train", "val", "test"}
    assert pred["subset"].value_counts().to_dict() == {"train": 12, "val": 6, "test": 6}
    assert pred["image_id"].is_unique and (pred["fold"] == 0).all()
    assert list(hist["epoch"]) == [1, 2] and hist["val_auc"].notna().all()
    ckpt = torch.load(first_run["checkpoint"], weights_only=True)
    assert {"model", "epoch", "args", "arm_spec", "normalization"} <= set(ckpt)
    # best_val_auc: the first epoch with the highest validation AUC
    assert ckpt["epoch"] == int(hist["epoch"][hist["val_auc"].idxmax()])
    assert not (first_run["checkpoint"].parent / "checkpoint_last.pt").exists()
    assert ckpt["normalization"]["kind"] == "image_zscore"


def test_checkpoint_reproduces_predictions(first_run, cohort):
    model, state = train.load_final(first_run["checkpoint"])
    pred = read_table(first_run["predictions"])
    manifest = read_table(cohort["manifest"]).set_index("image_id")
    images = np.load(cohort["images"])[manifest.loc[pred["image_id"], "index"].to_numpy()]
    with torch.inference_mode():
        prob = torch.softmax(model(train.prepare_images(images, state["normalization"])), 1)[:, 1]
    np.testing.assert_allclose(prob.numpy(), pred["prob"].to_numpy(), atol=1e-5)


def test_deterministic(first_run, cohort, tmp_path):
    second = run(cohort, tmp_path)
    assert second["predictions"].read_bytes() == first_run["predictions"].read_bytes()
    a = torch.load(first_run["checkpoint"], weights_only=True)["model"]
    b = torch.load(second["checkpoint"], weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


KILL_SCRIPT = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    import mskdx.augment as augment
    import mskdx.train as train

    kwargs = json.loads(sys.argv[1])
    last = Path(kwargs["checkpoint"]).parent / "checkpoint_last.pt"
    make_batch, calls = augment.make_batch, [0]

    def slow_after_epoch_1(*args, **kw):
        # once epoch 1 is saved, take one optimizer step of epoch 2, then hang to be killed
        if last.exists():
            calls[0] += 1
            if calls[0] == 2:
                time.sleep(600)
        return make_batch(*args, **kw)

    augment.make_batch = slow_after_epoch_1
    train.train_fold(**kwargs)
""")


def test_resume_after_sigkill(cohort, tmp_path, caplog):
    spec = {**GOUT_TRAIN, "epochs": 3, "augment": {"translate": 0.1, "hflip": True, "rotate": 5}}
    reference = run(cohort, tmp_path / "whole", train_spec=spec)

    folder = tmp_path / "killed"
    out = outputs(folder)
    kwargs = {
        "images": str(cohort["images"]),
        "manifest": str(cohort["manifest"]),
        "splits": str(cohort["splits"]),
        "study": "gout",
        "arm": "blocks3",
        "fold": 0,
        "arm_spec": GOUT_ARM,
        "train_spec": spec,
        "seed": 7,
        "threads": 1,
        **{k: str(v) for k, v in out.items()},
    }
    last = folder / "checkpoint_last.pt"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, json.dumps(kwargs)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 180
        while not last.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no checkpoint_last.pt after 180 s"
            time.sleep(0.05)
        time.sleep(0.5)  # let it take the first step of epoch 2
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert torch.load(last, weights_only=True)["epoch"] == 1
    assert not out["predictions"].exists()

    caplog.set_level(logging.INFO, logger="mskdx.train")
    run(cohort, folder, train_spec=spec)  # resumes at epoch 2
    assert "after epoch 1" in caplog.text
    assert out["predictions"].read_bytes() == reference["predictions"].read_bytes()
    a = torch.load(reference["checkpoint"], weights_only=True)
    b = torch.load(out["checkpoint"], weights_only=True)
    assert a["epoch"] == b["epoch"]
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    hist_a, hist_b = (read_table(p["history"]).drop(columns="seconds") for p in (reference, out))
    pd.testing.assert_frame_equal(hist_a, hist_b)
    assert not last.exists()


@pytest.mark.parametrize("content", ["garbage", "other_args"])
def test_unusable_last_checkpoint_is_ignored(cohort, first_run, tmp_path, caplog, content):
    last = tmp_path / "checkpoint_last.pt"
    if content == "garbage":
        last.write_bytes(b"not a checkpoint")
    else:
        torch.save({"args": {"study": "gout", "seed": 8}, "epoch": 1}, last)
    out = run(cohort, tmp_path)
    assert out["predictions"].read_bytes() == first_run["predictions"].read_bytes()
    assert "starting from epoch 1" in caplog.text


def test_channels_last_batches_train_and_predict(cohort):
    # the layout the CUDA path uses, exercised on the CPU
    data = train.load_job_data(cohort["images"], cohort["manifest"], cohort["splits"], fold=0)
    norm = augment.make_normalization("image_zscore", data.images, data.rows("train"))
    bank = train.DeviceImages.create(
        data.images, data.table["label"].to_numpy(), norm, torch.device("cpu"), channels_last=True
    )
    torch.manual_seed(0)
    model = train.models.build(GOUT_ARM).to(memory_format=torch.channels_last)
    settings = train.TrainSettings.from_config(GOUT_TRAIN)
    optimizer = train.make_optimizer(settings, model.parameters(), torch.device("cpu"))
    order = torch.as_tensor(data.rows("train"))
    params = augment.sample_params(len(order), settings.augment, H, W, torch.Generator())
    result = train.train_one_epoch(model, optimizer, bank, order, params, batch_size=5)
    assert result.images == 12 and np.isfinite(result.loss)
    prob = train.predict(model, bank, torch.arange(len(data.table)), batch_size=7)
    assert prob.shape == (24,) and ((prob >= 0) & (prob <= 1)).all()


def test_leakage_raises(cohort, tmp_path):
    splits = read_table(cohort["splits"])
    leaked = pd.concat(
        [splits, pd.DataFrame([{"fold": 0, "patient": PATIENTS[0], "subset": "test"}])]
    )
    paths = {**cohort, "splits": tmp_path / "splits.csv"}
    write_table(leaked, paths["splits"], schema="splits")
    with pytest.raises(SplitError, match=PATIENTS[0]):
        run(paths, tmp_path / "out")
    assert not (tmp_path / "out" / "predictions.csv").exists()


def test_patient_missing_from_split_raises(cohort, tmp_path):
    splits = read_table(cohort["splits"])
    paths = {**cohort, "splits": tmp_path / "splits.csv"}
    write_table(splits[splits["patient"] != PATIENTS[3]], paths["splits"], schema="splits")
    with pytest.raises(SplitError, match="no subset"):
        run(paths, tmp_path / "out")


def test_other_fold(cohort, tmp_path):
    out = run(cohort, tmp_path, fold=1, train_spec={**GOUT_TRAIN, "epochs": 1, "select": "last"})
    pred = read_table(out["predictions"])
    assert (pred["fold"] == 1).all()
    train_patients = set(pred.loc[pred["subset"] == "train", "patient"])
    assert train_patients == set(PATIENTS[4:])


def test_olt_like_run(tmp_path):
    paths = make_cohort(tmp_path / "olt", per_patient=2, series=("T1", "T2"), height=32, width=32)
    spec = {
        "optimizer": "adam",
        "lr": 0.001,
        "weight_decay": 0.0,
        "epochs": 1,
        "batch_size": 4,
        "class_weights": True,
        "augment": {"translate": 0.0, "hflip": True, "rotate": 10},
        "normalization": "imagenet",
        "select": "last",
        "device": "cpu",
        "amp": True,
    }
    arm_spec = {"architecture": "resnet50", "weights": "none", "sequence": "T1"}
    out = run(paths, tmp_path / "T1", arm="T1", arm_spec=arm_spec, train_spec=spec)
    pred = read_table(out["predictions"], schema="predictions")
    manifest = read_table(paths["manifest"]).set_index("image_id")
    assert len(pred) == 16 and (manifest.loc[pred["image_id"], "series"] == "T1").all()
    ckpt = torch.load(out["checkpoint"], weights_only=True)
    assert ckpt["normalization"]["kind"] == "imagenet"
    assert ckpt["normalization"]["mean"] == pytest.approx([255 * m for m in augment.IMAGENET_MEAN])
    labels = pred.loc[pred["subset"] == "train", "label"]
    expected = [len(labels) / (2 * (labels == c).sum()) for c in (0, 1)]
    assert ckpt["class_weights"] == pytest.approx(expected)
    assert ckpt["epoch"] == 1 and ckpt["select"] == "last"


def test_class_weights_are_inverse_frequency():
    assert train.class_weights(np.array([0, 0, 0, 1])).tolist() == pytest.approx([4 / 6, 2.0])
    with pytest.raises(SplitError, match="both"):
        train.class_weights(np.array([1, 1]))


def test_train_stats_use_training_images_only(cohort, tmp_path):
    data = train.load_job_data(cohort["images"], cohort["manifest"], cohort["splits"], fold=0)
    rows = data.rows("train")
    norm = augment.make_normalization("train_stats", data.images, rows)
    changed = data.images.copy()
    other = np.setdiff1d(np.arange(len(changed)), rows)
    changed[other] = 255 - changed[other]
    assert augment.make_normalization("train_stats", changed, rows) == norm
    pixels = data.images[rows].astype(np.float64)
    assert norm.mean[0] == pytest.approx(pixels.mean()) and norm.std[0] == pytest.approx(
        pixels.std()
    )

    # the job stores the same statistics, and they do not move when test images change
    spec = {**GOUT_TRAIN, "epochs": 1, "normalization": "train_stats"}
    out = run(cohort, tmp_path / "a", train_spec=spec)
    stored = torch.load(out["checkpoint"], weights_only=True)["normalization"]
    assert stored == norm.to_dict()
    cache = np.load(cohort["images"])
    manifest = read_table(cohort["manifest"])
    test_rows = manifest.loc[manifest["patient"].isin(PATIENTS[6:]), "index"].to_numpy()
    cache[test_rows] = 255 - cache[test_rows]
    paths = {**cohort, "images": tmp_path / "images.npy"}
    save_npy(paths["images"], cache)
    out_b = run(paths, tmp_path / "b", train_spec=spec)
    assert torch.load(out_b["checkpoint"], weights_only=True)["normalization"] == stored


def test_augmentation_is_exact_and_batched():
    x = torch.rand(3, 1, 6, 10)
    params = torch.tensor([[0.0, 2.0, 1.0, 1.0], [0.0, 0.0, 0.0, -1.0], [0.0, 0.0, 0.0, 1.0]])
    y = augment.apply_affine(x, params)
    shifted = torch.zeros(6, 10)
    shifted[1:, 2:] = x[0, 0, :-1, :-2]
    torch.testing.assert_close(y[0, 0], shifted, atol=1e-6, rtol=0)
    torch.testing.assert_close(y[1], x[1].flip(-1), atol=1e-6, rtol=0)
    torch.testing.assert_close(y[2], x[2], atol=1e-6, rtol=0)
    square = torch.rand(1, 1, 5, 5)
    rotated = augment.apply_affine(square, torch.tensor([[90.0, 0.0, 0.0, 1.0]]))
    torch.testing.assert_close(rotated, torch.rot90(square, -1, (2, 3)), atol=1e-5, rtol=0)


def test_sample_params_and_make_batch():
    spec = augment.AugmentSpec(translate=0.1, hflip=True, rotate=10)
    g = torch.Generator().manual_seed(0)
    p = augment.sample_params(1000, spec, 32, 70, g)
    assert p[:, 0].abs().max() <= 10 and p[:, 1].abs().max() <= 7 and p[:, 2].abs().max() <= 3
    assert torch.equal(p[:, 1:3], p[:, 1:3].round()) and set(p[:, 3].tolist()) == {-1.0, 1.0}
    bank = torch.randint(0, 256, (4, 32, 70), dtype=torch.uint8)
    norm = augment.make_normalization("imagenet", bank.numpy(), np.arange(4))
    scale, shift = augment.coefficients(norm, bank.numpy())
    x = augment.make_batch(bank, torch.tensor([2, 0]), scale, shift, channels_last=True)
    assert x.shape == (2, 3, 32, 70) and x.is_contiguous(memory_format=torch.channels_last)
    expected = (bank[2].float() / 255 - augment.IMAGENET_MEAN[1]) / augment.IMAGENET_STD[1]
    torch.testing.assert_close(x[0, 1], expected, atol=1e-5, rtol=1e-5)
    zs = augment.make_normalization("image_zscore", bank.numpy(), np.arange(4))
    scale, shift = augment.coefficients(zs, bank.numpy())
    x = augment.make_batch(bank, torch.arange(4), scale, shift)
    assert x.mean(dim=(1, 2, 3)).abs().max() < 1e-4
    assert (x.std(dim=(2, 3), unbiased=False) - 1).abs().max() < 1e-3
