"""Training job: outputs, determinism, resume after SIGKILL, leakage, OLT settings, stats; the fast
(GPU) path on the CPU through DevicePlan, and on CUDA (tests marked gpu)."""

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

from mskdx.errors import ConfigError, SplitError
from mskdx.io import read_table, save_npy, write_table
from mskdx.learn import arms, augment, models, train
from mskdx.learn.checkpoints import load_final, prepare_images, training_seed
from mskdx.learn.device import DeviceImages, DevicePlan, make_optimizer
from mskdx.learn.job_data import class_weights, load_job_data
from mskdx.learn.loop import predict, train_one_epoch
from mskdx.learn.settings import TrainSettings

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
    # a manifest without patient_label (no image sheet): the patient's diagnosis is the label
    assert (pred["patient_label"] == pred["label"]).all()
    assert list(hist["epoch"]) == [1, 2] and hist["val_auc"].notna().all()
    ckpt = torch.load(first_run["checkpoint"], weights_only=True)
    assert {"model", "epoch", "args", "arm_spec", "normalization"} <= set(ckpt)
    # best_val_auc: the first epoch with the highest validation AUC
    assert ckpt["epoch"] == int(hist["epoch"][hist["val_auc"].idxmax()])
    assert not (first_run["checkpoint"].parent / "checkpoint_last.pt").exists()
    assert ckpt["normalization"]["kind"] == "image_zscore"


def test_checkpoint_reproduces_predictions(first_run, cohort):
    model, state = load_final(first_run["checkpoint"])
    pred = read_table(first_run["predictions"])
    manifest = read_table(cohort["manifest"]).set_index("image_id")
    images = np.load(cohort["images"])[manifest.loc[pred["image_id"], "index"].to_numpy()]
    with torch.inference_mode():
        prob = torch.softmax(model(prepare_images(images, state["normalization"])), 1)[:, 1]
    np.testing.assert_allclose(prob.numpy(), pred["prob"].to_numpy(), atol=1e-5)


def test_deterministic(first_run, cohort, tmp_path):
    second = run(cohort, tmp_path)
    assert second["predictions"].read_bytes() == first_run["predictions"].read_bytes()
    a = torch.load(first_run["checkpoint"], weights_only=True)["model"]
    b = torch.load(second["checkpoint"], weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_tensorboard_events_and_eta(cohort, tmp_path, caplog):
    """Every epoch's loss, AUC and lr go to TensorBoard beside history.csv; the log shows an ETA."""
    pytest.importorskip("tensorboard", reason="tensorboard is in the torch extra")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    caplog.set_level(logging.INFO, logger="mskdx.learn.train")
    events = tmp_path / "tensorboard"
    events.mkdir()
    (events / "events.out.tfevents.stale").write_bytes(b"")  # an older run's: cleared
    out = run(cohort, tmp_path)
    assert "stale" not in "".join(p.name for p in events.iterdir())
    acc = EventAccumulator(str(events))
    acc.Reload()
    hist = read_table(out["history"], schema="history")
    assert {"loss/train", "loss/val", "auc/train", "auc/val", "lr"} <= set(acc.Tags()["scalars"])
    val_auc = acc.Scalars("auc/val")
    assert [e.step for e in val_auc] == [1, 2]
    np.testing.assert_allclose([e.value for e in val_auc], hist["val_auc"], atol=1e-6)
    assert [e.value for e in acc.Scalars("lr")] == pytest.approx(list(hist["lr"]))
    assert "epoch 1/2 (50%)" in caplog.text and "ETA 0:00:" in caplog.text


KILL_SCRIPT = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    import mskdx.learn.augment as augment
    import mskdx.learn.train as train

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


def kill_after_epoch_1(cohort, folder: Path, spec: dict) -> None:
    """Run the job in a subprocess and SIGKILL it during epoch 2, after epoch 1 was saved."""
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


def test_resume_after_sigkill(cohort, tmp_path, caplog):
    spec = {**GOUT_TRAIN, "epochs": 3, "augment": {"translate": 0.1, "hflip": True, "rotate": 5}}
    reference = run(cohort, tmp_path / "whole", train_spec=spec)

    folder = tmp_path / "killed"
    out = outputs(folder)
    kill_after_epoch_1(cohort, folder, spec)

    caplog.set_level(logging.INFO, logger="mskdx.learn.train")
    run(cohort, folder, train_spec=spec)  # resumes at epoch 2
    assert "after epoch 1" in caplog.text
    assert out["predictions"].read_bytes() == reference["predictions"].read_bytes()
    a = torch.load(reference["checkpoint"], weights_only=True)
    b = torch.load(out["checkpoint"], weights_only=True)
    assert a["epoch"] == b["epoch"]
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    hist_a, hist_b = (read_table(p["history"]).drop(columns="seconds") for p in (reference, out))
    pd.testing.assert_frame_equal(hist_a, hist_b)
    assert not (folder / "checkpoint_last.pt").exists()


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
    data = load_job_data(cohort["images"], cohort["manifest"], cohort["splits"], fold=0)
    norm = augment.make_normalization("image_zscore", data.images, data.rows("train"))
    bank = DeviceImages.create(
        data.images, data.table["label"].to_numpy(), norm, torch.device("cpu"), channels_last=True
    )
    torch.manual_seed(0)
    model = arms.build(GOUT_ARM).to(memory_format=torch.channels_last)
    settings = TrainSettings.from_config(GOUT_TRAIN)
    optimizer = make_optimizer(settings, model.parameters(), torch.device("cpu"))
    order = torch.as_tensor(data.rows("train"))
    params = augment.sample_params(len(order), settings.augment, H, W, torch.Generator())
    result = train_one_epoch(model, optimizer, bank, order, params, batch_size=5)
    assert result.images == 12 and np.isfinite(result.loss)
    prob = predict(model, bank, torch.arange(len(data.table)), batch_size=7)
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


def test_training_repeat_is_another_run_of_the_same_fold(first_run, cohort, tmp_path):
    # train.repeats: repeat 0 is the run's seed itself (the paper's job, unchanged), repeat t
    # a seed derived from (seed, t): same split, same images, other weights and predictions
    assert training_seed(7, 0) == 7
    assert len({training_seed(7, t) for t in range(4)}) == 4
    assert training_seed(7, 2) == training_seed(7, 2) != training_seed(8, 2)
    again = run(cohort, tmp_path / "t0", train_repeat=0)
    assert again["predictions"].read_bytes() == first_run["predictions"].read_bytes()
    other = run(cohort, tmp_path / "t1", train_repeat=1)
    a, b = read_table(first_run["predictions"]), read_table(other["predictions"])
    assert a[["image_id", "subset", "patient", "label"]].equals(
        b[["image_id", "subset", "patient", "label"]]
    )
    assert not np.allclose(a["prob"], b["prob"], atol=1e-4)
    ckpt = torch.load(other["checkpoint"], weights_only=True)
    assert ckpt["args"]["seed"] == training_seed(7, 1)
    with pytest.raises(ValueError, match="train_repeat"):
        training_seed(7, -1)


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
    assert class_weights(np.array([0, 0, 0, 1])).tolist() == pytest.approx([4 / 6, 2.0])
    with pytest.raises(SplitError, match="both"):
        class_weights(np.array([1, 1]))


def test_train_stats_use_training_images_only(cohort, tmp_path):
    data = load_job_data(cohort["images"], cohort["manifest"], cohort["splits"], fold=0)
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


# --------------------------------------------------------------------------------------------
# the fast (GPU) path, exercised on the CPU through DevicePlan

CPU = torch.device("cpu")
# batch 6: the 12 training, 6 validation and 24 predicted images come in one batch shape, so a
# compiled model is traced once for training and once for evaluation
FAST_TRAIN = {**GOUT_TRAIN, "batch_size": 6}
# stated tolerances on P(positive) after 2 epochs of the tiny cohort, against the plain fp32 path:
LAYOUT_ATOL = 1e-3  # channels_last, fused Adam, torch.compile: fp32, only the summation order moves
BF16_ATOL = 0.05  # bf16 autocast: 8-bit mantissa in the forward pass (measured max 0.01)


def test_cpu_plan_is_the_plain_deterministic_path():
    plan = DevicePlan.for_settings(TrainSettings.from_config(GOUT_TRAIN))
    assert plan == DevicePlan(CPU)
    assert plan.batch_dtype == torch.float32 and plan.deterministic
    assert plan.describe() == "cpu, deterministic"
    with pytest.raises(ConfigError, match="pinned"):
        DevicePlan(CPU, pin_memory=True)
    model, net = DevicePlan(CPU, channels_last=True).place(arms.build(GOUT_ARM))
    assert net is model and model.conv1.weight.is_contiguous(memory_format=torch.channels_last)


def test_fast_path_pieces_on_cpu_agree_with_plain(cohort, tmp_path):
    plans = {
        "plain": DevicePlan(CPU),
        "layout": DevicePlan(CPU, channels_last=True, fused=True),
        "bf16": DevicePlan(CPU, amp=True, channels_last=True, fused=True),
    }
    prob = {}
    for name, plan in plans.items():
        out = run(cohort, tmp_path / name, train_spec=FAST_TRAIN, plan=plan)
        prob[name] = read_table(out["predictions"])["prob"].to_numpy()
    layout = np.abs(prob["layout"] - prob["plain"]).max()
    bf16 = np.abs(prob["bf16"] - prob["plain"]).max()
    assert layout <= LAYOUT_ATOL
    assert 0 < bf16 <= BF16_ATOL  # > 0: autocast did run in bf16


def test_compile_on_cpu_agrees_with_eager(cohort):
    # inductor on the CPU (a C++ compiler): the compiled module trains and predicts like the eager
    # one; a small stem keeps the compile time down
    data = load_job_data(cohort["images"], cohort["manifest"], cohort["splits"], fold=0)
    labels = data.table["label"].to_numpy()
    norm = augment.make_normalization("image_zscore", data.images, data.rows("train"))
    settings = TrainSettings.from_config(FAST_TRAIN)
    order = torch.as_tensor(data.rows("train"))
    params = augment.sample_params(len(order), settings.augment, H, W, torch.Generator())
    out = {}
    for compiled in (False, True):
        plan = DevicePlan(CPU, channels_last=True, fused=True, compile=compiled)
        torch.manual_seed(0)
        model, net = plan.place(models.ResidualNet((0, 0, 0, 1), stem_width=8))
        assert (net is not model) == compiled
        bank = DeviceImages.for_plan(data.images, labels, norm, plan)
        optimizer = plan.optimizer(settings, model.parameters())
        result = train_one_epoch(net, optimizer, bank, order, params, batch_size=6)
        prob = predict(net, bank, torch.arange(24), batch_size=6)
        out[compiled] = (result.loss, prob)
    assert out[True][0] == pytest.approx(out[False][0], abs=1e-4)
    np.testing.assert_allclose(out[True][1], out[False][1], atol=LAYOUT_ATOL)


def test_rng_state_round_trips_through_a_checkpoint(tmp_path):
    import random

    path = tmp_path / "rng.pt"
    torch.save({"rng": DevicePlan.rng_state()}, path)

    def draw():
        return torch.rand(3), np.random.rand(3), random.random()

    first = draw()
    DevicePlan.set_rng_state(torch.load(path, weights_only=True)["rng"])
    again = draw()
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert first[2] == again[2]


# --------------------------------------------------------------------------------------------
# CUDA (benchmarks/device_check.sh runs these on a GPU machine)

needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device (torch.cuda.is_available() is False)"
)
CUDA_TRAIN = {**FAST_TRAIN, "device": "cuda", "amp": True}
# bf16 autocast, cuDNN autotuning and TF32 are not bitwise reproducible: two CUDA runs of the same
# seed, a resumed and an uninterrupted one, and compile on/off agree on P(positive) within this
CUDA_ATOL = 0.05


def cuda_probs(cohort, folder, **kw) -> np.ndarray:
    out = run(cohort, folder, **kw)
    return read_table(out["predictions"])["prob"].to_numpy()


@pytest.mark.gpu
@needs_cuda
def test_cuda_plan_is_the_fast_path():
    plan = DevicePlan.for_settings(TrainSettings.from_config(CUDA_TRAIN))
    assert plan.device.type == "cuda" and plan.amp and plan.channels_last and plan.fused
    assert plan.pin_memory and not plan.deterministic and not plan.compile
    assert plan.batch_dtype == torch.bfloat16
    compiled = TrainSettings.from_config({**CUDA_TRAIN, "compile": True})
    assert DevicePlan.for_settings(compiled).compile


@pytest.mark.gpu
@needs_cuda
def test_cuda_deterministic_within_tolerance(cohort, tmp_path):
    a = cuda_probs(cohort, tmp_path / "a", train_spec=CUDA_TRAIN)
    b = cuda_probs(cohort, tmp_path / "b", train_spec=CUDA_TRAIN)
    cpu = cuda_probs(cohort, tmp_path / "cpu", train_spec=FAST_TRAIN)
    assert np.abs(a - b).max() <= CUDA_ATOL
    assert np.abs(a - cpu).max() <= 2 * CUDA_ATOL  # and the GPU computes what the CPU does


@pytest.mark.gpu
@needs_cuda
def test_cuda_compile_on_off_agree(cohort, tmp_path):
    eager = cuda_probs(cohort, tmp_path / "eager", train_spec=CUDA_TRAIN)
    compiled = cuda_probs(cohort, tmp_path / "compiled", train_spec={**CUDA_TRAIN, "compile": True})
    assert np.abs(eager - compiled).max() <= CUDA_ATOL


@pytest.mark.gpu
@needs_cuda
def test_cuda_rng_state_of_every_device_round_trips():
    state = DevicePlan.rng_state()
    assert len(state["cuda"]) == torch.cuda.device_count()
    first = torch.rand(4, device="cuda")
    DevicePlan.set_rng_state(state)
    assert torch.equal(first, torch.rand(4, device="cuda"))


@pytest.mark.gpu
@needs_cuda
def test_cuda_resume_after_sigkill(cohort, tmp_path, caplog):
    spec = {**CUDA_TRAIN, "epochs": 3, "augment": {"translate": 0.1, "hflip": True, "rotate": 5}}
    reference = cuda_probs(cohort, tmp_path / "whole", train_spec=spec)
    folder = tmp_path / "killed"
    kill_after_epoch_1(cohort, folder, spec)
    caplog.set_level(logging.INFO, logger="mskdx.learn.train")
    resumed = cuda_probs(cohort, folder, train_spec=spec)
    assert "after epoch 1" in caplog.text
    assert np.abs(resumed - reference).max() <= CUDA_ATOL
    assert not (folder / "checkpoint_last.pt").exists()
