"""Pretrained weight files: torch hub's hash-in-the-name check, the order files are looked for in,
and no download where a file is given or a caller forbids it (mskdx.learn.weights)."""

import hashlib

import pytest
import torch
import torchvision

from mskdx.learn import arms, weights


@pytest.fixture(scope="module")
def hub_named_file(tmp_path_factory):
    """A random-init torchvision resnet50 state dict saved as resnet50-<its sha256[:8]>.pth, as
    torchvision names its files (nothing can be downloaded here)."""
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    tmp = folder / "tmp.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    return tmp.rename(folder / f"resnet50-{digest[:8]}.pth")


@pytest.fixture
def no_download(monkeypatch, tmp_path):
    calls = []

    def refuse(url, *args, **kwargs):
        calls.append(url)
        raise OSError("network disabled in tests")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.delenv(weights.RESNET50_WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return calls


def test_hash_prefix_follows_torch_hub():
    assert weights.hash_prefix("resnet50-0676ba61.pth") == "0676ba61"
    assert weights.hash_prefix("/x/y/model-0123456789abcdef.pt") == "0123456789abcdef"
    assert weights.hash_prefix("resnet50.pth") is None
    assert weights.hash_prefix("resnet50-abc.pth") is None  # under 8 digits: no checksum
    assert weights.hash_prefix("resnet50-imagenet.pth") is None


def test_named_file_is_verified_and_loaded(hub_named_file, monkeypatch, no_download):
    assert weights.verify(hub_named_file)
    monkeypatch.setenv(weights.RESNET50_WEIGHTS_ENV, str(hub_named_file))
    assert weights.resnet50_file() == hub_named_file
    model = arms.build({"architecture": "resnet50", "weights": "imagenet"})
    reference = torch.load(hub_named_file, weights_only=True)
    assert torch.equal(model.layer1[0].conv1.weight, reference["layer1.0.conv1.weight"])
    assert no_download == []


def test_damaged_file_is_refused(hub_named_file, tmp_path, no_download):
    damaged = tmp_path / hub_named_file.name
    data = bytearray(hub_named_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    with pytest.raises(weights.WeightsUnavailableError, match="does not start with"):
        weights.resnet50_file(damaged)
    with pytest.raises(weights.WeightsUnavailableError, match=damaged.name):
        arms.build({"architecture": "resnet50", "weights": "imagenet", "weights_path": damaged})
    assert no_download == []


def test_cache_file_must_match_its_hash(tmp_path, no_download):
    """The cache file has torchvision's name (resnet50-0676ba61.pth): another file is refused."""
    cache = weights.resnet50_cache_file()
    cache.parent.mkdir(parents=True)
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), cache)
    with pytest.raises(weights.WeightsUnavailableError, match="0676ba61"):
        weights.resnet50_file()
    assert no_download == []


def test_cache_file_used_when_intact(hub_named_file, tmp_path, monkeypatch, no_download):
    cache = tmp_path / "hub" / "checkpoints" / hub_named_file.name
    cache.parent.mkdir(parents=True)
    cache.write_bytes(hub_named_file.read_bytes())
    monkeypatch.setattr(weights, "resnet50_cache_file", lambda: cache)
    assert weights.resnet50_file() == cache
    assert no_download == []


def test_no_download_when_forbidden(no_download):
    assert weights.resnet50_file(download=False) is None
    assert no_download == []
    with pytest.raises(weights.WeightsUnavailableError, match="download failed"):
        weights.resnet50_file()
    assert no_download  # torchvision's download was tried, and refused by the fixture


def test_unnamed_file_is_used_unverified(hub_named_file, tmp_path, no_download, caplog):
    plain = tmp_path / "mine.pth"
    plain.write_bytes(hub_named_file.read_bytes())
    assert not weights.verify(plain)
    assert weights.resnet50_file(plain) == plain
    assert "not verified" in caplog.text
