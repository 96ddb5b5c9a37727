"""What reruns the extraction: the input tree inventory and the pseudonym key fingerprint."""

from __future__ import annotations

import os

from mskdx.ingest.inputs import (
    DEMO_FINGERPRINT,
    demo_key_warning,
    key_fingerprint,
    tree_digest,
    walk_tree,
)


def _tree(root):
    for rel in ("PAT-1/2024/US/IMG1", "PAT-1/2024/US/IMG2", "PAT-2/IMG1"):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 100)


def test_digest_changes_with_any_file_deep_in_the_tree(tmp_path):
    _tree(tmp_path)
    first = tree_digest(tmp_path)
    assert first.startswith("3 files") and tree_digest(tmp_path) == first
    deep = tmp_path / "PAT-1/2024/US/IMG2"
    top_mtime = os.stat(tmp_path).st_mtime_ns

    deep.write_bytes(b"y" * 100)  # same size, new content (and mtime)
    os.utime(deep, ns=(1, 1))
    changed = tree_digest(tmp_path)
    assert changed != first
    assert os.stat(tmp_path).st_mtime_ns == top_mtime  # what a directory input sees: nothing

    (tmp_path / "PAT-2/IMG2").write_bytes(b"z")  # added
    added = tree_digest(tmp_path)
    assert added not in (first, changed) and added.startswith("4 files")
    (tmp_path / "PAT-2/IMG2").unlink()  # removed again
    assert tree_digest(tmp_path) == changed


def test_digest_of_a_missing_folder(tmp_path):
    assert tree_digest(tmp_path / "absent") == "missing"


def test_walk_tree_follows_links_once_and_skips_the_snakemake_marker(tmp_path):
    _tree(tmp_path / "store")
    root = tmp_path / "export"
    root.mkdir()
    (root / ".snakemake_timestamp").write_text("")
    os.symlink(tmp_path / "store" / "PAT-1", root / "PAT-1")
    os.symlink(tmp_path / "store" / "PAT-1", root / "PAT-1-again")
    os.symlink(root, root / "loop")
    tree = walk_tree(root)
    assert [rel for rel, _ in tree.files] == ["PAT-1/2024/US/IMG1", "PAT-1/2024/US/IMG2"]
    assert tree.repeated == 2 and tree.unreadable == []


def test_key_fingerprint_never_shows_the_key(monkeypatch):
    monkeypatch.delenv("MSKDX_FP_TEST", raising=False)
    assert key_fingerprint("MSKDX_FP_TEST") == DEMO_FINGERPRINT
    assert "MSKDX_FP_TEST is not set" in demo_key_warning("MSKDX_FP_TEST")
    monkeypatch.setenv("MSKDX_FP_TEST", "a secret key")
    one = key_fingerprint("MSKDX_FP_TEST")
    assert len(one) == 12 and "secret" not in one and one != DEMO_FINGERPRINT
    assert demo_key_warning("MSKDX_FP_TEST") == ""
    monkeypatch.setenv("MSKDX_FP_TEST", "another secret key")
    assert key_fingerprint("MSKDX_FP_TEST") != one
